//! The moderation supervisor's work: every new or edited post and comment is
//! checked by the [`Analyzer`] after it is written (the write never waits).
//! A match hides the content from everyone but its author, records the
//! decision with its reason, and tells the author: a `moderation` event now,
//! and a notification through the outbox. An edit that passes the rules
//! restores content the analyzer had hidden. Owns `moderation_decisions` and
//! the `hidden_*` columns of posts and comments.

use std::sync::Arc;

use serde_json::json;
use sqlx::PgConnection;

use crate::consumers::analyzer::{Analyzer, Verdict};
use crate::consumers::supervisor::{EventHandler, Work};
use crate::delivery::log::Recipients;
use crate::outbox::events::{DomainEvent, ModerationAction, Subject};
use crate::outbox::{self, ConsumerKind};

#[derive(Clone)]
pub struct ModerationHandler {
    pub analyzer: Arc<Analyzer>,
}

impl EventHandler for ModerationHandler {
    const KIND: ConsumerKind = ConsumerKind::Moderation;

    async fn apply(&self, work: &mut Work<'_>, event: &DomainEvent) -> Result<(), sqlx::Error> {
        match *event {
            DomainEvent::PostCreated { post_id, .. } | DomainEvent::PostEdited { post_id, .. } => {
                self.review(work, Subject::Post, post_id).await
            }
            DomainEvent::CommentCreated { comment_id, .. }
            | DomainEvent::CommentEdited { comment_id, .. } => {
                self.review(work, Subject::Comment, comment_id).await
            }
            _ => Ok(()),
        }
    }
}

/// The current state of a post or comment under review.
struct Current {
    text: String,
    author_id: i64,
    post_id: i64,
    hidden: bool,
}

impl ModerationHandler {
    async fn review(
        &self,
        work: &mut Work<'_>,
        subject: Subject,
        id: i64,
    ) -> Result<(), sqlx::Error> {
        let tx = &mut *work.tx;
        // Locked, so a concurrent edit's review waits and sees the newer text.
        let current = match subject {
            Subject::Post => {
                sqlx::query_as!(
                    Current,
                    r#"SELECT text, author_id, id AS post_id, hidden_at IS NOT NULL AS "hidden!"
                       FROM posts WHERE id = $1 AND deleted_at IS NULL FOR UPDATE"#,
                    id
                )
                .fetch_optional(&mut *tx)
                .await?
            }
            Subject::Comment => {
                sqlx::query_as!(
                    Current,
                    r#"SELECT text, author_id, post_id, hidden_at IS NOT NULL AS "hidden!"
                       FROM comments WHERE id = $1 AND deleted_at IS NULL FOR UPDATE"#,
                    id
                )
                .fetch_optional(&mut *tx)
                .await?
            }
        };
        let Some(current) = current else {
            return Ok(());
        };
        let (action, reason) = match self.analyzer.check(&current.text) {
            Verdict::Hide { reason } if !current.hidden => (ModerationAction::Hidden, reason),
            Verdict::Clean if current.hidden && hidden_by_analyzer(tx, subject, id).await? => (
                ModerationAction::Restored,
                "the edited text passes the rules".to_owned(),
            ),
            _ => return Ok(()),
        };
        set_hidden(tx, subject, id, action, &reason).await?;
        sqlx::query!(
            "INSERT INTO moderation_decisions (subject_type, subject_id, author_id, action, reason)
             VALUES ($1, $2, $3, $4, $5)",
            subject.as_str(),
            id,
            current.author_id,
            match action {
                ModerationAction::Hidden => "hide",
                ModerationAction::Restored => "restore",
            },
            reason
        )
        .execute(&mut *tx)
        .await?;
        tracing::info!(subject = subject.as_str(), id, ?action, %reason, "moderation decision");
        let data = json!({
            "subject": subject,
            "subject_id": id,
            "post_id": current.post_id,
            "action": action,
            "reason": reason,
        });
        // The notification supervisor turns this into the author's notification.
        let moderated = DomainEvent::ContentModerated {
            subject,
            subject_id: id,
            post_id: current.post_id,
            author_id: current.author_id,
            action,
            reason,
        };
        outbox::record(tx, &moderated).await?;
        // Read caches forget the hidden (or restored) content once this commits.
        work.announced.changed.push(moderated);
        work.log(Recipients::Users(&[current.author_id]), "moderation", &data)
            .await?;
        Ok(())
    }
}

/// Whether the latest decision on the subject was the analyzer's own hiding
/// (a moderator's decision is not undone by an edit).
async fn hidden_by_analyzer(
    tx: &mut PgConnection,
    subject: Subject,
    id: i64,
) -> Result<bool, sqlx::Error> {
    let latest = sqlx::query!(
        "SELECT action, decided_by FROM moderation_decisions
         WHERE subject_type = $1 AND subject_id = $2 ORDER BY id DESC LIMIT 1",
        subject.as_str(),
        id
    )
    .fetch_optional(&mut *tx)
    .await?;
    Ok(latest.is_some_and(|d| d.action == "hide" && d.decided_by.is_none()))
}

async fn set_hidden(
    tx: &mut PgConnection,
    subject: Subject,
    id: i64,
    action: ModerationAction,
    reason: &str,
) -> Result<(), sqlx::Error> {
    let hide = action == ModerationAction::Hidden;
    match subject {
        Subject::Post => {
            sqlx::query!(
                "UPDATE posts SET hidden_at = CASE WHEN $2 THEN now() END,
                              hidden_reason = CASE WHEN $2 THEN $3 END
             WHERE id = $1",
                id,
                hide,
                reason
            )
            .execute(&mut *tx)
            .await?
        }
        Subject::Comment => {
            sqlx::query!(
                "UPDATE comments SET hidden_at = CASE WHEN $2 THEN now() END,
                                 hidden_reason = CASE WHEN $2 THEN $3 END
             WHERE id = $1",
                id,
                hide,
                reason
            )
            .execute(&mut *tx)
            .await?
        }
    };
    Ok(())
}

/// Whether anyone may still see a post (`visible_posts` as an anonymous
/// viewer: not deleted, not hidden by moderation, its author active), for
/// the supervisors that follow moderation. Per-viewer blocks are screened at
/// delivery.
pub async fn post_shown(tx: &mut PgConnection, post_id: i64) -> Result<bool, sqlx::Error> {
    sqlx::query_scalar!(
        r#"SELECT EXISTS (SELECT 1 FROM visible_posts(NULL) p WHERE p.id = $1) AS "shown!""#,
        post_id
    )
    .fetch_one(&mut *tx)
    .await
}

/// The same for a comment (`visible_comments`: its post shown too).
pub async fn comment_shown(tx: &mut PgConnection, comment_id: i64) -> Result<bool, sqlx::Error> {
    sqlx::query_scalar!(
        r#"SELECT EXISTS (SELECT 1 FROM visible_comments(NULL) c WHERE c.id = $1) AS "shown!""#,
        comment_id
    )
    .fetch_one(&mut *tx)
    .await
}
