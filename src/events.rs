//! Domain events: every write that others may care about is announced here,
//! from one place per resource. Events are recorded in the write's own
//! transaction (the outbox), so they exist exactly when the change does; after
//! the commit the real-time engine is poked and in-process observers are told.

use sqlx::{Postgres, Transaction};
use tokio::sync::broadcast;

pub use rookery_actors::{DomainEvent, Engine, ReactionKind};

/// The one sink every domain module emits into. Cloning shares it.
#[derive(Clone)]
pub struct EventSink {
    observers: broadcast::Sender<DomainEvent>,
    engine: Option<Engine>,
}

impl EventSink {
    pub fn new(capacity: usize, engine: Option<Engine>) -> Self {
        Self {
            observers: broadcast::channel(capacity.max(1)).0,
            engine,
        }
    }

    /// Records `events` in `tx`, commits it, then announces them.
    pub async fn commit(
        &self,
        mut tx: Transaction<'_, Postgres>,
        events: Vec<DomainEvent>,
    ) -> Result<(), sqlx::Error> {
        for event in &events {
            rookery_actors::outbox::record(&mut tx, event).await?;
        }
        tx.commit().await?;
        for event in events {
            tracing::debug!(?event, "domain event");
            let _ = self.observers.send(event);
        }
        if let Some(engine) = &self.engine {
            engine.poke();
        }
        Ok(())
    }

    /// Observes committed events in this process (tests and tools).
    pub fn subscribe(&self) -> broadcast::Receiver<DomainEvent> {
        self.observers.subscribe()
    }
}
