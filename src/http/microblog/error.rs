//! The one place where errors on the microblog-compatible API become HTTP:
//! `{"result": false, "error_type": ..., "error_message": ...}` with a fitting
//! status. Native errors are translated from [`ApiError`], so both APIs agree
//! on what is a 404, a 422 or a 503; only the body differs.

use actix_web::body::MessageBody;
use actix_web::dev::ServiceResponse;
use actix_web::http::header::{self, HeaderValue};
use actix_web::http::StatusCode;
use actix_web::middleware::{ErrorHandlerResponse, ErrorHandlers};
use actix_web::{HttpResponse, ResponseError};
use serde::Serialize;
use utoipa::ToSchema;

use crate::domain::accounts::AccountError;
use crate::domain::idempotency::IdempotencyError;
use crate::domain::media::MediaError;
use crate::domain::DomainError;
use crate::http::error::{ApiError, ForeignErrorBody};

/// The error body of the microblog-compatible API.
#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorBody {
    /// Always `false`.
    pub result: bool,
    /// A short machine name, e.g. `not_found` or `validation_error`.
    #[schema(example = "forbidden")]
    pub error_type: String,
    /// What went wrong, in words a person can act on.
    #[schema(example = "only the author may delete a tweet")]
    pub error_message: String,
}

#[derive(Debug, thiserror::Error)]
pub enum CompatError {
    #[error("{0}")]
    BadRequest(String),
    #[error("{0}")]
    Unauthorized(String),
    #[error("{0}")]
    Forbidden(String),
    #[error("{0}")]
    NotFound(String),
    #[error("{message}")]
    MethodNotAllowed {
        message: String,
        allow: Option<HeaderValue>,
    },
    #[error("{0}")]
    Conflict(String),
    #[error("{0}")]
    PayloadTooLarge(String),
    #[error("{0}")]
    UnsupportedMediaType(String),
    #[error("{0}")]
    Invalid(String),
    #[error("too many attempts; retry in {retry_after} seconds")]
    TooManyRequests { retry_after: u64 },
    #[error("{0}")]
    Unavailable(String),
    /// Any other status the web framework produced.
    #[error("{message}")]
    Other { status: StatusCode, message: String },
    /// The detail is logged, never sent: it may hold internals.
    #[error("internal error: {0}")]
    Internal(String),
}

impl CompatError {
    fn error_type(&self) -> String {
        match self {
            Self::BadRequest(_) => "bad_request".into(),
            Self::Unauthorized(_) => "unauthorized".into(),
            Self::Forbidden(_) => "forbidden".into(),
            Self::NotFound(_) => "not_found".into(),
            Self::MethodNotAllowed { .. } => "method_not_allowed".into(),
            Self::Conflict(_) => "conflict".into(),
            Self::PayloadTooLarge(_) => "payload_too_large".into(),
            Self::UnsupportedMediaType(_) => "unsupported_media_type".into(),
            Self::Invalid(_) => "validation_error".into(),
            Self::TooManyRequests { .. } => "rate_limited".into(),
            Self::Unavailable(_) => "unavailable".into(),
            Self::Other { status, .. } => status
                .canonical_reason()
                .unwrap_or("error")
                .to_lowercase()
                .replace([' ', '-'], "_"),
            Self::Internal(_) => "internal_error".into(),
        }
    }

    fn message(&self) -> String {
        match self {
            Self::Internal(_) => "an unexpected error occurred; it has been logged".into(),
            other => other.to_string(),
        }
    }

    /// The response, without logging (see `error_response`).
    fn response(&self) -> HttpResponse {
        let mut res = HttpResponse::build(self.status_code());
        match self {
            Self::TooManyRequests { retry_after } => {
                res.insert_header((header::RETRY_AFTER, retry_after.to_string()));
            }
            Self::Unavailable(_) => {
                res.insert_header((header::RETRY_AFTER, "5"));
            }
            Self::MethodNotAllowed {
                allow: Some(allow), ..
            } => {
                res.insert_header((header::ALLOW, allow.clone()));
            }
            _ => {}
        }
        let mut res = res.json(ErrorBody {
            result: false,
            error_type: self.error_type(),
            error_message: self.message(),
        });
        res.extensions_mut().insert(ForeignErrorBody);
        res
    }

    /// Translates a native error, keeping its status and its message.
    fn from_api(err: &ApiError) -> Self {
        match err {
            ApiError::BadRequest(m) => Self::BadRequest(m.clone()),
            ApiError::Validation { detail, errors } if errors.is_empty() => {
                Self::Invalid(detail.clone())
            }
            // One sentence naming each field: the compat body has no field map.
            ApiError::Validation { errors, .. } => Self::Invalid(
                errors
                    .iter()
                    .map(|(field, messages)| format!("{field}: {}", messages.join("; ")))
                    .collect::<Vec<_>>()
                    .join(". "),
            ),
            ApiError::Unauthorized(m) | ApiError::Unauthenticated(m) => {
                Self::Unauthorized(m.clone())
            }
            ApiError::Forbidden(m) => Self::Forbidden(m.clone()),
            ApiError::NotFound(m) => Self::NotFound(m.clone()),
            ApiError::MethodNotAllowed(m) => Self::MethodNotAllowed {
                message: m.clone(),
                allow: None,
            },
            ApiError::Conflict { detail, .. } => Self::Conflict(detail.clone()),
            ApiError::PayloadTooLarge(m) => Self::PayloadTooLarge(m.clone()),
            ApiError::UnsupportedMediaType(m) => Self::UnsupportedMediaType(m.clone()),
            ApiError::TooManyRequests { retry_after } => Self::TooManyRequests {
                retry_after: *retry_after,
            },
            ApiError::Unavailable(m) => Self::Unavailable(m.clone()),
            ApiError::Internal(m) => Self::Internal(m.clone()),
        }
    }

