//! `rookery seed-microblog`: the data set of the microblog feed benchmark
//! (`loadtests/microblog_feed.js`, issue 17): one viewer who follows
//! `followees` authors, `tweets` posts by those authors, `images` of them
//! with one image each, and `likes` likes from a pool of `likers` accounts,
//! with API keys for the viewer and the first `liker_keys` likers.
//!
//! Written in bulk (a few `INSERT ... SELECT FROM unnest(...)` statements)
//! in one transaction, next to whatever the database already holds. The
//! users have fixed names (`mb_viewer`, `mb_author_000`, `mb_fan_000`...),
//! so a second run finds them and refuses ([`MicroblogSeedError::Exists`])
//! instead of doubling the data.
//!
//! What the app would have written is written too, so every read sees
//! consistent data: the profile counters are kept by their own triggers
//! (left on: about a thousand one-row updates, and a concurrent writer
//! never misses its count), each post's `reactions_count` is inserted
//! exact, and the viewer's home timeline holds what the backfill of a
//! follow would have put there. No domain events are written, so the
//! moderation analyzer never sees these posts (they are not hidden: it
//! only acts on events) and nobody is notified. The texts carry no
//! hashtags, mentions or links, so no `post_hashtags` or `post_mentions`
//! rows are missing. The media rows have valid, random storage keys but no
//! objects: a feed read only turns keys into URLs. Never run it on a
//! database that matters.

use std::path::PathBuf;
use std::time::Instant;

use chrono::{DateTime, Duration, Utc};
use serde::Serialize;
use sqlx::{PgPool, Row as _};

use super::Rng;
use crate::domain::accounts::api_keys::KEY_PREFIX;
use crate::domain::accounts::tokens::{random_token, sha256};
use crate::domain::media::storage::{self, new_keys};

/// How far back the posts go.
const HISTORY_DAYS: i64 = 7;
/// The newest posts of each followed author in the viewer's timeline, as the
/// server's backfill on a new follow writes them.
const TIMELINE_DEPTH: i64 = 100;
/// Every post's text is this long or a few characters longer: 25 to 55,
/// about 44 on average. With the names, this makes the default feed about
/// 366 KB (358 KiB, the body) on a fresh database, where the ids are
/// short.
const TEXT_MIN: usize = 25;
const TEXT_SPREAD: usize = 30;
/// The name of the API keys made here.
const KEY_NAME: &str = "seed-microblog";
/// A valid BlurHash (4×3 components); every seeded image shows it.
const BLURHASH: &str = "LEHV6nWB2yk8pyo0adR*.7kCMdnj";
/// The seeded images' stored sizes, in turn: what a re-encoded photo could be.
const IMAGE_SIZES: [(i32, i32); 3] = [(1280, 960), (1080, 1080), (960, 1280)];

pub const VIEWER: &str = "mb_viewer";

const WORDS: [&str; 40] = [
    "morning", "coffee", "release", "weekend", "music", "garden", "travel", "football", "recipe",
    "sunset", "meeting", "deadline", "concert", "bicycle", "library", "podcast", "winter",
    "summer", "river", "mountain", "city", "friends", "photo", "update", "thoughts", "news",
    "project", "coding", "weather", "train", "lunch", "finally", "today", "great", "new", "the",
    "a", "with", "after", "again",
];

#[derive(Debug, Clone)]
pub struct MicroblogOptions {
    /// Authors the viewer follows, `mb_author_000`...
    pub followees: usize,
    /// Posts in all, spread over the authors at random.
    pub tweets: usize,
    /// Posts with one image each (distinct posts, at random).
    pub images: usize,
    /// Likes in all, each by a distinct liker on its post.
    pub likes: usize,
    /// Accounts who like, `mb_fan_000`...; they follow nobody.
    pub likers: usize,
    /// Likers given an API key (the first ones), for the benchmark's likes.
    pub liker_keys: usize,
    /// The server's `ROOKERY_COMPAT_FEED_CAP`: the feed shows at most that many.
    pub feed_cap: i64,
    /// Seed of the generator: the same seed gives the same data set, but
    /// for the API keys and the media's storage keys, which are random.
    pub seed: u64,
    /// Where the viewer's and likers' ids and API keys are written.
    pub keys_file: PathBuf,
}

