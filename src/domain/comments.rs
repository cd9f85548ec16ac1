//! Comments on posts, with one level of replies. Owns the `comments` table
//! (and keeps `posts.comments_count` in step, in the same transaction).
//!
//! A comment is visible when its post is visible to the viewer, it is not
//! deleted, its author is active, and no block stands between its author and
//! the viewer.

use chrono::{DateTime, Utc};
use serde::Serialize;
use sqlx::{PgConnection, PgExecutor, PgPool};
use utoipa::ToSchema;

use crate::domain::accounts::Principal;
use crate::domain::events::{DomainEvent, EventSink};
use crate::domain::pagination::{paginate, IdKey, Page, PageParams};
use crate::domain::posts::{self, text};
use crate::domain::social::{self, PublicProfile};
use crate::domain::DomainError;

pub const TEXT_MAX: usize = 1000;

#[derive(Debug, Serialize, ToSchema)]
pub struct CommentView {
    pub id: i64,
    pub post_id: i64,
    /// The comment this one replies to; null for a top-level comment.
    pub parent_id: Option<i64>,
    pub author: PublicProfile,
    pub text: String,
    pub replies_count: i64,
    pub created_at: DateTime<Utc>,
    pub edited_at: Option<DateTime<Utc>>,
    /// Why moderation hid the comment; only its author sees a hidden comment.
    pub hidden_reason: Option<String>,
}

struct CommentRow {
    id: i64,
    post_id: i64,
    parent_id: Option<i64>,
    author_id: i64,
    text: String,
    replies_count: i64,
    created_at: DateTime<Utc>,
    edited_at: Option<DateTime<Utc>>,
    hidden_reason: Option<String>,
}

async fn views(
    db: impl PgExecutor<'_>,
    viewer: Option<i64>,
    rows: Vec<CommentRow>,
) -> Result<Vec<CommentView>, DomainError> {
    let ids: Vec<i64> = rows.iter().map(|r| r.author_id).collect();
    let authors = social::profiles(db, viewer, &ids).await?;
    Ok(rows
        .into_iter()
        .filter_map(|r| {
            authors
                .get(&r.author_id)
                .cloned()
                .map(|author| CommentView {
                    id: r.id,
                    post_id: r.post_id,
                    parent_id: r.parent_id,
                    author,
                    text: r.text,
                    replies_count: r.replies_count,
                    created_at: r.created_at,
                    edited_at: r.edited_at,
                    hidden_reason: r.hidden_reason,
                })
        })
        .collect())
}

/// The comment if the viewer may see it (its post too), else 404.
async fn visible(
    db: impl PgExecutor<'_>,
    viewer: Option<i64>,
    comment_id: i64,
) -> Result<CommentRow, DomainError> {
    sqlx::query_as!(
        CommentRow,
        r#"SELECT c.id AS "id!", c.post_id AS "post_id!", c.parent_id, c.author_id AS "author_id!",
                  c.text AS "text!", c.replies_count AS "replies_count!", c.created_at AS "created_at!",
                  c.edited_at, c.hidden_reason
         FROM visible_comments($2) c WHERE c.id = $1"#,
        comment_id,
        viewer as Option<i64>
    )
    .fetch_optional(db)
    .await?
    .ok_or(DomainError::NotFound("comment"))
}

pub async fn get(
    db: &PgPool,
    viewer: Option<i64>,
    comment_id: i64,
) -> Result<CommentView, DomainError> {
    let row = visible(db, viewer, comment_id).await?;
    views(db, viewer, vec![row])
        .await?
        .pop()
        .ok_or(DomainError::NotFound("comment"))
}

/// Writes a comment in the caller's transaction; returns it as its author
/// sees it, and the events to commit.
pub async fn create(
    tx: &mut PgConnection,
    author_id: i64,
    post_id: i64,
    raw_text: &str,
    parent_id: Option<i64>,
) -> Result<(CommentView, Vec<DomainEvent>), DomainError> {
    let post_author_id = posts::visible_author(&mut *tx, Some(author_id), post_id).await?;
    let text = text::validate(raw_text, TEXT_MAX).map_err(|m| DomainError::invalid("text", m))?;
    let parent_author_id = match parent_id {
        None => None,
        Some(pid) => {
            let parent = visible(&mut *tx, Some(author_id), pid).await.map_err(|_| {
                DomainError::invalid("parent_id", format!("comment {pid} not found"))
            })?;
            if parent.post_id != post_id {
                return Err(DomainError::invalid(
                    "parent_id",
                    "the parent comment belongs to another post",
                ));
            }
            if parent.parent_id.is_some() {
                return Err(DomainError::invalid(
                    "parent_id",
                    "replies cannot be replied to; reply to the top-level comment",
                ));
            }
            Some(parent.author_id)
        }
    };
    let row = sqlx::query_as!(
        CommentRow,
        "INSERT INTO comments (post_id, author_id, parent_id, text) VALUES ($1, $2, $3, $4)
         RETURNING id, post_id, parent_id, author_id, text, replies_count, created_at, edited_at, hidden_reason",
        post_id,
        author_id,
        parent_id,
        text.as_str()
    )
    .fetch_one(&mut *tx)
    .await?;
    sqlx::query!(
        "UPDATE posts SET comments_count = comments_count + 1 WHERE id = $1",
        post_id
    )
    .execute(&mut *tx)
    .await?;
    if let Some(pid) = parent_id {
        sqlx::query!(
            "UPDATE comments SET replies_count = replies_count + 1 WHERE id = $1",
            pid
        )
        .execute(&mut *tx)
        .await?;
    }
    let event = DomainEvent::CommentCreated {
        comment_id: row.id,
        post_id,
        post_author_id,
        author_id,
        parent_author_id,
    };
    let view = views(&mut *tx, Some(author_id), vec![row])
        .await?
        .pop()
        .ok_or(DomainError::NotFound("comment"))?;
    Ok((view, vec![event]))
}

