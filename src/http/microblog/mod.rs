//! The HTTP edge of the microblog-compatible API. Everything under `/api`
//! that is not `/api/v1` lands in this scope, so every answer there, errors
//! included, has the compat shape.

use std::future::Future;
use std::pin::Pin;

use actix_multipart::Multipart;
use actix_web::dev::Payload;
use actix_web::{web, FromRequest, HttpRequest, HttpResponse};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use self::error::CompatError;
use crate::domain::accounts::{auth, Principal};
use crate::domain::idempotency::{self, Answer};
use crate::domain::microblog::{self, FeedSlice, Tweet, User};
use crate::domain::pagination::DEFAULT_LIMIT;
use crate::domain::posts::{self, reactions, ReactionKind};
use crate::domain::social;
use crate::http::extract::{JsonObject, API_KEY_HEADER};
use crate::http::state::AppState;
use crate::http::v1::idempotent::{self, IdempotencyKey};
use crate::http::v1::media::{read_file_field, UploadForm};

pub mod error;

pub const TAG: &str = "microblog";

/// Where the API is served: everything under it that is not `/api/v1`.
pub const PREFIX: &str = "/api";

/// Mounts the API's scope, with `resources` (its part of the route table)
/// in it: every answer under it, errors included, gets the compat shape,
/// and a path no resource matches gets the compat 404.
pub fn mount(cfg: &mut web::ServiceConfig, resources: impl FnOnce(&mut web::ServiceConfig)) {
    cfg.service(
        web::scope(PREFIX)
            .wrap(error::middleware())
            .configure(resources)
            .default_service(web::to(not_found)),
    );
}

/// The caller, authenticated by the `api-key` header only (the contract has
/// no other credential). Verified exactly as the native API verifies keys.
pub struct ApiKey(pub Principal);

impl FromRequest for ApiKey {
    type Error = CompatError;
    type Future = Pin<Box<dyn Future<Output = Result<Self, Self::Error>>>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let state = req.app_data::<web::Data<AppState>>().cloned();
        let key = match req.headers().get(API_KEY_HEADER).map(|v| v.to_str()) {
            None => Err("send your API key in the api-key header"),
            Some(Err(_)) => Err("the api-key header is not valid text"),
            Some(Ok(key)) if key.trim().is_empty() => Err("the api-key header is empty"),
            Some(Ok(key)) => Ok(key.trim().to_owned()),
        };
        Box::pin(async move {
            let key = key.map_err(|m| CompatError::Unauthorized(m.into()))?;
            let state =
                state.ok_or_else(|| CompatError::Internal("application state missing".into()))?;
            Ok(ApiKey(
                auth::from_api_key(&state.db, &state.caches, &key).await?,
            ))
        })
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Done {
    /// Always `true`.
    pub result: bool,
}

const DONE: Done = Done { result: true };

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct NewTweet {
    /// The text: 1 to 500 characters after trimming, as for native posts.
    #[schema(
        example = "Hello from the web client",
        pattern = r"^[\t-\r \u0085\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]*[^\u0000-\u0020\u007f-\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000](?:[^\u0000-\u0008\u000b-\u001f\u007f-\u009f]{0,498}[^\u0000-\u0020\u007f-\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000])?[\t-\r \u0085\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]*$"
    )]
    pub tweet_data: String,
    /// Up to 4 different ids from `POST /api/medias`, not yet attached to a tweet.
    #[serde(default)]
    #[schema(schema_with = crate::http::v1::media::nullable_media_ids_schema)]
    pub tweet_media_ids: Option<Vec<i64>>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct TweetCreated {
    pub result: bool,
    pub tweet_id: i64,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct MediaCreated {
    pub result: bool,
    pub media_id: i64,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Tweets {
    pub result: bool,
    pub tweets: Vec<Tweet>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct UserAnswer {
    pub result: bool,
    pub user: User,
}

#[derive(Debug, Deserialize, IntoParams)]
pub struct FeedQuery {
    /// The page number, from 1. Without `offset` and `limit` the answer holds
    /// the whole feed, up to `ROOKERY_COMPAT_FEED_CAP` tweets.
    #[param(minimum = 1)]
    pub offset: Option<i64>,
    /// The page size (20 when only `offset` is given).
    #[param(minimum = 1)]
    pub limit: Option<i64>,
}

impl FeedQuery {
    fn slice(&self) -> Result<FeedSlice, CompatError> {
        if self.offset.is_none() && self.limit.is_none() {
            return Ok(FeedSlice::Whole);
        }
        let number = self.offset.unwrap_or(1);
        let size = self.limit.unwrap_or(DEFAULT_LIMIT);
        if number < 1 {
            return Err(CompatError::BadRequest(
                "offset is a page number and starts at 1".into(),
            ));
        }
        if size < 1 {
            return Err(CompatError::BadRequest(
                "limit is the page size and must be at least 1".into(),
            ));
        }
        Ok(FeedSlice::Page { number, size })
    }
}

#[utoipa::path(get, path = "/api/tweets", tag = TAG, security(("api_key" = [])),
    params(FeedQuery),
    responses(
        (status = 200, description = "The posts of the people the caller follows and the caller's own, most liked first, then newest", body = Tweets),
        (status = 400, description = "offset or limit is not a positive integer"),
        (status = 401, description = "No api-key header, or an unknown key"),
    ))]
pub async fn feed(
    state: web::Data<AppState>,
    ApiKey(p): ApiKey,
    query: web::Query<FeedQuery>,
) -> Result<web::Json<Tweets>, CompatError> {
    let slice = query.slice()?;
    let cap = state.settings.http.compat_feed_cap;
    Ok(web::Json(Tweets {
        result: true,
        tweets: microblog::feed(
            &state.db,
            &state.caches,
            &state.media,
            p.user_id,
            cap,
            slice,
        )
        .await?,
    }))
}

#[utoipa::path(post, path = "/api/tweets", tag = TAG, security(("api_key" = [])),
    params(IdempotencyKey),
    request_body = NewTweet,
    responses(
        (status = 201, body = TweetCreated),
        (status = 422, description = "Empty or too long text, a missing field, too many or unusable media"),
    ))]
