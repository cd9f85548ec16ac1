//! `rookery seed-bench`: loads a large, realistic database for the load tests
//! in `loadtests/` with PostgreSQL `COPY`: users (one shared password hash),
//! one API key each, a random follow graph, "celebrity" authors with an exact
//! number of followers (for the fan-out test), posts with hashtags, and the
//! home timelines that fan-out on write would have produced.
//!
//! Everything is written in one transaction, and only into a database without
//! users: it either loads completely or not at all, and a second run refuses
//! instead of doubling the data. Domain events are not written, so seeding
//! produces no notifications and no per-user events. Never run it on a
//! database that matters.

use std::fmt::Write as _;
use std::path::PathBuf;
use std::time::Instant;

use serde::Serialize;
use sqlx::postgres::PgCopyIn;
use sqlx::{PgConnection, PgPool};

use crate::domain::accounts::api_keys::KEY_PREFIX;
use crate::domain::accounts::tokens::{random_token, sha256};
use crate::domain::accounts::{validate, AccountError, PasswordHasher};
use crate::domain::posts::text;

use super::Rng;

/// At most every `CELEBRITY_EVERY`-th post is written by a celebrity (in
/// turn), so their followers' feeds hold their posts too; small data sets
/// give celebrities a larger share, so they still have posts.
const CELEBRITY_EVERY: usize = 2_000;
/// How far back the seeded posts go.
const HISTORY_DAYS: i64 = 30;
/// Distinct hashtags used by the seeded posts.
const TAGS: u64 = 500;
/// Bytes buffered before they are sent to the server.
const COPY_CHUNK: usize = 1 << 20;

const WORDS: [&str; 32] = [
    "rookery", "morning", "coffee", "release", "weekend", "music", "rust", "postgres", "garden",
    "travel", "football", "recipe", "sunset", "meeting", "deadline", "concert", "bicycle",
    "library", "podcast", "winter", "summer", "river", "mountain", "city", "friends", "photo",
    "update", "thoughts", "news", "project", "coding", "weather",
];

#[derive(Debug, Clone)]
pub struct BenchOptions {
    /// Ordinary users, `bench_00000`...
    pub users: usize,
    /// Posts in all, celebrities' included.
    pub posts: usize,
    /// Random followees of each ordinary user.
    pub follows_per_user: usize,
    /// One celebrity per entry, followed by exactly that many users (the first ones).
    pub celebrity_followers: Vec<usize>,
    /// The newest posts of each followed author written into a timeline.
    pub timeline_depth: usize,
    /// The password every bench user shares.
    pub password: String,
    /// Authors with more followers than this are merged into feeds on read.
    pub fanout_limit: i64,
    /// Seed of the generator: the same seed gives the same graph and posts.
    pub seed: u64,
    /// Where the users, their API keys and the celebrities are written.
    pub keys_file: PathBuf,
}

#[derive(Debug, thiserror::Error)]
pub enum BenchError {
    #[error("{0}")]
    Invalid(String),
    #[error(
        "the database already holds {0} users: seed-bench only loads an empty database \
         (create one, e.g. `createdb rookery_bench`, and point DATABASE_URL at it)"
    )]
    NotEmpty(i64),
    #[error("database: {0}")]
    Db(#[from] sqlx::Error),
    #[error(transparent)]
    Account(#[from] AccountError),
    #[error("writing {path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
    #[error("encoding the keys file: {0}")]
    Json(#[from] serde_json::Error),
}

/// One seeded account, as the load tests read it from the keys file.
#[derive(Debug, Serialize)]
pub struct BenchUser {
    pub id: i64,
    pub username: String,
    pub api_key: String,
}

#[derive(Debug, Serialize)]
pub struct Celebrity {
    /// Followed by exactly `followers` users: `users[0..followers]` of the keys file.
    pub followers: usize,
    /// Whether its posts are fanned out on write (`followers <= ROOKERY_FANOUT_LIMIT`).
    pub fanned_out: bool,
    #[serde(flatten)]
    pub user: BenchUser,
}

#[derive(Debug, Serialize)]
struct KeysFile<'a> {
    password: &'a str,
    users: &'a [BenchUser],
    celebrities: &'a [Celebrity],
}

/// Buffers rows of a `COPY ... FROM STDIN` (text format) and sends them in chunks.
struct Copy<'c> {
    copy: PgCopyIn<&'c mut PgConnection>,
    buf: String,
}

