//! Live post subscriptions over the WebSocket follow the same visibility rule
//! as REST: a post one may not read cannot be subscribed to, and a block or a
//! hide after subscribing stops delivery at once.

use futures_util::SinkExt as _;
use serde_json::{json, Value};
use tokio_tungstenite::tungstenite::Message;

use crate::helpers::{eventually, spawn_app_with, TestApp};
use crate::stream::{connect, next_event, next_of_type, Ws};

async fn moderated_app() -> TestApp {
    spawn_app_with(|s| s.moderation.blocked_terms = vec!["scam".into()]).await
}

/// Sends a subscribe frame and returns the answer (`subscribed` or `error`).
pub async fn subscribe(ws: &mut Ws, post_id: i64) -> Value {
    ws.send(Message::text(
        json!({"type": "subscribe", "post_id": post_id}).to_string(),
    ))
    .await
    .unwrap();
    loop {
        let event = next_event(ws).await;
        if event["type"] == "subscribed" || event["type"] == "error" {
            return event;
        }
    }
}

/// Asserts that nothing about posts reached `ws` before a ping's pong: the
/// caller first waited for a control subscriber to get the same activity,
/// so anything leaked would already be queued ahead of the pong.
pub async fn nothing_before_pong(ws: &mut Ws) {
    ws.send(Message::text(r#"{"type":"ping"}"#)).await.unwrap();
    loop {
        let event = next_event(ws).await;
        let kind = event["type"].as_str().unwrap_or_default().to_owned();
        assert!(
            !kind.starts_with("post.") && !kind.starts_with("comment."),
            "leaked {event}"
        );
        if kind == "pong" {
            return;
        }
    }
}

async fn comment(app: &TestApp, token: &str, post: i64, text: &str) {
    let res = app
        .post(
            &format!("/api/v1/posts/{post}/comments"),
            Some(token),
            &json!({ "text": text }),
        )
        .await;
    assert_eq!(res.status(), 201, "comment");
}

async fn block(app: &TestApp, token: &str, user: i64) {
    let res = app
        .put(
            &format!("/api/v1/users/{user}/block"),
            Some(token),
            &json!({}),
        )
        .await;
    assert!(res.status().is_success(), "block");
}

async fn hidden_from(app: &TestApp, post: i64, token: &str) {
    eventually("the post to be hidden", || async {
        app.get(&format!("/api/v1/posts/{post}"), Some(token))
            .await
            .status()
            == 404
    })
    .await;
}

#[actix_web::test]
async fn posts_one_may_not_read_cannot_be_subscribed_to_and_all_refusals_read_alike() {
    let app = moderated_app().await;
    let alice = app.user("alice").await;
    let bob = app.user("bobby").await;
    let dave = app.user("dave").await;
    let mut bob_ws = connect(&app, &bob.access, None).await;

    let deleted = app.create_post(&alice.access, "gone soon").await["id"]
        .as_i64()
        .unwrap();
    assert_eq!(
        app.delete(&format!("/api/v1/posts/{deleted}"), Some(&alice.access))
            .await
            .status(),
        204
    );
    let hidden = app.create_post(&alice.access, "a scam, clearly").await["id"]
        .as_i64()
        .unwrap();
    hidden_from(&app, hidden, &bob.access).await;
    // A block either way hides a post: dave blocks bob, bob blocks carol.
    let blocked_by_author = app.create_post(&dave.access, "not for bob").await["id"]
        .as_i64()
        .unwrap();
    block(&app, &dave.access, bob.id).await;
    let carol = app.user("carol").await;
    let blocked_by_viewer = app.create_post(&carol.access, "bob blocked me").await["id"]
        .as_i64()
        .unwrap();
    block(&app, &bob.access, carol.id).await;

    let mut refusals = Vec::new();
    for (what, post) in [
        ("absent", 9_999_999),
        ("deleted", deleted),
        ("hidden", hidden),
        ("author blocked the viewer", blocked_by_author),
        ("viewer blocked the author", blocked_by_viewer),
    ] {
        let status = app
            .get(&format!("/api/v1/posts/{post}"), Some(&bob.access))
            .await
            .status();
        assert_eq!(status, 404, "REST hides the {what} post");
        let answer = subscribe(&mut bob_ws, post).await;
        assert_eq!(answer["type"], "error", "{what}: {answer}");
        assert_eq!(answer["data"]["post_id"], post, "{what}");
        refusals.push(answer["data"]["message"].as_str().unwrap().to_owned());
    }
    assert!(
        refusals.windows(2).all(|w| w[0] == w[1]),
        "one text for every refusal: {refusals:?}"
    );

    // No subscription was made: activity on those posts never reaches bob,
    // while a reader who may see the post gets it.
    let eve = app.user("evelyn").await;
    let mut eve_ws = connect(&app, &eve.access, None).await;
    assert_eq!(
        subscribe(&mut eve_ws, blocked_by_author).await["type"],
        "subscribed"
    );
    comment(&app, &eve.access, blocked_by_author, "first!").await;
    next_of_type(&mut eve_ws, "comment.created").await;
    next_of_type(&mut eve_ws, "post.counters").await;
    nothing_before_pong(&mut bob_ws).await;

    // The author still follows her own hidden post.
    let mut alice_ws = connect(&app, &alice.access, None).await;
    assert_eq!(subscribe(&mut alice_ws, hidden).await["type"], "subscribed");
}

#[actix_web::test]
async fn a_block_or_a_hide_after_subscribing_stops_delivery_at_once() {
    let app = moderated_app().await;
    let alice = app.user("alice").await;
    let bob = app.user("bobby").await;
    let carol = app.user("carol").await;
    let dave = app.user("dave").await;
    let post = app.create_post(&alice.access, "watch this").await["id"]
        .as_i64()
        .unwrap();
    let mut alice_ws = connect(&app, &alice.access, None).await;
    let mut bob_ws = connect(&app, &bob.access, None).await;
    let mut carol_ws = connect(&app, &carol.access, None).await;
    for ws in [&mut alice_ws, &mut bob_ws, &mut carol_ws] {
        assert_eq!(subscribe(ws, post).await["type"], "subscribed");
    }
    comment(&app, &dave.access, post, "one").await;
    for ws in [&mut bob_ws, &mut carol_ws] {
        assert_eq!(
            next_of_type(ws, "comment.created").await["data"]["text"],
            "one"
        );
        next_of_type(ws, "post.counters").await;
    }

    // Alice blocks bob: the next comment reaches carol, not bob.
    block(&app, &alice.access, bob.id).await;
    comment(&app, &dave.access, post, "two").await;
    assert_eq!(
        next_of_type(&mut carol_ws, "comment.created").await["data"]["text"],
        "two"
    );
    next_of_type(&mut carol_ws, "post.counters").await;
    nothing_before_pong(&mut bob_ws).await;

    // The post is hidden by moderation after an edit: carol hears no more,
    // its author still does.
    let res = app
        .patch(
            &format!("/api/v1/posts/{post}"),
            Some(&alice.access),
            &json!({"text": "now a scam"}),
        )
        .await;
    assert_eq!(res.status(), 200);
    hidden_from(&app, post, &carol.access).await;
    comment(&app, &alice.access, post, "three").await;
    // The author heard of every comment; the third one is what counts here.
    while next_of_type(&mut alice_ws, "comment.created").await["data"]["text"] != "three" {}
    next_of_type(&mut alice_ws, "post.counters").await;
    nothing_before_pong(&mut carol_ws).await;
    nothing_before_pong(&mut bob_ws).await;
}

#[actix_web::test]
async fn a_comment_by_someone_in_a_block_relation_with_a_subscriber_is_kept_from_them() {
    let app = moderated_app().await;
    let alice = app.user("alice").await;
    let bob = app.user("bobby").await;
    let carol = app.user("carol").await;
    let dave = app.user("dave").await;
    let post = app.create_post(&alice.access, "open thread").await["id"]
        .as_i64()
        .unwrap();
    let mut bob_ws = connect(&app, &bob.access, None).await;
    let mut carol_ws = connect(&app, &carol.access, None).await;
    for ws in [&mut bob_ws, &mut carol_ws] {
        assert_eq!(subscribe(ws, post).await["type"], "subscribed");
    }
    // Either way round: bob blocked dave, and carol was blocked by nobody.
    block(&app, &bob.access, dave.id).await;
    comment(&app, &dave.access, post, "from dave").await;
    assert_eq!(
        next_of_type(&mut carol_ws, "comment.created").await["data"]["text"],
        "from dave"
    );
    next_of_type(&mut carol_ws, "post.counters").await;
    // Bob gets the counters (the post is his to read), never dave's text.
    loop {
        let event = next_event(&mut bob_ws).await;
        assert_ne!(event["type"], "comment.created", "leaked {event}");
        if event["type"] == "post.counters" {
            break;
        }
    }
    let listed: Value = app
        .get(&format!("/api/v1/posts/{post}/comments"), Some(&bob.access))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(
        listed["items"].as_array().unwrap().len(),
        0,
        "REST leaves dave's comment out for bob too"
    );

    // The other way round: dave blocks carol; his next comment skips her.
    block(&app, &dave.access, carol.id).await;
    comment(&app, &dave.access, post, "again").await;
    loop {
        let event = next_event(&mut carol_ws).await;
        assert_ne!(event["type"], "comment.created", "leaked {event}");
        if event["type"] == "post.counters" {
            break;
        }
    }
}
