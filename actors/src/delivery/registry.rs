//! The `SessionRegistry`: finds or starts a user's session actor, knows who is
//! online on this node, routes logged events to sessions and post activity to
//! the sessions subscribed to that post, and hands pulled authors' posts to
//! the node's [`Herald`] with the users online here.

use std::collections::{HashMap, HashSet};

use actix::prelude::*;
use actix_ws::CloseCode;
use sqlx::PgPool;

use crate::delivery::herald::{Herald, PulledPost, Tell};
use crate::delivery::log::UserEvent;
use crate::delivery::session::{
    AddConnection, CatchUp, CloseAll, CloseRevoked, CloseStale, ConnHandle, Push, SessionActor,
    SessionConfig, Stop,
};
use crate::delivery::watch::{Gate, Screen};

/// A session actor and how many connections it has been handed.
struct Entry {
    addr: Addr<SessionActor>,
    forwarded: u64,
}

pub struct SessionRegistry {
    db: PgPool,
    config: SessionConfig,
    sessions: HashMap<i64, Entry>,
    /// Post id to the users with a connection subscribed to it.
    subscribers: HashMap<i64, HashSet<i64>>,
    /// Screens post activity before it reaches the subscribers.
    gate: Addr<Gate>,
    /// Logs pulled authors' posts for the users online here.
    herald: Addr<Herald>,
    next_conn: u64,
}

impl SessionRegistry {
    pub fn new(db: PgPool, config: SessionConfig, gate: Addr<Gate>, herald: Addr<Herald>) -> Self {
        Self {
            db,
            config,
            gate,
            herald,
            sessions: HashMap::new(),
            subscribers: HashMap::new(),
            next_conn: 0,
        }
    }
}

impl Actor for SessionRegistry {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        ctx.set_mailbox_capacity(65_536);
    }
}

/// A new authenticated WebSocket connection; answers with the session actor
/// that owns it and the connection's id.
#[derive(Message)]
#[rtype(result = "(Addr<SessionActor>, u64)")]
pub struct Connect {
    pub user_id: i64,
    pub handle: ConnHandle,
    /// Deliver every event after this id.
    pub after: i64,
}

impl Handler<Connect> for SessionRegistry {
    type Result = MessageResult<Connect>;

    fn handle(&mut self, msg: Connect, ctx: &mut Self::Context) -> Self::Result {
        let entry = self.sessions.entry(msg.user_id).or_insert_with(|| Entry {
            addr: SessionActor::new(
                msg.user_id,
                self.db.clone(),
                ctx.address(),
                self.config.clone(),
            )
            .start(),
            forwarded: 0,
        });
        entry.forwarded += 1;
        let session = entry.addr.clone();
        let conn_id = self.next_conn;
        self.next_conn += 1;
        session.do_send(AddConnection {
            conn_id,
            handle: msg.handle,
            after: msg.after,
        });
        MessageResult((session, conn_id))
    }
}

/// A session actor's last connection closed.
#[derive(Message)]
#[rtype(result = "()")]
pub struct Idle {
    pub user_id: i64,
    pub received: u64,
    pub addr: Addr<SessionActor>,
}

impl Handler<Idle> for SessionRegistry {
    type Result = ();

    fn handle(&mut self, msg: Idle, _: &mut Self::Context) {
        let Some(entry) = self.sessions.get(&msg.user_id) else {
            return;
        };
        // Stop only if no connection was handed over since the actor counted.
        if entry.addr == msg.addr && entry.forwarded == msg.received {
            self.sessions.remove(&msg.user_id);
            msg.addr.do_send(Stop);
            self.subscribers.retain(|_, users| {
                users.remove(&msg.user_id);
                !users.is_empty()
            });
        }
    }
}

/// A session actor stopped (after `Stop`, on shutdown, or on failure).
#[derive(Message)]
#[rtype(result = "()")]
pub struct SessionStopped {
    pub user_id: i64,
    pub addr: Addr<SessionActor>,
}

