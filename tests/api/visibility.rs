//! The visibility matrix: on every read path, content that is deleted,
//! hidden by moderation, by a suspended author, or across a block either way
//! is invisible to others; hidden content and content across a block stay
//! visible to its author.

use futures_util::SinkExt as _;
use serde_json::{json, Value};
use tokio_tungstenite::tungstenite::Message;

use crate::helpers::{eventually, spawn_app_with, TestApp, TestUser};
use crate::stream::{connect, next_event};

#[derive(Clone, Copy, Debug, PartialEq)]
enum Condition {
    Deleted,
    Hidden,
    Suspended,
    AuthorBlocksViewer,
    ViewerBlocksAuthor,
}

/// Alice's content, and the others' around it.
struct Scene {
    app: TestApp,
    alice: TestUser,
    bob: TestUser,
    bob_key: String,
    /// Alice's post, mentioning bob.
    post: i64,
    /// Carol's post, with carol's top comment, alice's comment on it, alice's
    /// reply to carol's comment and alice's reaction.
    carols_post: i64,
    carols_comment: i64,
    comment: i64,
    reply: i64,
}

async fn scene(condition: Condition) -> Scene {
    let app = spawn_app_with(|s| s.moderation.blocked_terms = vec!["scam".into()]).await;
    let alice = app.user("alice").await;
    let bob = app.user("bobby").await;
    let carol = app.user("carol").await;
    follow(&app, &bob, alice.id).await;
    let res = app
        .post(
            "/api/v1/me/api-keys",
            Some(&bob.access),
            &json!({"name": "web"}),
        )
        .await;
    let bob_key = res.json::<Value>().await.unwrap()["key"]
        .as_str()
        .unwrap()
        .to_owned();
    // Hidden content is hidden from the start: the analyzer sees it first.
    let extra = if condition == Condition::Hidden {
        " scam"
    } else {
        ""
    };
    let post = id(app
        .create_post(&alice.access, &format!("hello @bobby{extra}"))
        .await);
    let carols_post = id(app.create_post(&carol.access, "carol's thread").await);
    let carols_comment = comment(&app, &carol, carols_post, "first", None).await;
    let comment_id = comment(
        &app,
        &alice,
        carols_post,
        &format!("alice here{extra}"),
        None,
    )
    .await;
    let reply = comment(
        &app,
        &alice,
        carols_post,
        &format!("alice replies{extra}"),
        Some(carols_comment),
    )
    .await;
    let res = app
        .put(
            &format!("/api/v1/posts/{carols_post}/reactions"),
            Some(&alice.access),
            &json!({"kind": "love"}),
        )
        .await;
    assert_eq!(res.status(), 200);
    Scene {
        app,
        alice,
        bob,
        bob_key,
        post,
        carols_post,
        carols_comment,
        comment: comment_id,
        reply,
    }
}

fn id(v: Value) -> i64 {
    v["id"].as_i64().unwrap()
}

async fn follow(app: &TestApp, who: &TestUser, whom: i64) {
    let res = app
        .put(
            &format!("/api/v1/users/{whom}/follow"),
            Some(&who.access),
            &json!({}),
        )
        .await;
    assert_eq!(res.status(), 200);
}

async fn comment(app: &TestApp, who: &TestUser, post: i64, text: &str, parent: Option<i64>) -> i64 {
    let res = app
        .post(
            &format!("/api/v1/posts/{post}/comments"),
            Some(&who.access),
            &json!({"text": text, "parent_id": parent}),
        )
        .await;
    assert_eq!(res.status(), 201);
    id(res.json().await.unwrap())
}

async fn status(app: &TestApp, path: &str, token: &str) -> u16 {
    app.get(path, Some(token)).await.status().as_u16()
}

/// The ids in a list answer (`items`, or a 404 as nothing).
async fn ids(app: &TestApp, path: &str, token: &str) -> Vec<i64> {
    let res = app.get(path, Some(token)).await;
    if res.status() == 404 {
        return Vec::new();
    }
    assert_eq!(res.status(), 200, "{path}");
    let body: Value = res.json().await.unwrap();
    body["items"]
        .as_array()
        .unwrap_or_else(|| panic!("{path}: {body}"))
        .iter()
        .map(|item| {
            item["id"]
                .as_i64()
                .or_else(|| item["user_id"].as_i64())
                .unwrap_or(0)
        })
        .collect()
}

