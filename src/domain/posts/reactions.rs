//! Reactions (one per user per post) and distinct views. Counters on `posts`
//! change in the same transaction as the rows they count, so they stay exact
//! under any concurrency: the UPDATE's row lock serialises writers.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use serde::Serialize;
use sqlx::{PgConnection, PgPool};
use utoipa::ToSchema;

use std::sync::Arc;

use super::{visible_author, Viewer};
use crate::domain::accounts::users;
use crate::domain::cache::Caches;
use crate::domain::events::{DomainEvent, EventSink};
use crate::domain::pagination::{paginate, Page, PageParams, TimeKey};
use crate::domain::social::{self, PublicProfile};
use crate::domain::DomainError;

pub use rookery_actors::ReactionKind;

/// Adds or replaces the caller's reaction. Repeating the same kind changes nothing.
/// Reacts in the caller's transaction; returns the events to commit (none
/// when the reaction was already this one).
pub async fn react(
    tx: &mut PgConnection,
    user_id: i64,
    post_id: i64,
    kind: ReactionKind,
) -> Result<Vec<DomainEvent>, DomainError> {
    let post_author_id = visible_author(&mut *tx, Some(user_id), post_id).await?;
    let previous = sqlx::query_scalar!(
        r#"SELECT kind AS "kind: ReactionKind" FROM reactions WHERE post_id = $1 AND user_id = $2 FOR UPDATE"#,
        post_id,
        user_id
    )
    .fetch_optional(&mut *tx)
    .await?;
    if previous == Some(kind) {
        return Ok(Vec::new());
    }
    let inserted = sqlx::query_scalar!(
        r#"INSERT INTO reactions (post_id, user_id, kind) VALUES ($1, $2, $3)
           ON CONFLICT (post_id, user_id) DO UPDATE SET kind = EXCLUDED.kind, created_at = now()
           RETURNING (xmax = 0) AS "inserted!""#,
        post_id,
        user_id,
        kind as ReactionKind
    )
    .fetch_one(&mut *tx)
    .await?;
    if inserted {
        sqlx::query!(
            "UPDATE posts SET reactions_count = reactions_count + 1 WHERE id = $1",
            post_id
        )
        .execute(&mut *tx)
        .await?;
    }
    let event = DomainEvent::ReactionAdded {
        post_id,
        post_author_id,
        user_id,
        kind,
    };
    Ok(vec![event])
}

/// Idempotent.
pub async fn unreact(
    db: &PgPool,
    events: &EventSink,
    user_id: i64,
    post_id: i64,
) -> Result<(), DomainError> {
    remove(db, events, user_id, post_id, None).await
}

/// Removes the caller's reaction only if it is of `kind`, so taking back a
/// like leaves a love alone. Idempotent.
pub async fn unreact_kind(
    db: &PgPool,
    events: &EventSink,
    user_id: i64,
    post_id: i64,
    kind: ReactionKind,
) -> Result<(), DomainError> {
    remove(db, events, user_id, post_id, Some(kind)).await
}

