use actix_web::{web, HttpRequest, HttpResponse};
use serde::Deserialize;
use utoipa::IntoParams;

use crate::error::{ApiError, Problem};
use crate::extract;
use crate::state::AppState;

#[derive(Debug, Deserialize, IntoParams)]
pub struct StreamParams {
    /// An access token, for clients that cannot set headers (browsers).
    pub access_token: Option<String>,
    /// Replay every event after this id before going live.
    pub last_event_id: Option<i64>,
}

/// The real-time stream. Server frames are `{id, type, ts, data}`; see the README.
#[utoipa::path(get, path = "/api/v1/stream", tag = "stream", security(("bearer" = []), ("api_key" = [])),
    params(StreamParams),
    responses(
        (status = 101, description = "Switching to the WebSocket protocol"),
        (status = 400, description = "Not a WebSocket upgrade", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "No valid credential", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn stream(
    req: HttpRequest,
    body: web::Payload,
    state: web::Data<AppState>,
    params: web::Query<StreamParams>,
) -> Result<HttpResponse, ApiError> {
    let principal = extract::authenticate(&req, &state, params.access_token.as_deref()).await?;
    let (response, ws, stream) = actix_ws::handle(&req, body).map_err(|_| {
        ApiError::BadRequest("this endpoint speaks WebSocket: send a GET with Connection: Upgrade and Upgrade: websocket".into())
    })?;
    let engine = state.engine.clone();
    let last_event_id = params.last_event_id;
    actix_web::rt::spawn(async move {
        engine
            .serve(principal.user_id, ws, stream, last_event_id)
            .await
    });
    Ok(response)
}
