//! The microblog-compatible API (`/api/...`, api-key only), the web client
//! served from ROOKERY_STATIC_DIR, CORS, and `rookery seed-demo`: all through
//! a real HTTP client (and the real binary for the seeding).

use std::collections::BTreeSet;
use std::io::Cursor;
use std::process::Command;

use image::{DynamicImage, ImageFormat, Rgb, RgbImage};
use reqwest::multipart::{Form, Part};
use reqwest::{Method, Response};
use rookery::config::{CorsOrigins, StorageSettings};
use serde_json::{json, Value};

use crate::helpers::{assert_problem, spawn_app, spawn_app_with, TestApp};

/// Where local-storage URLs point; the tests fetch the path from the app.
const PUBLIC_URL: &str = "http://media.example";

struct Caller {
    id: i64,
    key: String,
    access: String,
}

/// A registered user with an API key made through the native API.
async fn caller(app: &TestApp, username: &str) -> Caller {
    let user = app.user(username).await;
    let res = app
        .post(
            "/api/v1/me/api-keys",
            Some(&user.access),
            &json!({"name": "web client"}),
        )
        .await;
    assert_eq!(res.status(), 201);
    let created: Value = res.json().await.unwrap();
    Caller {
        id: user.id,
        key: created["key"].as_str().unwrap().to_owned(),
        access: user.access,
    }
}

async fn call(
    app: &TestApp,
    method: Method,
    path: &str,
    key: Option<&str>,
    body: Option<&Value>,
) -> Response {
    let mut req = app.client.request(method, app.url(path));
    if let Some(key) = key {
        req = req.header("api-key", key);
    }
    if let Some(body) = body {
        req = req.json(body);
    }
    req.send().await.unwrap()
}

fn keys(value: &Value) -> BTreeSet<&str> {
    value
        .as_object()
        .unwrap_or_else(|| panic!("not an object: {value}"))
        .keys()
        .map(String::as_str)
        .collect()
}

fn set<'a>(names: &[&'a str]) -> BTreeSet<&'a str> {
    names.iter().copied().collect()
}

/// Asserts a success: the status, JSON, and `"result": true`.
async fn success(res: Response, status: u16) -> Value {
    let got = res.status().as_u16();
    let body: Value = res.json().await.unwrap();
    assert_eq!(got, status, "{body}");
    assert_eq!(body["result"], json!(true), "{body}");
    body
}

/// Asserts the compat error body, exactly, with the given status.
async fn compat_error(res: Response, status: u16) -> Value {
    let got = res.status().as_u16();
    let content_type = res
        .headers()
        .get("content-type")
        .map(|v| v.to_str().unwrap().to_owned());
    let text = res.text().await.unwrap();
    assert_eq!(got, status, "{text}");
    assert_eq!(content_type.as_deref(), Some("application/json"), "{text}");
    let body: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(
        keys(&body),
        set(&["result", "error_type", "error_message"]),
        "{body}"
    );
    assert_eq!(body["result"], json!(false));
    assert!(
        body["error_type"]
            .as_str()
            .is_some_and(|t| !t.is_empty() && !t.contains(' ')),
        "{body}"
    );
    assert!(
        body["error_message"].as_str().is_some_and(|m| m.len() > 5),
        "{body}"
    );
    body
}

async fn tweet(app: &TestApp, who: &Caller, text: &str) -> i64 {
    let res = call(
        app,
        Method::POST,
        "/api/tweets",
        Some(&who.key),
        Some(&json!({"tweet_data": text})),
    )
    .await;
    success(res, 201).await["tweet_id"].as_i64().unwrap()
}

async fn feed(app: &TestApp, who: &Caller, query: &str) -> Vec<Value> {
    let res = call(
        app,
        Method::GET,
        &format!("/api/tweets{query}"),
        Some(&who.key),
        None,
    )
    .await;
    let body = success(res, 200).await;
    assert_eq!(keys(&body), set(&["result", "tweets"]));
    body["tweets"].as_array().unwrap().clone()
}

async fn feed_ids(app: &TestApp, who: &Caller, query: &str) -> Vec<i64> {
    feed(app, who, query)
        .await
        .iter()
        .map(|t| t["id"].as_i64().unwrap())
        .collect()
}

async fn like(app: &TestApp, who: &Caller, id: i64) {
    let path = format!("/api/tweets/{id}/likes");
    let body = success(
        call(app, Method::POST, &path, Some(&who.key), None).await,
        200,
    )
    .await;
    assert_eq!(body, json!({"result": true}));
}

fn png(w: u32, h: u32) -> Vec<u8> {
    let image = RgbImage::from_fn(w, h, |x, y| Rgb([(x * 7) as u8, (y * 5) as u8, 90]));
    let mut out = Cursor::new(Vec::new());
    DynamicImage::ImageRgb8(image)
        .write_to(&mut out, ImageFormat::Png)
        .unwrap();
    out.into_inner()
}

async fn upload(app: &TestApp, key: Option<&str>, form: Form) -> Response {
    let mut req = app.client.post(app.url("/api/medias")).multipart(form);
    if let Some(key) = key {
        req = req.header("api-key", key);
    }
    req.send().await.unwrap()
}

