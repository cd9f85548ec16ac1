//! Display names and bios are what people read as who someone is: they are
//! stored in NFC, and invisible formatting (bidirectional controls, zero-width
//! characters) that lets one name pass for another is refused by name.

use reqwest::Method;
use serde_json::{json, Value};

use crate::helpers::{assert_problem, spawn_app, PASSWORD};

#[actix_web::test]
async fn profiles_refuse_bidi_overrides_and_zero_width_characters() {
    let app = spawn_app().await;
    let alice = app.user("alice").await;
    let patch = async |body: Value| {
        app.send_json(Method::PATCH, "/api/v1/me", Some(&alice.access), &body)
            .await
    };
    assert_eq!(
        patch(json!({"display_name": "Alice", "bio": "hello"}))
            .await
            .status(),
        200
    );

    // "Alice" followed by a right-to-left override: clients would show the
    // rest reversed.
    let problem = assert_problem(
        patch(json!({"display_name": "Alice\u{202E}ecilA"})).await,
        422,
    )
    .await;
    assert!(
        problem["detail"].as_str().unwrap().contains("display_name"),
        "{problem}"
    );
    let message = problem["errors"]["display_name"][0].as_str().unwrap();
    assert!(message.contains("bidirectional"), "{message}");
    assert!(message.contains("U+202E"), "{message}");

    // An isolate, a zero-width space and a zero-width joiner, in either field.
    for (field, value) in [
        ("display_name", "\u{2067}Alice\u{2069}"),
        ("display_name", "Al\u{200B}ice"),
        ("bio", "the real\u{200D}alice"),
        ("bio", "\u{FEFF}hello"),
    ] {
        let problem = assert_problem(patch(json!({ field: value })).await, 422).await;
        assert!(
            problem["errors"][field].is_array(),
            "{field} {value:?}: {problem}"
        );
    }

    // Nothing of the refused changes was stored.
    let me: Value = app
        .get("/api/v1/me", Some(&alice.access))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(me["display_name"], "Alice");
    assert_eq!(me["bio"], "hello");
}

#[actix_web::test]
async fn profiles_keep_every_script_and_are_stored_in_nfc() {
    let app = spawn_app().await;
    let alice = app.user("alice").await;
    // "Алиса Петрова" in Cyrillic, and a bio with "é" written as e + U+0301.
    let res = app
        .send_json(
            Method::PATCH,
            "/api/v1/me",
            Some(&alice.access),
            &json!({"display_name": "Алиса Петрова", "bio": "Ре\u{0301}зюме: cafe\u{0301}, 東京, مرحبا"}),
        )
        .await;
    assert_eq!(res.status(), 200);
    let me: Value = res.json().await.unwrap();
    assert_eq!(me["display_name"], "Алиса Петрова");
    assert_eq!(me["bio"], "Ре\u{0301}зюме: caf\u{00E9}, 東京, مرحبا");
    // Others see the same stored text.
    let profile: Value = app
        .get("/api/v1/users/alice", None)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(profile["display_name"], "Алиса Петрова");
    assert_eq!(profile["bio"], "Ре\u{0301}зюме: caf\u{00E9}, 東京, مرحبا");
}

#[actix_web::test]
async fn registration_applies_the_same_rules_to_the_display_name() {
    let app = spawn_app().await;
    let register = async |display_name: &str| {
        app.post(
            "/api/v1/auth/register",
            None,
            &json!({"username": "bob", "email": "bob@example.com", "password": PASSWORD, "display_name": display_name}),
        )
        .await
    };
    let problem = assert_problem(register("b\u{200C}ob").await, 422).await;
    assert!(problem["errors"]["display_name"].is_array(), "{problem}");
    assert!(problem["errors"].get("username").is_none(), "{problem}");
    // Nothing was created: the clean name registers the same username.
    let res = register("Бо\u{0301}б").await;
    assert_eq!(res.status(), 201);
    let account: Value = res.json().await.unwrap();
    assert_eq!(account["display_name"], "Бо\u{0301}б");
}
