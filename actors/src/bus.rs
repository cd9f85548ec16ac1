//! The event bus between nodes. A supervisor's batch, once committed, is
//! delivered to this node's sessions at once and, with Redis configured,
//! published on one channel that every other node is subscribed to.
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

use crate::log::UserEvent;
use crate::registry::{Activity, Deliver, SessionRegistry};

/// Batches waiting to be published; beyond this a Redis that cannot keep up
/// loses live delivery (never events: see the module docs).
const PUBLISH_QUEUE: usize = 1024;
const MAX_BACKOFF: Duration = Duration::from_secs(5);

/// One committed batch as it crosses nodes.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Batch {
    /// The publishing node, which has delivered the batch itself already.
    pub node: String,
    pub events: Vec<WireEvent>,
    pub activity: Vec<WireActivity>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct WireEvent {
    pub user_id: i64,
    pub id: Option<i64>,
    pub kind: String,
    pub ts: DateTime<Utc>,
    pub data: serde_json::Value,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct WireActivity {
    pub post_id: i64,
    pub kind: String,
    pub data: serde_json::Value,
}

impl From<&UserEvent> for WireEvent {
    fn from(e: &UserEvent) -> Self {
        Self {
            user_id: e.user_id,
            id: e.id,
            kind: e.kind.clone(),
            ts: e.ts,
            data: e.data.clone(),
        }
    }
}

impl From<WireEvent> for UserEvent {
    fn from(e: WireEvent) -> Self {
        Self {
            user_id: e.user_id,
            id: e.id,
            kind: e.kind,
            ts: e.ts,
            data: e.data,
        }
    }
}

/// Where committed batches go: this node's registry, and the other nodes.
#[derive(Clone)]
pub struct Bus {
    registry: Addr<SessionRegistry>,
    node: String,
    publish: Option<mpsc::Sender<Batch>>,
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
    pub fn deliver(&self, events: Vec<UserEvent>, activity: Vec<Activity>) {
        if let Some(publish) = &self.publish {
            if !events.is_empty() || !activity.is_empty() {
                let batch = Batch {
                    node: self.node.clone(),
                    events: events.iter().map(WireEvent::from).collect(),
                    activity: activity
                        .iter()
                        .map(|a| WireActivity {
                            post_id: a.post_id,
                            kind: a.kind.clone(),
                            data: a.data.clone(),
                        })
                        .collect(),
                };
                if publish.try_send(batch).is_err() {
                    tracing::warn!(
                        "redis publish queue full; other nodes will catch up from the log"
                    );
                }
            }
        }
        deliver_locally(&self.registry, events, activity);
    }
}

/// Data goes to the registry with `try_send`: its mailbox is bounded, and a
/// batch dropped because it is full costs latency, not events (sessions fill
/// the gap from the log on the next event, clients on reconnect).
fn deliver_locally(
    registry: &Addr<SessionRegistry>,
    events: Vec<UserEvent>,
    activity: Vec<Activity>,
) {
    if !events.is_empty() && registry.try_send(Deliver(events)).is_err() {
        tracing::warn!("session registry mailbox full; live events dropped, the log keeps them");
    }
    for a in activity {
        // Activity is ephemeral (counters, comments on screen): losing some under load is fine.
        let _ = registry.try_send(a);
    }
}

/// Publishes batches in order; reconnects (through the connection manager)
/// when Redis comes back.
async fn publish_loop(client: redis::Client, channel: String, mut batches: mpsc::Receiver<Batch>) {
    let mut conn: Option<redis::aio::ConnectionManager> = None;
    while let Some(batch) = batches.recv().await {
        let payload = match serde_json::to_vec(&batch) {
            Ok(p) => p,
            Err(e) => {
                tracing::error!(error = %e, "unencodable batch dropped");
                continue;
            }
        };
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
    loop {
        match client.get_async_pubsub().await {
            Ok(mut pubsub) => match pubsub.subscribe(&channel).await {
                Ok(()) => {
                    tracing::info!(%channel, "subscribed to the event bus");
                    backoff = Duration::from_millis(100);
                    let mut messages = pubsub.on_message();
                    while let Some(msg) = messages.next().await {
                        match serde_json::from_slice::<Batch>(msg.get_payload_bytes()) {
                            Ok(batch) if batch.node != node => {
                                let events =
                                    batch.events.into_iter().map(UserEvent::from).collect();
                                let activity = batch
                                    .activity
                                    .into_iter()
                                    .map(|a| Activity {
                                        post_id: a.post_id,
                                        kind: a.kind,
                                        data: a.data,
                                    })
                                    .collect();
                                deliver_locally(&registry, events, activity);
                            }
                            Ok(_) => {}
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