async fn remove(
    db: &PgPool,
    events: &EventSink,
    user_id: i64,
    post_id: i64,
    kind: Option<ReactionKind>,
) -> Result<(), DomainError> {
    visible_author(db, Some(user_id), post_id).await?;
    let mut tx = db.begin().await?;
    let removed = sqlx::query!(
        "DELETE FROM reactions WHERE post_id = $1 AND user_id = $2 AND ($3::reaction_kind IS NULL OR kind = $3)",
        post_id,
        user_id,
        kind as Option<ReactionKind>
    )
    .execute(&mut *tx)
    .await?
    .rows_affected();
    let mut announced = Vec::new();
    if removed > 0 {
        sqlx::query!(
            "UPDATE posts SET reactions_count = reactions_count - 1 WHERE id = $1",
            post_id
        )
        .execute(&mut *tx)
        .await?;
        announced.push(DomainEvent::ReactionRemoved { post_id, user_id });
    }
    events.commit(tx, announced).await?;
    Ok(())
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Reactor {
    pub user: PublicProfile,
    pub kind: ReactionKind,
    pub created_at: DateTime<Utc>,
}

/// Who reacted, newest first, optionally only one kind.
pub async fn list(
    db: &PgPool,
    viewer: Option<i64>,
    post_id: i64,
    kind: Option<ReactionKind>,
    page: &PageParams,
) -> Result<Page<Reactor>, DomainError> {
    visible_author(db, viewer, post_id).await?;
    let limit = page.limit()?;
    let cursor: Option<TimeKey> = page.cursor()?;
    let rows = sqlx::query!(
        r#"SELECT r.user_id, r.kind AS "kind: ReactionKind", r.created_at
           FROM reactions r JOIN visible_users($5) u ON u.id = r.user_id
           WHERE r.post_id = $1
             AND ($2::reaction_kind IS NULL OR r.kind = $2)
             AND ($3::timestamptz IS NULL OR (r.created_at, r.user_id) < ($3, $4))
           ORDER BY r.created_at DESC, r.user_id DESC
           LIMIT $6"#,
        post_id,
        kind as Option<ReactionKind>,
        cursor.map(|c| c.t),
        cursor.map_or(0, |c| c.id),
        viewer as Option<i64>,
        limit + 1
    )
    .fetch_all(db)
    .await?;
    let (rows, next_cursor) = paginate(rows, limit, |r| TimeKey {
        t: r.created_at,
        id: r.user_id,
    });
    let ids: Vec<i64> = rows.iter().map(|r| r.user_id).collect();
    let mut profiles = social::profiles(db, viewer, &ids).await?;
    let items = rows
        .into_iter()
        .filter_map(|r| {
            profiles.remove(&r.user_id).map(|user| Reactor {
                user,
                kind: r.kind,
                created_at: r.created_at,
            })
        })
        .collect();
    Ok(Page { items, next_cursor })
}

/// For each of `post_ids`, up to `per_post` users who reacted with `kind`,
/// newest first, as `viewer` may see them: inactive users and users in a
/// block relation with the viewer are left out. Posts nobody reacted to are absent.
pub async fn reactors_by_post(
    db: &PgPool,
    viewer: Option<i64>,
    post_ids: &[i64],
    kind: ReactionKind,
    per_post: i64,
) -> Result<HashMap<i64, Vec<PublicProfile>>, DomainError> {
    if post_ids.is_empty() {
        return Ok(HashMap::new());
    }
    let rows = reactor_rows(db, post_ids, kind, per_post).await?;
    let mut ids: Vec<i64> = rows.iter().map(|r| r.1).collect();
    ids.sort_unstable();
    ids.dedup();
    let profiles = social::profiles(db, viewer, &ids).await?;
    let mut by_post: HashMap<i64, Vec<PublicProfile>> = HashMap::new();
    for (post_id, user_id) in rows {
        if let Some(profile) = profiles.get(&user_id) {
            by_post.entry(post_id).or_default().push(profile.clone());
        }
    }
    Ok(by_post)
}

/// (post, user) for up to `per_post` reactions of `kind` on each of
/// `post_ids`, newest first within a post.
async fn reactor_rows(
    db: &PgPool,
    post_ids: &[i64],
    kind: ReactionKind,
    per_post: i64,
) -> Result<Vec<(i64, i64)>, sqlx::Error> {
    let rows = sqlx::query!(
        r#"SELECT p.id AS "post_id!", r.user_id
           FROM unnest($1::bigint[]) AS p(id)
           CROSS JOIN LATERAL (SELECT user_id, created_at FROM reactions
                               WHERE post_id = p.id AND kind = $2
                               ORDER BY created_at DESC, user_id DESC
                               LIMIT $3) r
           ORDER BY p.id, r.created_at DESC, r.user_id DESC"#,
        post_ids,
        kind as ReactionKind,
        per_post
    )
    .fetch_all(db)
    .await?;
    Ok(rows.into_iter().map(|r| (r.post_id, r.user_id)).collect())
}

/// [`reactors_by_post`] for likes, from the read caches: who liked each
/// post is cached per post (forgotten by every reaction on it), and the
/// rule of `visible_users` is applied to the cached users for `viewer`.
pub async fn likers_by_post(
    db: &PgPool,
    caches: &Caches,
    viewer: i64,
    post_ids: &[i64],
    per_post: i64,
) -> Result<HashMap<i64, Vec<PublicProfile>>, DomainError> {
    let (mut lists, missed, ticket) = caches.likers.get_many(post_ids);
    if !missed.is_empty() {
        let mut loaded: HashMap<i64, Vec<i64>> = HashMap::new();
        for (post_id, user_id) in reactor_rows(db, &missed, ReactionKind::Like, per_post).await? {
            loaded.entry(post_id).or_default().push(user_id);
        }
        // A post nobody liked is cached too, as an empty list.
        let loaded: HashMap<i64, Arc<Vec<i64>>> = missed
            .iter()
            .map(|id| (*id, Arc::new(loaded.remove(id).unwrap_or_default())))
            .collect();
        caches.likers.fill(ticket, &missed, &loaded);
        lists.extend(loaded);
    }
    let mut ids: Vec<i64> = lists.values().flat_map(|l| l.iter().copied()).collect();
    ids.sort_unstable();
    ids.dedup();
    let (users, me) = tokio::try_join!(
        async {
            users::cached(db, caches, &ids)
                .await
                .map_err(DomainError::from)
        },
        Viewer::load(db, Some(viewer), &ids, &[]),
    )?;
    Ok(lists
        .into_iter()
        .map(|(post_id, likers)| {
            let seen = likers
                .iter()
                .filter_map(|id| users.get(id))
                .filter(|u| me.sees(u))
                .map(|u| me.profile(u))
                .collect();
            (post_id, seen)
        })
        .filter(|(_, seen): &(i64, Vec<PublicProfile>)| !seen.is_empty())
        .collect())
}

/// Records that `viewer` saw the post; returns the number of distinct viewers.
pub async fn record_view(
    db: &PgPool,
    events: &EventSink,
    viewer: i64,
    post_id: i64,
) -> Result<i64, DomainError> {
    visible_author(db, Some(viewer), post_id).await?;
    let mut tx = db.begin().await?;
    let first = sqlx::query!(
        "INSERT INTO post_views (post_id, viewer_id) VALUES ($1, $2) ON CONFLICT DO NOTHING",
        post_id,
        viewer
    )
    .execute(&mut *tx)
    .await?
    .rows_affected();
    let (views, announced) = if first > 0 {
        let views = sqlx::query_scalar!(
            "UPDATE posts SET views_count = views_count + 1 WHERE id = $1 RETURNING views_count",
            post_id
        )
        .fetch_one(&mut *tx)
        .await?;
        let viewed = DomainEvent::PostViewed {
            post_id,
            user_id: viewer,
        };
        (views, vec![viewed])
    } else {
        let views = sqlx::query_scalar!("SELECT views_count FROM posts WHERE id = $1", post_id)
            .fetch_one(&mut *tx)
            .await?;
        (views, Vec::new())
    };
    events.commit(tx, announced).await?;
    Ok(views)
}
