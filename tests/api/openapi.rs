//! The OpenAPI document against the server: every route of the route table
//! documented, the shared error responses, the constraints its schemas
//! declare (checked against the validation code), and where schemathesis
//! found the server accepting what the document refuses, each through a real
//! client. scripts/schemathesis/run.sh runs schemathesis itself.

use std::collections::{BTreeMap, BTreeSet};

use regex::{Regex, RegexBuilder};
use rookery::domain::accounts::validate;
use rookery::domain::posts::text;
use serde_json::{json, Value};
use utoipa::OpenApi as _;

use crate::helpers::{assert_problem, spawn_app, PASSWORD};

const METHODS: [&str; 8] = [
    "get", "put", "post", "delete", "options", "head", "patch", "trace",
];

/// `(method, path, operation)` of every operation in the document.
fn operations(doc: &Value) -> Vec<(&str, &str, &Value)> {
    let mut found = Vec::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for method in METHODS {
            if let Some(op) = item.get(method) {
                found.push((method, path.as_str(), op));
            }
        }
    }
    found
}

fn is_microblog(path: &str) -> bool {
    path.starts_with("/api/") && !path.starts_with("/api/v1/")
}

/// A path of the document with a sample value for each parameter (a media
/// key with a slash in it, as keys have).
fn sample(path: &str) -> String {
    let mut out = String::new();
    let mut rest = path;
    while let Some(open) = rest.find('{') {
        let close = open + rest[open..].find('}').unwrap();
        out.push_str(&rest[..open]);
        out.push_str(match &rest[open + 1..close] {
            "key" => "m/none.jpg",
            "username" => "nobody",
            _ => "1",
        });
        rest = &rest[close + 1..];
    }
    out.push_str(rest);
    out
}

/// The route table's list of what it registers (not the document's), each
/// route documented, each route really served, and nothing documented that
/// is not served.
#[actix_web::test]
async fn every_route_of_the_table_is_served_and_documented() {
    let app = spawn_app().await;
    let doc: Value = app.get("/openapi.json", None).await.json().await.unwrap();
    let served = rookery::http::served();
    assert!(served.len() >= 50, "{served:?}");
    let mut methods: BTreeMap<&str, BTreeSet<&str>> = BTreeMap::new();
    for (method, path) in &served {
        let what = format!("{method} {path}");
        // HEAD is GET without the body: the GET documents it.
        let documented = match method.as_str() {
            "HEAD" => "get".to_owned(),
            other => other.to_ascii_lowercase(),
        };
        assert!(
            doc["paths"][path][&documented].is_object(),
            "{what} is served but not documented"
        );
        methods.entry(path).or_default().insert(method.as_str());
        // Routed by the app: neither the method refused nor the path unknown.
        let res = app
            .client
            .request(method.as_str().parse().unwrap(), app.url(&sample(path)))
            .send()
            .await
            .unwrap();
        assert_ne!(res.status(), 405, "{what}");
        let body = res.text().await.unwrap();
        assert!(!body.contains("no route for"), "{what}: {body}");
    }
    for (method, path, _) in operations(&doc) {
        assert!(
            methods
                .get(path)
                .is_some_and(|m| m.contains(method.to_ascii_uppercase().as_str())),
            "{method} {path} is documented but not served"
        );
    }
    // The operations on a path share one resource: another method is a 405
    // whose Allow names them all.
    for (path, allowed) in methods {
        let other = ["PATCH", "PUT", "DELETE", "POST", "GET"]
            .into_iter()
            .find(|m| !allowed.contains(m))
            .unwrap();
        let res = app
            .client
            .request(other.parse().unwrap(), app.url(&sample(path)))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 405, "{other} {path}");
        let allow = res.headers()["allow"].to_str().unwrap().to_owned();
        assert_eq!(
            allow.split(", ").collect::<BTreeSet<_>>(),
            allowed,
            "{other} {path}: Allow: {allow}"
        );
    }
}

/// Asserts that `op` documents `status`: by the shared response `name`, or
/// with an answer of its own (its own words for the same status).
fn documents(op: &Value, status: &str, name: &str, what: &str) {
    let answer = &op["responses"][status];
    let shared = answer["$ref"] == format!("#/components/responses/{name}");
    let own = answer["content"].is_object() || answer["description"].is_string();
    assert!(shared || own, "{what} does not document {status}: {answer}");
}

