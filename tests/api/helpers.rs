use std::time::{Duration, Instant};

use reqwest::{Client, Response};
use rookery::app::startup::Application;
use rookery::config::Settings;
use serde_json::{json, Value};
use sqlx::{Connection as _, Executor as _, PgConnection, PgPool};

pub const PASSWORD: &str = "correct horse battery";
pub const JWT_SECRET: &str = "test-secret-that-is-at-least-32-bytes-long";

pub fn base_database_url() -> String {
    std::env::var("DATABASE_URL")
        .expect("DATABASE_URL must be set: run the tests through scripts/test.sh")
}

/// The URL of another database on the same server.
pub fn database_url_for(base: &str, name: &str) -> String {
    let without_query = base.split('?').next().unwrap_or(base);
    let (server, _) = without_query
        .rsplit_once('/')
        .expect("DATABASE_URL has a database path");
    format!("{server}/{name}")
}

pub struct TestApp {
    pub address: String,
    pub engine: rookery::domain::events::Engine,
    pub client: Client,
    pub db: PgPool,
    pub database_url: String,
    db_name: String,
    base_url: String,
}

pub struct TestUser {
    pub id: i64,
    pub access: String,
    pub refresh: String,
}

/// A fresh database, migrated, dropped again when the app is dropped.
pub async fn fresh_database() -> (String, String, String) {
    let base = base_database_url();
    let name = format!("rookery_test_{}", uuid::Uuid::new_v4().simple());
    let mut conn = PgConnection::connect(&base)
        .await
        .expect("connect to the test server");
    conn.execute(format!(r#"CREATE DATABASE "{name}""#).as_str())
        .await
        .expect("create test database");
    let url = database_url_for(&base, &name);
    (base, name, url)
}

pub async fn spawn_app() -> TestApp {
    spawn_app_with(|_| {}).await
}

pub async fn spawn_app_with(configure: impl FnOnce(&mut Settings)) -> TestApp {
    rookery::app::telemetry::init(
        &std::env::var("TEST_LOG").unwrap_or_else(|_| "off".into()),
        rookery::cli::LogFormat::Pretty,
    );
    let (base_url, db_name, database_url) = fresh_database().await;
    let mut settings = Settings::with_database(&database_url).unwrap();
    settings.http.bind = "127.0.0.1:0".parse().unwrap();
    settings.auth.jwt = rookery::config::JwtSecret {
        secret: JWT_SECRET.into(),
        generated: false,
    };
    settings.redis_url = std::env::var("REDIS_URL")
        .ok()
        .filter(|u| !u.is_empty())
        .map(Into::into);
    settings.http.shutdown_timeout = Duration::from_secs(1);
    configure(&mut settings);
    let db = rookery::app::db::pool(&settings.database).unwrap();
    rookery::app::db::migrate(&db)
        .await
        .expect("migrate test database");
    let app = Application::build(settings).await.expect("build app");
    let address = format!("http://127.0.0.1:{}", app.port());
    let engine = app.engine();
    actix_web::rt::spawn(app.run_until_stopped());
    TestApp {
        address,
        engine,
        client: Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap(),
        db,
        database_url,
        db_name,
        base_url,
    }
}

/// Drops a test's database, closing whatever still uses it.
pub async fn drop_database(base: &str, name: &str) -> Result<(), sqlx::Error> {
    let mut conn = PgConnection::connect(base).await?;
    conn.execute(format!(r#"DROP DATABASE IF EXISTS "{name}" WITH (FORCE)"#).as_str())
        .await?;
    Ok(())
}

impl Drop for TestApp {
    fn drop(&mut self) {
        let (base, name) = (self.base_url.clone(), self.db_name.clone());
        // Drop runs outside async context; a short-lived runtime on its own thread does the cleanup.
        let _ = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            let _ = rt.block_on(drop_database(&base, &name));
        })
        .join();
    }
}

impl TestApp {
    /// Suspends an account as the domain does (announcing it, so every
    /// cache forgets the user); no endpoint does this yet.
    pub async fn suspend(&self, user_id: i64) {
        let events = rookery::domain::events::EventSink::new(Some(self.engine.clone()));
        let changed = rookery::domain::accounts::users::set_status(
            &self.db,
            &events,
            user_id,
            rookery::domain::accounts::Status::Suspended,
        )
        .await
        .unwrap();
        assert!(changed);
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.address, path)
    }

    pub async fn get(&self, path: &str, token: Option<&str>) -> Response {
        let mut req = self.client.get(self.url(path));
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        req.send().await.unwrap()
    }

    pub async fn send_json(
        &self,
        method: reqwest::Method,
        path: &str,
        token: Option<&str>,
        body: &Value,
    ) -> Response {
        let mut req = self.client.request(method, self.url(path)).json(body);
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        req.send().await.unwrap()
    }

    pub async fn put(&self, path: &str, token: Option<&str>, body: &Value) -> Response {
        self.send_json(reqwest::Method::PUT, path, token, body)
            .await
    }

    pub async fn patch(&self, path: &str, token: Option<&str>, body: &Value) -> Response {
        self.send_json(reqwest::Method::PATCH, path, token, body)
            .await
    }

    pub async fn delete(&self, path: &str, token: Option<&str>) -> Response {
        let mut req = self.client.delete(self.url(path));
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        req.send().await.unwrap()
    }

    /// The single `bigint` that `sql` (with `$1` bound to `id`) selects, such
    /// as a count of rows.
    pub async fn count(&self, sql: &str, id: i64) -> i64 {
        sqlx::query_scalar::<_, i64>(sql)
            .bind(id)
            .fetch_one(&self.db)
            .await
            .unwrap()
    }

    /// Creates a post and returns its JSON.
    pub async fn create_post(&self, token: &str, text: &str) -> Value {
        let res = self
            .post("/api/v1/posts", Some(token), &json!({ "text": text }))
            .await;
        assert_eq!(res.status(), 201, "create post");
        res.json().await.unwrap()
    }

    /// `n` users inserted straight into the database, with access tokens signed
    /// by the server's key: for tests that need many callers but not logins.
    pub async fn bulk_users(&self, prefix: &str, n: usize) -> Vec<TestUser> {
        let keys =
            rookery::domain::accounts::JwtKeys::new(&JWT_SECRET.into(), Duration::from_secs(900));
        let mut users = Vec::with_capacity(n);
        for i in 0..n {
            let name = format!("{prefix}{i}");
            let id: i64 = sqlx::query_scalar(
                "INSERT INTO users (username, email, password_hash) VALUES ($1, $2, 'x') RETURNING id",
            )
            .bind(&name)
            .bind(format!("{name}@example.com"))
            .fetch_one(&self.db)
            .await
            .unwrap();
            let (access, _) = keys
                .issue(id, rookery::domain::accounts::Role::User, 0)
                .unwrap();
            users.push(TestUser {
                id,
                access,
                refresh: String::new(),
            });
        }
        users
    }

    pub async fn post(&self, path: &str, token: Option<&str>, body: &Value) -> Response {
        self.send_json(reqwest::Method::POST, path, token, body)
            .await
    }

    /// POST /api/v1/media with a multipart form.
    pub async fn upload(&self, token: Option<&str>, form: reqwest::multipart::Form) -> Response {
        let mut req = self.client.post(self.url("/api/v1/media")).multipart(form);
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        req.send().await.unwrap()
    }

    pub async fn register(&self, username: &str) -> Value {
        let res = self
            .post(
                "/api/v1/auth/register",
                None,
                &json!({"username": username, "email": format!("{username}@example.com"), "password": PASSWORD}),
            )
            .await;
        assert_eq!(res.status(), 201, "register {username}");
        res.json().await.unwrap()
    }

    pub async fn login(&self, login: &str, password: &str) -> Response {
        self.post(
            "/api/v1/auth/login",
            None,
            &json!({"login": login, "password": password}),
        )
        .await
    }

    /// Registers and logs in.
    pub async fn user(&self, username: &str) -> TestUser {
        let account = self.register(username).await;
        let res = self.login(username, PASSWORD).await;
        assert_eq!(res.status(), 200);
        let tokens: Value = res.json().await.unwrap();
        TestUser {
            id: account["id"].as_i64().unwrap(),
            access: tokens["access_token"].as_str().unwrap().to_owned(),
            refresh: tokens["refresh_token"].as_str().unwrap().to_owned(),
        }
    }
}

/// Waits until `user` has a notification of `kind` about `post_id` (and
/// `comment_id`, when given): what the notification supervisor made of a
/// domain event, as the user sees it.
pub async fn notified(
    app: &TestApp,
    user: &TestUser,
    kind: &str,
    post_id: i64,
    comment_id: Option<i64>,
) {
    eventually(
        &format!("a {kind} notification about post {post_id}"),
        || async {
            let page: Value = app
                .get("/api/v1/notifications", Some(&user.access))
                .await
                .json()
                .await
                .unwrap();
            page["items"].as_array().unwrap().iter().any(|n| {
                n["kind"] == kind
                    && n["post_id"] == post_id
                    && comment_id.is_none_or(|c| n["comment_id"] == c)
            })
        },
    )
    .await;
}

/// Waits (up to 10 s) until `check` holds: for work the server does in the
/// background, such as fan-out or a session stopping.
pub async fn eventually<F, Fut>(what: &str, mut check: F)
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

/// Asserts an RFC 9457 problem document with the given status, and returns it.
pub async fn assert_problem(res: Response, status: u16) -> Value {
    assert_eq!(res.status().as_u16(), status, "unexpected status");
    let content_type = res
        .headers()
        .get("content-type")
        .map(|v| v.to_str().unwrap().to_owned());
    assert_eq!(content_type.as_deref(), Some("application/problem+json"));
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["status"], status);
    assert!(
        body["type"].as_str().is_some_and(|t| !t.is_empty()),
        "{body}"
    );
    assert!(
        body["title"].as_str().is_some_and(|t| !t.is_empty()),
        "{body}"
    );
    assert!(
        body["detail"].as_str().is_some_and(|t| !t.is_empty()),
        "{body}"
    );
    body
}
