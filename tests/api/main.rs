//! Integration tests: the real server on port 0, a fresh database per test,
//! driven through a real HTTP client. One binary, so linking happens once.
#![allow(clippy::unwrap_used)]

mod api_keys;
mod auth;
mod bench;
mod cli;
mod cluster;
mod comments;
mod compat;
mod errors;
mod fallback;
mod feed;
mod helpers;
mod idempotency;
mod impersonation;
mod me;
mod media;
mod moderation;
mod openapi;
mod ops;
mod posts;
mod pulled;
mod reactions;
mod revocation;
mod seed_microblog;
mod social;
mod stream;
mod subscriptions;
mod throttle;
mod visibility;
