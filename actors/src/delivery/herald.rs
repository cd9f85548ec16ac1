//! Live delivery of posts by pulled authors: those with more followers than
//! `ROOKERY_FANOUT_LIMIT`, whose posts are merged into timelines on read and never
//! written out. The feed supervisor announces such a post on the bus as a
//! [`PulledPost`]; on every node, the registry hands it with the users online
//! there to that node's `Herald`, which logs a `feed.post` for those of them
//! who follow the author and gives the events back to the registry to
//! deliver. Nothing is published again: each node tells its own.
//!
//! So the event is in the log, with the next gapless id, of the followers
//! online at the time, and replays for them on reconnect; a follower offline
//! then gets no event and finds the post in the feed. Owns `feed_pull_told`.

use std::time::Duration;

use actix::prelude::*;
use serde::{Deserialize, Serialize};
use sqlx::PgPool;

use crate::delivery::log::{self, Recipients, UserEvent};
use crate::delivery::registry::{Deliver, FromLog, SessionRegistry};

/// Posts waiting for this node's herald; beyond this, the followers online
/// here find them in their feed only.
const MAILBOX: usize = 256;
/// How long a post's `feed_pull_told` rows are kept: far longer than any
/// node takes to act on it.
const KEEP: Duration = Duration::from_secs(3600);
const PRUNE_EVERY: Duration = Duration::from_secs(600);
/// Followers logged per step (one transaction, then delivered).
const STEP: usize = 5_000;
/// Tries of one step's transaction when it loses a deadlock (or a
/// serialization failure): the steps take their locks in user order, but
/// other writers to the same users' logs may not.
const TRIES: u32 = 3;

/// A new post by a pulled author that passed moderation, as the feed
/// supervisor announces it to every node.
#[derive(Message, Clone, Debug, PartialEq, Serialize, Deserialize)]
#[rtype(result = "()")]
pub struct PulledPost {
    pub post_id: i64,
    pub author_id: i64,
    /// The `feed.post` event's data (see `feed::post_summary`).
    pub data: serde_json::Value,
}

/// Logs pulled authors' posts for the followers online on this node, one
/// post at a time, off the registry's mailbox.
pub struct Herald {
    db: PgPool,
    registry: Addr<SessionRegistry>,
}

impl Herald {
    pub fn new(db: PgPool, registry: Addr<SessionRegistry>) -> Self {
        Self { db, registry }
    }
}

impl Actor for Herald {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        ctx.set_mailbox_capacity(MAILBOX);
        ctx.run_interval(PRUNE_EVERY, |act, ctx| {
            let db = act.db.clone();
            ctx.spawn(
                async move {
                    if let Err(e) = prune(&db).await {
                        tracing::warn!(error = %e, "feed_pull_told pruning failed");
                    }
                }
                .into_actor(act),
            );
        });
    }
}

/// A pulled post, and the users with a session on this node when it came.
#[derive(Message)]
#[rtype(result = "()")]
pub struct Tell {
    pub post: PulledPost,
    pub online: Vec<i64>,
}

impl Handler<Tell> for Herald {
    type Result = ();

    fn handle(&mut self, msg: Tell, ctx: &mut Self::Context) {
        let (db, registry) = (self.db.clone(), self.registry.clone());
        let post_id = msg.post.post_id;
        let started = std::time::Instant::now();
        let work = async move { tell(&db, &registry, &msg.post, msg.online).await };
        // `wait`: one post at a time, so a burst of them queues here (bounded)
        // rather than holding many transactions' locks on the same users.
        ctx.wait(work.into_actor(self).map(move |result, _, _| match result {
            Ok(told) => tracing::debug!(
                post_id,
                logged = told.logged,
                elsewhere = told.elsewhere,
                steps = told.steps,
                elapsed_us = started.elapsed().as_micros(),
                "pulled post told"
            ),
            // What was committed went out; the rest of the followers find
            // the post in their feed.
            Err(e) => tracing::warn!(post_id, error = %e, "pulled post not told live to all"),
        }));
    }
}

/// What telling one post did on this node, for the log.
#[derive(Default)]
struct Told {
    /// Followers it was logged for here.
    logged: usize,
    /// Followers online here for whom another node logged it first.
    elsewhere: usize,
    steps: usize,
}

