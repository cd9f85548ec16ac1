use actix_web::web;
use rookery_actors::feed::FeedOrder;
use serde::Serialize;
use utoipa::ToSchema;

use crate::error::{ApiError, Problem};
use crate::extract::{Auth, JsonObject};
use crate::home::{self, FeedParams, MarkRead, NotificationParams, NotificationView};
use crate::pagination::{Page, PageParams};
use crate::posts::PostView;
use crate::state::AppState;

#[derive(Debug, Serialize, ToSchema)]
pub struct UnreadCount {
    pub unread: i64,
}

#[utoipa::path(get, path = "/api/v1/feed", tag = "feed", security(("bearer" = []), ("api_key" = [])),
    params(FeedParams, PageParams),
    responses((status = 200, description = "Posts of the people the caller follows, and the caller's own", body = Page<PostView>),
              (status = 400, description = "Malformed cursor or order", body = Problem, content_type = "application/problem+json")))]
pub async fn feed(
    state: web::Data<AppState>,
    Auth(p): Auth,
    params: web::Query<FeedParams>,
    page: web::Query<PageParams>,
) -> Result<web::Json<Page<PostView>>, ApiError> {
    let order = params.order.unwrap_or(FeedOrder::Latest);
    Ok(web::Json(
        home::feed(&state.db, &state.media, p.user_id, order, &page).await?,
    ))
}

#[utoipa::path(get, path = "/api/v1/notifications", tag = "notifications", security(("bearer" = []), ("api_key" = [])),
    params(NotificationParams, PageParams),
    responses((status = 200, description = "Newest first", body = Page<NotificationView>)))]
pub async fn notifications(
    state: web::Data<AppState>,
    Auth(p): Auth,
    params: web::Query<NotificationParams>,
    page: web::Query<PageParams>,
) -> Result<web::Json<Page<NotificationView>>, ApiError> {
    Ok(web::Json(
        home::notifications(&state.db, p.user_id, params.unread_only, &page).await?,
    ))
}

#[utoipa::path(get, path = "/api/v1/notifications/unread-count", tag = "notifications", security(("bearer" = []), ("api_key" = [])),
    responses((status = 200, body = UnreadCount)))]
pub async fn unread_count(
    state: web::Data<AppState>,
    Auth(p): Auth,
) -> Result<web::Json<UnreadCount>, ApiError> {
    Ok(web::Json(UnreadCount {
        unread: home::unread_count(&state.db, p.user_id).await?,
    }))
}

#[utoipa::path(post, path = "/api/v1/notifications/read", tag = "notifications", security(("bearer" = []), ("api_key" = [])),
    request_body = MarkRead,
    responses((status = 200, description = "The unread count afterwards", body = UnreadCount),
              (status = 422, body = Problem, content_type = "application/problem+json")))]
pub async fn mark_read(
    state: web::Data<AppState>,
    Auth(p): Auth,
    body: JsonObject<MarkRead>,
) -> Result<web::Json<UnreadCount>, ApiError> {
    Ok(web::Json(UnreadCount {
        unread: home::mark_read(&state.db, &state.events, p.user_id, &body).await?,
    }))
}
