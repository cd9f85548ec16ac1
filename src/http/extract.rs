//! Request extractors: the authenticated caller and the client address.

use std::future::Future;
use std::net::IpAddr;
use std::pin::Pin;

use actix_web::dev::Payload;
use actix_web::http::header;
use actix_web::{web, FromRequest, HttpRequest};
use serde::de::{DeserializeOwned, Deserializer, Visitor};
use serde::Deserialize;

use crate::domain::accounts::{auth, Principal};
use crate::domain::pagination::PageParams;
use crate::http::error::ApiError;
use crate::http::state::AppState;

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
                Credential::Bearer(token) => {
                    auth::from_jwt(&state.db, &state.caches, &state.jwt, &token).await?
                }
                Credential::ApiKey(key) => {
                    auth::from_api_key(&state.db, &state.caches, &key).await?
                }
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

/// What a handler of a page of one resource's list takes (a user's
/// followers, a post's comments): the caller if any, the resource's id from
/// the path and the page asked for. A tuple, so its parts are extracted in
/// this order exactly as three arguments of the handler would be.
pub type PageOf = (MaybeAuth, web::Path<i64>, web::Query<PageParams>);

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
        (false, Some(token)) => {
            Ok(auth::from_jwt(&state.db, &state.caches, &state.jwt, token).await?)
        }
        _ => match credential(req)? {
            Credential::Bearer(token) => {
                Ok(auth::from_jwt(&state.db, &state.caches, &state.jwt, &token).await?)
            }
            Credential::ApiKey(key) => {
                Ok(auth::from_api_key(&state.db, &state.caches, &key).await?)
            }
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

/// A JSON request body that must be an object, for the request structs.
///
/// `web::Json` alone would also fill a struct from an array of its fields
/// in declaration order (serde's derive accepts both), so `[null, null]`
/// would clear a profile. This reads the body with `web::Json` (so the
/// app's `JsonConfig`, its limit and error handler, still apply), but lets
/// a struct be read only from an object: anything else is a 422, as any
/// JSON of the wrong shape.
pub struct JsonObject<T>(pub T);

impl<T> JsonObject<T> {
    pub fn into_inner(self) -> T {
        self.0
    }
}

impl<T> std::ops::Deref for JsonObject<T> {
    type Target = T;

    fn deref(&self) -> &T {
        &self.0
    }
}

impl<T: DeserializeOwned + 'static> FromRequest for JsonObject<T> {
    type Error = actix_web::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Self, Self::Error>>>>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let body = web::Json::<ObjectOnly<T>>::from_request(req, payload);
        Box::pin(async move { Ok(JsonObject(body.await?.into_inner().0)) })
    }
}

/// Deserializes `T` through [`StructAsMap`].
struct ObjectOnly<T>(T);

impl<'de, T: Deserialize<'de>> Deserialize<'de> for ObjectOnly<T> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        T::deserialize(StructAsMap(deserializer)).map(ObjectOnly)
    }
}

/// Hands a struct's visitor a map and nothing else: serde_json then answers
/// "invalid type: sequence, expected struct ..." for an array.
struct StructAsMap<D>(D);

impl<'de, D: Deserializer<'de>> Deserializer<'de> for StructAsMap<D> {
    type Error = D::Error;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, D::Error> {
        self.0.deserialize_any(visitor)
    }

    fn deserialize_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, D::Error> {
        self.0.deserialize_map(visitor)
    }

    serde::forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string
        bytes byte_buf option unit unit_struct newtype_struct seq tuple
        tuple_struct map enum identifier ignored_any
    }
}
