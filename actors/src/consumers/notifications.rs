//! Notifications. The notification supervisor turns domain events into
//! notifications for the people they concern; repeats of the same thing
//! collapse into one row (liking, unliking and liking again notifies once).
//! Owns `notifications`.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sqlx::{PgConnection, PgPool};
use utoipa::ToSchema;

use crate::consumers::moderation;
use crate::consumers::supervisor::{EventHandler, Work};
use crate::delivery::log::Recipients;
use crate::delivery::registry::Revoke;
use crate::outbox::events::{DomainEvent, Subject};
use crate::outbox::ConsumerKind;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema, sqlx::Type)]
#[sqlx(type_name = "notification_kind", rename_all = "lowercase")]
#[serde(rename_all = "lowercase")]
pub enum NotificationKind {
    Follow,
    Reaction,
    Comment,
    Reply,
    Mention,
    Moderation,
}

#[derive(Clone)]
pub struct NotificationHandler;

struct New {
    user_id: i64,
    kind: NotificationKind,
    /// `None`: the system (moderation).
    actor_id: Option<i64>,
    post_id: Option<i64>,
    comment_id: Option<i64>,
    key: String,
    data: serde_json::Value,
    /// Whether a repeat updates the data (a changed reaction kind) or is ignored.
    update_data: bool,
}

/// Stores the notification (or finds its earlier twin) and, when it is new,
/// appends a `notification` event to the user's stream.
async fn notify(work: &mut Work<'_>, n: New) -> Result<(), sqlx::Error> {
    if Some(n.user_id) == n.actor_id {
        return Ok(());
    }
    // Nobody is told about the doings of someone they may not see (a block
    // either way, an account no longer active).
    let row = sqlx::query!(
        r#"INSERT INTO notifications (user_id, kind, actor_id, post_id, comment_id, dedup_key, data)
           SELECT $1, $2, $3, $4, $5, $6, $7
           WHERE $3::bigint IS NULL OR EXISTS (SELECT 1 FROM visible_users($1) u WHERE u.id = $3)
           ON CONFLICT (user_id, dedup_key) DO UPDATE
               SET data = CASE WHEN $8 THEN EXCLUDED.data ELSE notifications.data END
           RETURNING id, created_at, (xmax = 0) AS "inserted!""#,
        n.user_id,
        n.kind as NotificationKind,
        n.actor_id,
        n.post_id,
        n.comment_id,
        n.key,
        n.data,
        n.update_data
    )
    .fetch_optional(&mut *work.tx)
    .await?;
    let Some(row) = row.filter(|r| r.inserted) else {
        return Ok(());
    };
    let unread = unread_count(&mut *work.tx, n.user_id).await?;
    let data = serde_json::json!({
        "id": row.id,
        "kind": n.kind,
        "actor_id": n.actor_id,
        "post_id": n.post_id,
        "comment_id": n.comment_id,
        "data": n.data,
        "created_at": row.created_at,
        "unread_count": unread,
    });
    work.log(Recipients::Users(&[n.user_id]), "notification", &data)
        .await?;
    Ok(())
}

impl EventHandler for NotificationHandler {
    const KIND: ConsumerKind = ConsumerKind::Notifications;

