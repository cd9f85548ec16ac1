//! Live delivery for large accounts: an author with more followers than the
//! fan-out limit is merged into timelines on read, and the followers online
//! when they post are told live all the same (logged for them, so it
//! replays); the others find the post in their feed.

use futures_util::SinkExt as _;
use rookery_actors::delivery::registry::OnlineCount;
use serde_json::{json, Value};
use tokio_tungstenite::tungstenite::Message;

use crate::helpers::{eventually, spawn_app_with, TestApp, TestUser};
use crate::stream::{connect, follow, next_event, next_of_type, Ws};

/// An author pulled from the first post on: three followers, limit two.
async fn pulled_app() -> TestApp {
    spawn_app_with(|s| {
        s.realtime.fanout_limit = 2;
        s.moderation.blocked_terms = vec!["scam".into()];
    })
    .await
}

/// The author and `n` followers of theirs.
async fn star_and_fans(app: &TestApp, n: usize) -> (TestUser, Vec<TestUser>) {
    let star = app.user("star").await;
    let fans = app.bulk_users("fan", n).await;
    for fan in &fans {
        follow(app, &fan.access, star.id).await;
    }
    (star, fans)
}

async fn post(app: &TestApp, token: &str, text: &str) -> i64 {
    app.create_post(token, text).await["id"].as_i64().unwrap()
}

async fn feed_ids(app: &TestApp, token: &str) -> Vec<i64> {
    let page: Value = app
        .get("/api/v1/feed", Some(token))
        .await
        .json()
        .await
        .unwrap();
    page["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["id"].as_i64().unwrap())
        .collect()
}

/// The next `feed.post`, within 15 s (heartbeat pings would keep a bare
/// `next_of_type` waiting forever when nothing comes).
pub async fn next_feed_post(ws: &mut Ws) -> Value {
    tokio::time::timeout(
        std::time::Duration::from_secs(15),
        next_of_type(ws, "feed.post"),
    )
    .await
    .expect("a feed.post within 15 s")
}

/// Asserts that no `feed.post` reached `ws` before a ping's pong. Callers
/// first wait for a follower logged in the same statement to get the post,
/// so a leak would already be queued ahead of the pong.
async fn no_feed_post_before_pong(ws: &mut Ws) {
    ws.send(Message::text(r#"{"type":"ping"}"#)).await.unwrap();
    loop {
        let event = next_event(ws).await;
        assert_ne!(event["type"], "feed.post", "unexpected {event}");
        if event["type"] == "pong" {
            return;
        }
    }
}

async fn logged_feed_posts(app: &TestApp, user_id: i64) -> i64 {
    app.count(
        "SELECT count(*) FROM user_events WHERE user_id = $1 AND kind = 'feed.post'",
        user_id,
    )
    .await
}

#[actix_web::test]
async fn a_pulled_authors_post_reaches_online_followers_live_and_offline_ones_through_the_feed() {
    let app = pulled_app().await;
    let (star, fans) = star_and_fans(&app, 3).await;
    let stranger = app.user("stranger").await;
    let mut online = connect(&app, &fans[0].access, None).await;
    let mut also_online = connect(&app, &fans[1].access, None).await;
    let mut not_following = connect(&app, &stranger.access, None).await;

    let first = post(&app, &star.access, "to the masses").await;
    let mut seen = 0;
    for ws in [&mut online, &mut also_online] {
        let event = next_feed_post(ws).await;
        assert_eq!(event["data"]["post_id"], first);
        assert_eq!(event["data"]["author"]["id"], star.id);
        assert_eq!(event["data"]["text"], "to the masses");
        seen = event["id"].as_i64().expect("a logged event has an id");
    }
    assert_eq!(
        app.count(
            "SELECT count(*) FROM feed_pull_authors WHERE user_id = $1",
            star.id
        )
        .await,
        1,
        "the author is merged on read"
    );
    assert_eq!(
        app.count("SELECT count(*) FROM timelines WHERE post_id = $1", first)
            .await,
        0,
        "no timeline rows written"
    );
    no_feed_post_before_pong(&mut not_following).await;

    // The follower who was offline connects: nothing live, nothing logged,
    // and the post is in the feed.
    let mut late = connect(&app, &fans[2].access, None).await;
    no_feed_post_before_pong(&mut late).await;
    assert_eq!(logged_feed_posts(&app, fans[2].id).await, 0);
    assert_eq!(feed_ids(&app, &fans[2].access).await, vec![first]);

    // A follower who was online replays it on reconnect. A post made while
    // they were away is not logged for them: it is in the feed.
    drop(online);
    eventually("the follower's session to stop", || async {
        app.engine.registry().send(OnlineCount).await.unwrap() == 3
    })
    .await;
    let second = post(&app, &star.access, "while you were away").await;
    assert_eq!(
        next_feed_post(&mut also_online).await["data"]["post_id"],
        second
    );
    let mut back = connect(&app, &fans[0].access, Some(seen - 1)).await;
    let replayed = next_feed_post(&mut back).await;
    assert_eq!(replayed["id"].as_i64(), Some(seen));
    assert_eq!(replayed["data"]["post_id"], first);
    no_feed_post_before_pong(&mut back).await;
    assert_eq!(logged_feed_posts(&app, fans[0].id).await, 1);
    assert_eq!(feed_ids(&app, &fans[0].access).await, vec![second, first]);
}

#[actix_web::test]
async fn hidden_posts_and_blocked_followers_get_nothing_live() {
    let app = pulled_app().await;
    let (star, fans) = star_and_fans(&app, 4).await;
    // The author blocks a follower: the follow is gone both ways.
    let res = app
        .put(
            &format!("/api/v1/users/{}/block", fans[1].id),
            Some(&star.access),
            &json!({}),
        )
        .await;
    assert!(res.status().is_success());
    let mut follower = connect(&app, &fans[0].access, None).await;
    let mut blocked = connect(&app, &fans[1].access, None).await;

    // Moderation hides the first post before the feed supervisor sees it.
    let hidden = post(&app, &star.access, "an easy scam for you").await;
    let clean = post(&app, &star.access, "a clean one").await;
    let event = next_feed_post(&mut follower).await;
    assert_eq!(
        event["data"]["post_id"], clean,
        "the hidden post {hidden} came first"
    );
    no_feed_post_before_pong(&mut follower).await;
    no_feed_post_before_pong(&mut blocked).await;
    assert_eq!(logged_feed_posts(&app, fans[1].id).await, 0);
    assert_eq!(feed_ids(&app, &fans[0].access).await, vec![clean]);
}
