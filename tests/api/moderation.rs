//! The moderation supervisor end to end: hidden content, its author told,
//! nobody else shown it, and an edit that passes the rules restoring it.

use serde_json::{json, Value};

use crate::helpers::{spawn_app_with, TestApp};
use crate::stream::{connect, follow, next_of_type, Ws};

async fn moderated_app() -> TestApp {
    spawn_app_with(|s| {
        s.moderation.blocked_terms = vec!["scam".into(), "crypto giveaway".into()];
        s.moderation.max_links = 2;
    })
    .await
}

async fn status(app: &TestApp, path: &str, token: Option<&str>) -> u16 {
    app.get(path, token).await.status().as_u16()
}

async fn json_at(app: &TestApp, path: &str, token: Option<&str>) -> Value {
    let res = app.get(path, token).await;
    assert_eq!(res.status(), 200, "{path}");
    res.json().await.unwrap()
}

fn ids(page: &Value) -> Vec<i64> {
    page["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["id"].as_i64().unwrap())
        .collect()
}

async fn moderation_event(ws: &mut Ws) -> Value {
    next_of_type(ws, "moderation").await["data"].clone()
}

#[actix_web::test]
async fn a_post_with_a_blocked_term_is_hidden_from_others_and_its_author_is_told() {
    let app = moderated_app().await;
    let alice = app.user("alice").await;
    let bob = app.user("bobby").await;
    let carol = app.user("carol").await;
    follow(&app, &bob.access, alice.id).await;
    let mut alice_ws = connect(&app, &alice.access, None).await;
    let mut bob_ws = connect(&app, &bob.access, None).await;

    // Dodging the list with diacritics, a digit and stretched letters does not help.
    let bad = app
        .create_post(&alice.access, "Best Ŝc4aaam ever, ask @carol")
        .await;
    let bad_id = bad["id"].as_i64().unwrap();
    let told = moderation_event(&mut alice_ws).await;
    assert_eq!(told["subject"], "post");
    assert_eq!(told["subject_id"], bad_id);
    assert_eq!(told["action"], "hidden");
    assert!(told["reason"].as_str().unwrap().contains("scam"), "{told}");

    // The next post is fine: it is the first thing bob's feed stream shows,
    // so the hidden one never reached him.
    let good = app.create_post(&alice.access, "a perfectly nice day").await;
    let pushed = next_of_type(&mut bob_ws, "feed.post").await;
    assert_eq!(pushed["data"]["post_id"], good["id"]);

    let path = format!("/api/v1/posts/{bad_id}");
    assert_eq!(status(&app, &path, Some(&bob.access)).await, 404);
    assert_eq!(status(&app, &path, None).await, 404);
    let own = json_at(&app, &path, Some(&alice.access)).await;
    assert!(own["hidden_reason"].as_str().unwrap().contains("scam"));
    let visible = json_at(
        &app,
        &format!("/api/v1/posts/{}", good["id"]),
        Some(&bob.access),
    )
    .await;
    assert!(visible["hidden_reason"].is_null());

    let good_id = good["id"].as_i64().unwrap();
    let bobs_feed = json_at(&app, "/api/v1/feed", Some(&bob.access)).await;
    assert_eq!(ids(&bobs_feed), vec![good_id]);
    let alices_feed = json_at(&app, "/api/v1/feed", Some(&alice.access)).await;
    assert_eq!(ids(&alices_feed), vec![good_id, bad_id]);
    let listed = json_at(&app, &format!("/api/v1/users/{}/posts", alice.id), None).await;
    assert_eq!(ids(&listed), vec![good_id]);
    let profile = json_at(&app, "/api/v1/users/alice", None).await;
    assert_eq!(profile["posts_count"], 1);

    // Nobody may comment on or react to what they cannot see.
    let res = app
        .post(
            &format!("{path}/comments"),
            Some(&bob.access),
            &json!({"text": "hm"}),
        )
        .await;
    assert_eq!(res.status(), 404);

    // The author has a moderation notification; carol's mention was never sent.
    let notes = json_at(&app, "/api/v1/notifications", Some(&alice.access)).await;
    let kinds: Vec<&str> = notes["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n["kind"].as_str().unwrap())
        .collect();
    assert!(kinds.contains(&"moderation"), "{notes}");
    let carols = json_at(&app, "/api/v1/notifications", Some(&carol.access)).await;
    assert_eq!(carols["items"], json!([]), "{carols}");

    // An edit that passes the rules brings it back, and the author is told.
    let res = app
        .patch(
            &path,
            Some(&alice.access),
            &json!({"text": "best deal ever"}),
        )
        .await;
    assert_eq!(res.status(), 200);
    let told = moderation_event(&mut alice_ws).await;
    assert_eq!(told["action"], "restored");
    assert_eq!(told["subject_id"], bad_id);
    let seen = json_at(&app, &path, Some(&bob.access)).await;
    assert_eq!(seen["text"], "best deal ever");
    assert!(seen["hidden_reason"].is_null());

    // And an edit that breaks them hides it again.
    let res = app
        .patch(
            &path,
            Some(&alice.access),
            &json!({"text": "huge CRYPTO    giveaway"}),
        )
        .await;
    assert_eq!(res.status(), 200);
    let told = moderation_event(&mut alice_ws).await;
    assert_eq!(told["action"], "hidden");
    assert_eq!(status(&app, &path, Some(&bob.access)).await, 404);
}

#[actix_web::test]
async fn comments_with_too_many_links_are_hidden_and_not_notified() {
    let app = moderated_app().await;
    let alice = app.user("alice").await;
    let bob = app.user("bobby").await;
    let post = app.create_post(&alice.access, "tell me your sites").await;
    let comments = format!("/api/v1/posts/{}/comments", post["id"]);
    let mut bob_ws = connect(&app, &bob.access, None).await;

    let res = app
        .post(
            &comments,
            Some(&bob.access),
            &json!({"text": "http://a.example https://b.example www.c.example"}),
        )
        .await;
    assert_eq!(res.status(), 201, "the write itself never waits");
    let spam: Value = res.json().await.unwrap();
    let told = moderation_event(&mut bob_ws).await;
    assert_eq!(told["subject"], "comment");
    assert_eq!(told["subject_id"], spam["id"]);
    assert!(told["reason"].as_str().unwrap().contains("links"), "{told}");

    // A fine comment after it: alice is notified of that one only.
    let res = app
        .post(
            &comments,
            Some(&bob.access),
            &json!({"text": "mine is http://bob.example"}),
        )
        .await;
    let fine: Value = res.json().await.unwrap();
    let mut notified = Vec::new();
    for _ in 0..100 {
        let notes = json_at(&app, "/api/v1/notifications", Some(&alice.access)).await;
        notified = notes["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|n| n["comment_id"].as_i64().unwrap())
            .collect();
        if !notified.is_empty() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert_eq!(notified, vec![fine["id"].as_i64().unwrap()]);

    let as_alice = json_at(&app, &comments, Some(&alice.access)).await;
    assert_eq!(ids(&as_alice), vec![fine["id"].as_i64().unwrap()]);
    let as_bob = json_at(&app, &comments, Some(&bob.access)).await;
    assert_eq!(ids(&as_bob).len(), 2);
    let spam_path = format!("/api/v1/comments/{}", spam["id"]);
    assert_eq!(status(&app, &spam_path, Some(&alice.access)).await, 404);
    let own = json_at(&app, &spam_path, Some(&bob.access)).await;
    assert!(own["hidden_reason"].as_str().unwrap().contains("links"));

    // The decisions are on record.
    let decisions: Vec<(String, i64, String)> = sqlx::query_as(
        "SELECT subject_type, subject_id, action FROM moderation_decisions ORDER BY id",
    )
    .fetch_all(&app.db)
    .await
    .unwrap();
    assert_eq!(
        decisions,
        vec![(
            "comment".to_owned(),
            spam["id"].as_i64().unwrap(),
            "hide".to_owned()
        )]
    );
}
