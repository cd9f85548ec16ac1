//! Startup and what every part shares: settings become an [`state::AppState`]
//! (the pool, the engine, the hasher, the throttles), telemetry and metrics.

pub mod db;
pub mod metrics;
pub mod startup;
pub mod state;
pub mod telemetry;
