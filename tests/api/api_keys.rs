use reqwest::Method;
use serde_json::{json, Value};

use crate::helpers::{assert_problem, spawn_app};

#[actix_web::test]
async fn api_keys_are_shown_once_and_authenticate_until_revoked() {
    let app = spawn_app().await;
    let alice = app.user("alice").await;
    let res = app
        .post(
            "/api/v1/me/api-keys",
            Some(&alice.access),
            &json!({"name": "my script"}),
        )
        .await;
    assert_eq!(res.status(), 201);
    let created: Value = res.json().await.unwrap();
    let key = created["key"].as_str().unwrap().to_owned();
    assert!(key.starts_with("rk_") && key.len() >= 40, "{key}");
    assert_eq!(created["name"], "my script");

    let listed: Value = app
        .get("/api/v1/me/api-keys", Some(&alice.access))
        .await
        .json()
        .await
        .unwrap();
    let listed = listed.as_array().unwrap();
    assert_eq!(listed.len(), 1);
    assert!(listed[0].get("key").is_none());
    assert!(listed[0]["last_used_at"].is_null());
    assert!(!listed[0].to_string().contains(&key[3..]));

    let res = app
        .client
        .get(app.url("/api/v1/me"))
        .header("api-key", &key)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let verify: Value = app
        .client
        .get(app.url("/api/v1/auth/verify"))
        .header("api-key", &key)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(verify["method"], "api_key");
    assert!(verify["claims"].is_null());

    let listed: Value = app
        .get("/api/v1/me/api-keys", Some(&alice.access))
        .await
        .json()
        .await
        .unwrap();
    assert!(listed[0]["last_used_at"].is_string(), "use is recorded");

    let stored: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM api_keys WHERE key_hash = sha256(convert_to($1, 'UTF8'))",
    )
    .bind(&key)
    .fetch_one(&app.db)
    .await
    .unwrap();
    assert_eq!(stored, 1, "keys are stored as SHA-256 hashes");

    let id = created["id"].as_i64().unwrap();
    let res = app
        .send_json(
            Method::DELETE,
            &format!("/api/v1/me/api-keys/{id}"),
            Some(&alice.access),
            &json!({}),
        )
        .await;
    assert_eq!(res.status(), 204);
    let res = app
        .client
        .get(app.url("/api/v1/me"))
        .header("api-key", &key)
        .send()
        .await
        .unwrap();
    assert_problem(res, 401).await;
}

#[actix_web::test]
async fn keys_belong_to_their_owner() {
    let app = spawn_app().await;
    let alice = app.user("alice").await;
    let bob = app.user("bobby").await;
    let created: Value = app
        .post(
            "/api/v1/me/api-keys",
            Some(&alice.access),
            &json!({"name": "k"}),
        )
        .await
        .json()
        .await
        .unwrap();
    let id = created["id"].as_i64().unwrap();
    let res = app
        .send_json(
            Method::DELETE,
            &format!("/api/v1/me/api-keys/{id}"),
            Some(&bob.access),
            &json!({}),
        )
        .await;
    assert_problem(res, 404).await;
    let bobs: Value = app
        .get("/api/v1/me/api-keys", Some(&bob.access))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(bobs.as_array().unwrap().len(), 0);
    assert_problem(
        app.send_json(
            Method::DELETE,
            "/api/v1/me/api-keys/abc",
            Some(&bob.access),
            &json!({}),
        )
        .await,
        404,
    )
    .await;
}

#[actix_web::test]
async fn key_names_are_validated() {
    let app = spawn_app().await;
    let alice = app.user("alice").await;
    for name in ["", "   ", &"n".repeat(101)] {
        let problem = assert_problem(
            app.post(
                "/api/v1/me/api-keys",
                Some(&alice.access),
                &json!({"name": name}),
            )
            .await,
            422,
        )
        .await;
        assert!(problem["errors"]["name"].is_array());
    }
}

#[actix_web::test]
async fn unknown_api_keys_are_401() {
    let app = spawn_app().await;
    for key in ["rk_unknown", "", "test"] {
        let res = app
            .client
            .get(app.url("/api/v1/me"))
            .header("api-key", key)
            .send()
            .await
            .unwrap();
        assert_problem(res, 401).await;
    }
}

#[actix_web::test]
async fn every_protected_route_requires_authentication() {
    let app = spawn_app().await;
    let routes = [
        (Method::GET, "/api/v1/auth/verify"),
        (Method::GET, "/api/v1/me"),
        (Method::PATCH, "/api/v1/me"),
        (Method::DELETE, "/api/v1/me"),
        (Method::PUT, "/api/v1/me/password"),
        (Method::GET, "/api/v1/me/api-keys"),
        (Method::POST, "/api/v1/me/api-keys"),
        (Method::DELETE, "/api/v1/me/api-keys/1"),
    ];
    for (method, path) in routes {
        let res = app
            .client
            .request(method.clone(), app.url(path))
            .json(&json!({}))
            .send()
            .await
            .unwrap();
        assert_eq!(
            res.headers()["www-authenticate"],
            "Bearer realm=\"rookery\""
        );
        let problem = assert_problem(res, 401).await;
        assert!(
            problem["detail"]
                .as_str()
                .unwrap()
                .contains("authentication required"),
            "{method} {path}: {problem}"
        );
    }
}
