//! The HTTP side of idempotent writes: the `Idempotency-Key` header in, and
//! a stored or fresh [`Answer`] out (replays marked `Idempotent-Replayed`).

use actix_web::body::BoxBody;
use actix_web::http::header::{self, HeaderName, HeaderValue};
use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, Responder};

use crate::domain::idempotency::{Answer, IdempotencyError, Key};
use crate::http::error::{ApiError, IDEMPOTENCY_KEY};

pub const REPLAYED: HeaderName = HeaderName::from_static("idempotent-replayed");

/// The `Idempotency-Key` header of a creating write, for the OpenAPI document
/// (the handlers read it from the request).
#[derive(utoipa::IntoParams)]
#[into_params(parameter_in = Header)]
#[allow(dead_code)]
pub struct IdempotencyKey {
    /// Makes the write safe to retry: the same key from the same user within
    /// 24 hours replays the first answer (with `Idempotent-Replayed: true`)
    /// instead of writing again. 1 to 255 visible ASCII characters, such as a
    /// UUID.
    #[param(
        rename = "Idempotency-Key",
        pattern = r"^[!-~]{1,255}$",
        min_length = 1,
        max_length = 255
    )]
    pub idempotency_key: Option<String>,
}

/// The request's key, if it sent one, bound to the caller and to what the
/// request asks for: its method, its path and `content` (the canonical JSON
/// of its body, or an upload's bytes).
pub fn key(req: &HttpRequest, user_id: i64, content: &[u8]) -> Result<Option<Key>, ApiError> {
    let header = match req.headers().get(IDEMPOTENCY_KEY) {
        None => None,
        Some(value) => Some(value.to_str().map_err(|_| IdempotencyError::BadKey)?),
    };
    Ok(Key::new(
        user_id,
        header,
        &[
            req.method().as_str().as_bytes(),
            req.path().as_bytes(),
            content,
        ],
    )?)
}

/// The canonical JSON of a parsed body (fields in declaration order).
pub fn content(body: &impl serde::Serialize) -> Result<Vec<u8>, ApiError> {
    serde_json::to_vec(body).map_err(|e| ApiError::Internal(e.to_string()))
}

impl Responder for Answer {
    type Body = BoxBody;

    fn respond_to(self, _: &HttpRequest) -> HttpResponse {
        let mut res =
            HttpResponse::build(StatusCode::from_u16(self.status).unwrap_or(StatusCode::OK));
        res.insert_header((header::CONTENT_TYPE, "application/json"));
        if let Some(location) = self
            .location
            .as_deref()
            .and_then(|l| HeaderValue::from_str(l).ok())
        {
            res.insert_header((header::LOCATION, location));
        }
        if self.replayed {
            res.insert_header((REPLAYED, HeaderValue::from_static("true")));
        }
        res.body(self.body)
    }
}
