use actix_web::web;
use rookery_actors::consumers::feed::FeedOrder;

use crate::domain::feed::{self, FeedParams};
use crate::domain::pagination::{Page, PageParams};
use crate::domain::posts::PostView;
use crate::http::error::ApiError;
use crate::http::extract::Auth;
use crate::http::state::AppState;

#[utoipa::path(get, path = "/api/v1/feed", tag = "feed", security(("bearer" = []), ("api_key" = [])),
    params(FeedParams, PageParams),
    responses((status = 200, description = "Posts of the people the caller follows, and the caller's own", body = Page<PostView>),
              (status = 400, description = "Malformed cursor or order")))]
pub async fn feed(
    state: web::Data<AppState>,
    Auth(p): Auth,
    params: web::Query<FeedParams>,
    page: web::Query<PageParams>,
) -> Result<web::Json<Page<PostView>>, ApiError> {
    let order = params.order.unwrap_or(FeedOrder::Latest);
    Ok(web::Json(
        feed::feed(
            &state.db,
            &state.caches,
            &state.media,
            p.user_id,
            order,
            &page,
        )
        .await?,
    ))
}
