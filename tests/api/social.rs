use serde_json::{json, Value};

use crate::helpers::{assert_problem, spawn_app};

#[actix_web::test]
async fn follow_and_unfollow_are_idempotent_and_counted() {
    let app = spawn_app().await;
    let alice = app.user("alice").await;
    let bob = app.user("bobby").await;

    for _ in 0..2 {
        let res = app
            .put(
                &format!("/api/v1/users/{}/follow", bob.id),
                Some(&alice.access),
                &json!({}),
            )
            .await;
        assert_eq!(res.status(), 200);
        let profile: Value = res.json().await.unwrap();
        assert_eq!(profile["followers_count"], 1);
        assert_eq!(profile["followed_by_me"], true);
        assert_eq!(profile["follows_me"], false);
    }
    let bob_seen_by_alice: Value = app
        .get("/api/v1/users/bobby", Some(&alice.access))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(bob_seen_by_alice["followed_by_me"], true);
    let alice_seen_by_bob: Value = app
        .get("/api/v1/users/alice", Some(&bob.access))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(alice_seen_by_bob["follows_me"], true);
    assert_eq!(alice_seen_by_bob["following_count"], 1);
    let anonymous: Value = app
        .get("/api/v1/users/alice", None)
        .await
        .json()
        .await
        .unwrap();
    assert!(anonymous.get("followed_by_me").is_none());

    let followers: Value = app
        .get(&format!("/api/v1/users/{}/followers", bob.id), None)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(followers["items"][0]["username"], "alice");
    let following: Value = app
        .get(&format!("/api/v1/users/{}/following", alice.id), None)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(following["items"][0]["username"], "bobby");

    for _ in 0..2 {
        let res = app
            .delete(
                &format!("/api/v1/users/{}/follow", bob.id),
                Some(&alice.access),
            )
            .await;
        assert_eq!(res.status(), 204);
    }
    let bob_profile: Value = app
        .get("/api/v1/users/bobby", None)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(bob_profile["followers_count"], 0);
}

#[actix_web::test]
async fn following_yourself_or_nobody_fails() {
    let app = spawn_app().await;
    let alice = app.user("alice").await;
    let res = app
        .put(
            &format!("/api/v1/users/{}/follow", alice.id),
            Some(&alice.access),
            &json!({}),
        )
        .await;
    assert_problem(res, 422).await;
    assert_problem(
        app.put(
            "/api/v1/users/999999/follow",
            Some(&alice.access),
            &json!({}),
        )
        .await,
        404,
    )
    .await;
    assert_problem(
        app.put("/api/v1/users/abc/follow", Some(&alice.access), &json!({}))
            .await,
        404,
    )
    .await;
    assert_problem(
        app.put("/api/v1/users/1/follow", None, &json!({})).await,
        401,
    )
    .await;
}