impl Handler<SessionStopped> for SessionRegistry {
    type Result = ();

    fn handle(&mut self, msg: SessionStopped, _: &mut Self::Context) {
        if self
            .sessions
            .get(&msg.user_id)
            .is_some_and(|e| e.addr == msg.addr)
        {
            self.sessions.remove(&msg.user_id);
            self.subscribers.retain(|_, users| {
                users.remove(&msg.user_id);
                !users.is_empty()
            });
        }
    }
}

#[derive(Message)]
#[rtype(result = "()")]
pub struct SubscriptionChanged {
    pub user_id: i64,
    pub post_id: i64,
    pub subscribed: bool,
}

impl Handler<SubscriptionChanged> for SessionRegistry {
    type Result = ();

    fn handle(&mut self, msg: SubscriptionChanged, _: &mut Self::Context) {
        if msg.subscribed {
            self.subscribers
                .entry(msg.post_id)
                .or_default()
                .insert(msg.user_id);
        } else if let Some(users) = self.subscribers.get_mut(&msg.post_id) {
            users.remove(&msg.user_id);
            if users.is_empty() {
                self.subscribers.remove(&msg.post_id);
            }
        }
    }
}

/// Logged events to deliver to whoever of their users is online here.
#[derive(Message, Clone)]
#[rtype(result = "()")]
pub struct Deliver(pub Vec<UserEvent>);

impl Handler<Deliver> for SessionRegistry {
    type Result = ();

    fn handle(&mut self, msg: Deliver, _: &mut Self::Context) {
        let mut by_user: HashMap<i64, Vec<UserEvent>> = HashMap::new();
        for event in msg.0 {
            if self.sessions.contains_key(&event.user_id) {
                by_user.entry(event.user_id).or_default().push(event);
            }
        }
        for (user_id, events) in by_user {
            if let Some(Entry { addr, .. }) = self.sessions.get(&user_id) {
                // A session whose mailbox is full fills the gap from the log on its next event.
                let _ = addr.try_send(Push(events));
            }
        }
    }
}

/// A pulled author's new post: the herald logs it for whoever of the users
/// online here follows the author. The registry only names them, so its
/// mailbox never waits on the database.
impl Handler<PulledPost> for SessionRegistry {
    type Result = ();

    fn handle(&mut self, msg: PulledPost, _: &mut Self::Context) {
        if self.sessions.is_empty() {
            return;
        }
        let online: Vec<i64> = self.sessions.keys().copied().collect();
        let post_id = msg.post_id;
        if self.herald.try_send(Tell { post: msg, online }).is_err() {
            tracing::warn!(
                post_id,
                "herald mailbox full; a pulled post reaches the followers online here through their feed only"
            );
        }
    }
}

/// Users whose newest events are in the log but will come on no bus
/// message (another node logged them): their sessions read the log.
#[derive(Message)]
#[rtype(result = "()")]
pub struct FromLog(pub Vec<i64>);

impl Handler<FromLog> for SessionRegistry {
    type Result = ();

    fn handle(&mut self, msg: FromLog, _: &mut Self::Context) {
        for user_id in msg.0 {
            if let Some(entry) = self.sessions.get(&user_id) {
                let _ = entry.addr.try_send(CatchUp);
            }
        }
    }
}

/// The kind of the last activity about a post: it was deleted.
pub const POST_DELETED: &str = "post.deleted";

/// Something happened to a post (counters, a comment): tell its subscribers
/// who may still see it (see [`crate::delivery::watch`]).
#[derive(Message, Clone)]
#[rtype(result = "()")]
pub struct Activity {
    pub post_id: i64,
    /// The user whose action this is (a comment's author), when a block
    /// between them and a subscriber must keep it from that subscriber.
    pub by: Option<i64>,
    pub kind: String,
    pub data: serde_json::Value,
}

impl Handler<Activity> for SessionRegistry {
    type Result = ();