/// Logs the post for the followers among `online`, [`STEP`] at a
/// time, each step committed and handed to the registry before the next,
/// so the first followers do not wait for the last ones' writes (the
/// delivery of one step overlaps the next step's write).
async fn tell(
    db: &PgPool,
    registry: &Addr<SessionRegistry>,
    post: &PulledPost,
    online: Vec<i64>,
) -> Result<Told, sqlx::Error> {
    // In id order: every node's locks on the same users (the claim rows,
    // then the stream counters) come in one order, as the feed
    // supervisor's steps take them.
    let followers = sqlx::query_scalar!(
        "SELECT follower_id FROM follows WHERE followee_id = $1 AND follower_id = ANY($2)
         ORDER BY follower_id",
        post.author_id,
        &online
    )
    .fetch_all(db)
    .await?;
    let mut told = Told::default();
    for step in followers.chunks(STEP) {
        let mut tries = 0;
        let (events, elsewhere) = loop {
            tries += 1;
            match tell_step(db, post, step).await {
                Err(e) if tries < TRIES && is_deadlock(&e) => continue,
                result => break result?,
            }
        };
        told.steps += 1;
        told.logged += events.len();
        told.elsewhere += elsewhere.len();
        // Data, like any batch's events: a full registry drops them, the log keeps them.
        if !events.is_empty() && registry.try_send(Deliver(events)).is_err() {
            tracing::warn!(
                "session registry mailbox full; live events dropped, the log keeps them"
            );
        }
        if !elsewhere.is_empty() {
            let _ = registry.try_send(FromLog(elsewhere));
        }
    }
    Ok(told)
}

fn is_deadlock(e: &sqlx::Error) -> bool {
    matches!(e, sqlx::Error::Database(db) if db.code().is_some_and(|c| c == "40P01" || c == "40001"))
}

/// One step: the followers of `step` who still follow, while the post is
/// still visible, claimed for this node, logged and committed. Returns the
/// events logged here and the followers another node had claimed: its
/// claim is waited for until that node commits, so their event is in the
/// log by the time this answers.
async fn tell_step(
    db: &PgPool,
    post: &PulledPost,
    step: &[i64],
) -> Result<(Vec<UserEvent>, Vec<i64>), sqlx::Error> {
    let mut tx = db.begin().await?;
    let rows = sqlx::query!(
        r#"WITH followers AS (
               SELECT f.follower_id FROM follows f
               WHERE f.followee_id = $1 AND f.follower_id = ANY($2)
                 -- The post as anyone may see it (the visibility rule, for no
                 -- viewer): not deleted or hidden, its author active.
                 AND EXISTS (SELECT 1 FROM visible_posts(NULL) p WHERE p.id = $3 AND p.author_id = $1)
           ), claimed AS (
               INSERT INTO feed_pull_told (post_id, user_id)
               SELECT $3, follower_id FROM followers ORDER BY follower_id
               ON CONFLICT DO NOTHING
               RETURNING user_id
           )
           SELECT f.follower_id AS "user_id!", (c.user_id IS NOT NULL) AS "here!"
           FROM followers f LEFT JOIN claimed c ON c.user_id = f.follower_id
           ORDER BY f.follower_id"#,
        post.author_id,
        step,
        post.post_id
    )
    .fetch_all(&mut *tx)
    .await?;
    let (here, elsewhere): (Vec<_>, Vec<_>) = rows.into_iter().partition(|r| r.here);
    let here: Vec<i64> = here.into_iter().map(|r| r.user_id).collect();
    let elsewhere: Vec<i64> = elsewhere.into_iter().map(|r| r.user_id).collect();
    let events = log::append(&mut tx, Recipients::Users(&here), "feed.post", &post.data).await?;
    tx.commit().await?;
    Ok((events, elsewhere))
}

/// Deletes claims older than [`KEEP`].
async fn prune(db: &PgPool) -> Result<u64, sqlx::Error> {
    let keep_secs = KEEP.as_secs_f64();
    Ok(sqlx::query!(
        "DELETE FROM feed_pull_told WHERE told_at < now() - make_interval(secs => $1)",
        keep_secs
    )
    .execute(db)
    .await?
    .rows_affected())
}
