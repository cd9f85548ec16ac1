use serde_json::{json, Value};

use crate::helpers::{assert_problem, eventually, notified, spawn_app};
use crate::stream::{connect, follow, next_of_type};
use crate::subscriptions::subscribe;

#[actix_web::test]
async fn a_post_carries_its_author_tags_mentions_and_counts() {
    let app = spawn_app().await;
    let alice = app.user("alice").await;
    let bob = app.user("bobby").await;
    let carol = app.user("carol").await;
    follow(&app, &carol.access, alice.id).await;
    let res = app
        .post(
            "/api/v1/posts",
            Some(&alice.access),
            &json!({"text": "  Hi @Bobby and @nobody_here #Rust #rust #Café  "}),
        )
        .await;
    assert_eq!(res.status(), 201);
    let location = res.headers()["location"].to_str().unwrap().to_owned();
    let post: Value = res.json().await.unwrap();
    let id = post["id"].as_i64().unwrap();
    assert_eq!(location, format!("/api/v1/posts/{id}"));
    assert_eq!(post["text"], "Hi @Bobby and @nobody_here #Rust #rust #Café");
    assert_eq!(post["hashtags"], json!(["café", "rust"]));
    assert_eq!(
        post["mentions"],
        json!([{"id": bob.id, "username": "bobby"}])
    );
    assert_eq!(post["author"]["username"], "alice");
    assert_eq!(post["author"]["posts_count"], 1);
    assert_eq!(
        post["counts"],
        json!({"comments": 0, "views": 0, "reactions": {}, "reactions_total": 0})
    );
    assert!(post["my_reaction"].is_null());
    assert!(post["edited_at"].is_null());

    let fetched: Value = app.get(&location, None).await.json().await.unwrap();
    assert_eq!(fetched["id"], id);

    // Announced: a follower's feed gets it, the mentioned user is told.
    eventually("the post in a follower's feed", || async {
        let feed: Value = app
            .get("/api/v1/feed", Some(&carol.access))
            .await
            .json()
            .await
            .unwrap();
        feed["items"][0]["id"] == id
    })
    .await;
    notified(&app, &bob, "mention", id, None).await;
}

#[actix_web::test]
async fn post_text_and_media_rules() {
    let app = spawn_app().await;
    let alice = app.user("alice").await;
    for (body, field) in [
        (json!({"text": ""}), "text"),
        (json!({"text": "   \n  "}), "text"),
        (json!({"text": "x".repeat(501)}), "text"),
        (
            json!({"text": "ok", "media_ids": [1, 2, 3, 4, 5]}),
            "media_ids",
        ),
        (json!({"text": "ok", "media_ids": [987654]}), "media_ids"),
    ] {
        let problem = assert_problem(
            app.post("/api/v1/posts", Some(&alice.access), &body).await,
            422,
        )
        .await;
        assert!(problem["errors"][field].is_array(), "{body}: {problem}");
    }
    assert_problem(
        app.post("/api/v1/posts", Some(&alice.access), &json!({"text": 5}))
            .await,
        422,
    )
    .await;
    assert_problem(
        app.post("/api/v1/posts", None, &json!({"text": "hi"}))
            .await,
        401,
    )
    .await;
    // 500 characters that are 1000 bytes still fit.
    app.create_post(&alice.access, &"é".repeat(500)).await;
    let count: i64 = sqlx::query_scalar("SELECT count(*) FROM posts")
        .fetch_one(&app.db)
        .await
        .unwrap();
    assert_eq!(count, 1, "failed creations leave nothing behind");
}

