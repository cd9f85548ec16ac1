//! Home timelines. The feed supervisor writes each new post into its
//! followers' timelines (fan-out on write), except for authors with more than
//! `fanout_limit` followers, whose posts are merged in when timelines are
//! read; those it announces to every node, which tells the followers online
//! there (see [`crate::delivery::herald`]). Owns `timelines` and `feed_pull_authors`.
//!
//! Reads re-check every rule (the follow still stands, the post is not
//! deleted, no block), so the supervisor running behind never shows a reader
//! something it should not see.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sqlx::{PgConnection, PgPool};

use crate::consumers::supervisor::{EventHandler, Work};
use crate::delivery::herald::PulledPost;
use crate::delivery::log::Recipients;
use crate::delivery::registry::{Activity, POST_DELETED};
use crate::outbox::events::DomainEvent;
use crate::outbox::{self, ConsumerKind};
use serde_json::json;

/// Posts a new follow brings into the follower's timeline at once.
const BACKFILL: i64 = 100;
/// Followers told of a new post per step. The first of them hear of it
/// after one step's write instead of after all of them; on the bench
/// database the log append for 10,000 followers took 175 to 200 ms alone
/// and about 400 ms under load.
pub const FANOUT_CHUNK: i64 = 1000;

#[derive(Clone)]
pub struct FeedHandler {
    pub fanout_limit: i64,
    /// How long a new post's timeline write waits after its last live step,
    /// when the fan-out took more than one step. The followers online have
    /// the post by then; the write is for those who open their feed later.
    /// Run at once, its bulk insert (300 to 400 ms for 10,000 followers on
    /// the bench database, on two cores shared with the delivery) was what
    /// made the slowest followers late.
    pub timeline_write_delay: std::time::Duration,
}

impl EventHandler for FeedHandler {
    const KIND: ConsumerKind = ConsumerKind::Feed;

    async fn apply(&self, work: &mut Work<'_>, event: &DomainEvent) -> Result<(), sqlx::Error> {
        self.handle(work, event).await?;
        // What changed the timelines (written out, taken out, or an author
        // newly merged on read) is announced again once it commits, so the
        // caches of pages of ids forget them then too.
        if matches!(
            event,
            DomainEvent::PostCreated { .. }
                | DomainEvent::TimelineWrite { .. }
                | DomainEvent::PostDeleted { .. }
                | DomainEvent::Followed { .. }
                | DomainEvent::Unfollowed { .. }
                | DomainEvent::Blocked { .. }
        ) {
            work.announced.changed.push(event.clone());
        }
        Ok(())
    }
}

impl FeedHandler {
    async fn handle(&self, work: &mut Work<'_>, event: &DomainEvent) -> Result<(), sqlx::Error> {
        let tx = &mut *work.tx;
        match *event {
            DomainEvent::PostCreated { post_id, author_id } => {
                if self.is_pulled(tx, author_id).await? {
                    // Not written out, nor logged here: only the nodes know
                    // who is online. Hidden or deleted: nobody is told.
                    if let Some(data) = post_summary(tx, post_id).await? {
                        work.announced.pulled.push(PulledPost {
                            post_id,
                            author_id,
                            data,
                        });
                    }
                    return Ok(());
                }
                self.fan_out(work, post_id, author_id, 0).await
            }
            DomainEvent::FanOut {
                post_id,
                author_id,
                after,
            } => self.fan_out(work, post_id, author_id, after).await,
            DomainEvent::TimelineWrite { post_id, author_id } => {
                self.write_timelines(tx, post_id, author_id).await
            }
            DomainEvent::PostEdited { post_id, .. } => {
                if let Some(data) = post_summary(tx, post_id).await? {
                    work.announced.activity.push(Activity {
                        post_id,
                        by: None,
                        kind: "post.updated".into(),
                        data,
                    });
                }
                Ok(())
            }
            DomainEvent::PostDeleted { post_id, author_id } => {
                // Only the author's followers hold the post (an unfollow or a
                // block takes an author's rows out), so each row is found by
                // its primary key; by `post_id` alone it would be a scan of
                // every timeline.
                sqlx::query!(
                    "DELETE FROM timelines t USING follows f
                     WHERE f.followee_id = $2 AND t.user_id = f.follower_id AND t.post_id = $1",
                    post_id,
                    author_id
                )
                .execute(&mut *tx)
                .await?;
                work.announced.activity.push(Activity {
                    post_id,
                    by: None,
                    kind: POST_DELETED.into(),
                    data: json!({ "post_id": post_id }),
                });
                Ok(())
            }
            DomainEvent::ReactionAdded { post_id, .. } => {
                work.announced.activity.push(counters(tx, post_id).await?);
                Ok(())
            }
            DomainEvent::CommentCreated {
                comment_id,
                post_id,
                author_id,
                ..
            } => {
                // The comment itself, as moderation left it; who may see it
                // (the post's visibility to each subscriber, blocks with its
                // author) the gate decides at delivery.
                let text = sqlx::query_scalar!(
                    "SELECT text FROM comments WHERE id = $1 AND deleted_at IS NULL AND hidden_at IS NULL",
                    comment_id
                )
                .fetch_optional(&mut *tx)
                .await?;
                if let Some(text) = text {
                    work.announced.activity.push(Activity {
                        post_id,
                        by: Some(author_id),
                        kind: "comment.created".into(),
                        data: json!({ "comment_id": comment_id, "post_id": post_id, "author_id": author_id, "text": text }),
                    });
                }
                work.announced.activity.push(counters(tx, post_id).await?);
                Ok(())
            }
            DomainEvent::Followed {
                follower_id,
                followee_id,
            } => self.backfill(tx, follower_id, followee_id).await,
            DomainEvent::Unfollowed {
                follower_id,
                followee_id,
            } => {
                sqlx::query!(
                    "DELETE FROM timelines WHERE user_id = $1 AND author_id = $2",
                    follower_id,
                    followee_id
                )
                .execute(&mut *tx)
                .await?;
                Ok(())
            }
            DomainEvent::Blocked {
                blocker_id,
                blocked_id,
            } => {
                sqlx::query!(
                    "DELETE FROM timelines WHERE (user_id = $1 AND author_id = $2) OR (user_id = $2 AND author_id = $1)",
                    blocker_id,
                    blocked_id
                )
                .execute(&mut *tx)
                .await?;
                Ok(())
            }
            _ => Ok(()),
        }
    }

