//! The one place where errors become HTTP: every 4xx and 5xx leaves as an
//! RFC 9457 problem document (`application/problem+json`).

use crate::domain::FieldErrors;

use actix_web::body::MessageBody;
use actix_web::dev::ServiceResponse;
use actix_web::error::{JsonPayloadError, PathError, QueryPayloadError};
use actix_web::http::header::{self, HeaderValue};
use actix_web::http::StatusCode;
use actix_web::middleware::{ErrorHandlerResponse, ErrorHandlers};
use actix_web::{HttpRequest, HttpResponse, ResponseError};
use serde::Serialize;
use utoipa::ToSchema;

use crate::domain::accounts::AccountError;
use crate::domain::idempotency::IdempotencyError;
use crate::domain::media::storage::StorageError;
use crate::domain::media::MediaError;
use crate::domain::pagination::CursorError;
use crate::domain::DomainError;

pub const PROBLEM_JSON: &str = "application/problem+json";

/// Marks an error response whose body follows another API's contract (the
/// microblog-compatible API's): [`problem_middleware`] leaves it as it is.
pub struct ForeignErrorBody;

/// An RFC 9457 problem document.
#[derive(Debug, Serialize, ToSchema)]
pub struct Problem {
    /// A URI naming the kind of problem, stable for machines.
    #[serde(rename = "type")]
    #[schema(example = "urn:rookery:problem:validation")]
    pub kind: String,
    /// A short summary of the kind of problem.
    pub title: String,
    pub status: u16,
    /// What went wrong on this request, in words a person can act on.
    pub detail: String,
    /// Per-field messages, for validation problems.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub errors: Option<FieldErrors>,
}

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("{0}")]
    BadRequest(String),
    #[error("{detail}")]
    Validation { detail: String, errors: FieldErrors },
    /// A credential was presented and is not valid.
    #[error("{0}")]
    Unauthorized(String),
    /// No usable credential was presented (or a login failed).
    #[error("{0}")]
    Unauthenticated(String),
    #[error("{0}")]
    Forbidden(String),
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    MethodNotAllowed(String),
    #[error("{detail}")]
    Conflict { detail: String, errors: FieldErrors },
    #[error("{0}")]
    PayloadTooLarge(String),
    #[error("{0}")]
    UnsupportedMediaType(String),
    #[error("too many attempts; retry in {retry_after} seconds")]
    TooManyRequests { retry_after: u64 },
    #[error("{0}")]
    Unavailable(String),
    /// The detail is logged, never sent: it may hold internals.
    #[error("internal error: {0}")]
    Internal(String),
}

/// Postgres refused the text itself: a NUL character in `text`
/// (22021, character_not_in_repertoire) or in `jsonb` (22P05,
/// untranslatable_character). Nothing else can make text unstorable, since
/// every string that reaches SQL is valid UTF-8.
fn is_unstorable_text(err: &sqlx::Error) -> bool {
    matches!(err, sqlx::Error::Database(db) if matches!(db.code().as_deref(), Some("22021" | "22P05")))
}

impl ApiError {
    pub fn validation(field: &str, message: impl Into<String>) -> Self {
        let mut errors = FieldErrors::new();
        errors
            .entry(field.to_owned())
            .or_default()
            .push(message.into());
        Self::Validation {
            detail: format!("{field}: the value is not acceptable"),
            errors,
        }
    }

    pub fn from_field_errors(errors: FieldErrors) -> Self {
        let fields: Vec<&str> = errors.keys().map(String::as_str).collect();
        Self::Validation {
            detail: format!("invalid fields: {}", fields.join(", ")),
            errors,
        }
    }

    /// Maps a database error: text Postgres cannot store (a NUL character,
    /// from a path, a query or a JSON body) is the client's 400; an
    /// unreachable, restarting or saturated database is a 503; anything else
    /// a 500.
    pub fn from_db(err: sqlx::Error) -> Self {
        if is_unstorable_text(&err) {
            Self::BadRequest(
                "text may not contain the NUL character (U+0000); remove it and try again".into(),
            )
        } else if rookery_actors::db_error::is_connection_lost(&err) {
            tracing::warn!(error = %err, "database unavailable");
            Self::Unavailable("the database is unavailable; try again shortly".into())
        } else {
            Self::Internal(err.to_string())
        }
    }

