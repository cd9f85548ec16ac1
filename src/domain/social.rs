//! The social graph: follows and blocks, and the public profiles that show
//! them. Owns the `follows` and `blocks` tables.
//!
//! A block stands in both directions: while it exists neither user can
//! follow, see or respond to the other, and each is left out of the other's
//! lists, exactly as if absent.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use serde::Serialize;
use sqlx::{PgConnection, PgExecutor, PgPool};
use utoipa::ToSchema;

use crate::domain::accounts::Role;
use crate::domain::events::{DomainEvent, EventSink};
use crate::domain::pagination::{paginate, Page, PageParams, TimeKey};
use crate::domain::DomainError;

/// What anyone may see of a user, with the caller's relation to them.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct PublicProfile {
    pub id: i64,
    pub username: String,
    pub display_name: Option<String>,
    pub bio: Option<String>,
    pub role: Role,
    pub created_at: DateTime<Utc>,
    pub followers_count: i64,
    pub following_count: i64,
    pub posts_count: i64,
    /// Whether the caller follows this user; absent for anonymous callers.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub followed_by_me: Option<bool>,
    /// Whether this user follows the caller; absent for anonymous callers.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub follows_me: Option<bool>,
}

struct ProfileRow {
    id: i64,
    username: String,
    display_name: Option<String>,
    bio: Option<String>,
    role: Role,
    created_at: DateTime<Utc>,
    followers_count: i64,
    following_count: i64,
    posts_count: i64,
    followed_by_me: bool,
    follows_me: bool,
}

impl ProfileRow {
    fn into_profile(self, viewer: Option<i64>) -> PublicProfile {
        PublicProfile {
            id: self.id,
            username: self.username,
            display_name: self.display_name,
            bio: self.bio,
            role: self.role,
            created_at: self.created_at,
            followers_count: self.followers_count,
            following_count: self.following_count,
            posts_count: self.posts_count,
            followed_by_me: viewer.map(|_| self.followed_by_me),
            follows_me: viewer.map(|_| self.follows_me),
        }
    }
}

/// Profiles of active users not in a block relation with the viewer, keyed by id.
pub async fn profiles(
    db: impl PgExecutor<'_>,
    viewer: Option<i64>,
    ids: &[i64],
) -> Result<HashMap<i64, PublicProfile>, DomainError> {
    if ids.is_empty() {
        return Ok(HashMap::new());
    }
    let rows = sqlx::query_as!(
        ProfileRow,
        r#"SELECT u.id AS "id!", u.username AS "username!", u.display_name, u.bio,
                  u.role AS "role!: Role", u.created_at AS "created_at!",
                  u.followers_count AS "followers_count!", u.following_count AS "following_count!",
                  u.posts_count AS "posts_count!",
                  EXISTS (SELECT 1 FROM follows f WHERE f.follower_id = $2 AND f.followee_id = u.id) AS "followed_by_me!",
                  EXISTS (SELECT 1 FROM follows f WHERE f.follower_id = u.id AND f.followee_id = $2) AS "follows_me!"
           FROM visible_users($2) u WHERE u.id = ANY($1)"#,
        ids,
        viewer as Option<i64>,
    )
    .fetch_all(db)
    .await?;
    Ok(rows
        .into_iter()
        .map(|r| (r.id, r.into_profile(viewer)))
        .collect())
}

pub async fn profile(
    db: impl PgExecutor<'_>,
    viewer: Option<i64>,
    user_id: i64,
) -> Result<PublicProfile, DomainError> {
    profiles(db, viewer, &[user_id])
        .await?
        .remove(&user_id)
        .ok_or(DomainError::NotFound("user"))
}

pub async fn profile_by_username(
    db: &PgPool,
    viewer: Option<i64>,
    username: &str,
) -> Result<PublicProfile, DomainError> {
    let id = sqlx::query_scalar!(
        "SELECT id FROM users WHERE lower(username) = lower($1) AND status = 'active'",
        username
    )
    .fetch_optional(db)
    .await?
    .ok_or(DomainError::NotFound("user"))?;
    profile(db, viewer, id).await
}

