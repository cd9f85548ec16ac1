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

use std::time::Duration;

use actix::Addr;
use chrono::{DateTime, Utc};
use futures_util::StreamExt as _;
use serde::{Deserialize, Serialize};
use tokio::sync::mpsc;

use crate::delivery::herald::PulledPost;
use crate::delivery::log::{Payload, UserEvent};
use crate::delivery::registry::{Activity, Deliver, Recheck, Revoke, SessionRegistry};

/// Batches waiting to be published; beyond this a Redis that cannot keep up
/// loses live delivery (never events: see the module docs).
const PUBLISH_QUEUE: usize = 1024;
const MAX_BACKOFF: Duration = Duration::from_secs(5);

/// One committed batch as it crosses nodes. The publishing node, which has
/// delivered the batch itself already, prefixes the message with its name and
/// a newline, so it can skip its own messages without decoding them.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Batch {
    pub events: Vec<WireGroup>,
    pub activity: Vec<WireActivity>,
    #[serde(default)]
    pub revoked: Vec<Revoke>,
    #[serde(default)]
    pub pulled: Vec<PulledPost>,
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
        }
    }

    /// The message as published by `node`.
    pub fn encode(&self, node: &str) -> Result<Vec<u8>, serde_json::Error> {
        let mut out = Vec::with_capacity(node.len() + 1 + 256);
        out.extend_from_slice(node.as_bytes());
        out.push(b'\n');
        serde_json::to_writer(&mut out, self)?;
        Ok(out)
    }

    /// The batch a message carries; `Ok(None)` for `own`'s messages.
    pub fn decode(message: &[u8], own: &str) -> Result<Option<Self>, serde_json::Error> {
        let split = message.iter().position(|b| *b == b'\n').unwrap_or(0);
        let (node, rest) = message.split_at(split);
        if node == own.as_bytes() {
            return Ok(None);
        }
        serde_json::from_slice(rest.get(1..).unwrap_or_default()).map(Some)
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
}

impl Committed {
    /// Adds what `other` announces after what this one does.
    pub fn extend(&mut self, other: Committed) {
        self.events.extend(other.events);
        self.activity.extend(other.activity);
        self.revoked.extend(other.revoked);
        self.pulled.extend(other.pulled);
    }

    fn is_empty(&self) -> bool {
        self.events.is_empty()
            && self.activity.is_empty()
            && self.revoked.is_empty()
            && self.pulled.is_empty()
    }
}

/// Where committed batches go: this node's registry, and the other nodes.
#[derive(Clone)]
pub struct Bus {
    registry: Addr<SessionRegistry>,
    node: String,
    publish: Option<mpsc::Sender<Vec<u8>>>,
}

/// The Redis channel the nodes of one deployment share: named after its
/// database, so deployments (and test runs) sharing a Redis never mix.
pub fn channel_for(database: &str) -> String {
    format!("rookery:events:{database}")
}

impl Bus {
    /// A bus for one process alone.
    pub fn local(registry: Addr<SessionRegistry>) -> Self {
        Self {
            registry,
            node: String::new(),
            publish: None,
        }
    }

    /// A bus across nodes through Redis: starts the publisher and the
    /// subscriber on the current actix system. `node` names this process.
    pub fn redis(
        registry: Addr<SessionRegistry>,
        client: redis::Client,
        channel: String,
        node: String,
    ) -> Self {
        let (tx, rx) = mpsc::channel(PUBLISH_QUEUE);
        actix::spawn(publish_loop(client.clone(), channel.clone(), rx));
        actix::spawn(subscribe_loop(
            client,
            channel,
            node.clone(),
            registry.clone(),
        ));
        Self {
            registry,
            node,
            publish: Some(tx),
        }
    }

