//! The caller's home feed over REST. The real-time engine owns the
//! timelines; this module turns a page of ids into posts as this viewer may
//! see them.

use rookery_actors::consumers::feed::{self, FeedKey, FeedOrder};
use serde::Deserialize;
use sqlx::PgPool;
use utoipa::IntoParams;

use std::sync::Arc;

use crate::domain::cache::{Caches, TimelinePage, TIMELINE_PAGE};
use crate::domain::media::MediaService;
use crate::domain::pagination::{paginate, Page, PageParams};
use crate::domain::posts::{self, PostView};
use crate::domain::social;
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
    let keys: Vec<FeedKey> = if order == FeedOrder::Latest && after.is_none() {
        // The first page, the one nearly every read asks for, from the cache.
        let take = usize::try_from(limit).unwrap_or(0) + 1;
        first_page(db, caches, user_id)
            .await?
            .ids
            .iter()
            .take(take)
            .map(|&id| FeedKey { id, r: None })
            .collect()
    } else {
        feed::page(db, user_id, order, after, limit + 1)
            .await?
            .iter()
            .map(|r| FeedKey {
                id: r.id,
                r: (order == FeedOrder::Popular).then_some(r.reactions_count),
            })
            .collect()
    };
    let (keys, next_cursor) = paginate(keys, limit, |k| *k);
    let ids: Vec<i64> = keys.iter().map(|k| k.id).collect();
    Ok(Page {
        items: posts::load(db, caches, media, Some(user_id), &ids).await?,
        next_cursor,
    })
}

/// The first page of `user_id`'s feed, latest first, from the cache when it
/// has it (see `cache::Timelines`).
async fn first_page(
    db: &PgPool,
    caches: &Caches,
    user_id: i64,
) -> Result<Arc<TimelinePage>, DomainError> {
    let ticket = match caches.timelines.get(user_id) {
        Ok(page) => return Ok(page),
        Err(ticket) => ticket,
    };
    let (rows, authors) = tokio::try_join!(
        feed::page(db, user_id, FeedOrder::Latest, None, TIMELINE_PAGE as i64),
        social::followees(db, user_id),
    )?;
    let mut authors = authors;
    authors.push(user_id);
    let page = Arc::new(TimelinePage {
        ids: rows.iter().map(|r| r.id).collect(),
        authors,
    });
    caches.timelines.fill(user_id, ticket, page.clone());
    Ok(page)
}
