use actix_web::{web, HttpRequest, HttpResponse};
use serde::Deserialize;
use utoipa::ToSchema;

use crate::accounts::api_keys::{self, ApiKey, CreatedApiKey};
use crate::accounts::sessions::TokenPair;
use crate::accounts::users::{self, ProfileChange};
use crate::accounts::Account;
use crate::error::{ApiError, Problem};
use crate::extract::{client_address, Auth};
use crate::state::AppState;

#[derive(Debug, Deserialize, ToSchema)]
pub struct UpdateProfileRequest {
    /// Up to 50 characters; `null` or "" clears it; absent leaves it.
    #[serde(default, deserialize_with = "super::nullable")]
    #[schema(value_type = Option<String>)]
    pub display_name: Option<Option<String>>,
    /// Up to 300 characters; `null` or "" clears it; absent leaves it.
    #[serde(default, deserialize_with = "super::nullable")]
    #[schema(value_type = Option<String>)]
    pub bio: Option<Option<String>>,
}

#[derive(Debug, Deserialize, ToSchema)]
pub struct ChangePasswordRequest {
    pub current_password: String,
    pub new_password: String,
}

#[derive(Debug, Deserialize, ToSchema)]
pub struct DeleteAccountRequest {
    pub password: String,
}

#[derive(Debug, Deserialize, ToSchema)]
pub struct CreateApiKeyRequest {
    #[schema(example = "my script")]
    pub name: String,
}

#[utoipa::path(get, path = "/api/v1/me", tag = "me", security(("bearer" = []), ("api_key" = [])),
    responses((status = 200, body = Account), (status = 401, body = Problem, content_type = "application/problem+json")))]
pub async fn get(
    state: web::Data<AppState>,
    Auth(p): Auth,
) -> Result<web::Json<Account>, ApiError> {
    Ok(web::Json(users::account(&state.db, p.user_id).await?))
}

#[utoipa::path(patch, path = "/api/v1/me", tag = "me", security(("bearer" = []), ("api_key" = [])),
    request_body = UpdateProfileRequest,
    responses((status = 200, body = Account), (status = 422, body = Problem, content_type = "application/problem+json")))]
pub async fn update(
    state: web::Data<AppState>,
    Auth(p): Auth,
    body: web::Json<UpdateProfileRequest>,
) -> Result<web::Json<Account>, ApiError> {
    let body = body.into_inner();
    let change = ProfileChange {
        display_name: body.display_name,
        bio: body.bio,
    };
    Ok(web::Json(
        users::update_profile(&state.db, p.user_id, change).await?,
    ))
}

#[utoipa::path(delete, path = "/api/v1/me", tag = "me", security(("bearer" = []), ("api_key" = [])),
    request_body = DeleteAccountRequest,
    responses(
        (status = 204, description = "Personal data erased, every token and key revoked"),
        (status = 422, description = "Wrong password", body = Problem, content_type = "application/problem+json"),
        (status = 429, description = "Too many password attempts; see Retry-After", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn delete(
    req: HttpRequest,
    state: web::Data<AppState>,
    Auth(p): Auth,
    body: web::Json<DeleteAccountRequest>,
) -> Result<HttpResponse, ApiError> {
    users::delete_account(
        &state.db,
        &state.hasher,
        &state.throttle,
        client_address(&req, state.settings.trust_proxy),
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
        (status = 422, description = "Wrong current password or unacceptable new one", body = Problem, content_type = "application/problem+json"),
        (status = 429, description = "Too many password attempts; see Retry-After", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn change_password(
    req: HttpRequest,
    state: web::Data<AppState>,
    Auth(p): Auth,
    body: web::Json<ChangePasswordRequest>,
) -> Result<web::Json<TokenPair>, ApiError> {
    let pair = users::change_password(
        &state.db,
        &state.hasher,
        &state.sessions(),
        &state.throttle,
        client_address(&req, state.settings.trust_proxy),
        p.user_id,
        &body.current_password,
        &body.new_password,
    )
    .await?;
    Ok(web::Json(pair))
}

#[utoipa::path(get, path = "/api/v1/me/api-keys", tag = "api-keys", security(("bearer" = []), ("api_key" = [])),
    responses((status = 200, body = Vec<ApiKey>), (status = 401, body = Problem, content_type = "application/problem+json")))]
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
        (status = 422, body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn create_api_key(
    state: web::Data<AppState>,
    Auth(p): Auth,
    body: web::Json<CreateApiKeyRequest>,
) -> Result<HttpResponse, ApiError> {
    let created = api_keys::create(&state.db, p.user_id, &body.name).await?;
    Ok(HttpResponse::Created().json(created))
}

#[utoipa::path(delete, path = "/api/v1/me/api-keys/{id}", tag = "api-keys", security(("bearer" = []), ("api_key" = [])),
    params(("id" = i64, Path, description = "The key's id")),
    responses((status = 204, description = "Revoked"), (status = 404, body = Problem, content_type = "application/problem+json")))]
pub async fn revoke_api_key(
    state: web::Data<AppState>,
    Auth(p): Auth,
    id: web::Path<i64>,
) -> Result<HttpResponse, ApiError> {
    api_keys::revoke(&state.db, p.user_id, id.into_inner()).await?;
    Ok(HttpResponse::NoContent().finish())
}
