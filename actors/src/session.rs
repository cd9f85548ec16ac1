//! One `SessionActor` per online user on this node. It owns all of the user's
//! WebSocket connections, delivers each event to every one of them in id
//! order, keeps their heartbeats, and stops when the last one closes.
//!
//! Each connection has a bounded send queue, drained by the task that also
//! reads the connection's frames, and a bounded overflow behind it that
//! absorbs bursts (a large batch, a replay). A connection whose overflow
//! passes its bound (a client that stopped reading) is cut with 1013 instead
//! of buffering without bound; it catches up by reconnecting with
//! `last_event_id`.

use std::collections::HashSet;
use std::future::Future;
use std::pin::Pin;
use std::task::Poll;
use std::time::Duration;

use actix::prelude::*;
use actix_ws::{
    CloseCode, CloseReason, Closed, Message as WsMessage, MessageStream, ProtocolError,
    Session as WsSession,
};

use crate::registry::Connect;
use bytestring::ByteString;
use futures_channel::mpsc;
use futures_util::StreamExt as _;
use smallvec::SmallVec;
use sqlx::PgPool;
use tokio::sync::oneshot;

use crate::log::{self, Replay, UserEvent};
use crate::protocol::{self, ClientMessage, MAX_SUBSCRIPTIONS};
use crate::registry::{Idle, SessionRegistry, SessionStopped, SubscriptionChanged};
use crate::watch;

/// The largest frame a client may send.
pub const MAX_FRAME: usize = 64 * 1024;
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

struct Connection {
    kind: ConnKind,
    credential: Credential,
    queue: mpsc::Sender<Out>,
    cut: Option<oneshot::Sender<CloseReason>>,
    missed_pongs: u32,
    subscriptions: HashSet<i64>,
    /// While the backlog is being fetched, live events wait here.
    replaying: Option<Vec<ByteStringEvent>>,
    /// The id of the last logged event this connection was given.
    last_sent: i64,
    /// Events that did not fit in the queue, in order, waiting for room.
    overflow: std::collections::VecDeque<Out>,
    /// The last replay filled its page: more of the log is owed.
    more_in_log: bool,
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

/// A user's connections on this node, by id. Nearly always one, so it is
/// kept inline in the actor: a map would allocate its table per user.
#[derive(Default)]
struct Connections(SmallVec<[(u64, Connection); 1]>);

impl Connections {
    fn get_mut(&mut self, id: &u64) -> Option<&mut Connection> {
        self.0.iter_mut().find(|(k, _)| k == id).map(|(_, c)| c)
    }

    fn insert(&mut self, id: u64, conn: Connection) {
        match self.get_mut(&id) {
            Some(existing) => *existing = conn,
            None => self.0.push((id, conn)),
        }
    }

    fn remove(&mut self, id: &u64) -> Option<Connection> {
        let at = self.0.iter().position(|(k, _)| k == id)?;
        Some(self.0.remove(at).1)
    }

    fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    fn keys(&self) -> impl Iterator<Item = &u64> {
        self.0.iter().map(|(k, _)| k)
    }

    fn values(&self) -> impl Iterator<Item = &Connection> {
        self.0.iter().map(|(_, c)| c)
    }

    fn values_mut(&mut self) -> impl Iterator<Item = &mut Connection> {
        self.0.iter_mut().map(|(_, c)| c)
    }

    fn iter(&self) -> impl Iterator<Item = (&u64, &Connection)> {
        self.0.iter().map(|(k, c)| (k, c))
    }

