//! The transactional outbox: owns `domain_events` and `outbox_pending`.
//!
//! An event is recorded in the same transaction as the change it announces,
//! with one pending row per consumer that must handle it. Each consumer locks
//! and deletes only its own pending rows, so consumers never skip each
//! other's work, and one consumer of a kind sees events in id order, except
//! those recorded with a wait ([`record_after`]), which come when it is over.

use std::time::Duration;

use sqlx::PgConnection;

pub mod events;

use events::DomainEvent;

/// Which consumer is reading; each tracks its own pending rows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConsumerKind {
    Moderation,
    Feed,
    Notifications,
}

impl ConsumerKind {
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Moderation => "moderation",
            Self::Feed => "feed",
            Self::Notifications => "notifications",
        }
    }
}

/// Records an event in the caller's transaction: it exists if and only if the
/// change it announces was committed.
pub async fn record(tx: &mut PgConnection, event: &DomainEvent) -> Result<(), sqlx::Error> {
    record_after(tx, event, Duration::ZERO).await
}

/// Records an event that its consumers take up no sooner than `delay` after
/// this transaction began (by the database's clock, which every node shares).
/// Only for events whose handling reads the current state rather than relying
/// on their place in the order, since later events may be handled first.
pub async fn record_after(
    tx: &mut PgConnection,
    event: &DomainEvent,
    delay: Duration,
) -> Result<(), sqlx::Error> {
    let payload = serde_json::to_value(event).map_err(|e| sqlx::Error::Encode(Box::new(e)))?;
    let consumers: Vec<String> = event
        .consumers()
        .iter()
        .map(|c| c.as_str().to_owned())
        .collect();
    let delay_secs = (!delay.is_zero()).then_some(delay.as_secs_f64());
    sqlx::query!(
        "WITH e AS (INSERT INTO domain_events (payload) VALUES ($1) RETURNING id)
         INSERT INTO outbox_pending (consumer, event_id, not_before)
         SELECT c, e.id, now() + make_interval(secs => $3) FROM e, unnest($2::text[]) AS c",
        payload,
        &consumers,
        delay_secs
    )
    .execute(&mut *tx)
    .await?;
    Ok(())
}

pub struct Claimed {
    pub id: i64,
    pub event: Option<DomainEvent>,
}

/// Locks the oldest events this consumer has not handled and whose wait (if
/// any) is over. SKIP LOCKED lets several nodes share the work without
/// handling an event twice. The feed and notification consumers stop short
/// of the first event moderation has not passed, so they never act on text
/// before moderation has seen it.
pub async fn claim(
    tx: &mut PgConnection,
    consumer: ConsumerKind,
    limit: i64,
) -> Result<Vec<Claimed>, sqlx::Error> {
    let rows = sqlx::query!(
        "SELECT p.event_id AS id, e.payload FROM outbox_pending p
         JOIN domain_events e ON e.id = p.event_id
         WHERE p.consumer = $1
           AND (p.not_before IS NULL OR p.not_before <= now())
           AND ($1 = 'moderation' OR p.event_id < COALESCE(
                 (SELECT min(m.event_id) FROM outbox_pending m WHERE m.consumer = 'moderation'),
                 9223372036854775807))
         ORDER BY p.event_id LIMIT $2
         FOR UPDATE OF p SKIP LOCKED",
        consumer.as_str(),
        limit
    )
    .fetch_all(&mut *tx)
    .await?;
    Ok(rows
        .into_iter()
        .map(|r| {
            let event = serde_json::from_value(r.payload).ok();
            if event.is_none() {
                tracing::error!(id = r.id, "undecodable domain event skipped");
            }
            Claimed { id: r.id, event }
        })
        .collect())
}

pub async fn mark_done(
    tx: &mut PgConnection,
    consumer: ConsumerKind,
    ids: &[i64],
) -> Result<(), sqlx::Error> {
    // Locking the events (in id order, so consumers never deadlock) makes
    // consumers finishing the same event take turns: the last one sees no
    // pending row left and deletes the event.
    sqlx::query!(
        "SELECT id FROM domain_events WHERE id = ANY($1) ORDER BY id FOR UPDATE",
        ids
    )
    .fetch_all(&mut *tx)
    .await?;
    // One statement, run after the lock above so its snapshot sees every
    // consumer that finished first. It does not see its own deletes, so the
    // check for pending rows leaves this consumer's out.
    sqlx::query!(
        "WITH done AS (
             DELETE FROM outbox_pending WHERE consumer = $1 AND event_id = ANY($2)
             RETURNING event_id
         )
         DELETE FROM domain_events e WHERE e.id IN (SELECT event_id FROM done)
           AND NOT EXISTS (SELECT 1 FROM outbox_pending p WHERE p.event_id = e.id AND p.consumer <> $1)",
        consumer.as_str(),
        ids
    )
    .execute(&mut *tx)
    .await?;
    Ok(())
}

/// Deletes handled events left behind (by hand-made rows, or older versions).
pub async fn sweep(db: &sqlx::PgPool) -> Result<u64, sqlx::Error> {
    Ok(sqlx::query!(
        "DELETE FROM domain_events e
         WHERE NOT EXISTS (SELECT 1 FROM outbox_pending p WHERE p.event_id = e.id)"
    )
    .execute(db)
    .await?
    .rows_affected())
}