fn file_form(field: &str, bytes: Vec<u8>) -> Form {
    Form::new().part(
        field.to_owned(),
        Part::bytes(bytes)
            .file_name("picture.png")
            .mime_str("image/png")
            .unwrap(),
    )
}

/// Fetches an attachment as a browser would; local URLs point at
/// [`PUBLIC_URL`], which stands for the app.
async fn fetch(app: &TestApp, url: &str) -> Response {
    let path = url
        .strip_prefix(PUBLIC_URL)
        .unwrap_or_else(|| panic!("{url} does not point at ROOKERY_PUBLIC_URL"));
    app.client.get(app.url(path)).send().await.unwrap()
}

/// An app storing media in a temporary directory, linked at [`PUBLIC_URL`].
async fn app_with_media(
    dir: &tempfile::TempDir,
    configure: impl FnOnce(&mut rookery::config::Settings),
) -> TestApp {
    let storage = StorageSettings::Local {
        dir: dir.path().to_owned(),
    };
    spawn_app_with(|s| {
        s.media.storage = storage;
        s.media.public_url = PUBLIC_URL.into();
        configure(s);
    })
    .await
}

fn assert_tweet_shape(tweet: &Value) {
    assert_eq!(
        keys(tweet),
        set(&["id", "content", "attachments", "author", "likes", "stamp"]),
        "{tweet}"
    );
    assert!(tweet["id"].is_i64(), "{tweet}");
    assert!(tweet["content"].is_string(), "{tweet}");
    assert!(
        tweet["attachments"]
            .as_array()
            .unwrap()
            .iter()
            .all(Value::is_string),
        "{tweet}"
    );
    assert_eq!(keys(&tweet["author"]), set(&["id", "name"]), "{tweet}");
    assert!(tweet["author"]["id"].is_i64() && tweet["author"]["name"].is_string());
    for like in tweet["likes"].as_array().unwrap() {
        assert_eq!(keys(like), set(&["user_id", "name"]), "{tweet}");
        assert!(like["user_id"].is_i64() && like["name"].is_string());
    }
    let stamp = tweet["stamp"].as_str().unwrap();
    assert!(stamp.ends_with('Z'), "UTC: {stamp}");
    chrono::DateTime::parse_from_rfc3339(stamp).unwrap();
}

fn assert_user_shape(user: &Value) {
    assert_eq!(
        keys(user),
        set(&["id", "name", "followers", "following"]),
        "{user}"
    );
    assert!(user["id"].is_i64() && user["name"].is_string(), "{user}");
    for list in ["followers", "following"] {
        for entry in user[list].as_array().unwrap() {
            assert_eq!(keys(entry), set(&["id", "name"]), "{user}");
            assert!(entry["id"].is_i64() && entry["name"].is_string());
        }
    }
}

#[actix_web::test]
async fn tweets_are_created_liked_and_deleted_with_exact_shapes() {
    let app = spawn_app().await;
    let alice = caller(&app, "alice").await;
    let bob = caller(&app, "bobby").await;
    app.patch(
        "/api/v1/me",
        Some(&alice.access),
        &json!({"display_name": "Alice A."}),
    )
    .await;

    let res = call(
        &app,
        Method::POST,
        "/api/tweets",
        Some(&alice.key),
        Some(&json!({"tweet_data": "first", "tweet_media_ids": []})),
    )
    .await;
    let created = success(res, 201).await;
    assert_eq!(keys(&created), set(&["result", "tweet_id"]));
    let first = created["tweet_id"].as_i64().unwrap();
    let res = call(
        &app,
        Method::POST,
        "/api/tweets",
        Some(&alice.key),
        Some(&json!({"tweet_data": "second", "tweet_media_ids": null})),
    )
    .await;
    let second = success(res, 201).await["tweet_id"].as_i64().unwrap();
    // The same post the native API shows.
    let native: Value = app
        .get(&format!("/api/v1/posts/{first}"), None)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(native["text"], "first");

    // Likes are the native `like` reaction, idempotent both ways.
    like(&app, &bob, first).await;
    like(&app, &bob, first).await;
    like(&app, &alice, first).await;
    let tweets = feed(&app, &alice, "").await;
    assert_eq!(tweets.len(), 2);
    for t in &tweets {
        assert_tweet_shape(t);
    }
    let t = &tweets[0];
    assert_eq!(t["id"], first);
    assert_eq!(t["content"], "first");
    assert_eq!(t["attachments"], json!([]));
    assert_eq!(t["author"], json!({"id": alice.id, "name": "Alice A."}));
    assert_eq!(
        t["likes"],
        json!([
            {"user_id": alice.id, "name": "Alice A."},
            {"user_id": bob.id, "name": "bobby"},
        ])
    );
    let native: Value = app
        .get(&format!("/api/v1/posts/{first}"), None)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(native["counts"]["reactions"], json!({"like": 2}));

    let unlike = format!("/api/tweets/{first}/likes");
    for _ in 0..2 {
        let res = call(&app, Method::DELETE, &unlike, Some(&bob.key), None).await;
        assert_eq!(success(res, 200).await, json!({"result": true}));
    }
    // Taking back a like leaves another kind of reaction alone.
    app.put(
        &format!("/api/v1/posts/{second}/reactions"),
        Some(&bob.access),
        &json!({"kind": "love"}),
    )
    .await;
    let path = format!("/api/tweets/{second}/likes");
    success(
        call(&app, Method::DELETE, &path, Some(&bob.key), None).await,
        200,
    )
    .await;
    let native: Value = app
        .get(&format!("/api/v1/posts/{second}"), Some(&bob.access))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(native["my_reaction"], "love");
    let tweets = feed(&app, &alice, "").await;
    assert_eq!(
        tweets[0]["likes"],
        json!([{"user_id": alice.id, "name": "Alice A."}])
    );
    assert_eq!(tweets[1]["likes"], json!([]), "a love is not a like");

    // Only the author deletes, whatever the caller's role.
    let path = format!("/api/tweets/{first}");
    let err = compat_error(
        call(&app, Method::DELETE, &path, Some(&bob.key), None).await,
        403,
    )
    .await;
    assert_eq!(err["error_type"], "forbidden");
    sqlx::query("UPDATE users SET role = 'moderator' WHERE id = $1")
        .bind(bob.id)
        .execute(&app.db)
        .await
        .unwrap();
    compat_error(
        call(&app, Method::DELETE, &path, Some(&bob.key), None).await,
        403,
    )
    .await;
    let res = call(&app, Method::DELETE, &path, Some(&alice.key), None).await;
    assert_eq!(success(res, 200).await, json!({"result": true}));
    assert_eq!(feed_ids(&app, &alice, "").await, vec![second]);
    assert_problem(app.get(&format!("/api/v1/posts/{first}"), None).await, 404).await;
    // Gone means 404 from then on, for every tweet route.
    compat_error(
        call(&app, Method::DELETE, &path, Some(&alice.key), None).await,
        404,
    )
    .await;
    compat_error(
        call(&app, Method::POST, &unlike, Some(&alice.key), None).await,
        404,
    )
    .await;
}

