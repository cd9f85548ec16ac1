//! Rookery's real-time engine.
//!
//! Writes announce domain events through the transactional [`outbox`]; the
//! supervisors consume them in order, each in its own transaction, and turn
//! them into timelines ([`feed`]) and notifications ([`notifications`]).
//! Supervisors are restarted by actix when they stop, and since their progress
//! lives in the database, a restart loses nothing that was committed.

pub mod events;
pub mod feed;
pub mod log;
pub mod notifications;
pub mod outbox;
pub mod protocol;
pub mod registry;
pub mod session;
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
    pub session: session::SessionConfig,
}

impl Default for EngineConfig {
    fn default() -> Self {
        Self {
            fanout_limit: 10_000,
            batch_size: 200,
            poll_interval: std::time::Duration::from_millis(500),
            session: session::SessionConfig::default(),
        }
    }
}

/// Handles to the running supervisors.
#[derive(Clone)]
pub struct Engine {
    registry: Addr<registry::SessionRegistry>,
    session: session::SessionConfig,
    feed: Addr<supervisor::Consumer<feed::FeedHandler>>,
    notifications: Addr<supervisor::Consumer<notifications::NotificationHandler>>,
}

impl Engine {
    /// Starts the session registry and the supervisors on the current actix system.
    pub fn start(db: PgPool, config: EngineConfig) -> Self {
        use actix::Actor as _;
        let session_config = config.session.clone();
        let registry = registry::SessionRegistry::new(db.clone(), config.session.clone()).start();
        let (feed_db, feed_cfg, feed_registry) = (db.clone(), config.clone(), registry.clone());
        let feed = Supervisor::start(move |_| {
            let handler = feed::FeedHandler {
                fanout_limit: feed_cfg.fanout_limit,
            };
            supervisor::Consumer::new(feed_db.clone(), feed_registry.clone(), handler, &feed_cfg)
        });
        let notify_registry = registry.clone();
        let notifications = Supervisor::start(move |_| {
            let handler = notifications::NotificationHandler;
            supervisor::Consumer::new(db.clone(), notify_registry.clone(), handler, &config)
        });
        Self {
            registry,
            session: session_config,
            feed,
            notifications,
        }
    }

    /// Serves an authenticated WebSocket connection until it closes. Call it
    /// from the HTTP worker that accepted the upgrade (the socket lives there).
    pub async fn serve(
        &self,
        user_id: i64,
        ws: actix_ws::Session,
        stream: actix_ws::MessageStream,
        last_event_id: Option<i64>,
    ) {
        session::serve_connection(
            self.registry.clone(),
            self.session.clone(),
            user_id,
            ws,
            stream,
            last_event_id,
        )
        .await;
    }

    /// Closes every WebSocket connection with 1001 (going away), for shutdown.
    pub async fn shutdown(&self) {
        let _ = self.registry.send(registry::Shutdown).await;
    }

    /// The session registry of this node.
    pub fn registry(&self) -> Addr<registry::SessionRegistry> {
        self.registry.clone()
    }

    /// Tells the supervisors new events are committed. Never blocks: a full
    /// mailbox already holds a poke, and the poll interval is the backstop.
    pub fn poke(&self) {
        let _ = self.feed.try_send(supervisor::Poke);
        let _ = self.notifications.try_send(supervisor::Poke);
    }
}
