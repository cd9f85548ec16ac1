//! Configuration: read once at start-up from flags and environment variables
//! ([`crate::cli::SettingsArgs`], where numeric ranges are checked as they are
//! parsed), validated here into [`Settings`], and never read from the
//! environment again. What is checked here needs more than one number: URL
//! schemes, the JWT secret's length, files and directories, S3 credentials
//! that come with a bucket, CORS origins, the log filter.

use std::net::SocketAddr;
use std::num::NonZeroU32;
use std::path::{Path, PathBuf};
use std::time::Duration;

use argon2::password_hash::rand_core::{OsRng, RngCore as _};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use clap::Parser as _;
use secrecy::SecretString;

use crate::cli::{Cli, LogFormat, SettingsArgs, MAX_HASH_CONCURRENCY};

/// HS256 keys shorter than the hash output weaken the MAC (RFC 7518 §3.2).
pub const MIN_JWT_SECRET_BYTES: usize = 32;

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("{0} is required (set the environment variable or pass the flag)")]
    Missing(&'static str),
    #[error("{var} is invalid: {reason}")]
    Invalid { var: &'static str, reason: String },
}

/// The validated configuration, by concern. `Debug` never shows secrets
/// (they are `SecretString`).
#[derive(Debug, Clone)]
pub struct Settings {
    pub database: DatabaseSettings,
    /// Redis, when set: carries events between nodes, shares the throttles'
    /// buckets between them, and is checked by the readiness probe.
    pub redis_url: Option<SecretString>,
    pub http: HttpSettings,
    pub auth: AuthSettings,
    pub realtime: RealtimeSettings,
    pub moderation: ModerationSettings,
    pub media: MediaSettings,
    pub log: LogSettings,
}

/// PostgreSQL and its pool.
#[derive(Debug, Clone)]
pub struct DatabaseSettings {
    pub url: SecretString,
    pub max_connections: u32,
    /// How long a request waits for a connection before it gets a 503.
    pub acquire_timeout: Duration,
}

/// The server and what it answers with.
#[derive(Debug, Clone)]
pub struct HttpSettings {
    pub bind: SocketAddr,
    /// The largest JSON body, in bytes.
    pub json_limit: usize,
    /// Take the client address from `Forwarded`/`X-Forwarded-For`.
    pub trust_proxy: bool,
    /// What in-flight requests get on shutdown.
    pub shutdown_timeout: Duration,
    pub cors: CorsOrigins,
    /// A directory holding `index.html`, checked at start.
    pub static_dir: Option<PathBuf>,
    /// The most tweets in an unpaged GET /api/tweets.
    pub compat_feed_cap: i64,
}

/// Tokens, password hashing and the limits on what costs a hash.
#[derive(Debug, Clone)]
pub struct AuthSettings {
    pub jwt: JwtSecret,
    pub access_token_ttl: Duration,
    pub refresh_token_ttl: Duration,
    /// Password hashes at once, and so argon2 buffers of 19 MiB at most.
    pub hash_concurrency: usize,
    pub login_per_minute: NonZeroU32,
    pub register_per_minute: NonZeroU32,
}

/// Where the JWT secret came from: a generated one does not survive a restart.
#[derive(Debug, Clone)]
pub struct JwtSecret {
    pub secret: SecretString,
    pub generated: bool,
}

/// The real-time engine: fan-out, its supervisors and the WebSocket sessions.
#[derive(Debug, Clone)]
pub struct RealtimeSettings {
    /// Authors with more followers are merged into feeds on read.
    pub fanout_limit: i64,
    pub timeline_write_delay: Duration,
    pub supervisor_batch_timeout: Duration,
    pub ws_heartbeat: Duration,
    pub ws_send_queue: usize,
}

/// The moderation analyzer.
#[derive(Debug, Clone)]
pub struct ModerationSettings {
    /// Blocked terms, from the list and the file.
    pub blocked_terms: Vec<String>,
    /// Links allowed in one post or comment.
    pub max_links: usize,
}

/// Uploaded media and where they are stored.
#[derive(Debug, Clone)]
pub struct MediaSettings {
    pub max_bytes: usize,
    /// Without a trailing slash.
    pub public_url: String,
    pub storage: StorageSettings,
}

#[derive(Debug, Clone)]
pub enum StorageSettings {
    Local { dir: PathBuf },
    S3(S3Settings),
}

#[derive(Debug, Clone)]
pub struct S3Settings {
    pub bucket: String,
    pub region: String,
    pub endpoint: Option<String>,
    pub access_key: String,
    pub secret_key: SecretString,
    pub path_style: bool,
    /// Without a trailing slash.
    pub public_url: Option<String>,
}

/// The log filter (checked to parse) and line format.
#[derive(Debug, Clone)]
pub struct LogSettings {
    pub filter: String,
    pub format: LogFormat,
}

/// Which browser origins may call the API from another origin.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CorsOrigins {
    /// No CORS headers at all: only same-origin pages can read answers.
    None,
    Any,
    /// Exact origins such as `https://client.example.com`, without a trailing slash.
    List(Vec<String>),
}