    /// For error responses that carry no error we know: the framework's own
    /// 404, 405 and the like.
    fn from_status<B>(res: &ServiceResponse<B>) -> Self {
        let (method, path) = (res.request().method(), res.request().path());
        match res.status() {
            StatusCode::NOT_FOUND => Self::NotFound(format!("no route for {method} {path}")),
            StatusCode::METHOD_NOT_ALLOWED => {
                let allow = res.headers().get(header::ALLOW).cloned();
                let hint = allow
                    .as_ref()
                    .and_then(|a| a.to_str().ok())
                    .map(|a| format!("; use {a}"))
                    .unwrap_or_default();
                Self::MethodNotAllowed {
                    message: format!("{method} is not allowed on {path}{hint}"),
                    allow,
                }
            }
            StatusCode::PAYLOAD_TOO_LARGE => {
                Self::PayloadTooLarge("the request body is too large".into())
            }
            status => Self::Other {
                status,
                message: status
                    .canonical_reason()
                    .unwrap_or("the request failed")
                    .to_lowercase(),
            },
        }
    }
}

impl ResponseError for CompatError {
    fn status_code(&self) -> StatusCode {
        match self {
            Self::BadRequest(_) => StatusCode::BAD_REQUEST,
            Self::Unauthorized(_) => StatusCode::UNAUTHORIZED,
            Self::Forbidden(_) => StatusCode::FORBIDDEN,
            Self::NotFound(_) => StatusCode::NOT_FOUND,
            Self::MethodNotAllowed { .. } => StatusCode::METHOD_NOT_ALLOWED,
            Self::Conflict(_) => StatusCode::CONFLICT,
            Self::PayloadTooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            Self::UnsupportedMediaType(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            Self::Invalid(_) => StatusCode::UNPROCESSABLE_ENTITY,
            Self::TooManyRequests { .. } => StatusCode::TOO_MANY_REQUESTS,
            Self::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            Self::Other { status, .. } => *status,
            Self::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn error_response(&self) -> HttpResponse {
        if let Self::Internal(detail) = self {
            tracing::error!(error = %detail, "internal error");
        }
        self.response()
    }
}

impl From<ApiError> for CompatError {
    fn from(err: ApiError) -> Self {
        Self::from_api(&err)
    }
}

impl From<IdempotencyError> for CompatError {
    fn from(err: IdempotencyError) -> Self {
        ApiError::from(err).into()
    }
}

impl From<DomainError> for CompatError {
    fn from(err: DomainError) -> Self {
        ApiError::from(err).into()
    }
}

impl From<MediaError> for CompatError {
    fn from(err: MediaError) -> Self {
        ApiError::from(err).into()
    }
}

impl From<AccountError> for CompatError {
    fn from(err: AccountError) -> Self {
        ApiError::from(err).into()
    }
}

/// Rewrites every error response under the compat scope that is not already
/// a compat body: failures of shared extractors (JSON, path, query), which
/// speak [`ApiError`], and the framework's own 404/405.
pub fn middleware<B: MessageBody + 'static>() -> ErrorHandlers<B> {
    ErrorHandlers::new().default_handler(to_compat)
}

fn to_compat<B: MessageBody + 'static>(
    res: ServiceResponse<B>,
) -> actix_web::Result<ErrorHandlerResponse<B>> {
    if res.response().extensions().contains::<ForeignErrorBody>() {
        return Ok(ErrorHandlerResponse::Response(res.map_into_left_body()));
    }
    let err = match res
        .response()
        .error()
        .and_then(|e| e.as_error::<ApiError>())
    {
        Some(api) => CompatError::from_api(api),
        None => CompatError::from_status(&res),
    };
    // `response`, not `error_response`: an internal error was logged where it arose.
    let new = err.response();
    let (req, _) = res.into_parts();
    Ok(ErrorHandlerResponse::Response(
        ServiceResponse::new(req, new).map_into_right_body(),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::FieldErrors;

    #[test]
    fn validation_errors_name_each_field_in_one_sentence() {
        let mut errors = FieldErrors::new();
        errors.insert("text".into(), vec!["must not be empty".into()]);
        let err = CompatError::from(ApiError::from_field_errors(errors));
        assert_eq!(err.status_code(), StatusCode::UNPROCESSABLE_ENTITY);
        assert_eq!(err.error_type(), "validation_error");
        assert_eq!(err.message(), "text: must not be empty");
    }

    #[test]
    fn internal_errors_hide_their_detail() {
        let err = CompatError::from(ApiError::Internal("relation posts is missing".into()));
        assert_eq!(err.status_code(), StatusCode::INTERNAL_SERVER_ERROR);
        assert!(!err.message().contains("posts"));
    }

    #[test]
    fn unusual_statuses_keep_their_code_and_get_a_name() {
        let err = CompatError::Other {
            status: StatusCode::LENGTH_REQUIRED,
            message: "length required".into(),
        };
        assert_eq!(err.status_code(), StatusCode::LENGTH_REQUIRED);
        assert_eq!(err.error_type(), "length_required");
    }
}
