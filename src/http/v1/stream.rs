//! The real-time transports: the WebSocket stream and, for callers that
//! cannot hold one, the long poll and Server-Sent Events. All three attach to
//! the same per-user session actor, so they carry the same events with the
//! same ids and the same replay guarantee.

use std::convert::Infallible;
use std::time::Duration;

use actix_web::{http::header, web, HttpRequest, HttpResponse};
use futures_util::StreamExt as _;
use rookery_actors::delivery::log::{Replay, UserEvent};
use rookery_actors::delivery::session::{self, ConnKind};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::http::error::ApiError;
use crate::http::extract;
use crate::http::state::AppState;

/// Events one long poll answers with at most.
pub const POLL_MAX_EVENTS: usize = 100;
/// The longest a long poll may wait, in seconds.
pub const POLL_MAX_WAIT: u64 = 60;
const POLL_DEFAULT_WAIT: u64 = 25;

#[derive(Debug, Deserialize, IntoParams)]
pub struct StreamParams {
    /// An access token, for clients that cannot set headers (browsers).
    pub access_token: Option<String>,
    /// Replay every event after this id before going live.
    #[param(minimum = 0)]
    pub last_event_id: Option<i64>,
}

fn busy(err: rookery_actors::AttachError) -> ApiError {
    match err {
        rookery_actors::AttachError::Db(e) => ApiError::from_db(e),
        rookery_actors::AttachError::Busy(_) => {
            ApiError::Unavailable("the real-time engine is busy; try again shortly".into())
        }
    }
}

fn bad_position(name: &str) -> ApiError {
    ApiError::BadRequest(format!(
        "{name} must be an event id: a whole number, 0 or more"
    ))
}

/// The real-time stream. Server frames are `{id, type, ts, data}`; see the README.
#[utoipa::path(get, path = "/api/v1/stream", tag = "stream", security(("bearer" = []), ("api_key" = [])),
    params(StreamParams),
    responses(
        (status = 101, description = "Switching to the WebSocket protocol"),
        (status = 400, description = "Not a WebSocket upgrade"),
        (status = 401, description = "No valid credential"),
    ))]
pub async fn stream(
    req: HttpRequest,
    body: web::Payload,
    state: web::Data<AppState>,
    params: web::Query<StreamParams>,
) -> Result<HttpResponse, ApiError> {
    let principal = extract::authenticate(&req, &state, params.access_token.as_deref()).await?;
    if params.last_event_id.is_some_and(|id| id < 0) {
        return Err(bad_position("last_event_id"));
    }
    let (response, ws, stream) = actix_ws::handle(&req, body).map_err(|_| {
        ApiError::BadRequest("this endpoint speaks WebSocket: send a GET with Connection: Upgrade and Upgrade: websocket".into())
    })?;
    // Attached before the upgrade is answered: whatever happens after the
    // client sees 101 reaches it.
    let attachment = state
        .engine
        .attach(
            principal.user_id,
            params.last_event_id,
            ConnKind::WebSocket,
            principal.credential,
        )
        .await
        .map_err(busy)?;
    actix_web::rt::spawn(session::serve_websocket(attachment, ws, stream));
    Ok(response)
}

#[derive(Debug, Deserialize, IntoParams)]
pub struct PollParams {
    /// Return events after this id; without it, only events from now on.
    #[param(minimum = 0)]
    pub after: Option<i64>,
    /// Seconds to wait for an event before answering empty (0 to 60, default 25).
    #[param(maximum = 60)]
    pub wait: Option<u64>,
    /// An access token, for clients that cannot set headers.
    pub access_token: Option<String>,
}

/// A long poll's answer.
#[derive(Debug, Serialize, ToSchema)]
pub struct EventsPage {
    /// Events as the WebSocket sends them: `{id, type, ts, data}`, oldest first.
    pub events: Vec<serde_json::Value>,
    /// Pass this as `after` in the next poll.
    pub last_event_id: i64,
}

/// Builds the page from events already serialized as the WebSocket sends them.
fn events_page<'a>(
    events: impl Iterator<Item = (Option<i64>, &'a str)>,
    after: i64,
) -> HttpResponse {
    let mut last = after;
    let mut body = String::from("{\"events\":[");
    for (i, (id, json)) in events.enumerate() {
        if i > 0 {
            body.push(',');
        }
        body.push_str(json);
        last = last.max(id.unwrap_or(last));
    }
    body.push_str(&format!("],\"last_event_id\":{last}}}"));
    HttpResponse::Ok()
        .content_type("application/json")
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .body(body)
}