#[actix_web::test]
async fn openapi_error_answers_are_shared_responses_on_every_operation_they_apply_to() {
    let app = spawn_app().await;
    let doc: Value = app.get("/openapi.json", None).await.json().await.unwrap();
    let shared = &doc["components"]["responses"];
    for (name, content_type, schema) in [
        ("BadRequest", "application/problem+json", "Problem"),
        (
            "UnsupportedMediaType",
            "application/problem+json",
            "Problem",
        ),
        ("MicroblogBadRequest", "application/json", "ErrorBody"),
        (
            "MicroblogUnsupportedMediaType",
            "application/json",
            "ErrorBody",
        ),
    ] {
        assert_eq!(
            shared[name]["content"][content_type]["schema"]["$ref"],
            format!("#/components/schemas/{schema}"),
            "{name}"
        );
    }

    let mut json_bodies = 0;
    for (method, path, op) in operations(&doc) {
        let what = format!("{method} {path}");
        let prefix = if is_microblog(path) { "Microblog" } else { "" };
        let name = |n: &str| format!("{prefix}{n}");
        // Every error answer an operation describes itself has its API's
        // error body.
        let (content_type, schema) = if is_microblog(path) {
            ("application/json", "ErrorBody")
        } else {
            ("application/problem+json", "Problem")
        };
        for (status, answer) in op["responses"].as_object().unwrap() {
            if status.starts_with(['4', '5']) && answer.get("$ref").is_none() {
                assert_eq!(
                    answer["content"],
                    json!({content_type: {"schema": {"$ref": format!("#/components/schemas/{schema}")}}}),
                    "{what} {status}"
                );
            }
        }
        if op["requestBody"]["content"]["application/json"].is_object() {
            json_bodies += 1;
            for (status, n) in [
                ("400", "BadRequest"),
                ("413", "PayloadTooLarge"),
                ("415", "UnsupportedMediaType"),
                ("422", "Unprocessable"),
            ] {
                documents(op, status, &name(n), &what);
            }
        }
        let params = op["parameters"].as_array().cloned().unwrap_or_default();
        if params.iter().any(|p| p["in"] == "path") {
            documents(op, "404", &name("NotFound"), &what);
        }
        if params.iter().any(|p| p["in"] == "query") {
            documents(op, "400", &name("BadRequest"), &what);
        }
        if op["security"].as_array().is_some_and(|s| !s.is_empty()) {
            documents(op, "401", &name("Unauthorized"), &what);
        }
        // A query string has no null: no parameter may be documented as one.
        for p in &params {
            let schema = p["schema"].to_string();
            assert!(!schema.contains("\"null\""), "{what}: {p}");
        }
    }
    assert!(
        json_bodies >= 15,
        "{json_bodies} operations with a JSON body"
    );

    // What schemathesis found undocumented.
    for path in [
        "/api/v1/users/{id}/followers",
        "/api/v1/users/{id}/following",
    ] {
        documents(&doc["paths"][path]["get"], "404", "NotFound", path);
    }
    let res = app
        .get("/api/v1/users/9223372036854775808/followers", None)
        .await;
    assert_problem(res, 404).await;
}

/// The schema of property `field` of component `schema`.
fn property<'a>(doc: &'a Value, schema: &str, field: &str) -> &'a Value {
    let found = &doc["components"]["schemas"][schema]["properties"][field];
    assert!(found.is_object(), "{schema}.{field} is not in the document");
    found
}

fn pattern(doc: &Value, schema: &str, field: &str) -> Regex {
    let source = property(doc, schema, field)["pattern"]
        .as_str()
        .unwrap_or_else(|| panic!("{schema}.{field} has no pattern"));
    // The text patterns repeat a large Unicode class hundreds of times.
    RegexBuilder::new(source)
        .size_limit(1 << 30)
        .dfa_size_limit(1 << 30)
        .build()
        .unwrap()
}