#[actix_web::test]
async fn every_error_has_the_compat_shape_and_a_fitting_status() {
    let app = spawn_app_with(|s| s.http.json_limit = 4096).await;
    let alice = caller(&app, "alice").await;
    let bob = caller(&app, "bobby").await;
    let post = tweet(&app, &bob, "bob's").await;
    let key = Some(alice.key.as_str());

    // 401: no key, an empty key, an unknown key, or only a bearer token.
    let routes = [
        (Method::GET, "/api/tweets".to_owned()),
        (Method::POST, "/api/tweets".to_owned()),
        (Method::DELETE, format!("/api/tweets/{post}")),
        (Method::POST, format!("/api/tweets/{post}/likes")),
        (Method::DELETE, format!("/api/tweets/{post}/likes")),
        (Method::POST, "/api/medias".to_owned()),
        (Method::GET, "/api/users/me".to_owned()),
        (Method::GET, format!("/api/users/{}", bob.id)),
        (Method::POST, format!("/api/users/{}/follow", bob.id)),
        (Method::DELETE, format!("/api/users/{}/follow", bob.id)),
    ];
    for (method, path) in &routes {
        let body = json!({"tweet_data": "x"});
        let err = compat_error(
            call(&app, method.clone(), path, None, Some(&body)).await,
            401,
        )
        .await;
        assert_eq!(err["error_type"], "unauthorized", "{method} {path}");
        assert!(
            err["error_message"].as_str().unwrap().contains("api-key"),
            "{err}"
        );
        compat_error(
            call(&app, method.clone(), path, Some("rk_nope"), Some(&body)).await,
            401,
        )
        .await;
        compat_error(
            call(&app, method.clone(), path, Some("  "), Some(&body)).await,
            401,
        )
        .await;
        let res = app
            .client
            .request(method.clone(), app.url(path))
            .bearer_auth(&alice.access)
            .send()
            .await
            .unwrap();
        compat_error(res, 401).await;
    }

    // 400: malformed JSON, and paging that is not a page number and size.
    let res = app
        .client
        .post(app.url("/api/tweets"))
        .header("api-key", &alice.key)
        .header("content-type", "application/json")
        .body("{\"tweet_data\": ")
        .send()
        .await
        .unwrap();
    assert_eq!(compat_error(res, 400).await["error_type"], "bad_request");
    for query in [
        "?offset=0",
        "?limit=0",
        "?offset=-1&limit=5",
        "?offset=abc",
        "?limit=",
    ] {
        compat_error(
            call(&app, Method::GET, &format!("/api/tweets{query}"), key, None).await,
            400,
        )
        .await;
    }

    // 415: not sent as JSON; a JSON body where a form belongs.
    let res = app
        .client
        .post(app.url("/api/tweets"))
        .header("api-key", &alice.key)
        .header("content-type", "text/plain")
        .body(r#"{"tweet_data": "x"}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(
        compat_error(res, 415).await["error_type"],
        "unsupported_media_type"
    );
    let res = call(
        &app,
        Method::POST,
        "/api/medias",
        key,
        Some(&json!({"file": "x"})),
    )
    .await;
    compat_error(res, 415).await;

    // 413: over ROOKERY_JSON_LIMIT.
    let big = json!({"tweet_data": "a".repeat(5000)});
    let err = compat_error(
        call(&app, Method::POST, "/api/tweets", key, Some(&big)).await,
        413,
    )
    .await;
    assert!(
        err["error_message"].as_str().unwrap().contains("4096"),
        "{err}"
    );

    // 422: the wrong shape, and the native text and media rules.
    for body in [
        json!({"tweet_data": 5}),
        json!({"content": "hello"}),
        json!({"tweet_data": "x", "tweet_media_ids": "1"}),
        json!({"tweet_data": "   "}),
        json!({"tweet_data": "a".repeat(501)}),
        json!({"tweet_data": "x", "tweet_media_ids": [1, 2, 3, 4, 5]}),
        json!({"tweet_data": "x", "tweet_media_ids": [424242]}),
    ] {
        let err = compat_error(
            call(&app, Method::POST, "/api/tweets", key, Some(&body)).await,
            422,
        )
        .await;
        assert_eq!(err["error_type"], "validation_error", "{body}");
    }
    let err = compat_error(
        call(
            &app,
            Method::POST,
            "/api/tweets",
            key,
            Some(&json!({"tweet_data": ""})),
        )
        .await,
        422,
    )
    .await;
    assert!(
        err["error_message"].as_str().unwrap().starts_with("text: "),
        "names the field: {err}"
    );
    let path = format!("/api/users/{}/follow", alice.id);
    compat_error(call(&app, Method::POST, &path, key, None).await, 422).await;

    // 404: unknown ids (or ones that are not ids), unknown routes under /api.
    for (method, path) in [
        (Method::DELETE, "/api/tweets/424242"),
        (Method::POST, "/api/tweets/424242/likes"),
        (Method::DELETE, "/api/tweets/424242/likes"),
        (Method::DELETE, "/api/tweets/abc"),
        (Method::GET, "/api/users/424242"),
        (Method::GET, "/api/users/somebody"),
        (Method::POST, "/api/users/424242/follow"),
        (Method::DELETE, "/api/users/424242/follow"),
        (Method::GET, "/api/nothing"),
        (Method::GET, "/api"),
        (Method::GET, "/api/v1x/tweets"),
    ] {
        let err = compat_error(call(&app, method.clone(), path, key, None).await, 404).await;
        assert_eq!(err["error_type"], "not_found", "{method} {path}");
    }

    // 405: a known path with the wrong method says which methods work.
    let res = call(&app, Method::PUT, "/api/tweets", key, Some(&json!({}))).await;
    let allow = res
        .headers()
        .get("allow")
        .map(|v| v.to_str().unwrap().to_owned());
    let err = compat_error(res, 405).await;
    let allow = allow.expect("an Allow header");
    assert!(allow.contains("GET") && allow.contains("POST"), "{allow}");
    assert!(
        err["error_message"].as_str().unwrap().contains("POST"),
        "{err}"
    );

    // The native API keeps its problem documents.
    assert_problem(app.get("/api/v1/nothing", None).await, 404).await;
    assert_problem(app.post("/api/v1/posts", None, &json!({})).await, 401).await;
}