/// The REST fallback: answers as soon as there are events after `after`, or
/// empty after `wait` seconds. Same events and ids as the WebSocket; an
/// `after` older than the log keeps gives a `resync_required` event.
#[utoipa::path(get, path = "/api/v1/events", tag = "stream", security(("bearer" = []), ("api_key" = [])),
    params(PollParams),
    responses(
        (status = 200, description = "Events after `after` (possibly none)", body = EventsPage),
        (status = 400, description = "A bad `after` or `wait`"),
        (status = 401, description = "No valid credential"),
    ))]
pub async fn poll(
    req: HttpRequest,
    state: web::Data<AppState>,
    params: web::Query<PollParams>,
) -> Result<HttpResponse, ApiError> {
    let principal = extract::authenticate(&req, &state, params.access_token.as_deref()).await?;
    let user_id = principal.user_id;
    let wait = params.wait.unwrap_or(POLL_DEFAULT_WAIT);
    if wait > POLL_MAX_WAIT {
        return Err(ApiError::BadRequest(format!(
            "wait is at most {POLL_MAX_WAIT} seconds"
        )));
    }
    let after = match params.after {
        Some(after) if after < 0 => return Err(bad_position("after")),
        Some(after) => after,
        None => state
            .engine
            .last_event_id(user_id)
            .await
            .map_err(ApiError::from_db)?,
    };
    // What is already in the log needs no waiting.
    let limit = i64::try_from(POLL_MAX_EVENTS).unwrap_or(100);
    match state
        .engine
        .replay(user_id, after, limit)
        .await
        .map_err(ApiError::from_db)?
    {
        Replay::Resync { last_id } => {
            let event = UserEvent::ephemeral(
                user_id,
                "resync_required",
                serde_json::json!({ "last_event_id": last_id }),
            )
            .to_json();
            return Ok(events_page(
                std::iter::once((None, event.as_str())),
                last_id,
            ));
        }
        Replay::Events(events) if !events.is_empty() => {
            let json: Vec<(Option<i64>, String)> =
                events.iter().map(|e| (e.id, e.to_json())).collect();
            return Ok(events_page(
                json.iter().map(|(id, j)| (*id, j.as_str())),
                after,
            ));
        }
        Replay::Events(_) => {}
    }
    if wait == 0 {
        return Ok(events_page(std::iter::empty(), after));
    }
    let attachment = state
        .engine
        .attach(
            user_id,
            Some(after),
            ConnKind::LongPoll,
            principal.credential,
        )
        .await
        .map_err(busy)?;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(wait);
    let events = session::long_poll(attachment, deadline, POLL_MAX_EVENTS).await;
    Ok(events_page(
        events.iter().map(|(id, json)| (*id, &**json)),
        after,
    ))
}

/// The Server-Sent Events fallback: the same events as the WebSocket, each
/// with `id:` set to its event id, so a reconnecting `EventSource` resumes
/// from its `Last-Event-ID` with no gap and no duplicate.
#[utoipa::path(get, path = "/api/v1/events/stream", tag = "stream", security(("bearer" = []), ("api_key" = [])),
    params(StreamParams, ("Last-Event-ID" = Option<i64>, Header, description = "Resume after this event id (sent by browsers on reconnect)")),
    responses(
        (status = 200, description = "An endless `text/event-stream`", content_type = "text/event-stream"),
        (status = 400, description = "A bad Last-Event-ID"),
        (status = 401, description = "No valid credential"),
    ))]
pub async fn event_stream(
    req: HttpRequest,
    state: web::Data<AppState>,
    params: web::Query<StreamParams>,
) -> Result<HttpResponse, ApiError> {
    let principal = extract::authenticate(&req, &state, params.access_token.as_deref()).await?;
    let from_header = match req.headers().get("last-event-id") {
        None => None,
        Some(value) => Some(
            value
                .to_str()
                .ok()
                .and_then(|v| v.trim().parse::<i64>().ok())
                .filter(|id| *id >= 0)
                .ok_or_else(|| bad_position("Last-Event-ID"))?,
        ),
    };
    if params.last_event_id.is_some_and(|id| id < 0) {
        return Err(bad_position("last_event_id"));
    }
    // The header is what a reconnecting browser sends; it wins over the query.
    let last_event_id = from_header.or(params.last_event_id);
    let attachment = state
        .engine
        .attach(
            principal.user_id,
            last_event_id,
            ConnKind::EventStream,
            principal.credential,
        )
        .await
        .map_err(busy)?;
    let body =
        session::event_stream(attachment).map(|chunk| Ok::<_, Infallible>(web::Bytes::from(chunk)));
    Ok(HttpResponse::Ok()
        .content_type("text/event-stream")
        .insert_header((header::CACHE_CONTROL, "no-cache"))
        // Proxies such as nginx must not buffer the stream.
        .insert_header(("x-accel-buffering", "no"))
        .streaming(body))
}