impl Settings {
    pub fn from_args(args: SettingsArgs) -> Result<Self, ConfigError> {
        // Of several mistakes, the first in this order is reported.
        let media = MediaSettings::from_args(&args)?;
        let database = DatabaseSettings::from_args(&args)?;
        let redis_url = redis_url(args.redis_url.as_deref())?;
        let auth = AuthSettings::from_args(&args)?;
        let moderation = ModerationSettings::from_args(&args)?;
        let http = HttpSettings::from_args(&args)?;
        let log = LogSettings::from_args(&args)?;
        Ok(Self {
            database,
            redis_url,
            http,
            auth,
            realtime: RealtimeSettings::from_args(&args),
            moderation,
            media,
            log,
        })
    }

    /// The defaults, for a given database: what tests and tools start from.
    pub fn with_database(database_url: &str) -> Result<Self, ConfigError> {
        let cli =
            Cli::try_parse_from(["rookery", "--database-url", database_url]).map_err(|e| {
                ConfigError::Invalid {
                    var: "DATABASE_URL",
                    reason: e.to_string(),
                }
            })?;
        Self::from_args(cli.settings)
    }
}

impl DatabaseSettings {
    fn from_args(args: &SettingsArgs) -> Result<Self, ConfigError> {
        let url = non_empty_untrimmed(args.database_url.as_deref())
            .ok_or(ConfigError::Missing("DATABASE_URL"))?;
        if !(url.starts_with("postgres://") || url.starts_with("postgresql://")) {
            return Err(ConfigError::Invalid {
                var: "DATABASE_URL",
                reason: "expected a URL starting with postgres:// or postgresql://".into(),
            });
        }
        Ok(Self {
            url: url.into(),
            max_connections: args.db_max_connections,
            acquire_timeout: Duration::from_secs(args.db_acquire_timeout),
        })
    }
}

fn redis_url(raw: Option<&str>) -> Result<Option<SecretString>, ConfigError> {
    let Some(url) = non_empty_untrimmed(raw) else {
        return Ok(None);
    };
    if !(url.starts_with("redis://") || url.starts_with("rediss://")) {
        return Err(ConfigError::Invalid {
            var: "REDIS_URL",
            reason: "expected a URL starting with redis:// or rediss://".into(),
        });
    }
    Ok(Some(url.into()))
}

impl AuthSettings {
    fn from_args(args: &SettingsArgs) -> Result<Self, ConfigError> {
        let jwt = match args.jwt_secret.as_deref().filter(|s| !s.is_empty()) {
            Some(secret) if secret.len() < MIN_JWT_SECRET_BYTES => {
                return Err(ConfigError::Invalid {
                    var: "JWT_SECRET",
                    reason: format!("must be at least {MIN_JWT_SECRET_BYTES} bytes long"),
                })
            }
            Some(secret) => JwtSecret {
                secret: secret.into(),
                generated: false,
            },
            None => JwtSecret {
                secret: random_secret(),
                generated: true,
            },
        };
        // The range is the argument's: only the default is chosen here.
        let hash_concurrency = args.hash_concurrency.unwrap_or_else(|| {
            std::thread::available_parallelism()
                .map(|n| n.get())
                .unwrap_or(2)
                .min(MAX_HASH_CONCURRENCY)
        });
        Ok(Self {
            jwt,
            access_token_ttl: Duration::from_secs(args.access_token_ttl),
            refresh_token_ttl: Duration::from_secs(args.refresh_token_ttl_days * 24 * 3600),
            hash_concurrency,
            login_per_minute: args.login_per_minute,
            register_per_minute: args.register_per_minute,
        })
    }
}