#[actix_web::test]
async fn the_feed_is_ranked_by_likes_then_newest_and_paged_by_page_number() {
    let app = spawn_app().await;
    let alice = caller(&app, "alice").await;
    let bob = caller(&app, "bobby").await;
    let carol = caller(&app, "carol").await;
    let erin = caller(&app, "erin_").await;
    let path = format!("/api/users/{}/follow", bob.id);
    success(
        call(&app, Method::POST, &path, Some(&alice.key), None).await,
        200,
    )
    .await;

    let a1 = tweet(&app, &alice, "alice one").await;
    let b1 = tweet(&app, &bob, "bob one").await;
    let b2 = tweet(&app, &bob, "bob two").await;
    let c1 = tweet(&app, &carol, "carol one, not followed").await;
    let b3 = tweet(&app, &bob, "bob three").await;
    let a2 = tweet(&app, &alice, "alice two").await;
    like(&app, &carol, b1).await;
    like(&app, &erin, b1).await;
    like(&app, &alice, b1).await;
    like(&app, &bob, a1).await;
    like(&app, &alice, c1).await;
    // Other reactions are not likes.
    for who in [&carol, &erin] {
        app.put(
            &format!("/api/v1/posts/{b2}/reactions"),
            Some(&who.access),
            &json!({"kind": "love"}),
        )
        .await;
    }

    let whole = feed_ids(&app, &alice, "").await;
    assert_eq!(whole, vec![b1, a1, a2, b3, b2], "likes, then newest");
    assert!(!whole.contains(&c1), "only followed and own posts");
    // Page numbers start at 1; pages add up to the whole feed.
    assert_eq!(
        feed_ids(&app, &alice, "?offset=1&limit=2").await,
        vec![b1, a1]
    );
    assert_eq!(
        feed_ids(&app, &alice, "?offset=2&limit=2").await,
        vec![a2, b3]
    );
    assert_eq!(feed_ids(&app, &alice, "?offset=3&limit=2").await, vec![b2]);
    assert!(feed_ids(&app, &alice, "?offset=4&limit=2").await.is_empty());
    assert_eq!(feed_ids(&app, &alice, "?limit=3").await, vec![b1, a1, a2]);
    assert_eq!(feed_ids(&app, &alice, "?offset=1").await, whole);
    assert!(feed_ids(&app, &alice, "?offset=2").await.is_empty());
    let huge = format!("?offset={}&limit={}", i64::MAX, i64::MAX);
    assert!(feed_ids(&app, &alice, &huge).await.is_empty());

    // Blocks hide as natively: erin's like vanishes from alice's view once
    // alice blocks her, and bob's posts once bob blocks alice.
    let likers = |tweets: &[Value]| -> Vec<i64> {
        tweets[0]["likes"]
            .as_array()
            .unwrap()
            .iter()
            .map(|l| l["user_id"].as_i64().unwrap())
            .collect()
    };
    let tweets = feed(&app, &alice, "").await;
    assert_eq!(
        likers(&tweets),
        vec![alice.id, erin.id, carol.id],
        "newest first"
    );
    app.put(
        &format!("/api/v1/users/{}/block", erin.id),
        Some(&alice.access),
        &json!({}),
    )
    .await;
    let tweets = feed(&app, &alice, "").await;
    assert_eq!(likers(&tweets), vec![alice.id, carol.id]);
    // Deleted posts disappear.
    app.delete(&format!("/api/v1/posts/{a2}"), Some(&alice.access))
        .await;
    assert_eq!(feed_ids(&app, &alice, "").await, vec![b1, a1, b3, b2]);
    app.put(
        &format!("/api/v1/users/{}/block", alice.id),
        Some(&bob.access),
        &json!({}),
    )
    .await;
    assert_eq!(feed_ids(&app, &alice, "").await, vec![a1]);
    let err = compat_error(
        call(
            &app,
            Method::POST,
            &format!("/api/tweets/{b1}/likes"),
            Some(&alice.key),
            None,
        )
        .await,
        404,
    )
    .await;
    assert_eq!(err["error_type"], "not_found");
}

