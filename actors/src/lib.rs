//! Rookery's real-time engine.
//!
//! # Layout
//!
//! - [`outbox`]: the domain events, recorded in the writer's own transaction,
//!   and each consumer's progress through them.
//! - [`consumers`]: the supervisors that consume them in order, each batch in
//!   one transaction: moderation first checks new text, then feed and
//!   notifications turn events into timelines and notifications. Supervisors
//!   are restarted by actix when they stop, and since their progress lives in
//!   the database, a restart loses nothing that was committed.
//! - [`delivery`]: the per-user event log, the cross-node bus, the registry
//!   and the per-user session actors with their transports.
//!
//! - [`db_error`]: how database errors are told apart (a lost connection).
//!
//! [`Engine`] starts all of it, and is the handle the server keeps.

pub mod consumers;
pub mod db_error;
pub mod delivery;
pub mod outbox;

use consumers::supervisor::EventHandler as _;

use actix::{Addr, Supervisor};
use sqlx::PgPool;

pub use outbox::events::{DomainEvent, ReactionKind};

/// Tunables of the engine.
#[derive(Debug, Clone)]
pub struct EngineConfig {
    /// Authors with more followers than this are merged into timelines on read.
    pub fanout_limit: i64,
    /// How long a new post's timeline write waits after the last of its
    /// followers was told live (see [`consumers::feed::FeedHandler`]).
    pub timeline_write_delay: std::time::Duration,
    /// Events handled per transaction.
    pub batch_size: i64,
    /// How often supervisors look for work nobody poked them about
    /// (events written by other nodes, or left by a crash).
    pub poll_interval: std::time::Duration,
    /// A supervisor whose batch runs longer than this is taken as stuck (a
    /// dead database connection, a lock never released): it stops, and actix
    /// restarts it without the batch, whose uncommitted work is rolled back.
    pub batch_timeout: std::time::Duration,
    pub session: delivery::session::SessionConfig,
    /// The rules the moderation supervisor applies.
    pub analyzer: std::sync::Arc<consumers::analyzer::Analyzer>,
    /// With Redis, events cross nodes; without, this process serves alone.
    pub redis: Option<redis::Client>,
    /// The Redis channel of this deployment (see [`delivery::bus::channel_for`]).
    pub bus_channel: String,
    /// The read caches that hear of every committed change (see [`delivery::changes`]).
    pub listener: Option<delivery::changes::Listener>,
}

impl Default for EngineConfig {
    fn default() -> Self {
        Self {
            fanout_limit: 10_000,
            timeline_write_delay: std::time::Duration::from_secs(1),
            batch_size: 200,
            poll_interval: std::time::Duration::from_millis(500),
            batch_timeout: std::time::Duration::from_secs(60),
            session: delivery::session::SessionConfig::default(),
            analyzer: std::sync::Arc::new(consumers::analyzer::Analyzer::new::<&str>(&[], Some(5))),
            redis: None,
            bus_channel: delivery::bus::channel_for("rookery"),
            listener: None,
        }
    }
}

/// How often the event log is pruned and the outbox swept.
const HOUSEKEEPING_EVERY: std::time::Duration = std::time::Duration::from_secs(600);

/// Prunes the event log (what replay no longer needs) and sweeps the outbox
/// (finished events), every [`HOUSEKEEPING_EVERY`], on every node: both are
/// idempotent, so nodes doing it at once only repeat each other.
async fn housekeeping(db: PgPool) {
    let mut tick = tokio::time::interval(HOUSEKEEPING_EVERY);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    // The first tick is immediate: start-up has enough to do.
    tick.tick().await;
    loop {
        tick.tick().await;
        match delivery::log::prune(&db).await {
            Ok(n) if n > 0 => tracing::info!(streams = n, "event log pruned"),
            Ok(_) => {}
            Err(e) => tracing::warn!(error = %e, "event log pruning failed"),
        }
        if let Err(e) = outbox::sweep(&db).await {
            tracing::warn!(error = %e, "outbox sweep failed");
        }
    }
}