#[actix_web::test]
async fn only_the_author_edits_and_history_keeps_every_version() {
    let app = spawn_app().await;
    let alice = app.user("alice").await;
    let bob = app.user("bobby").await;
    let post = app.create_post(&alice.access, "first #one").await;
    let id = post["id"].as_i64().unwrap();
    let path = format!("/api/v1/posts/{id}");
    let mut watching = connect(&app, &bob.access, None).await;
    assert_eq!(subscribe(&mut watching, id).await["type"], "subscribed");

    assert_problem(
        app.patch(&path, Some(&bob.access), &json!({"text": "hijacked"}))
            .await,
        403,
    )
    .await;
    assert_problem(
        app.patch(&path, Some(&alice.access), &json!({"text": ""}))
            .await,
        422,
    )
    .await;

    let res = app
        .patch(
            &path,
            Some(&alice.access),
            &json!({"text": "second #two @bobby"}),
        )
        .await;
    assert_eq!(res.status(), 200);
    let edited: Value = res.json().await.unwrap();
    assert_eq!(edited["text"], "second #two @bobby");
    assert_eq!(edited["hashtags"], json!(["two"]));
    assert_eq!(edited["mentions"][0]["username"], "bobby");
    assert!(edited["edited_at"].is_string());
    app.patch(&path, Some(&alice.access), &json!({"text": "third"}))
        .await;

    let history: Value = app
        .get(&format!("{path}/history"), None)
        .await
        .json()
        .await
        .unwrap();
    let texts: Vec<&str> = history
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["text"].as_str().unwrap())
        .collect();
    assert_eq!(texts, vec!["first #one", "second #two @bobby", "third"]);
    assert!(history[2]["replaced_at"].is_null());
    assert!(history[0]["replaced_at"].is_string());

    // Announced: a reader watching the post sees the edits (each event
    // carries the text current when it is sent, so the last one is the last
    // edit), and the user an edit mentions is told.
    while next_of_type(&mut watching, "post.updated").await["data"]["text"] != "third" {}
    notified(&app, &bob, "mention", id, None).await;
}

#[actix_web::test]
async fn deletion_by_author_or_moderator_hides_the_post_and_its_comments() {
    let app = spawn_app().await;
    let alice = app.user("alice").await;
    let bob = app.user("bobby").await;
    let moderator = app.user("modd").await;
    sqlx::query("UPDATE users SET role = 'moderator' WHERE id = $1")
        .bind(moderator.id)
        .execute(&app.db)
        .await
        .unwrap();

    let first = app.create_post(&alice.access, "one").await["id"]
        .as_i64()
        .unwrap();
    let second = app.create_post(&alice.access, "two").await["id"]
        .as_i64()
        .unwrap();
    let comment: Value = app
        .post(
            &format!("/api/v1/posts/{first}/comments"),
            Some(&bob.access),
            &json!({"text": "nice"}),
        )
        .await
        .json()
        .await
        .unwrap();

    assert_problem(
        app.delete(&format!("/api/v1/posts/{first}"), Some(&bob.access))
            .await,
        403,
    )
    .await;
    assert_eq!(
        app.delete(&format!("/api/v1/posts/{first}"), Some(&alice.access))
            .await
            .status(),
        204
    );
    assert_problem(app.get(&format!("/api/v1/posts/{first}"), None).await, 404).await;
    assert_problem(
        app.get(&format!("/api/v1/posts/{first}/comments"), None)
            .await,
        404,
    )
    .await;
    assert_problem(
        app.get(&format!("/api/v1/comments/{}", comment["id"]), None)
            .await,
        404,
    )
    .await;
    assert_problem(
        app.delete(&format!("/api/v1/posts/{first}"), Some(&alice.access))
            .await,
        404,
    )
    .await;

    assert_eq!(
        app.delete(&format!("/api/v1/posts/{second}"), Some(&moderator.access))
            .await
            .status(),
        204
    );
    let page: Value = app
        .get(&format!("/api/v1/users/{}/posts", alice.id), None)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(page["items"].as_array().unwrap().len(), 0);
    let profile: Value = app
        .get("/api/v1/users/alice", None)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(profile["posts_count"], 0);
}

#[actix_web::test]
async fn user_posts_paginate_newest_first_without_gaps_while_posting() {
    let app = spawn_app().await;
    let alice = app.user("alice").await;
    let mut ids = Vec::new();
    for i in 0..23 {
        ids.push(
            app.create_post(&alice.access, &format!("post {i}")).await["id"]
                .as_i64()
                .unwrap(),
        );
    }
    ids.reverse();
    let mut seen = Vec::new();
    let mut cursor = String::new();
    loop {
        let page: Value = app
            .get(
                &format!("/api/v1/users/{}/posts?limit=5&cursor={cursor}", alice.id),
                None,
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
        app.create_post(&alice.access, "arrives while paging").await;
        match page["next_cursor"].as_str() {
            Some(c) => cursor = c.to_owned(),
            None => break,
        }
    }
    assert_eq!(seen, ids);
    assert_problem(
        app.get(
            &format!("/api/v1/users/{}/posts?cursor=%%%", alice.id),
            None,
        )
        .await,
        400,
    )
    .await;
    assert_problem(app.get("/api/v1/users/999999/posts", None).await, 404).await;
}