/// A secret for a start without JWT_SECRET: 48 bytes from the OS, as URL-safe
/// base64 (64 characters).
fn random_secret() -> SecretString {
    let mut bytes = [0u8; 48];
    OsRng.fill_bytes(&mut bytes);
    URL_SAFE_NO_PAD.encode(bytes).into()
}

impl ModerationSettings {
    fn from_args(args: &SettingsArgs) -> Result<Self, ConfigError> {
        let mut blocked_terms: Vec<String> = args
            .blocked_terms
            .iter()
            .map(|t| t.trim().to_owned())
            .filter(|t| !t.is_empty())
            .collect();
        if let Some(path) = &args.blocked_terms_file {
            let text = std::fs::read_to_string(path).map_err(|e| ConfigError::Invalid {
                var: "ROOKERY_BLOCKED_TERMS_FILE",
                reason: format!("cannot read {}: {e}", path.display()),
            })?;
            blocked_terms.extend(
                text.lines()
                    .map(str::trim)
                    .filter(|l| !l.is_empty() && !l.starts_with('#'))
                    .map(str::to_owned),
            );
        }
        Ok(Self {
            blocked_terms,
            max_links: args.max_links,
        })
    }
}

impl HttpSettings {
    fn from_args(args: &SettingsArgs) -> Result<Self, ConfigError> {
        let cors = cors_origins(args.cors_origins.as_deref())?;
        let static_dir = static_dir(args.static_dir.as_deref())?;
        Ok(Self {
            bind: args.bind,
            json_limit: args.json_limit,
            trust_proxy: args.trust_proxy,
            shutdown_timeout: Duration::from_secs(args.shutdown_timeout),
            cors,
            static_dir,
            compat_feed_cap: args.compat_feed_cap,
        })
    }
}

fn cors_origins(raw: Option<&str>) -> Result<CorsOrigins, ConfigError> {
    let invalid = |reason: String| ConfigError::Invalid {
        var: "ROOKERY_CORS_ORIGINS",
        reason,
    };
    let origins: Vec<&str> = raw
        .unwrap_or_default()
        .split(',')
        .map(str::trim)
        .filter(|o| !o.is_empty())
        .collect();
    match origins.as_slice() {
        [] => return Ok(CorsOrigins::None),
        ["*"] => return Ok(CorsOrigins::Any),
        _ => {}
    }
    let mut list = Vec::with_capacity(origins.len());
    for origin in origins {
        let origin = origin.trim_end_matches('/');
        let host = origin
            .strip_prefix("http://")
            .or_else(|| origin.strip_prefix("https://"))
            .filter(|rest| !rest.is_empty() && !rest.contains(['/', '?', '#', '*']))
            .ok_or_else(|| {
                invalid(format!(
                    "'{origin}' is not an origin: expected scheme://host[:port], such as \
                     https://client.example.com, or * alone for any origin"
                ))
            })?;
        // The CORS middleware would refuse to start on an origin it cannot parse.
        actix_web::http::Uri::try_from(origin)
            .map_err(|e| invalid(format!("'{origin}' is not a valid origin ({host}): {e}")))?;
        list.push(origin.to_owned());
    }
    Ok(CorsOrigins::List(list))
}

