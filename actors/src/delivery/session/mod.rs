//! One `SessionActor` per online user on this node. It owns all of the user's
//! connections (WebSocket, SSE, long poll), delivers each event to every one of them in id
//! order, keeps their heartbeats, and stops when the last one closes.
//!
//! Each connection has a bounded send queue, drained by the task that also
//! reads the connection's frames, and a bounded overflow behind it that
//! absorbs bursts (a large batch, a replay). A connection whose overflow
//! passes its bound (a client that stopped reading) is cut with 1013 instead
//! of buffering without bound; it catches up by reconnecting with
//! `last_event_id`.

use std::collections::HashSet;
use std::time::Duration;

use actix::prelude::*;
use actix_ws::{CloseCode, CloseReason};

use bytestring::ByteString;
use futures_channel::mpsc;
use sqlx::PgPool;
use tokio::sync::oneshot;

use crate::delivery::log::{self, Replay, UserEvent};
use crate::delivery::registry::{Idle, SessionRegistry, SessionStopped, SubscriptionChanged};

mod client;
mod connections;
mod revoke;
mod transport;
pub use client::{PostActivity, Revoked};
use connections::{Connection, Connections};
pub use revoke::{CloseRevoked, CloseStale};
pub use transport::{attach, event_stream, long_poll, serve_websocket, Attachment, MAX_FRAME};

/// One replay's answer from the log.
enum Fetched {
    /// Events after `after`; `more` when the page was full.
    Page {
        after: i64,
        events: Vec<UserEvent>,
        more: bool,
    },
    /// The position is older than the log keeps.
    Resync { last_id: i64 },
}

/// A connection is cut (1013) once its overflow holds more than this many
/// times its send queue's capacity.
pub const OVERFLOW_FACTOR: usize = 4;
/// How often overflowed events are moved on while a writer catches up.
const DRAIN_EVERY: Duration = Duration::from_millis(10);

#[derive(Debug, Clone)]
pub struct SessionConfig {
    pub heartbeat: Duration,
    /// Pongs a connection may miss before it is closed.
    pub missed_pongs: u32,
    pub send_queue: usize,
}

impl Default for SessionConfig {
    fn default() -> Self {
        Self {
            heartbeat: Duration::from_secs(20),
            missed_pongs: 2,
            send_queue: 256,
        }
    }
}

/// What a connection's writer is handed: an event (with its log id, if it
/// has one) or a heartbeat.
pub(crate) enum Out {
    Text(Option<i64>, ByteString),
    Ping,
}

/// What a client authenticated with. When it is revoked (a password change
/// or an account deletion void every access token; an API key is revoked on
/// its own) the connection closes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Credential {
    /// An access token issued at this `token_version` of the account.
    AccessToken {
        version: i32,
    },
    ApiKey {
        id: i64,
    },
}

/// How a client is attached; decides heartbeats.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConnKind {
    /// Pinged every heartbeat, closed after missing pongs.
    WebSocket,
    /// Server-Sent Events: a comment every heartbeat keeps proxies from
    /// timing out; a dead client shows as a failed write.
    EventStream,
    /// One long poll: no heartbeat, it ends on its own.
    LongPoll,
}

#[derive(Clone)]
struct ByteStringEvent {
    id: Option<i64>,
    json: ByteString,
}

impl From<&UserEvent> for ByteStringEvent {
    fn from(e: &UserEvent) -> Self {
        Self {
            id: e.id,
            json: ByteString::from(e.to_json()),
        }
    }
}

pub struct SessionActor {
    user_id: i64,
    db: PgPool,
    registry: Addr<SessionRegistry>,
    config: SessionConfig,
    connections: Connections,
    /// Connections handed to this actor so far; compared with the registry's
    /// count before stopping, so none is lost in flight.
    received: u64,
    /// Whether a drain of overflowed events is scheduled.
    draining: bool,
}

impl SessionActor {
    pub fn new(
        user_id: i64,
        db: PgPool,
        registry: Addr<SessionRegistry>,
        config: SessionConfig,
    ) -> Self {
        Self {
            user_id,
            db,
            registry,
            config,
            connections: Connections::default(),
            received: 0,
            draining: false,
        }
    }