#[actix_web::test]
async fn a_block_removes_follows_and_hides_both_users_from_each_other() {
    let app = spawn_app().await;
    let alice = app.user("alice").await;
    let bob = app.user("bobby").await;
    let carol = app.user("carol").await;
    app.put(
        &format!("/api/v1/users/{}/follow", bob.id),
        Some(&alice.access),
        &json!({}),
    )
    .await;
    app.put(
        &format!("/api/v1/users/{}/follow", alice.id),
        Some(&bob.access),
        &json!({}),
    )
    .await;
    app.put(
        &format!("/api/v1/users/{}/follow", carol.id),
        Some(&bob.access),
        &json!({}),
    )
    .await;
    let post = app.create_post(&alice.access, "alice writes").await;
    let post_id = post["id"].as_i64().unwrap();

    let res = app
        .put(
            &format!("/api/v1/users/{}/block", bob.id),
            Some(&alice.access),
            &json!({}),
        )
        .await;
    assert_eq!(res.status(), 204);
    assert_eq!(
        app.put(
            &format!("/api/v1/users/{}/block", bob.id),
            Some(&alice.access),
            &json!({})
        )
        .await
        .status(),
        204
    );

    // Follows are gone both ways, and cannot be made again, from either side.
    let alice_profile: Value = app
        .get("/api/v1/users/alice", None)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(alice_profile["followers_count"], 0);
    assert_eq!(alice_profile["following_count"], 0);
    assert_problem(
        app.put(
            &format!("/api/v1/users/{}/follow", alice.id),
            Some(&bob.access),
            &json!({}),
        )
        .await,
        404,
    )
    .await;
    assert_problem(
        app.put(
            &format!("/api/v1/users/{}/follow", bob.id),
            Some(&alice.access),
            &json!({}),
        )
        .await,
        404,
    )
    .await;

    // Bob cannot see, comment on, or react to alice's post; nor her profile.
    assert_problem(
        app.get(&format!("/api/v1/posts/{post_id}"), Some(&bob.access))
            .await,
        404,
    )
    .await;
    assert_problem(
        app.post(
            &format!("/api/v1/posts/{post_id}/comments"),
            Some(&bob.access),
            &json!({"text": "hi"}),
        )
        .await,
        404,
    )
    .await;
    assert_problem(
        app.put(
            &format!("/api/v1/posts/{post_id}/reactions"),
            Some(&bob.access),
            &json!({"kind": "like"}),
        )
        .await,
        404,
    )
    .await;
    assert_problem(app.get("/api/v1/users/alice", Some(&bob.access)).await, 404).await;
    assert_problem(
        app.get(
            &format!("/api/v1/users/{}/posts", alice.id),
            Some(&bob.access),
        )
        .await,
        404,
    )
    .await;

    // Each disappears from the other's view of third-party lists.
    app.put(
        &format!("/api/v1/users/{}/follow", carol.id),
        Some(&alice.access),
        &json!({}),
    )
    .await;
    let carol_followers: Value = app
        .get(
            &format!("/api/v1/users/{}/followers", carol.id),
            Some(&alice.access),
        )
        .await
        .json()
        .await
        .unwrap();
    let names: Vec<&str> = carol_followers["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u["username"].as_str().unwrap())
        .collect();
    assert_eq!(names, vec!["alice"]);
    let carol_followers: Value = app
        .get(&format!("/api/v1/users/{}/followers", carol.id), None)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(carol_followers["items"].as_array().unwrap().len(), 2);

    // Others still see alice's post.
    assert_eq!(
        app.get(&format!("/api/v1/posts/{post_id}"), Some(&carol.access))
            .await
            .status(),
        200
    );

    let blocks: Value = app
        .get("/api/v1/me/blocks", Some(&alice.access))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(blocks["items"][0]["username"], "bobby");

    assert_eq!(
        app.delete(
            &format!("/api/v1/users/{}/block", bob.id),
            Some(&alice.access)
        )
        .await
        .status(),
        204
    );
    assert_eq!(
        app.get(&format!("/api/v1/posts/{post_id}"), Some(&bob.access))
            .await
            .status(),
        200
    );
    let blocks: Value = app
        .get("/api/v1/me/blocks", Some(&alice.access))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(blocks["items"].as_array().unwrap().len(), 0);
}

#[actix_web::test]
async fn blocking_yourself_or_nobody_fails() {
    let app = spawn_app().await;
    let alice = app.user("alice").await;
    assert_problem(
        app.put(
            &format!("/api/v1/users/{}/block", alice.id),
            Some(&alice.access),
            &json!({}),
        )
        .await,
        422,
    )
    .await;
    assert_problem(
        app.put(
            "/api/v1/users/424242/block",
            Some(&alice.access),
            &json!({}),
        )
        .await,
        404,
    )
    .await;
}

#[actix_web::test]
async fn follower_lists_paginate_without_gaps_or_repeats() {
    let app = spawn_app().await;
    let star = app.user("star").await;
    let fans = app.bulk_users("fan", 25).await;
    for fan in &fans[..20] {
        app.put(
            &format!("/api/v1/users/{}/follow", star.id),
            Some(&fan.access),
            &json!({}),
        )
        .await;
    }
    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    let mut late = fans[20..].iter();
    loop {
        let path = match &cursor {
            Some(c) => format!("/api/v1/users/{}/followers?limit=6&cursor={c}", star.id),
            None => format!("/api/v1/users/{}/followers?limit=6", star.id),
        };
        let page: Value = app.get(&path, None).await.json().await.unwrap();
        for item in page["items"].as_array().unwrap() {
            seen.push(item["id"].as_i64().unwrap());
        }
        // New followers arrive while the list is walked.
        if let Some(fan) = late.next() {
            app.put(
                &format!("/api/v1/users/{}/follow", star.id),
                Some(&fan.access),
                &json!({}),
            )
            .await;
        }
        match page["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_owned()),
            None => break,
        }
    }
    let mut expected: Vec<i64> = fans[..20].iter().map(|f| f.id).collect();
    expected.reverse();
    assert_eq!(seen, expected, "every original follower once, newest first");
}

#[actix_web::test]
async fn malformed_cursors_and_limits_are_400() {
    let app = spawn_app().await;
    let alice = app.user("alice").await;
    for query in [
        "cursor=not-a-cursor",
        "cursor=eyJ4IjoxfQ",
        "limit=0",
        "limit=abc",
    ] {
        let res = app
            .get(
                &format!("/api/v1/users/{}/followers?{query}", alice.id),
                None,
            )
            .await;
        assert_problem(res, 400).await;
    }
    let res = app
        .get(
            &format!("/api/v1/users/{}/followers?limit=1000", alice.id),
            None,
        )
        .await;
    assert_eq!(res.status(), 200, "large limits are capped, not refused");
}

/// A profile's counts are columns kept with every change, and they agree
/// with the lists an anonymous caller gets: followers who leave `active`
/// (suspended, deleted) leave the count and the list together, a block's
/// removed follows leave both, and deleted posts leave the post count.
#[actix_web::test]
async fn profile_counts_agree_with_the_lists_through_every_change() {
    use crate::helpers::{TestApp, PASSWORD};
    use reqwest::Method;

    async fn counts(app: &TestApp, username: &str, id: i64) -> (i64, i64, i64) {
        let profile: Value = app
            .get(&format!("/api/v1/users/{username}"), None)
            .await
            .json()
            .await
            .unwrap();
        let listed = |direction: &'static str| async move {
            let page: Value = app
                .get(&format!("/api/v1/users/{id}/{direction}?limit=100"), None)
                .await
                .json()
                .await
                .unwrap();
            page["items"].as_array().unwrap().len() as i64
        };
        let followers = profile["followers_count"].as_i64().unwrap();
        let following = profile["following_count"].as_i64().unwrap();
        assert_eq!(
            followers,
            listed("followers").await,
            "{username}'s followers"
        );
        assert_eq!(
            following,
            listed("following").await,
            "{username}'s following"
        );
        (
            followers,
            following,
            profile["posts_count"].as_i64().unwrap(),
        )
    }
    async fn follow(app: &TestApp, token: &str, whom: i64) {
        let res = app
            .put(
                &format!("/api/v1/users/{whom}/follow"),
                Some(token),
                &json!({}),
            )
            .await;
        assert_eq!(res.status(), 200);
    }
    async fn set_status(app: &TestApp, id: i64, status: &str) {
        sqlx::query("UPDATE users SET status = $2::user_status WHERE id = $1")
            .bind(id)
            .bind(status)
            .execute(&app.db)
            .await
            .unwrap();
    }

    let app = spawn_app().await;
    let alice = app.user("alice").await;
    let bob = app.user("bobby").await;
    let carol = app.user("carol").await;
    let dave = app.user("dave").await;
    for fan in [&bob, &carol, &dave] {
        follow(&app, &fan.access, alice.id).await;
    }
    follow(&app, &alice.access, bob.id).await;
    let first = app.create_post(&alice.access, "one").await["id"]
        .as_i64()
        .unwrap();
    app.create_post(&alice.access, "two").await;
    assert_eq!(counts(&app, "alice", alice.id).await, (3, 1, 2));

    // Suspended: out of the count and the list; reinstated: back in both.
    set_status(&app, dave.id, "suspended").await;
    assert_eq!(counts(&app, "alice", alice.id).await, (2, 1, 2));
    set_status(&app, dave.id, "active").await;
    assert_eq!(counts(&app, "alice", alice.id).await, (3, 1, 2));

    // A deleted account leaves both for good.
    let res = app
        .send_json(
            Method::DELETE,
            "/api/v1/me",
            Some(&carol.access),
            &json!({"password": PASSWORD}),
        )
        .await;
    assert!(res.status().is_success(), "{}", res.status());
    assert_eq!(counts(&app, "alice", alice.id).await, (2, 1, 2));

    // A block removes the follows both ways, and their counts.
    let res = app
        .put(
            &format!("/api/v1/users/{}/block", bob.id),
            Some(&alice.access),
            &json!({}),
        )
        .await;
    assert!(res.status().is_success());
    assert_eq!(counts(&app, "alice", alice.id).await, (1, 0, 2));
    assert_eq!(counts(&app, "bobby", bob.id).await.0, 0);

    // Unfollowing, and deleting a post.
    let res = app
        .delete(
            &format!("/api/v1/users/{}/follow", alice.id),
            Some(&dave.access),
        )
        .await;
    assert!(res.status().is_success());
    let res = app
        .delete(&format!("/api/v1/posts/{first}"), Some(&alice.access))
        .await;
    assert!(res.status().is_success());
    assert_eq!(counts(&app, "alice", alice.id).await, (0, 0, 1));
}