    fn iter_mut(&mut self) -> impl Iterator<Item = (&u64, &mut Connection)> {
        self.0.iter_mut().map(|(k, c)| (&*k, c))
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

/// A client attached to its user's session actor: the receiving end of its
/// bounded send queue and of its kill switch. Dropping it detaches the
/// client, so a transport that goes away (a closed socket, a dropped SSE
/// body, a finished poll) never leaves a connection behind.
pub struct Attachment {
    queue: mpsc::Receiver<Out>,
    cut: oneshot::Receiver<CloseReason>,
    guard: Detach,
}

impl Attachment {
    /// Why the session cut this client, once it has.
    pub fn cut_reason(&mut self) -> Option<CloseReason> {
        self.cut.try_recv().ok()
    }
}

struct Detach {
    session: Addr<SessionActor>,
    conn_id: u64,
}

impl Drop for Detach {
    fn drop(&mut self) {
        self.session.do_send(Disconnected {
            conn_id: self.conn_id,
        });
    }
}

/// Registers a client with its user's session actor. When this returns, every
/// event after `after` will reach the attachment, in order.
pub async fn attach(
    registry: &Addr<SessionRegistry>,
    config: &SessionConfig,
    user_id: i64,
    after: i64,
    kind: ConnKind,
    credential: Credential,
) -> Result<Attachment, MailboxError> {
    // A futures-channel queue holds `buffer` plus one per sender: this is
    // exactly `send_queue`. (tokio's bounded channel allocates its first
    // block of 32 slots up front, about 2 KiB a connection.)
    let (queue, rx) = mpsc::channel(config.send_queue.max(1) - 1);
    let (cut, cut_rx) = oneshot::channel();
    let (session, conn_id) = registry
        .send(Connect {
            user_id,
            handle: ConnHandle {
                kind,
                credential,
                queue,
                cut,
            },
            after,
        })
        .await?;
    Ok(Attachment {
        queue: rx,
        cut: cut_rx,
        guard: Detach { session, conn_id },
    })
}

/// Runs one WebSocket connection on the current (HTTP worker) thread, as one
/// task: it writes what the session actor queues and reads the client's
/// frames, forwarding them to the session actor.
///
/// This task lives as long as the connection, so its size counts per idle
/// connection. One task instead of a reader and a writer saved about 1 KiB.
/// The sends and the close, awaited only briefly, are boxed while they run
/// instead of reserving their space in the task for its whole life, and
/// nothing the future owns is stored twice: 1,072 bytes of future down to
/// 360.
pub fn serve_websocket(
    attachment: Attachment,
    ws: WsSession,
    stream: MessageStream,
) -> impl Future<Output = ()> {
    let stream = stream.max_frame_size(MAX_FRAME);
    // What the block captures is used in place, never rebound: a rebound
    // value would be stored in the task twice.
    let (mut queue, mut cut, guard, mut ws, mut stream) = (
        attachment.queue,
        attachment.cut,
        attachment.guard,
        ws,
        stream,
    );
    async move {
        let close_with = loop {
            // Polled by hand, in priority order (`select!` keeps more state in
            // the task than this needs).
            let wake = std::future::poll_fn(|cx| {
                if let Poll::Ready(reason) = Pin::new(&mut cut).poll(cx) {
                    return Poll::Ready(Wake::Cut(reason.ok()));
                }
                if let Poll::Ready(out) = queue.poll_next_unpin(cx) {
                    return Poll::Ready(Wake::Queued(out));
                }
                stream.poll_next_unpin(cx).map(Wake::Received)
            })
            .await;
            let item = match wake {
                Wake::Cut(reason) => break reason,
                Wake::Queued(None) => break None,
                Wake::Queued(Some(out)) => {
                    let mut send: Pin<Box<dyn Future<Output = Result<(), Closed>> + '_>> = match out
                    {
                        Out::Text(_, json) => Box::pin(ws.text(json)),
                        Out::Ping => Box::pin(ws.ping(b"")),
                    };
                    // A client that stopped reading blocks the send: the cut still gets through.
                    let sent = std::future::poll_fn(|cx| {
                        if let Poll::Ready(reason) = Pin::new(&mut cut).poll(cx) {
                            return Poll::Ready(Err(reason.ok()));
                        }
                        send.as_mut().poll(cx).map(Ok)
                    })
                    .await;
                    match sent {
                        Ok(Ok(())) => continue,
                        Err(reason) => break reason,
                        // The connection is gone: nothing to close.
                        Ok(Err(Closed)) => return,
                    }
                }
                Wake::Received(item) => item,
            };
            match item {
                Some(Ok(WsMessage::Text(text))) => guard.session.do_send(ClientText {
                    conn_id: guard.conn_id,
                    text: text.to_string(),
                }),
                Some(Ok(WsMessage::Ping(bytes))) => {
                    if Box::pin(ws.pong(&bytes)).await.is_err() {
                        return;
                    }
                }
                Some(Ok(WsMessage::Pong(_))) => guard.session.do_send(Pong {
                    conn_id: guard.conn_id,
                }),
                Some(Ok(WsMessage::Binary(_))) | Some(Ok(WsMessage::Continuation(_))) => {
                    break Some(CloseReason {
                        code: CloseCode::Unsupported,
                        description: Some("only text frames".into()),
                    });
                }
                Some(Ok(WsMessage::Nop)) => {}
                Some(Err(ProtocolError::Overflow)) => {
                    break Some(CloseReason {
                        code: CloseCode::Size,
                        description: Some(format!("frames are limited to {MAX_FRAME} bytes")),
                    });
                }
                // The closing handshake: answer with the client's code.
                Some(Ok(WsMessage::Close(reason))) => {
                    break reason.or(Some(CloseReason {
                        code: CloseCode::Normal,
                        description: None,
                    }));
                }
                // A fixed reason: a close frame's reason must fit in 123 bytes.
                Some(Err(_)) => {
                    break Some(CloseReason {
                        code: CloseCode::Protocol,
                        description: Some("malformed WebSocket frame".into()),
                    });
                }
                // The connection is gone.
                None => return,
            }
        };
        // Detach first: nothing more is queued for a connection that is closing.
        drop(guard);
        Box::pin(close(ws, close_with)).await;
    }
}

/// What woke a connection's task.
enum Wake {
    /// The session cut the connection (with a reason, unless it went away).
    Cut(Option<CloseReason>),
    /// The session queued something, or dropped the queue.
    Queued(Option<Out>),
    /// The client sent a frame, or the connection ended.
    Received(Option<Result<WsMessage, ProtocolError>>),
}

/// The body of a Server-Sent Events response: `id:` carries the event's log
/// id (so the browser's `Last-Event-ID` resumes exactly), `data:` the same
/// JSON a WebSocket client gets. Ends when the session cuts the client.
pub fn event_stream(attachment: Attachment) -> impl futures_util::Stream<Item = String> {
    let first = futures_util::stream::once(async { ": connected\n\n".to_owned() });
    let events = futures_util::stream::unfold(Some(attachment), |state| async move {
        let mut att = state?;
        let out = tokio::select! {
            biased;
            // The last event names the close, as a WebSocket's close frame
            // would; then the body ends.
            reason = &mut att.cut => return reason.ok().map(|r| (closed_event(&r), None)),
            out = att.queue.next() => out?,
        };
        let chunk = match out {
            Out::Text(Some(id), json) => format!("id: {id}\ndata: {json}\n\n"),
            Out::Text(None, json) => format!("data: {json}\n\n"),
            Out::Ping => ": keepalive\n\n".to_owned(),
        };
        Some((chunk, Some(att)))
    });
    first.chain(events)
}

/// `event: closed`, with the code and reason a WebSocket client would get.
fn closed_event(reason: &CloseReason) -> String {
    let data = serde_json::json!({
        "code": u16::from(reason.code),
        "reason": reason.description,
    });
    format!("event: closed\ndata: {data}\n\n")
}

/// Waits until `deadline` for the first event, then takes whatever else is
/// already queued, up to `max`. Returns the events' JSON and their log ids.
pub async fn long_poll(
    mut attachment: Attachment,
    deadline: tokio::time::Instant,
    max: usize,
) -> Vec<(Option<i64>, ByteString)> {
    let mut events = Vec::new();
    loop {
        let out = tokio::select! {
            biased;
            _ = &mut attachment.cut => break,
            out = attachment.queue.next() => out,
            _ = tokio::time::sleep_until(deadline) => break,
        };
        match out {
            Some(Out::Text(id, json)) => {
                events.push((id, json));
                break;
            }
            Some(Out::Ping) => continue,
            None => break,
        }
    }
    while events.len() < max.max(1) {
        match attachment.queue.try_recv() {
            Ok(Out::Text(id, json)) => events.push((id, json)),
            Ok(Out::Ping) => continue,
            Err(_) => break,
        }
    }
    events
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

/// An event about a post, for the connections subscribed to it.
#[derive(Message, Clone)]
#[rtype(result = "()")]
pub struct PostActivity {
    pub post_id: i64,
    pub event: UserEvent,
}

impl Handler<PostActivity> for SessionActor {
    type Result = ();

    fn handle(&mut self, msg: PostActivity, ctx: &mut Self::Context) {
        let frame = ByteStringEvent::from(&msg.event);
        let ids: Vec<u64> = self
            .connections
            .iter()
            .filter(|(_, c)| c.subscriptions.contains(&msg.post_id))
            .map(|(id, _)| *id)
            .collect();
        for id in ids {
            self.send_to(ctx, id, &frame);
        }
    }
}

#[derive(Message)]
#[rtype(result = "()")]
struct ClientText {
    conn_id: u64,
    text: String,
}

impl Handler<ClientText> for SessionActor {
    type Result = ();

    fn handle(&mut self, msg: ClientText, ctx: &mut Self::Context) {
        match protocol::parse(&msg.text) {
            Ok(ClientMessage::Ping) => {
                self.ephemeral(ctx, msg.conn_id, "pong", serde_json::json!({}))
            }
            Ok(ClientMessage::Subscribe { post_id }) => self.subscribe(ctx, msg.conn_id, post_id),
            Ok(ClientMessage::Unsubscribe { post_id }) => {
                let Some(conn) = self.connections.get_mut(&msg.conn_id) else {
                    return;
                };
                let was = conn.subscriptions.remove(&post_id);
                let still = self
                    .connections
                    .values()
                    .any(|c| c.subscriptions.contains(&post_id));
                if was && !still {
                    self.registry.do_send(SubscriptionChanged {
                        user_id: self.user_id,
                        post_id,
                        subscribed: false,
                    });
                }
                self.ephemeral(
                    ctx,
                    msg.conn_id,
                    "unsubscribed",
                    serde_json::json!({ "post_id": post_id }),
                );
            }
            Err(message) => self.ephemeral(
                ctx,
                msg.conn_id,
                "error",
                serde_json::json!({ "message": message }),
            ),
        }
    }
}

impl SessionActor {
    /// Subscribes a connection to a post's live activity, if this user may
    /// read the post. Absent, deleted, hidden and blocked posts get the same
    /// answer, so a refusal tells nothing about which it was.
    fn subscribe(&mut self, ctx: &mut Context<Self>, conn_id: u64, post_id: i64) {
        let Some(conn) = self.connections.get_mut(&conn_id) else {
            return;
        };
        if conn.subscriptions.contains(&post_id) {
            self.ephemeral(
                ctx,
                conn_id,
                "subscribed",
                serde_json::json!({ "post_id": post_id }),
            );
            return;
        }
        if conn.subscriptions.len() >= MAX_SUBSCRIPTIONS {
            let message = format!(
                "at most {MAX_SUBSCRIPTIONS} subscriptions per connection; unsubscribe first"
            );
            self.ephemeral(
                ctx,
                conn_id,
                "error",
                serde_json::json!({ "message": message }),
            );
            return;
        }
        let (db, user_id) = (self.db.clone(), self.user_id);
        let check = async move { watch::sight(&db, post_id, &[user_id], None, false).await };
        // `wait`: this connection's next frame is handled after the answer,
        // so the subscription count above stays exact.
        ctx.wait(check.into_actor(self).map(move |result, act, ctx| {
            let visible = match result {
                Ok(sights) => sights.first().is_some_and(|s| s.post),
                Err(e) => {
                    tracing::warn!(user_id = act.user_id, post_id, error = %e, "subscribe check failed");
                    let message = "could not subscribe right now; try again";
                    act.ephemeral(ctx, conn_id, "error", serde_json::json!({ "message": message, "post_id": post_id }));
                    return;
                }
            };
            if !visible {
                act.ephemeral(
                    ctx,
                    conn_id,
                    "error",
                    serde_json::json!({ "message": "post not found", "post_id": post_id }),
                );
                return;
            }
            let Some(conn) = act.connections.get_mut(&conn_id) else {
                return;
            };
            conn.subscriptions.insert(post_id);
            act.registry.do_send(SubscriptionChanged {
                user_id: act.user_id,
                post_id,
                subscribed: true,
            });
            act.ephemeral(ctx, conn_id, "subscribed", serde_json::json!({ "post_id": post_id }));
        }));
    }
}

/// The post is no longer this user's to follow (deleted, hidden, or a block
/// came between): every connection's subscription to it ends, silently.
#[derive(Message)]
#[rtype(result = "()")]
pub struct Revoked {
    pub post_id: i64,
}

impl Handler<Revoked> for SessionActor {
    type Result = ();

    fn handle(&mut self, msg: Revoked, _: &mut Self::Context) {
        let mut had = false;
        for conn in self.connections.values_mut() {
            had |= conn.subscriptions.remove(&msg.post_id);
        }
        if had {
            self.registry.do_send(SubscriptionChanged {
                user_id: self.user_id,
                post_id: msg.post_id,
                subscribed: false,
            });
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

/// The user's credentials were revoked: the connections that used them close
/// with [`protocol::CLOSE_CREDENTIALS_REVOKED`] (all of them, or those opened
/// with one API key).
#[derive(Message)]
#[rtype(result = "()")]
pub struct CloseRevoked {
    pub api_key_id: Option<i64>,
}

impl Handler<CloseRevoked> for SessionActor {
    type Result = ();

    fn handle(&mut self, msg: CloseRevoked, _: &mut Self::Context) {
        let ids: Vec<u64> = self
            .connections
            .iter()
            .filter(|(_, c)| match msg.api_key_id {
                None => true,
                Some(id) => c.credential == Credential::ApiKey { id },
            })
            .map(|(id, _)| *id)
            .collect();
        self.close_revoked(ids);
    }
}

/// The account's credentials as the database has them now, after this node
/// may have missed revocations (see [`crate::registry::Recheck`]).
#[derive(Message, Clone)]
#[rtype(result = "()")]
pub struct CloseStale {
    pub active: bool,
    pub token_version: i32,
    pub api_keys: Vec<i64>,
}

impl Handler<CloseStale> for SessionActor {
    type Result = ();

    fn handle(&mut self, msg: CloseStale, _: &mut Self::Context) {
        let ids: Vec<u64> = self
            .connections
            .iter()
            .filter(|(_, c)| {
                !msg.active
                    || match c.credential {
                        Credential::AccessToken { version } => version != msg.token_version,
                        Credential::ApiKey { id } => !msg.api_keys.contains(&id),
                    }
            })
            .map(|(id, _)| *id)
            .collect();
        self.close_revoked(ids);
    }
}

impl SessionActor {
    fn close_revoked(&mut self, ids: Vec<u64>) {
        for id in ids {
            self.cut(
                id,
                CloseCode::Other(protocol::CLOSE_CREDENTIALS_REVOKED),
                "credentials revoked; sign in again",
            );
        }
        // Each transport detaches as it ends; the last one idles the session.
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

async fn close(ws: WsSession, reason: Option<CloseReason>) {
    // A client that reads nothing never frees room for the close frame; give up after a while.
    let _ = tokio::time::timeout(Duration::from_secs(10), ws.close(reason)).await;
}
