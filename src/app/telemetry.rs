//! Logging and per-request tracing.

use std::time::Instant;

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header::{HeaderName, HeaderValue};
use actix_web::middleware::Next;
use tracing::Instrument as _;
use tracing_subscriber::EnvFilter;

use crate::cli::LogFormat;

pub const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// actix-http's connection dispatcher logs at ERROR each connection it ends
/// for the client's fault, before any of Rookery's code runs: a request head
/// over its fixed limits (431), a malformed request or URI (400), a peer gone
/// mid-write. Those are not server errors, so they are not logged, unless
/// the operator's filter names `actix_http` itself. Rookery's own failures
/// are logged by [`request_span`].
const CLIENT_FAULTS: &str = "actix_http::h1::dispatcher=off";

/// The filter actually installed: the operator's, plus [`CLIENT_FAULTS`].
pub fn effective_filter(filter: &str) -> String {
    if filter.contains("actix_http") {
        filter.to_owned()
    } else {
        format!("{filter},{CLIENT_FAULTS}")
    }
}

/// Installs the global subscriber. Safe to call more than once (tests do).
pub fn init(filter: &str, format: LogFormat) {
    let filter =
        EnvFilter::try_new(effective_filter(filter)).unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let _ = match format {
        LogFormat::Json => builder
            .json()
            .flatten_event(true)
            .with_current_span(true)
            .with_span_list(false)
            .try_init(),
        LogFormat::Pretty => builder.try_init(),
    };
}

/// An id from the caller is kept only if it is short, visible ASCII: it ends
/// up in logs and headers.
fn caller_request_id(req: &ServiceRequest) -> Option<String> {
    let value = req.headers().get(&REQUEST_ID)?.to_str().ok()?;
    let ok = !value.is_empty() && value.len() <= 128 && value.bytes().all(|b| b.is_ascii_graphic());
    ok.then(|| value.to_owned())
}

/// Gives every request an id (the caller's `x-request-id`, or a new one), a
/// span carrying it, a completion log line, and the id echoed in the response.
/// Only the path is logged, never the query string or headers: they can hold tokens.
pub async fn request_span(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let id = caller_request_id(&req).unwrap_or_else(|| uuid::Uuid::new_v4().to_string());
    let span = tracing::info_span!("request", request_id = %id, method = %req.method(), path = %req.path());
    let started = Instant::now();
    // The request must not be cloned before routing (actix needs sole ownership
    // to record the match), so a middleware error is logged and passed on as is.
    let mut res = match next.call(req).instrument(span.clone()).await {
        Ok(res) => res.map_into_boxed_body(),
        Err(err) => {
            span.in_scope(|| tracing::error!(error = %err, "request failed in middleware"));
            return Err(err);
        }
    };
    let status = res.status().as_u16();
    let elapsed_ms = started.elapsed().as_secs_f64() * 1000.0;
    span.in_scope(|| {
        if status >= 500 {
            tracing::error!(status, elapsed_ms, "request failed");
        } else {
            tracing::info!(status, elapsed_ms, "request completed");
        }
    });
    if let Ok(value) = HeaderValue::from_str(&id) {
        res.headers_mut().insert(REQUEST_ID, value);
    }
    Ok(res)
}
