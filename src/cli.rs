//! The command line: the commands, and every setting as a flag that falls
//! back to an environment variable (named as the flag's value, so that a
//! refusal names both). Numeric ranges are declared here and checked as the
//! arguments are parsed; [`crate::config`] turns the parsed [`SettingsArgs`]
//! into the validated [`crate::config::Settings`].

use std::net::SocketAddr;
use std::num::NonZeroU32;
use std::path::PathBuf;

use clap::builder::BoolishValueParser;
use clap::{ArgAction, Args, Parser, Subcommand, ValueEnum};

pub const DEFAULT_BIND: &str = "0.0.0.0:8080";
pub const DEFAULT_LOG_FILTER: &str = "info,sqlx=warn";
pub const DEFAULT_JSON_LIMIT: usize = 64 * 1024;
pub const DEFAULT_LOGIN_PER_MINUTE: u32 = 10;
pub const DEFAULT_REGISTER_PER_MINUTE: u32 = 10;
/// Each concurrent hash holds a 19 MiB argon2 buffer: 64 is 1.2 GiB.
pub const MAX_HASH_CONCURRENCY: usize = 64;
pub const DEFAULT_DB_MAX_CONNECTIONS: u32 = 20;
pub const DEFAULT_DB_ACQUIRE_TIMEOUT_SECS: u64 = 5;
pub const DEFAULT_SHUTDOWN_TIMEOUT_SECS: u64 = 30;
pub const DEFAULT_ACCESS_TOKEN_TTL_SECS: u64 = 15 * 60;
pub const DEFAULT_REFRESH_TOKEN_TTL_DAYS: u64 = 30;
pub const DEFAULT_FANOUT_LIMIT: i64 = 10_000;
pub const DEFAULT_TIMELINE_WRITE_DELAY_MS: u64 = 1000;
pub const MAX_TIMELINE_WRITE_DELAY_MS: u64 = 60_000;
pub const DEFAULT_SUPERVISOR_BATCH_TIMEOUT_SECS: u64 = 60;
pub const MAX_SUPERVISOR_BATCH_TIMEOUT_SECS: u64 = 3600;
pub const DEFAULT_MAX_LINKS: usize = 5;
pub const DEFAULT_MEDIA_MAX_BYTES: usize = 10 * 1024 * 1024;
pub const DEFAULT_MEDIA_DIR: &str = "./data/media";
pub const DEFAULT_PUBLIC_URL: &str = "http://localhost:8080";
pub const DEFAULT_S3_REGION: &str = "us-east-1";
pub const DEFAULT_COMPAT_FEED_CAP: i64 = 1000;
pub const MAX_COMPAT_FEED_CAP: i64 = 10_000;

/// A whole number from `min` to `max`, refused while the arguments are parsed,
/// so that the message names the flag and its variable: `invalid value '0'
/// for '--supervisor-batch-timeout <ROOKERY_SUPERVISOR_BATCH_TIMEOUT>': must
/// be 1 to 3600 seconds`. `unit` follows the number (" seconds", or "").
fn between<T>(
    min: i128,
    max: i128,
    unit: &'static str,
) -> impl Fn(&str) -> Result<T, String> + Clone + Send + Sync + 'static
where
    T: TryFrom<i128> + 'static,
{
    bounded(min, Some(max), unit)
}

/// A whole number of at least `min`; see [`between`].
fn at_least<T>(
    min: i128,
    unit: &'static str,
) -> impl Fn(&str) -> Result<T, String> + Clone + Send + Sync + 'static
where
    T: TryFrom<i128> + 'static,
{
    bounded(min, None, unit)
}

fn bounded<T>(
    min: i128,
    max: Option<i128>,
    unit: &'static str,
) -> impl Fn(&str) -> Result<T, String> + Clone + Send + Sync + 'static
where
    T: TryFrom<i128> + 'static,
{
    move |raw: &str| -> Result<T, String> {
        let expected = match max {
            Some(max) => format!("must be {min} to {max}{unit}"),
            None => format!("must be at least {min}{unit}"),
        };
        // Parsed wider than any target, so that -1 is out of range, not malformed.
        let n: i128 = raw.parse().map_err(|e| format!("{e} ({expected})"))?;
        if n < min || max.is_some_and(|max| n > max) {
            return Err(expected);
        }
        T::try_from(n).map_err(|_| format!("{n} is too large"))
    }
}

