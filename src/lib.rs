//! Rookery: a real-time social-media backend.
//!
//! # Layout
//!
//! - [`cli`]: the commands, and every setting as a flag with an environment
//!   variable fallback; numeric ranges are checked as they are parsed.
//!   It imports nothing of the crate.
//! - [`config`]: the validated [`config::Settings`], grouped by concern and
//!   read once at start-up.
//! - [`app`]: startup (a bound server that tests start on port 0), the
//!   pool, telemetry and metrics.
//! - [`http`]: the edge: the route table, the state handlers get, error
//!   mapping, extractors, the native API (`/api/v1`), the
//!   microblog-compatible API (`/api`) and a served web client.
//! - [`domain`]: what Rookery does, without HTTP: accounts, the social graph,
//!   posts, comments, media, the home feed and notifications. Modules keep
//!   the SQL of the tables they own and announce their writes as events.
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
