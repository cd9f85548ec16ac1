use actix_web::web;
use serde::Serialize;
use utoipa::ToSchema;

use crate::domain::notifications::{self, MarkRead, NotificationParams, NotificationView};
use crate::domain::pagination::{Page, PageParams};
use crate::http::error::ApiError;
use crate::http::extract::{Auth, JsonObject};
use crate::http::state::AppState;

#[derive(Debug, Serialize, ToSchema)]
pub struct UnreadCount {
    pub unread: i64,
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
        notifications::notifications(&state.db, p.user_id, params.unread_only, &page).await?,
    ))
}

#[utoipa::path(get, path = "/api/v1/notifications/unread-count", tag = "notifications", security(("bearer" = []), ("api_key" = [])),
    responses((status = 200, body = UnreadCount)))]
pub async fn unread_count(
    state: web::Data<AppState>,
    Auth(p): Auth,
) -> Result<web::Json<UnreadCount>, ApiError> {
    Ok(web::Json(UnreadCount {
        unread: notifications::unread_count(&state.db, p.user_id).await?,
    }))
}

#[utoipa::path(post, path = "/api/v1/notifications/read", tag = "notifications", security(("bearer" = []), ("api_key" = [])),
    request_body = MarkRead,
    responses((status = 200, description = "The unread count afterwards", body = UnreadCount),
              (status = 422)))]
pub async fn mark_read(
    state: web::Data<AppState>,
    Auth(p): Auth,
    body: JsonObject<MarkRead>,
) -> Result<web::Json<UnreadCount>, ApiError> {
    Ok(web::Json(UnreadCount {
        unread: notifications::mark_read(&state.db, &state.events, p.user_id, &body).await?,
    }))
}