    fn handle(&mut self, msg: Activity, _: &mut Self::Context) {
        let Some(users) = self.subscribers.get(&msg.post_id) else {
            return;
        };
        let watchers: Vec<(i64, Addr<SessionActor>)> = users
            .iter()
            .filter_map(|user_id| Some((*user_id, self.sessions.get(user_id)?.addr.clone())))
            .collect();
        if watchers.is_empty() {
            return;
        }
        // A full gate drops the activity: it is ephemeral (see `bus`).
        let _ = self.gate.try_send(Screen {
            activity: msg,
            watchers,
        });
    }
}

/// A user's credentials were revoked: close the connections that used them
/// (all of the user's, or those opened with one API key).
#[derive(Message, Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[rtype(result = "()")]
pub struct Revoke {
    pub user_id: i64,
    pub api_key_id: Option<i64>,
}

impl Handler<Revoke> for SessionRegistry {
    type Result = ();

    fn handle(&mut self, msg: Revoke, _: &mut Self::Context) {
        if let Some(entry) = self.sessions.get(&msg.user_id) {
            entry.addr.do_send(CloseRevoked {
                api_key_id: msg.api_key_id,
            });
        }
    }
}

/// This node may have missed revocations on the bus (it was resubscribing):
/// every online user's connections are checked against the credentials the
/// database has now, and those no longer valid close.
#[derive(Message)]
#[rtype(result = "()")]
pub struct Recheck;

impl Handler<Recheck> for SessionRegistry {
    type Result = ();

    fn handle(&mut self, _: Recheck, ctx: &mut Self::Context) {
        let sessions: Vec<(i64, Addr<SessionActor>)> = self
            .sessions
            .iter()
            .map(|(id, e)| (*id, e.addr.clone()))
            .collect();
        if sessions.is_empty() {
            return;
        }
        let db = self.db.clone();
        ctx.spawn(
            async move {
                let ids: Vec<i64> = sessions.iter().map(|(id, _)| *id).collect();
                let current = match credentials(&db, &ids).await {
                    Ok(rows) => rows,
                    Err(e) => {
                        tracing::warn!(error = %e, "credential recheck failed");
                        return;
                    }
                };
                for (user_id, session) in sessions {
                    // A user the database does not know is closed too.
                    let stale = current.get(&user_id).cloned().unwrap_or(CloseStale {
                        active: false,
                        token_version: 0,
                        api_keys: Vec::new(),
                    });
                    session.do_send(stale);
                }
            }
            .into_actor(self),
        );
    }
}

/// Each user's account state, token version and API keys, now.
async fn credentials(db: &PgPool, ids: &[i64]) -> Result<HashMap<i64, CloseStale>, sqlx::Error> {
    let rows = sqlx::query!(
        r#"SELECT u.id, u.status = 'active' AS "active!", u.token_version,
                  ARRAY(SELECT k.id FROM api_keys k WHERE k.user_id = u.id) AS "api_keys!"
           FROM users u WHERE u.id = ANY($1)"#,
        ids
    )
    .fetch_all(db)
    .await?;
    Ok(rows
        .into_iter()
        .map(|r| {
            let current = CloseStale {
                active: r.active,
                token_version: r.token_version,
                api_keys: r.api_keys,
            };
            (r.id, current)
        })
        .collect())
}

/// Who of these users has a connection on this node.
#[derive(Message)]
#[rtype(result = "usize")]
pub struct OnlineCount;

impl Handler<OnlineCount> for SessionRegistry {
    type Result = usize;

    fn handle(&mut self, _: OnlineCount, _: &mut Self::Context) -> usize {
        self.sessions
            .values()
            .filter(|e| e.addr.connected())
            .count()
    }
}

/// Server shutdown: every connection gets close 1001 (going away).
#[derive(Message)]
#[rtype(result = "()")]
pub struct Shutdown;

impl Handler<Shutdown> for SessionRegistry {
    type Result = ();

    fn handle(&mut self, _: Shutdown, _: &mut Self::Context) {
        for entry in self.sessions.values() {
            entry.addr.do_send(CloseAll(CloseCode::Away));
        }
    }
}
