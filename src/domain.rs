//! The error shared by the content modules (social graph, posts, comments).

use crate::error::FieldErrors;
use crate::pagination::CursorError;

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
    Media(#[from] crate::media::MediaError),
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