pub async fn create_tweet(
    req: HttpRequest,
    state: web::Data<AppState>,
    ApiKey(p): ApiKey,
    body: JsonObject<NewTweet>,
) -> Result<Answer, CompatError> {
    let key = idempotent::key(&req, p.user_id, &idempotent::content(&*body)?)?;
    let media_ids = body.tweet_media_ids.as_deref().unwrap_or_default();
    idempotency::run(&state.db, &state.events, key, 201, async |tx| {
        let (tweet_id, events) = posts::create(tx, p.user_id, &body.tweet_data, media_ids).await?;
        Ok::<_, CompatError>(idempotency::Done {
            body: TweetCreated {
                result: true,
                tweet_id,
            },
            location: None,
            events,
        })
    })
    .await
}

#[utoipa::path(delete, path = "/api/tweets/{id}", tag = TAG, security(("api_key" = [])),
    params(("id" = i64, Path)),
    responses(
        (status = 200, body = Done),
        (status = 403, description = "Someone else's tweet"),
        (status = 404, description = "No such tweet, or deleted, or hidden from the caller"),
    ))]
pub async fn delete_tweet(
    state: web::Data<AppState>,
    ApiKey(p): ApiKey,
    id: web::Path<i64>,
) -> Result<web::Json<Done>, CompatError> {
    microblog::delete_tweet(&state.db, &state.events, &p, id.into_inner()).await?;
    Ok(web::Json(DONE))
}

#[utoipa::path(post, path = "/api/tweets/{id}/likes", tag = TAG, security(("api_key" = [])),
    params(("id" = i64, Path), IdempotencyKey),
    responses(
        (status = 200, description = "Liked (idempotent): the native `like` reaction, replacing another reaction of the caller", body = Done),
        (status = 404),
    ))]
pub async fn like(
    req: HttpRequest,
    state: web::Data<AppState>,
    ApiKey(p): ApiKey,
    id: web::Path<i64>,
) -> Result<Answer, CompatError> {
    let post_id = id.into_inner();
    let key = idempotent::key(&req, p.user_id, &[])?;
    idempotency::run(&state.db, &state.events, key, 200, async |tx| {
        let events = reactions::react(tx, p.user_id, post_id, ReactionKind::Like).await?;
        Ok::<_, CompatError>(idempotency::Done {
            body: DONE,
            location: None,
            events,
        })
    })
    .await
}

#[utoipa::path(delete, path = "/api/tweets/{id}/likes", tag = TAG, security(("api_key" = [])),
    params(("id" = i64, Path)),
    responses(
        (status = 200, description = "Not liked (idempotent); another kind of reaction is left alone", body = Done),
        (status = 404),
    ))]
