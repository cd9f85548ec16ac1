use serde_json::Value;

use crate::helpers::{assert_problem, spawn_app, spawn_app_with};

#[actix_web::test]
async fn health_and_readiness() {
    let app = spawn_app().await;
    let health: Value = app.get("/healthz", None).await.json().await.unwrap();
    assert_eq!(health["status"], "ok");
    let res = app.get("/readyz", None).await;
    assert_eq!(res.status(), 200);
    let ready: Value = res.json().await.unwrap();
    assert_eq!(ready["postgres"], "ok");
    let expected_redis = if std::env::var("REDIS_URL").is_ok_and(|u| !u.is_empty()) {
        "ok"
    } else {
        "disabled"
    };
    assert_eq!(ready["redis"], expected_redis);
}

#[actix_web::test]
async fn readiness_fails_when_redis_is_down() {
    let app = spawn_app_with(|s| s.redis_url = Some("redis://127.0.0.1:1".into())).await;
    let problem = assert_problem(app.get("/readyz", None).await, 503).await;
    assert!(
        problem["detail"]
            .as_str()
            .unwrap()
            .contains("redis unreachable"),
        "{problem}"
    );
}

#[actix_web::test]
async fn request_ids_are_echoed_or_made() {
    let app = spawn_app().await;
    let res = app
        .client
        .get(app.url("/healthz"))
        .header("x-request-id", "abc-123")
        .send()
        .await
        .unwrap();
    assert_eq!(res.headers()["x-request-id"], "abc-123");
    let res = app.get("/healthz", None).await;
    let made = res.headers()["x-request-id"].to_str().unwrap().to_owned();
    assert_eq!(made.len(), 36, "{made}");
    // Errors carry one too.
    let res = app.get("/nowhere", None).await;
    assert!(res.headers().contains_key("x-request-id"));
    // A hostile id is replaced, not echoed.
    let res = app
        .client
        .get(app.url("/healthz"))
        .header("x-request-id", "a b\tc")
        .send()
        .await
        .unwrap();
    assert_ne!(res.headers()["x-request-id"], "a b\tc");
}

#[actix_web::test]
async fn metrics_are_prometheus_text_by_route_and_status() {
    let app = spawn_app().await;
    app.get("/healthz", None).await;
    app.get("/api/v1/users/nobody", None).await;
    app.get("/random-probe-a1", None).await;
    let res = app.get("/metrics", None).await;
    assert_eq!(res.status(), 200);
    let text = res.text().await.unwrap();
    assert!(
        text.contains(
            r#"rookery_http_requests_total{endpoint="/healthz",method="GET",status="200"} 1"#
        ),
        "{text}"
    );
    assert!(
        text.contains(r#"endpoint="/api/v1/users/{username}",method="GET",status="404""#),
        "{text}"
    );
    assert!(
        text.contains("rookery_http_requests_duration_seconds_bucket"),
        "{text}"
    );
    assert!(
        text.contains("rookery_db_pool_max_connections 20"),
        "{text}"
    );
    // Unmatched paths share one label instead of growing the registry.
    assert!(!text.contains("random-probe-a1"), "{text}");
    assert!(text.contains(r#"endpoint="UNKNOWN""#), "{text}");
}

#[actix_web::test]
async fn openapi_and_docs_are_served() {
    // That it documents every route: openapi::every_route_of_the_table_is_served_and_documented.
    let app = spawn_app().await;
    let doc: Value = app.get("/openapi.json", None).await.json().await.unwrap();
    assert!(doc["openapi"].as_str().unwrap().starts_with("3.1"));
    assert!(doc["components"]["schemas"]["Problem"].is_object());
    assert!(doc["components"]["securitySchemes"]["api_key"].is_object());

    let res = app.get("/docs", None).await;
    assert!(res.status().is_redirection());
    let res = app.get("/docs/", None).await;
    assert_eq!(res.status(), 200);
    assert!(res.text().await.unwrap().contains("swagger"));
    // The UI's assets are vendored: served by us, not fetched from a CDN.
    assert_eq!(
        app.get("/docs/swagger-ui-bundle.js", None).await.status(),
        200
    );
}
