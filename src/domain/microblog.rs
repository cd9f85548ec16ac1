//! The microblog-compatible API: the contract of a ready-made single-page
//! client (`/api/tweets`, `/api/medias`, `/api/users/...`, api-key only),
//! mapped onto the native domain. Nothing here has rules of its own: posts,
//! media, likes and follows go through the native domain functions, so their
//! validation, visibility (deletions, blocks, moderation) and events apply
//! unchanged. This module only reshapes what they return; its HTTP edge is
//! `crate::http::microblog`.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use serde::Serialize;
use sqlx::PgPool;
use utoipa::ToSchema;

use crate::domain::accounts::Principal;
use crate::domain::cache::{Caches, TimelinePage};
use crate::domain::events::EventSink;
use crate::domain::media::MediaService;
use crate::domain::pagination::{PageParams, MAX_LIMIT};
use crate::domain::posts::{self, reactions, ReactionKind};
use crate::domain::social::{self, Direction, PublicProfile};
use crate::domain::DomainError;

/// Most entries in a list inside an answer: a tweet's likes, a user's
/// followers or following (newest first).
pub const LIST_CAP: i64 = 1000;

/// A user as the compat contract shows them anywhere.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct UserRef {
    pub id: i64,
    /// The display name when one is set, else the username.
    pub name: String,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Like {
    pub user_id: i64,
    pub name: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Tweet {
    pub id: i64,
    pub content: String,
    /// Absolute URLs of the attached images, in order.
    pub attachments: Vec<String>,
    pub author: UserRef,
    /// Who liked it, newest first (at most 1,000).
    pub likes: Vec<Like>,
    /// Creation time, ISO 8601 in UTC.
    pub stamp: DateTime<Utc>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct User {
    pub id: i64,
    pub name: String,
    /// Newest first, at most 1,000.
    pub followers: Vec<UserRef>,
    /// Newest first, at most 1,000.
    pub following: Vec<UserRef>,
}

/// The display name when one is set, else the username.
pub fn name(profile: &PublicProfile) -> String {
    profile
        .display_name
        .as_deref()
        .map(str::trim)
        .filter(|n| !n.is_empty())
        .unwrap_or(&profile.username)
        .to_owned()
}

impl From<&PublicProfile> for UserRef {
    fn from(profile: &PublicProfile) -> Self {
        Self {
            id: profile.id,
            name: name(profile),
        }
    }
}

/// Which part of the feed to answer with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FeedSlice {
    /// Everything, up to the cap.
    Whole,
    /// Page `number` (from 1) of `size` tweets.
    Page { number: i64, size: i64 },
}

impl FeedSlice {
    /// How many ranked tweets to skip and how many to take, within the
    /// first `cap`; `None` when the page lies entirely past them.
    fn bounds(self, cap: i64) -> Option<(i64, i64)> {
        let (skip, take) = match self {
            Self::Whole => (0, cap),
            Self::Page { number, size } => (number.saturating_sub(1).saturating_mul(size), size),
        };
        (skip < cap && take > 0).then(|| (skip, take.min(cap - skip)))
    }
}

/// Only the author, whatever their role: the contract has no moderator
/// deletion (moderators use the native API for that).
pub async fn delete_tweet(
    db: &PgPool,
    events: &EventSink,
    by: &Principal,
    post_id: i64,
) -> Result<(), DomainError> {
    let author_id = posts::visible_author(db, Some(by.user_id), post_id).await?;
    if author_id != by.user_id {
        return Err(DomainError::Forbidden("only the author may delete a tweet"));
    }
    posts::delete(db, events, by, post_id).await
}

/// Like native unfollowing, but an absent (or blocked) user is 404 rather
/// than a silent success: the contract promises 404 for unknown ids.
pub async fn unfollow(
    db: &PgPool,
    events: &EventSink,
    follower: i64,
    followee: i64,
) -> Result<(), DomainError> {
    social::profile(db, Some(follower), followee).await?;
    social::unfollow(db, events, follower, followee).await
}

/// The caller's feed: the posts of the people they follow and their own,
/// ranked by likes (most first), then newest first. The ranking covers the
/// newest `cap` posts of the feed, so each request does bounded work and the
/// pages of one ranking add up to the unpaged answer.
pub async fn feed(
    db: &PgPool,
    caches: &Caches,
    media: &MediaService,
    viewer: i64,
    cap: i64,
    slice: FeedSlice,
) -> Result<Vec<Tweet>, DomainError> {
    let Some((skip, take)) = slice.bounds(cap) else {
        return Ok(Vec::new());
    };
    // Candidates only: `posts::load` below applies every visibility rule
    // again, so a stale candidate cannot leak a post. They are ranked here
    // by the like counts of the cached posts (kept true by every reaction).
    let candidates = candidates(db, caches, viewer, cap).await?;
    let cached = posts::cached(db, caches, &candidates.ids).await?;
    let mut ranked: Vec<(i64, DateTime<Utc>, i64)> = candidates
        .ids
        .iter()
        .filter_map(|id| cached.get(id))
        .map(|p| {
            let likes = p.reactions.0.get(&ReactionKind::Like).copied();
            (likes.unwrap_or(0), p.created_at, p.id)
        })
        .collect();
    // Most liked first, then newest.
    ranked.sort_unstable_by(|a, b| b.cmp(a));
    let skip = usize::try_from(skip).unwrap_or(usize::MAX);
    let take = usize::try_from(take).unwrap_or(0);
    let ids: Vec<i64> = ranked.iter().skip(skip).take(take).map(|r| r.2).collect();
    let (loaded, mut likes) = tokio::try_join!(
        posts::load(db, caches, media, Some(viewer), &ids),
        reactions::likers_by_post(db, caches, viewer, &ids, LIST_CAP),
    )?;
    Ok(loaded
        .into_iter()
        .map(|post| Tweet {
            likes: likes
                .remove(&post.id)
                .unwrap_or_default()
                .iter()
                .map(|p| Like {
                    user_id: p.id,
                    name: name(p),
                })
                .collect(),
            id: post.id,
            attachments: post.media.into_iter().map(|m| m.url).collect(),
            author: UserRef::from(&post.author),
            content: post.text,
            stamp: post.created_at,
        })
        .collect())
}

/// A user with their followers and whom they follow, as `viewer` sees them.
pub async fn user(db: &PgPool, viewer: i64, user_id: i64) -> Result<User, DomainError> {
    let profile = social::profile(db, Some(viewer), user_id).await?;
    Ok(User {
        id: profile.id,
        name: name(&profile),
        followers: connections(db, viewer, user_id, Direction::Followers).await?,
        following: connections(db, viewer, user_id, Direction::Following).await?,
    })
}

/// Walks the native paged lists up to [`LIST_CAP`] entries.
async fn connections(
    db: &PgPool,
    viewer: i64,
    user_id: i64,
    direction: Direction,
) -> Result<Vec<UserRef>, DomainError> {
    let mut out: Vec<UserRef> = Vec::new();
    let mut cursor = None;
    loop {
        let room = LIST_CAP - i64::try_from(out.len()).unwrap_or(LIST_CAP);
        let params = PageParams {
            limit: Some(room.min(MAX_LIMIT)),
            cursor,
        };
        let page = social::follow_list(db, Some(viewer), user_id, direction, &params).await?;
        out.extend(page.items.iter().map(UserRef::from));
        match page.next_cursor {
            Some(next) if i64::try_from(out.len()).unwrap_or(LIST_CAP) < LIST_CAP => {
                cursor = Some(next);
            }
            _ => return Ok(out),
        }
    }
}

/// The newest `cap` posts of `viewer` and the people they follow, as
/// `visible_posts` gives them to `viewer`, from the cache when it has them
/// (kept and forgotten as the home feed's first pages are).
async fn candidates(
    db: &PgPool,
    caches: &Caches,
    viewer: i64,
    cap: i64,
) -> Result<Arc<TimelinePage>, DomainError> {
    let ticket = match caches.candidates.get(viewer) {
        Ok(page) => return Ok(page),
        Err(ticket) => ticket,
    };
    let (ids, mut authors) = tokio::try_join!(
        sqlx::query_scalar!(
            r#"SELECT p.id AS "id!" FROM visible_posts($1) p
               WHERE p.author_id IN (SELECT $1::bigint
                                     UNION ALL
                                     SELECT f.followee_id FROM follows f WHERE f.follower_id = $1)
               ORDER BY p.id DESC
               LIMIT $2"#,
            viewer,
            cap
        )
        .fetch_all(db),
        social::followees(db, viewer),
    )?;
    authors.push(viewer);
    let page = Arc::new(TimelinePage { ids, authors });
    caches.candidates.fill(viewer, ticket, page.clone());
    Ok(page)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pages_slice_the_capped_ranking() {
        assert_eq!(FeedSlice::Whole.bounds(1000), Some((0, 1000)));
        let page = |number, size| FeedSlice::Page { number, size };
        assert_eq!(page(1, 10).bounds(1000), Some((0, 10)));
        assert_eq!(page(3, 10).bounds(1000), Some((20, 10)));
        // The last page is cut at the cap; pages past it are empty.
        assert_eq!(page(2, 600).bounds(1000), Some((600, 400)));
        assert_eq!(page(3, 600).bounds(1000), None);
        assert_eq!(page(i64::MAX, i64::MAX).bounds(1000), None);
    }
}
