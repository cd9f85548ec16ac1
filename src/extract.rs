//! Request extractors: the authenticated caller and the client address.

use std::future::Future;
use std::net::IpAddr;
use std::pin::Pin;

use actix_web::dev::Payload;
use actix_web::http::header;
use actix_web::{web, FromRequest, HttpRequest};

use crate::accounts::{auth, Principal};
use crate::error::ApiError;
use crate::state::AppState;

pub const API_KEY_HEADER: &str = "api-key";

/// The caller, authenticated by `Authorization: Bearer <jwt>` or `api-key: <key>`.
pub struct Auth(pub Principal);

enum Credential {
    Bearer(String),
    ApiKey(String),
}

fn credential(req: &HttpRequest) -> Result<Credential, ApiError> {
    if let Some(value) = req.headers().get(header::AUTHORIZATION) {
        let value = value.to_str().map_err(|_| {
            ApiError::Unauthorized("the Authorization header is not valid text".into())
        })?;
        let (scheme, token) = value.split_once(' ').unwrap_or((value, ""));
        if !scheme.eq_ignore_ascii_case("bearer") || token.trim().is_empty() {
            return Err(ApiError::Unauthorized(
                "the Authorization header must be 'Bearer <access token>'".into(),
            ));
        }
        return Ok(Credential::Bearer(token.trim().to_owned()));
    }
    if let Some(value) = req.headers().get(API_KEY_HEADER) {
        let key = value
            .to_str()
            .map_err(|_| ApiError::Unauthorized("the api-key header is not valid text".into()))?;
        if key.trim().is_empty() {
            return Err(ApiError::Unauthorized("the api-key header is empty".into()));
        }
        return Ok(Credential::ApiKey(key.trim().to_owned()));
    }
    Err(ApiError::Unauthenticated(
        "authentication required: send 'Authorization: Bearer <token>' or 'api-key: <key>'".into(),
    ))
}

impl FromRequest for Auth {
    type Error = ApiError;
    type Future = Pin<Box<dyn Future<Output = Result<Self, Self::Error>>>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let state = req.app_data::<web::Data<AppState>>().cloned();
        let credential = credential(req);
        Box::pin(async move {
            let state =
                state.ok_or_else(|| ApiError::Internal("application state missing".into()))?;
            let principal = match credential? {
                Credential::Bearer(token) => auth::from_jwt(&state.db, &state.jwt, &token).await?,
                Credential::ApiKey(key) => auth::from_api_key(&state.db, &key).await?,
            };
            Ok(Auth(principal))
        })
    }
}

/// The caller if credentials were sent, `None` for anonymous requests. Bad
/// credentials are still a 401: a client that sent a token meant to use it.
pub struct MaybeAuth(pub Option<Principal>);

impl MaybeAuth {
    pub fn user_id(&self) -> Option<i64> {
        self.0.as_ref().map(|p| p.user_id)
    }
}

impl FromRequest for MaybeAuth {
    type Error = ApiError;
    type Future = Pin<Box<dyn Future<Output = Result<Self, Self::Error>>>>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let sent = req.headers().contains_key(header::AUTHORIZATION)
            || req.headers().contains_key(API_KEY_HEADER);
        if !sent {
            return Box::pin(async { Ok(MaybeAuth(None)) });
        }
        let auth = Auth::from_request(req, payload);
        Box::pin(async move { Ok(MaybeAuth(Some(auth.await?.0))) })
    }
}

/// Authenticates by header, or by an `access_token` query parameter for
/// clients that cannot set headers (browser WebSockets).
pub async fn authenticate(
    req: &HttpRequest,
    state: &AppState,
    query_token: Option<&str>,
) -> Result<Principal, ApiError> {
    let has_header = req.headers().contains_key(header::AUTHORIZATION)
        || req.headers().contains_key(API_KEY_HEADER);
    match (has_header, query_token) {
        (false, Some(token)) => Ok(auth::from_jwt(&state.db, &state.jwt, token).await?),
        _ => match credential(req)? {
            Credential::Bearer(token) => Ok(auth::from_jwt(&state.db, &state.jwt, &token).await?),
            Credential::ApiKey(key) => Ok(auth::from_api_key(&state.db, &key).await?),
        },
    }
}

/// The client's address: the peer, or the forwarded address when behind a trusted proxy.
pub fn client_address(req: &HttpRequest, trust_proxy: bool) -> Option<IpAddr> {
    if trust_proxy {
        let info = req.connection_info();
        if let Some(ip) = info.realip_remote_addr().and_then(|a| {
            a.parse::<std::net::SocketAddr>()
                .map(|s| s.ip())
                .ok()
                .or_else(|| a.parse().ok())
        }) {
            return Some(ip);
        }
    }
    req.peer_addr().map(|a| a.ip())
}