    fn slug_and_title(&self) -> (&'static str, &'static str) {
        match self {
            Self::BadRequest(_) => ("bad-request", "Bad request"),
            Self::Validation { .. } => ("validation", "Validation failed"),
            Self::Unauthorized(_) => ("invalid-credential", "Invalid credential"),
            Self::Unauthenticated(_) => ("unauthenticated", "Authentication required"),
            Self::Forbidden(_) => ("forbidden", "Forbidden"),
            Self::NotFound(_) => ("not-found", "Not found"),
            Self::MethodNotAllowed(_) => ("method-not-allowed", "Method not allowed"),
            Self::Conflict { .. } => ("conflict", "Conflict"),
            Self::PayloadTooLarge(_) => ("payload-too-large", "Payload too large"),
            Self::UnsupportedMediaType(_) => ("unsupported-media-type", "Unsupported media type"),
            Self::TooManyRequests { .. } => ("rate-limited", "Too many requests"),
            Self::Unavailable(_) => ("unavailable", "Service unavailable"),
            Self::Internal(_) => ("internal", "Internal server error"),
        }
    }

    pub fn problem(&self) -> Problem {
        let (slug, title) = self.slug_and_title();
        let detail = match self {
            Self::Internal(_) => "an unexpected error occurred; it has been logged".to_owned(),
            other => other.to_string(),
        };
        let errors = match self {
            Self::Validation { errors, .. } | Self::Conflict { errors, .. }
                if !errors.is_empty() =>
            {
                Some(errors.clone())
            }
            _ => None,
        };
        Problem {
            kind: format!("urn:rookery:problem:{slug}"),
            title: title.to_owned(),
            status: self.status_code().as_u16(),
            detail,
            errors,
        }
    }
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        match self {
            Self::BadRequest(_) => StatusCode::BAD_REQUEST,
            Self::Validation { .. } => StatusCode::UNPROCESSABLE_ENTITY,
            Self::Unauthorized(_) | Self::Unauthenticated(_) => StatusCode::UNAUTHORIZED,
            Self::Forbidden(_) => StatusCode::FORBIDDEN,
            Self::NotFound(_) => StatusCode::NOT_FOUND,
            Self::MethodNotAllowed(_) => StatusCode::METHOD_NOT_ALLOWED,
            Self::Conflict { .. } => StatusCode::CONFLICT,
            Self::PayloadTooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            Self::UnsupportedMediaType(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            Self::TooManyRequests { .. } => StatusCode::TOO_MANY_REQUESTS,
            Self::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            Self::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn error_response(&self) -> HttpResponse {
        if let Self::Internal(detail) = self {
            tracing::error!(error = %detail, "internal error");
        }
        let mut res = HttpResponse::build(self.status_code());
        res.content_type(PROBLEM_JSON);
        match self {
            Self::TooManyRequests { retry_after } => {
                res.insert_header((header::RETRY_AFTER, retry_after.to_string()));
            }
            Self::Unauthorized(detail) => {
                // RFC 6750 §3: tell the client which scheme and why.
                let value = format!(
                    "Bearer error=\"invalid_token\", error_description=\"{}\"",
                    detail.replace('"', "'")
                );
                if let Ok(value) = HeaderValue::from_str(&value) {
                    res.insert_header((header::WWW_AUTHENTICATE, value));
                }
            }
            Self::Unauthenticated(_) => {
                // RFC 6750 §3.1: no error code when no credential was sent.
                res.insert_header((header::WWW_AUTHENTICATE, "Bearer realm=\"rookery\""));
            }
            Self::Unavailable(_) => {
                res.insert_header((header::RETRY_AFTER, "5"));
            }
            _ => {}
        }
        res.json(self.problem())
    }
}

impl From<AccountError> for ApiError {
    fn from(err: AccountError) -> Self {
        use AccountError as E;
        match err {
            E::Invalid(errors) => Self::from_field_errors(errors),
            E::Taken(field) => {
                let mut errors = FieldErrors::new();
                errors.insert(field.to_owned(), vec!["is already taken".to_owned()]);
                Self::Conflict {
                    detail: format!("that {field} is already taken"),
                    errors,
                }
            }
            E::InvalidCredentials => {
                Self::Unauthenticated("the login or password is incorrect".into())
            }
            E::WrongPassword => Self::validation("password", "the password is incorrect"),
            E::Suspended => Self::Forbidden("this account is suspended".into()),
            E::InvalidRefreshToken => Self::Unauthenticated(
                "the refresh token is invalid, expired or revoked; log in again".into(),
            ),
            E::Token(reason) => Self::Unauthorized(reason),
            E::InactiveAccount => Self::Unauthorized("this account is suspended or deleted".into()),
            E::NotFound(what) => Self::NotFound(format!("{what} not found")),
            E::Throttled(t) => Self::TooManyRequests {
                retry_after: crate::domain::accounts::throttle::retry_after_secs(t.retry_after),
            },
            E::Db(e) => Self::from_db(e),
            E::Internal(detail) => Self::Internal(detail),
        }
    }
}

impl From<IdempotencyError> for ApiError {
    fn from(err: IdempotencyError) -> Self {
        use IdempotencyError as E;
        match err {
            E::BadKey => Self::BadRequest(err.to_string()),
            E::InFlight => Self::Conflict {
                detail: err.to_string(),
                errors: FieldErrors::new(),
            },
            E::Mismatch => Self::Validation {
                detail: err.to_string(),
                errors: FieldErrors::from([(IDEMPOTENCY_KEY.to_owned(), vec![err.to_string()])]),
            },
            E::Encode(e) => Self::Internal(e.to_string()),
            E::Db(e) => Self::from_db(e),
        }
    }
}

/// The header that makes a creating write idempotent.
pub const IDEMPOTENCY_KEY: &str = "idempotency-key";

impl From<CursorError> for ApiError {
    fn from(err: CursorError) -> Self {
        Self::BadRequest(err.to_string())
    }
}

impl From<DomainError> for ApiError {
    fn from(err: DomainError) -> Self {
        match err {
            DomainError::NotFound(what) => Self::NotFound(format!("{what} not found")),
            DomainError::Forbidden(why) => Self::Forbidden(why.to_owned()),
            DomainError::Invalid(errors) => Self::from_field_errors(errors),
            DomainError::Cursor(e) => e.into(),
            DomainError::Media(e) => e.into(),
            DomainError::Db(e) => Self::from_db(e),
            DomainError::Internal(detail) => Self::Internal(detail),
        }
    }
}

impl From<MediaError> for ApiError {
    fn from(err: MediaError) -> Self {
        use MediaError as E;
        let field_problem = |field: &str, message: String| {
            let mut errors = FieldErrors::new();
            errors.insert(field.to_owned(), vec![message.clone()]);
            Self::Validation {
                detail: message,
                errors,
            }
        };
        match err {
            E::TooLarge { .. } => Self::PayloadTooLarge(err.to_string()),
            E::Unsupported(detail) => Self::UnsupportedMediaType(detail),
            E::Invalid(detail) => field_problem("file", detail),
            E::NotAttachable(_) | E::TooManyAttachments { .. } => {
                field_problem("media_ids", err.to_string())
            }
            E::NotFound | E::Storage(StorageError::NotFound) => {
                Self::NotFound("no such media".into())
            }
            E::Storage(StorageError::Unavailable(detail)) => {
                tracing::warn!(error = %detail, "media storage unavailable");
                Self::Unavailable("media storage is unavailable; try again shortly".into())
            }
            E::Storage(StorageError::Failed(detail)) => Self::Internal(detail),
            E::Db(e) => Self::from_db(e),
            E::Idempotency(e) => e.into(),
            E::Internal(detail) => Self::Internal(detail),
        }
    }
}

/// JSON body errors: syntax is 400, a well-formed body of the wrong shape is 422.
pub fn json_error(err: JsonPayloadError, _req: &HttpRequest) -> actix_web::Error {
    let api = match &err {
        JsonPayloadError::OverflowKnownLength { length, limit } => ApiError::PayloadTooLarge(
            format!("the body is {length} bytes; the limit is {limit} bytes"),
        ),
        JsonPayloadError::Overflow { limit } => {
            ApiError::PayloadTooLarge(format!("the body exceeds the limit of {limit} bytes"))
        }
        JsonPayloadError::ContentType => ApiError::UnsupportedMediaType(
            "the body must be JSON, sent with Content-Type: application/json".into(),
        ),
        JsonPayloadError::Deserialize(e) if e.is_data() => ApiError::Validation {
            detail: format!("the JSON body does not have the expected shape: {e}"),
            errors: FieldErrors::new(),
        },
        JsonPayloadError::Deserialize(e) => {
            ApiError::BadRequest(format!("the body is not valid JSON: {e}"))
        }
        other => ApiError::BadRequest(format!("the body could not be read: {other}")),
    };
    api.into()
}

pub fn query_error(err: QueryPayloadError, _req: &HttpRequest) -> actix_web::Error {
    ApiError::BadRequest(format!("invalid query string: {err}")).into()
}

pub fn path_error(err: PathError, _req: &HttpRequest) -> actix_web::Error {
    ApiError::NotFound(format!("no such resource: {err}")).into()
}

/// The fallback for any path no route matches.
pub async fn not_found(req: HttpRequest) -> Result<HttpResponse, ApiError> {
    Err(ApiError::NotFound(format!(
        "no route for {} {}",
        req.method(),
        req.path()
    )))
}

/// Rewrites any error response that is not already a problem document
/// (actix's own 404/405/413 and the like) into one, so no client ever gets an
/// HTML page or an empty error body.
pub fn problem_middleware<B: MessageBody + 'static>() -> ErrorHandlers<B> {
    ErrorHandlers::new().default_handler(to_problem)
}

fn to_problem<B: MessageBody + 'static>(
    res: ServiceResponse<B>,
) -> actix_web::Result<ErrorHandlerResponse<B>> {
    let is_problem = res
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with(PROBLEM_JSON));
    if is_problem || res.response().extensions().contains::<ForeignErrorBody>() {
        return Ok(ErrorHandlerResponse::Response(res.map_into_left_body()));
    }
    let status = res.status();
    let reason = status.canonical_reason().unwrap_or("Error");
    let api = match status {
        StatusCode::NOT_FOUND => ApiError::NotFound(format!(
            "no route for {} {}",
            res.request().method(),
            res.request().path()
        )),
        StatusCode::METHOD_NOT_ALLOWED => ApiError::MethodNotAllowed(format!(
            "{} is not allowed on {}",
            res.request().method(),
            res.request().path()
        )),
        StatusCode::PAYLOAD_TOO_LARGE => {
            ApiError::PayloadTooLarge("the request body is too large".into())
        }
        _ => {
            let problem = Problem {
                kind: "about:blank".into(),
                title: reason.into(),
                status: status.as_u16(),
                detail: reason.to_lowercase(),
                errors: None,
            };
            let (req, old) = res.into_parts();
            let mut builder = HttpResponse::build(status);
            for (name, value) in old.headers() {
                if name != header::CONTENT_TYPE && name != header::CONTENT_LENGTH {
                    builder.append_header((name.clone(), value.clone()));
                }
            }
            let new = builder.content_type(PROBLEM_JSON).json(problem);
            return Ok(ErrorHandlerResponse::Response(
                ServiceResponse::new(req, new).map_into_right_body(),
            ));
        }
    };
    let (req, old) = res.into_parts();
    let mut new = api.error_response();
    for (name, value) in old.headers() {
        if name == header::ALLOW {
            new.headers_mut().insert(name.clone(), value.clone());
        }
    }
    Ok(ErrorHandlerResponse::Response(
        ServiceResponse::new(req, new).map_into_right_body(),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn internal_errors_hide_their_detail() {
        let p = ApiError::Internal("password_hash column missing".into()).problem();
        assert_eq!(p.status, 500);
        assert!(!p.detail.contains("password_hash"));
    }

    #[test]
    fn unattachable_media_name_the_id() {
        let p = ApiError::from(MediaError::NotAttachable(4242)).problem();
        assert_eq!(p.status, 422);
        assert!(p.detail.contains("4242"), "{}", p.detail);
        assert!(p.errors.unwrap()["media_ids"][0].contains("4242"));
        let p = ApiError::from(MediaError::TooManyAttachments { max: 4 }).problem();
        assert_eq!(p.status, 422);
    }

    #[test]
    fn media_storage_outages_are_503_and_hide_details() {
        let err = MediaError::Storage(StorageError::Unavailable("10.0.0.7:9000 refused".into()));
        let p = ApiError::from(err).problem();
        assert_eq!(p.status, 503);
        assert!(!p.detail.contains("10.0.0.7"));
    }

    #[test]
    fn validation_problems_list_fields() {
        let p = ApiError::validation("username", "too short").problem();
        assert_eq!(p.status, 422);
        assert_eq!(p.kind, "urn:rookery:problem:validation");
        assert_eq!(p.errors.unwrap()["username"], vec!["too short".to_owned()]);
    }
}