    /// Queues `event` on one connection; what does not fit waits in its
    /// overflow, and a connection whose overflow passes the bound is cut.
    /// Logged events go out strictly in id order: a duplicate is skipped, and
    /// a gap (an event that overtook an earlier one on the bus) is filled
    /// from the log before anything newer is sent.
    fn send_to(&mut self, ctx: &mut Context<Self>, conn_id: u64, event: &ByteStringEvent) {
        let Some(conn) = self.connections.get_mut(&conn_id) else {
            return;
        };
        if let Some(buffer) = conn.replaying.as_mut() {
            buffer.push(event.clone());
            return;
        }
        if let Some(id) = event.id {
            if id <= conn.last_sent {
                return;
            }
            if id > conn.last_sent + 1 {
                conn.replaying = Some(vec![event.clone()]);
                let after = conn.last_sent;
                self.start_replay(ctx, conn_id, after);
                return;
            }
            conn.last_sent = id;
        }
        let out = Out::Text(event.id, event.json.clone());
        if conn.overflow.is_empty() {
            match conn.queue.try_send(out) {
                Ok(()) => return,
                Err(e) if e.is_full() => conn.overflow.push_back(e.into_inner()),
                Err(_) => {
                    self.cut(conn_id, CloseCode::Away, "closed");
                    return;
                }
            }
        } else {
            conn.overflow.push_back(out);
        }
        // A burst (a large batch, a replay) may outrun the writer for a
        // moment; a client this far behind has stopped reading.
        if conn.overflow.len() > self.config.send_queue.saturating_mul(OVERFLOW_FACTOR) {
            tracing::info!(user_id = self.user_id, conn_id, "slow client cut off");
            self.cut(
                conn_id,
                CloseCode::Again,
                "too far behind; reconnect with last_event_id",
            );
        } else if !self.draining {
            self.draining = true;
            ctx.run_later(DRAIN_EVERY, |act, ctx| act.drain(ctx));
        }
    }

    /// Moves overflowed events into send queues as their writers make room.
    fn drain(&mut self, ctx: &mut Context<Self>) {
        self.draining = false;
        let mut closed = Vec::new();
        let mut pending = false;
        for (id, conn) in self.connections.iter_mut() {
            while let Some(out) = conn.overflow.pop_front() {
                match conn.queue.try_send(out) {
                    Ok(()) => {}
                    Err(e) if e.is_full() => {
                        conn.overflow.push_front(e.into_inner());
                        pending = true;
                        break;
                    }
                    Err(_) => {
                        closed.push(*id);
                        break;
                    }
                }
            }
        }
        for id in closed {
            self.cut(id, CloseCode::Away, "closed");
        }
        let waiting: Vec<u64> = self
            .connections
            .iter()
            .filter(|(_, c)| c.more_in_log && c.overflow.is_empty())
            .map(|(id, _)| *id)
            .collect();
        for id in waiting {
            self.continue_replay(ctx, id);
        }
        if pending {
            self.draining = true;
            ctx.run_later(DRAIN_EVERY, |act, ctx| act.drain(ctx));
        }
    }

    /// Fetches what the connection missed after `after` while live events
    /// wait in its buffer.
    fn start_replay(&mut self, ctx: &mut Context<Self>, conn_id: u64, after: i64) {
        let (db, user_id) = (self.db.clone(), self.user_id);
        // One page at a time, a send queue's worth: a client far behind is
        // fed as fast as it reads, never all at once (see `drain`).
        let page = i64::try_from(self.config.send_queue.max(1)).unwrap_or(256);
        let fetch = async move {
            Ok::<_, sqlx::Error>(match log::replay(&db, user_id, after, page).await? {
                Replay::Resync { last_id } => Fetched::Resync { last_id },
                Replay::Events(events) => {
                    let more = i64::try_from(events.len()).unwrap_or(0) >= page;
                    Fetched::Page {
                        after,
                        events,
                        more,
                    }
                }
            })
        };
        ctx.spawn(
            fetch
                .into_actor(self)
                .map(move |result, act, ctx| act.finish_replay(ctx, conn_id, result)),
        );
    }