    /// Delivers a committed batch here and announces it to the other nodes.
    pub fn deliver(&self, committed: Committed) {
        // Local sessions first: encoding a large batch would only delay them.
        let published = match &self.publish {
            Some(_) if !committed.is_empty() => Some(Batch::new(&committed)),
            _ => None,
        };
        deliver_locally(&self.registry, committed);
        if let (Some(publish), Some(batch)) = (&self.publish, published) {
            match batch.encode(&self.node) {
                Ok(message) => {
                    if publish.try_send(message).is_err() {
                        tracing::warn!(
                            "redis publish queue full; other nodes will catch up from the log"
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

/// Publishes batches in order; reconnects (through the connection manager)
/// when Redis comes back.
async fn publish_loop(
    client: redis::Client,
    channel: String,
    mut batches: mpsc::Receiver<Vec<u8>>,
) {
    let mut conn: Option<redis::aio::ConnectionManager> = None;
    while let Some(payload) = batches.recv().await {
        if conn.is_none() {
            match client.get_connection_manager().await {
                Ok(c) => conn = Some(c),
                Err(e) => {
                    tracing::warn!(error = %e, "redis unavailable; live delivery to other nodes paused");
                    continue;
                }
            }
        }
        if let Some(c) = conn.as_mut() {
            let sent: redis::RedisResult<i64> = redis::cmd("PUBLISH")
                .arg(&channel)
                .arg(payload)
                .query_async(c)
                .await;
            if let Err(e) = sent {
                tracing::warn!(error = %e, "redis publish failed; other nodes will catch up from the log");
            }
        }
    }
}

/// Receives the other nodes' batches and hands them to this node's
/// registry; resubscribes with backoff whenever the subscription drops.
async fn subscribe_loop(
    client: redis::Client,
    channel: String,
    node: String,
    registry: Addr<SessionRegistry>,
) {
    let mut backoff = Duration::from_millis(100);
    let mut first = true;
    loop {
        match client.get_async_pubsub().await {
            Ok(mut pubsub) => match pubsub.subscribe(&channel).await {
                Ok(()) => {
                    tracing::info!(%channel, "subscribed to the event bus");
                    backoff = Duration::from_millis(100);
                    // Whatever was published while this node was away is
                    // lost: events come back from the log, but a revoked
                    // credential's connections must be found anew.
                    if !first {
                        registry.do_send(Recheck);
                    }
                    first = false;
                    let mut messages = pubsub.on_message();
                    while let Some(msg) = messages.next().await {
                        match Batch::decode(msg.get_payload_bytes(), &node) {
                            Ok(Some(batch)) => deliver_locally(&registry, batch.into_parts()),
                            Ok(None) => {}
                            Err(e) => tracing::warn!(error = %e, "undecodable bus message ignored"),
                        }
                    }
                    tracing::warn!("event bus subscription lost; resubscribing");
                }
                Err(e) => tracing::warn!(error = %e, "event bus subscribe failed"),
            },
            Err(e) => tracing::warn!(error = %e, "redis unavailable for the event bus"),
        }
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
        let batch = Batch::new(&Committed {
            events: events.clone(),
            pulled: vec![pulled.clone()],
            ..Committed::default()
        });
        assert_eq!(batch.events.len(), 2, "one group per payload");
        assert_eq!(batch.events[0].to.len(), 3);

        let message = batch.encode("node-a").unwrap();
        let text = String::from_utf8(message.clone()).unwrap();
        assert_eq!(text.matches("héllo").count(), 1, "the payload is sent once");

        let decoded = Batch::decode(&message, "node-b").unwrap().unwrap();
        let back = decoded.into_parts();
        assert!(back.activity.is_empty() && back.revoked.is_empty());
        assert_eq!(back.events, events);
        assert_eq!(back.events[0].to_json(), events[0].to_json());
        assert_eq!(back.pulled, vec![pulled]);
    }

    #[test]
    fn a_node_skips_its_own_messages_and_rejects_garbage() {
        let batch = Batch::new(&Committed::default());
        let message = batch.encode("node-a").unwrap();
        assert!(Batch::decode(&message, "node-a").unwrap().is_none());
        assert!(Batch::decode(&message, "node-b").unwrap().is_some());
        assert!(Batch::decode(b"node-x\nnot json", "node-a").is_err());
        assert!(Batch::decode(b"", "node-a").is_err());
    }

    #[test]
    fn a_batch_from_a_node_without_pulled_posts_still_decodes() {
        // A node of the previous version publishes no `pulled` field.
        let message = b"node-x\n{\"events\":[],\"activity\":[]}";
        let batch = Batch::decode(message, "node-a").unwrap().unwrap();
        assert!(batch.into_parts().pulled.is_empty());
    }
}