    /// Whether `author_id`'s posts are merged on read rather than written out;
    /// decides (and records) it when the author passes the limit.
    async fn is_pulled(&self, tx: &mut PgConnection, author_id: i64) -> Result<bool, sqlx::Error> {
        let marked = sqlx::query_scalar!(
            r#"SELECT EXISTS (SELECT 1 FROM feed_pull_authors WHERE user_id = $1) AS "pull!""#,
            author_id
        )
        .fetch_one(&mut *tx)
        .await?;
        if marked {
            return Ok(true);
        }
        // Counting stops just past the limit: a celebrity's millions are never scanned.
        let followers = sqlx::query_scalar!(
            r#"SELECT count(*) AS "n!" FROM (SELECT 1 FROM follows WHERE followee_id = $1 LIMIT $2) f"#,
            author_id,
            self.fanout_limit + 1
        )
        .fetch_one(&mut *tx)
        .await?;
        if followers > self.fanout_limit {
            sqlx::query!(
                "INSERT INTO feed_pull_authors (user_id) VALUES ($1) ON CONFLICT DO NOTHING",
                author_id
            )
            .execute(&mut *tx)
            .await?;
            return Ok(true);
        }
        Ok(false)
    }

    /// A new follow brings the followee's recent posts into the timeline at once.
    async fn backfill(
        &self,
        tx: &mut PgConnection,
        follower_id: i64,
        followee_id: i64,
    ) -> Result<(), sqlx::Error> {
        if self.is_pulled(tx, followee_id).await? {
            return Ok(());
        }
        sqlx::query!(
            "INSERT INTO timelines (user_id, post_id, author_id)
             SELECT $1, p.id, p.author_id FROM posts p
             WHERE p.author_id = $2 AND p.deleted_at IS NULL
               AND EXISTS (SELECT 1 FROM follows f WHERE f.follower_id = $1 AND f.followee_id = $2)
             ORDER BY p.id DESC LIMIT $3
             ON CONFLICT DO NOTHING",
            follower_id,
            followee_id,
            BACKFILL
        )
        .execute(&mut *tx)
        .await?;
        Ok(())
    }