    fn finish_replay(
        &mut self,
        ctx: &mut Context<Self>,
        conn_id: u64,
        result: Result<Fetched, sqlx::Error>,
    ) {
        let Some(conn) = self.connections.get_mut(&conn_id) else {
            return;
        };
        let buffered = conn.replaying.take().unwrap_or_default();
        // Whatever waited in the buffer reached this connection after it was
        // registered, so it is owed to the client even if the position read
        // from the log already counts it.
        let first_buffered = buffered.iter().filter_map(|e| e.id).min();
        let start_at = |position: i64| first_buffered.map_or(position, |f| position.min(f - 1));
        match result {
            Ok(Fetched::Page {
                after,
                events,
                more,
            }) => {
                conn.last_sent = start_at(after);
                // Or'ed: a `CatchUp` during this fetch may want what it missed.
                conn.more_in_log |= more;
                for e in &events {
                    // The log is the truth: its events are consecutive, so never wait for a gap here.
                    if let (Some(conn), Some(id)) = (self.connections.get_mut(&conn_id), e.id) {
                        conn.last_sent = conn.last_sent.max(id - 1);
                    }
                    self.send_to(ctx, conn_id, &ByteStringEvent::from(e));
                }
            }
            Ok(Fetched::Resync { last_id }) => {
                conn.last_sent = start_at(last_id);
                self.ephemeral(
                    ctx,
                    conn_id,
                    "resync_required",
                    serde_json::json!({ "last_event_id": last_id }),
                );
            }
            Err(e) => {
                tracing::warn!(user_id = self.user_id, error = %e, "replay failed");
                self.cut(
                    conn_id,
                    CloseCode::Error,
                    "replay failed; reconnect with last_event_id",
                );
                return;
            }
        }
        for e in &buffered {
            self.send_to(ctx, conn_id, e);
        }
        self.continue_replay(ctx, conn_id);
    }

    /// Fetches the next page of a long replay once the connection has room
    /// for it (its overflow is empty); until then `drain` calls back here.
    fn continue_replay(&mut self, ctx: &mut Context<Self>, conn_id: u64) {
        let Some(conn) = self.connections.get_mut(&conn_id) else {
            return;
        };
        if !conn.more_in_log || conn.replaying.is_some() {
            return;
        }
        if conn.overflow.is_empty() {
            conn.more_in_log = false;
            conn.replaying = Some(Vec::new());
            let after = conn.last_sent;
            self.start_replay(ctx, conn_id, after);
        } else if !self.draining {
            self.draining = true;
            ctx.run_later(DRAIN_EVERY, |act, ctx| act.drain(ctx));
        }
    }

    fn cut(&mut self, conn_id: u64, code: CloseCode, why: &str) {
        if let Some(mut conn) = self.connections.remove(&conn_id) {
            if let Some(cut) = conn.cut.take() {
                let _ = cut.send(CloseReason {
                    code,
                    description: Some(why.to_owned()),
                });
            }
            for post_id in conn.subscriptions {
                self.registry.do_send(SubscriptionChanged {
                    user_id: self.user_id,
                    post_id,
                    subscribed: false,
                });
            }
        }
    }

    fn ephemeral(
        &mut self,
        ctx: &mut Context<Self>,
        conn_id: u64,
        kind: &str,
        data: serde_json::Value,
    ) {
        let event = ByteStringEvent::from(&UserEvent::ephemeral(self.user_id, kind, data));
        self.send_to(ctx, conn_id, &event);
    }
}

impl Actor for SessionActor {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        ctx.set_mailbox_capacity(1024);
        ctx.run_interval(self.config.heartbeat, |act, _| {
            let limit = act.config.missed_pongs;
            let dead: Vec<u64> = act
                .connections
                .iter()
                .filter(|(_, c)| c.kind == ConnKind::WebSocket && c.missed_pongs >= limit)
                .map(|(id, _)| *id)
                .collect();
            for id in dead {
                act.cut(id, CloseCode::Policy, "missed heartbeats");
            }
            for conn in act.connections.values_mut() {
                match conn.kind {
                    ConnKind::WebSocket => {
                        conn.missed_pongs += 1;
                        let _ = conn.queue.try_send(Out::Ping);
                    }
                    ConnKind::EventStream => {
                        let _ = conn.queue.try_send(Out::Ping);
                    }
                    ConnKind::LongPoll => {}
                }
            }
        });
    }

    fn stopped(&mut self, ctx: &mut Self::Context) {
        self.registry.do_send(SessionStopped {
            user_id: self.user_id,
            addr: ctx.address(),
        });
    }
}

/// The Send-able half of a connection: its send queue and its kill switch.
/// The socket itself stays on the HTTP worker thread that accepted it.
pub struct ConnHandle {
    pub(crate) kind: ConnKind,
    pub(crate) credential: Credential,
    pub(crate) queue: mpsc::Sender<Out>,
    pub(crate) cut: oneshot::Sender<CloseReason>,
}