#[actix_web::test]
async fn the_unpaged_feed_stops_at_the_cap() {
    let app = spawn_app_with(|s| s.http.compat_feed_cap = 3).await;
    let alice = caller(&app, "alice").await;
    let mut ids = Vec::new();
    for i in 0..5 {
        ids.push(tweet(&app, &alice, &format!("post {i}")).await);
    }
    // The oldest post is outside the newest three: its like does not pull it in.
    like(&app, &alice, ids[0]).await;
    let newest: Vec<i64> = ids.iter().rev().take(3).copied().collect();
    assert_eq!(feed_ids(&app, &alice, "").await, newest);
    assert_eq!(feed_ids(&app, &alice, "?offset=1&limit=10").await, newest);
    assert_eq!(
        feed_ids(&app, &alice, "?offset=2&limit=2").await,
        vec![newest[2]]
    );
}

#[actix_web::test]
async fn users_and_follows_have_exact_shapes() {
    let app = spawn_app().await;
    let alice = caller(&app, "alice").await;
    let bob = caller(&app, "bobby").await;
    let carol = caller(&app, "carol").await;
    app.patch(
        "/api/v1/me",
        Some(&bob.access),
        &json!({"display_name": "Bob B."}),
    )
    .await;

    let me = success(
        call(&app, Method::GET, "/api/users/me", Some(&alice.key), None).await,
        200,
    )
    .await;
    assert_eq!(keys(&me), set(&["result", "user"]));
    assert_user_shape(&me["user"]);
    assert_eq!(
        me["user"],
        json!({"id": alice.id, "name": "alice", "followers": [], "following": []})
    );

    let follow = format!("/api/users/{}/follow", bob.id);
    for _ in 0..2 {
        let res = call(&app, Method::POST, &follow, Some(&alice.key), None).await;
        assert_eq!(success(res, 200).await, json!({"result": true}));
    }
    let path = format!("/api/users/{}/follow", alice.id);
    success(
        call(&app, Method::POST, &path, Some(&carol.key), None).await,
        200,
    )
    .await;

    let me = success(
        call(&app, Method::GET, "/api/users/me", Some(&alice.key), None).await,
        200,
    )
    .await;
    assert_user_shape(&me["user"]);
    assert_eq!(
        me["user"]["following"],
        json!([{"id": bob.id, "name": "Bob B."}])
    );
    assert_eq!(
        me["user"]["followers"],
        json!([{"id": carol.id, "name": "carol"}])
    );
    let path = format!("/api/users/{}", bob.id);
    let bob_seen = success(
        call(&app, Method::GET, &path, Some(&carol.key), None).await,
        200,
    )
    .await;
    assert_user_shape(&bob_seen["user"]);
    assert_eq!(
        bob_seen["user"],
        json!({"id": bob.id, "name": "Bob B.", "followers": [{"id": alice.id, "name": "alice"}], "following": []})
    );
    // The same graph the native API shows.
    let native: Value = app
        .get(&format!("/api/v1/users/{}/followers", bob.id), None)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(native["items"][0]["id"], alice.id);

    for _ in 0..2 {
        let res = call(&app, Method::DELETE, &follow, Some(&alice.key), None).await;
        assert_eq!(success(res, 200).await, json!({"result": true}));
    }
    let me = success(
        call(&app, Method::GET, "/api/users/me", Some(&alice.key), None).await,
        200,
    )
    .await;
    assert_eq!(me["user"]["following"], json!([]));

    // A block hides the user both ways, as natively.
    app.put(
        &format!("/api/v1/users/{}/block", alice.id),
        Some(&bob.access),
        &json!({}),
    )
    .await;
    compat_error(
        call(&app, Method::GET, &path, Some(&alice.key), None).await,
        404,
    )
    .await;
    compat_error(
        call(&app, Method::POST, &follow, Some(&alice.key), None).await,
        404,
    )
    .await;
}

