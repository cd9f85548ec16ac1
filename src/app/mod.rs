//! Startup: [`startup`] turns the settings into the state every handler gets
//! ([`crate::http::state::AppState`]: the pool, the engine, the hasher, the
//! throttles) and a bound server; the pool, telemetry and metrics.

pub mod db;
pub mod metrics;
pub mod startup;
pub mod telemetry;
