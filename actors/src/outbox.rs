//! The transactional outbox: owns `domain_events`.

use sqlx::PgConnection;

use crate::events::DomainEvent;

/// Which consumer is reading; each marks its own progress.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConsumerKind {
    Moderation,
    Feed,
    Notifications,
}

/// Records an event in the caller's transaction: it exists if and only if the
/// change it announces was committed.
pub async fn record(tx: &mut PgConnection, event: &DomainEvent) -> Result<(), sqlx::Error> {
    let payload = serde_json::to_value(event).map_err(|e| sqlx::Error::Encode(Box::new(e)))?;
    // Events without new text skip the moderation step.
    sqlx::query!(
        "INSERT INTO domain_events (payload, moderation_done) VALUES ($1, $2)",
        payload,
        !event.needs_moderation()
    )
    .execute(&mut *tx)
    .await?;
    Ok(())
}

pub struct Claimed {
    pub id: i64,
    pub event: Option<DomainEvent>,
}

/// Locks the oldest events this consumer has not handled. SKIP LOCKED lets
/// several nodes share the work without handling an event twice. The feed
/// and notification consumers stop short of the first event moderation has
/// not passed, so they see events in order and never before moderation.
pub async fn claim(
    tx: &mut PgConnection,
    consumer: ConsumerKind,
    limit: i64,
) -> Result<Vec<Claimed>, sqlx::Error> {
    let rows = match consumer {
        ConsumerKind::Moderation => sqlx::query!(
            "SELECT id, payload FROM domain_events WHERE NOT moderation_done ORDER BY id LIMIT $1 FOR UPDATE SKIP LOCKED",
            limit
        )
        .fetch_all(&mut *tx)
        .await?
        .into_iter()
        .map(|r| (r.id, r.payload))
        .collect::<Vec<_>>(),
        ConsumerKind::Feed => {
            sqlx::query!(
                "SELECT id, payload FROM domain_events
                 WHERE NOT feed_done
                   AND id < COALESCE((SELECT min(id) FROM domain_events WHERE NOT moderation_done), 9223372036854775807)
                 ORDER BY id LIMIT $1 FOR UPDATE SKIP LOCKED",
                limit
            )
            .fetch_all(&mut *tx)
            .await?
            .into_iter()
            .map(|r| (r.id, r.payload))
            .collect::<Vec<_>>()
        }
        ConsumerKind::Notifications => sqlx::query!(
            "SELECT id, payload FROM domain_events
                 WHERE NOT notify_done
                   AND id < COALESCE((SELECT min(id) FROM domain_events WHERE NOT moderation_done), 9223372036854775807)
                 ORDER BY id LIMIT $1 FOR UPDATE SKIP LOCKED",
            limit
        )
        .fetch_all(&mut *tx)
        .await?
        .into_iter()
        .map(|r| (r.id, r.payload))
        .collect(),
    };
    Ok(rows
        .into_iter()
        .map(|(id, payload)| {
            let event = serde_json::from_value(payload).ok();
            if event.is_none() {
                tracing::error!(id, "undecodable domain event skipped");
            }
            Claimed { id, event }
        })
        .collect())
}

pub async fn mark_done(
    tx: &mut PgConnection,
    consumer: ConsumerKind,
    ids: &[i64],
) -> Result<(), sqlx::Error> {
    match consumer {
        ConsumerKind::Moderation => {
            sqlx::query!(
                "UPDATE domain_events SET moderation_done = true WHERE id = ANY($1)",
                ids
            )
            .execute(&mut *tx)
            .await?
        }
        ConsumerKind::Feed => {
            sqlx::query!(
                "UPDATE domain_events SET feed_done = true WHERE id = ANY($1)",
                ids
            )
            .execute(&mut *tx)
            .await?
        }
        ConsumerKind::Notifications => {
            sqlx::query!(
                "UPDATE domain_events SET notify_done = true WHERE id = ANY($1)",
                ids
            )
            .execute(&mut *tx)
            .await?
        }
    };
    // Rows every consumer has handled are no longer needed.
    sqlx::query!(
        "DELETE FROM domain_events WHERE id = ANY($1) AND moderation_done AND feed_done AND notify_done",
        ids
    )
    .execute(&mut *tx)
    .await?;
    Ok(())
}
