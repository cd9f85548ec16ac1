//! The consumers of the outbox: one supervisor per consumer reads the
//! events in order and handles each batch in one transaction. [`moderation`]
//! screens new text (with the [`analyzer`]'s rules) before [`feed`] writes
//! timelines and [`notifications`] writes notifications.

pub mod analyzer;
pub mod feed;
pub mod moderation;
pub mod notifications;
pub(crate) mod supervisor;
