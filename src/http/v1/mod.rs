//! The native API under `/api/v1`, one file per resource: thin handlers
//! that parse, authorize, call one domain function and map its result.

pub mod auth;
pub mod comments;
pub mod feed;
pub(crate) mod idempotent;
pub mod me;
pub mod media;
pub mod notifications;
pub mod ops;
pub mod posts;
pub mod social;
pub mod stream;

/// The answer of a handler of a page of a list.
pub(crate) type PageAnswer<T> =
    Result<actix_web::web::Json<crate::domain::pagination::Page<T>>, crate::http::error::ApiError>;

/// For JSON fields where absent (leave alone) differs from `null` (clear).
pub(crate) fn nullable<'de, D, T>(d: D) -> Result<Option<Option<T>>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: serde::Deserialize<'de>,
{
    serde::Deserialize::deserialize(d).map(Some)
}