#[derive(Debug, Parser)]
#[command(
    name = "rookery",
    version,
    about = "Rookery: a real-time social-media backend"
)]
pub struct Cli {
    #[command(flatten)]
    pub settings: SettingsArgs,
    #[command(subcommand)]
    pub command: Option<Command>,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the HTTP server (the default).
    Serve {
        /// Do not apply pending database migrations at start-up.
        #[arg(long)]
        no_migrate: bool,
    },
    /// Apply pending database migrations and exit.
    Migrate,
    /// Manage accounts from the command line.
    #[command(subcommand)]
    User(UserCommand),
    /// Create demo users `test` and `test1` with the API keys `test` and
    /// `test1`, follows and posts with images (idempotent). Never in production.
    SeedDemo,
    /// Load a large data set for the load tests in `loadtests/` with COPY:
    /// users sharing one password, an API key each, follows, celebrities with
    /// an exact follower count, posts and timelines. Refuses a database that
    /// already has users. Never in production.
    SeedBench(SeedBenchArgs),
    /// Load the microblog feed benchmark's data set (`loadtests/microblog_feed.js`):
    /// a viewer following authors with posts, images and likes, and API keys
    /// for the viewer and some likers. Refuses (exit code 2) a database that
    /// already has its users. Never in production.
    SeedMicroblog(SeedMicroblogArgs),
}

#[derive(Debug, Args)]
pub struct SeedMicroblogArgs {
    /// Authors the viewer follows (`mb_author_000`, ...).
    #[arg(long, default_value_t = 100)]
    pub followees: usize,
    /// Posts by those authors, spread over them at random.
    #[arg(long, default_value_t = 1_000)]
    pub tweets: usize,
    /// Posts with one image each.
    #[arg(long, default_value_t = 200)]
    pub images: usize,
    /// Likes in all, from the likers, on the posts (most on a few).
    #[arg(long, default_value_t = 5_000)]
    pub likes: usize,
    /// Accounts who like (`mb_fan_000`, ...).
    #[arg(long, default_value_t = 200)]
    pub likers: usize,
    /// Likers given an API key (the first ones), one per k6 VU that likes.
    #[arg(long, default_value_t = 50)]
    pub liker_keys: usize,
    /// Seed of the generator: the same seed gives the same data set (but
    /// the API keys and the media's storage keys, which are random).
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
    /// Where to write the viewer's and likers' ids and API keys and the
    /// post ids (JSON) for k6.
    #[arg(long, default_value = "loadtests/microblog-users.json")]
    pub keys_file: PathBuf,
}

#[derive(Debug, Args)]
pub struct SeedBenchArgs {
    /// Ordinary users (`bench_00000`, ...).
    #[arg(long, default_value_t = 11_000)]
    pub users: usize,
    /// Posts in all, the celebrities' included.
    #[arg(long, default_value_t = 1_000_000)]
    pub posts: usize,
    /// Random followees of each ordinary user.
    #[arg(long, default_value_t = 20)]
    pub follows_per_user: usize,
    /// One celebrity per value, followed by exactly that many users
    /// (comma-separated). Over ROOKERY_FANOUT_LIMIT, a celebrity is merged on read.
    #[arg(long, value_delimiter = ',', default_value = "1000,10000")]
    pub celebrity_followers: Vec<usize>,
    /// The newest posts of each followed author put into a timeline (the
    /// server backfills 100 on a new follow).
    #[arg(long, default_value_t = 100)]
    pub timeline_depth: usize,
    /// The password every bench user shares.
    #[arg(long, default_value = "bench-password")]
    pub password: String,
    /// Seed of the generator of the graph and the posts.
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
    /// Where to write the users' ids, usernames and API keys (JSON) for k6.
    #[arg(long, default_value = "loadtests/bench-users.json")]
    pub keys_file: PathBuf,
}

/// An account's role, as `user create --role` takes it (the domain's
/// `Role`, kept apart so the command line depends on nothing below it).
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum RoleArg {
    User,
    Moderator,
    Admin,
}

