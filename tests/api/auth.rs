use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use rookery::domain::accounts::tokens::Claims;
use rookery::domain::accounts::Role;
use serde_json::{json, Value};

use crate::helpers::{assert_problem, spawn_app, spawn_app_with, JWT_SECRET, PASSWORD};

fn claims_of(token: &str) -> Value {
    let payload = token.split('.').nth(1).unwrap();
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).unwrap()).unwrap()
}

#[actix_web::test]
async fn register_creates_an_account_without_exposing_the_password() {
    let app = spawn_app().await;
    let res = app
        .post(
            "/api/v1/auth/register",
            None,
            &json!({"username": "Alice_1", "email": "Alice@Example.com", "password": PASSWORD, "display_name": " Alice "}),
        )
        .await;
    assert_eq!(res.status(), 201);
    assert_eq!(res.headers()["location"], "/api/v1/users/alice_1");
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["username"], "alice_1");
    assert_eq!(body["email"], "Alice@Example.com");
    assert_eq!(body["display_name"], "Alice");
    assert_eq!(body["role"], "user");
    assert!(body.get("password").is_none() && body.get("password_hash").is_none());

    let stored: String =
        sqlx::query_scalar("SELECT password_hash FROM users WHERE username = 'alice_1'")
            .fetch_one(&app.db)
            .await
            .unwrap();
    assert!(
        stored.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"),
        "{stored}"
    );
}

#[actix_web::test]
async fn register_rejects_each_bad_field_by_name() {
    let app = spawn_app().await;
    let cases = [
        (
            json!({"username": "ab", "email": "a@example.com", "password": PASSWORD}),
            "username",
        ),
        (
            json!({"username": "bad name", "email": "a@example.com", "password": PASSWORD}),
            "username",
        ),
        (
            json!({"username": "x".repeat(31), "email": "a@example.com", "password": PASSWORD}),
            "username",
        ),
        (
            json!({"username": "alice", "email": "not-an-email", "password": PASSWORD}),
            "email",
        ),
        (
            json!({"username": "alice", "email": "a@example.com", "password": "short"}),
            "password",
        ),
        (
            json!({"username": "alice", "email": "a@example.com", "password": "p".repeat(1025)}),
            "password",
        ),
        (
            json!({"username": "alice", "email": "a@example.com", "password": PASSWORD, "display_name": "d".repeat(51)}),
            "display_name",
        ),
    ];
    for (body, field) in cases {
        let problem =
            assert_problem(app.post("/api/v1/auth/register", None, &body).await, 422).await;
        assert!(problem["errors"][field].is_array(), "{field}: {problem}");
    }
    // Several bad fields are all reported at once.
    let problem = assert_problem(
        app.post(
            "/api/v1/auth/register",
            None,
            &json!({"username": "a", "email": "b", "password": "c"}),
        )
        .await,
        422,
    )
    .await;
    let errors = problem["errors"].as_object().unwrap();
    assert_eq!(errors.len(), 3, "{problem}");
}

#[actix_web::test]
async fn usernames_and_emails_are_unique_without_regard_to_case() {
    let app = spawn_app().await;
    app.register("alice").await;
    let dup_name = app
        .post(
            "/api/v1/auth/register",
            None,
            &json!({"username": "ALICE", "email": "other@example.com", "password": PASSWORD}),
        )
        .await;
    let problem = assert_problem(dup_name, 409).await;
    assert!(problem["errors"]["username"].is_array());
    let dup_email = app
        .post(
            "/api/v1/auth/register",
            None,
            &json!({"username": "bob", "email": "ALICE@example.COM", "password": PASSWORD}),
        )
        .await;
    let problem = assert_problem(dup_email, 409).await;
    assert!(problem["errors"]["email"].is_array());
}

#[actix_web::test]
async fn login_by_username_or_email_gives_a_bearer_token_pair() {
    let app = spawn_app().await;
    let account = app.register("alice").await;
    for login in ["alice", "ALICE", "alice@example.com", "Alice@Example.com"] {
        let res = app.login(login, PASSWORD).await;
        assert_eq!(res.status(), 200, "{login}");
        let body: Value = res.json().await.unwrap();
        assert_eq!(body["token_type"], "Bearer");
        assert_eq!(body["expires_in"], 900);
        assert!(body["refresh_token"].as_str().unwrap().len() >= 43);
        let claims = claims_of(body["access_token"].as_str().unwrap());
        assert_eq!(claims["sub"], account["id"].as_i64().unwrap().to_string());
        assert_eq!(claims["role"], "user");
        assert_eq!(
            claims["exp"].as_i64().unwrap() - claims["iat"].as_i64().unwrap(),
            900
        );
        assert!(claims["jti"].as_str().is_some_and(|j| !j.is_empty()));
        let header: Value = serde_json::from_slice(
            &URL_SAFE_NO_PAD
                .decode(
                    body["access_token"]
                        .as_str()
                        .unwrap()
                        .split('.')
                        .next()
                        .unwrap(),
                )
                .unwrap(),
        )
        .unwrap();
        assert_eq!(header["alg"], "HS256");
    }
}