impl<'c> Copy<'c> {
    async fn start(conn: &'c mut PgConnection, statement: &str) -> Result<Self, sqlx::Error> {
        Ok(Self {
            copy: conn.copy_in_raw(statement).await?,
            buf: String::with_capacity(COPY_CHUNK + 4096),
        })
    }

    /// Sends the buffer when it is full; call after each row.
    async fn row_done(&mut self) -> Result<(), sqlx::Error> {
        if self.buf.len() >= COPY_CHUNK {
            self.copy
                .send(std::mem::take(&mut self.buf).into_bytes())
                .await?;
            self.buf.reserve(COPY_CHUNK + 4096);
        }
        Ok(())
    }

    async fn finish(mut self) -> Result<u64, sqlx::Error> {
        if !self.buf.is_empty() {
            self.copy
                .send(std::mem::take(&mut self.buf).into_bytes())
                .await?;
        }
        self.copy.finish().await
    }
}

/// Tables loaded in bulk. Their foreign keys are dropped for the load and
/// added back afterwards, which checks every row in one pass instead of one
/// lookup per row per key (a 20-million-row timeline load goes from many
/// minutes to about one). All of it inside the transaction: nobody else ever
/// sees the table without its keys.
const BULK_TABLES: [&str; 5] = ["api_keys", "follows", "posts", "post_hashtags", "timelines"];

struct ForeignKey {
    table: String,
    name: String,
    definition: String,
}

fn quote_ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

async fn drop_foreign_keys(tx: &mut PgConnection) -> Result<Vec<ForeignKey>, sqlx::Error> {
    let tables: Vec<String> = BULK_TABLES.iter().map(|&t| t.to_owned()).collect();
    let keys = sqlx::query!(
        r#"SELECT c.conrelid::regclass::text AS "table!", c.conname::text AS "name!",
                  pg_get_constraintdef(c.oid) AS "definition!"
           FROM pg_constraint c
           WHERE c.contype = 'f' AND c.conrelid::regclass::text = ANY($1)
           ORDER BY 1, 2"#,
        &tables
    )
    .fetch_all(&mut *tx)
    .await?;
    let keys: Vec<ForeignKey> = keys
        .into_iter()
        .map(|k| ForeignKey {
            table: k.table,
            name: k.name,
            definition: k.definition,
        })
        .collect();
    for k in &keys {
        let ddl = format!(
            "ALTER TABLE {} DROP CONSTRAINT {}",
            quote_ident(&k.table),
            quote_ident(&k.name)
        );
        sqlx::raw_sql(&ddl).execute(&mut *tx).await?;
    }
    Ok(keys)
}

async fn restore_foreign_keys(
    tx: &mut PgConnection,
    keys: &[ForeignKey],
) -> Result<(), sqlx::Error> {
    for k in keys {
        let ddl = format!(
            "ALTER TABLE {} ADD CONSTRAINT {} {}",
            quote_ident(&k.table),
            quote_ident(&k.name),
            k.definition
        );
        sqlx::raw_sql(&ddl).execute(&mut *tx).await?;
    }
    Ok(())
}

/// The profile counters' triggers on the bulk-loaded tables (migration
/// `..16_profile_counters`): off for the load, which would otherwise update
/// an author's row once per post and follow, then one recount.
const COUNTER_TRIGGERS: [(&str, &str); 2] = [("follows", "count_follow"), ("posts", "count_post")];

async fn set_counter_triggers(tx: &mut PgConnection, enabled: bool) -> Result<(), sqlx::Error> {
    let verb = if enabled { "ENABLE" } else { "DISABLE" };
    for (table, trigger) in COUNTER_TRIGGERS {
        let ddl = format!("ALTER TABLE {table} {verb} TRIGGER {trigger}");
        sqlx::raw_sql(&ddl).execute(&mut *tx).await?;
    }
    Ok(())
}

