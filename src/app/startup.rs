//! Building the application: one function turns [`Settings`] into a bound,
//! ready-to-run server, so `main` and the tests start exactly the same thing.

use std::net::TcpListener;
use std::sync::Arc;
use std::time::Duration;

use actix_cors::Cors;
use actix_web::dev::Server;
use actix_web::http::header::{self, HeaderName};
use actix_web::middleware::{from_fn, Condition};
use actix_web::{web, App, HttpServer};
use actix_web_prom::PrometheusMetricsBuilder;
use secrecy::ExposeSecret as _;
use utoipa::OpenApi as _;
use utoipa_swagger_ui::SwaggerUi;

use crate::app::metrics::{PoolCollector, SupervisorCollector};
use crate::app::{db, telemetry};
use crate::config::{CorsOrigins, Settings};
use crate::domain::accounts::throttle::Throttle;
use crate::domain::accounts::{JwtKeys, PasswordHasher};
use crate::domain::events::EventSink;
use crate::domain::media::{self, MediaService};
use crate::http::error;
use crate::http::state::AppState;
use crate::http::web_client;
use crate::http::{self, openapi};
use rookery_actors::consumers::analyzer::Analyzer;
use rookery_actors::delivery::changes::Listener;
use rookery_actors::delivery::session::SessionConfig;
use rookery_actors::{Engine, EngineConfig};

use crate::domain::cache::{CacheSettings, Caches};

#[derive(Debug, thiserror::Error)]
pub enum StartupError {
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        addr: std::net::SocketAddr,
        source: std::io::Error,
    },
    #[error("invalid DATABASE_URL: {0}")]
    Database(sqlx::Error),
    #[error("invalid REDIS_URL: {0}")]
    Redis(redis::RedisError),
    #[error("metrics: {0}")]
    Metrics(String),
    #[error("{0}")]
    Other(String),
}

pub struct Application {
    port: u16,
    server: Server,
    engine: Engine,
}

impl Application {
    pub async fn build(settings: Settings) -> Result<Self, StartupError> {
        let listener =
            TcpListener::bind(settings.http.bind).map_err(|source| StartupError::Bind {
                addr: settings.http.bind,
                source,
            })?;
        let port = listener
            .local_addr()
            .map_err(|e| StartupError::Other(e.to_string()))?
            .port();
        let db = db::pool(&settings.database).map_err(StartupError::Database)?;
        let redis = settings
            .redis_url
            .as_ref()
            .map(|url| redis::Client::open(url.expose_secret()))
            .transpose()
            .map_err(StartupError::Redis)?;
        let cores = std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(2);
        // One image worker per core: processing is pure CPU.
        let media = MediaService::new(&settings.media, cores)
            .map_err(|e| StartupError::Other(format!("media storage: {e}")))?;
        let caches = Caches::new(CacheSettings::default());
        let engine = Engine::start(
            db.clone(),
            EngineConfig {
                listener: Some(Listener(caches.clone())),
                fanout_limit: settings.realtime.fanout_limit,
                timeline_write_delay: settings.realtime.timeline_write_delay,
                batch_timeout: settings.realtime.supervisor_batch_timeout,
                session: SessionConfig {
                    heartbeat: settings.realtime.ws_heartbeat,
                    send_queue: settings.realtime.ws_send_queue,
                    ..SessionConfig::default()
                },
                redis: redis.clone(),
                bus_channel: rookery_actors::delivery::bus::channel_for(
                    db.connect_options().get_database().unwrap_or("rookery"),
                ),
                analyzer: std::sync::Arc::new(Analyzer::new(
                    &settings.moderation.blocked_terms,
                    Some(settings.moderation.max_links),
                )),
                ..EngineConfig::default()
            },
        );
        let state = AppState {
            jwt: JwtKeys::new(&settings.auth.jwt.secret, settings.auth.access_token_ttl),
            hasher: PasswordHasher::new(settings.auth.hash_concurrency)
                .map_err(|e| StartupError::Other(e.to_string()))?,
            throttle: Throttle::new(
                settings.auth.login_per_minute,
                settings.auth.register_per_minute,
                redis.clone(),
                // Nodes of one deployment share a database: its name keeps
                // deployments (and test databases) on one Redis apart.
                db.connect_options().get_database().unwrap_or("rookery"),
            ),
            events: EventSink::new(Some(engine.clone())),
            engine: engine.clone(),
            media,
            caches,
            db,
            redis,
            settings: Arc::new(settings),
        };
        let engine = state.engine.clone();
        let server = run(listener, state)?;
        Ok(Self {
            port,
            server,
            engine,
        })
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// The real-time engine, for tools and tests that attach to it directly.
    pub fn engine(&self) -> Engine {
        self.engine.clone()
    }

    /// Runs until the server is stopped through its handle (tests drop it).
    pub async fn run_until_stopped(self) -> std::io::Result<()> {
        self.server.await
    }

    /// Runs until SIGTERM or Ctrl-C, then stops gracefully: no new
    /// connections, in-flight requests finish (up to the shutdown timeout).
    pub async fn run_until_signalled(self) -> std::io::Result<()> {
        let handle = self.server.handle();
        let engine = self.engine.clone();
        actix_web::rt::spawn(async move {
            let signal = shutdown_signal().await;
            tracing::info!(signal, "shutting down gracefully");
            // WebSockets never finish on their own: tell them to go away (1001) so clients reconnect elsewhere.
            engine.shutdown().await;
            tokio::time::sleep(Duration::from_millis(200)).await;
            handle.stop(true).await;
        });
        self.server.await
    }
}

async fn shutdown_signal() -> &'static str {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => tokio::select! {
                _ = tokio::signal::ctrl_c() => "SIGINT",
                _ = term.recv() => "SIGTERM",
            },
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
                "SIGINT"
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
        "Ctrl-C"
    }
}