#[derive(Debug, thiserror::Error)]
pub enum MicroblogSeedError {
    #[error("{0}")]
    Invalid(String),
    #[error(
        "the database already holds {0}: seed-microblog creates its users under fixed names \
         and loads them once per database (create another one, e.g. `createdb rookery_microblog`, \
         and point DATABASE_URL at it)"
    )]
    Exists(String),
    #[error("database: {0}")]
    Db(#[from] sqlx::Error),
    #[error("writing {path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
    #[error("encoding the keys file: {0}")]
    Json(#[from] serde_json::Error),
}

impl MicroblogSeedError {
    /// A refusal to run (bad options, or already seeded), as opposed to a
    /// failure while running: the command exits with 2 for these.
    pub fn is_refusal(&self) -> bool {
        matches!(self, Self::Invalid(_) | Self::Exists(_))
    }
}

/// An account of the keys file.
#[derive(Debug, Clone, Serialize)]
pub struct SeededUser {
    pub id: i64,
    pub username: String,
    pub api_key: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct SeededLiker {
    #[serde(flatten)]
    pub user: SeededUser,
    /// The posts this liker likes after seeding, oldest first.
    pub liked: Vec<i64>,
}

/// What the keys file holds, and what [`seed`] returns.
#[derive(Debug, Serialize)]
pub struct Seeded {
    pub viewer: SeededUser,
    pub followees: usize,
    pub tweets: usize,
    pub images: usize,
    pub likes: usize,
    /// Tweets in the viewer's unpaged `GET /api/tweets`: `tweets`, at most
    /// the feed cap.
    pub expected_tweets: usize,
    /// Every seeded post, oldest first.
    pub tweet_ids: Vec<i64>,
    /// The likers with an API key.
    pub likers: Vec<SeededLiker>,
    /// One line per step, for the terminal.
    #[serde(skip)]
    pub report: Vec<String>,
}

/// One post as planned: everything but the ids the database gives.
#[derive(Debug, Clone, PartialEq, Eq)]
struct PlannedPost {
    /// Index of the author among the followees.
    author: usize,
    text: String,
    /// Milliseconds before the seeding's start.
    age_ms: i64,
    /// The image's size, if the post has one.
    image: Option<(i32, i32)>,
    /// Index of the liker among the likers, and how many milliseconds
    /// before the seeding's start they liked it (after the post).
    likes: Vec<(usize, i64)>,
}

fn check(options: &MicroblogOptions) -> Result<(), MicroblogSeedError> {
    let fail = |m: String| Err(MicroblogSeedError::Invalid(m));
    if options.followees == 0 {
        return fail("--followees must be at least 1".into());
    }
    if options.tweets == 0 {
        return fail("--tweets must be at least 1".into());
    }
    if options.images > options.tweets {
        return fail(format!(
            "--images must be at most --tweets ({}): one image per post",
            options.tweets
        ));
    }
    if options.liker_keys > options.likers {
        return fail(format!(
            "--liker-keys must be at most --likers ({})",
            options.likers
        ));
    }
    if options.likes > options.tweets.saturating_mul(options.likers) {
        return fail(format!(
            "--likes must be at most --tweets × --likers ({}): one like per liker and post",
            options.tweets.saturating_mul(options.likers)
        ));
    }
    Ok(())
}

/// The usernames, in order: the viewer, the authors, the likers.
fn usernames(options: &MicroblogOptions) -> Vec<String> {
    let mut names = Vec::with_capacity(1 + options.followees + options.likers);
    names.push(VIEWER.to_owned());
    names.extend((0..options.followees).map(|i| format!("mb_author_{i:03}")));
    names.extend((0..options.likers).map(|i| format!("mb_fan_{i:03}")));
    names
}

/// A float uniform in `[0, 1)`.
fn unit(rng: &mut Rng) -> f64 {
    // The top 53 bits, exactly representable.
    (rng.next() >> 11) as f64 / (1u64 << 53) as f64
}

/// Shuffles `items` in place (Fisher–Yates) up to `k`: `items[..k]` is then
/// a uniform random choice of `k` of them.
fn choose<T>(rng: &mut Rng, items: &mut [T], k: usize) {
    let n = items.len();
    for i in 0..k.min(n) {
        let j = i + rng.below(n - i);
        items.swap(i, j);
    }
}

fn text(rng: &mut Rng) -> String {
    let target = TEXT_MIN + rng.below(TEXT_SPREAD + 1);
    let mut body = String::with_capacity(target + 16);
    while body.len() < target {
        if !body.is_empty() {
            body.push(' ');
        }
        body.push_str(WORDS[rng.below(WORDS.len())]);
    }
    // A capital and a full stop, so it reads like a sentence.
    if let Some(first) = body.get_mut(0..1) {
        first.make_ascii_uppercase();
    }
    body.push('.');
    body
}

/// The whole data set but the ids: deterministic for `options.seed` (the
/// sizes are assumed checked). Posts are oldest first, spread evenly over
/// the last [`HISTORY_DAYS`] days. Likes favour some posts: a post is drawn
/// as the `⌊n·u²⌋`-th of a random order (u uniform), so a tenth of the posts
/// get about a third of the likes, and a post every liker already likes
/// passes its draw to the next one in that order.
fn plan(options: &MicroblogOptions) -> Vec<PlannedPost> {
    let mut rng = Rng(options.seed);
    let n = options.tweets;
    let span_ms = HISTORY_DAYS * 24 * 3600 * 1000;
    let n_i64 = i64::try_from(n).unwrap_or(i64::MAX).max(1);
    let mut posts: Vec<PlannedPost> = (0..n)
        .map(|i| {
            let i = i64::try_from(i).unwrap_or(i64::MAX);
            PlannedPost {
                author: rng.below(options.followees),
                text: text(&mut rng),
                // The newest a second before the start.
                age_ms: span_ms - span_ms * i / n_i64 + 1000,
                image: None,
                likes: Vec::new(),
            }
        })
        .collect();

    let mut order: Vec<usize> = (0..n).collect();
    choose(&mut rng, &mut order, options.images);
    for (k, &i) in order[..options.images].iter().enumerate() {
        posts[i].image = Some(IMAGE_SIZES[k % IMAGE_SIZES.len()]);
    }

    // How many likes each post gets, then by whom.
    let mut counts = vec![0usize; n];
    choose(&mut rng, &mut order, n);
    for _ in 0..options.likes {
        let u = unit(&mut rng);
        // In 0..n: u < 1, so u² · n < n.
        let mut k = ((u * u * n as f64) as usize).min(n - 1);
        // `check` allows at most n × likers likes, so a post with room exists.
        while counts[order[k]] >= options.likers {
            k = (k + 1) % n;
        }
        counts[order[k]] += 1;
    }
    let mut pool: Vec<usize> = (0..options.likers).collect();
    for (post, &count) in posts.iter_mut().zip(&counts) {
        choose(&mut rng, &mut pool, count);
        let mut likes: Vec<(usize, i64)> = pool[..count]
            .iter()
            .map(|&liker| {
                // Between the post and the start, never at the same instant.
                let after = (unit(&mut rng) * (post.age_ms - 1) as f64) as i64;
                (liker, post.age_ms - 1 - after)
            })
            .collect();
        likes.sort_unstable();
        post.likes = likes;
    }
    posts
}

/// Loads the microblog data set and writes the keys file.
pub async fn seed(db: &PgPool, options: &MicroblogOptions) -> Result<Seeded, MicroblogSeedError> {
    check(options)?;
    let started = Instant::now();
    let mut report = Vec::new();
    let names = usernames(options);

    let t = Instant::now();
    let posts = plan(options);
    let planned_likes: usize = posts.iter().map(|p| p.likes.len()).sum();
    report.push(format!(
        "planned {} posts, {} with an image, {planned_likes} likes (seed {}) in {:.1?}",
        posts.len(),
        posts.iter().filter(|p| p.image.is_some()).count(),
        options.seed,
        t.elapsed()
    ));

    let mut tx = db.begin().await?;
    // The viewer first, if it is there.
    let taken: Vec<String> = sqlx::query_scalar(
        "SELECT username FROM users WHERE lower(username) = ANY($1)
         ORDER BY lower(username) <> $2, 1",
    )
    .bind(&names)
    .bind(VIEWER)
    .fetch_all(&mut *tx)
    .await?;
    if let Some(first) = taken.first() {
        let what = match taken.len() {
            1 => format!("the user {first}"),
            n => format!("the user {first} and {} more of its users", n - 1),
        };
        return Err(MicroblogSeedError::Exists(what));
    }

    // Users: no password (the benchmark and the microblog API use API keys).
    let t = Instant::now();
    let rows = sqlx::query(
        "INSERT INTO users (username, email)
         SELECT name, name || '@microblog.example' FROM unnest($1::text[]) WITH ORDINALITY AS t(name, n)
         ORDER BY n
         RETURNING id, username",
    )
    .bind(&names)
    .fetch_all(&mut *tx)
    .await?;
    let mut by_name = std::collections::HashMap::with_capacity(rows.len());
    for row in rows {
        by_name.insert(row.try_get::<String, _>(1)?, row.try_get::<i64, _>(0)?);
    }
    let ids: Vec<i64> = names
        .iter()
        .map(|n| by_name.get(n).copied())
        .collect::<Option<_>>()
        .ok_or_else(|| MicroblogSeedError::Invalid("a user was not inserted".into()))?;
    let viewer_id = ids[0];
    let authors = &ids[1..=options.followees];
    let likers = &ids[1 + options.followees..];
    report.push(format!(
        "users: {VIEWER} (id {viewer_id}), {} authors mb_author_*, {} likers mb_fan_* in {:.1?}",
        authors.len(),
        likers.len(),
        t.elapsed()
    ));

    // API keys, stored as the app stores them (SHA-256 and a prefix).
    let t = Instant::now();
    let keyed: Vec<usize> = std::iter::once(0)
        .chain((0..options.liker_keys).map(|i| 1 + options.followees + i))
        .collect();
    let keys: Vec<String> = keyed
        .iter()
        .map(|_| format!("{KEY_PREFIX}{}", random_token(32)))
        .collect();
    sqlx::query(
        "INSERT INTO api_keys (user_id, name, key_hash, prefix)
         SELECT u, $4, h, p FROM unnest($1::bigint[], $2::bytea[], $3::text[]) AS t(u, h, p)",
    )
    .bind(keyed.iter().map(|&i| ids[i]).collect::<Vec<i64>>())
    .bind(keys.iter().map(|k| sha256(k)).collect::<Vec<Vec<u8>>>())
    .bind(
        keys.iter()
            .map(|k| k.chars().take(KEY_PREFIX.len() + 6).collect())
            .collect::<Vec<String>>(),
    )
    .bind(KEY_NAME)
    .execute(&mut *tx)
    .await?;
    report.push(format!(
        "api keys: {} (the viewer's and {} likers') in {:.1?}",
        keys.len(),
        options.liker_keys,
        t.elapsed()
    ));

    // The viewer follows every author (the counter trigger counts them).
    let t = Instant::now();
    sqlx::query(
        "INSERT INTO follows (follower_id, followee_id) SELECT $1, a FROM unnest($2::bigint[]) AS t(a)",
    )
    .bind(viewer_id)
    .bind(authors)
    .execute(&mut *tx)
    .await?;
    report.push(format!(
        "follows: {VIEWER} follows {} authors in {:.1?}",
        authors.len(),
        t.elapsed()
    ));

    // Posts, oldest first, with their like counts.
    let t = Instant::now();
    let now = Utc::now();
    let at = |age_ms: i64| now - Duration::milliseconds(age_ms);
    sqlx::query(
        "INSERT INTO posts (author_id, text, created_at, reactions_count)
         SELECT a, x, c, r
         FROM unnest($1::bigint[], $2::text[], $3::timestamptz[], $4::bigint[]) WITH ORDINALITY
              AS t(a, x, c, r, n)
         ORDER BY n",
    )
    .bind(
        posts
            .iter()
            .map(|p| authors[p.author])
            .collect::<Vec<i64>>(),
    )
    .bind(
        posts
            .iter()
            .map(|p| p.text.clone())
            .collect::<Vec<String>>(),
    )
    .bind(
        posts
            .iter()
            .map(|p| at(p.age_ms))
            .collect::<Vec<DateTime<Utc>>>(),
    )
    .bind(
        posts
            .iter()
            .map(|p| i64::try_from(p.likes.len()).unwrap_or(i64::MAX))
            .collect::<Vec<i64>>(),
    )
    .execute(&mut *tx)
    .await?;
    // The authors are new, so their posts are exactly these, numbered in order.
    let rows =
        sqlx::query("SELECT id, author_id, text FROM posts WHERE author_id = ANY($1) ORDER BY id")
            .bind(authors)
            .fetch_all(&mut *tx)
            .await?;
    let mut post_ids = Vec::with_capacity(rows.len());
    for (row, planned) in rows.iter().zip(&posts) {
        if row.try_get::<i64, _>(1)? != authors[planned.author]
            || row.try_get::<String, _>(2)? != planned.text
        {
            return Err(MicroblogSeedError::Invalid(
                "the posts were not numbered in the order they were inserted".into(),
            ));
        }
        post_ids.push(row.try_get::<i64, _>(0)?);
    }
    if post_ids.len() != posts.len() {
        return Err(MicroblogSeedError::Invalid(format!(
            "{} posts inserted, {} read back",
            posts.len(),
            post_ids.len()
        )));
    }
    report.push(format!(
        "posts: {} (ids {}..={}) over the last {HISTORY_DAYS} days in {:.1?}",
        post_ids.len(),
        post_ids.first().copied().unwrap_or_default(),
        post_ids.last().copied().unwrap_or_default(),
        t.elapsed()
    ));

    // One image per chosen post, owned by its author, attached at position 0.
    let t = Instant::now();
    let with_image: Vec<(usize, (i32, i32))> = posts
        .iter()
        .enumerate()
        .filter_map(|(i, p)| p.image.map(|size| (i, size)))
        .collect();
    let (mut storage_keys, mut thumb_keys) = (Vec::new(), Vec::new());
    for _ in &with_image {
        let (key, thumb) = new_keys("jpg");
        if !storage::is_valid_key(&key) || !storage::is_valid_key(&thumb) {
            return Err(MicroblogSeedError::Invalid(format!(
                "the media keys {key} and {thumb} are not valid"
            )));
        }
        storage_keys.push(key);
        thumb_keys.push(thumb);
    }
    sqlx::query(
        "INSERT INTO media (owner_id, post_id, position, storage_key, thumb_key, content_type,
                            width, height, bytes, blurhash, created_at)
         SELECT o, p, 0, k, tk, 'image/jpeg', w, h, w::bigint * h / 8, $8, c
         FROM unnest($1::bigint[], $2::bigint[], $3::text[], $4::text[], $5::int[], $6::int[],
                     $7::timestamptz[]) AS t(o, p, k, tk, w, h, c)",
    )
    .bind(
        with_image
            .iter()
            .map(|&(i, _)| authors[posts[i].author])
            .collect::<Vec<i64>>(),
    )
    .bind(
        with_image
            .iter()
            .map(|&(i, _)| post_ids[i])
            .collect::<Vec<i64>>(),
    )
    .bind(&storage_keys)
    .bind(&thumb_keys)
    .bind(
        with_image
            .iter()
            .map(|&(_, (w, _))| w)
            .collect::<Vec<i32>>(),
    )
    .bind(
        with_image
            .iter()
            .map(|&(_, (_, h))| h)
            .collect::<Vec<i32>>(),
    )
    .bind(
        with_image
            .iter()
            .map(|&(i, _)| at(posts[i].age_ms))
            .collect::<Vec<DateTime<Utc>>>(),
    )
    .bind(BLURHASH)
    .execute(&mut *tx)
    .await?;
    report.push(format!(
        "media: {} images (JPEG, no stored object) in {:.1?}",
        with_image.len(),
        t.elapsed()
    ));

    // Likes.
    let t = Instant::now();
    let (mut like_posts, mut like_users, mut like_times) = (Vec::new(), Vec::new(), Vec::new());
    let mut liked: Vec<Vec<i64>> = vec![Vec::new(); options.liker_keys];
    for (post, &post_id) in posts.iter().zip(&post_ids) {
        for &(liker, age_ms) in &post.likes {
            like_posts.push(post_id);
            like_users.push(likers[liker]);
            like_times.push(at(age_ms));
            if let Some(list) = liked.get_mut(liker) {
                list.push(post_id);
            }
        }
    }
    sqlx::query(
        "INSERT INTO reactions (post_id, user_id, kind, created_at)
         SELECT p, u, 'like', c FROM unnest($1::bigint[], $2::bigint[], $3::timestamptz[]) AS t(p, u, c)",
    )
    .bind(&like_posts)
    .bind(&like_users)
    .bind(&like_times)
    .execute(&mut *tx)
    .await?;
    report.push(format!(
        "likes: {} by {} likers in {:.1?}",
        like_posts.len(),
        likers.len(),
        t.elapsed()
    ));

    // The viewer's home timeline, as the backfill of each follow leaves it.
    let t = Instant::now();
    let timeline = sqlx::query(
        "INSERT INTO timelines (user_id, post_id, author_id)
         SELECT $1, id, author_id
         FROM (SELECT id, author_id, row_number() OVER (PARTITION BY author_id ORDER BY id DESC) AS k
               FROM posts WHERE author_id = ANY($2) AND deleted_at IS NULL) p
         WHERE k <= $3",
    )
    .bind(viewer_id)
    .bind(authors)
    .bind(TIMELINE_DEPTH)
    .execute(&mut *tx)
    .await?
    .rows_affected();
    report.push(format!(
        "timeline: {timeline} entries for {VIEWER} in {:.1?}",
        t.elapsed()
    ));

    let expected_tweets = usize::try_from(options.feed_cap)
        .unwrap_or(usize::MAX)
        .min(posts.len());
    let viewer = SeededUser {
        id: viewer_id,
        username: VIEWER.to_owned(),
        api_key: keys[0].clone(),
    };
    let liker_accounts: Vec<SeededLiker> = liked
        .into_iter()
        .enumerate()
        .map(|(i, liked)| SeededLiker {
            user: SeededUser {
                id: likers[i],
                username: names[1 + options.followees + i].clone(),
                api_key: keys[1 + i].clone(),
            },
            liked,
        })
        .collect();
    let mut seeded = Seeded {
        viewer,
        followees: authors.len(),
        tweets: post_ids.len(),
        images: with_image.len(),
        likes: like_posts.len(),
        expected_tweets,
        tweet_ids: post_ids,
        likers: liker_accounts,
        report: Vec::new(),
    };

    // The keys file before the commit: if it cannot be written, nothing was loaded.
    let json = serde_json::to_vec(&seeded)?;
    super::write_keys_file(&options.keys_file, &json)
        .map_err(|(path, source)| MicroblogSeedError::Io { path, source })?;

    let t = Instant::now();
    tx.commit().await?;
    // VACUUM as well: the feed counts likes with index-only scans, which
    // need the visibility map that autovacuum would set in a live database.
    sqlx::raw_sql("VACUUM (ANALYZE) users, api_keys, follows, posts, media, reactions, timelines")
        .execute(db)
        .await?;
    report.push(format!(
        "commit and VACUUM (ANALYZE) in {:.1?}",
        t.elapsed()
    ));
    if posts.len() > seeded.expected_tweets {
        report.push(format!(
            "note: the feed shows the newest {} of the {} posts (ROOKERY_COMPAT_FEED_CAP)",
            seeded.expected_tweets,
            posts.len()
        ));
    }
    report.push(format!(
        "keys file: {} ({VIEWER}'s API key and {} likers', with the post ids; \
         secret: keep it out of git)",
        options.keys_file.display(),
        seeded.likers.len()
    ));
    report.push(format!("done in {:.1?}", started.elapsed()));
    seeded.report = report;
    Ok(seeded)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn options(seed: u64) -> MicroblogOptions {
        MicroblogOptions {
            followees: 100,
            tweets: 1000,
            images: 200,
            likes: 5000,
            likers: 200,
            liker_keys: 50,
            feed_cap: 1000,
            seed,
            keys_file: PathBuf::from("unused.json"),
        }
    }

    #[test]
    fn the_plan_has_the_asked_shape_and_depends_only_on_the_seed() {
        let posts = plan(&options(42));
        assert_eq!(posts, plan(&options(42)));
        assert_ne!(posts, plan(&options(43)));
        assert_eq!(posts.len(), 1000);
        assert_eq!(posts.iter().filter(|p| p.image.is_some()).count(), 200);
        assert_eq!(posts.iter().map(|p| p.likes.len()).sum::<usize>(), 5000);
        // Every author writes (10 posts each on average), oldest post first.
        let mut authors: Vec<usize> = posts.iter().map(|p| p.author).collect();
        authors.sort_unstable();
        authors.dedup();
        assert_eq!(authors.len(), 100);
        assert!(posts.windows(2).all(|w| w[0].age_ms > w[1].age_ms));
        assert!(posts.last().is_some_and(|p| p.age_ms > 0));
        for p in &posts {
            // One like per liker, after the post, before the start.
            let mut who: Vec<usize> = p.likes.iter().map(|&(l, _)| l).collect();
            who.dedup();
            assert_eq!(who.len(), p.likes.len(), "{p:?}");
            assert!(who.iter().all(|&l| l < 200));
            assert!(p.likes.iter().all(|&(_, age)| age > 0 && age < p.age_ms));
            // Plain text the app would accept as is: no tags, mentions or links.
            assert!(crate::domain::posts::text::hashtags(&p.text).is_empty());
            assert!(!p.text.contains(['@', '#', '/']) && p.text.len() <= 500);
        }
        // Likes favour some posts, and leave others without any.
        let most = posts.iter().map(|p| p.likes.len()).max().unwrap_or(0);
        assert!(most > 20, "{most}");
        assert!(posts.iter().any(|p| p.likes.is_empty()));
    }

    #[test]
    fn likes_fill_up_to_every_liker_on_every_post() {
        let mut o = options(7);
        (o.tweets, o.images, o.likers, o.liker_keys, o.likes) = (5, 5, 3, 3, 15);
        let posts = plan(&o);
        assert!(posts
            .iter()
            .all(|p| p.likes.len() == 3 && p.image.is_some()));
        check(&o).unwrap_or_else(|e| panic!("{e}"));
        o.likes = 16;
        assert!(matches!(check(&o), Err(MicroblogSeedError::Invalid(_))));
    }

    #[test]
    fn impossible_sizes_are_refused() {
        let refused = |change: fn(&mut MicroblogOptions)| {
            let mut o = options(1);
            change(&mut o);
            match check(&o) {
                Err(e @ MicroblogSeedError::Invalid(_)) => e.is_refusal(),
                _ => false,
            }
        };
        assert!(refused(|o| o.followees = 0));
        assert!(refused(|o| o.tweets = 0));
        assert!(refused(|o| o.images = 1001));
        assert!(refused(|o| o.liker_keys = 201));
        assert!(refused(|o| (o.likers, o.liker_keys) = (0, 0)));
        check(&options(1)).unwrap_or_else(|e| panic!("{e}"));
    }

    #[test]
    fn usernames_are_valid_and_distinct() {
        let names = usernames(&options(1));
        assert_eq!(names.len(), 301);
        let mut sorted = names.clone();
        sorted.sort();
        sorted.dedup();
        assert_eq!(sorted.len(), names.len());
        for n in &names {
            let valid = crate::domain::accounts::validate::username(n)
                .unwrap_or_else(|e| panic!("{n}: {e}"));
            assert_eq!(valid.as_str(), n);
        }
    }
}
