//! The `rookery` binary itself: configuration errors, `user create`, and
//! graceful shutdown.

use std::io::{BufRead as _, BufReader, Write as _};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::helpers::{assert_problem, fresh_database, spawn_app};

const BIN: &str = env!("CARGO_BIN_EXE_rookery");

fn rookery() -> Command {
    let mut cmd = Command::new(BIN);
    for var in [
        "DATABASE_URL",
        "REDIS_URL",
        "ROOKERY_BIND",
        "JWT_SECRET",
        "ROOKERY_LOG",
        "ROOKERY_LOG_FORMAT",
        "RUST_BACKTRACE",
    ] {
        cmd.env_remove(var);
    }
    cmd
}

#[test]
fn a_missing_or_malformed_setting_is_one_clear_line() {
    let out = rookery().output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert_eq!(stderr.trim().lines().count(), 1, "{stderr}");
    assert!(stderr.contains("DATABASE_URL"), "{stderr}");

    let out = rookery().env("DATABASE_URL", "mysql://x").output().unwrap();
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert!(!out.status.success());
    assert!(
        stderr.contains("DATABASE_URL") && !stderr.contains("panicked"),
        "{stderr}"
    );

    let out = rookery()
        .env("DATABASE_URL", "postgres://x/y")
        .env("ROOKERY_BIND", "nowhere")
        .output()
        .unwrap();
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert!(!out.status.success());
    assert!(
        stderr.contains("ROOKERY_BIND") && !stderr.contains("panicked"),
        "{stderr}"
    );
}

#[test]
fn an_out_of_range_variable_is_refused_by_name() {
    for (var, value, reason) in [
        ("ROOKERY_HASH_CONCURRENCY", "65", "must be 1 to 64"),
        ("ROOKERY_FANOUT_LIMIT", "-1", "must be at least 0"),
        (
            "ROOKERY_SUPERVISOR_BATCH_TIMEOUT",
            "0",
            "must be 1 to 3600 seconds",
        ),
    ] {
        let out = rookery()
            .env("DATABASE_URL", "postgres://x/y")
            .env(var, value)
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(2), "{var}={value}");
        let stderr = String::from_utf8(out.stderr).unwrap();
        assert!(
            stderr.contains(var) && stderr.contains(reason) && !stderr.contains("panicked"),
            "{var}={value}: {stderr}"
        );
    }
}

#[actix_web::test]
async fn user_create_makes_an_admin_who_can_log_in() {
    let app = spawn_app().await;
    let mut child = rookery()
        .args([
            "user",
            "create",
            "--username",
            "root_admin",
            "--email",
            "root@example.com",
            "--role",
            "admin",
            "--password-stdin",
        ])
        .env("DATABASE_URL", &app.database_url)
        .env("ROOKERY_LOG", "warn")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(b"an admin password\n")
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("root_admin"));

    let tokens: Value = app
        .login("root_admin", "an admin password")
        .await
        .json()
        .await
        .unwrap();
    let verify: Value = app
        .get("/api/v1/auth/verify", tokens["access_token"].as_str())
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(verify["role"], "admin");

    // Bad input is reported per field, not with a panic.
    let mut child = rookery()
        .args([
            "user",
            "create",
            "--username",
            "x",
            "--email",
            "bad",
            "--password-stdin",
        ])
        .env("DATABASE_URL", &app.database_url)
        .stdin(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(b"short\n").unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("username") && stderr.contains("email") && stderr.contains("password"),
        "{stderr}"
    );
}

#[actix_web::test]
async fn serve_shuts_down_gracefully_on_sigterm() {
    serve_then_signal("-TERM", "SIGTERM").await;
}

#[actix_web::test]
async fn serve_shuts_down_gracefully_on_ctrl_c() {
    serve_then_signal("-INT", "SIGINT").await;
}

/// Starts the real binary on a fresh database, uses it, then stops it with a signal.
async fn serve_then_signal(signal: &str, name: &str) {
    let (_base, _name, url) = fresh_database().await;
    let mut child = rookery()
        .env("DATABASE_URL", &url)
        .env("ROOKERY_BIND", "127.0.0.1:0")
        .env("ROOKERY_LOG_FORMAT", "json")
        .env("ROOKERY_LOG", "info")
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
    let mut port = None;
    let mut saw_warning = false;
    for line in lines.by_ref() {
        let line = line.unwrap();
        let Ok(event) = serde_json::from_str::<Value>(&line) else {
            continue;
        };
        if event["message"]
            .as_str()
            .is_some_and(|m| m.contains("JWT_SECRET is not set"))
        {
            saw_warning = true;
        }
        if let Some(p) = event["port"].as_u64() {
            port = Some(p);
            break;
        }
    }
    let port = port.expect("the server logs its port");
    assert!(saw_warning, "a generated JWT secret is announced loudly");

    let client = reqwest::Client::new();
    let base = format!("http://127.0.0.1:{port}");
    // Migrations ran: registration works against the fresh database.
    let res = client
        .post(format!("{base}/api/v1/auth/register"))
        .json(&json!({"username": "alice", "email": "a@example.com", "password": "long enough"}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 201);
    assert_problem(
        client.get(format!("{base}/nope")).send().await.unwrap(),
        404,
    )
    .await;

    let status = Command::new("kill")
        .args([signal, &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let started = Instant::now();
    let exit = loop {
        if let Some(exit) = child.try_wait().unwrap() {
            break exit;
        }
        assert!(
            started.elapsed() < Duration::from_secs(15),
            "the server did not stop"
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(exit.success(), "{exit:?}");
    let rest: Vec<String> = lines.map_while(Result::ok).collect();
    assert!(
        rest.iter()
            .any(|l| l.contains("shutting down gracefully") && l.contains(name)),
        "{rest:?}"
    );
    assert!(
        rest.iter().any(|l| l.contains("rookery stopped")),
        "{rest:?}"
    );

    crate::helpers::drop_database(&crate::helpers::base_database_url(), &_name)
        .await
        .unwrap();
}
