use std::time::Duration;

use serde_json::{json, Value};

use crate::helpers::{assert_problem, eventually, spawn_app, spawn_app_with, TestApp};
use crate::stream::follow;

/// Waits until every consumer has handled every recorded event.
async fn outbox_drained(app: &TestApp, what: &str) {
    eventually(what, || async {
        sqlx::query_scalar::<_, i64>("SELECT count(*) FROM domain_events")
            .fetch_one(&app.db)
            .await
            .unwrap()
            == 0
    })
    .await;
}

/// Makes `n` new users who follow `author_id`, straight in the database;
/// their ids, lowest first.
async fn add_followers(app: &TestApp, author_id: i64, n: i64) -> Vec<i64> {
    let mut ids: Vec<i64> = sqlx::query_scalar(
        "WITH crowd AS (
             INSERT INTO users (username, password_hash)
             SELECT 'crowd' || g, 'x' FROM generate_series(1, $1) g RETURNING id)
         INSERT INTO follows (follower_id, followee_id) SELECT id, $2 FROM crowd
         RETURNING follower_id",
    )
    .bind(n)
    .bind(author_id)
    .fetch_all(&app.db)
    .await
    .unwrap();
    ids.sort_unstable();
    ids
}

/// Locks `user_id`'s stream counter until the transaction ends, so the feed
/// supervisor's next append to that user's log waits on it.
async fn hold_stream_counter(
    app: &TestApp,
    user_id: i64,
) -> sqlx::Transaction<'static, sqlx::Postgres> {
    sqlx::query(
        "INSERT INTO user_event_seq (user_id, last_id) VALUES ($1, 0) ON CONFLICT DO NOTHING",
    )
    .bind(user_id)
    .execute(&app.db)
    .await
    .unwrap();
    let mut hold = app.db.begin().await.unwrap();
    sqlx::query("SELECT 1 FROM user_event_seq WHERE user_id = $1 FOR UPDATE")
        .bind(user_id)
        .execute(&mut *hold)
        .await
        .unwrap();
    hold
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
    let rows = app
        .count(
            "SELECT count(*) FROM timelines WHERE user_id = $1",
            alice.id,
        )
        .await;
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
    // Not only hidden on read: its timeline rows are gone.
    eventually("the deleted post's timeline rows removed", || async {
        app.count("SELECT count(*) FROM timelines WHERE post_id = $1", b2)
            .await
            == 0
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
async fn hard_deletes_of_posts_and_users_still_empty_timelines() {
    // Timelines have no per-row foreign keys (a fan-out paid a trigger call
    // and a row lock per follower); statement triggers on deletes cascade.
    let app = spawn_app().await;
    let alice = app.user("alice").await;
    let bob = app.user("bobby").await;
    let carol = app.user("carol").await;
    follow(&app, &alice.access, bob.id).await;
    follow(&app, &carol.access, bob.id).await;
    follow(&app, &bob.access, carol.id).await;
    let first = app.create_post(&bob.access, "one").await["id"]
        .as_i64()
        .unwrap();
    app.create_post(&bob.access, "two").await;
    app.create_post(&carol.access, "carol's").await;
    outbox_drained(&app, "the fan-outs").await;
    const BY_POST: &str = "SELECT count(*) FROM timelines WHERE post_id = $1";
    const BY_READER: &str = "SELECT count(*) FROM timelines WHERE user_id = $1";
    const BY_AUTHOR: &str = "SELECT count(*) FROM timelines WHERE author_id = $1";
    assert_eq!(app.count(BY_POST, first).await, 2);

    sqlx::query("DELETE FROM posts WHERE id = $1")
        .bind(first)
        .execute(&app.db)
        .await
        .unwrap();
    assert_eq!(app.count(BY_POST, first).await, 0);
    assert_eq!(
        app.count(BY_AUTHOR, bob.id).await,
        2,
        "bob's other post stays"
    );

    // Deleting bob takes his posts out of every timeline, and his own.
    assert_eq!(app.count(BY_READER, bob.id).await, 1);
    sqlx::query("DELETE FROM users WHERE id = $1")
        .bind(bob.id)
        .execute(&app.db)
        .await
        .unwrap();
    assert_eq!(app.count(BY_AUTHOR, bob.id).await, 0);
    assert_eq!(app.count(BY_READER, bob.id).await, 0);
    assert_eq!(app.count(BY_READER, alice.id).await, 0);
    assert_eq!(
        app.count(BY_AUTHOR, carol.id).await,
        0,
        "only bob read carol"
    );
}

#[actix_web::test]
async fn authors_over_the_fanout_limit_are_merged_on_read() {
    let app = spawn_app_with(|s| s.realtime.fanout_limit = 2).await;
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
    let written = app
        .count("SELECT count(*) FROM timelines WHERE post_id = $1", post)
        .await;
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
    outbox_drained(&app, "the outbox row to be cleaned up").await;
}

#[actix_web::test]
async fn a_post_reaches_followers_past_the_first_fan_out_chunk_exactly_once() {
    let app = spawn_app().await;
    let author = app.user("author").await;
    let n = rookery_actors::consumers::feed::FANOUT_CHUNK + 1;
    let fans = add_followers(&app, author.id, n).await;
    let keys = rookery::domain::accounts::JwtKeys::new(
        &crate::helpers::JWT_SECRET.into(),
        Duration::from_secs(900),
    );
    // The first follower is in the first chunk, the last one in the second.
    let (first, last) = (fans[0], fans[fans.len() - 1]);
    let token = |id| {
        keys.issue(id, rookery::domain::accounts::Role::User, 0)
            .unwrap()
            .0
    };
    let mut ws_first = crate::stream::connect(&app, &token(first), None).await;
    let mut ws_last = crate::stream::connect(&app, &token(last), None).await;

    let post = app.create_post(&author.access, "to every fan").await;
    for ws in [&mut ws_first, &mut ws_last] {
        let event = crate::stream::next_of_type(ws, "feed.post").await;
        assert_eq!(event["data"]["post_id"], post["id"]);
    }
    let post_id = post["id"].as_i64().unwrap();
    eventually("every follower's timeline", || async {
        app.count("SELECT count(*) FROM timelines WHERE post_id = $1", post_id)
            .await
            == n
    })
    .await;
    let (events, users): (i64, i64) = sqlx::query_as(
        "SELECT count(*), count(DISTINCT user_id) FROM user_events
         WHERE kind = 'feed.post' AND (data->>'post_id')::bigint = $1",
    )
    .bind(post_id)
    .fetch_one(&app.db)
    .await
    .unwrap();
    assert_eq!(
        (events, users),
        (n, n),
        "one event per follower, none twice"
    );
    outbox_drained(&app, "the fan-out steps to be cleaned up").await;
}

#[actix_web::test]
async fn a_supervisor_batch_cut_off_midway_is_retried_whole() {
    // The feed supervisor's connection dies in the middle of a batch (here:
    // while it waits for a lock the test holds). The batch rolls back and is
    // retried: the follower gets the post once, and nothing is left behind.
    let app = spawn_app().await;
    let alice = app.user("alice").await;
    let bob = app.user("bobby").await;
    follow(&app, &bob.access, alice.id).await;
    let mut ws = crate::stream::connect(&app, &bob.access, None).await;
    let hold = hold_stream_counter(&app, bob.id).await;

    let post = app.create_post(&alice.access, "held up").await;
    eventually(
        "the feed supervisor to wait on the lock, then be cut off",
        || async {
            sqlx::query_scalar::<_, bool>(
                "SELECT coalesce(bool_or(pg_terminate_backend(pid)), false) FROM pg_stat_activity
             WHERE datname = current_database() AND wait_event_type = 'Lock'
               AND query LIKE '%user_event_seq%'",
            )
            .fetch_one(&app.db)
            .await
            .unwrap()
        },
    )
    .await;
    hold.rollback().await.unwrap();

    let event = crate::stream::next_of_type(&mut ws, "feed.post").await;
    assert_eq!(event["data"]["post_id"], post["id"]);
    let second = app.create_post(&alice.access, "and then").await;
    let next = crate::stream::next_of_type(&mut ws, "feed.post").await;
    assert_eq!(next["data"]["post_id"], second["id"]);
    assert_eq!(
        next["id"].as_i64().unwrap(),
        event["id"].as_i64().unwrap() + 1,
        "the first post was logged once"
    );
    let logged: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM user_events WHERE user_id = $1 AND kind = 'feed.post'",
    )
    .bind(bob.id)
    .fetch_one(&app.db)
    .await
    .unwrap();
    assert_eq!(logged, 2);
}

/// The waits (in seconds) of the timeline writes recorded for `post`.
async fn timeline_write_waits(app: &TestApp, post: i64) -> Vec<f64> {
    sqlx::query_scalar(
        "SELECT extract(epoch FROM p.not_before - e.created_at)::float8
         FROM outbox_pending p JOIN domain_events e ON e.id = p.event_id
         WHERE e.payload->>'type' = 'timeline_write' AND (e.payload->>'post_id')::bigint = $1
           AND p.not_before IS NOT NULL",
    )
    .bind(post)
    .fetch_all(&app.db)
    .await
    .unwrap()
}

#[actix_web::test]
async fn a_large_fan_out_writes_timelines_after_a_wait_and_reads_the_state_then() {
    let app = spawn_app_with(|s| s.realtime.timeline_write_delay = Duration::from_secs(2)).await;
    let author = app.user("author").await;
    let fan = app.user("fan").await;
    follow(&app, &fan.access, author.id).await;
    let mut ws = crate::stream::connect(&app, &fan.access, None).await;

    // With one step's worth of followers, the rows are written at once: the
    // fan who reloads on the live event finds the post.
    let small = app.create_post(&author.access, "to one fan").await["id"]
        .as_i64()
        .unwrap();
    let live = crate::stream::next_of_type(&mut ws, "feed.post").await;
    assert_eq!(live["data"]["post_id"], small);
    // The step that told the fan also recorded the write, without a wait.
    assert!(timeline_write_waits(&app, small).await.is_empty());
    eventually("the one-step timeline write", || async {
        app.count("SELECT count(*) FROM timelines WHERE post_id = $1", small)
            .await
            == 1
    })
    .await;

    // One follower more than a step: the write waits its two seconds,
    // measured from the step that recorded it.
    add_followers(
        &app,
        author.id,
        rookery_actors::consumers::feed::FANOUT_CHUNK,
    )
    .await;
    let kept = app.create_post(&author.access, "kept").await["id"]
        .as_i64()
        .unwrap();
    let live = crate::stream::next_of_type(&mut ws, "feed.post").await;
    assert_eq!(live["data"]["post_id"], kept);
    eventually("the kept post's timeline write recorded", || async {
        !timeline_write_waits(&app, kept).await.is_empty()
    })
    .await;
    assert_eq!(timeline_write_waits(&app, kept).await, vec![2.0]);
    assert_eq!(
        app.count("SELECT count(*) FROM timelines WHERE post_id = $1", kept)
            .await,
        0,
        "told live, not yet written out"
    );

    // A post deleted during the wait is never written out: the write reads
    // the post when it runs, after the delete was handled.
    let gone = app.create_post(&author.access, "gone").await["id"]
        .as_i64()
        .unwrap();
    eventually("the gone post's timeline write recorded", || async {
        !timeline_write_waits(&app, gone).await.is_empty()
    })
    .await;
    assert_eq!(
        app.delete(&format!("/api/v1/posts/{gone}"), Some(&author.access))
            .await
            .status(),
        204
    );
    outbox_drained(&app, "both timeline writes, after their wait").await;
    assert_eq!(
        feed_ids(&app, &fan.access, "").await,
        vec![kept, small],
        "the kept post is in the fan's timeline, the deleted one is not"
    );
    assert_eq!(
        app.count("SELECT count(*) FROM timelines WHERE post_id = $1", kept)
            .await,
        rookery_actors::consumers::feed::FANOUT_CHUNK + 1
    );
    assert_eq!(
        app.count("SELECT count(*) FROM timelines WHERE post_id = $1", gone)
            .await,
        0
    );
}

/// The supervisor restarts counted by `/metrics`, by supervisor.
async fn supervisor_restarts(app: &TestApp) -> std::collections::HashMap<String, u64> {
    let text = app.get("/metrics", None).await.text().await.unwrap();
    text.lines()
        .filter_map(|line| line.strip_prefix("rookery_supervisor_restarts_total{supervisor=\""))
        .filter_map(|rest| rest.split_once("\"} "))
        .map(|(name, n)| (name.to_owned(), n.trim().parse().unwrap()))
        .collect()
}

#[actix_web::test]
async fn an_event_that_fails_is_skipped_and_the_next_one_handled() {
    let app = spawn_app().await;
    let alice = app.user("alice").await;
    let bob = app.user("bobby").await;
    let mut ws = crate::stream::connect(&app, &alice.access, None).await;

    // A follow of a user who does not exist: its notification breaks the
    // foreign key, an error no retry can mend. Alone in its batch, so it
    // fails the batch's transaction rather than a savepoint.
    sqlx::query(
        "WITH e AS (INSERT INTO domain_events (payload) VALUES ($1) RETURNING id)
         INSERT INTO outbox_pending (consumer, event_id) SELECT 'notifications', id FROM e",
    )
    .bind(json!({"type": "followed", "follower_id": bob.id, "followee_id": 1_i64 << 40}))
    .execute(&app.db)
    .await
    .unwrap();
    outbox_drained(&app, "the failing event is dropped").await;

    // The consumer goes on: the next follow reaches alice.
    follow(&app, &bob.access, alice.id).await;
    let event = crate::stream::next_of_type(&mut ws, "notification").await;
    assert_eq!(event["data"]["kind"], "follow");
    assert_eq!(event["data"]["actor_id"], bob.id);
    assert_eq!(event["data"]["unread_count"], 1);
    outbox_drained(&app, "the follow is handled by every consumer").await;
}

#[actix_web::test]
async fn a_stuck_supervisor_is_restarted_and_its_event_handled_once() {
    let app =
        spawn_app_with(|s| s.realtime.supervisor_batch_timeout = Duration::from_secs(1)).await;
    let author = app.user("author").await;
    let fan = app.user("fan").await;
    follow(&app, &fan.access, author.id).await;
    outbox_drained(&app, "the follow handled").await;
    let zero: std::collections::HashMap<String, u64> = ["moderation", "feed", "notifications"]
        .into_iter()
        .map(|name| (name.to_owned(), 0))
        .collect();
    assert_eq!(supervisor_restarts(&app).await, zero);

    // Holding the fan's stream counter makes the feed supervisor's fan-out
    // step wait, as a lost database connection or a stuck lock would.
    let hold = hold_stream_counter(&app, fan.id).await;
    let post = app.create_post(&author.access, "held up").await["id"]
        .as_i64()
        .unwrap();
    eventually("the stuck feed supervisor restarted", || async {
        supervisor_restarts(&app).await["feed"] >= 1
    })
    .await;
    let restarts = supervisor_restarts(&app).await;
    assert_eq!(
        (restarts["moderation"], restarts["notifications"]),
        (0, 0),
        "the other supervisors are not touched"
    );

    // Once the lock is gone, the event the stuck batch had claimed (and never
    // committed) is handled by the restarted supervisor, exactly once.
    hold.rollback().await.unwrap();
    outbox_drained(&app, "the held-up post handled").await;
    let told = sqlx::query_scalar::<_, i64>(
        "SELECT count(*) FROM user_events
         WHERE user_id = $1 AND kind = 'feed.post' AND (data->>'post_id')::bigint = $2",
    )
    .bind(fan.id)
    .bind(post)
    .fetch_one(&app.db)
    .await
    .unwrap();
    assert_eq!(told, 1, "the fan is told of the post once");
    assert_eq!(feed_ids(&app, &fan.access, "").await, vec![post]);
}
