//! Rookery: a real-time social-media backend.
//!
//! # Layout
//!
//! - [`cli`]: the commands, and every setting as a flag with an environment
//!   variable fallback; numeric ranges are checked as they are parsed.
//! - [`config`]: the validated [`config::Settings`], grouped by concern and
//!   read once at start-up.
//! - [`app`]: startup (a bound server that tests start on port 0), the
//!   state every handler gets, the pool, telemetry, metrics, throttles.
//! - [`http`]: the edge, and the only code that knows actix-web: the route
//!   table, error mapping, extractors, the native API (`/api/v1`), the
//!   microblog-compatible API (`/api`) and a served web client.
//! - [`domain`]: what Rookery does, without HTTP: accounts, the social graph,
//!   posts, comments, media, the home feed and notifications. Each module
//!   owns its tables' SQL and announces its writes as events.
//! - [`seed`]: demo and benchmark data.
//!
//! The real-time engine (supervisors, the bus, per-user session actors) is
//! the `rookery-actors` crate; ARCHITECTURE.md draws the whole map.

pub mod app;
pub mod cli;
pub mod config;
pub mod domain;
pub mod http;
pub mod seed;
