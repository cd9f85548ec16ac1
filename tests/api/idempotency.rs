//! Creating writes answer from what they wrote, in their own transaction,
//! and accept `Idempotency-Key`: a retry replays the first answer instead of
//! writing again.

use reqwest::{Method, Response};
use serde_json::{json, Value};
use sqlx::{Connection as _, Executor as _};

use crate::helpers::{assert_problem, spawn_app, TestApp};

const KEY: &str = "idempotency-key";

async fn send(
    app: &TestApp,
    method: Method,
    path: &str,
    token: &str,
    key: Option<&str>,
    body: Option<&Value>,
) -> Response {
    let mut req = app.client.request(method, app.url(path)).bearer_auth(token);
    if let Some(key) = key {
        req = req.header(KEY, key);
    }
    if let Some(body) = body {
        req = req.json(body);
    }
    req.send().await.unwrap()
}

fn png(w: u32, h: u32) -> Vec<u8> {
    let image = image::RgbImage::from_pixel(w, h, image::Rgb([10, 200, 30]));
    let mut out = std::io::Cursor::new(Vec::new());
    image::DynamicImage::ImageRgb8(image)
        .write_to(&mut out, image::ImageFormat::Png)
        .unwrap();
    out.into_inner()
}

async fn posts_of(app: &TestApp, user: i64) -> i64 {
    app.count("SELECT count(*) FROM posts WHERE author_id = $1", user)
        .await
}

#[actix_web::test]
async fn a_retried_post_is_written_once_and_its_answer_replayed() {
    let app = spawn_app().await;
    let alice = app.user("alice").await;
    let body = json!({"text": "exactly once"});
    let first = send(
        &app,
        Method::POST,
        "/api/v1/posts",
        &alice.access,
        Some("k-1"),
        Some(&body),
    )
    .await;
    assert_eq!(first.status(), 201);
    assert!(first.headers().get("idempotent-replayed").is_none());
    let location = first.headers()["location"].clone();
    let first: Value = first.json().await.unwrap();

    let again = send(
        &app,
        Method::POST,
        "/api/v1/posts",
        &alice.access,
        Some("k-1"),
        Some(&body),
    )
    .await;
    assert_eq!(again.status(), 201);
    assert_eq!(again.headers()["idempotent-replayed"], "true");
    assert_eq!(again.headers()["location"], location);
    assert_eq!(again.json::<Value>().await.unwrap(), first);
    assert_eq!(posts_of(&app, alice.id).await, 1);

    // Another request under the same key is refused, not replayed.
    let other = json!({"text": "something else"});
    let res = send(
        &app,
        Method::POST,
        "/api/v1/posts",
        &alice.access,
        Some("k-1"),
        Some(&other),
    )
    .await;
    let problem = assert_problem(res, 422).await;
    assert!(
        problem["detail"]
            .as_str()
            .unwrap()
            .contains("Idempotency-Key"),
        "{problem}"
    );
    // So is the same key on another endpoint.
    let res = send(
        &app,
        Method::POST,
        &format!("/api/v1/posts/{}/comments", first["id"]),
        &alice.access,
        Some("k-1"),
        Some(&body),
    )
    .await;
    assert_problem(res, 422).await;

    // Keys are the user's own: bob's k-1 is another request.
    let bob = app.user("bobby").await;
    let res = send(
        &app,
        Method::POST,
        "/api/v1/posts",
        &bob.access,
        Some("k-1"),
        Some(&body),
    )
    .await;
    assert_eq!(res.status(), 201);
    assert!(res.headers().get("idempotent-replayed").is_none());
    assert_eq!(posts_of(&app, bob.id).await, 1);

    // Without a key every request writes; a bad key is a 400.
    for _ in 0..2 {
        let res = send(
            &app,
            Method::POST,
            "/api/v1/posts",
            &alice.access,
            None,
            Some(&body),
        )
        .await;
        assert_eq!(res.status(), 201);
    }
    assert_eq!(posts_of(&app, alice.id).await, 3);
    let res = send(
        &app,
        Method::POST,
        "/api/v1/posts",
        &alice.access,
        Some(&"x".repeat(256)),
        Some(&body),
    )
    .await;
    assert_problem(res, 400).await;
    assert_eq!(posts_of(&app, alice.id).await, 3);
}

