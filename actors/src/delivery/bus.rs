//! The event bus between nodes. A supervisor's batch, once committed, is
//! delivered to this node's sessions at once and, with Redis configured,
//! published on one channel that every other node is subscribed to. A
//! pulled author's post travels as a [`PulledPost`], without recipients:
//! each node logs it for the followers online there (see [`crate::delivery::herald`]).
//!
//! Redis carries only live delivery. Event ids and the replay log live in
//! Postgres, so a message lost to a Redis outage costs nothing but latency:
//! a session that sees a gap in ids fills it from the log, and a client that
//! reconnects replays from its last id.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use actix::Addr;
use chrono::{DateTime, Utc};
use futures_util::StreamExt as _;
use serde::{Deserialize, Serialize};
use tokio::sync::mpsc;

use crate::delivery::changes::{self, Beat, Heard, Listener, Peers};
use crate::delivery::herald::PulledPost;
use crate::delivery::log::{Payload, UserEvent};
use crate::delivery::registry::{Activity, Deliver, Recheck, Revoke, SessionRegistry};
use crate::DomainEvent;

/// Batches waiting to be published; beyond this a Redis that cannot keep up
/// loses live delivery (never events: see the module docs).
const PUBLISH_QUEUE: usize = 1024;
const MAX_BACKOFF: Duration = Duration::from_secs(5);

/// One committed batch as it crosses nodes. The publishing node, which has
/// delivered the batch itself already, prefixes the message with a header
/// line (see [`changes::header`]): its name, so it can skip its own messages
/// without decoding them, and its sequence number.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Batch {
    pub events: Vec<WireGroup>,
    pub activity: Vec<WireActivity>,
    #[serde(default)]
    pub revoked: Vec<Revoke>,
    #[serde(default)]
    pub pulled: Vec<PulledPost>,
    /// Domain events the read caches forget by.
    #[serde(default)]
    pub changed: Vec<DomainEvent>,
}