#[actix_web::test]
async fn unknown_user_and_wrong_password_get_the_same_answer() {
    let app = spawn_app().await;
    app.register("alice").await;
    let wrong = assert_problem(app.login("alice", "wrong password").await, 401).await;
    let unknown = assert_problem(app.login("nobody", "wrong password").await, 401).await;
    assert_eq!(wrong, unknown);
}

#[actix_web::test]
async fn refresh_rotates_and_reuse_revokes_the_family() {
    let app = spawn_app().await;
    let alice = app.user("alice").await;

    let res = app
        .post(
            "/api/v1/auth/refresh",
            None,
            &json!({"refresh_token": alice.refresh}),
        )
        .await;
    assert_eq!(res.status(), 200);
    let second: Value = res.json().await.unwrap();
    let second_refresh = second["refresh_token"].as_str().unwrap().to_owned();
    assert_ne!(second_refresh, alice.refresh);
    assert_eq!(
        app.get("/api/v1/me", second["access_token"].as_str())
            .await
            .status(),
        200
    );

    // The first token was rotated: presenting it again is a reuse.
    assert_problem(
        app.post(
            "/api/v1/auth/refresh",
            None,
            &json!({"refresh_token": alice.refresh}),
        )
        .await,
        401,
    )
    .await;
    // ...which revoked the whole family, including the token that replaced it.
    assert_problem(
        app.post(
            "/api/v1/auth/refresh",
            None,
            &json!({"refresh_token": second_refresh}),
        )
        .await,
        401,
    )
    .await;

    // Other sessions of the same user are untouched.
    let other: Value = app.login("alice", PASSWORD).await.json().await.unwrap();
    let res = app
        .post(
            "/api/v1/auth/refresh",
            None,
            &json!({"refresh_token": other["refresh_token"]}),
        )
        .await;
    assert_eq!(res.status(), 200);

    let stored: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM refresh_tokens WHERE token_hash = convert_to($1, 'UTF8')",
    )
    .bind(&second_refresh)
    .fetch_one(&app.db)
    .await
    .unwrap();
    assert_eq!(stored, 0, "refresh tokens are stored only as hashes");
    let hashed: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM refresh_tokens WHERE token_hash = sha256(convert_to($1, 'UTF8'))",
    )
    .bind(&second_refresh)
    .fetch_one(&app.db)
    .await
    .unwrap();
    assert_eq!(hashed, 1);
}

#[actix_web::test]
async fn garbage_refresh_tokens_are_401() {
    let app = spawn_app().await;
    for token in ["", "nope", &"x".repeat(500)] {
        assert_problem(
            app.post(
                "/api/v1/auth/refresh",
                None,
                &json!({"refresh_token": token}),
            )
            .await,
            401,
        )
        .await;
    }
}

#[actix_web::test]
async fn logout_revokes_the_refresh_token() {
    let app = spawn_app().await;
    let alice = app.user("alice").await;
    let res = app
        .post(
            "/api/v1/auth/logout",
            None,
            &json!({"refresh_token": alice.refresh}),
        )
        .await;
    assert_eq!(res.status(), 204);
    assert_problem(
        app.post(
            "/api/v1/auth/refresh",
            None,
            &json!({"refresh_token": alice.refresh}),
        )
        .await,
        401,
    )
    .await;
    // Logging out an unknown token is harmless.
    assert_eq!(
        app.post(
            "/api/v1/auth/logout",
            None,
            &json!({"refresh_token": "unknown"})
        )
        .await
        .status(),
        204
    );
}

#[actix_web::test]
async fn verify_shows_the_checked_claims() {
    let app = spawn_app().await;
    let alice = app.user("alice").await;
    let res = app.get("/api/v1/auth/verify", Some(&alice.access)).await;
    assert_eq!(res.status(), 200);
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["user_id"], alice.id);
    assert_eq!(body["username"], "alice");
    assert_eq!(body["method"], "jwt");
    assert_eq!(body["claims"]["sub"], alice.id.to_string());
    assert_eq!(body["claims"]["iss"], "rookery");
}

fn sign(claims: &Claims, alg: Algorithm, secret: &str) -> String {
    jsonwebtoken::encode(
        &Header::new(alg),
        claims,
        &EncodingKey::from_secret(secret.as_bytes()),
    )
    .unwrap()
}

fn claims_for(user_id: i64, iat: i64, exp: i64) -> Claims {
    Claims {
        sub: user_id.to_string(),
        role: Role::User,
        iat,
        exp,
        jti: "t".into(),
        iss: "rookery".into(),
        ver: 0,
    }
}

