//! Domain events: every write that others may care about is announced here,
//! from one place per resource. Events are recorded in the write's own
//! transaction (the outbox), so they exist exactly when the change does; after
//! the commit the read caches of every node hear of them and the real-time
//! engine is poked.

use sqlx::{Postgres, Transaction};

pub use rookery_actors::{DomainEvent, Engine, ReactionKind};

/// The one sink every domain module emits into. Cloning shares it.
#[derive(Clone)]
pub struct EventSink {
    /// `None` for tools that write without a running engine (the seeders):
    /// a server's supervisors find the events when they next poll.
    engine: Option<Engine>,
}

impl EventSink {
    pub fn new(engine: Option<Engine>) -> Self {
        Self { engine }
    }

    /// Records `events` in `tx`, commits it, then pokes the engine.
    pub async fn commit(
        &self,
        mut tx: Transaction<'_, Postgres>,
        events: Vec<DomainEvent>,
    ) -> Result<(), sqlx::Error> {
        for event in &events {
            rookery_actors::outbox::record(&mut tx, event).await?;
        }
        tx.commit().await?;
        tracing::debug!(?events, "domain events committed");
        if let Some(engine) = &self.engine {
            let wakes = events.iter().any(|e| !e.consumers().is_empty());
            // The read caches forget what changed before the writer answers.
            engine.changed(events);
            if wakes {
                engine.poke();
            }
        }
        Ok(())
    }
}
