//! What a client asks of its session over the WebSocket: pings, and live
//! subscriptions to posts (checked against the visibility rule when made,
//! and again by the gate on every delivery: see [`crate::delivery::watch`]).

use actix::prelude::*;

use super::{ByteStringEvent, SessionActor};
use crate::delivery::log::UserEvent;
use crate::delivery::protocol::{self, ClientMessage, MAX_SUBSCRIPTIONS};
use crate::delivery::registry::SubscriptionChanged;
use crate::delivery::watch;

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
pub(super) struct ClientText {
    pub(super) conn_id: u64,
    pub(super) text: String,
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