    async fn apply(&self, work: &mut Work<'_>, event: &DomainEvent) -> Result<(), sqlx::Error> {
        let base = |user_id, kind, actor_id, key: String| New {
            user_id,
            kind,
            actor_id: Some(actor_id),
            post_id: None,
            comment_id: None,
            key,
            data: serde_json::json!({}),
            update_data: false,
        };
        match *event {
            DomainEvent::CredentialsRevoked {
                user_id,
                api_key_id,
            } => {
                // Not a notification: the sessions that used them close.
                work.announced.revoked.push(Revoke {
                    user_id,
                    api_key_id,
                });
                Ok(())
            }
            DomainEvent::Followed {
                follower_id,
                followee_id,
            } => {
                notify(
                    work,
                    base(
                        followee_id,
                        NotificationKind::Follow,
                        follower_id,
                        format!("follow:{follower_id}"),
                    ),
                )
                .await
            }
            DomainEvent::ReactionAdded {
                post_id,
                post_author_id,
                user_id,
                kind,
            } => {
                let mut n = base(
                    post_author_id,
                    NotificationKind::Reaction,
                    user_id,
                    format!("reaction:{post_id}:{user_id}"),
                );
                n.post_id = Some(post_id);
                n.data = serde_json::json!({ "reaction": kind });
                n.update_data = true;
                notify(work, n).await
            }
            DomainEvent::CommentCreated {
                comment_id,
                post_id,
                post_author_id,
                author_id,
                parent_author_id,
            } => {
                if !moderation::comment_shown(work.tx, comment_id).await? {
                    return Ok(());
                }
                if let Some(parent_author) = parent_author_id {
                    let mut n = base(
                        parent_author,
                        NotificationKind::Reply,
                        author_id,
                        format!("reply:{comment_id}"),
                    );
                    n.post_id = Some(post_id);
                    n.comment_id = Some(comment_id);
                    notify(work, n).await?;
                }
                if parent_author_id != Some(post_author_id) {
                    let mut n = base(
                        post_author_id,
                        NotificationKind::Comment,
                        author_id,
                        format!("comment:{comment_id}"),
                    );
                    n.post_id = Some(post_id);
                    n.comment_id = Some(comment_id);
                    notify(work, n).await?;
                }
                Ok(())
            }
            DomainEvent::Mentioned {
                post_id,
                author_id,
                user_id,
            } => {
                if !moderation::post_shown(work.tx, post_id).await? {
                    return Ok(());
                }
                let mut n = base(
                    user_id,
                    NotificationKind::Mention,
                    author_id,
                    format!("mention:{post_id}"),
                );
                n.post_id = Some(post_id);
                notify(work, n).await
            }
            DomainEvent::ContentModerated {
                subject,
                subject_id,
                post_id,
                author_id,
                action,
                ref reason,
            } => {
                // Every decision is news: hidden, restored and hidden again notify thrice.
                let key = format!(
                    "moderation:{}:{subject_id}:{}",
                    subject.as_str(),
                    chrono::Utc::now().timestamp_micros()
                );
                notify(
                    work,
                    New {
                        user_id: author_id,
                        kind: NotificationKind::Moderation,
                        actor_id: None,
                        post_id: Some(post_id),
                        comment_id: (subject == Subject::Comment).then_some(subject_id),
                        key,
                        data: serde_json::json!({ "subject": subject, "action": action, "reason": reason }),
                        update_data: true,
                    },
                )
                .await
            }
            DomainEvent::NotificationsRead { user_id, ref ids } => {
                // Every other connection of the user clears its badge.
                let unread = unread_count(&mut *work.tx, user_id).await?;
                let data =
                    serde_json::json!({ "ids": ids, "all": ids.is_none(), "unread_count": unread });
                work.log(Recipients::Users(&[user_id]), "notifications.read", &data)
                    .await?;
                Ok(())
            }
            _ => Ok(()),
        }
    }
}

/// A stored notification, before the caller's view of the actor is attached.
#[derive(Debug, Clone)]
pub struct NotificationRow {
    pub id: i64,
    pub kind: NotificationKind,
    pub actor_id: Option<i64>,
    pub post_id: Option<i64>,
    pub comment_id: Option<i64>,
    pub data: serde_json::Value,
    pub created_at: DateTime<Utc>,
    pub read_at: Option<DateTime<Utc>>,
}

/// Newest first, before `before` (an id), optionally unread only. Only what
/// the user may still see (`visible_notifications`): not from an actor since
/// blocked either way or gone, nor about content since deleted or hidden.
pub async fn list(
    db: &PgPool,
    user_id: i64,
    before: Option<i64>,
    unread_only: bool,
    limit: i64,
) -> Result<Vec<NotificationRow>, sqlx::Error> {
    sqlx::query_as!(
        NotificationRow,
        r#"SELECT n.id AS "id!", n.kind AS "kind!: NotificationKind", n.actor_id, n.post_id,
                  n.comment_id, n.data AS "data!", n.created_at AS "created_at!", n.read_at
           FROM visible_notifications($1) n
           WHERE ($2::bigint IS NULL OR n.id < $2) AND (NOT $3 OR n.read_at IS NULL)
           ORDER BY n.id DESC
           LIMIT $4"#,
        user_id,
        before,
        unread_only,
        limit
    )
    .fetch_all(db)
    .await
}

/// The unread notifications the user may see: the badge, the same on every
/// read and every live event.
pub async fn unread_count(db: impl sqlx::PgExecutor<'_>, user_id: i64) -> Result<i64, sqlx::Error> {
    sqlx::query_scalar!(
        r#"SELECT count(*) AS "n!" FROM visible_notifications($1) n WHERE n.read_at IS NULL"#,
        user_id
    )
    .fetch_one(db)
    .await
}

/// Marks the given notifications (or all) of `user_id` read; returns how many changed.
pub async fn mark_read(
    tx: &mut PgConnection,
    user_id: i64,
    ids: Option<&[i64]>,
) -> Result<u64, sqlx::Error> {
    let done = match ids {
        Some(ids) => {
            sqlx::query!(
                "UPDATE notifications SET read_at = now() WHERE user_id = $1 AND id = ANY($2) AND read_at IS NULL",
                user_id,
                ids
            )
            .execute(&mut *tx)
            .await?
        }
        None => {
            sqlx::query!("UPDATE notifications SET read_at = now() WHERE user_id = $1 AND read_at IS NULL", user_id)
                .execute(&mut *tx)
                .await?
        }
    };
    Ok(done.rows_affected())
}
