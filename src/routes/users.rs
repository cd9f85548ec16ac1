use actix_web::web;

use crate::accounts::{users, PublicProfile};
use crate::error::{ApiError, Problem};
use crate::state::AppState;

#[utoipa::path(get, path = "/api/v1/users/{username}", tag = "users",
    params(("username" = String, Path)),
    responses((status = 200, body = PublicProfile), (status = 404, body = Problem, content_type = "application/problem+json")))]
pub async fn profile(
    state: web::Data<AppState>,
    username: web::Path<String>,
) -> Result<web::Json<PublicProfile>, ApiError> {
    Ok(web::Json(
        users::public_profile(&state.db, &username).await?,
    ))
}
