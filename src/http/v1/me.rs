use actix_web::{web, HttpRequest, HttpResponse};
use serde::Deserialize;
use utoipa::ToSchema;

use crate::domain::accounts::api_keys::{self, ApiKey, CreatedApiKey};
use crate::domain::accounts::signin::TokenPair;
use crate::domain::accounts::users::{self, ProfileChange};
use crate::domain::accounts::Account;
use crate::http::error::ApiError;
use crate::http::extract::{client_address, Auth, JsonObject};
use crate::http::state::AppState;

#[derive(Debug, Deserialize, ToSchema)]
pub struct UpdateProfileRequest {
    /// Up to 50 characters after trimming and NFC, no control characters
    /// but line breaks, no format characters (bidirectional controls,
    /// zero-width characters: Unicode category Cf); `null` or blank clears it; absent leaves it.
    #[serde(default, deserialize_with = "super::nullable")]
    #[schema(value_type = Option<String>, pattern = r"^[\t-\r \u0085\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]*(?:[^\u0000-\u0020\u007f-\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000\u00ad\u0600-\u0605\u061c\u06dd\u070f\u0890\u0891\u08e2\u180e\u200b-\u200f\u202a-\u202e\u2060-\u2064\u2066-\u206f\ufeff\ufff9-\ufffb](?:[^\u0000-\u0009\u000b-\u001f\u007f-\u009f\u00ad\u0600-\u0605\u061c\u06dd\u070f\u0890\u0891\u08e2\u180e\u200b-\u200f\u202a-\u202e\u2060-\u2064\u2066-\u206f\ufeff\ufff9-\ufffb]{0,48}[^\u0000-\u0020\u007f-\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000\u00ad\u0600-\u0605\u061c\u06dd\u070f\u0890\u0891\u08e2\u180e\u200b-\u200f\u202a-\u202e\u2060-\u2064\u2066-\u206f\ufeff\ufff9-\ufffb])?)?[\t-\r \u0085\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]*$")]
    pub display_name: Option<Option<String>>,
    /// Up to 300 characters after trimming and NFC, no control characters
    /// but line breaks, no format characters (bidirectional controls,
    /// zero-width characters: Unicode category Cf); `null` or blank clears it; absent leaves it.
    #[serde(default, deserialize_with = "super::nullable")]
    #[schema(value_type = Option<String>, pattern = r"^[\t-\r \u0085\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]*(?:[^\u0000-\u0020\u007f-\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000\u00ad\u0600-\u0605\u061c\u06dd\u070f\u0890\u0891\u08e2\u180e\u200b-\u200f\u202a-\u202e\u2060-\u2064\u2066-\u206f\ufeff\ufff9-\ufffb](?:[^\u0000-\u0009\u000b-\u001f\u007f-\u009f\u00ad\u0600-\u0605\u061c\u06dd\u070f\u0890\u0891\u08e2\u180e\u200b-\u200f\u202a-\u202e\u2060-\u2064\u2066-\u206f\ufeff\ufff9-\ufffb]{0,298}[^\u0000-\u0020\u007f-\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000\u00ad\u0600-\u0605\u061c\u06dd\u070f\u0890\u0891\u08e2\u180e\u200b-\u200f\u202a-\u202e\u2060-\u2064\u2066-\u206f\ufeff\ufff9-\ufffb])?)?[\t-\r \u0085\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]*$")]
    pub bio: Option<Option<String>>,
}

#[derive(Debug, Deserialize, ToSchema)]
pub struct ChangePasswordRequest {
    pub current_password: String,
    /// 8 to 1024 characters, taken as they are.
    #[schema(min_length = 8, max_length = 1024)]
    pub new_password: String,
}

#[derive(Debug, Deserialize, ToSchema)]
pub struct DeleteAccountRequest {
    pub password: String,
}

#[derive(Debug, Deserialize, ToSchema)]
pub struct CreateApiKeyRequest {
    /// 1 to 100 characters after trimming, no control characters but line breaks.
    #[schema(
        example = "my script",
        pattern = r"^[\t-\r \u0085\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]*[^\u0000-\u0020\u007f-\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000](?:[^\u0000-\u0009\u000b-\u001f\u007f-\u009f]{0,98}[^\u0000-\u0020\u007f-\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000])?[\t-\r \u0085\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]*$"
    )]
    pub name: String,
}

#[utoipa::path(get, path = "/api/v1/me", tag = "me", security(("bearer" = []), ("api_key" = [])),
    responses((status = 200, body = Account)))]
