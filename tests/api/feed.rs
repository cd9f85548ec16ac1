use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::helpers::{assert_problem, spawn_app, spawn_app_with, TestApp};

/// Fan-out happens in the background: wait (boundedly) until `check` holds.
async fn eventually<F, Fut>(what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let started = Instant::now();
    while !check().await {
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "timed out waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn feed_ids(app: &TestApp, token: &str, query: &str) -> Vec<i64> {
    let page: Value = app
        .get(&format!("/api/v1/feed?{query}"), Some(token))
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

async fn follow(app: &TestApp, token: &str, id: i64) {
    assert_eq!(
        app.put(
            &format!("/api/v1/users/{id}/follow"),
            Some(token),
            &json!({})
        )
        .await
        .status(),
        200
    );
}

#[actix_web::test]
async fn the_feed_holds_followed_and_own_posts_newest_first() {
    let app = spawn_app().await;
    let alice = app.user("alice").await;
    let bob = app.user("bobby").await;
    let carol = app.user("carol").await;
    follow(&app, &alice.access, bob.id).await;
    let b1 = app.create_post(&bob.access, "bob one").await["id"]
        .as_i64()
        .unwrap();
    let c1 = app.create_post(&carol.access, "carol, unfollowed").await["id"]
        .as_i64()
        .unwrap();
    let a1 = app.create_post(&alice.access, "alice herself").await["id"]
        .as_i64()
        .unwrap();
    let b2 = app.create_post(&bob.access, "bob two").await["id"]
        .as_i64()
        .unwrap();

    eventually("bob's posts in alice's timeline", || async {
        feed_ids(&app, &alice.access, "").await == vec![b2, a1, b1]
    })
    .await;
    assert!(!feed_ids(&app, &alice.access, "").await.contains(&c1));
    let rows: i64 = sqlx::query_scalar("SELECT count(*) FROM timelines WHERE user_id = $1")
        .bind(alice.id)
        .fetch_one(&app.db)
        .await
        .unwrap();
    assert_eq!(rows, 2, "bob's posts were written out to alice's timeline");

    // Unfollowing takes bob's posts out at once; deleting takes a post out.
    assert_eq!(
        app.delete(
            &format!("/api/v1/users/{}/follow", bob.id),
            Some(&alice.access)
        )
        .await
        .status(),
        204
    );
    assert_eq!(feed_ids(&app, &alice.access, "").await, vec![a1]);
    follow(&app, &alice.access, bob.id).await;
    eventually("backfill after following again", || async {
        feed_ids(&app, &alice.access, "").await == vec![b2, a1, b1]
    })
    .await;
    app.delete(&format!("/api/v1/posts/{b2}"), Some(&bob.access))
        .await;
    // The supervisor may still be replaying the unfollow and the new follow.
    eventually("the deleted post gone", || async {
        feed_ids(&app, &alice.access, "").await == vec![a1, b1]
    })
    .await;

    // A block hides the other's posts both ways.
    app.put(
        &format!("/api/v1/users/{}/block", alice.id),
        Some(&bob.access),
        &json!({}),
    )
    .await;
    assert_eq!(feed_ids(&app, &alice.access, "").await, vec![a1]);

    assert_problem(app.get("/api/v1/feed", None).await, 401).await;
    assert_problem(
        app.get("/api/v1/feed?order=random", Some(&alice.access))
            .await,
        400,
    )
    .await;
    assert_problem(
        app.get("/api/v1/feed?cursor=zzz", Some(&alice.access))
            .await,
        400,
    )
    .await;
}

#[actix_web::test]
async fn authors_over_the_fanout_limit_are_merged_on_read() {
    let app = spawn_app_with(|s| s.fanout_limit = 2).await;
    let star = app.user("star").await;
    let fans = app.bulk_users("fan", 3).await;
    for fan in &fans {
        follow(&app, &fan.access, star.id).await;
    }
    let post = app.create_post(&star.access, "to the masses").await["id"]
        .as_i64()
        .unwrap();
    eventually("the star marked as pulled", || async {
        sqlx::query_scalar::<_, bool>(
            "SELECT EXISTS (SELECT 1 FROM feed_pull_authors WHERE user_id = $1)",
        )
        .bind(star.id)
        .fetch_one(&app.db)
        .await
        .unwrap()
    })
    .await;
    let written: i64 = sqlx::query_scalar("SELECT count(*) FROM timelines WHERE post_id = $1")
        .bind(post)
        .fetch_one(&app.db)
        .await
        .unwrap();
    assert_eq!(written, 0, "no fan-out for an author over the limit");
    for fan in &fans {
        assert_eq!(feed_ids(&app, &fan.access, "").await, vec![post]);
    }
}

#[actix_web::test]
async fn popular_orders_by_reactions_then_recency_and_pages_walk_cleanly() {
    let app = spawn_app().await;
    let alice = app.user("alice").await;
    let bob = app.user("bobby").await;
    follow(&app, &alice.access, bob.id).await;
    let likers = app.bulk_users("liker", 3).await;
    let mut ids = Vec::new();
    for i in 0..7 {
        ids.push(
            app.create_post(&bob.access, &format!("post {i}")).await["id"]
                .as_i64()
                .unwrap(),
        );
    }
    // ids[2] gets 3 likes, ids[5] gets 1.
    for liker in &likers {
        app.put(
            &format!("/api/v1/posts/{}/reactions", ids[2]),
            Some(&liker.access),
            &json!({"kind": "like"}),
        )
        .await;
    }
    app.put(
        &format!("/api/v1/posts/{}/reactions", ids[5]),
        Some(&likers[0].access),
        &json!({"kind": "wow"}),
    )
    .await;
    eventually("fan-out", || async {
        feed_ids(&app, &alice.access, "").await.len() == 7
    })
    .await;

    let mut expected = vec![ids[2], ids[5]];
    expected.extend(
        ids.iter()
            .rev()
            .filter(|id| **id != ids[2] && **id != ids[5]),
    );
    let mut seen = Vec::new();
    let mut cursor = String::new();
    loop {
        let page: Value = app
            .get(
                &format!("/api/v1/feed?order=popular&limit=3&cursor={cursor}"),
                Some(&alice.access),
            )
            .await
            .json()
            .await
            .unwrap();
        seen.extend(
            page["items"]
                .as_array()
                .unwrap()
                .iter()
                .map(|p| p["id"].as_i64().unwrap()),
        );
        match page["next_cursor"].as_str() {
            Some(c) => cursor = c.to_owned(),
            None => break,
        }
    }
    assert_eq!(seen, expected);

    let mut latest = Vec::new();
    let mut cursor = String::new();
    loop {
        let page: Value = app
            .get(
                &format!("/api/v1/feed?limit=3&cursor={cursor}"),
                Some(&alice.access),
            )
            .await
            .json()
            .await
            .unwrap();
        latest.extend(
            page["items"]
                .as_array()
                .unwrap()
                .iter()
                .map(|p| p["id"].as_i64().unwrap()),
        );
        app.create_post(&bob.access, "arrives while paging").await;
        match page["next_cursor"].as_str() {
            Some(c) => cursor = c.to_owned(),
            None => break,
        }
    }
    let mut newest_first = ids.clone();
    newest_first.reverse();
    assert_eq!(latest, newest_first);
}

#[actix_web::test]
async fn notifications_are_made_collapsed_counted_and_read() {
    let app = spawn_app().await;
    let alice = app.user("alice").await;
    let bob = app.user("bobby").await;
    follow(&app, &bob.access, alice.id).await;
    let post = app.create_post(&alice.access, "hello").await["id"]
        .as_i64()
        .unwrap();
    let reactions = format!("/api/v1/posts/{post}/reactions");
    // Like, unlike, like again: one notification.
    app.put(&reactions, Some(&bob.access), &json!({"kind": "like"}))
        .await;
    app.delete(&reactions, Some(&bob.access)).await;
    app.put(&reactions, Some(&bob.access), &json!({"kind": "like"}))
        .await;
    let comment: Value = app
        .post(
            &format!("/api/v1/posts/{post}/comments"),
            Some(&bob.access),
            &json!({"text": "hi @alice"}),
        )
        .await
        .json()
        .await
        .unwrap();
    app.post(
        &format!("/api/v1/posts/{post}/comments"),
        Some(&alice.access),
        &json!({"text": "thanks", "parent_id": comment["id"]}),
    )
    .await;
    app.create_post(&bob.access, "shout-out to @alice").await;

    let unread = || async {
        let v: Value = app
            .get("/api/v1/notifications/unread-count", Some(&alice.access))
            .await
            .json()
            .await
            .unwrap();
        v["unread"].as_i64().unwrap()
    };
    eventually("alice's four notifications", || async {
        unread().await == 4
    })
    .await;
    let page: Value = app
        .get("/api/v1/notifications", Some(&alice.access))
        .await
        .json()
        .await
        .unwrap();
    let kinds: Vec<&str> = page["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n["kind"].as_str().unwrap())
        .collect();
    assert_eq!(kinds, vec!["mention", "comment", "reaction", "follow"]);
    for n in page["items"].as_array().unwrap() {
        assert_eq!(n["actor"]["username"], "bobby");
        assert_eq!(n["read"], false);
    }
    assert_eq!(page["items"][2]["data"]["reaction"], "like");
    eventually("bob's reply notification", || async {
        let v: Value = app
            .get("/api/v1/notifications", Some(&bob.access))
            .await
            .json()
            .await
            .unwrap();
        v["items"]
            .as_array()
            .unwrap()
            .iter()
            .any(|n| n["kind"] == "reply")
    })
    .await;

    let first = page["items"][0]["id"].as_i64().unwrap();
    let res: Value = app
        .post(
            "/api/v1/notifications/read",
            Some(&alice.access),
            &json!({"ids": [first]}),
        )
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(res["unread"], 3);
    let unread_page: Value = app
        .get(
            "/api/v1/notifications?unread_only=true",
            Some(&alice.access),
        )
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(unread_page["items"].as_array().unwrap().len(), 3);
    let res: Value = app
        .post(
            "/api/v1/notifications/read",
            Some(&alice.access),
            &json!({"all": true}),
        )
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(res["unread"], 0);
    assert_problem(
        app.post(
            "/api/v1/notifications/read",
            Some(&alice.access),
            &json!({}),
        )
        .await,
        422,
    )
    .await;
    assert_problem(app.get("/api/v1/notifications", None).await, 401).await;
}

#[actix_web::test]
async fn committed_events_are_handled_even_without_a_poke() {
    // An event another node committed (or one left behind by a crash) is
    // picked up by polling: nothing that was persisted is lost.
    let app = spawn_app().await;
    let alice = app.user("alice").await;
    let bob = app.user("bobby").await;
    sqlx::query("INSERT INTO follows (follower_id, followee_id) VALUES ($1, $2)")
        .bind(bob.id)
        .bind(alice.id)
        .execute(&app.db)
        .await
        .unwrap();
    // Written as another node would: the event with its pending consumers.
    let mut tx = app.db.begin().await.unwrap();
    rookery_actors::outbox::record(
        &mut tx,
        &rookery_actors::DomainEvent::Followed {
            follower_id: bob.id,
            followee_id: alice.id,
        },
    )
    .await
    .unwrap();
    tx.commit().await.unwrap();
    eventually("the follow notification", || async {
        let v: Value = app
            .get("/api/v1/notifications", Some(&alice.access))
            .await
            .json()
            .await
            .unwrap();
        v["items"].as_array().unwrap().len() == 1
    })
    .await;
    eventually("the outbox row to be cleaned up", || async {
        sqlx::query_scalar::<_, i64>("SELECT count(*) FROM domain_events")
            .fetch_one(&app.db)
            .await
            .unwrap()
            == 0
    })
    .await;
}