async fn reactor_ids(app: &TestApp, post: i64, token: &str) -> Vec<i64> {
    let body: Value = app
        .get(&format!("/api/v1/posts/{post}/reactions"), Some(token))
        .await
        .json()
        .await
        .unwrap();
    body["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["user"]["id"].as_i64().or(r["id"].as_i64()).unwrap_or(0))
        .collect()
}

async fn tweet_ids(app: &TestApp, key: &str) -> Vec<i64> {
    let res = app
        .client
        .get(app.url("/api/tweets"))
        .header("api-key", key)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let body: Value = res.json().await.unwrap();
    body["tweets"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["id"].as_i64().unwrap())
        .collect()
}

async fn notifications_from_alice(s: &Scene) -> usize {
    let body: Value = s
        .app
        .get("/api/v1/notifications", Some(&s.bob.access))
        .await
        .json()
        .await
        .unwrap();
    body["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|n| {
            n["actor"]["id"] == s.alice.id || n["actor_id"] == s.alice.id || n["post_id"] == s.post
        })
        .count()
}

/// Whether `token`'s user may subscribe to the post over the WebSocket.
async fn can_subscribe(app: &TestApp, token: &str, post: i64) -> bool {
    let mut ws = connect(app, token, None).await;
    ws.send(Message::text(
        json!({"type": "subscribe", "post_id": post}).to_string(),
    ))
    .await
    .unwrap();
    loop {
        let event = next_event(&mut ws).await;
        match event["type"].as_str() {
            Some("subscribed") => return true,
            Some("error") => return false,
            _ => continue,
        }
    }
}

/// Every read path, as `token`'s user: which of alice's things it shows.
#[derive(Debug, PartialEq)]
struct Seen {
    post_by_id: bool,
    in_author_posts: bool,
    in_feed_latest: bool,
    in_feed_popular: bool,
    history: bool,
    comment_by_id: bool,
    in_comments: bool,
    in_replies: bool,
    subscribe: bool,
}

async fn seen_by(s: &Scene, token: &str) -> Seen {
    let app = &s.app;
    Seen {
        post_by_id: status(app, &format!("/api/v1/posts/{}", s.post), token).await == 200,
        in_author_posts: ids(app, &format!("/api/v1/users/{}/posts", s.alice.id), token)
            .await
            .contains(&s.post),
        in_feed_latest: ids(app, "/api/v1/feed", token).await.contains(&s.post),
        in_feed_popular: ids(app, "/api/v1/feed?order=popular", token)
            .await
            .contains(&s.post),
        history: status(app, &format!("/api/v1/posts/{}/history", s.post), token).await == 200,
        comment_by_id: status(app, &format!("/api/v1/comments/{}", s.comment), token).await == 200,
        in_comments: ids(
            app,
            &format!("/api/v1/posts/{}/comments", s.carols_post),
            token,
        )
        .await
        .contains(&s.comment),
        in_replies: ids(
            app,
            &format!("/api/v1/comments/{}/replies", s.carols_comment),
            token,
        )
        .await
        .contains(&s.reply),
        subscribe: can_subscribe(app, token, s.post).await,
    }
}

const ALL: Seen = Seen {
    post_by_id: true,
    in_author_posts: true,
    in_feed_latest: true,
    in_feed_popular: true,
    history: true,
    comment_by_id: true,
    in_comments: true,
    in_replies: true,
    subscribe: true,
};

const NOTHING: Seen = Seen {
    post_by_id: false,
    in_author_posts: false,
    in_feed_latest: false,
    in_feed_popular: false,
    history: false,
    comment_by_id: false,
    in_comments: false,
    in_replies: false,
    subscribe: false,
};

async fn apply(s: &Scene, condition: Condition) {
    let app = &s.app;
    match condition {
        Condition::Deleted => {
            for path in [
                format!("/api/v1/posts/{}", s.post),
                format!("/api/v1/comments/{}", s.comment),
                format!("/api/v1/comments/{}", s.reply),
                format!("/api/v1/posts/{}/reactions", s.carols_post),
            ] {
                let res = app.delete(&path, Some(&s.alice.access)).await;
                assert!(res.status().is_success(), "{path}: {}", res.status());
            }
        }
        Condition::Hidden => {
            // The analyzer decides just after the write (until then a new
            // post is readable: issue 18 changes that).
            eventually("the analyzer to hide alice's post, comment and reply", || async {
                let hidden: i64 = sqlx::query_scalar(
                    "SELECT (SELECT count(*) FROM posts WHERE id = $1 AND hidden_at IS NOT NULL)
                          + (SELECT count(*) FROM comments WHERE id IN ($2, $3) AND hidden_at IS NOT NULL)",
                )
                .bind(s.post)
                .bind(s.comment)
                .bind(s.reply)
                .fetch_one(&app.db)
                .await
                .unwrap();
                hidden == 3
            })
            .await;
        }
        Condition::Suspended => {
            app.suspend(s.alice.id).await;
        }
        Condition::AuthorBlocksViewer | Condition::ViewerBlocksAuthor => {
            let (who, whom) = if condition == Condition::AuthorBlocksViewer {
                (&s.alice, s.bob.id)
            } else {
                (&s.bob, s.alice.id)
            };
            let res = app
                .put(
                    &format!("/api/v1/users/{whom}/block"),
                    Some(&who.access),
                    &json!({}),
                )
                .await;
            assert!(res.status().is_success());
        }
    }
}

