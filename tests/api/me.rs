use reqwest::Method;
use serde_json::{json, Value};

use crate::helpers::{assert_problem, spawn_app, PASSWORD};

#[actix_web::test]
async fn me_shows_and_updates_the_profile() {
    let app = spawn_app().await;
    let alice = app.user("alice").await;
    let me: Value = app
        .get("/api/v1/me", Some(&alice.access))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(me["username"], "alice");
    assert_eq!(me["email"], "alice@example.com");

    let res = app
        .send_json(
            Method::PATCH,
            "/api/v1/me",
            Some(&alice.access),
            &json!({"display_name": "Alice A.", "bio": "hello"}),
        )
        .await;
    assert_eq!(res.status(), 200);
    let me: Value = res.json().await.unwrap();
    assert_eq!(me["display_name"], "Alice A.");
    assert_eq!(me["bio"], "hello");

    // Absent leaves a field alone; null clears it.
    let me: Value = app
        .send_json(
            Method::PATCH,
            "/api/v1/me",
            Some(&alice.access),
            &json!({"bio": null}),
        )
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(me["display_name"], "Alice A.");
    assert!(me["bio"].is_null());

    let problem = assert_problem(
        app.send_json(
            Method::PATCH,
            "/api/v1/me",
            Some(&alice.access),
            &json!({"bio": "b".repeat(301)}),
        )
        .await,
        422,
    )
    .await;
    assert!(problem["errors"]["bio"].is_array());
    let problem = assert_problem(
        app.send_json(
            Method::PATCH,
            "/api/v1/me",
            Some(&alice.access),
            &json!({"display_name": 42}),
        )
        .await,
        422,
    )
    .await;
    assert!(
        problem["detail"].as_str().unwrap().contains("expected"),
        "{problem}"
    );
}

#[actix_web::test]
async fn changing_the_password_signs_out_every_other_session() {
    let app = spawn_app().await;
    let alice = app.user("alice").await;

    let wrong = app
        .send_json(
            Method::PUT,
            "/api/v1/me/password",
            Some(&alice.access),
            &json!({"current_password": "not it at all", "new_password": "a brand new password"}),
        )
        .await;
    assert!(assert_problem(wrong, 422).await["errors"]["current_password"].is_array());
    let weak = app
        .send_json(
            Method::PUT,
            "/api/v1/me/password",
            Some(&alice.access),
            &json!({"current_password": PASSWORD, "new_password": "short"}),
        )
        .await;
    assert!(assert_problem(weak, 422).await["errors"]["new_password"].is_array());

    let res = app
        .send_json(
            Method::PUT,
            "/api/v1/me/password",
            Some(&alice.access),
            &json!({"current_password": PASSWORD, "new_password": "a brand new password"}),
        )
        .await;
    assert_eq!(res.status(), 200);
    let fresh: Value = res.json().await.unwrap();

    // The old session is gone, both its refresh and its access token.
    assert_problem(
        app.post(
            "/api/v1/auth/refresh",
            None,
            &json!({"refresh_token": alice.refresh}),
        )
        .await,
        401,
    )
    .await;
    assert_problem(app.get("/api/v1/me", Some(&alice.access)).await, 401).await;
    // The caller's new session works.
    assert_eq!(
        app.get("/api/v1/me", fresh["access_token"].as_str())
            .await
            .status(),
        200
    );
    assert_problem(app.login("alice", PASSWORD).await, 401).await;
    assert_eq!(
        app.login("alice", "a brand new password").await.status(),
        200
    );
}

#[actix_web::test]
async fn deleting_the_account_erases_it_and_revokes_everything() {
    let app = spawn_app().await;
    let alice = app.user("alice").await;
    let key: Value = app
        .post(
            "/api/v1/me/api-keys",
            Some(&alice.access),
            &json!({"name": "script"}),
        )
        .await
        .json()
        .await
        .unwrap();
    let key = key["key"].as_str().unwrap().to_owned();

    let wrong = app
        .send_json(
            Method::DELETE,
            "/api/v1/me",
            Some(&alice.access),
            &json!({"password": "nope nope"}),
        )
        .await;
    assert_problem(wrong, 422).await;
    assert_eq!(
        app.get("/api/v1/me", Some(&alice.access)).await.status(),
        200,
        "a wrong password deletes nothing"
    );

    let res = app
        .send_json(
            Method::DELETE,
            "/api/v1/me",
            Some(&alice.access),
            &json!({"password": PASSWORD}),
        )
        .await;
    assert_eq!(res.status(), 204);

    assert_problem(app.get("/api/v1/me", Some(&alice.access)).await, 401).await;
    let res = app
        .client
        .get(app.url("/api/v1/me"))
        .header("api-key", &key)
        .send()
        .await
        .unwrap();
    assert_problem(res, 401).await;
    assert_problem(
        app.post(
            "/api/v1/auth/refresh",
            None,
            &json!({"refresh_token": alice.refresh}),
        )
        .await,
        401,
    )
    .await;
    assert_problem(app.login("alice", PASSWORD).await, 401).await;
    assert_problem(app.get("/api/v1/users/alice", None).await, 404).await;

    let row: (Option<String>, Option<String>, String) =
        sqlx::query_as("SELECT email, password_hash, status::text FROM users WHERE id = $1")
            .bind(alice.id)
            .fetch_one(&app.db)
            .await
            .unwrap();
    assert_eq!(row, (None, None, "deleted".to_owned()));
    // The name is free again.
    app.register("alice").await;
}