/// Events that share one payload (a post fanned out to its followers): the
/// payload crosses once, with the users it goes to.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct WireGroup {
    pub kind: String,
    pub data: Payload,
    pub to: Vec<WireTarget>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct WireTarget {
    pub user_id: i64,
    pub id: Option<i64>,
    pub ts: DateTime<Utc>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct WireActivity {
    pub post_id: i64,
    #[serde(default)]
    pub by: Option<i64>,
    pub kind: String,
    pub data: serde_json::Value,
}

impl Batch {
    /// The wire form of a committed batch. Every field crosses: `into_parts`
    /// builds a whole `Committed`, so a field added there needs one in
    /// `Batch`, which this then has to fill.
    pub fn new(committed: &Committed) -> Self {
        let mut groups: Vec<WireGroup> = Vec::new();
        for e in &committed.events {
            let target = WireTarget {
                user_id: e.user_id,
                id: e.id,
                ts: e.ts,
            };
            match groups.last_mut() {
                Some(g) if g.data.same(&e.data) && g.kind == e.kind => g.to.push(target),
                _ => groups.push(WireGroup {
                    kind: e.kind.clone(),
                    data: e.data.clone(),
                    to: vec![target],
                }),
            }
        }
        Self {
            events: groups,
            activity: committed
                .activity
                .iter()
                .map(|a| WireActivity {
                    post_id: a.post_id,
                    by: a.by,
                    kind: a.kind.clone(),
                    data: a.data.clone(),
                })
                .collect(),
            revoked: committed.revoked.clone(),
            pulled: committed.pulled.clone(),
            changed: committed.changed.clone(),
        }
    }

    pub fn into_parts(self) -> Committed {
        let events = self
            .events
            .into_iter()
            .flat_map(|g| {
                let WireGroup { kind, data, to } = g;
                to.into_iter().map(move |t| UserEvent {
                    user_id: t.user_id,
                    id: t.id,
                    kind: kind.clone(),
                    ts: t.ts,
                    data: data.clone(),
                })
            })
            .collect();
        let activity = self
            .activity
            .into_iter()
            .map(|a| Activity {
                post_id: a.post_id,
                by: a.by,
                kind: a.kind,
                data: a.data,
            })
            .collect();
        Committed {
            events,
            activity,
            revoked: self.revoked,
            pulled: self.pulled,
            changed: self.changed,
        }
    }

    /// The body of the message (the publisher adds the header).
    pub fn encode(&self) -> Result<Vec<u8>, serde_json::Error> {
        serde_json::to_vec(self)
    }

    pub fn decode(body: &[u8]) -> Result<Self, serde_json::Error> {
        serde_json::from_slice(body)
    }
}

/// What a committed batch announces, as every node delivers it.
#[derive(Default)]
pub struct Committed {
    /// Logged events, to their users' sessions.
    pub events: Vec<UserEvent>,
    /// Post activity, to the post's subscribers.
    pub activity: Vec<Activity>,
    /// Revoked credentials: the connections that used them close.
    pub revoked: Vec<Revoke>,
    /// Pulled authors' posts, for the followers online on each node.
    pub pulled: Vec<PulledPost>,
    /// Domain events that committed, for the read caches of every node.
    pub changed: Vec<DomainEvent>,
}

impl Committed {
    /// Adds what `other` announces after what this one does.
    pub fn extend(&mut self, other: Committed) {
        self.events.extend(other.events);
        self.activity.extend(other.activity);
        self.revoked.extend(other.revoked);
        self.pulled.extend(other.pulled);
        self.changed.extend(other.changed);
    }

    fn is_empty(&self) -> bool {
        self.events.is_empty()
            && self.activity.is_empty()
            && self.revoked.is_empty()
            && self.pulled.is_empty()
            && self.changed.is_empty()
    }
}

/// Where committed batches go: this node's registry and read caches, and the
/// other nodes.
#[derive(Clone)]
pub struct Bus {
    registry: Addr<SessionRegistry>,
    listener: Option<Listener>,
    publish: Option<Publisher>,
}

/// What the publisher is asked to send.
enum Outgoing {
    /// An encoded batch.
    Batch(Vec<u8>),
    /// A clean stop: tell the other nodes, then say so.
    Bye(tokio::sync::oneshot::Sender<()>),
}

#[derive(Clone)]
struct Publisher {
    queue: mpsc::Sender<Outgoing>,
    /// A batch was dropped before it got a number: the next one skips one,
    /// so the other nodes know they missed something.
    lost: Arc<AtomicBool>,
}

/// The Redis channel the nodes of one deployment share: named after its
/// database, so deployments (and test runs) sharing a Redis never mix.
pub fn channel_for(database: &str) -> String {
    format!("rookery:events:{database}")
}

impl Bus {
    /// A bus for one process alone.
    pub fn local(registry: Addr<SessionRegistry>, listener: Option<Listener>) -> Self {
        Self {
            registry,
            listener,
            publish: None,
        }
    }

    /// A bus across nodes through Redis: starts the publisher and the
    /// subscriber on the current actix system. `node` names this process.
    /// The caches are not trusted until the subscription stands.
    pub fn redis(
        registry: Addr<SessionRegistry>,
        listener: Option<Listener>,
        client: redis::Client,
        channel: String,
        node: String,
    ) -> Self {
        if let Some(l) = &listener {
            l.0.reset(false);
        }
        let (tx, rx) = mpsc::channel(PUBLISH_QUEUE);
        let lost = Arc::new(AtomicBool::new(false));
        actix::spawn(publish_loop(
            client.clone(),
            channel.clone(),
            node.clone(),
            rx,
            lost.clone(),
        ));
        actix::spawn(subscribe_loop(
            client,
            channel,
            node,
            registry.clone(),
            listener.clone(),
        ));
        Self {
            registry,
            listener,
            publish: Some(Publisher { queue: tx, lost }),
        }
    }

    /// Tells the other nodes this one stops, so they forget it at once
    /// instead of distrusting their caches until it has been silent for
    /// [`changes::FORGET`]. Waits at most a second.
    pub async fn goodbye(&self) {
        let Some(publish) = &self.publish else {
            return;
        };
        let (said, heard) = tokio::sync::oneshot::channel();
        let wait = Duration::from_secs(1);
        if tokio::time::timeout(wait, publish.queue.send(Outgoing::Bye(said)))
            .await
            .is_ok_and(|sent| sent.is_ok())
        {
            let _ = tokio::time::timeout(wait, heard).await;
        }
    }

    /// Delivers a committed batch here and announces it to the other nodes.
    pub fn deliver(&self, committed: Committed) {
        // This node's caches first, so the writer reads its own write.
        if let Some(listener) = &self.listener {
            if !committed.changed.is_empty() {
                listener.0.changed(&committed.changed);
            }
        }
        // Local sessions next: encoding a large batch would only delay them.
        let published = match &self.publish {
            Some(_) if !committed.is_empty() => Some(Batch::new(&committed)),
            _ => None,
        };
        deliver_locally(&self.registry, committed);
        if let (Some(publish), Some(batch)) = (&self.publish, published) {
            match batch.encode() {
                Ok(body) => {
                    if publish.queue.try_send(Outgoing::Batch(body)).is_err() {
                        publish.lost.store(true, Ordering::SeqCst);
                        tracing::warn!(
                            "redis publish queue full; other nodes will catch up from the log and reset their caches"
                        );
                    }
                }
                Err(e) => tracing::error!(error = %e, "unencodable batch dropped"),
            }
        }
    }
}

/// Data goes to the registry with `try_send`: its mailbox is bounded, and a
/// batch dropped because it is full costs latency, not events (sessions fill
/// the gap from the log on the next event, clients on reconnect).
fn deliver_locally(registry: &Addr<SessionRegistry>, committed: Committed) {
    let Committed {
        events,
        activity,
        revoked,
        pulled,
        changed: _,
    } = committed;
    // Never dropped: a revoked credential's connections must close.
    for r in revoked {
        registry.do_send(r);
    }
    if !events.is_empty() && registry.try_send(Deliver(events)).is_err() {
        tracing::warn!("session registry mailbox full; live events dropped, the log keeps them");
    }
    for a in activity {
        // Activity is ephemeral (counters, comments on screen): losing some under load is fine.
        let _ = registry.try_send(a);
    }
    for p in pulled {
        // Data too: a post dropped here is still in the followers' feeds.
        if registry.try_send(p).is_err() {
            tracing::warn!("session registry mailbox full; a pulled post reaches the followers online here through their feed only");
        }
    }
}

/// Publishes batches in order, each with the next sequence number, and a
/// heartbeat with the current one whenever [`changes::HEARTBEAT`] passes
/// without a batch; reconnects (through the connection manager) when Redis
/// comes back. A batch that could not be published has used its number up.
async fn publish_loop(
    client: redis::Client,
    channel: String,
    node: String,
    mut batches: mpsc::Receiver<Outgoing>,
    lost: Arc<AtomicBool>,
) {
    let mut done: Option<tokio::sync::oneshot::Sender<()>> = None;
    let mut conn: Option<redis::aio::ConnectionManager> = None;
    let mut seq: u64 = 0;
    let mut beat = tokio::time::interval(changes::HEARTBEAT);
    beat.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        let (kind, body) = tokio::select! {
            batch = batches.recv() => match batch {
                Some(Outgoing::Batch(body)) => (Beat::Data, body),
                Some(Outgoing::Bye(said)) => {
                    done = Some(said);
                    (Beat::Bye, Vec::new())
                }
                None => (Beat::Bye, Vec::new()),
            },
            _ = beat.tick() => (Beat::Alive, Vec::new()),
        };
        if lost.swap(false, Ordering::SeqCst) {
            seq += 1;
        }
        if kind == Beat::Data {
            seq += 1;
            beat.reset();
        }
        let mut message = changes::header(&node, seq, kind).into_bytes();
        message.extend_from_slice(&body);
        if conn.is_none() {
            match client.get_connection_manager().await {
                Ok(c) => conn = Some(c),
                Err(e) => {
                    if kind == Beat::Data {
                        tracing::warn!(error = %e, "redis unavailable; live delivery to other nodes paused");
                    }
                }
            }
        }
        if let Some(c) = conn.as_mut() {
            let sent: redis::RedisResult<i64> = redis::cmd("PUBLISH")
                .arg(&channel)
                .arg(message)
                .query_async(c)
                .await;
            if let Err(e) = sent {
                if kind == Beat::Data {
                    tracing::warn!(error = %e, "redis publish failed; other nodes will catch up from the log");
                }
            }
        }
        if kind == Beat::Bye {
            if let Some(said) = done {
                let _ = said.send(());
            }
            return;
        }
    }
}