/// What a page of comments lists.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Thread {
    /// A post's top-level comments.
    Post(i64),
    /// The replies to a top-level comment.
    Replies(i64),
}

/// A page of a thread, oldest first; 404 when the post or the comment is not
/// the viewer's to see.
pub async fn list(
    db: &PgPool,
    viewer: Option<i64>,
    thread: Thread,
    page: &PageParams,
) -> Result<Page<CommentView>, DomainError> {
    let (of_post, id) = match thread {
        Thread::Post(post_id) => {
            posts::visible_author(db, viewer, post_id).await?;
            (true, post_id)
        }
        Thread::Replies(comment_id) => {
            visible(db, viewer, comment_id).await?;
            (false, comment_id)
        }
    };
    let limit = page.limit()?;
    let cursor: Option<IdKey> = page.cursor()?;
    // One branch runs (the other's one-time filter is false), on its own index.
    let rows = sqlx::query_as!(
        CommentRow,
        r#"SELECT c.id AS "id!", c.post_id AS "post_id!", c.parent_id, c.author_id AS "author_id!",
                  c.text AS "text!", c.replies_count AS "replies_count!", c.created_at AS "created_at!",
                  c.edited_at, c.hidden_reason
         FROM (SELECT * FROM visible_comments($3) WHERE $5 AND post_id = $1 AND parent_id IS NULL
               UNION ALL
               SELECT * FROM visible_comments($3) WHERE NOT $5 AND parent_id = $1) c
         WHERE ($2::bigint IS NULL OR c.id > $2)
         ORDER BY c.id LIMIT $4"#,
        id,
        cursor.map(|c| c.id),
        viewer as Option<i64>,
        limit + 1,
        of_post
    )
    .fetch_all(db)
    .await?;
    let (rows, next_cursor) = paginate(rows, limit, |r| IdKey { id: r.id });
    Ok(Page {
        items: views(db, viewer, rows).await?,
        next_cursor,
    })
}

/// The author only. The new text goes to moderation like a new comment.
pub async fn edit(
    db: &PgPool,
    events: &EventSink,
    editor: i64,
    comment_id: i64,
    raw_text: &str,
) -> Result<CommentView, DomainError> {
    let row = visible(db, Some(editor), comment_id).await?;
    if row.author_id != editor {
        return Err(DomainError::Forbidden("only the author may edit a comment"));
    }
    let text = text::validate(raw_text, TEXT_MAX).map_err(|m| DomainError::invalid("text", m))?;
    let mut tx = db.begin().await?;
    let row = sqlx::query_as!(
        CommentRow,
        "UPDATE comments SET text = $2, edited_at = now() WHERE id = $1 AND deleted_at IS NULL
         RETURNING id, post_id, parent_id, author_id, text, replies_count, created_at, edited_at, hidden_reason",
        comment_id,
        text.as_str()
    )
    .fetch_optional(&mut *tx)
    .await?
    .ok_or(DomainError::NotFound("comment"))?;
    let event = DomainEvent::CommentEdited {
        comment_id,
        post_id: row.post_id,
        author_id: editor,
    };
    events.commit(tx, vec![event]).await?;
    views(db, Some(editor), vec![row])
        .await?
        .pop()
        .ok_or(DomainError::NotFound("comment"))
}

/// The author, the post's author, or a moderator. A top-level comment takes
/// its replies with it; counters follow in the same transaction.
pub async fn delete(
    db: &PgPool,
    events: &EventSink,
    by: &Principal,
    comment_id: i64,
) -> Result<(), DomainError> {
    let row = visible(db, Some(by.user_id), comment_id).await?;
    let post_author = posts::visible_author(db, Some(by.user_id), row.post_id).await?;
    if row.author_id != by.user_id && post_author != by.user_id && !by.role.can_moderate() {
        return Err(DomainError::Forbidden(
            "only the comment's author, the post's author or a moderator may delete it",
        ));
    }
    let mut tx = db.begin().await?;
    let removed = sqlx::query_scalar!(
        "UPDATE comments SET deleted_at = now()
         WHERE (id = $1 OR parent_id = $1) AND deleted_at IS NULL
         RETURNING id",
        comment_id
    )
    .fetch_all(&mut *tx)
    .await?;
    if !removed.is_empty() {
        let n = i64::try_from(removed.len()).unwrap_or(i64::MAX);
        sqlx::query!(
            "UPDATE posts SET comments_count = comments_count - $2 WHERE id = $1",
            row.post_id,
            n
        )
        .execute(&mut *tx)
        .await?;
        if let Some(pid) = row.parent_id {
            sqlx::query!(
                "UPDATE comments SET replies_count = replies_count - 1 WHERE id = $1",
                pid
            )
            .execute(&mut *tx)
            .await?;
        }
    }
    let announced = if removed.is_empty() {
        Vec::new()
    } else {
        vec![DomainEvent::CommentDeleted {
            comment_id,
            post_id: row.post_id,
        }]
    };
    events.commit(tx, announced).await?;
    Ok(())
}