fn static_dir(raw: Option<&Path>) -> Result<Option<PathBuf>, ConfigError> {
    let Some(dir) = raw.filter(|d| !d.as_os_str().is_empty()) else {
        return Ok(None);
    };
    let invalid = |reason: String| ConfigError::Invalid {
        var: "ROOKERY_STATIC_DIR",
        reason,
    };
    if !dir.is_dir() {
        return Err(invalid(format!("{} is not a directory", dir.display())));
    }
    if !dir.join("index.html").is_file() {
        return Err(invalid(format!(
            "{} has no index.html: point it at the built web client",
            dir.display()
        )));
    }
    Ok(Some(dir.to_owned()))
}

impl MediaSettings {
    fn from_args(args: &SettingsArgs) -> Result<Self, ConfigError> {
        let public_url = http_url("ROOKERY_PUBLIC_URL", &args.public_url)?;
        let storage = match non_empty(args.s3_bucket.as_deref()) {
            None => {
                if args.media_dir.as_os_str().is_empty() {
                    return Err(ConfigError::Missing("ROOKERY_MEDIA_DIR"));
                }
                StorageSettings::Local {
                    dir: args.media_dir.clone(),
                }
            }
            Some(bucket) => {
                // Explicit keys only: the ambient AWS credential chain would make
                // a misconfigured deployment fail on the first upload, not at start.
                let access_key = non_empty(args.s3_access_key.as_deref())
                    .ok_or(ConfigError::Missing("S3_ACCESS_KEY"))?;
                let secret_key = non_empty(args.s3_secret_key.as_deref())
                    .ok_or(ConfigError::Missing("S3_SECRET_KEY"))?;
                let region = args.s3_region.trim().to_owned();
                if region.is_empty() {
                    return Err(ConfigError::Missing("S3_REGION"));
                }
                StorageSettings::S3(S3Settings {
                    bucket,
                    region,
                    endpoint: non_empty(args.s3_endpoint.as_deref())
                        .map(|e| http_url("S3_ENDPOINT", &e))
                        .transpose()?,
                    access_key,
                    secret_key: secret_key.into(),
                    path_style: args.s3_path_style,
                    public_url: non_empty(args.s3_public_url.as_deref())
                        .map(|u| http_url("S3_PUBLIC_URL", &u))
                        .transpose()?,
                })
            }
        };
        Ok(Self {
            max_bytes: args.media_max_bytes,
            public_url,
            storage,
        })
    }
}

fn http_url(var: &'static str, value: &str) -> Result<String, ConfigError> {
    let value = value.trim().trim_end_matches('/');
    if !(value.starts_with("http://") || value.starts_with("https://")) {
        return Err(ConfigError::Invalid {
            var,
            reason: "expected a URL starting with http:// or https://".into(),
        });
    }
    Ok(value.to_owned())
}

impl LogSettings {
    fn from_args(args: &SettingsArgs) -> Result<Self, ConfigError> {
        tracing_subscriber::EnvFilter::try_new(&args.log_filter).map_err(|e| {
            ConfigError::Invalid {
                var: "ROOKERY_LOG",
                reason: e.to_string(),
            }
        })?;
        Ok(Self {
            filter: args.log_filter.clone(),
            format: args.log_format,
        })
    }
}

impl RealtimeSettings {
    fn from_args(args: &SettingsArgs) -> Self {
        Self {
            fanout_limit: args.fanout_limit,
            timeline_write_delay: Duration::from_millis(args.timeline_write_delay_ms),
            supervisor_batch_timeout: Duration::from_secs(args.supervisor_batch_timeout),
            ws_heartbeat: Duration::from_secs(args.ws_heartbeat),
            ws_send_queue: args.ws_send_queue,
        }
    }
}

/// Trimmed, and `None` when empty: an empty variable is an unset one.
fn non_empty(value: Option<&str>) -> Option<String> {
    value
        .map(str::trim)
        .filter(|v| !v.is_empty())
        .map(str::to_owned)
}

/// `None` when blank, kept as given otherwise (connection URLs are not trimmed).
fn non_empty_untrimmed(value: Option<&str>) -> Option<String> {
    value.filter(|v| !v.trim().is_empty()).map(str::to_owned)
}

#[cfg(test)]
mod tests;
