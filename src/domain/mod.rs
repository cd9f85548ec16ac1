//! The domain: what Rookery does, with no HTTP in it. Each module owns its
//! tables and their SQL; reads of users and content go through the
//! database's visibility functions (`visible_users`, `visible_posts`,
//! `visible_comments`, `visible_notifications`) rather than a hand-written
//! block or moderation check.

pub mod accounts;
pub mod cache;
pub mod comments;
pub mod events;
pub mod feed;
pub mod idempotency;
pub mod media;
pub mod microblog;
pub mod notifications;
pub mod pagination;
pub mod posts;
pub mod social;

use std::collections::BTreeMap;

/// Field name to the messages that explain what is wrong with it.
pub type FieldErrors = BTreeMap<String, Vec<String>>;

/// The error shared by the content modules (social graph, posts, comments).
use crate::domain::pagination::CursorError;

#[derive(Debug, thiserror::Error)]
pub enum DomainError {
    /// Absent, deleted, or hidden from this viewer (a block reads as absence).
    #[error("{0} not found")]
    NotFound(&'static str),
    #[error("{0}")]
    Forbidden(&'static str),
    #[error("invalid input")]
    Invalid(FieldErrors),
    #[error(transparent)]
    Cursor(#[from] CursorError),
    #[error(transparent)]
    Media(#[from] crate::domain::media::MediaError),
    #[error(transparent)]
    Db(#[from] sqlx::Error),
    #[error("{0}")]
    Internal(String),
}

impl DomainError {
    pub fn invalid(field: &str, message: impl Into<String>) -> Self {
        let mut errors = FieldErrors::new();
        errors.insert(field.to_owned(), vec![message.into()]);
        Self::Invalid(errors)
    }
}
