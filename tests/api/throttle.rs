//! What costs a password hash is throttled as OWASP advises: failed checks
//! per client address (so colleagues behind one office's address log in
//! freely), all checks per account whichever of its names is used,
//! registrations per address; shared by the nodes through Redis.

use std::num::NonZeroU32;
use std::time::Duration;

use reqwest::{Method, Response};
use rookery::app::startup::Application;
use rookery::config::{JwtSecret, Settings};
use serde_json::{json, Value};

use crate::helpers::{assert_problem, spawn_app_with, TestApp, JWT_SECRET, PASSWORD};

fn per_minute(n: u32) -> NonZeroU32 {
    NonZeroU32::new(n).unwrap()
}

/// Logs in as `login` from `address` (the app trusts the proxy header).
async fn login_from(
    base: &str,
    app: &TestApp,
    address: &str,
    login: &str,
    password: &str,
) -> Response {
    app.client
        .post(format!("{base}/api/v1/auth/login"))
        .header("x-forwarded-for", address)
        .json(&json!({"login": login, "password": password}))
        .send()
        .await
        .unwrap()
}

/// Asserts a 429 problem whose `Retry-After` is within one interval.
async fn assert_throttled(res: Response, max_wait: u64) {
    let retry_after: u64 = res
        .headers()
        .get("retry-after")
        .expect("a 429 says when to retry")
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(
        (1..=max_wait).contains(&retry_after),
        "Retry-After {retry_after}"
    );
    let problem = assert_problem(res, 429).await;
    assert_eq!(problem["type"], "urn:rookery:problem:rate-limited");
}

async fn throttled_app(checks: u32, registrations: u32) -> TestApp {
    spawn_app_with(|s| {
        s.auth.login_per_minute = per_minute(checks);
        s.auth.register_per_minute = per_minute(registrations);
        s.http.trust_proxy = true;
    })
    .await
}

#[actix_web::test]
async fn colleagues_behind_one_address_log_in_without_being_refused() {
    let app = throttled_app(3, 100).await;
    let office = "203.0.113.7";
    let names: Vec<String> = (0..8).map(|i| format!("colleague{i}")).collect();
    for name in &names {
        app.register(name).await;
    }
    // Eight successful logins from one address, against a limit of three.
    for name in &names {
        let res = login_from(&app.address, &app, office, name, PASSWORD).await;
        assert_eq!(res.status(), 200, "{name}");
    }
    // Failures still count: three of them, and the office waits.
    for name in &names[..3] {
        let res = login_from(&app.address, &app, office, name, "wrong password").await;
        assert_problem(res, 401).await;
    }
    let res = login_from(&app.address, &app, office, &names[3], PASSWORD).await;
    assert_throttled(res, 20).await;
    // Another address is not affected.
    let res = login_from(&app.address, &app, "203.0.113.8", &names[3], PASSWORD).await;
    assert_eq!(res.status(), 200);
}

#[actix_web::test]
async fn one_account_is_limited_across_addresses_by_username_or_email() {
    let app = throttled_app(3, 100).await;
    app.register("alice").await;
    app.register("bob").await;
    for (address, login) in [
        ("198.51.100.1", "alice"),
        ("198.51.100.2", "alice@example.com"),
        ("198.51.100.3", "ALICE@Example.com"),
    ] {
        let res = login_from(&app.address, &app, address, login, "wrong password").await;
        assert_problem(res, 401).await;
    }
    // The fourth attempt on the account, by either name and from a fresh
    // address, is refused before the password is checked.
    for (address, login) in [
        ("198.51.100.4", "alice@example.com"),
        ("198.51.100.5", "alice"),
    ] {
        let res = login_from(&app.address, &app, address, login, PASSWORD).await;
        assert_throttled(res, 20).await;
    }
    // Other accounts are not.
    let res = login_from(&app.address, &app, "198.51.100.6", "bob", PASSWORD).await;
    assert_eq!(res.status(), 200);
}

#[actix_web::test]
async fn unknown_logins_are_refused_like_accounts_so_refusals_reveal_nothing() {
    let app = throttled_app(3, 100).await;
    for (i, login) in ["nobody", "NOBODY", "nobody"].iter().enumerate() {
        let address = format!("192.0.2.{}", i + 1);
        let res = login_from(&app.address, &app, &address, login, "wrong password").await;
        assert_problem(res, 401).await;
    }
    let res = login_from(&app.address, &app, "192.0.2.9", "nobody", "wrong password").await;
    assert_throttled(res, 20).await;
}

#[actix_web::test]
async fn registrations_are_throttled_per_address() {
    let app = throttled_app(10, 2).await;
    let register = async |username: &str, address: &str| {
        app.client
            .post(app.url("/api/v1/auth/register"))
            .header("x-forwarded-for", address)
            .json(&json!({"username": username, "email": format!("{username}@example.com"), "password": PASSWORD}))
            .send()
            .await
            .unwrap()
    };
    // Invalid requests hash nothing and do not count.
    assert_problem(register("x", "192.0.2.50").await, 422).await;
    assert_eq!(register("carol", "192.0.2.50").await.status(), 201);
    assert_eq!(register("dave", "192.0.2.50").await.status(), 201);
    assert_throttled(register("erin", "192.0.2.50").await, 30).await;
    // Nothing was created for the refused one; another address may register.
    assert_eq!(register("erin", "192.0.2.51").await.status(), 201);
}