#[actix_web::test]
async fn a_key_still_in_flight_gets_a_409_and_an_expired_one_writes_again() {
    let app = spawn_app().await;
    let alice = app.user("alice").await;
    let body = json!({"text": "slow"});
    // Another node's request under this key is still running: it holds the key's lock.
    let mut holder = sqlx::PgConnection::connect(&app.database_url)
        .await
        .unwrap();
    holder
        .execute(
            format!(
                "SELECT pg_advisory_lock(hashtextextended('busy' || ':' || {}::bigint, 0))",
                alice.id
            )
            .as_str(),
        )
        .await
        .unwrap();
    let res = send(
        &app,
        Method::POST,
        "/api/v1/posts",
        &alice.access,
        Some("busy"),
        Some(&body),
    )
    .await;
    let problem = assert_problem(res, 409).await;
    assert!(
        problem["detail"]
            .as_str()
            .unwrap()
            .contains("still being processed"),
        "{problem}"
    );
    assert_eq!(posts_of(&app, alice.id).await, 0);
    // The other request ends (unlocking is immediate; closing the connection
    // would leave the lock to the server's teardown of it).
    holder
        .execute(
            format!(
                "SELECT pg_advisory_unlock(hashtextextended('busy' || ':' || {}::bigint, 0))",
                alice.id
            )
            .as_str(),
        )
        .await
        .unwrap();
    holder.close().await.unwrap();
    let res = send(
        &app,
        Method::POST,
        "/api/v1/posts",
        &alice.access,
        Some("busy"),
        Some(&body),
    )
    .await;
    assert_eq!(res.status(), 201);

    // A day later the key is forgotten: the same request writes again.
    sqlx::query("UPDATE idempotency_keys SET created_at = now() - interval '25 hours'")
        .execute(&app.db)
        .await
        .unwrap();
    let res = send(
        &app,
        Method::POST,
        "/api/v1/posts",
        &alice.access,
        Some("busy"),
        Some(&body),
    )
    .await;
    assert_eq!(res.status(), 201);
    assert!(res.headers().get("idempotent-replayed").is_none());
    assert_eq!(posts_of(&app, alice.id).await, 2);
}

#[actix_web::test]
async fn comments_follows_reactions_and_media_replay_too() {
    let app = spawn_app().await;
    let alice = app.user("alice").await;
    let bob = app.user("bobby").await;
    let post = app.create_post(&bob.access, "react to me").await["id"]
        .as_i64()
        .unwrap();
    let writes = [
        (
            Method::POST,
            format!("/api/v1/posts/{post}/comments"),
            Some(json!({"text": "once"})),
        ),
        (
            Method::PUT,
            format!("/api/v1/users/{}/follow", bob.id),
            None,
        ),
        (
            Method::PUT,
            format!("/api/v1/posts/{post}/reactions"),
            Some(json!({"kind": "love"})),
        ),
    ];
    for (i, (method, path, body)) in writes.iter().enumerate() {
        let key = format!("w-{i}");
        let first = send(
            &app,
            method.clone(),
            path,
            &alice.access,
            Some(&key),
            body.as_ref(),
        )
        .await;
        assert!(first.status().is_success(), "{path}: {}", first.status());
        let status = first.status();
        let first: Value = first.json().await.unwrap();
        let again = send(
            &app,
            method.clone(),
            path,
            &alice.access,
            Some(&key),
            body.as_ref(),
        )
        .await;
        assert_eq!(again.status(), status, "{path}");
        assert_eq!(again.headers()["idempotent-replayed"], "true", "{path}");
        assert_eq!(again.json::<Value>().await.unwrap(), first, "{path}");
    }
    assert_eq!(
        app.count(
            "SELECT count(*) FROM comments WHERE author_id = $1",
            alice.id
        )
        .await,
        1
    );

    // An upload: the same file under the same key, with a new multipart
    // boundary as a real retry would have, is stored once.
    let png = png(8, 8);
    let mut answers = Vec::new();
    for _ in 0..2 {
        let form = reqwest::multipart::Form::new().part(
            "file",
            reqwest::multipart::Part::bytes(png.clone())
                .file_name("a.png")
                .mime_str("image/png")
                .unwrap(),
        );
        let res = app
            .client
            .post(app.url("/api/v1/media"))
            .bearer_auth(&alice.access)
            .header(KEY, "upload-1")
            .multipart(form)
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 201);
        answers.push(res.json::<Value>().await.unwrap());
    }
    assert_eq!(answers[0], answers[1]);
    assert_eq!(
        app.count("SELECT count(*) FROM media WHERE owner_id = $1", alice.id)
            .await,
        1
    );
}

