use std::time::{Duration, Instant};

use rookery::app::startup::Application;
use rookery::config::Settings;
use serde_json::json;
use sqlx::Connection as _;

use crate::helpers::{assert_problem, spawn_app, spawn_app_with};

#[actix_web::test]
async fn malformed_json_is_400_and_the_wrong_shape_is_422() {
    let app = spawn_app().await;
    let res = app
        .client
        .post(app.url("/api/v1/auth/register"))
        .header("content-type", "application/json")
        .body("{\"username\": ")
        .send()
        .await
        .unwrap();
    assert_problem(res, 400).await;

    let res = app
        .post(
            "/api/v1/auth/register",
            None,
            &json!({"username": 5, "email": [], "password": null}),
        )
        .await;
    assert_problem(res, 422).await;
    let res = app
        .post("/api/v1/auth/login", None, &json!({"login": "alice"}))
        .await;
    let problem = assert_problem(res, 422).await;
    assert!(
        problem["detail"].as_str().unwrap().contains("password"),
        "{problem}"
    );
}

#[actix_web::test]
async fn a_wrong_content_type_is_415() {
    let app = spawn_app().await;
    let res = app
        .client
        .post(app.url("/api/v1/auth/login"))
        .header("content-type", "text/plain")
        .body(r#"{"login":"a","password":"b"}"#)
        .send()
        .await
        .unwrap();
    assert_problem(res, 415).await;
    let res = app
        .client
        .post(app.url("/api/v1/auth/login"))
        .body(r#"{"login":"a","password":"b"}"#)
        .send()
        .await
        .unwrap();
    assert_problem(res, 415).await;
}

#[actix_web::test]
async fn an_oversized_body_is_413() {
    let app = spawn_app_with(|s| s.http.json_limit = 4096).await;
    let body = json!({"login": "a".repeat(5000), "password": "b"});
    let problem = assert_problem(app.post("/api/v1/auth/login", None, &body).await, 413).await;
    assert!(
        problem["detail"].as_str().unwrap().contains("4096"),
        "{problem}"
    );

    // The default cap is 64 KiB.
    let app = spawn_app().await;
    let body = json!({"login": "a".repeat(70 * 1024), "password": "b"});
    assert_problem(app.post("/api/v1/auth/login", None, &body).await, 413).await;
}

#[actix_web::test]
async fn unknown_routes_and_wrong_methods_are_problems_not_pages() {
    let app = spawn_app().await;
    let problem = assert_problem(app.get("/no/such/page", None).await, 404).await;
    assert!(problem["detail"]
        .as_str()
        .unwrap()
        .contains("/no/such/page"));
    assert_problem(app.get("/api/v1/nothing-here", None).await, 404).await;

    let res = app
        .client
        .delete(app.url("/api/v1/auth/login"))
        .send()
        .await
        .unwrap();
    assert_eq!(
        res.headers().get("allow").map(|v| v.to_str().unwrap()),
        Some("POST")
    );
    assert_problem(res, 405).await;
    assert_problem(
        app.client.put(app.url("/healthz")).send().await.unwrap(),
        405,
    )
    .await;
}

#[actix_web::test]
async fn a_database_outage_is_a_prompt_503() {
    // Nothing listens on port 1: every connection attempt fails at once.
    let mut settings = Settings::with_database("postgres://rookery@127.0.0.1:1/rookery").unwrap();
    settings.http.bind = "127.0.0.1:0".parse().unwrap();
    settings.database.acquire_timeout = Duration::from_secs(2);
    let app = Application::build(settings).await.unwrap();
    let base = format!("http://127.0.0.1:{}", app.port());
    actix_web::rt::spawn(app.run_until_stopped());
    let client = reqwest::Client::new();

    let started = Instant::now();
    let res = client
        .post(format!("{base}/api/v1/auth/login"))
        .json(&json!({"login": "alice", "password": "whatever1"}))
        .send()
        .await
        .unwrap();
    assert!(res.headers().contains_key("retry-after"));
    assert_problem(res, 503).await;
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "answered in {:?}",
        started.elapsed()
    );

    let res = client
        .get(format!("{base}/api/v1/me"))
        .bearer_auth("x.y.z")
        .send()
        .await
        .unwrap();
    assert_problem(res, 401).await;
    let res = client.get(format!("{base}/readyz")).send().await.unwrap();
    let problem = assert_problem(res, 503).await;
    assert!(
        problem["detail"].as_str().unwrap().contains("postgres"),
        "{problem}"
    );
    assert_eq!(
        client
            .get(format!("{base}/healthz"))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
}

#[actix_web::test]
async fn a_lost_or_restarting_database_is_a_503_and_a_failed_statement_a_500() {
    use actix_web::ResponseError as _;
    use rookery::http::error::ApiError;

    let app = spawn_app().await;
    let raise = |code: &str| {
        format!("DO $$ BEGIN RAISE EXCEPTION 'raised by the test' USING ERRCODE = '{code}'; END $$")
    };
    for (code, status) in [
        ("admin_shutdown", 503),     // 57P01: the server is going down
        ("cannot_connect_now", 503), // 57P03: it is starting up
        ("connection_failure", 503), // 08006
        ("unique_violation", 500),   // 23505: a bug, not an outage
    ] {
        let err = sqlx::query(&raise(code))
            .execute(&app.db)
            .await
            .unwrap_err();
        assert_eq!(
            ApiError::from_db(err).status_code().as_u16(),
            status,
            "{code}"
        );
    }
}

#[actix_web::test]
async fn connections_the_database_drops_fail_a_request_with_503_at_most_and_are_replaced() {
    let app = spawn_app().await;
    let alice = app.user("alice").await;
    for _ in 0..5 {
        assert_eq!(
            app.get("/api/v1/me", Some(&alice.access)).await.status(),
            200
        );
    }

    // What a database restart does to the server's open connections, done
    // from a connection of the test's own.
    let mut admin = sqlx::PgConnection::connect(&app.database_url)
        .await
        .unwrap();
    let killed: i64 = sqlx::query_scalar(
        "WITH victims AS MATERIALIZED (
             SELECT pid FROM pg_stat_activity
             WHERE datname = current_database() AND pid <> pg_backend_pid())
         SELECT count(*) FILTER (WHERE pg_terminate_backend(pid)) FROM victims",
    )
    .fetch_one(&mut admin)
    .await
    .unwrap();
    assert!(killed > 0, "the server had no connection open");

    let mut unavailable = 0;
    for _ in 0..(killed + 3) {
        let res = app.get("/api/v1/me", Some(&alice.access)).await;
        match res.status().as_u16() {
            200 => {}
            503 => {
                assert_problem(res, 503).await;
                unavailable += 1;
            }
            other => panic!("a dropped connection gave {other}"),
        }
    }
    // Each dead connection fails at most one request, then is gone.
    assert!(
        unavailable <= killed,
        "{unavailable} 503s for {killed} connections"
    );
    assert_eq!(
        app.get("/api/v1/me", Some(&alice.access)).await.status(),
        200
    );
}

#[actix_web::test]
async fn a_nul_character_anywhere_is_a_400_problem_never_a_500() {
    let app = spawn_app().await;
    let alice = app.user("alice").await;

    // In a path.
    let res = app.get("/api/v1/users/%00", None).await;
    let body = assert_problem(res, 400).await;
    assert!(body["detail"].as_str().unwrap().contains("NUL"), "{body}");
    // In a JSON body: the login, and a post's text.
    let res = app
        .post(
            "/api/v1/auth/login",
            None,
            &json!({"login": "ali\u{0000}ce", "password": "whatever it is"}),
        )
        .await;
    assert_problem(res, 400).await;
    // Text fields with their own rules name the field.
    let res = app
        .post(
            "/api/v1/posts",
            Some(&alice.access),
            &json!({"text": "hello\u{0000}world"}),
        )
        .await;
    let body = assert_problem(res, 422).await;
    assert!(body["errors"]["text"].is_array(), "{body}");
    // In a query string.
    let res = app
        .get(
            &format!("/api/v1/users/{}/posts?cursor=%00", alice.id),
            Some(&alice.access),
        )
        .await;
    assert!(res.status().is_client_error(), "{}", res.status());

    // The microblog-compatible API answers in its own shape.
    let res = app
        .post(
            "/api/v1/me/api-keys",
            Some(&alice.access),
            &json!({"name": "web"}),
        )
        .await;
    let key = res.json::<serde_json::Value>().await.unwrap()["key"]
        .as_str()
        .unwrap()
        .to_owned();
    let res = app
        .client
        .post(app.url("/api/tweets"))
        .header("api-key", &key)
        .json(&json!({"tweet_data": "nul\u{0000}here"}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 422);
    let body: serde_json::Value = res.json().await.unwrap();
    assert_eq!(body["result"], false, "{body}");
    // Nothing was stored.
    assert_eq!(
        app.count("SELECT count(*) FROM posts WHERE author_id = $1", alice.id)
            .await,
        0
    );
}
