//! Live connections do not outlive their credentials: a password change, an
//! account deletion or a revoked API key closes the WebSocket (close code
//! 4401), the Server-Sent Events stream (a last `closed` event) and the long
//! poll that used them.

use std::time::Duration;

use futures_util::SinkExt as _;
use serde_json::{json, Value};
use tokio_tungstenite::tungstenite::client::IntoClientRequest as _;
use tokio_tungstenite::tungstenite::Message;

use crate::helpers::{spawn_app, TestApp, PASSWORD};
use crate::stream::{close_code, connect, next_event, Ws};

const REVOKED: u16 = 4401;

async fn connect_with_key(app: &TestApp, key: &str) -> Ws {
    let url = format!("{}/api/v1/stream", app.address.replace("http://", "ws://"));
    let mut request = url.into_client_request().unwrap();
    request
        .headers_mut()
        .insert("api-key", key.parse().unwrap());
    let (ws, response) = tokio_tungstenite::connect_async(request).await.unwrap();
    assert_eq!(response.status(), 101);
    ws
}

async fn api_key(app: &TestApp, token: &str, name: &str) -> (i64, String) {
    let res = app
        .post("/api/v1/me/api-keys", Some(token), &json!({ "name": name }))
        .await;
    assert_eq!(res.status(), 201);
    let created: Value = res.json().await.unwrap();
    (
        created["id"].as_i64().unwrap(),
        created["key"].as_str().unwrap().to_owned(),
    )
}

async fn revoked_close(ws: &mut Ws) {
    let code = close_code(ws).await.expect("a close frame");
    assert_eq!(u16::from(code), REVOKED);
}

/// Still open: a ping is answered.
pub async fn still_open(ws: &mut Ws) {
    ws.send(Message::text(r#"{"type":"ping"}"#)).await.unwrap();
    loop {
        if next_event(ws).await["type"] == "pong" {
            return;
        }
    }
}

/// Reads a Server-Sent Events body to its end (at most 10 s).
async fn sse_until_end(mut res: reqwest::Response) -> String {
    let mut body = String::new();
    loop {
        let chunk = tokio::time::timeout(Duration::from_secs(10), res.chunk())
            .await
            .expect("the stream ends within 10 s")
            .unwrap();
        match chunk {
            Some(bytes) => body.push_str(std::str::from_utf8(&bytes).unwrap()),
            None => return body,
        }
    }
}

#[actix_web::test]
async fn a_password_change_closes_every_live_connection_of_the_user() {
    let app = spawn_app().await;
    let alice = app.user("alice").await;
    let bob = app.user("bobby").await;
    let mut ws = connect(&app, &alice.access, None).await;
    let mut bob_ws = connect(&app, &bob.access, None).await;
    let sse = app
        .client
        .get(app.url("/api/v1/events/stream"))
        .bearer_auth(&alice.access)
        .send()
        .await
        .unwrap();
    assert_eq!(sse.status(), 200);
    let poll = {
        let (client, url, token) = (
            app.client.clone(),
            app.url("/api/v1/events?wait=30"),
            alice.access.clone(),
        );
        tokio::spawn(async move {
            let started = std::time::Instant::now();
            let res = client.get(url).bearer_auth(token).send().await.unwrap();
            (res.status(), started.elapsed())
        })
    };
    still_open(&mut ws).await;
    // Let the long poll attach before the change.
    tokio::time::sleep(Duration::from_millis(1000)).await;

    let res = app
        .put(
            "/api/v1/me/password",
            Some(&alice.access),
            &json!({"current_password": PASSWORD, "new_password": "another long passphrase"}),
        )
        .await;
    assert_eq!(res.status(), 200);

    revoked_close(&mut ws).await;
    let body = sse_until_end(sse).await;
    assert!(
        body.contains("event: closed") && body.contains(&format!("\"code\":{REVOKED}")),
        "{body}"
    );
    let (status, took) = poll.await.unwrap();
    assert_eq!(status, 200);
    assert!(
        took < Duration::from_secs(20),
        "the long poll ended early: {took:?}"
    );
    // The old token opens nothing new, and other users stay connected.
    assert_eq!(
        app.get("/api/v1/events?wait=0", Some(&alice.access))
            .await
            .status(),
        401
    );
    still_open(&mut bob_ws).await;
}

#[actix_web::test]
async fn revoking_an_api_key_closes_only_the_connections_opened_with_it() {
    let app = spawn_app().await;
    let alice = app.user("alice").await;
    let (revoked_id, revoked_key) = api_key(&app, &alice.access, "old laptop").await;
    let (_, kept_key) = api_key(&app, &alice.access, "phone").await;
    let mut by_revoked = connect_with_key(&app, &revoked_key).await;
    let mut by_kept = connect_with_key(&app, &kept_key).await;
    let mut by_token = connect(&app, &alice.access, None).await;
    still_open(&mut by_revoked).await;

    let res = app
        .delete(
            &format!("/api/v1/me/api-keys/{revoked_id}"),
            Some(&alice.access),
        )
        .await;
    assert_eq!(res.status(), 204);

    revoked_close(&mut by_revoked).await;
    still_open(&mut by_kept).await;
    still_open(&mut by_token).await;
}

#[actix_web::test]
async fn deleting_the_account_closes_its_live_connections() {
    let app = spawn_app().await;
    let alice = app.user("alice").await;
    let mut ws = connect(&app, &alice.access, None).await;
    still_open(&mut ws).await;
    let res = app
        .send_json(
            reqwest::Method::DELETE,
            "/api/v1/me",
            Some(&alice.access),
            &json!({ "password": PASSWORD }),
        )
        .await;
    assert_eq!(res.status(), 204);
    revoked_close(&mut ws).await;
}
