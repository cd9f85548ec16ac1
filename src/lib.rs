//! Rookery: a real-time social-media backend. See ARCHITECTURE.md for the map.

pub mod accounts;
pub mod db;
pub mod error;
pub mod extract;
pub mod metrics;
pub mod openapi;
pub mod ratelimit;
pub mod routes;
pub mod settings;
pub mod startup;
pub mod state;
pub mod telemetry;
