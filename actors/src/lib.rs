//! Rookery's real-time engine.
//!
//! Writes announce domain events through the transactional [`outbox`]; the
//! supervisors consume them in order, each in its own transaction, and turn
//! them into timelines ([`feed`]) and notifications ([`notifications`]).
//! Supervisors are restarted by actix when they stop, and since their progress
//! lives in the database, a restart loses nothing that was committed.

pub mod events;
pub mod feed;
pub mod notifications;
pub mod outbox;
mod supervisor;

use actix::{Addr, Supervisor};
use sqlx::PgPool;

pub use events::{DomainEvent, ReactionKind};

/// Tunables of the engine.
#[derive(Debug, Clone)]
pub struct EngineConfig {
    /// Authors with more followers than this are merged into timelines on read.
    pub fanout_limit: i64,
    /// Events handled per transaction.
    pub batch_size: i64,
    /// How often supervisors look for work nobody poked them about
    /// (events written by other nodes, or left by a crash).
    pub poll_interval: std::time::Duration,
}

impl Default for EngineConfig {
    fn default() -> Self {
        Self {
            fanout_limit: 10_000,
            batch_size: 200,
            poll_interval: std::time::Duration::from_millis(500),
        }
    }
}

/// Handles to the running supervisors.
#[derive(Clone)]
pub struct Engine {
    feed: Addr<supervisor::Consumer<feed::FeedHandler>>,
    notifications: Addr<supervisor::Consumer<notifications::NotificationHandler>>,
}

impl Engine {
    /// Starts the supervisors on the current actix system.
    pub fn start(db: PgPool, config: EngineConfig) -> Self {
        let (feed_db, feed_cfg) = (db.clone(), config.clone());
        let feed = Supervisor::start(move |_| {
            supervisor::Consumer::new(
                feed_db.clone(),
                feed::FeedHandler {
                    fanout_limit: feed_cfg.fanout_limit,
                },
                &feed_cfg,
            )
        });
        let notifications = Supervisor::start(move |_| {
            supervisor::Consumer::new(db.clone(), notifications::NotificationHandler, &config)
        });
        Self {
            feed,
            notifications,
        }
    }

    /// Tells the supervisors new events are committed. Never blocks: a full
    /// mailbox already holds a poke, and the poll interval is the backstop.
    pub fn poke(&self) {
        let _ = self.feed.try_send(supervisor::Poke);
        let _ = self.notifications.try_send(supervisor::Poke);
    }
}
