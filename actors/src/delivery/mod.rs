//! Getting events to the people who should see them, live or later: the
//! per-user event [`log`] (replayed on reconnect), the cross-node [`bus`]
//! (which also carries committed [`changes`] to every node's read caches),
//! the [`registry`] of session actors, the [`session`] actors and their
//! transports (WebSocket, SSE, long poll), the client [`protocol`], the
//! [`watch`] gate for post subscriptions and the [`herald`] for authors
//! merged into timelines on read.

pub mod bus;
pub mod changes;
pub mod herald;
pub mod log;
pub mod protocol;
pub mod registry;
pub mod session;
pub mod watch;