#[actix_web::test]
async fn bad_tokens_are_refused_with_a_precise_401() {
    let app = spawn_app().await;
    let alice = app.user("alice").await;
    let now = chrono::Utc::now().timestamp();

    let expired = sign(
        &claims_for(alice.id, now - 3600, now - 1800),
        Algorithm::HS256,
        JWT_SECRET,
    );
    let wrong_alg = sign(
        &claims_for(alice.id, now, now + 600),
        Algorithm::HS512,
        JWT_SECRET,
    );
    let wrong_key = sign(
        &claims_for(alice.id, now, now + 600),
        Algorithm::HS256,
        "another-secret-also-32-bytes-long!!",
    );
    let mut parts: Vec<String> = alice.access.split('.').map(str::to_owned).collect();
    let mut payload = claims_of(&alice.access);
    payload["role"] = json!("admin");
    parts[1] = URL_SAFE_NO_PAD.encode(payload.to_string());
    let tampered = parts.join(".");
    let none_header = URL_SAFE_NO_PAD.encode(br#"{"alg":"none","typ":"JWT"}"#);
    let alg_none = format!("{none_header}.{}.", alice.access.split('.').nth(1).unwrap());

    for (token, expect) in [
        (expired.as_str(), "expired"),
        (wrong_alg.as_str(), "algorithm"),
        (wrong_key.as_str(), "signature"),
        (tampered.as_str(), "signature"),
        (alg_none.as_str(), ""),
        ("not.a.jwt", "malformed"),
        ("garbage", "malformed"),
    ] {
        let res = app.get("/api/v1/me", Some(token)).await;
        assert!(res.headers().contains_key("www-authenticate"));
        let problem = assert_problem(res, 401).await;
        assert!(
            problem["detail"].as_str().unwrap().contains(expect),
            "{token}: {problem}"
        );
    }

    // A well-formed header with the wrong scheme, and an empty bearer.
    for value in ["Basic YWxpY2U6cHc=", "Bearer ", "Bearer"] {
        let res = app
            .client
            .get(app.url("/api/v1/me"))
            .header("authorization", value)
            .send()
            .await
            .unwrap();
        assert_problem(res, 401).await;
    }
}

#[actix_web::test]
async fn suspended_accounts_cannot_log_in_or_use_their_tokens() {
    let app = spawn_app().await;
    let alice = app.user("alice").await;
    sqlx::query("UPDATE users SET status = 'suspended' WHERE id = $1")
        .bind(alice.id)
        .execute(&app.db)
        .await
        .unwrap();
    assert_problem(app.get("/api/v1/me", Some(&alice.access)).await, 401).await;
    assert_problem(app.login("alice", PASSWORD).await, 403).await;
    assert_problem(
        app.post(
            "/api/v1/auth/refresh",
            None,
            &json!({"refresh_token": alice.refresh}),
        )
        .await,
        401,
    )
    .await;
}

#[actix_web::test]
async fn the_role_is_carried_in_the_token() {
    let app = spawn_app().await;
    let mod_user = app.register("modder").await;
    sqlx::query("UPDATE users SET role = 'moderator' WHERE id = $1")
        .bind(mod_user["id"].as_i64())
        .execute(&app.db)
        .await
        .unwrap();
    let body: Value = app.login("modder", PASSWORD).await.json().await.unwrap();
    assert_eq!(
        claims_of(body["access_token"].as_str().unwrap())["role"],
        "moderator"
    );
}

#[actix_web::test]
async fn logins_are_rate_limited_per_address() {
    let app =
        spawn_app_with(|s| s.auth.login_per_minute = std::num::NonZeroU32::new(3).unwrap()).await;
    app.register("alice").await;
    for login in ["a1", "a2", "a3"] {
        assert_problem(app.login(login, "whatever1").await, 401).await;
    }
    let res = app.login("alice", PASSWORD).await;
    let retry_after: u64 = res.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=60).contains(&retry_after), "{retry_after}");
    assert_problem(res, 429).await;
}

#[actix_web::test]
async fn logins_are_rate_limited_per_login_across_addresses() {
    let app = spawn_app_with(|s| {
        s.auth.login_per_minute = std::num::NonZeroU32::new(3).unwrap();
        s.http.trust_proxy = true;
    })
    .await;
    app.register("alice").await;
    let attempt = |ip: &'static str| {
        app.client
            .post(app.url("/api/v1/auth/login"))
            .header("x-forwarded-for", ip)
            .json(&json!({"login": "alice", "password": "wrong password"}))
            .send()
    };
    for ip in ["10.0.0.1", "10.0.0.2", "10.0.0.3"] {
        assert_eq!(attempt(ip).await.unwrap().status(), 401);
    }
    assert_problem(attempt("10.0.0.4").await.unwrap(), 429).await;
    // Another login from a fresh address is unaffected.
    let res = app
        .client
        .post(app.url("/api/v1/auth/login"))
        .header("x-forwarded-for", "10.0.0.5")
        .json(&json!({"login": "bob", "password": "wrong password"}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 401);
}

#[actix_web::test]
async fn public_profiles_show_no_private_fields() {
    let app = spawn_app().await;
    app.register("alice").await;
    let res = app.get("/api/v1/users/ALICE", None).await;
    assert_eq!(res.status(), 200);
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["username"], "alice");
    assert!(body.get("email").is_none());
    assert_problem(app.get("/api/v1/users/nobody", None).await, 404).await;
}
