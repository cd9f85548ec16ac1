use actix_web::{web, HttpRequest, HttpResponse};

use crate::domain::idempotency::{self, Answer, Done};
use crate::domain::pagination::{Page, PageParams};
use crate::domain::social::{self, BlockedUser, Direction, PublicProfile};
use crate::http::error::ApiError;
use crate::http::extract::{Auth, MaybeAuth, PageOf};
use crate::http::state::AppState;
use crate::http::v1::idempotent::{self, IdempotencyKey};
use crate::http::v1::PageAnswer;

#[utoipa::path(get, path = "/api/v1/users/{username}", tag = "users", security((), ("bearer" = []), ("api_key" = [])),
    params(("username" = String, Path, pattern = r"^[^\u0000]*$")),
    responses((status = 200, body = PublicProfile), (status = 404)))]
pub async fn profile(
    state: web::Data<AppState>,
    viewer: MaybeAuth,
    username: web::Path<String>,
) -> Result<web::Json<PublicProfile>, ApiError> {
    Ok(web::Json(
        social::profile_by_username(&state.db, viewer.user_id(), &username).await?,
    ))
}

#[utoipa::path(put, path = "/api/v1/users/{id}/follow", tag = "social", security(("bearer" = []), ("api_key" = [])),
    params(("id" = i64, Path), IdempotencyKey),
    responses(
        (status = 200, description = "Following (idempotent)", body = PublicProfile),
        (status = 404, description = "No such user, or a block stands"),
        (status = 422, description = "Following yourself"),
    ))]
pub async fn follow(
    req: HttpRequest,
    state: web::Data<AppState>,
    Auth(p): Auth,
    id: web::Path<i64>,
) -> Result<Answer, ApiError> {
    let followee = id.into_inner();
    let key = idempotent::key(&req, p.user_id, &[])?;
    idempotency::run(&state.db, &state.events, key, 200, async |tx| {
        let (profile, events) = social::follow(tx, p.user_id, followee).await?;
        Ok::<_, ApiError>(Done {
            body: profile,
            location: None,
            events,
        })
    })
    .await
}

#[utoipa::path(delete, path = "/api/v1/users/{id}/follow", tag = "social", security(("bearer" = []), ("api_key" = [])),
    params(("id" = i64, Path)), responses((status = 204, description = "Not following (idempotent)")))]
pub async fn unfollow(
    state: web::Data<AppState>,
    Auth(p): Auth,
    id: web::Path<i64>,
) -> Result<HttpResponse, ApiError> {
    social::unfollow(&state.db, &state.events, p.user_id, id.into_inner()).await?;
    Ok(HttpResponse::NoContent().finish())
}

#[utoipa::path(get, path = "/api/v1/users/{id}/followers", tag = "social", security((), ("bearer" = []), ("api_key" = [])),
    params(("id" = i64, Path), PageParams),
    responses((status = 200, body = Page<PublicProfile>), (status = 400, description = "Malformed cursor")))]
pub async fn followers(state: web::Data<AppState>, list: PageOf) -> PageAnswer<PublicProfile> {
    follow_list(&state, list, Direction::Followers).await
}

#[utoipa::path(get, path = "/api/v1/users/{id}/following", tag = "social", security((), ("bearer" = []), ("api_key" = [])),
    params(("id" = i64, Path), PageParams),
    responses((status = 200, body = Page<PublicProfile>), (status = 400, description = "Malformed cursor")))]
pub async fn following(state: web::Data<AppState>, list: PageOf) -> PageAnswer<PublicProfile> {
    follow_list(&state, list, Direction::Following).await
}

/// A page of the users who follow a user, or whom a user follows.
async fn follow_list(
    state: &AppState,
    (viewer, id, page): PageOf,
    direction: Direction,
) -> PageAnswer<PublicProfile> {
    let list = social::follow_list(&state.db, viewer.user_id(), *id, direction, &page);
    Ok(web::Json(list.await?))
}

#[utoipa::path(put, path = "/api/v1/users/{id}/block", tag = "social", security(("bearer" = []), ("api_key" = [])),
    params(("id" = i64, Path)),
    responses(
        (status = 204, description = "Blocked (idempotent); follows both ways removed"),
        (status = 404),
        (status = 422, description = "Blocking yourself"),
    ))]
pub async fn block(
    state: web::Data<AppState>,
    Auth(p): Auth,
    id: web::Path<i64>,
) -> Result<HttpResponse, ApiError> {
    social::block(&state.db, &state.events, p.user_id, id.into_inner()).await?;
    Ok(HttpResponse::NoContent().finish())
}

#[utoipa::path(delete, path = "/api/v1/users/{id}/block", tag = "social", security(("bearer" = []), ("api_key" = [])),
    params(("id" = i64, Path)), responses((status = 204, description = "Not blocked (idempotent)")))]
pub async fn unblock(
    state: web::Data<AppState>,
    Auth(p): Auth,
    id: web::Path<i64>,
) -> Result<HttpResponse, ApiError> {
    social::unblock(&state.db, &state.events, p.user_id, id.into_inner()).await?;
    Ok(HttpResponse::NoContent().finish())
}

#[utoipa::path(get, path = "/api/v1/me/blocks", tag = "social", security(("bearer" = []), ("api_key" = [])),
    params(PageParams), responses((status = 200, body = Page<BlockedUser>)))]
pub async fn blocks(
    state: web::Data<AppState>,
    Auth(p): Auth,
    page: web::Query<PageParams>,
) -> Result<web::Json<Page<BlockedUser>>, ApiError> {
    Ok(web::Json(
        social::blocks(&state.db, p.user_id, &page).await?,
    ))
}