    /// Tells the next chunk of followers (ids above `after`) of a new post,
    /// then records the next step: the next chunk or, after the last, the
    /// timeline write. Each step is committed with its successor, so a crash
    /// neither repeats nor loses one.
    async fn fan_out(
        &self,
        work: &mut Work<'_>,
        post_id: i64,
        author_id: i64,
        after: i64,
    ) -> Result<(), sqlx::Error> {
        // Live first: the followers' event logs need only the follow list.
        // The timeline rows, slow to write into a large table (1.8 s for
        // 10,000 followers on the bench database), come last, as their own step.
        let Some(data) = post_summary(work.tx, post_id).await? else {
            // Hidden or deleted: nobody is told live. The timeline step still
            // runs (it skips deleted posts; reads hide hidden ones until an
            // edit restores them).
            outbox::record(work.tx, &DomainEvent::TimelineWrite { post_id, author_id }).await?;
            work.more = true;
            return Ok(());
        };
        let followers = Recipients::Followers {
            author_id,
            after,
            limit: FANOUT_CHUNK,
        };
        let logged = work.log(followers, "feed.post", &data).await?;
        let reached = logged.len();
        let last = logged.last().map(|e| e.user_id);
        match last {
            Some(last) if i64::try_from(reached).unwrap_or(0) >= FANOUT_CHUNK => {
                let next = DomainEvent::FanOut {
                    post_id,
                    author_id,
                    after: last,
                };
                outbox::record(work.tx, &next).await?;
                work.more = true;
            }
            _ => {
                // One step's worth of rows is written at once, so a follower
                // who reloads the feed on the live event finds the post. A
                // larger write waits (see `timeline_write_delay`). It reads
                // the follows and the post as they are when it runs, so
                // events handled in the meantime (a delete, an unfollow)
                // cannot be undone by it.
                let delay = if after == 0 {
                    std::time::Duration::ZERO
                } else {
                    self.timeline_write_delay
                };
                let write = DomainEvent::TimelineWrite { post_id, author_id };
                outbox::record_after(work.tx, &write, delay).await?;
                // A delayed write is picked up by the poll once its wait is over.
                work.more |= delay.is_zero();
            }
        }
        Ok(())
    }

    /// Writes a new post into its author's followers' timelines.
    async fn write_timelines(
        &self,
        tx: &mut PgConnection,
        post_id: i64,
        author_id: i64,
    ) -> Result<(), sqlx::Error> {
        // One statement: Postgres writes the whole batch.
        sqlx::query!(
            "INSERT INTO timelines (user_id, post_id, author_id)
             SELECT f.follower_id, p.id, p.author_id FROM follows f JOIN posts p ON p.id = $1
             WHERE f.followee_id = $2 AND p.deleted_at IS NULL
             ON CONFLICT DO NOTHING",
            post_id,
            author_id
        )
        .execute(&mut *tx)
        .await?;
        Ok(())
    }
}

/// What a `feed.post` or `post.updated` event carries: enough to show the
/// post. `None` when nobody may see it (`visible_posts` as an anonymous
/// viewer: deleted, hidden by moderation, or by an inactive author): nothing
/// is pushed. Per-viewer blocks are screened at delivery.
async fn post_summary(
    tx: &mut PgConnection,
    post_id: i64,
) -> Result<Option<serde_json::Value>, sqlx::Error> {
    let row = sqlx::query!(
        "SELECT p.id, p.text, p.created_at, p.edited_at, u.id AS author_id, u.username, u.display_name
         FROM visible_posts(NULL) p JOIN users u ON u.id = p.author_id
         WHERE p.id = $1",
        post_id
    )
    .fetch_optional(&mut *tx)
    .await?;
    Ok(row.map(|r| {
        json!({
            "post_id": r.id,
            "text": r.text,
            "created_at": r.created_at,
            "edited_at": r.edited_at,
            "author": { "id": r.author_id, "username": r.username, "display_name": r.display_name },
        })
    }))
}

/// A `post.counters` activity: the live counters of a post.
async fn counters(tx: &mut PgConnection, post_id: i64) -> Result<Activity, sqlx::Error> {
    let totals = sqlx::query!(
        "SELECT comments_count, views_count, reactions_count FROM posts WHERE id = $1",
        post_id
    )
    .fetch_optional(&mut *tx)
    .await?;
    let kinds = sqlx::query!(
        r#"SELECT kind AS "kind: crate::ReactionKind", count(*) AS "n!" FROM reactions WHERE post_id = $1 GROUP BY kind"#,
        post_id
    )
    .fetch_all(&mut *tx)
    .await?;
    let reactions: serde_json::Map<String, serde_json::Value> = kinds
        .into_iter()
        .map(|k| {
            (
                json!(k.kind).as_str().unwrap_or_default().to_owned(),
                json!(k.n),
            )
        })
        .collect();
    Ok(Activity {
        post_id,
        by: None,
        kind: "post.counters".into(),
        data: json!({
            "post_id": post_id,
            "comments": totals.as_ref().map_or(0, |t| t.comments_count),
            "views": totals.as_ref().map_or(0, |t| t.views_count),
            "reactions": reactions,
            "reactions_total": totals.as_ref().map_or(0, |t| t.reactions_count),
        }),
    })
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum FeedOrder {
    Latest,
    Popular,
}

/// The sort key of a feed page's last item, for the next page.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct FeedKey {
    pub id: i64,
    /// Only for `popular`: the reaction count the item was ranked by.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub r: Option<i64>,
}