#[actix_web::test]
async fn password_changes_are_throttled_per_account() {
    let app = throttled_app(3, 100).await;
    // The login is the account's first check.
    let alice = app.user("alice").await;
    let change = async |current: &str| {
        app.put(
            "/api/v1/me/password",
            Some(&alice.access),
            &json!({"current_password": current, "new_password": "a brand new password"}),
        )
        .await
    };
    for _ in 0..2 {
        assert_problem(change("wrong password").await, 422).await;
    }
    assert_throttled(change(PASSWORD).await, 20).await;
    // The refused change changed nothing: a change would have revoked the
    // access token (its version is bumped).
    let me = app.get("/api/v1/me", Some(&alice.access)).await;
    assert_eq!(me.status(), 200, "the old tokens still work");
}

#[actix_web::test]
async fn account_deletions_are_throttled_per_account() {
    let app = throttled_app(3, 100).await;
    let alice = app.user("alice").await;
    let delete = async |password: &str| {
        app.send_json(
            Method::DELETE,
            "/api/v1/me",
            Some(&alice.access),
            &json!({ "password": password }),
        )
        .await
    };
    for _ in 0..2 {
        assert_problem(delete("wrong password").await, 422).await;
    }
    assert_throttled(delete(PASSWORD).await, 20).await;
    let me: Value = app
        .get("/api/v1/me", Some(&alice.access))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(me["username"], "alice", "the account is still there");
}

/// A second node on `app`'s database, with its settings: another process
/// would be the same (cluster.rs starts real ones), only slower to start.
async fn second_node(app: &TestApp, redis_url: &str, checks: u32) -> String {
    let mut settings = Settings::with_database(&app.database_url).unwrap();
    settings.http.bind = "127.0.0.1:0".parse().unwrap();
    settings.auth.jwt = JwtSecret {
        secret: JWT_SECRET.into(),
        generated: false,
    };
    settings.redis_url = Some(redis_url.into());
    settings.auth.login_per_minute = per_minute(checks);
    settings.http.trust_proxy = true;
    settings.http.shutdown_timeout = Duration::from_secs(1);
    let node = Application::build(settings).await.expect("build node B");
    let base = format!("http://127.0.0.1:{}", node.port());
    actix_web::rt::spawn(node.run_until_stopped());
    base
}

fn redis_url() -> String {
    std::env::var("REDIS_URL")
        .ok()
        .filter(|u| !u.is_empty())
        .expect("REDIS_URL must be set for the shared-limit test: run it through scripts/test.sh")
}

#[actix_web::test]
async fn nodes_sharing_redis_share_the_limits() {
    let redis = redis_url();
    let a = spawn_app_with(|s| {
        s.auth.login_per_minute = per_minute(3);
        s.http.trust_proxy = true;
        s.redis_url = Some(redis.clone().into());
    })
    .await;
    let b = second_node(&a, &redis, 3).await;
    a.register("alice").await;
    a.register("bob").await;

    // One account, attempts spread over both nodes.
    for (node, address) in [
        (&a.address, "10.9.0.1"),
        (&b, "10.9.0.2"),
        (&a.address, "10.9.0.3"),
    ] {
        assert_problem(
            login_from(node, &a, address, "alice", "wrong password").await,
            401,
        )
        .await;
    }
    assert_throttled(login_from(&b, &a, "10.9.0.4", "alice", PASSWORD).await, 20).await;

    // One address's failures, spread over both nodes.
    for (node, login) in [(&a.address, "x1"), (&b, "x2"), (&a.address, "x3")] {
        assert_problem(
            login_from(node, &a, "10.9.9.9", login, "wrong password").await,
            401,
        )
        .await;
    }
    assert_throttled(login_from(&b, &a, "10.9.9.9", "bob", PASSWORD).await, 20).await;
    // bob himself is fine from elsewhere, on either node.
    assert_eq!(
        login_from(&b, &a, "10.9.0.5", "bob", PASSWORD)
            .await
            .status(),
        200
    );
}

#[actix_web::test]
async fn without_redis_each_node_still_limits_on_its_own() {
    // Nothing listens on port 1: every Redis call fails, and the node falls
    // back to its in-process limits instead of refusing or allowing everyone.
    let app = spawn_app_with(|s| {
        s.auth.login_per_minute = per_minute(3);
        s.http.trust_proxy = true;
        s.redis_url = Some("redis://127.0.0.1:1".to_owned().into());
    })
    .await;
    app.register("alice").await;
    assert_eq!(
        login_from(&app.address, &app, "10.8.0.1", "alice", PASSWORD)
            .await
            .status(),
        200
    );
    for address in ["10.8.0.2", "10.8.0.3"] {
        assert_problem(
            login_from(&app.address, &app, address, "alice", "wrong password").await,
            401,
        )
        .await;
    }
    assert_throttled(
        login_from(&app.address, &app, "10.8.0.4", "alice", PASSWORD).await,
        20,
    )
    .await;
}