pub async fn get(
    state: web::Data<AppState>,
    Auth(p): Auth,
) -> Result<web::Json<Account>, ApiError> {
    Ok(web::Json(users::account(&state.db, p.user_id).await?))
}

#[utoipa::path(patch, path = "/api/v1/me", tag = "me", security(("bearer" = []), ("api_key" = [])),
    request_body = UpdateProfileRequest,
    responses((status = 200, body = Account), (status = 422)))]
pub async fn update(
    state: web::Data<AppState>,
    Auth(p): Auth,
    body: JsonObject<UpdateProfileRequest>,
) -> Result<web::Json<Account>, ApiError> {
    let body = body.into_inner();
    let change = ProfileChange {
        display_name: body.display_name,
        bio: body.bio,
    };
    Ok(web::Json(
        users::update_profile(&state.db, &state.events, p.user_id, change).await?,
    ))
}

#[utoipa::path(delete, path = "/api/v1/me", tag = "me", security(("bearer" = []), ("api_key" = [])),
    request_body = DeleteAccountRequest,
    responses(
        (status = 204, description = "Personal data erased, every token and key revoked"),
        (status = 422, description = "Wrong password"),
        (status = 429, description = "Too many password attempts; see Retry-After"),
    ))]
pub async fn delete(
    req: HttpRequest,
    state: web::Data<AppState>,
    Auth(p): Auth,
    body: JsonObject<DeleteAccountRequest>,
) -> Result<HttpResponse, ApiError> {
    users::delete_account(
        &state.db,
        &state.events,
        &state.hasher,
        &state.throttle,
        client_address(&req, state.settings.http.trust_proxy),
        p.user_id,
        &body.password,
    )
    .await?;
    Ok(HttpResponse::NoContent().finish())
}

#[utoipa::path(put, path = "/api/v1/me/password", tag = "me", security(("bearer" = []), ("api_key" = [])),
    request_body = ChangePasswordRequest,
    responses(
        (status = 200, description = "Changed; every other session is signed out, and this one gets new tokens", body = TokenPair),
        (status = 422, description = "Wrong current password or unacceptable new one"),
        (status = 429, description = "Too many password attempts; see Retry-After"),
    ))]
pub async fn change_password(
    req: HttpRequest,
    state: web::Data<AppState>,
    Auth(p): Auth,
    body: JsonObject<ChangePasswordRequest>,
) -> Result<web::Json<TokenPair>, ApiError> {
    let pair = users::change_password(
        &state.db,
        &state.events,
        &state.hasher,
        &state.token_settings(),
        &state.throttle,
        client_address(&req, state.settings.http.trust_proxy),
        p.user_id,
        &body.current_password,
        &body.new_password,
    )
    .await?;
    Ok(web::Json(pair))
}

#[utoipa::path(get, path = "/api/v1/me/api-keys", tag = "api-keys", security(("bearer" = []), ("api_key" = [])),
    responses((status = 200, body = Vec<ApiKey>)))]
pub async fn list_api_keys(
    state: web::Data<AppState>,
    Auth(p): Auth,
) -> Result<web::Json<Vec<ApiKey>>, ApiError> {
    Ok(web::Json(api_keys::list(&state.db, p.user_id).await?))
}

#[utoipa::path(post, path = "/api/v1/me/api-keys", tag = "api-keys", security(("bearer" = []), ("api_key" = [])),
    request_body = CreateApiKeyRequest,
    responses(
        (status = 201, description = "The key, shown this once", body = CreatedApiKey),
        (status = 422),
    ))]
pub async fn create_api_key(
    state: web::Data<AppState>,
    Auth(p): Auth,
    body: JsonObject<CreateApiKeyRequest>,
) -> Result<HttpResponse, ApiError> {
    let created = api_keys::create(&state.db, p.user_id, &body.name).await?;
    Ok(HttpResponse::Created().json(created))
}

#[utoipa::path(delete, path = "/api/v1/me/api-keys/{id}", tag = "api-keys", security(("bearer" = []), ("api_key" = [])),
    params(("id" = i64, Path, description = "The key's id")),
    responses((status = 204, description = "Revoked"), (status = 404)))]
pub async fn revoke_api_key(
    state: web::Data<AppState>,
    Auth(p): Auth,
    id: web::Path<i64>,
) -> Result<HttpResponse, ApiError> {
    api_keys::revoke(&state.db, &state.events, p.user_id, id.into_inner()).await?;
    Ok(HttpResponse::NoContent().finish())
}