#[actix_web::test]
async fn an_uploaded_image_goes_on_a_tweet_and_its_url_loads() {
    let dir = tempfile::tempdir().unwrap();
    let app = app_with_media(&dir, |s| s.media.max_bytes = 64 * 1024).await;
    let alice = caller(&app, "alice").await;
    let key = Some(alice.key.as_str());

    let res = upload(&app, key, file_form("file", png(64, 48))).await;
    let media = success(res, 201).await;
    assert_eq!(keys(&media), set(&["result", "media_id"]));
    let media_id = media["media_id"].as_i64().unwrap();
    let second = success(upload(&app, key, file_form("file", png(20, 20))).await, 201).await;

    let body =
        json!({"tweet_data": "with pictures", "tweet_media_ids": [media_id, second["media_id"]]});
    let res = call(&app, Method::POST, "/api/tweets", key, Some(&body)).await;
    let id = success(res, 201).await["tweet_id"].as_i64().unwrap();
    let tweets = feed(&app, &alice, "").await;
    assert_tweet_shape(&tweets[0]);
    assert_eq!(tweets[0]["id"], id);
    let attachments = tweets[0]["attachments"].as_array().unwrap();
    assert_eq!(attachments.len(), 2);
    let url = attachments[0].as_str().unwrap();
    assert!(url.starts_with(&format!("{PUBLIC_URL}/media/")), "{url}");
    let res = fetch(&app, url).await;
    assert_eq!(res.status(), 200);
    assert!(res.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("image/"));
    let image = image::load_from_memory(&res.bytes().await.unwrap()).unwrap();
    assert_eq!(
        (image.width(), image.height()),
        (64, 48),
        "the first image first"
    );

    // Attached media cannot be attached again.
    let body = json!({"tweet_data": "again", "tweet_media_ids": [media_id]});
    let err = compat_error(
        call(&app, Method::POST, "/api/tweets", key, Some(&body)).await,
        422,
    )
    .await;
    assert!(
        err["error_message"]
            .as_str()
            .unwrap()
            .contains(&media_id.to_string()),
        "{err}"
    );

    // The upload errors of the native pipeline, in the compat shape.
    compat_error(upload(&app, None, file_form("file", png(8, 8))).await, 401).await;
    let err = compat_error(upload(&app, key, file_form("image", png(8, 8))).await, 422).await;
    assert!(
        err["error_message"].as_str().unwrap().contains("file"),
        "{err}"
    );
    let text = Form::new().part(
        "file",
        Part::bytes(b"not an image".to_vec()).file_name("a.txt"),
    );
    compat_error(upload(&app, key, text).await, 415).await;
    let big = file_form("file", vec![0x42; 200 * 1024]);
    let err = compat_error(upload(&app, key, big).await, 413).await;
    assert_eq!(err["error_type"], "payload_too_large");
}