#[derive(Debug, Subcommand)]
pub enum UserCommand {
    /// Create an account, for example the first admin.
    Create {
        #[arg(long)]
        username: String,
        #[arg(long)]
        email: String,
        #[arg(long, value_enum, default_value_t = RoleArg::User)]
        role: RoleArg,
        /// Read the password from standard input instead of prompting.
        #[arg(long)]
        password_stdin: bool,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    Pretty,
    Json,
}

/// Every setting, as a flag that falls back to an environment variable.
#[derive(Debug, Args)]
pub struct SettingsArgs {
    /// PostgreSQL connection URL (required).
    #[arg(
        long,
        env = "DATABASE_URL",
        value_name = "DATABASE_URL",
        global = true,
        hide_env_values = true
    )]
    pub database_url: Option<String>,
    /// Redis URL; carries events between nodes and enables the Redis readiness check.
    #[arg(
        long,
        env = "REDIS_URL",
        value_name = "REDIS_URL",
        global = true,
        hide_env_values = true
    )]
    pub redis_url: Option<String>,
    /// Address to listen on.
    #[arg(long = "bind", env = "ROOKERY_BIND", value_name = "ROOKERY_BIND", global = true, default_value = DEFAULT_BIND)]
    pub bind: SocketAddr,
    /// Secret for signing access tokens (at least 32 bytes). Random when unset.
    #[arg(
        long,
        env = "JWT_SECRET",
        value_name = "JWT_SECRET",
        global = true,
        hide_env_values = true
    )]
    pub jwt_secret: Option<String>,
    /// Tracing filter, for example `info` or `rookery=debug,info`.
    #[arg(long = "log", env = "ROOKERY_LOG", value_name = "ROOKERY_LOG", global = true, default_value = DEFAULT_LOG_FILTER)]
    pub log_filter: String,
    /// Log line format.
    #[arg(long, env = "ROOKERY_LOG_FORMAT", value_name = "ROOKERY_LOG_FORMAT", global = true, value_enum, default_value_t = LogFormat::Pretty)]
    pub log_format: LogFormat,
    /// Largest accepted JSON body, in bytes.
    #[arg(long, env = "ROOKERY_JSON_LIMIT", value_name = "ROOKERY_JSON_LIMIT", global = true, default_value_t = DEFAULT_JSON_LIMIT, value_parser = at_least::<usize>(1024, " bytes"))]
    pub json_limit: usize,
    /// Password checks allowed per minute: failed ones per client address, and all of them per account (login, password change, account deletion).
    #[arg(long, env = "ROOKERY_LOGIN_PER_MINUTE", value_name = "ROOKERY_LOGIN_PER_MINUTE", global = true, default_value_t = NonZeroU32::new(DEFAULT_LOGIN_PER_MINUTE).unwrap_or(NonZeroU32::MIN))]
    pub login_per_minute: NonZeroU32,
    /// Registrations allowed per minute per client address (each costs a password hash).
    #[arg(long, env = "ROOKERY_REGISTER_PER_MINUTE", value_name = "ROOKERY_REGISTER_PER_MINUTE", global = true, default_value_t = NonZeroU32::new(DEFAULT_REGISTER_PER_MINUTE).unwrap_or(NonZeroU32::MIN))]
    pub register_per_minute: NonZeroU32,
    /// Password hashes computed at once (1 to 64); each holds a 19 MiB buffer, allocated on first use and kept. Default: the number of CPU cores.
    #[arg(
        long,
        env = "ROOKERY_HASH_CONCURRENCY",
        value_name = "ROOKERY_HASH_CONCURRENCY",
        global = true,
        value_parser = between::<usize>(1, MAX_HASH_CONCURRENCY as i128, "")
    )]
    pub hash_concurrency: Option<usize>,
    /// Take the client address from `Forwarded`/`X-Forwarded-For` (only behind a trusted proxy).
    #[arg(
        long,
        env = "ROOKERY_TRUST_PROXY",
        value_name = "ROOKERY_TRUST_PROXY",
        global = true,
        default_value_t = false,
        value_parser = clap::builder::BoolishValueParser::new()
    )]
    pub trust_proxy: bool,
    /// Largest number of PostgreSQL connections in the pool.
    #[arg(long, env = "ROOKERY_DB_MAX_CONNECTIONS", value_name = "ROOKERY_DB_MAX_CONNECTIONS", global = true, default_value_t = DEFAULT_DB_MAX_CONNECTIONS, value_parser = at_least::<u32>(1, ""))]
    pub db_max_connections: u32,
    /// Seconds to wait for a database connection before answering 503.
    #[arg(long, env = "ROOKERY_DB_ACQUIRE_TIMEOUT", value_name = "ROOKERY_DB_ACQUIRE_TIMEOUT", global = true, default_value_t = DEFAULT_DB_ACQUIRE_TIMEOUT_SECS)]
    pub db_acquire_timeout: u64,
    /// Seconds given to in-flight requests on shutdown.
    #[arg(long, env = "ROOKERY_SHUTDOWN_TIMEOUT", value_name = "ROOKERY_SHUTDOWN_TIMEOUT", global = true, default_value_t = DEFAULT_SHUTDOWN_TIMEOUT_SECS)]
    pub shutdown_timeout: u64,
    /// Lifetime of access tokens, in seconds.
    #[arg(long, env = "ROOKERY_ACCESS_TOKEN_TTL", value_name = "ROOKERY_ACCESS_TOKEN_TTL", global = true, default_value_t = DEFAULT_ACCESS_TOKEN_TTL_SECS, value_parser = between::<u64>(1, 86_400, " seconds"))]
    pub access_token_ttl: u64,
    /// Lifetime of refresh tokens, in days.
    #[arg(long, env = "ROOKERY_REFRESH_TOKEN_TTL_DAYS", value_name = "ROOKERY_REFRESH_TOKEN_TTL_DAYS", global = true, default_value_t = DEFAULT_REFRESH_TOKEN_TTL_DAYS, value_parser = between::<u64>(1, 3650, " days"))]
    pub refresh_token_ttl_days: u64,
    /// Authors with more followers than this are not fanned out on write; their posts are merged into feeds on read.
    #[arg(long, env = "ROOKERY_FANOUT_LIMIT", value_name = "ROOKERY_FANOUT_LIMIT", global = true, default_value_t = DEFAULT_FANOUT_LIMIT, value_parser = at_least::<i64>(0, ""))]
    pub fanout_limit: i64,
    /// Milliseconds a new post's timeline write waits after its followers were told live, when the fan-out took more than one step (1,000 followers or more), so the bulk insert does not compete with the delivery.
    #[arg(
        long,
        env = "ROOKERY_TIMELINE_WRITE_DELAY_MS",
        value_name = "ROOKERY_TIMELINE_WRITE_DELAY_MS",
        global = true,
        default_value_t = DEFAULT_TIMELINE_WRITE_DELAY_MS,
        value_parser = between::<u64>(0, MAX_TIMELINE_WRITE_DELAY_MS as i128, " milliseconds")
    )]
    pub timeline_write_delay_ms: u64,
    /// Seconds a supervisor's batch may run before the supervisor is taken as stuck and restarted (its batch rolled back and retried).
    #[arg(
        long,
        env = "ROOKERY_SUPERVISOR_BATCH_TIMEOUT",
        value_name = "ROOKERY_SUPERVISOR_BATCH_TIMEOUT",
        global = true,
        default_value_t = DEFAULT_SUPERVISOR_BATCH_TIMEOUT_SECS,
        value_parser = between::<u64>(1, MAX_SUPERVISOR_BATCH_TIMEOUT_SECS as i128, " seconds")
    )]
    pub supervisor_batch_timeout: u64,
    /// Seconds between WebSocket pings; a connection that misses two pongs is closed.
    #[arg(
        long,
        env = "ROOKERY_WS_HEARTBEAT",
        value_name = "ROOKERY_WS_HEARTBEAT",
        global = true,
        default_value_t = 20,
        value_parser = at_least::<u64>(1, " second")
    )]
    pub ws_heartbeat: u64,
    /// Events queued per WebSocket connection before a client that stopped reading is cut off (1013).
    #[arg(
        long,
        env = "ROOKERY_WS_SEND_QUEUE",
        value_name = "ROOKERY_WS_SEND_QUEUE",
        global = true,
        default_value_t = 256,
        value_parser = at_least::<usize>(1, "")
    )]
    pub ws_send_queue: usize,
    /// Blocked terms for the moderation analyzer, comma-separated; a term ending in `*` also matches longer words it begins.
    #[arg(
        long,
        env = "ROOKERY_BLOCKED_TERMS",
        value_name = "ROOKERY_BLOCKED_TERMS",
        global = true,
        value_delimiter = ','
    )]
    pub blocked_terms: Vec<String>,
    /// A file of further blocked terms, one per line (`#` starts a comment).
    #[arg(
        long,
        env = "ROOKERY_BLOCKED_TERMS_FILE",
        value_name = "ROOKERY_BLOCKED_TERMS_FILE",
        global = true
    )]
    pub blocked_terms_file: Option<PathBuf>,
    /// Links allowed in one post or comment before moderation hides it; 0 allows none.
    #[arg(long, env = "ROOKERY_MAX_LINKS", value_name = "ROOKERY_MAX_LINKS", global = true, default_value_t = DEFAULT_MAX_LINKS)]
    pub max_links: usize,
    /// Largest accepted media upload, in bytes.
    #[arg(long, env = "ROOKERY_MEDIA_MAX_BYTES", value_name = "ROOKERY_MEDIA_MAX_BYTES", global = true, default_value_t = DEFAULT_MEDIA_MAX_BYTES, value_parser = at_least::<usize>(1024, " bytes"))]
    pub media_max_bytes: usize,
    /// Directory for uploaded media when no S3 bucket is configured.
    #[arg(long, env = "ROOKERY_MEDIA_DIR", value_name = "ROOKERY_MEDIA_DIR", global = true, default_value = DEFAULT_MEDIA_DIR)]
    pub media_dir: PathBuf,
    /// The server's public base URL, used for links to locally stored media.
    #[arg(long, env = "ROOKERY_PUBLIC_URL", value_name = "ROOKERY_PUBLIC_URL", global = true, default_value = DEFAULT_PUBLIC_URL)]
    pub public_url: String,
    /// S3 bucket for media; when unset, media are stored in ROOKERY_MEDIA_DIR.
    #[arg(long, env = "S3_BUCKET", value_name = "S3_BUCKET", global = true)]
    pub s3_bucket: Option<String>,
    /// S3 region (any name for S3-compatible servers such as MinIO).
    #[arg(long, env = "S3_REGION", value_name = "S3_REGION", global = true, default_value = DEFAULT_S3_REGION)]
    pub s3_region: String,
    /// S3 endpoint URL for S3-compatible servers, for example http://minio:9000; AWS when unset.
    #[arg(long, env = "S3_ENDPOINT", value_name = "S3_ENDPOINT", global = true)]
    pub s3_endpoint: Option<String>,
    /// S3 access key id.
    #[arg(
        long,
        env = "S3_ACCESS_KEY",
        value_name = "S3_ACCESS_KEY",
        global = true,
        hide_env_values = true
    )]
    pub s3_access_key: Option<String>,
    /// S3 secret access key.
    #[arg(
        long,
        env = "S3_SECRET_KEY",
        value_name = "S3_SECRET_KEY",
        global = true,
        hide_env_values = true
    )]
    pub s3_secret_key: Option<String>,
    /// Address objects as ENDPOINT/BUCKET/KEY (MinIO) rather than BUCKET.ENDPOINT/KEY.
    #[arg(long, env = "S3_PATH_STYLE", value_name = "S3_PATH_STYLE", global = true, default_value_t = true, action = ArgAction::Set, value_parser = BoolishValueParser::new())]
    pub s3_path_style: bool,
    /// Public base URL of the bucket (objects at BASE/KEY); when unset, links are presigned.
    #[arg(
        long,
        env = "S3_PUBLIC_URL",
        value_name = "S3_PUBLIC_URL",
        global = true
    )]
    pub s3_public_url: Option<String>,
    /// Directory of a built single-page web client, served at `/` (index.html for unknown paths).
    #[arg(
        long,
        env = "ROOKERY_STATIC_DIR",
        value_name = "ROOKERY_STATIC_DIR",
        global = true
    )]
    pub static_dir: Option<PathBuf>,
    /// Origins allowed to call the API from a browser, comma-separated, or `*` for any.
    #[arg(
        long,
        env = "ROOKERY_CORS_ORIGINS",
        value_name = "ROOKERY_CORS_ORIGINS",
        global = true
    )]
    pub cors_origins: Option<String>,
    /// Most tweets in an unpaged GET /api/tweets; the likes ranking covers this many newest posts.
    #[arg(long, env = "ROOKERY_COMPAT_FEED_CAP", value_name = "ROOKERY_COMPAT_FEED_CAP", global = true, default_value_t = DEFAULT_COMPAT_FEED_CAP, value_parser = between::<i64>(1, MAX_COMPAT_FEED_CAP as i128, ""))]
    pub compat_feed_cap: i64,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Result<Cli, String> {
        let mut all = vec!["rookery", "--database-url", "postgres://x/y"];
        all.extend_from_slice(args);
        Cli::try_parse_from(all).map_err(|e| e.to_string())
    }

    /// `value` for `flag` is refused while parsing, naming the flag, its
    /// variable and the accepted range.
    fn assert_refused(flag: &str, var: &str, value: &str, reason: &str) {
        // `--flag=value`, so that a negative value is not taken for a flag.
        let arg = format!("{flag}={value}");
        let err = parse(&[&arg]).unwrap_err();
        assert!(
            err.contains(&format!("invalid value '{value}' for '{flag} <{var}>'")),
            "{flag} {value}: {err}"
        );
        assert!(err.contains(reason), "{flag} {value}: {err}");
    }

    #[test]
    fn every_bounded_number_is_refused_outside_its_range() {
        // flag variable | refused values | accepted values | reason
        let cases = [
            "--json-limit ROOKERY_JSON_LIMIT | 1023 -1 | 1024 | must be at least 1024 bytes",
            "--db-max-connections ROOKERY_DB_MAX_CONNECTIONS | 0 | 1 | must be at least 1",
            "--access-token-ttl ROOKERY_ACCESS_TOKEN_TTL | 0 86401 | 1 86400 | must be 1 to 86400 seconds",
            "--refresh-token-ttl-days ROOKERY_REFRESH_TOKEN_TTL_DAYS | 0 3651 | 1 3650 | must be 1 to 3650 days",
            "--fanout-limit ROOKERY_FANOUT_LIMIT | -1 | 0 | must be at least 0",
            "--timeline-write-delay-ms ROOKERY_TIMELINE_WRITE_DELAY_MS | -1 60001 | 0 60000 | must be 0 to 60000 milliseconds",
            "--supervisor-batch-timeout ROOKERY_SUPERVISOR_BATCH_TIMEOUT | 0 3601 | 1 3600 | must be 1 to 3600 seconds",
            "--hash-concurrency ROOKERY_HASH_CONCURRENCY | 0 65 | 1 64 | must be 1 to 64",
            "--ws-heartbeat ROOKERY_WS_HEARTBEAT | 0 | 1 | must be at least 1 second",
            "--ws-send-queue ROOKERY_WS_SEND_QUEUE | 0 | 1 | must be at least 1",
            "--media-max-bytes ROOKERY_MEDIA_MAX_BYTES | 1023 | 1024 | must be at least 1024 bytes",
            "--compat-feed-cap ROOKERY_COMPAT_FEED_CAP | 0 10001 | 1 10000 | must be 1 to 10000",
        ];
        for case in cases {
            let [names, refused, accepted, reason] = *case.split(" | ").collect::<Vec<_>>() else {
                panic!("{case}");
            };
            let (flag, var) = names.split_once(' ').unwrap();
            for value in refused.split(' ').chain(["many"]) {
                assert_refused(flag, var, value, reason);
            }
            for value in accepted.split(' ') {
                let arg = format!("{flag}={value}");
                parse(&[&arg]).unwrap_or_else(|e| panic!("{arg}: {e}"));
            }
        }
    }

    #[test]
    fn user_create_takes_a_role() {
        let create = |role: &[&str]| {
            let mut args = vec!["user", "create", "--username", "a", "--email", "a@x.y"];
            args.extend_from_slice(role);
            match parse(&args)?.command {
                Some(Command::User(UserCommand::Create { role, .. })) => Ok(role),
                other => panic!("{other:?}"),
            }
        };
        assert_eq!(create(&[]), Ok(RoleArg::User));
        assert_eq!(create(&["--role", "admin"]), Ok(RoleArg::Admin));
        let err: String = create(&["--role", "root"]).unwrap_err();
        assert!(err.contains("--role"), "{err}");
    }
}
