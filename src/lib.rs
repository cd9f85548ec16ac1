//! Rookery: a real-time social-media backend. See ARCHITECTURE.md for the map.

pub mod accounts;
pub mod bench;
pub mod comments;
pub mod compat;
pub mod db;
pub mod domain;
pub mod error;
pub mod events;
pub mod extract;
pub mod home;
pub mod idempotency;
pub mod media;
pub mod metrics;
pub mod openapi;
pub mod pagination;
pub mod posts;
pub mod ratelimit;
pub mod routes;
pub mod settings;
pub mod social;
pub mod startup;
pub mod state;
pub mod telemetry;