/// CORS for a web client served from another origin; off without
/// `ROOKERY_CORS_ORIGINS`. Requests from other origins are answered without
/// CORS headers rather than refused, so same-origin pages (which browsers
/// also send an `Origin` with) keep working and the browser enforces the rest.
fn cors(origins: &CorsOrigins) -> Condition<Cors> {
    let base = Cors::default()
        .allowed_methods(["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE"])
        .allowed_headers([
            header::CONTENT_TYPE,
            header::AUTHORIZATION,
            HeaderName::from_static(crate::http::extract::API_KEY_HEADER),
            HeaderName::from_static("x-request-id"),
        ])
        .expose_headers([
            header::LOCATION,
            header::RETRY_AFTER,
            HeaderName::from_static("x-request-id"),
        ])
        .max_age(3600)
        .block_on_origin_mismatch(false);
    let (enabled, cors) = match origins {
        CorsOrigins::None => (false, base),
        CorsOrigins::Any => (true, base.allow_any_origin()),
        CorsOrigins::List(list) => (
            true,
            list.iter()
                .fold(base, |cors, origin| cors.allowed_origin(origin)),
        ),
    };
    Condition::new(enabled, cors)
}

fn run(listener: TcpListener, state: AppState) -> Result<Server, StartupError> {
    let registry = prometheus::Registry::new();
    registry
        .register(Box::new(PoolCollector::new(state.db.clone())))
        .map_err(|e| StartupError::Metrics(e.to_string()))?;
    registry
        .register(Box::new(SupervisorCollector::new(state.engine.clone())))
        .map_err(|e| StartupError::Metrics(e.to_string()))?;
    let prometheus = PrometheusMetricsBuilder::new("rookery")
        .registry(registry)
        .endpoint("/metrics")
        // Unknown paths share one label, so random URLs cannot grow the registry.
        .mask_unmatched_patterns("UNKNOWN")
        .build()
        .map_err(|e| StartupError::Metrics(e.to_string()))?;

    let limiter = state.throttle.clone();
    actix_web::rt::spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_secs(60));
        loop {
            tick.tick().await;
            limiter.prune();
        }
    });

    let (service, db) = (state.media.clone(), state.db.clone());
    actix_web::rt::spawn(async move {
        let mut tick = tokio::time::interval(media::CLEANUP_INTERVAL);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            match service.cleanup_unattached(&db, media::UNATTACHED_TTL).await {
                Ok(0) => {}
                Ok(count) => tracing::info!(count, "deleted media never attached to a post"),
                Err(e) => tracing::warn!(error = %e, "media cleanup failed; retrying next hour"),
            }
            // Expired keys are ignored when read; this only keeps the table small.
            match crate::domain::idempotency::prune(&db).await {
                Ok(0) => {}
                Ok(count) => tracing::info!(count, "forgot expired idempotency keys"),
                Err(e) => tracing::warn!(error = %e, "idempotency key pruning failed"),
            }
        }
    });

    let shutdown_timeout = state.settings.http.shutdown_timeout.as_secs();
    let json_limit = state.settings.http.json_limit;
    let cors_origins = state.settings.http.cors.clone();
    let state = web::Data::new(state);
    let doc = openapi::ApiDoc::openapi();
    let server = HttpServer::new(move || {
        App::new()
            // Innermost first: error responses become problem documents before
            // metrics count them and the request span logs them.
            .wrap(error::problem_middleware())
            // Outside the problem middleware, so error responses get CORS
            // headers too (a browser hides an error body without them).
            .wrap(cors(&cors_origins))
            .wrap(prometheus.clone())
            .wrap(from_fn(telemetry::request_span))
            .app_data(state.clone())
            .app_data(
                web::JsonConfig::default()
                    .limit(json_limit)
                    .error_handler(error::json_error),
            )
            .app_data(web::QueryConfig::default().error_handler(error::query_error))
            .app_data(web::PathConfig::default().error_handler(error::path_error))
            .configure(http::configure)
            .service(web::redirect("/docs", "/docs/"))
            .service(SwaggerUi::new("/docs/{_:.*}").url("/openapi.json", doc.clone()))
            // The web client's files and single-page routes when
            // ROOKERY_STATIC_DIR is set; otherwise a 404 problem.
            .default_service(web::to(web_client::fallback))
    })
    .listen(listener)
    .map_err(|e| StartupError::Other(e.to_string()))?
    .shutdown_timeout(shutdown_timeout)
    // Signals are handled in `run_until_signalled`: actix treats Ctrl-C as a
    // forced stop, and we want it graceful like SIGTERM.
    .disable_signals()
    .run();
    Ok(server)
}