#[actix_web::test]
async fn the_web_client_is_served_with_a_single_page_fallback() {
    let root = tempfile::tempdir().unwrap();
    let site = root.path().join("site");
    std::fs::create_dir_all(site.join("js")).unwrap();
    let index = "<!doctype html><title>client</title><div id=app></div>";
    std::fs::write(site.join("index.html"), index).unwrap();
    std::fs::write(site.join("js/app.js"), "console.log('hi')").unwrap();
    std::fs::write(site.join("style.css"), "body{}").unwrap();
    std::fs::write(site.join(".env"), "SECRET=1").unwrap();
    std::fs::write(root.path().join("secret.txt"), "outside").unwrap();
    let app = spawn_app_with(|s| s.http.static_dir = Some(site.clone())).await;

    let get = |path: &str| app.client.get(app.url(path)).send();
    let header = |res: &Response, name: &str| {
        res.headers()
            .get(name)
            .map(|v| v.to_str().unwrap().to_owned())
            .unwrap_or_default()
    };
    // The entry page: at /, at its own name, and for client-side routes.
    for path in [
        "/",
        "/index.html",
        "/profile/2",
        "/tweets/5/likes",
        "/.env",
        "/%2e%2e/secret.txt",
        "/..%2fsecret.txt",
        "/js/missing.js",
    ] {
        let res = get(path).await.unwrap();
        assert_eq!(res.status(), 200, "{path}");
        assert!(
            header(&res, "content-type").starts_with("text/html"),
            "{path}"
        );
        assert_eq!(header(&res, "cache-control"), "no-cache", "{path}");
        assert!(!header(&res, "etag").is_empty(), "{path}");
        assert_eq!(res.text().await.unwrap(), index, "{path}");
    }
    let res = get("/js/app.js").await.unwrap();
    assert_eq!(res.status(), 200);
    assert!(
        header(&res, "content-type").contains("javascript"),
        "{}",
        header(&res, "content-type")
    );
    assert_eq!(header(&res, "cache-control"), "public, max-age=3600");
    assert_eq!(header(&res, "x-content-type-options"), "nosniff");
    let etag = header(&res, "etag");
    assert!(!etag.is_empty() && !header(&res, "last-modified").is_empty());
    assert_eq!(res.text().await.unwrap(), "console.log('hi')");
    let res = app
        .client
        .get(app.url("/js/app.js"))
        .header("if-none-match", &etag)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 304, "revalidation by ETag");
    let res = get("/style.css").await.unwrap();
    assert!(header(&res, "content-type").starts_with("text/css"));
    let res = app.client.head(app.url("/profile/2")).send().await.unwrap();
    assert_eq!(res.status(), 200);

    // Server paths stay the server's.
    let res = call(&app, Method::GET, "/api/nothing", None, None).await;
    compat_error(res, 404).await;
    assert_problem(get("/api/v1/nothing").await.unwrap(), 404).await;
    assert_problem(get("/media/m/nothing.jpg").await.unwrap(), 404).await;
    assert_problem(get("/media").await.unwrap(), 404).await;
    assert_problem(get("/docs/nothing").await.unwrap(), 404).await;
    assert_problem(get("/healthz/more").await.unwrap(), 404).await;
    assert_eq!(
        get("/healthz").await.unwrap().text().await.unwrap(),
        r#"{"status":"ok"}"#
    );
    assert!(get("/docs").await.unwrap().status().is_redirection());
    let doc: Value = get("/openapi.json").await.unwrap().json().await.unwrap();
    assert!(doc["paths"].is_object());
    assert!(get("/metrics")
        .await
        .unwrap()
        .text()
        .await
        .unwrap()
        .contains("rookery_http_requests_total"));
    // Only GET and HEAD load the app.
    let res = app.client.post(app.url("/profile/2")).send().await.unwrap();
    assert_problem(res, 404).await;
}

#[actix_web::test]
async fn without_a_static_dir_the_root_describes_the_service() {
    let app = spawn_app().await;
    let res = app.get("/", None).await;
    assert_eq!(res.status(), 200);
    let about: Value = res.json().await.unwrap();
    assert_eq!(about["name"], "rookery");
    assert_eq!(about["links"]["docs"], "/docs/");
    assert_eq!(
        app.get(about["links"]["docs"].as_str().unwrap(), None)
            .await
            .status(),
        200
    );
    assert_problem(app.get("/profile/2", None).await, 404).await;
    assert_problem(app.get("/index.html", None).await, 404).await;
}

#[actix_web::test]
async fn cors_origins_are_configurable() {
    let app =
        spawn_app_with(|s| s.http.cors = CorsOrigins::List(vec!["http://client.example".into()]))
            .await;
    let alice = caller(&app, "alice").await;
    let res = app
        .client
        .request(Method::OPTIONS, app.url("/api/tweets"))
        .header("origin", "http://client.example")
        .header("access-control-request-method", "POST")
        .header("access-control-request-headers", "api-key, content-type")
        .send()
        .await
        .unwrap();
    assert!(res.status().is_success(), "{}", res.status());
    let allowed = |res: &Response, name: &str| {
        res.headers()
            .get(name)
            .map(|v| v.to_str().unwrap().to_lowercase())
    };
    assert_eq!(
        allowed(&res, "access-control-allow-origin").as_deref(),
        Some("http://client.example")
    );
    let headers = allowed(&res, "access-control-allow-headers").unwrap();
    assert!(
        headers.contains("api-key") && headers.contains("content-type"),
        "{headers}"
    );
    assert!(allowed(&res, "access-control-allow-methods")
        .unwrap()
        .contains("delete"));

    let send = |origin: &'static str, key: Option<String>| {
        let mut req = app
            .client
            .get(app.url("/api/tweets"))
            .header("origin", origin);
        if let Some(key) = key {
            req = req.header("api-key", key);
        }
        req.send()
    };
    let res = send("http://client.example", Some(alice.key.clone()))
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(
        allowed(&res, "access-control-allow-origin").as_deref(),
        Some("http://client.example")
    );
    // Errors carry the headers too, or the browser would hide their body.
    let res = send("http://client.example", None).await.unwrap();
    assert_eq!(
        allowed(&res, "access-control-allow-origin").as_deref(),
        Some("http://client.example")
    );
    compat_error(res, 401).await;
    // Another origin is answered (the browser enforces CORS), without the headers.
    let res = send("http://elsewhere.example", Some(alice.key.clone()))
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    assert!(allowed(&res, "access-control-allow-origin").is_none());

    // Off by default.
    let plain = spawn_app().await;
    let res = plain
        .client
        .get(plain.url("/healthz"))
        .header("origin", "http://client.example")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    assert!(allowed(&res, "access-control-allow-origin").is_none());
}