/// Idempotent. Following oneself is invalid; a blocked or absent user is not found.
/// Follows in the caller's transaction; returns the followee's profile as
/// the follower now sees it, and the events to commit.
pub async fn follow(
    tx: &mut PgConnection,
    follower: i64,
    followee: i64,
) -> Result<(PublicProfile, Vec<DomainEvent>), DomainError> {
    if follower == followee {
        return Err(DomainError::invalid("id", "you cannot follow yourself"));
    }
    // The profile lookup already refuses absent, inactive and blocked users.
    profile(&mut *tx, Some(follower), followee).await?;
    let inserted = sqlx::query!(
        "INSERT INTO follows (follower_id, followee_id)
         SELECT $1, u.id FROM visible_users($1) u WHERE u.id = $2
         ON CONFLICT DO NOTHING",
        follower,
        followee
    )
    .execute(&mut *tx)
    .await?
    .rows_affected();
    let announced = if inserted == 1 {
        vec![DomainEvent::Followed {
            follower_id: follower,
            followee_id: followee,
        }]
    } else {
        Vec::new()
    };
    Ok((
        profile(&mut *tx, Some(follower), followee).await?,
        announced,
    ))
}

/// Idempotent.
pub async fn unfollow(
    db: &PgPool,
    events: &EventSink,
    follower: i64,
    followee: i64,
) -> Result<(), DomainError> {
    let mut tx = db.begin().await?;
    let removed = sqlx::query!(
        "DELETE FROM follows WHERE follower_id = $1 AND followee_id = $2",
        follower,
        followee
    )
    .execute(&mut *tx)
    .await?
    .rows_affected();
    let announced = if removed > 0 {
        vec![DomainEvent::Unfollowed {
            follower_id: follower,
            followee_id: followee,
        }]
    } else {
        Vec::new()
    };
    events.commit(tx, announced).await?;
    Ok(())
}

/// Idempotent. Removes follows in both directions, in the same transaction.
pub async fn block(
    db: &PgPool,
    events: &EventSink,
    blocker: i64,
    blocked: i64,
) -> Result<(), DomainError> {
    if blocker == blocked {
        return Err(DomainError::invalid("id", "you cannot block yourself"));
    }
    let exists = sqlx::query_scalar!(
        r#"SELECT EXISTS (SELECT 1 FROM users WHERE id = $1 AND status <> 'deleted') AS "e!""#,
        blocked
    )
    .fetch_one(db)
    .await?;
    if !exists {
        return Err(DomainError::NotFound("user"));
    }
    let mut tx = db.begin().await?;
    sqlx::query!(
        "INSERT INTO blocks (blocker_id, blocked_id) VALUES ($1, $2) ON CONFLICT DO NOTHING",
        blocker,
        blocked
    )
    .execute(&mut *tx)
    .await?;
    sqlx::query!(
        "DELETE FROM follows WHERE (follower_id = $1 AND followee_id = $2) OR (follower_id = $2 AND followee_id = $1)",
        blocker,
        blocked
    )
    .execute(&mut *tx)
    .await?;
    events
        .commit(
            tx,
            vec![DomainEvent::Blocked {
                blocker_id: blocker,
                blocked_id: blocked,
            }],
        )
        .await?;
    Ok(())
}

/// Idempotent.
pub async fn unblock(
    db: &PgPool,
    events: &EventSink,
    blocker: i64,
    blocked: i64,
) -> Result<(), DomainError> {
    let mut tx = db.begin().await?;
    let removed = sqlx::query!(
        "DELETE FROM blocks WHERE blocker_id = $1 AND blocked_id = $2",
        blocker,
        blocked
    )
    .execute(&mut *tx)
    .await?
    .rows_affected();
    let announced = if removed > 0 {
        vec![DomainEvent::Unblocked {
            blocker_id: blocker,
            blocked_id: blocked,
        }]
    } else {
        Vec::new()
    };
    events.commit(tx, announced).await?;
    Ok(())
}

struct Edge {
    user_id: i64,
    created_at: DateTime<Utc>,
}