/// Why a client could not be attached.
#[derive(Debug, thiserror::Error)]
pub enum AttachError {
    #[error("the session registry is overloaded")]
    Busy(#[from] actix::MailboxError),
    #[error(transparent)]
    Db(#[from] sqlx::Error),
}

/// Handles to the running supervisors.
#[derive(Clone)]
pub struct Engine {
    db: PgPool,
    registry: Addr<delivery::registry::SessionRegistry>,
    bus: delivery::bus::Bus,
    session: delivery::session::SessionConfig,
    feed: Addr<consumers::supervisor::Consumer<consumers::feed::FeedHandler>>,
    notifications:
        Addr<consumers::supervisor::Consumer<consumers::notifications::NotificationHandler>>,
    moderation: Addr<consumers::supervisor::Consumer<consumers::moderation::ModerationHandler>>,
    restarts: [(&'static str, consumers::supervisor::Restarts); 3],
}

impl Engine {
    /// Starts the session registry and the supervisors on the current actix system.
    pub fn start(db: PgPool, config: EngineConfig) -> Self {
        use actix::{Actor as _, AsyncContext as _};
        let session_config = config.session.clone();
        let db_handle = db.clone();
        actix::spawn(housekeeping(db.clone()));
        let gate = delivery::watch::Gate::new(db.clone()).start();
        // The registry and its herald know each other: the herald hands the
        // events it logged back to the registry to deliver.
        let registry = delivery::registry::SessionRegistry::create(|ctx| {
            let herald = delivery::herald::Herald::new(db.clone(), ctx.address()).start();
            delivery::registry::SessionRegistry::new(
                db.clone(),
                config.session.clone(),
                gate,
                herald,
            )
        });
        let bus = match config.redis.clone() {
            Some(client) => {
                let node = format!(
                    "{}-{}",
                    std::process::id(),
                    chrono::Utc::now().timestamp_nanos_opt().unwrap_or_default()
                );
                delivery::bus::Bus::redis(
                    registry.clone(),
                    config.listener.clone(),
                    client,
                    config.bus_channel.clone(),
                    node,
                )
            }
            None => delivery::bus::Bus::local(registry.clone(), config.listener.clone()),
        };
        let restarts = [
            (
                consumers::moderation::ModerationHandler::NAME,
                consumers::supervisor::Restarts::default(),
            ),
            (
                consumers::feed::FeedHandler::NAME,
                consumers::supervisor::Restarts::default(),
            ),
            (
                consumers::notifications::NotificationHandler::NAME,
                consumers::supervisor::Restarts::default(),
            ),
        ];
        let [(_, moderation_restarts), (_, feed_restarts), (_, notify_restarts)] = restarts.clone();
        let (feed_db, feed_cfg, feed_registry) = (db.clone(), config.clone(), bus.clone());
        let feed = Supervisor::start(move |_| {
            let handler = consumers::feed::FeedHandler {
                fanout_limit: feed_cfg.fanout_limit,
                timeline_write_delay: feed_cfg.timeline_write_delay,
            };
            consumers::supervisor::Consumer::new(
                feed_db.clone(),
                feed_registry.clone(),
                handler,
                &feed_cfg,
            )
            .with_restarts(feed_restarts.clone())
        });
        let (notify_db, notify_cfg, notify_registry) = (db.clone(), config.clone(), bus.clone());
        let notifications = Supervisor::start(move |_| {
            let handler = consumers::notifications::NotificationHandler;
            consumers::supervisor::Consumer::new(
                notify_db.clone(),
                notify_registry.clone(),
                handler,
                &notify_cfg,
            )
            .with_restarts(notify_restarts.clone())
        });
        let downstream = vec![feed.clone().recipient(), notifications.clone().recipient()];
        let moderation_registry = bus.clone();
        let moderation = Supervisor::start(move |_| {
            let handler = consumers::moderation::ModerationHandler {
                analyzer: config.analyzer.clone(),
            };
            consumers::supervisor::Consumer::new(
                db.clone(),
                moderation_registry.clone(),
                handler,
                &config,
            )
            .with_downstream(downstream.clone())
            .with_restarts(moderation_restarts.clone())
        });
        Self {
            db: db_handle,
            registry,
            bus,
            session: session_config,
            feed,
            notifications,
            moderation,
            restarts,
        }
    }

    /// How many times each supervisor was restarted since start-up, by name.
    pub fn supervisor_restarts(&self) -> [(&'static str, u64); 3] {
        self.restarts.each_ref().map(|(name, n)| (*name, n.get()))
    }

    /// Attaches a client of `user_id` to its session: see [`delivery::session::attach`].
    /// `credential` is what it authenticated with: revoking it closes the
    /// connection.
    pub async fn attach(
        &self,
        user_id: i64,
        last_event_id: Option<i64>,
        kind: delivery::session::ConnKind,
        credential: delivery::session::Credential,
    ) -> Result<delivery::session::Attachment, AttachError> {
        // "From now" is fixed here, before the client hears back: an event
        // committed after this point is replayed from the log if it reaches
        // the session before the client is registered there.
        let from = match last_event_id {
            Some(id) => id,
            None => delivery::log::last_id(&self.db, user_id).await?,
        };
        Ok(delivery::session::attach(
            &self.registry,
            &self.session,
            user_id,
            from,
            kind,
            credential,
        )
        .await?)
    }

    /// The id of the newest event in `user_id`'s stream (0 when none).
    pub async fn last_event_id(&self, user_id: i64) -> Result<i64, sqlx::Error> {
        delivery::log::last_id(&self.db, user_id).await
    }

    /// Events of `user_id` after `after`, at most `limit`, straight from the log.
    pub async fn replay(
        &self,
        user_id: i64,
        after: i64,
        limit: i64,
    ) -> Result<delivery::log::Replay, sqlx::Error> {
        delivery::log::replay(&self.db, user_id, after, limit).await
    }

    /// Closes every WebSocket connection with 1001 (going away), for
    /// shutdown, and tells the other nodes on the bus that this one stops.
    pub async fn shutdown(&self) {
        let _ = self.registry.send(delivery::registry::Shutdown).await;
        self.bus.goodbye().await;
    }

    /// The session registry of this node.
    pub fn registry(&self) -> Addr<delivery::registry::SessionRegistry> {
        self.registry.clone()
    }

    /// Announces committed domain events to the read caches of this node (at
    /// once, before the caller answers) and of the others.
    pub fn changed(&self, events: Vec<DomainEvent>) {
        if !events.is_empty() {
            self.bus.deliver(delivery::bus::Committed {
                changed: events,
                ..Default::default()
            });
        }
    }

    /// Tells the supervisors new events are committed. Never blocks: a full
    /// mailbox already holds a poke, and the poll interval is the backstop.
    pub fn poke(&self) {
        let _ = self.moderation.try_send(consumers::supervisor::Poke);
        let _ = self.feed.try_send(consumers::supervisor::Poke);
        let _ = self.notifications.try_send(consumers::supervisor::Poke);
    }
}
