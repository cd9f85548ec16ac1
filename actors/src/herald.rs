//! Live delivery of posts by pulled authors: those with more followers than
//! `FANOUT_LIMIT`, whose posts are merged into timelines on read and never
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

use crate::log::{self, Recipients, UserEvent};
use crate::registry::{Deliver, FromLog, SessionRegistry};

/// Posts waiting for this node's herald; beyond this, the followers online
/// here find them in their feed only.
const MAILBOX: usize = 256;
/// How long a post's `feed_pull_told` rows are kept: far longer than any
/// node takes to act on it.
const KEEP: Duration = Duration::from_secs(3600);
const PRUNE_EVERY: Duration = Duration::from_secs(600);
/// Tries of one post's transaction when it loses a deadlock.
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
        let db = self.db.clone();
        let post_id = msg.post.post_id;
        let started = std::time::Instant::now();
        let work = async move { tell(&db, &msg.post, msg.online).await };
        // `wait`: one post at a time, so a burst of them queues here (bounded)
        // rather than holding many transactions' locks on the same users.
        ctx.wait(work.into_actor(self).map(move |result, act, _| {
            let told = match result {
                Ok(told) => told,
                Err(e) => {
                    // Nothing was committed: the followers find the post in their feed.
                    tracing::warn!(post_id, error = %e, "pulled post not told live");
                    return;
                }
            };
            tracing::debug!(
                post_id,
                logged = told.events.len(),
                elsewhere = told.elsewhere.len(),
                elapsed_us = started.elapsed().as_micros(),
                "pulled post told"
            );
            // Data, like any batch's events: a full registry drops them, the log keeps them.
            if !told.events.is_empty() && act.registry.try_send(Deliver(told.events)).is_err() {
                tracing::warn!(
                    "session registry mailbox full; live events dropped, the log keeps them"
                );
            }
            if !told.elsewhere.is_empty() {
                let _ = act.registry.try_send(FromLog(told.elsewhere));
            }
        }));
    }
}

/// What telling one post did on this node.
struct Told {
    /// Logged here, for the followers online here.
    events: Vec<UserEvent>,
    /// Followers online here for whom another node logged it first (they are
    /// online there too): their sessions here read it from the log.
    elsewhere: Vec<i64>,
}

async fn tell(db: &PgPool, post: &PulledPost, mut online: Vec<i64>) -> Result<Told, sqlx::Error> {
    // One order for every node's locks on the same users (the claim rows,
    // then the stream counters), as the feed supervisor's steps take them.
    online.sort_unstable();
    online.dedup();
    let mut tries = 0;
    loop {
        tries += 1;
        match try_tell(db, post, &online).await {
            Err(e) if tries < TRIES && is_deadlock(&e) => continue,
            result => return result,
        }
    }
}

fn is_deadlock(e: &sqlx::Error) -> bool {
    matches!(e, sqlx::Error::Database(db) if db.code().is_some_and(|c| c == "40P01" || c == "40001"))
}

async fn try_tell(db: &PgPool, post: &PulledPost, online: &[i64]) -> Result<Told, sqlx::Error> {
    let mut tx = db.begin().await?;
    // The followers among `online` (a block removes the follow), while the
    // post is still visible, each claimed for this node. A follower whose
    // claim another node holds is waited for until that node commits, so
    // its event is in the log by the time this answers.
    let rows = sqlx::query!(
        r#"WITH followers AS (
               SELECT f.follower_id FROM follows f
               WHERE f.followee_id = $1 AND f.follower_id = ANY($2)
                 AND EXISTS (SELECT 1 FROM posts p
                             WHERE p.id = $3 AND p.author_id = $1
                               AND p.deleted_at IS NULL AND p.hidden_at IS NULL)
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
        online,
        post.post_id
    )
    .fetch_all(&mut *tx)
    .await?;
    let (here, elsewhere): (Vec<_>, Vec<_>) = rows.into_iter().partition(|r| r.here);
    let here: Vec<i64> = here.into_iter().map(|r| r.user_id).collect();
    let elsewhere: Vec<i64> = elsewhere.into_iter().map(|r| r.user_id).collect();
    let events = log::append(&mut tx, Recipients::Users(&here), "feed.post", &post.data).await?;
    tx.commit().await?;
    Ok(Told { events, elsewhere })
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
