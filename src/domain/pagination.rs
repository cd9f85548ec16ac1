//! Cursor pagination. Lists are walked by keyset (the last item's sort key),
//! never by offset, so rows inserted while a client pages neither shift nor
//! repeat items. Cursors are opaque to clients: base64url of a small JSON.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

pub const DEFAULT_LIMIT: i64 = 20;
pub const MAX_LIMIT: i64 = 100;

/// The query parameters of a page.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct PageParams {
    /// Items per page: 1 to 100, default 20 (larger values are capped at 100).
    #[param(minimum = 1)]
    pub limit: Option<i64>,
    /// The `next_cursor` of the previous page.
    pub cursor: Option<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum CursorError {
    #[error("the cursor is malformed; pass back the next_cursor value exactly as received")]
    Malformed,
    #[error("limit must be at least 1")]
    BadLimit,
}

impl PageParams {
    pub fn limit(&self) -> Result<i64, CursorError> {
        match self.limit {
            None => Ok(DEFAULT_LIMIT),
            Some(n) if n < 1 => Err(CursorError::BadLimit),
            Some(n) => Ok(n.min(MAX_LIMIT)),
        }
    }

    pub fn cursor<T: DeserializeOwned>(&self) -> Result<Option<T>, CursorError> {
        self.cursor
            .as_deref()
            .filter(|c| !c.is_empty())
            .map(decode)
            .transpose()
    }
}

/// A page of results. `next_cursor` is null on the last page.
#[derive(Debug, Serialize, ToSchema)]
pub struct Page<T> {
    pub items: Vec<T>,
    pub next_cursor: Option<String>,
}

pub fn encode<T: Serialize>(key: &T) -> String {
    // Serialising a plain struct of numbers and timestamps cannot fail.
    URL_SAFE_NO_PAD.encode(serde_json::to_vec(key).unwrap_or_default())
}

pub fn decode<T: DeserializeOwned>(cursor: &str) -> Result<T, CursorError> {
    let bytes = URL_SAFE_NO_PAD
        .decode(cursor)
        .map_err(|_| CursorError::Malformed)?;
    serde_json::from_slice(&bytes).map_err(|_| CursorError::Malformed)
}

/// Given `limit + 1` rows, keeps `limit` and makes the cursor from the last kept row.
pub fn paginate<R, K: Serialize>(
    mut rows: Vec<R>,
    limit: i64,
    key: impl Fn(&R) -> K,
) -> (Vec<R>, Option<String>) {
    let limit = usize::try_from(limit).unwrap_or(usize::MAX);
    if rows.len() > limit {
        rows.truncate(limit);
        let next = rows.last().map(|r| encode(&key(r)));
        (rows, next)
    } else {
        (rows, None)
    }
}

/// Sort key of lists ordered by id.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
pub struct IdKey {
    pub id: i64,
}

/// Sort key of lists ordered by time, ties broken by id.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
pub struct TimeKey {
    pub t: chrono::DateTime<chrono::Utc>,
    pub id: i64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_round_trip_and_are_url_safe() {
        let key = TimeKey {
            t: chrono::Utc::now(),
            id: 42,
        };
        let c = encode(&key);
        assert!(c
            .chars()
            .all(|ch| ch.is_ascii_alphanumeric() || ch == '-' || ch == '_'));
        assert_eq!(decode::<TimeKey>(&c).unwrap(), key);
    }

    #[test]
    fn malformed_cursors_are_errors() {
        assert!(decode::<IdKey>("!!!").is_err());
        assert!(decode::<IdKey>(&URL_SAFE_NO_PAD.encode("{\"nope\":1}")).is_err());
        assert!(decode::<IdKey>("").is_err());
    }

    #[test]
    fn limits_default_cap_and_refuse_zero() {
        let p = |limit| PageParams {
            limit,
            cursor: None,
        };
        assert_eq!(p(None).limit().unwrap(), 20);
        assert_eq!(p(Some(500)).limit().unwrap(), 100);
        assert!(p(Some(0)).limit().is_err());
    }

    #[test]
    fn paginate_keeps_limit_and_points_at_the_last_kept_row() {
        let (rows, next) = paginate(vec![5, 4, 3], 2, |r| IdKey { id: *r });
        assert_eq!(rows, vec![5, 4]);
        assert_eq!(decode::<IdKey>(&next.unwrap()).unwrap().id, 4);
        let (rows, next) = paginate(vec![5, 4], 2, |r| IdKey { id: *r });
        assert_eq!(rows.len(), 2);
        assert!(next.is_none());
    }
}