#[actix_web::test]
async fn the_microblog_api_replays_tweets_likes_and_follows() {
    let app = spawn_app().await;
    let alice = app.user("alice").await;
    let bob = app.user("bobby").await;
    let res = app
        .post(
            "/api/v1/me/api-keys",
            Some(&alice.access),
            &json!({"name": "web"}),
        )
        .await;
    let api_key = res.json::<Value>().await.unwrap()["key"]
        .as_str()
        .unwrap()
        .to_owned();
    let post = app.create_post(&bob.access, "like me").await["id"]
        .as_i64()
        .unwrap();
    let calls = [
        (
            "/api/tweets".to_owned(),
            Some(json!({"tweet_data": "from the web client"})),
        ),
        (format!("/api/tweets/{post}/likes"), None),
        (format!("/api/users/{}/follow", bob.id), None),
    ];
    for (i, (path, body)) in calls.iter().enumerate() {
        let key = format!("c-{i}");
        let mut answers = Vec::new();
        for _ in 0..2 {
            let mut req = app
                .client
                .post(app.url(path))
                .header("api-key", &api_key)
                .header(KEY, &key);
            if let Some(body) = body {
                req = req.json(body);
            }
            let res = req.send().await.unwrap();
            assert!(res.status().is_success(), "{path}: {}", res.status());
            answers.push((res.status(), res.json::<Value>().await.unwrap()));
        }
        assert_eq!(answers[0], answers[1], "{path}");
        assert_eq!(answers[0].1["result"], true, "{path}");
    }
    assert_eq!(posts_of(&app, alice.id).await, 1);
    // A conflicting reuse answers in the microblog shape.
    let res = app
        .client
        .post(app.url("/api/tweets"))
        .header("api-key", &api_key)
        .header(KEY, "c-0")
        .json(&json!({"tweet_data": "different"}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 422);
    assert_eq!(res.json::<Value>().await.unwrap()["result"], false);
}

/// The answer is read inside the write's transaction: when reading it fails,
/// nothing was written, so an error never hides a committed write.
#[actix_web::test]
async fn a_write_whose_answer_cannot_be_read_is_not_committed() {
    let app = spawn_app().await;
    let alice = app.user("alice").await;
    // The post's answer reads reactions; creating a post does not touch them.
    sqlx::query("ALTER TABLE reactions RENAME TO reactions_away")
        .execute(&app.db)
        .await
        .unwrap();
    let res = send(
        &app,
        Method::POST,
        "/api/v1/posts",
        &alice.access,
        Some("k"),
        Some(&json!({"text": "answered or not written"})),
    )
    .await;
    assert!(res.status().is_server_error(), "{}", res.status());
    assert_eq!(
        posts_of(&app, alice.id).await,
        0,
        "an error, so nothing committed"
    );
    sqlx::query("ALTER TABLE reactions_away RENAME TO reactions")
        .execute(&app.db)
        .await
        .unwrap();
    // The key was not used up: the retry writes.
    let res = send(
        &app,
        Method::POST,
        "/api/v1/posts",
        &alice.access,
        Some("k"),
        Some(&json!({"text": "answered or not written"})),
    )
    .await;
    assert_eq!(res.status(), 201);
    assert_eq!(posts_of(&app, alice.id).await, 1);
}