/// A new WebSocket connection of this user.
#[derive(Message)]
#[rtype(result = "()")]
pub struct AddConnection {
    pub conn_id: u64,
    pub handle: ConnHandle,
    /// Deliver every event after this id.
    pub after: i64,
}

impl Handler<AddConnection> for SessionActor {
    type Result = ();

    fn handle(&mut self, msg: AddConnection, ctx: &mut Self::Context) {
        self.received += 1;
        self.connections.insert(
            msg.conn_id,
            Connection {
                kind: msg.handle.kind,
                credential: msg.handle.credential,
                queue: msg.handle.queue,
                cut: Some(msg.handle.cut),
                missed_pongs: 0,
                subscriptions: HashSet::new(),
                // Live events wait until the connection knows where its stream stands.
                replaying: Some(Vec::new()),
                last_sent: 0,
                overflow: std::collections::VecDeque::new(),
                more_in_log: false,
            },
        );
        self.start_replay(ctx, msg.conn_id, msg.after);
    }
}

/// Logged events for this user, from the bus, in id order.
#[derive(Message)]
#[rtype(result = "()")]
pub struct Push(pub Vec<UserEvent>);

impl Handler<Push> for SessionActor {
    type Result = ();

    fn handle(&mut self, msg: Push, ctx: &mut Self::Context) {
        for event in &msg.0 {
            let frame = ByteStringEvent::from(event);
            let ids: Vec<u64> = self.connections.keys().copied().collect();
            for id in ids {
                self.send_to(ctx, id, &frame);
            }
        }
    }
}

/// This user's log holds events no bus message will bring here (another
/// node logged them, for the user's connections there): every connection
/// reads the log from where it stands.
#[derive(Message)]
#[rtype(result = "()")]
pub struct CatchUp;

impl Handler<CatchUp> for SessionActor {
    type Result = ();

    fn handle(&mut self, _: CatchUp, ctx: &mut Self::Context) {
        let ids: Vec<u64> = self.connections.keys().copied().collect();
        for id in ids {
            let Some(conn) = self.connections.get_mut(&id) else {
                continue;
            };
            if conn.replaying.is_some() {
                // The fetch under way may have read the log too early: one more after it.
                conn.more_in_log = true;
                continue;
            }
            conn.replaying = Some(Vec::new());
            let after = conn.last_sent;
            self.start_replay(ctx, id, after);
        }
    }
}

#[derive(Message)]
#[rtype(result = "()")]
struct Pong {
    conn_id: u64,
}

impl Handler<Pong> for SessionActor {
    type Result = ();

    fn handle(&mut self, msg: Pong, _: &mut Self::Context) {
        if let Some(conn) = self.connections.get_mut(&msg.conn_id) {
            conn.missed_pongs = 0;
        }
    }
}

#[derive(Message)]
#[rtype(result = "()")]
struct Disconnected {
    conn_id: u64,
}

impl Handler<Disconnected> for SessionActor {
    type Result = ();

    fn handle(&mut self, msg: Disconnected, ctx: &mut Self::Context) {
        self.cut(msg.conn_id, CloseCode::Normal, "bye");
        if self.connections.is_empty() {
            // The registry decides: a new connection may already be on its way here.
            self.registry.do_send(Idle {
                user_id: self.user_id,
                received: self.received,
                addr: ctx.address(),
            });
        }
    }
}

/// The registry's go-ahead to stop, after `Idle`.
#[derive(Message)]
#[rtype(result = "()")]
pub struct Stop;

impl Handler<Stop> for SessionActor {
    type Result = ();

    fn handle(&mut self, _: Stop, ctx: &mut Self::Context) {
        ctx.stop();
    }
}

/// Closes every connection (server shutdown: 1001, so clients reconnect elsewhere).
#[derive(Message)]
#[rtype(result = "()")]
pub struct CloseAll(pub CloseCode);

impl Handler<CloseAll> for SessionActor {
    type Result = ();

    fn handle(&mut self, msg: CloseAll, ctx: &mut Self::Context) {
        let ids: Vec<u64> = self.connections.keys().copied().collect();
        for id in ids {
            self.cut(id, msg.0, "server going away; reconnect");
        }
        ctx.stop();
    }
}
