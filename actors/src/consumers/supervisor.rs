//! The consumer actor shared by the supervisors: it drains the outbox in
//! batches, one transaction per batch, whenever it is poked or its poll
//! interval passes. State is owned by the actor; only its restart count is
//! read from outside, by the metrics endpoint. A batch that runs past its
//! timeout makes the actor stop, and its `Supervisor` starts it again.

use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use actix::prelude::*;
use sqlx::{Connection as _, PgConnection, PgPool};

use crate::delivery::bus::{Bus, Committed};
use crate::delivery::log::{self, Recipients, UserEvent};
use crate::outbox::events::DomainEvent;
use crate::outbox::{self, ConsumerKind};
use crate::EngineConfig;

/// What a supervisor does with each event, inside the batch's transaction.
pub trait EventHandler: Clone + Unpin + 'static {
    const KIND: ConsumerKind;
    /// The consumer's name in logs and metrics: its kind's.
    const NAME: &'static str = Self::KIND.as_str();
    /// Handles `event` in `work.tx`, adding to `work` what it announces.
    fn apply(
        &self,
        work: &mut Work<'_>,
        event: &DomainEvent,
    ) -> impl Future<Output = Result<(), sqlx::Error>>;
}

/// One event's handling: the transaction (or savepoint) it runs in, and what
/// it announces once the batch has committed.
pub struct Work<'t> {
    pub tx: &'t mut PgConnection,
    pub announced: Committed,
    /// The handler recorded follow-up events: run another batch at once.
    pub more: bool,
}

impl<'t> Work<'t> {
    fn new(tx: &'t mut PgConnection) -> Self {
        Self {
            tx,
            announced: Committed::default(),
            more: false,
        }
    }

    /// Appends the same event to the streams of `to` (see [`log::append`])
    /// and announces it; returns the events logged, in user id order.
    pub async fn log(
        &mut self,
        to: Recipients<'_>,
        kind: &str,
        data: &serde_json::Value,
    ) -> Result<&[UserEvent], sqlx::Error> {
        let logged = log::append(self.tx, to, kind, data).await?;
        let from = self.announced.events.len();
        self.announced.events.extend(logged);
        Ok(self.announced.events.get(from..).unwrap_or_default())
    }
}

/// What a batch did: how many events it handled, and whether to go again at once.
struct Done {
    handled: usize,
    more: bool,
}

/// How many times a supervisor was restarted: written by the supervisor, read
/// by the metrics endpoint.
#[derive(Clone, Default)]
pub struct Restarts(Arc<AtomicU64>);

impl Restarts {
    pub fn get(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }
}

/// "New events are committed."
#[derive(Message)]
#[rtype(result = "()")]
pub struct Poke;

pub struct Consumer<H: EventHandler> {
    db: PgPool,
    bus: Bus,
    handler: H,
    /// Consumers waiting on this one's progress, poked after each batch.
    downstream: Vec<Recipient<Poke>>,
    batch_size: i64,
    poll_interval: Duration,
    batch_timeout: Duration,
    /// When the running batch began; `None` when none is running.
    running_since: Option<Instant>,
    poked_while_busy: bool,
    restarts: Restarts,
}

impl<H: EventHandler> Consumer<H> {
    pub fn new(db: PgPool, bus: Bus, handler: H, config: &EngineConfig) -> Self {
        Self {
            db,
            bus,
            handler,
            downstream: Vec::new(),
            batch_size: config.batch_size.max(1),
            poll_interval: config.poll_interval,
            batch_timeout: config.batch_timeout,
            running_since: None,
            poked_while_busy: false,
            restarts: Restarts::default(),
        }
    }

    /// Counts this supervisor's restarts in `restarts`.
    pub fn with_restarts(mut self, restarts: Restarts) -> Self {
        self.restarts = restarts;
        self
    }

    /// Pokes `downstream` whenever a batch has committed.
    pub fn with_downstream(mut self, downstream: Vec<Recipient<Poke>>) -> Self {
        self.downstream = downstream;
        self
    }

    fn kick(&mut self, ctx: &mut Context<Self>) {
        if self.running_since.is_some() {
            self.poked_while_busy = true;
            return;
        }
        self.running_since = Some(Instant::now());
        let batch = run_batch(
            self.db.clone(),
            self.bus.clone(),
            self.handler.clone(),
            self.batch_size,
        );
        ctx.spawn(batch.into_actor(self).map(|result, act, ctx| {
            act.running_since = None;
            let again = std::mem::take(&mut act.poked_while_busy);
            if matches!(result, Ok(Done { handled, .. }) if handled > 0) {
                for next in &act.downstream {
                    let _ = next.try_send(Poke);
                }
            }
            match result {
                Ok(done) if done.more || again => act.kick(ctx),
                Ok(_) => {}
                Err(e) => {
                    tracing::warn!(supervisor = H::NAME, error = %e, "batch failed; will retry")
                }
            }
        }));
    }
}

impl<H: EventHandler> Actor for Consumer<H> {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        // Pokes are idempotent: a small mailbox is enough, and a full one drops nothing that matters.
        ctx.set_mailbox_capacity(16);
        ctx.run_interval(self.poll_interval, |act, ctx| {
            if act
                .running_since
                .is_some_and(|since| since.elapsed() > act.batch_timeout)
            {
                tracing::error!(
                    supervisor = H::NAME,
                    timeout_ms = act.batch_timeout.as_millis(),
                    "batch stuck; restarting the supervisor"
                );
                // The Supervisor starts this actor again; the batch's future
                // is dropped with the old context and its transaction rolled
                // back, so its events are claimed again once their locks go.
                ctx.stop();
                return;
            }
            act.kick(ctx);
        });
        self.kick(ctx);
    }
}

