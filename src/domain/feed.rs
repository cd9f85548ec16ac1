//! The caller's home feed over REST. The real-time engine owns the
//! timelines; this module turns a page of ids into posts as this viewer may
//! see them.

use rookery_actors::consumers::feed::{self, FeedKey, FeedOrder};
use serde::Deserialize;
use sqlx::PgPool;
use utoipa::IntoParams;

use crate::domain::cache::Caches;
use crate::domain::media::MediaService;
use crate::domain::pagination::{paginate, Page, PageParams};
use crate::domain::posts::{self, PostView};
use crate::domain::DomainError;

#[derive(Debug, Deserialize, IntoParams)]
pub struct FeedParams {
    /// `latest` (newest first, the default) or `popular` (most reactions in the last 7 days, then newest).
    #[param(inline)]
    pub order: Option<FeedOrder>,
}

pub async fn feed(
    db: &PgPool,
    caches: &Caches,
    media: &MediaService,
    user_id: i64,
    order: FeedOrder,
    page: &PageParams,
) -> Result<Page<PostView>, DomainError> {
    let limit = page.limit()?;
    let after: Option<FeedKey> = page.cursor()?;
    if order == FeedOrder::Popular && after.is_some_and(|k| k.r.is_none()) {
        return Err(crate::domain::pagination::CursorError::Malformed.into());
    }
    let rows = feed::page(db, user_id, order, after, limit + 1).await?;
    let (rows, next_cursor) = paginate(rows, limit, |r| FeedKey {
        id: r.id,
        r: (order == FeedOrder::Popular).then_some(r.reactions_count),
    });
    let ids: Vec<i64> = rows.iter().map(|r| r.id).collect();
    Ok(Page {
        items: posts::load(db, caches, media, Some(user_id), &ids).await?,
        next_cursor,
    })
}
