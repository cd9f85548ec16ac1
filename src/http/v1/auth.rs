use actix_web::http::header;
use actix_web::{web, HttpRequest, HttpResponse};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::domain::accounts::auth::AuthMethod;
use crate::domain::accounts::signin::{self, TokenPair};
use crate::domain::accounts::tokens::Claims;
use crate::domain::accounts::users::{self, NewAccount};
use crate::domain::accounts::{Account, Role};
use crate::http::error::ApiError;
use crate::http::extract::{client_address, Auth, JsonObject};
use crate::http::state::AppState;

#[derive(Debug, Deserialize, ToSchema)]
pub struct RegisterRequest {
    /// 3 to 30 characters of a-z, A-Z, 0-9 and _, spaces around trimmed;
    /// unique without regard to case, and stored lower-case.
    #[schema(
        example = "alice",
        pattern = r"^[\t-\r \u0085\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]*[A-Za-z0-9_]{3,30}[\t-\r \u0085\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]*$"
    )]
    pub username: String,
    /// An address by the HTML standard's grammar, with a dot in the domain:
    /// at most 64 characters before the `@`, 63 in each domain label, and
    /// 254 in all (spaces around it included, then trimmed).
    #[schema(
        example = "alice@example.com",
        max_length = 254,
        pattern = r"^[\t-\r \u0085\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]*[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]{1,64}@[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)+[\t-\r \u0085\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]*$"
    )]
    pub email: String,
    /// 8 to 1024 characters, taken as they are.
    #[schema(
        example = "correct horse battery staple",
        min_length = 8,
        max_length = 1024
    )]
    pub password: String,
    /// Up to 50 characters after trimming and NFC, no control characters
    /// but line breaks, no format characters (bidirectional controls,
    /// zero-width characters: Unicode category Cf); blank means none.
    #[schema(
        pattern = r"^[\t-\r \u0085\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]*(?:[^\u0000-\u0020\u007f-\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000\u00ad\u0600-\u0605\u061c\u06dd\u070f\u0890\u0891\u08e2\u180e\u200b-\u200f\u202a-\u202e\u2060-\u2064\u2066-\u206f\ufeff\ufff9-\ufffb](?:[^\u0000-\u0009\u000b-\u001f\u007f-\u009f\u00ad\u0600-\u0605\u061c\u06dd\u070f\u0890\u0891\u08e2\u180e\u200b-\u200f\u202a-\u202e\u2060-\u2064\u2066-\u206f\ufeff\ufff9-\ufffb]{0,48}[^\u0000-\u0020\u007f-\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000\u00ad\u0600-\u0605\u061c\u06dd\u070f\u0890\u0891\u08e2\u180e\u200b-\u200f\u202a-\u202e\u2060-\u2064\u2066-\u206f\ufeff\ufff9-\ufffb])?)?[\t-\r \u0085\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]*$"
    )]
    pub display_name: Option<String>,
}

#[derive(Debug, Deserialize, ToSchema)]
pub struct LoginRequest {
    /// The username or the email address (no NUL character: it is looked up,
    /// and the database refuses NUL in text).
    #[schema(example = "alice", pattern = r"^[^\u0000]*$")]
    pub login: String,
    pub password: String,
}

#[derive(Debug, Deserialize, ToSchema)]
pub struct RefreshRequest {
    pub refresh_token: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct VerifyResponse {
    pub user_id: i64,
    pub username: String,
    pub role: Role,
    /// How the caller authenticated.
    pub method: AuthMethod,
    /// The access token's claims; absent when an API key was used.
    pub claims: Option<Claims>,
}

#[utoipa::path(post, path = "/api/v1/auth/register", tag = "auth", request_body = RegisterRequest,
    responses(
        (status = 201, description = "Account created", body = Account),
        (status = 409, description = "Username or email taken"),
        (status = 422, description = "Invalid fields"),
        (status = 429, description = "Too many registrations from this address; see Retry-After"),
    ))]
pub async fn register(
    req: HttpRequest,
    state: web::Data<AppState>,
    body: JsonObject<RegisterRequest>,
) -> Result<HttpResponse, ApiError> {
    let body = body.into_inner();
    let account = users::register_from(
        &state.db,
        &state.hasher,
        &state.throttle,
        client_address(&req, state.settings.http.trust_proxy),
        NewAccount {
            username: &body.username,
            email: &body.email,
            password: &body.password,
            display_name: body.display_name.as_deref(),
            role: Role::User,
        },
    )
    .await?;
    Ok(HttpResponse::Created()
        .insert_header((
            header::LOCATION,
            format!("/api/v1/users/{}", account.username),
        ))
        .json(account))
}

#[utoipa::path(post, path = "/api/v1/auth/login", tag = "auth", request_body = LoginRequest,
    responses(
        (status = 200, description = "Logged in", body = TokenPair),
        (status = 401, description = "Wrong login or password (the same answer for both)"),
        (status = 403, description = "Account suspended"),
        (status = 429, description = "Too many attempts; see Retry-After"),
    ))]
pub async fn login(
    req: HttpRequest,
    state: web::Data<AppState>,
    body: JsonObject<LoginRequest>,
) -> Result<web::Json<TokenPair>, ApiError> {
    let pair = signin::login(
        &state.db,
        &state.hasher,
        &state.token_settings(),
        &state.throttle,
        client_address(&req, state.settings.http.trust_proxy),
        &body.login,
        &body.password,
    )
    .await?;
    Ok(web::Json(pair))
}

#[utoipa::path(post, path = "/api/v1/auth/refresh", tag = "auth", request_body = RefreshRequest,
    responses(
        (status = 200, description = "A new token pair; the presented refresh token is spent", body = TokenPair),
        (status = 401, description = "Invalid, expired, revoked or reused refresh token"),
    ))]
pub async fn refresh(
    state: web::Data<AppState>,
    body: JsonObject<RefreshRequest>,
) -> Result<web::Json<TokenPair>, ApiError> {
    Ok(web::Json(
        signin::refresh(&state.db, &state.token_settings(), &body.refresh_token).await?,
    ))
}

#[utoipa::path(post, path = "/api/v1/auth/logout", tag = "auth", request_body = RefreshRequest,
    responses((status = 204, description = "The session of that refresh token is ended")))]
pub async fn logout(
    state: web::Data<AppState>,
    body: JsonObject<RefreshRequest>,
) -> Result<HttpResponse, ApiError> {
    signin::logout(&state.db, &body.refresh_token).await?;
    Ok(HttpResponse::NoContent().finish())
}

#[utoipa::path(get, path = "/api/v1/auth/verify", tag = "auth",
    security(("bearer" = []), ("api_key" = [])),
    responses(
        (status = 200, description = "The credential is valid", body = VerifyResponse),
        (status = 401, description = "Missing, expired, tampered or revoked credential"),
    ))]
pub async fn verify(Auth(p): Auth) -> web::Json<VerifyResponse> {
    web::Json(VerifyResponse {
        user_id: p.user_id,
        username: p.username,
        role: p.role,
        method: p.method,
        claims: p.claims,
    })
}