async fn profiles_in_order(
    db: &PgPool,
    viewer: Option<i64>,
    edges: Vec<Edge>,
    limit: i64,
) -> Result<Page<PublicProfile>, DomainError> {
    let (edges, next_cursor) = paginate(edges, limit, |e| TimeKey {
        t: e.created_at,
        id: e.user_id,
    });
    let ids: Vec<i64> = edges.iter().map(|e| e.user_id).collect();
    let mut found = profiles(db, viewer, &ids).await?;
    let items = ids.iter().filter_map(|id| found.remove(id)).collect();
    Ok(Page { items, next_cursor })
}

/// Which side of `user_id`'s follows a list shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    /// Who follows them.
    Followers,
    /// Whom they follow.
    Following,
}

/// The followers of `user_id`, or whom they follow, newest first. Users the
/// viewer may not see (a block either way, an inactive account) are left out.
pub async fn follow_list(
    db: &PgPool,
    viewer: Option<i64>,
    user_id: i64,
    direction: Direction,
    page: &PageParams,
) -> Result<Page<PublicProfile>, DomainError> {
    profile(db, viewer, user_id).await?;
    let limit = page.limit()?;
    let cursor: Option<TimeKey> = page.cursor()?;
    // One branch runs (the other's one-time filter is false), each walking
    // its own index newest first, so a page reads about `limit` rows.
    let edges = sqlx::query_as!(
        Edge,
        r#"SELECT e.user_id AS "user_id!", e.created_at AS "created_at!"
           FROM (SELECT f.follower_id AS user_id, f.created_at FROM follows f
                 WHERE $5 AND f.followee_id = $1
                 UNION ALL
                 SELECT f.followee_id, f.created_at FROM follows f
                 WHERE NOT $5 AND f.follower_id = $1) e
           JOIN visible_users($4) u ON u.id = e.user_id
           WHERE ($2::timestamptz IS NULL OR (e.created_at, e.user_id) < ($2, $3))
           ORDER BY e.created_at DESC, e.user_id DESC
           LIMIT $6"#,
        user_id,
        cursor.map(|c| c.t),
        cursor.map_or(0, |c| c.id),
        viewer as Option<i64>,
        direction == Direction::Followers,
        limit + 1
    )
    .fetch_all(db)
    .await?;
    profiles_in_order(db, viewer, edges, limit).await
}

/// A blocked user as their blocker sees them in their block list.
#[derive(Debug, Serialize, ToSchema)]
pub struct BlockedUser {
    pub id: i64,
    pub username: String,
    pub display_name: Option<String>,
    pub blocked_at: DateTime<Utc>,
}

/// The caller's blocks, newest first.
pub async fn blocks(
    db: &PgPool,
    blocker: i64,
    page: &PageParams,
) -> Result<Page<BlockedUser>, DomainError> {
    let limit = page.limit()?;
    let cursor: Option<TimeKey> = page.cursor()?;
    let rows = sqlx::query_as!(
        BlockedUser,
        r#"SELECT u.id, u.username, u.display_name, b.created_at AS blocked_at
           FROM blocks b JOIN users u ON u.id = b.blocked_id
           WHERE b.blocker_id = $1
             AND ($2::timestamptz IS NULL OR (b.created_at, b.blocked_id) < ($2, $3))
           ORDER BY b.created_at DESC, b.blocked_id DESC
           LIMIT $4"#,
        blocker,
        cursor.map(|c| c.t),
        cursor.map_or(0, |c| c.id),
        limit + 1
    )
    .fetch_all(db)
    .await?;
    let (items, next_cursor) = paginate(rows, limit, |b| TimeKey {
        t: b.blocked_at,
        id: b.id,
    });
    Ok(Page { items, next_cursor })
}

/// Everyone `user_id` follows, whatever their state.
pub async fn followees(db: &PgPool, user_id: i64) -> Result<Vec<i64>, sqlx::Error> {
    sqlx::query_scalar!(
        "SELECT followee_id FROM follows WHERE follower_id = $1",
        user_id
    )
    .fetch_all(db)
    .await
}