impl<H: EventHandler> Supervised for Consumer<H> {
    fn restarting(&mut self, _: &mut Self::Context) {
        tracing::warn!(supervisor = H::NAME, "restarting");
        self.running_since = None;
        self.poked_while_busy = false;
        self.restarts.0.fetch_add(1, Ordering::Relaxed);
    }
}

impl<H: EventHandler> Handler<Poke> for Consumer<H> {
    type Result = ();

    fn handle(&mut self, _: Poke, ctx: &mut Self::Context) {
        self.kick(ctx);
    }
}

/// Connection-level failures abort the batch (it is retried whole); any other
/// failure is the event's own and must not block the ones behind it.
fn is_transient(e: &sqlx::Error) -> bool {
    // A deadlock or a serialization failure is retried whole as well.
    crate::db_error::is_connection_lost(e)
        || matches!(e, sqlx::Error::Database(db)
            if db.code().is_some_and(|code| code == "40001" || code == "40P01"))
}

async fn run_batch<H: EventHandler>(
    db: PgPool,
    bus: Bus,
    handler: H,
    limit: i64,
) -> Result<Done, sqlx::Error> {
    let started = std::time::Instant::now();
    let batch = match try_batch(&db, &handler, limit, Savepoints::SkipForLoneEvent).await? {
        Some(batch) => batch,
        // The lone event failed and took the transaction with it: claim
        // again with savepoints, so that event is skipped. (With `Always`,
        // `try_batch` never gives `None`.)
        None => try_batch(&db, &handler, limit, Savepoints::Always)
            .await?
            .unwrap_or_default(),
    };
    let Batch {
        handled,
        announced,
        more,
    } = batch;
    if handled == 0 {
        return Ok(Done {
            handled,
            more: false,
        });
    }
    tracing::debug!(
        supervisor = H::NAME,
        handled,
        events = announced.events.len(),
        elapsed_us = started.elapsed().as_micros(),
        "batch committed"
    );
    // Only now do the events exist for replay; sending earlier could show a
    // client an id the log does not have yet.
    bus.deliver(announced);
    Ok(Done {
        handled,
        // A full batch means there is probably more waiting; follow-up
        // events recorded by the handler are waiting for certain.
        more: more || i64::try_from(handled).unwrap_or(i64::MAX) >= limit,
    })
}

/// When a batch's events get a savepoint of their own.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Savepoints {
    /// Each event, so one bad event is skipped, not retried forever.
    Always,
    /// Each event of a batch of several. A batch of one (a step of a large
    /// fan-out, when nothing else is pending) goes without: two round trips
    /// fewer on the delivery's path. If its event fails, the consumer
    /// claims again with `Always`.
    SkipForLoneEvent,
}

/// A committed batch: how many events it handled, what they announce, and
/// whether they recorded follow-up events.
#[derive(Default)]
struct Batch {
    handled: usize,
    announced: Committed,
    more: bool,
}

impl Batch {
    /// Adds what one event's handling announces.
    fn add(&mut self, work: Work<'_>) {
        self.announced.extend(work.announced);
        self.more |= work.more;
    }
}

/// Claims and handles one batch in one transaction. `None` when the lone
/// event of a batch without savepoints failed and nothing was committed.
async fn try_batch<H: EventHandler>(
    db: &PgPool,
    handler: &H,
    limit: i64,
    savepoints: Savepoints,
) -> Result<Option<Batch>, sqlx::Error> {
    let mut tx = db.begin().await?;
    let claimed = outbox::claim(&mut tx, H::KIND, limit).await?;
    if claimed.is_empty() {
        return Ok(Some(Batch::default()));
    }
    let mut batch = Batch {
        handled: claimed.len(),
        ..Batch::default()
    };
    let lone = claimed.len() == 1 && savepoints == Savepoints::SkipForLoneEvent;
    for item in &claimed {
        let Some(event) = &item.event else { continue };
        if lone {
            let mut work = Work::new(&mut tx);
            match handler.apply(&mut work, event).await {
                Ok(()) => batch.add(work),
                Err(e) if is_transient(&e) => return Err(e),
                Err(e) => {
                    tracing::warn!(supervisor = H::NAME, id = item.id, error = %e, "lone event failed; isolating it");
                    tx.rollback().await?;
                    return Ok(None);
                }
            }
            continue;
        }
        let mut savepoint = tx.begin().await?;
        let mut work = Work::new(&mut savepoint);
        match handler.apply(&mut work, event).await {
            Ok(()) => {
                batch.add(work);
                savepoint.commit().await?;
            }
            Err(e) if is_transient(&e) => return Err(e),
            Err(e) => {
                tracing::error!(supervisor = H::NAME, id = item.id, ?event, error = %e, "event skipped");
                savepoint.rollback().await?;
            }
        }
    }
    let ids: Vec<i64> = claimed.iter().map(|c| c.id).collect();
    outbox::mark_done(&mut tx, H::KIND, &ids).await?;
    tx.commit().await?;
    Ok(Some(batch))
}