async fn matrix(condition: Condition) {
    let s = scene(condition).await;
    let app = &s.app;
    if condition != Condition::Hidden {
        // Before: bob sees all of it (so what follows can fail).
        eventually(
            "alice's post in bob's feed and his notifications",
            || async {
                ids(app, "/api/v1/feed", &s.bob.access)
                    .await
                    .contains(&s.post)
                    && notifications_from_alice(&s).await > 0
            },
        )
        .await;
        assert_eq!(
            seen_by(&s, &s.bob.access).await,
            ALL,
            "{condition:?}: before"
        );
        assert!(reactor_ids(app, s.carols_post, &s.bob.access)
            .await
            .contains(&s.alice.id));
        assert!(tweet_ids(app, &s.bob_key).await.contains(&s.post));
    }
    apply(&s, condition).await;

    assert_eq!(
        seen_by(&s, &s.bob.access).await,
        NOTHING,
        "{condition:?}: bob"
    );
    // A reaction has no text to hide: moderation leaves it alone.
    if condition != Condition::Hidden {
        assert!(
            !reactor_ids(app, s.carols_post, &s.bob.access)
                .await
                .contains(&s.alice.id),
            "{condition:?}: reactions"
        );
    }
    assert!(
        !tweet_ids(app, &s.bob_key).await.contains(&s.post),
        "{condition:?}: microblog feed"
    );
    assert_eq!(
        notifications_from_alice(&s).await,
        0,
        "{condition:?}: notifications"
    );

    // Hidden content, and content across a block, stay the author's to see.
    if matches!(
        condition,
        Condition::Hidden | Condition::AuthorBlocksViewer | Condition::ViewerBlocksAuthor
    ) {
        let mine = seen_by(&s, &s.alice.access).await;
        assert!(
            mine.post_by_id && mine.in_author_posts && mine.in_feed_latest,
            "{condition:?}: {mine:?}"
        );
        assert!(
            mine.history && mine.comment_by_id && mine.in_comments && mine.in_replies,
            "{condition:?}: {mine:?}"
        );
        assert!(mine.subscribe, "{condition:?}: {mine:?}");
    }
}

#[actix_web::test]
async fn deleted_content_is_gone_from_every_read_path() {
    matrix(Condition::Deleted).await;
}

#[actix_web::test]
async fn hidden_content_is_shown_to_its_author_only() {
    matrix(Condition::Hidden).await;
}

#[actix_web::test]
async fn a_suspended_authors_content_is_invisible() {
    matrix(Condition::Suspended).await;
}

#[actix_web::test]
async fn an_authors_block_hides_their_content_from_the_blocked() {
    matrix(Condition::AuthorBlocksViewer).await;
}

#[actix_web::test]
async fn a_viewers_block_hides_the_blocked_authors_content() {
    matrix(Condition::ViewerBlocksAuthor).await;
}

/// A post's mentions follow the rule for users: someone across a block from
/// the viewer, or no longer active, is left out of the list, as their
/// profile is (the post itself stays).
#[actix_web::test]
async fn mentions_leave_out_users_the_viewer_may_not_see() {
    let app = spawn_app_with(|_| {}).await;
    let alice = app.user("alice").await;
    let bob = app.user("bobby").await;
    let carol = app.user("carol").await;
    let dave = app.user("dave").await;
    let post = id(app
        .create_post(&carol.access, "hello @alice and @dave")
        .await);
    let mentioned = |token: String| {
        let app = &app;
        async move {
            let res = app
                .get(&format!("/api/v1/posts/{post}"), Some(&token))
                .await;
            assert_eq!(res.status(), 200);
            let post: Value = res.json().await.unwrap();
            let mut names: Vec<String> = post["mentions"]
                .as_array()
                .unwrap()
                .iter()
                .map(|m| m["username"].as_str().unwrap().to_owned())
                .collect();
            names.sort();
            names
        }
    };
    assert_eq!(mentioned(bob.access.clone()).await, ["alice", "dave"]);

    // Alice blocks bob: bob no longer sees her in the list; carol still does.
    let res = app
        .put(
            &format!("/api/v1/users/{}/block", bob.id),
            Some(&alice.access),
            &json!({}),
        )
        .await;
    assert!(res.status().is_success());
    assert_eq!(mentioned(bob.access.clone()).await, ["dave"]);
    assert_eq!(mentioned(carol.access.clone()).await, ["alice", "dave"]);

    // Dave is suspended: nobody sees him there.
    app.suspend(dave.id).await;
    assert_eq!(mentioned(carol.access.clone()).await, ["alice"]);
    assert_eq!(mentioned(bob.access.clone()).await, Vec::<String>::new());
}