fn hex(bytes: &[u8]) -> String {
    bytes
        .iter()
        .fold(String::with_capacity(bytes.len() * 2), |mut s, b| {
            let _ = write!(s, "{b:02x}");
            s
        })
}

fn check(options: &BenchOptions) -> Result<(), BenchError> {
    let fail = |m: String| Err(BenchError::Invalid(m));
    if options.users < 2 {
        return fail("--users must be at least 2".into());
    }
    if options.follows_per_user >= options.users {
        return fail(format!(
            "--follows-per-user must be below --users ({})",
            options.users
        ));
    }
    if let Some(&n) = options
        .celebrity_followers
        .iter()
        .find(|&&n| n > options.users)
    {
        return fail(format!(
            "a celebrity with {n} followers needs at least {n} users (--users is {})",
            options.users
        ));
    }
    match validate::password(&options.password) {
        Ok(_) => Ok(()),
        Err(m) => fail(format!("--password {m}")),
    }
}

/// Loads the bench data set and writes the keys file; returns what was done,
/// one line each.
pub async fn seed(
    db: &PgPool,
    hasher: &PasswordHasher,
    options: &BenchOptions,
) -> Result<Vec<String>, BenchError> {
    check(options)?;
    let mut report = Vec::new();
    let mut rng = Rng(options.seed);
    let started = Instant::now();

    let mut tx = db.begin().await?;
    // Two runs at once would both see an empty table: the second one waits here.
    sqlx::query!("LOCK TABLE users IN EXCLUSIVE MODE")
        .execute(&mut *tx)
        .await?;
    let existing = sqlx::query_scalar!(r#"SELECT count(*) AS "n!" FROM users"#)
        .fetch_one(&mut *tx)
        .await?;
    if existing > 0 {
        return Err(BenchError::NotEmpty(existing));
    }

    let foreign_keys = drop_foreign_keys(&mut tx).await?;
    set_counter_triggers(&mut tx, false).await?;

    // One argon2id hash, by the app's own hasher, shared by every bench user:
    // hashing 10,000 passwords would take minutes and prove nothing.
    let password = validate::password(&options.password)
        .map_err(|m| BenchError::Invalid(format!("--password {m}")))?;
    let password_hash = hasher.hash(password).await?;

    // Users: ordinary ones, then the celebrities.
    let mut names: Vec<String> = (0..options.users)
        .map(|i| format!("bench_{i:05}"))
        .collect();
    names.extend(
        options
            .celebrity_followers
            .iter()
            .enumerate()
            .map(|(i, n)| format!("bench_celeb{i}_{n}")),
    );
    let t = Instant::now();
    let mut copy = Copy::start(
        &mut tx,
        "COPY users (username, email, password_hash, display_name) FROM STDIN",
    )
    .await?;
    for (i, name) in names.iter().enumerate() {
        let _ = writeln!(
            copy.buf,
            "{name}\t{name}@bench.example\t{password_hash}\tBench user {i}"
        );
        copy.row_done().await?;
    }
    copy.finish().await?;
    let rows = sqlx::query!("SELECT id, username FROM users ORDER BY id")
        .fetch_all(&mut *tx)
        .await?;
    if rows.len() != names.len() || rows.iter().zip(&names).any(|(r, n)| &r.username != n) {
        return Err(BenchError::Invalid(
            "the users were not numbered in the order they were loaded".into(),
        ));
    }
    let ids: Vec<i64> = rows.iter().map(|r| r.id).collect();
    report.push(format!(
        "users: {} ({} ordinary, {} celebrities) in {:.1?}; all share the password {:?}, \
         hashed once with the app's argon2id hasher and reused for every user",
        ids.len(),
        options.users,
        options.celebrity_followers.len(),
        t.elapsed(),
        options.password
    ));

    // One API key per user, stored as the app stores them (SHA-256).
    let t = Instant::now();
    let mut accounts = Vec::with_capacity(ids.len());
    let mut copy = Copy::start(
        &mut tx,
        "COPY api_keys (user_id, name, key_hash, prefix) FROM STDIN",
    )
    .await?;
    for (&id, name) in ids.iter().zip(&names) {
        let key = format!("{KEY_PREFIX}{}", random_token(32));
        let prefix: String = key.chars().take(KEY_PREFIX.len() + 6).collect();
        let _ = writeln!(
            copy.buf,
            "{id}\tbench\t\\\\x{}\t{prefix}",
            hex(&sha256(&key))
        );
        copy.row_done().await?;
        accounts.push(BenchUser {
            id,
            username: name.clone(),
            api_key: key,
        });
    }
    copy.finish().await?;
    report.push(format!(
        "api keys: {} in {:.1?}",
        accounts.len(),
        t.elapsed()
    ));

    // Follows: random followees for everyone, then the celebrities' exact audiences.
    let t = Instant::now();
    let mut follows = 0u64;
    let mut copy = Copy::start(
        &mut tx,
        "COPY follows (follower_id, followee_id) FROM STDIN",
    )
    .await?;
    let mut chosen = Vec::with_capacity(options.follows_per_user);
    for (i, &follower) in ids.iter().enumerate().take(options.users) {
        chosen.clear();
        while chosen.len() < options.follows_per_user {
            let j = rng.below(options.users);
            if j != i && !chosen.contains(&j) {
                chosen.push(j);
            }
        }
        for &j in &chosen {
            let _ = writeln!(copy.buf, "{follower}\t{}", ids[j]);
            follows += 1;
        }
        copy.row_done().await?;
    }
    for (c, &n) in options.celebrity_followers.iter().enumerate() {
        let celebrity = ids[options.users + c];
        for &follower in &ids[..n] {
            let _ = writeln!(copy.buf, "{follower}\t{celebrity}");
            follows += 1;
            copy.row_done().await?;
        }
    }
    copy.finish().await?;
    report.push(format!("follows: {follows} in {:.1?}", t.elapsed()));

    // Posts, oldest first, spread over the last HISTORY_DAYS days, with hashtags.
    let t = Instant::now();
    let now = chrono::Utc::now();
    let span_ms = HISTORY_DAYS * 24 * 3600 * 1000;
    let posts = i64::try_from(options.posts).unwrap_or(i64::MAX).max(1);
    let celebrities = options.celebrity_followers.len();
    let every = (options.posts / 500).clamp(5, CELEBRITY_EVERY);
    let mut tags: Vec<(usize, String)> = Vec::with_capacity(options.posts * 3 / 2);
    let mut copy = Copy::start(
        &mut tx,
        "COPY posts (author_id, text, created_at) FROM STDIN",
    )
    .await?;
    for i in 0..options.posts {
        let author = if celebrities > 0 && i % every == every - 1 {
            options.users + (i / every) % celebrities
        } else {
            rng.below(options.users)
        };
        let mut body = String::with_capacity(160);
        let words = 6 + rng.below(18);
        for w in 0..words {
            if w > 0 {
                body.push(' ');
            }
            body.push_str(WORDS[rng.below(WORDS.len())]);
        }
        let _ = write!(body, " #topic{}", rng.next() % TAGS);
        if rng.below(2) == 0 {
            let _ = write!(body, " #{}", WORDS[rng.below(WORDS.len())]);
        }
        tags.extend(text::hashtags(&body).into_iter().map(|tag| (i, tag)));
        let offset = i64::try_from(i).unwrap_or(i64::MAX);
        let created = now - chrono::Duration::milliseconds(span_ms - span_ms * offset / posts);
        let _ = writeln!(
            copy.buf,
            "{}\t{body}\t{}",
            ids[author],
            created.to_rfc3339()
        );
        copy.row_done().await?;
    }
    copy.finish().await?;
    let span = sqlx::query!(
        r#"SELECT min(id) AS "first!", max(id) AS "last!", count(*) AS "n!" FROM posts"#
    )
    .fetch_one(&mut *tx)
    .await?;
    if span.n != posts || span.last - span.first + 1 != span.n {
        return Err(BenchError::Invalid(format!(
            "the posts were not numbered contiguously ({} rows, ids {}..={})",
            span.n, span.first, span.last
        )));
    }
    let mut copy = Copy::start(&mut tx, "COPY post_hashtags (post_id, tag) FROM STDIN").await?;
    for (i, tag) in &tags {
        let id = span.first + i64::try_from(*i).unwrap_or(0);
        let _ = writeln!(copy.buf, "{id}\t{tag}");
        copy.row_done().await?;
    }
    copy.finish().await?;
    report.push(format!(
        "posts: {} (ids {}..={}) with {} hashtags in {:.1?}",
        span.n,
        span.first,
        span.last,
        tags.len(),
        t.elapsed()
    ));
    drop(tags);

    // Home timelines, as fan-out on write leaves them: each followed author's
    // newest posts, except for authors over the fan-out limit, which are
    // marked to be merged on read instead.
    let t = Instant::now();
    sqlx::query!("ANALYZE users, follows, posts")
        .execute(&mut *tx)
        .await?;
    let pulled = sqlx::query!(
        "INSERT INTO feed_pull_authors (user_id)
         SELECT followee_id FROM follows GROUP BY followee_id HAVING count(*) > $1",
        options.fanout_limit
    )
    .execute(&mut *tx)
    .await?
    .rows_affected();
    let timelines = sqlx::query!(
        "INSERT INTO timelines (user_id, post_id, author_id)
         SELECT f.follower_id, p.id, p.author_id
         FROM follows f
         CROSS JOIN LATERAL (SELECT id, author_id FROM posts p
                             WHERE p.author_id = f.followee_id AND p.deleted_at IS NULL
                             ORDER BY p.id DESC LIMIT $1) p
         WHERE NOT EXISTS (SELECT 1 FROM feed_pull_authors pa WHERE pa.user_id = f.followee_id)
         ORDER BY f.follower_id, p.id",
        i64::try_from(options.timeline_depth).unwrap_or(i64::MAX)
    )
    .execute(&mut *tx)
    .await?
    .rows_affected();
    report.push(format!(
        "timelines: {timelines} entries (the newest {} posts of each followed author); \
         {pulled} authors over ROOKERY_FANOUT_LIMIT={} merged on read; in {:.1?}",
        options.timeline_depth,
        options.fanout_limit,
        t.elapsed()
    ));

    let t = Instant::now();
    restore_foreign_keys(&mut tx, &foreign_keys).await?;
    report.push(format!(
        "{} foreign keys checked and restored in {:.1?}",
        foreign_keys.len(),
        t.elapsed()
    ));

    let t = Instant::now();
    set_counter_triggers(&mut tx, true).await?;
    sqlx::query!("SELECT recount_profiles()")
        .execute(&mut *tx)
        .await?;
    report.push(format!("profile counts recounted in {:.1?}", t.elapsed()));

    let t = Instant::now();
    tx.commit().await?;
    // VACUUM as well: it sets the visibility map that index-only scans (the
    // profile counts) rely on, as autovacuum would in a database in service.
    sqlx::query!("VACUUM (ANALYZE)").execute(db).await?;
    report.push(format!(
        "commit and VACUUM (ANALYZE) in {:.1?}",
        t.elapsed()
    ));

    let celebrities: Vec<Celebrity> = options
        .celebrity_followers
        .iter()
        .zip(accounts.drain(options.users..))
        .map(|(&followers, user)| Celebrity {
            followers,
            fanned_out: i64::try_from(followers).unwrap_or(i64::MAX) <= options.fanout_limit,
            user,
        })
        .collect();
    let json = serde_json::to_vec(&KeysFile {
        password: &options.password,
        users: &accounts,
        celebrities: &celebrities,
    })?;
    super::write_keys_file(&options.keys_file, &json)
        .map_err(|(path, source)| BenchError::Io { path, source })?;
    for c in &celebrities {
        report.push(format!(
            "celebrity {} (id {}) has {} followers (users[0..{}] of the keys file), {}",
            c.user.username,
            c.user.id,
            c.followers,
            c.followers,
            if c.fanned_out {
                "fanned out live"
            } else {
                "over ROOKERY_FANOUT_LIMIT: merged on read, told live only to the followers online"
            }
        ));
    }
    report.push(format!(
        "keys file: {} (user ids, usernames and API keys; secret: keep it out of git)",
        options.keys_file.display()
    ));
    report.push(format!("done in {:.1?}", started.elapsed()));
    Ok(report)
}
