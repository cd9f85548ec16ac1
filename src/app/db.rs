//! The connection pool and the embedded migrations.

use std::time::Duration;

use secrecy::ExposeSecret as _;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::Connection as _;
use sqlx::PgPool;

use crate::config::DatabaseSettings;

pub static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");

/// A connection idle longer than this is pinged before it is handed out.
/// HikariCP skips the check for connections used within the last 500 ms
/// too: under load, nearly every connection is, and the ping is a round trip.
const CHECK_IDLE_AFTER: Duration = Duration::from_millis(500);

/// A lazy pool: start-up does not wait for the database, and a request that
/// cannot get a connection within the acquire timeout gets a 503.
pub fn pool(settings: &DatabaseSettings) -> Result<PgPool, sqlx::Error> {
    let options: PgConnectOptions = settings.url.expose_secret().parse()?;
    Ok(PgPoolOptions::new()
        .max_connections(settings.max_connections)
        .acquire_timeout(settings.acquire_timeout)
        // sqlx pings every connection it hands out: a round trip before each
        // request's first query and each step of a fan-out. One used moments
        // ago is skipped; one that sat idle longer is still checked, and a
        // dead one replaced. A connection killed within that half second (a
        // database restart) fails one request with a 503 and is dropped.
        .test_before_acquire(false)
        .before_acquire(|conn, meta| {
            Box::pin(async move {
                if meta.idle_for > CHECK_IDLE_AFTER {
                    conn.ping().await?;
                }
                Ok(true)
            })
        })
        .connect_lazy_with(options.application_name("rookery")))
}

pub async fn migrate(pool: &PgPool) -> Result<(), sqlx::migrate::MigrateError> {
    MIGRATOR.run(pool).await
}