/// Receives the other nodes' batches and hands them to this node's caches
/// and registry; resubscribes with backoff whenever the subscription drops.
/// Tracks every node's sequence (see [`changes`]): a miss resets the caches
/// and has the registry re-check its connections' credentials, since a
/// revocation may have been in what was missed.
async fn subscribe_loop(
    client: redis::Client,
    channel: String,
    node: String,
    registry: Addr<SessionRegistry>,
    listener: Option<Listener>,
) {
    let reset = |trusted: bool| {
        if let Some(l) = &listener {
            l.0.reset(trusted);
        }
    };
    let mut backoff = Duration::from_millis(100);
    let mut first = true;
    let mut peers = Peers::default();
    loop {
        match client.get_async_pubsub().await {
            Ok(mut pubsub) => match pubsub.subscribe(&channel).await {
                Ok(()) => {
                    tracing::info!(%channel, "subscribed to the event bus");
                    backoff = Duration::from_millis(100);
                    // Whatever was published while this node was away is
                    // lost: events come back from the log, caches start
                    // empty, and a revoked credential's connections must be
                    // found anew.
                    peers.clear();
                    reset(true);
                    if !first {
                        registry.do_send(Recheck);
                    }
                    first = false;
                    let mut silent = false;
                    let mut watch = tokio::time::interval(changes::HEARTBEAT / 2);
                    let mut messages = pubsub.on_message();
                    loop {
                        let msg = tokio::select! {
                            msg = messages.next() => match msg {
                                Some(msg) => msg,
                                None => break,
                            },
                            _ = watch.tick() => {
                                let now_silent = peers.any_silent(Instant::now());
                                if now_silent != silent {
                                    silent = now_silent;
                                    if silent {
                                        tracing::warn!("a node went silent on the event bus; caches bypassed until it is heard or forgotten");
                                    }
                                    reset(!silent);
                                }
                                continue;
                            }
                        };
                        let Some((from, seq, kind, body)) =
                            changes::parse_header(msg.get_payload_bytes())
                        else {
                            tracing::warn!("undecodable bus message ignored");
                            continue;
                        };
                        if from == node.as_bytes() {
                            continue;
                        }
                        let from = String::from_utf8_lossy(from);
                        if peers.heard(&from, seq, kind, Instant::now()) == Heard::Missed {
                            tracing::info!(node = %from, seq, "missed bus messages; caches reset, credentials re-checked");
                            reset(!silent);
                            registry.do_send(Recheck);
                        }
                        if kind != Beat::Data {
                            continue;
                        }
                        match Batch::decode(body) {
                            Ok(batch) => {
                                let committed = batch.into_parts();
                                if let Some(l) = &listener {
                                    if !committed.changed.is_empty() {
                                        l.0.changed(&committed.changed);
                                    }
                                }
                                deliver_locally(&registry, committed);
                            }
                            Err(e) => {
                                tracing::warn!(error = %e, "undecodable bus message ignored");
                                // It may have carried an invalidation.
                                reset(!silent);
                            }
                        }
                    }
                    tracing::warn!("event bus subscription lost; resubscribing");
                }
                Err(e) => tracing::warn!(error = %e, "event bus subscribe failed"),
            },
            Err(e) => tracing::warn!(error = %e, "redis unavailable for the event bus"),
        }
        // Deaf to the other nodes: nothing cached can be trusted.
        reset(false);
        tokio::time::sleep(backoff).await;
        backoff = (backoff * 2).min(MAX_BACKOFF);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(user_id: i64, id: i64, data: &Payload) -> UserEvent {
        UserEvent {
            user_id,
            id: Some(id),
            kind: "feed.post".into(),
            ts: Utc::now(),
            data: data.clone(),
        }
    }

    #[test]
    fn a_fanned_out_payload_crosses_once_and_comes_back_to_every_user() {
        let post = Payload::new(&serde_json::json!({ "id": 7, "text": "héllo \"world\"" }));
        let other = Payload::new(&serde_json::json!({ "id": 8 }));
        let events = vec![
            event(1, 10, &post),
            event(2, 4, &post),
            event(3, 9, &post),
            event(1, 11, &other),
        ];
        let pulled = PulledPost {
            post_id: 12,
            author_id: 5,
            data: serde_json::json!({ "post_id": 12 }),
        };
        let changed = DomainEvent::PostEdited {
            post_id: 7,
            author_id: 2,
        };
        let batch = Batch::new(&Committed {
            events: events.clone(),
            pulled: vec![pulled.clone()],
            changed: vec![changed.clone()],
            ..Committed::default()
        });
        assert_eq!(batch.events.len(), 2, "one group per payload");
        assert_eq!(batch.events[0].to.len(), 3);

        let message = batch.encode().unwrap();
        let text = String::from_utf8(message.clone()).unwrap();
        assert_eq!(text.matches("héllo").count(), 1, "the payload is sent once");

        let back = Batch::decode(&message).unwrap().into_parts();
        assert!(back.activity.is_empty() && back.revoked.is_empty());
        assert_eq!(back.events, events);
        assert_eq!(back.events[0].to_json(), events[0].to_json());
        assert_eq!(back.pulled, vec![pulled]);
        assert_eq!(back.changed, vec![changed]);
    }

    #[test]
    fn garbage_is_refused() {
        assert!(Batch::decode(b"not json").is_err());
        assert!(Batch::decode(b"").is_err());
    }

    #[test]
    fn a_batch_without_the_newer_fields_still_decodes() {
        let batch = Batch::decode(b"{\"events\":[],\"activity\":[]}").unwrap();
        let parts = batch.into_parts();
        assert!(parts.pulled.is_empty() && parts.changed.is_empty());
    }
}
