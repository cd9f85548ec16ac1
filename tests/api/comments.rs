use serde_json::{json, Value};

use crate::helpers::{assert_problem, notified, spawn_app};

#[actix_web::test]
async fn comments_and_one_level_of_replies() {
    let app = spawn_app().await;
    let alice = app.user("alice").await;
    let bob = app.user("bobby").await;
    let post_id = app.create_post(&alice.access, "discuss").await["id"]
        .as_i64()
        .unwrap();
    let other_post = app.create_post(&alice.access, "elsewhere").await["id"]
        .as_i64()
        .unwrap();
    let comments_path = format!("/api/v1/posts/{post_id}/comments");

    let res = app
        .post(
            &comments_path,
            Some(&bob.access),
            &json!({"text": " first! "}),
        )
        .await;
    assert_eq!(res.status(), 201);
    let top: Value = res.json().await.unwrap();
    assert_eq!(top["text"], "first!");
    assert!(top["parent_id"].is_null());
    let top_id = top["id"].as_i64().unwrap();

    let reply: Value = app
        .post(
            &comments_path,
            Some(&alice.access),
            &json!({"text": "thanks", "parent_id": top_id}),
        )
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(reply["parent_id"], top_id);
    let reply_id = reply["id"].as_i64().unwrap();

    for (body, field) in [
        (
            json!({"text": "deeper", "parent_id": reply_id}),
            "parent_id",
        ),
        (
            json!({"text": "wrong post", "parent_id": top_id}),
            "parent_id",
        ),
        (json!({"text": "x".repeat(1001)}), "text"),
        (json!({"text": "  "}), "text"),
        (json!({"text": "ghost", "parent_id": 999999}), "parent_id"),
    ] {
        let path = if body["text"] == "wrong post" {
            format!("/api/v1/posts/{other_post}/comments")
        } else {
            comments_path.clone()
        };
        let problem = assert_problem(app.post(&path, Some(&bob.access), &body).await, 422).await;
        assert!(problem["errors"][field].is_array(), "{body}: {problem}");
    }
    assert_problem(
        app.post(
            "/api/v1/posts/999999/comments",
            Some(&bob.access),
            &json!({"text": "x"}),
        )
        .await,
        404,
    )
    .await;

    let second: Value = app
        .post(
            &comments_path,
            Some(&alice.access),
            &json!({"text": "second"}),
        )
        .await
        .json()
        .await
        .unwrap();
    let page: Value = app.get(&comments_path, None).await.json().await.unwrap();
    let items = page["items"].as_array().unwrap();
    assert_eq!(
        items.len(),
        2,
        "replies are not listed with top-level comments"
    );
    assert_eq!(items[0]["id"], top_id, "oldest first");
    assert_eq!(items[0]["replies_count"], 1);
    assert_eq!(items[1]["id"], second["id"]);
    let replies: Value = app
        .get(&format!("/api/v1/comments/{top_id}/replies"), None)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(replies["items"][0]["id"], reply_id);
    let post: Value = app
        .get(&format!("/api/v1/posts/{post_id}"), None)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(post["counts"]["comments"], 3);

    // Announced as a reply: the parent comment's author is told.
    notified(&app, &bob, "reply", post_id, Some(reply_id)).await;
}

#[actix_web::test]
async fn comment_edits_and_deletes_follow_the_rules() {
    let app = spawn_app().await;
    let alice = app.user("alice").await;
    let bob = app.user("bobby").await;
    let carol = app.user("carol").await;
    let moderator = app.user("modd").await;
    sqlx::query("UPDATE users SET role = 'moderator' WHERE id = $1")
        .bind(moderator.id)
        .execute(&app.db)
        .await
        .unwrap();
    let post_id = app.create_post(&alice.access, "alice's post").await["id"]
        .as_i64()
        .unwrap();
    let path = format!("/api/v1/posts/{post_id}/comments");
    let mut ids = Vec::new();
    for _ in 0..3 {
        let c: Value = app
            .post(&path, Some(&bob.access), &json!({"text": "bob says"}))
            .await
            .json()
            .await
            .unwrap();
        ids.push(c["id"].as_i64().unwrap());
    }
    let reply: Value = app
        .post(
            &path,
            Some(&carol.access),
            &json!({"text": "carol replies", "parent_id": ids[0]}),
        )
        .await
        .json()
        .await
        .unwrap();

    let c0 = format!("/api/v1/comments/{}", ids[0]);
    assert_problem(
        app.patch(&c0, Some(&alice.access), &json!({"text": "not mine"}))
            .await,
        403,
    )
    .await;
    let edited: Value = app
        .patch(&c0, Some(&bob.access), &json!({"text": "bob edits"}))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(edited["text"], "bob edits");
    assert!(edited["edited_at"].is_string());

    // Carol is neither the author, the post's author, nor a moderator.
    assert_problem(app.delete(&c0, Some(&carol.access)).await, 403).await;
    // The post's author may delete it; its replies go with it.
    assert_eq!(app.delete(&c0, Some(&alice.access)).await.status(), 204);
    assert_problem(app.get(&c0, None).await, 404).await;
    assert_problem(
        app.get(&format!("/api/v1/comments/{}", reply["id"]), None)
            .await,
        404,
    )
    .await;
    // A moderator and the comment's own author may too.
    assert_eq!(
        app.delete(
            &format!("/api/v1/comments/{}", ids[1]),
            Some(&moderator.access)
        )
        .await
        .status(),
        204
    );
    assert_eq!(
        app.delete(&format!("/api/v1/comments/{}", ids[2]), Some(&bob.access))
            .await
            .status(),
        204
    );

    let post: Value = app
        .get(&format!("/api/v1/posts/{post_id}"), None)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(post["counts"]["comments"], 0);
    let page: Value = app.get(&path, None).await.json().await.unwrap();
    assert_eq!(page["items"].as_array().unwrap().len(), 0);
}

#[actix_web::test]
async fn comment_lists_paginate_oldest_first() {
    let app = spawn_app().await;
    let alice = app.user("alice").await;
    let post_id = app.create_post(&alice.access, "many comments").await["id"]
        .as_i64()
        .unwrap();
    let path = format!("/api/v1/posts/{post_id}/comments");
    let mut ids = Vec::new();
    for i in 0..12 {
        let c: Value = app
            .post(
                &path,
                Some(&alice.access),
                &json!({"text": format!("c{i}")}),
            )
            .await
            .json()
            .await
            .unwrap();
        ids.push(c["id"].as_i64().unwrap());
    }
    let mut seen = Vec::new();
    let mut cursor = String::new();
    loop {
        let page: Value = app
            .get(&format!("{path}?limit=5&cursor={cursor}"), None)
            .await
            .json()
            .await
            .unwrap();
        seen.extend(
            page["items"]
                .as_array()
                .unwrap()
                .iter()
                .map(|c| c["id"].as_i64().unwrap()),
        );
        match page["next_cursor"].as_str() {
            Some(c) => cursor = c.to_owned(),
            None => break,
        }
    }
    assert_eq!(seen, ids);
}