#[actix_web::test]
async fn every_compat_endpoint_is_documented_under_its_own_tag() {
    let app = spawn_app().await;
    let doc: Value = app.get("/openapi.json", None).await.json().await.unwrap();
    let compat: Vec<_> = rookery::http::served()
        .into_iter()
        .filter(|(_, path)| path.starts_with("/api/") && !path.starts_with("/api/v1/"))
        .collect();
    assert!(compat.len() >= 10, "{compat:?}");
    for (method, path) in compat {
        let method = method.as_str().to_ascii_lowercase();
        let op = &doc["paths"][&path][&method];
        assert_eq!(op["tags"], json!(["microblog"]), "{method} {path}: {op}");
        assert_eq!(op["security"], json!([{"api_key": []}]), "{method} {path}");
        assert!(op["responses"]["401"].is_object(), "{method} {path}");
    }
    assert!(doc["paths"]["/"]["get"].is_object());
    let tags: Vec<&str> = doc["tags"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap())
        .collect();
    assert!(tags.contains(&"microblog"), "{tags:?}");
    for schema in [
        "ErrorBody",
        "Tweet",
        "Tweets",
        "UserAnswer",
        "TweetCreated",
        "MediaCreated",
    ] {
        assert!(doc["components"]["schemas"][schema].is_object(), "{schema}");
    }
}

fn seed_demo(database_url: &str, media_dir: &std::path::Path) -> String {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_rookery"));
    for var in [
        "REDIS_URL",
        "ROOKERY_LOG",
        "S3_BUCKET",
        "ROOKERY_STATIC_DIR",
    ] {
        cmd.env_remove(var);
    }
    let out = cmd
        .arg("seed-demo")
        .env("DATABASE_URL", database_url)
        .env("ROOKERY_MEDIA_DIR", media_dir)
        .env("ROOKERY_PUBLIC_URL", PUBLIC_URL)
        .env("ROOKERY_LOG", "warn")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

#[actix_web::test]
async fn seed_demo_makes_usable_demo_data_once() {
    let dir = tempfile::tempdir().unwrap();
    let app = app_with_media(&dir, |_| {}).await;
    let first = seed_demo(&app.database_url, dir.path());
    for expected in [
        "created user test ",
        "created user test1 ",
        "created API key 'test'",
        "created API key 'test1'",
        "test follows test1",
        "test1 follows test",
        "created post",
        "never seed demo data on a production database",
    ] {
        assert!(first.contains(expected), "{expected:?} in:\n{first}");
    }

    let test = Caller {
        id: 0,
        key: "test".into(),
        access: String::new(),
    };
    let me = success(
        call(&app, Method::GET, "/api/users/me", Some("test"), None).await,
        200,
    )
    .await;
    assert_eq!(me["user"]["name"], "test");
    assert_eq!(me["user"]["following"][0]["name"], "test1");
    assert_eq!(me["user"]["followers"][0]["name"], "test1");
    let tweets = feed(&app, &test, "").await;
    assert_eq!(tweets.len(), 3, "{tweets:?}");
    assert_eq!(
        tweets[0]["likes"][0]["name"], "test1",
        "the liked post ranks first"
    );
    for t in &tweets {
        assert_tweet_shape(t);
        let url = t["attachments"][0].as_str().unwrap();
        let res = fetch(&app, url).await;
        assert_eq!(res.status(), 200, "{url}");
        assert!(res.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("image/"));
    }
    let me1 = success(
        call(&app, Method::GET, "/api/users/me", Some("test1"), None).await,
        200,
    )
    .await;
    assert_eq!(me1["user"]["name"], "test1");

    // Again: nothing new, and it says so.
    let second = seed_demo(&app.database_url, dir.path());
    assert!(!second.contains("created"), "{second}");
    assert!(second.contains("user test already exists"), "{second}");
    assert_eq!(feed(&app, &test, "").await.len(), 3);
    let counts: (i64, i64, i64) = sqlx::query_as(
        "SELECT (SELECT count(*) FROM users), (SELECT count(*) FROM api_keys), (SELECT count(*) FROM posts)",
    )
    .fetch_one(&app.db)
    .await
    .unwrap();
    assert_eq!(counts, (2, 2, 3));
    // Stored hashed, like every key.
    let stored: Vec<Vec<u8>> = sqlx::query_scalar("SELECT key_hash FROM api_keys")
        .fetch_all(&app.db)
        .await
        .unwrap();
    assert!(stored.iter().all(|h| h.len() == 32 && h != b"test"));
}