pub async fn unlike(
    state: web::Data<AppState>,
    ApiKey(p): ApiKey,
    id: web::Path<i64>,
) -> Result<web::Json<Done>, CompatError> {
    reactions::unreact_kind(
        &state.db,
        &state.events,
        p.user_id,
        id.into_inner(),
        ReactionKind::Like,
    )
    .await?;
    Ok(web::Json(DONE))
}

#[utoipa::path(post, path = "/api/medias", tag = TAG, security(("api_key" = [])),
    params(IdempotencyKey),
    request_body(content((UploadForm = "multipart/form-data", encoding(("file" = (content_type = "image/jpeg, image/png, image/gif, image/webp")))))),
    responses(
        (status = 201, description = "Stored without metadata, as `POST /api/v1/media` does; attach it to a tweet within 24 hours", body = MediaCreated),
        (status = 413, description = "The file is over ROOKERY_MEDIA_MAX_BYTES"),
        (status = 415, description = "Not a JPEG, PNG, GIF or WebP image, or not a multipart body"),
        (status = 422, description = "No `file` field, or a truncated or corrupt image"),
        (status = 503, description = "Media storage is unavailable"),
    ))]
pub async fn upload(
    req: HttpRequest,
    state: web::Data<AppState>,
    ApiKey(p): ApiKey,
    payload: Multipart,
) -> Result<Answer, CompatError> {
    let file = read_file_field(&req, payload, state.media.max_bytes()).await?;
    let key = idempotent::key(&req, p.user_id, &file)?;
    let created = |media: &crate::domain::media::Media| MediaCreated {
        result: true,
        media_id: media.id,
    };
    Ok(state
        .media
        .upload(&state.db, &state.events, key, p.user_id, file, created)
        .await?)
}

#[utoipa::path(get, path = "/api/users/me", tag = TAG, security(("api_key" = [])),
    responses((status = 200, body = UserAnswer)))]
pub async fn me(
    state: web::Data<AppState>,
    ApiKey(p): ApiKey,
) -> Result<web::Json<UserAnswer>, CompatError> {
    Ok(web::Json(UserAnswer {
        result: true,
        user: microblog::user(&state.db, p.user_id, p.user_id).await?,
    }))
}

#[utoipa::path(get, path = "/api/users/{id}", tag = TAG, security(("api_key" = [])),
    params(("id" = i64, Path)),
    responses(
        (status = 200, body = UserAnswer),
        (status = 404, description = "No such user, or a block stands"),
    ))]
pub async fn user(
    state: web::Data<AppState>,
    ApiKey(p): ApiKey,
    id: web::Path<i64>,
) -> Result<web::Json<UserAnswer>, CompatError> {
    Ok(web::Json(UserAnswer {
        result: true,
        user: microblog::user(&state.db, p.user_id, id.into_inner()).await?,
    }))
}

#[utoipa::path(post, path = "/api/users/{id}/follow", tag = TAG, security(("api_key" = [])),
    params(("id" = i64, Path), IdempotencyKey),
    responses(
        (status = 200, description = "Following (idempotent)", body = Done),
        (status = 404, description = "No such user, or a block stands"),
        (status = 422, description = "Following yourself"),
    ))]
pub async fn follow(
    req: HttpRequest,
    state: web::Data<AppState>,
    ApiKey(p): ApiKey,
    id: web::Path<i64>,
) -> Result<Answer, CompatError> {
    let followee = id.into_inner();
    let key = idempotent::key(&req, p.user_id, &[])?;
    idempotency::run(&state.db, &state.events, key, 200, async |tx| {
        let (_, events) = social::follow(tx, p.user_id, followee).await?;
        Ok::<_, CompatError>(idempotency::Done {
            body: DONE,
            location: None,
            events,
        })
    })
    .await
}

#[utoipa::path(delete, path = "/api/users/{id}/follow", tag = TAG, security(("api_key" = [])),
    params(("id" = i64, Path)),
    responses(
        (status = 200, description = "Not following (idempotent)", body = Done),
        (status = 404, description = "No such user, or a block stands"),
    ))]
pub async fn unfollow(
    state: web::Data<AppState>,
    ApiKey(p): ApiKey,
    id: web::Path<i64>,
) -> Result<web::Json<Done>, CompatError> {
    microblog::unfollow(&state.db, &state.events, p.user_id, id.into_inner()).await?;
    Ok(web::Json(DONE))
}

/// Any other path under `/api`: a compat 404, not a problem document.
async fn not_found(req: HttpRequest) -> Result<HttpResponse, CompatError> {
    Err(CompatError::NotFound(format!(
        "no route for {} {}; see /docs for the API",
        req.method(),
        req.path()
    )))
}
