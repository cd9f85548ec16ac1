//! Live post subscriptions (`{"type":"subscribe","post_id":N}`) and the rule
//! that guards them: a viewer hears of a post only while they may read it.
//!
//! The rule is the REST reads' own, the database's `visible_posts` (see the
//! visibility migration): the post is not deleted, and either the viewer
//! wrote it, or it is not hidden by moderation, its author is active and no
//! block stands between the two, either way. An activity that one user
//! caused (a comment) also skips viewers who may not see that user. It is checked when a client subscribes and again on every delivery,
//! by each node against the database, so a block or a hide made after
//! subscribing stops delivery at once, on every node, with no message of its
//! own to lose.

use actix::prelude::*;
use sqlx::PgPool;

use crate::delivery::registry::Activity;
use crate::delivery::session::{Revoked, SessionActor};

/// What one viewer may be told about one post.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Sight {
    pub viewer: i64,
    /// The viewer may read the post.
    pub post: bool,
    /// The user behind the activity is not one the viewer may see (a block
    /// either way, or an inactive account).
    pub actor_blocked: bool,
}

/// Which of `viewers` may see `post_id`; with `actor`, whether each is in a
/// block relation with that user. `deleted_ok` lets a deleted post pass (to
/// announce the deletion itself to those who could read it).
pub async fn sight(
    db: &PgPool,
    post_id: i64,
    viewers: &[i64],
    actor: Option<i64>,
    deleted_ok: bool,
) -> Result<Vec<Sight>, sqlx::Error> {
    // The rule is the database's (`visible_posts`, `visible_users`); a
    // deleted post only needs its author still visible, to announce the
    // deletion.
    let rows = sqlx::query!(
        r#"SELECT v.id AS "viewer!",
                  CASE WHEN $4
                       THEN EXISTS (SELECT 1 FROM posts p JOIN visible_users(v.id) u ON u.id = p.author_id
                                    WHERE p.id = $1)
                       ELSE EXISTS (SELECT 1 FROM visible_posts(v.id) p WHERE p.id = $1)
                  END AS "post!",
                  ($3::bigint IS NOT NULL
                   AND NOT EXISTS (SELECT 1 FROM visible_users(v.id) u WHERE u.id = $3)) AS "actor_blocked!"
           FROM unnest($2::bigint[]) AS v(id)"#,
        post_id,
        viewers,
        actor as Option<i64>,
        deleted_ok
    )
    .fetch_all(db)
    .await?;
    Ok(rows
        .into_iter()
        .map(|r| Sight {
            viewer: r.viewer,
            post: r.post,
            actor_blocked: r.actor_blocked,
        })
        .collect())
}

/// Screens post activity against the rule before it reaches the sessions
/// subscribed to the post on this node. One activity at a time, so a post's
/// events keep their order (a comment before the counters it changed).
pub struct Gate {
    db: PgPool,
}

impl Gate {
    pub fn new(db: PgPool) -> Self {
        Self { db }
    }
}

impl Actor for Gate {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        // Activity is ephemeral: beyond this backlog it is dropped (see `bus`).
        ctx.set_mailbox_capacity(4096);
    }
}

/// An activity and the sessions on this node subscribed to its post.
#[derive(Message)]
#[rtype(result = "()")]
pub struct Screen {
    pub activity: Activity,
    pub watchers: Vec<(i64, Addr<SessionActor>)>,
}

impl Handler<Screen> for Gate {
    type Result = ();

    fn handle(&mut self, msg: Screen, ctx: &mut Self::Context) {
        let db = self.db.clone();
        let viewers: Vec<i64> = msg.watchers.iter().map(|(id, _)| *id).collect();
        let Activity {
            post_id,
            by,
            ref kind,
            ..
        } = msg.activity;
        let deleted_ok = kind == crate::delivery::registry::POST_DELETED;
        let check = async move { sight(&db, post_id, &viewers, by, deleted_ok).await };
        // `wait`: the next activity is screened only after this one went out.
        ctx.wait(check.into_actor(self).map(move |result, _, _| {
            let sights = match result {
                Ok(s) => s,
                Err(e) => {
                    // Fail closed: an activity nobody could be checked for reaches nobody.
                    tracing::warn!(post_id, error = %e, "post activity dropped: visibility check failed");
                    return;
                }
            };
            let ended = msg.activity.kind == crate::delivery::registry::POST_DELETED;
            for (viewer, session) in &msg.watchers {
                let Some(sight) = sights.iter().find(|s| s.viewer == *viewer) else {
                    continue;
                };
                if sight.post && !sight.actor_blocked {
                    let event = crate::delivery::log::UserEvent::ephemeral(
                        *viewer,
                        &msg.activity.kind,
                        msg.activity.data.clone(),
                    );
                    let _ = session.try_send(crate::delivery::session::PostActivity { post_id, event });
                }
                if !sight.post || ended {
                    // Nothing more about this post will reach this viewer.
                    session.do_send(Revoked { post_id });
                }
            }
        }));
    }
}