pub struct FeedRow {
    pub id: i64,
    pub reactions_count: i64,
    pub created_at: DateTime<Utc>,
}

/// Up to `limit` post ids of `user_id`'s home feed after `after`: the posts of
/// the people they follow and their own, visible to them.
///
/// Every branch repeats `p.deleted_at IS NULL` although the outer query checks
/// it too: it lets Postgres use the partial index `posts_author_idx`; without
/// it the own-posts branch scanned all of `posts` (100 ms at 1,000,000 posts).
pub async fn page(
    db: &PgPool,
    user_id: i64,
    order: FeedOrder,
    after: Option<FeedKey>,
    limit: i64,
) -> Result<Vec<FeedRow>, sqlx::Error> {
    match order {
        FeedOrder::Latest => {
            sqlx::query_as!(
                FeedRow,
                // Each branch reads through the visibility rule
                // (`visible_posts`) and stops at the page size, walking its
                // index newest first, so a page reads about `limit` rows per
                // branch however long the timeline is. (A block removes
                // follows both ways, so the follow joins also keep blocked
                // authors out; the rule checks again.)
                r#"WITH timeline AS (
                     SELECT p.id, p.reactions_count, p.created_at
                     -- Fenced (OFFSET 0), so the plan walks the timeline's
                     -- primary key newest first and stops at the page size,
                     -- rather than joining all of it and sorting.
                     FROM (SELECT post_id, author_id FROM timelines
                           WHERE user_id = $1 AND ($2::bigint IS NULL OR post_id < $2)
                           ORDER BY post_id DESC OFFSET 0) t
                     JOIN visible_posts($1) p ON p.id = t.post_id
                     WHERE EXISTS (SELECT 1 FROM follows f
                                   WHERE f.follower_id = $1 AND f.followee_id = t.author_id)
                     ORDER BY t.post_id DESC LIMIT $3
                 ), own AS (
                     SELECT p.id, p.reactions_count, p.created_at FROM visible_posts($1) p
                     WHERE p.author_id = $1 AND ($2::bigint IS NULL OR p.id < $2)
                     ORDER BY p.id DESC LIMIT $3
                 ), pulled AS (
                     SELECT p.id, p.reactions_count, p.created_at FROM follows f
                     JOIN feed_pull_authors pa ON pa.user_id = f.followee_id
                     JOIN LATERAL (
                         SELECT p.id, p.reactions_count, p.created_at FROM visible_posts($1) p
                         WHERE p.author_id = f.followee_id AND ($2::bigint IS NULL OR p.id < $2)
                         ORDER BY p.id DESC LIMIT $3
                     ) p ON true
                     WHERE f.follower_id = $1
                 )
                 SELECT c.id AS "id!", c.reactions_count AS "reactions_count!", c.created_at AS "created_at!"
                 FROM (SELECT * FROM timeline UNION SELECT * FROM own UNION SELECT * FROM pulled) c
                 ORDER BY c.id DESC
                 LIMIT $3"#,
                user_id,
                after.map(|k| k.id),
                limit
            )
            .fetch_all(db)
            .await
        }
        FeedOrder::Popular => {
            sqlx::query_as!(
                FeedRow,
                "WITH candidates AS (
                     SELECT t.post_id AS id FROM timelines t
                     JOIN follows f ON f.follower_id = t.user_id AND f.followee_id = t.author_id
                     WHERE t.user_id = $1
                     UNION
                     SELECT p.id FROM posts p WHERE p.author_id = $1 AND p.deleted_at IS NULL AND p.created_at > now() - interval '7 days'
                     UNION
                     SELECT p.id FROM follows f
                     JOIN feed_pull_authors pa ON pa.user_id = f.followee_id
                     JOIN posts p ON p.author_id = f.followee_id
                     WHERE f.follower_id = $1 AND p.deleted_at IS NULL AND p.created_at > now() - interval '7 days'
                 )
                 SELECT p.id AS \"id!\", p.reactions_count AS \"reactions_count!\",
                        p.created_at AS \"created_at!\"
                 FROM candidates c
                 JOIN visible_posts($1) p ON p.id = c.id
                 WHERE p.created_at > now() - interval '7 days'
                   AND ($2::bigint IS NULL OR (p.reactions_count, p.id) < ($2, $3))
                 ORDER BY p.reactions_count DESC, p.id DESC
                 LIMIT $4",
                user_id,
                after.and_then(|k| k.r),
                after.map_or(0, |k| k.id),
                limit
            )
            .fetch_all(db)
            .await
        }
    }
}