/// Strings that probe the edges of the validation rules: every kind of
/// whitespace Rust's `trim` removes, control characters, the Kelvin sign
/// (lower-cases to an ASCII `k`), format characters, e-mail punctuation, at
/// random and around each length limit.
fn samples() -> Vec<String> {
    const ALPHABET: [char; 38] = [
        'a',
        'Z',
        '0',
        '_',
        '.',
        '@',
        '-',
        '+',
        '\'',
        '"',
        '<',
        '>',
        '[',
        'é',
        '日',
        ' ',
        '\t',
        '\n',
        '\r',
        '\u{b}',
        '\u{c}',
        '\u{85}',
        '\u{a0}',
        '\u{1680}',
        '\u{2000}',
        '\u{2028}',
        '\u{3000}',
        '\u{0}',
        '\u{1c}',
        '\u{7f}',
        '\u{9f}',
        '\u{212a}',
        '\u{200b}',
        '\u{202e}',
        '\u{feff}',
        '\u{ad}',
        '\u{2066}',
        '\u{1f600}',
    ];
    let mut state: u64 = 0x2545_f491_4f6c_dd1d;
    let mut next = move |n: usize| {
        // xorshift64*: any fixed sequence of varied strings does.
        state ^= state >> 12;
        state ^= state << 25;
        state ^= state >> 27;
        (state.wrapping_mul(0x2545_f491_4f6c_dd1d) >> 33) as usize % n
    };
    let mut found: Vec<String> = vec![
        "alice".into(),
        " Alice_01\n".into(),
        "\u{212a}elvin".into(),
        "a@example.com".into(),
        " o'neil+tag@mail.example.co\u{3000}".into(),
        "Alice <alice@example.com>".into(),
        "\"a b\"@example.com".into(),
        "a@example".into(),
        "a@-example.com".into(),
        "a@exa_mple.com".into(),
        format!("{}@example.com", "a".repeat(64)),
        format!("{}@example.com", "a".repeat(65)),
        format!("a@{}.com", "b".repeat(63)),
        format!("a@{}.com", "b".repeat(64)),
        format!("{}@{}.com", "a".repeat(60), "b".repeat(189)),
        format!(" {}@{}.com", "a".repeat(60), "b".repeat(189)),
    ];
    for len in [
        1, 2, 3, 30, 31, 49, 50, 51, 99, 100, 101, 299, 300, 301, 499, 500, 501, 999, 1000, 1001,
    ] {
        for padding in ["", " ", "\u{3000}\n"] {
            found.push(format!("{padding}{}{padding}", "x".repeat(len)));
            found.push(format!("{padding}{}{padding}", "é".repeat(len)));
        }
    }
    for _ in 0..3000 {
        let len = next(12);
        found.push((0..len).map(|_| ALPHABET[next(ALPHABET.len())]).collect());
    }
    found
}

/// Each pattern of the document accepts exactly what the validation code
/// accepts, so a client that checks against the document and the server
/// never disagree (this is what schemathesis checks at random).
#[test]
fn openapi_patterns_accept_exactly_what_the_server_accepts() {
    let doc = serde_json::to_value(rookery::http::openapi::ApiDoc::openapi()).unwrap();
    // Whether the server accepts a value, or None where the pattern is not
    // the whole rule.
    type Rule = Box<dyn Fn(&str) -> Option<bool>>;
    let rules: Vec<(&str, &str, Rule)> = vec![
        (
            "RegisterRequest",
            "username",
            Box::new(|s| Some(validate::username(s).is_ok())),
        ),
        (
            "RegisterRequest",
            "email",
            // The length limit is the schema's maxLength; the pattern has the rest.
            Box::new(|s| {
                (s.chars().count() <= validate::EMAIL_MAX).then(|| validate::email(s).is_ok())
            }),
        ),
        (
            "RegisterRequest",
            "display_name",
            Box::new(|s| Some(validate::display_text(s, validate::DISPLAY_NAME_MAX).is_ok())),
        ),
        (
            "UpdateProfileRequest",
            "display_name",
            Box::new(|s| Some(validate::display_text(s, validate::DISPLAY_NAME_MAX).is_ok())),
        ),
        (
            "UpdateProfileRequest",
            "bio",
            Box::new(|s| Some(validate::display_text(s, validate::BIO_MAX).is_ok())),
        ),
        (
            "CreateApiKeyRequest",
            "name",
            Box::new(|s| {
                Some(validate::text_field(s, validate::API_KEY_NAME_MAX).is_ok_and(|v| v.is_some()))
            }),
        ),
        (
            "CreatePostRequest",
            "text",
            Box::new(|s| Some(text::validate(s, text::TEXT_MAX).is_ok())),
        ),
        (
            "EditPostRequest",
            "text",
            Box::new(|s| Some(text::validate(s, text::TEXT_MAX).is_ok())),
        ),
        (
            "NewTweet",
            "tweet_data",
            Box::new(|s| Some(text::validate(s, text::TEXT_MAX).is_ok())),
        ),
        (
            "CreateCommentRequest",
            "text",
            Box::new(|s| Some(text::validate(s, rookery::domain::comments::TEXT_MAX).is_ok())),
        ),
        (
            "EditCommentRequest",
            "text",
            Box::new(|s| Some(text::validate(s, rookery::domain::comments::TEXT_MAX).is_ok())),
        ),
    ];
    let samples = samples();
    for (schema, field, server_accepts) in &rules {
        let documented = pattern(&doc, schema, field);
        for sample in &samples {
            let Some(accepted) = server_accepts(sample) else {
                continue;
            };
            assert_eq!(
                documented.is_match(sample),
                accepted,
                "{schema}.{field}: the document and the server disagree on {sample:?}"
            );
        }
    }

    let number = |schema: &str, field: &str, key: &str| property(&doc, schema, field)[key].as_u64();
    assert_eq!(
        number("RegisterRequest", "email", "maxLength"),
        Some(validate::EMAIL_MAX as u64)
    );
    for (schema, field) in [
        ("RegisterRequest", "password"),
        ("ChangePasswordRequest", "new_password"),
    ] {
        assert_eq!(
            number(schema, field, "minLength"),
            Some(validate::PASSWORD_MIN as u64)
        );
        assert_eq!(
            number(schema, field, "maxLength"),
            Some(validate::PASSWORD_MAX as u64)
        );
    }
    assert_eq!(
        number("CreatePostRequest", "media_ids", "maxItems"),
        Some(rookery::domain::media::MAX_PER_POST as u64)
    );
}

