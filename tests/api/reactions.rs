use futures_util::future::join_all;
use serde_json::{json, Value};

use crate::helpers::{assert_problem, spawn_app};
use crate::stream::{connect, next_of_type};
use crate::subscriptions::subscribe;

#[actix_web::test]
async fn one_reaction_per_user_and_a_new_kind_replaces_the_old() {
    let app = spawn_app().await;
    let alice = app.user("alice").await;
    let bob = app.user("bobby").await;
    let carol = app.user("carol").await;
    let id = app.create_post(&alice.access, "react to me").await["id"]
        .as_i64()
        .unwrap();
    let path = format!("/api/v1/posts/{id}/reactions");
    let mut watching = connect(&app, &carol.access, None).await;
    assert_eq!(subscribe(&mut watching, id).await["type"], "subscribed");

    let post: Value = app
        .put(&path, Some(&bob.access), &json!({"kind": "like"}))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(post["counts"]["reactions"], json!({"like": 1}));
    assert_eq!(post["my_reaction"], "like");
    let post: Value = app
        .put(&path, Some(&bob.access), &json!({"kind": "like"}))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(
        post["counts"]["reactions_total"], 1,
        "liking twice counts once"
    );
    let post: Value = app
        .put(&path, Some(&bob.access), &json!({"kind": "love"}))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(post["counts"]["reactions"], json!({"love": 1}));
    app.put(&path, Some(&alice.access), &json!({"kind": "haha"}))
        .await;

    let all: Value = app.get(&path, None).await.json().await.unwrap();
    assert_eq!(all["items"].as_array().unwrap().len(), 2);
    let loves: Value = app
        .get(&format!("{path}?kind=love"), None)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(loves["items"].as_array().unwrap().len(), 1);
    assert_eq!(loves["items"][0]["user"]["username"], "bobby");
    assert_problem(app.get(&format!("{path}?kind=meh"), None).await, 400).await;
    assert_problem(
        app.put(&path, Some(&bob.access), &json!({"kind": "meh"}))
            .await,
        422,
    )
    .await;

    assert_eq!(app.delete(&path, Some(&bob.access)).await.status(), 204);
    assert_eq!(app.delete(&path, Some(&bob.access)).await.status(), 204);
    let post: Value = app
        .get(&format!("/api/v1/posts/{id}"), Some(&bob.access))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(post["counts"]["reactions"], json!({"haha": 1}));
    assert!(post["my_reaction"].is_null());
    let stored: i64 = sqlx::query_scalar("SELECT reactions_count FROM posts WHERE id = $1")
        .bind(id)
        .fetch_one(&app.db)
        .await
        .unwrap();
    assert_eq!(stored, 1);

    // Each change was announced once, and repeating a kind announced
    // nothing: a reader watching the post got one set of counters per change.
    let mut seen = Vec::new();
    loop {
        let counters = next_of_type(&mut watching, "post.counters").await;
        seen.push(counters["data"]["reactions"].clone());
        if seen.last() == Some(&json!({"love": 1, "haha": 1})) {
            break;
        }
    }
    assert_eq!(
        seen,
        vec![
            json!({"like": 1}),
            json!({"love": 1}),
            json!({"love": 1, "haha": 1})
        ],
        "repeating a kind announces nothing"
    );
}

#[actix_web::test]
async fn a_hundred_concurrent_likes_count_exactly_a_hundred() {
    let app = spawn_app().await;
    let author = app.user("author").await;
    let id = app.create_post(&author.access, "popular").await["id"]
        .as_i64()
        .unwrap();
    let fans = app.bulk_users("liker", 100).await;
    let path = format!("/api/v1/posts/{id}/reactions");
    // Every fan likes twice, all at once.
    let like = json!({"kind": "like"});
    let requests = fans
        .iter()
        .chain(fans.iter())
        .map(|fan| app.put(&path, Some(&fan.access), &like));
    for res in join_all(requests).await {
        assert_eq!(res.status(), 200);
    }
    let post: Value = app
        .get(&format!("/api/v1/posts/{id}"), None)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(post["counts"]["reactions"]["like"], 100);
    assert_eq!(post["counts"]["reactions_total"], 100);
    let stored: i64 = sqlx::query_scalar("SELECT reactions_count FROM posts WHERE id = $1")
        .bind(id)
        .fetch_one(&app.db)
        .await
        .unwrap();
    assert_eq!(stored, 100);

    // And all at once again, unliking.
    let requests = fans.iter().map(|fan| app.delete(&path, Some(&fan.access)));
    join_all(requests).await;
    let stored: i64 = sqlx::query_scalar("SELECT reactions_count FROM posts WHERE id = $1")
        .bind(id)
        .fetch_one(&app.db)
        .await
        .unwrap();
    assert_eq!(stored, 0);
}

#[actix_web::test]
async fn views_count_distinct_viewers() {
    let app = spawn_app().await;
    let alice = app.user("alice").await;
    let viewers = app.bulk_users("viewer", 5).await;
    let id = app.create_post(&alice.access, "look").await["id"]
        .as_i64()
        .unwrap();
    let path = format!("/api/v1/posts/{id}/views");
    let empty = json!({});
    let requests = viewers
        .iter()
        .chain(viewers.iter())
        .map(|v| app.post(&path, Some(&v.access), &empty));
    join_all(requests).await;
    let res: Value = app
        .post(&path, Some(&alice.access), &json!({}))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(res["views"], 6);
    let post: Value = app
        .get(&format!("/api/v1/posts/{id}"), None)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(post["counts"]["views"], 6);
    assert_problem(
        app.post(
            "/api/v1/posts/999999/views",
            Some(&alice.access),
            &json!({}),
        )
        .await,
        404,
    )
    .await;
    assert_problem(app.post(&path, None, &json!({})).await, 401).await;
}