#[actix_web::test]
async fn openapi_limits_and_orders_are_declared_as_the_server_enforces_them() {
    let app = spawn_app().await;
    let doc: Value = app.get("/openapi.json", None).await.json().await.unwrap();
    let param = |path: &str, name: &str| {
        doc["paths"][path]["get"]["parameters"]
            .as_array()
            .unwrap()
            .iter()
            .find(|p| p["name"] == name)
            .unwrap()["schema"]
            .clone()
    };
    assert_eq!(param("/api/v1/feed", "limit")["minimum"], 1);
    assert_eq!(
        param("/api/v1/feed", "order")["enum"],
        json!(["latest", "popular"])
    );
    assert_eq!(param("/api/tweets", "offset")["minimum"], 1);

    let alice = app.user("alice").await;
    for query in ["limit=0", "order=", "order=oldest"] {
        let res = app
            .get(&format!("/api/v1/feed?{query}"), Some(&alice.access))
            .await;
        assert_problem(res, 400).await;
    }
    let res = app.get("/api/v1/feed?limit=1", Some(&alice.access)).await;
    assert_eq!(res.status(), 200);
}

#[actix_web::test]
async fn openapi_json_bodies_must_be_objects() {
    let app = spawn_app().await;
    let alice = app.user("alice").await;
    let res = app
        .patch(
            "/api/v1/me",
            Some(&alice.access),
            &json!({"display_name": "Alice", "bio": "hi"}),
        )
        .await;
    assert_eq!(res.status(), 200);
    // serde fills a struct from an array of its fields in order; the server
    // must not: this used to clear both.
    let res = app
        .patch("/api/v1/me", Some(&alice.access), &json!([null, null]))
        .await;
    assert_problem(res, 422).await;
    let me: Value = app
        .get("/api/v1/me", Some(&alice.access))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(
        (me["display_name"].as_str(), me["bio"].as_str()),
        (Some("Alice"), Some("hi"))
    );

    let res = app
        .post("/api/v1/auth/login", None, &json!(["alice", PASSWORD]))
        .await;
    assert_problem(res, 422).await;
}

#[actix_web::test]
async fn openapi_emails_are_addresses_not_display_names() {
    let app = spawn_app().await;
    app.register("alice").await;
    for email in ["Alice <alice@example.com>", "\"alice\"@example.com"] {
        let res = app
            .post(
                "/api/v1/auth/register",
                None,
                &json!({"username": "mallory", "email": email, "password": PASSWORD}),
            )
            .await;
        let problem = assert_problem(res, 422).await;
        assert!(problem["errors"]["email"].is_array(), "{problem}");
    }
}

#[actix_web::test]
async fn openapi_notification_ids_are_whole_numbers_however_written() {
    let app = spawn_app().await;
    let alice = app.user("alice").await;
    // JSON Schema counts 458.0 as an integer, as the document's ids are.
    let res = app
        .post(
            "/api/v1/notifications/read",
            Some(&alice.access),
            &json!({"ids": [1, 458.0]}),
        )
        .await;
    assert_eq!(res.status(), 200);
    // Not whole, and past i64 (which a float would round into range).
    for ids in [
        "[1.5]",
        "[-9223372036854775809]",
        "[-9223372036854775808.0]",
    ] {
        let res = app
            .client
            .post(app.url("/api/v1/notifications/read"))
            .bearer_auth(&alice.access)
            .header("content-type", "application/json")
            .body(format!("{{\"ids\": {ids}}}"))
            .send()
            .await
            .unwrap();
        assert_problem(res, 422).await;
    }
}
