use actix_web::{web, HttpRequest, HttpResponse};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::domain::idempotency::{self, Answer, Done};
use crate::domain::pagination::{Page, PageParams};
use crate::domain::posts::reactions::{self, Reactor};
use crate::domain::posts::{self, PostVersion, PostView, ReactionKind};
use crate::http::error::ApiError;
use crate::http::extract::{Auth, JsonObject, MaybeAuth, PageOf};
use crate::http::state::AppState;
use crate::http::v1::idempotent::{self, IdempotencyKey};
use crate::http::v1::PageAnswer;

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct CreatePostRequest {
    /// 1 to 500 characters after trimming; no control characters but tabs
    /// and line breaks.
    #[schema(
        example = "Hello #rookery, says @alice",
        pattern = r"^[\t-\r \u0085\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]*[^\u0000-\u0020\u007f-\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000](?:[^\u0000-\u0008\u000b-\u001f\u007f-\u009f]{0,498}[^\u0000-\u0020\u007f-\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000])?[\t-\r \u0085\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]*$"
    )]
    pub text: String,
    /// Up to 4 different ids from `POST /api/v1/media`, owned by the caller
    /// and not yet attached.
    #[serde(default)]
    #[schema(schema_with = super::media::media_ids_schema)]
    pub media_ids: Vec<i64>,
}

#[derive(Debug, Deserialize, ToSchema)]
pub struct EditPostRequest {
    /// As when creating the post.
    #[schema(
        pattern = r"^[\t-\r \u0085\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]*[^\u0000-\u0020\u007f-\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000](?:[^\u0000-\u0008\u000b-\u001f\u007f-\u009f]{0,498}[^\u0000-\u0020\u007f-\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000])?[\t-\r \u0085\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]*$"
    )]
    pub text: String,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct ReactRequest {
    pub kind: ReactionKind,
}

#[derive(Debug, Deserialize, IntoParams)]
pub struct ReactionFilter {
    /// Only this kind of reaction.
    pub kind: Option<ReactionKind>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ViewCount {
    /// Distinct viewers of the post.
    pub views: i64,
}

#[utoipa::path(post, path = "/api/v1/posts", tag = "posts", security(("bearer" = []), ("api_key" = [])),
    params(IdempotencyKey),
    request_body = CreatePostRequest,
    responses(
        (status = 201, body = PostView),
        (status = 422, description = "Empty or too long text, too many or unusable media"),
    ))]
pub async fn create(
    req: HttpRequest,
    state: web::Data<AppState>,
    Auth(p): Auth,
    body: JsonObject<CreatePostRequest>,
) -> Result<Answer, ApiError> {
    let key = idempotent::key(&req, p.user_id, &idempotent::content(&*body)?)?;
    idempotency::run(&state.db, &state.events, key, 201, async |tx| {
        let (id, events) = posts::create(tx, p.user_id, &body.text, &body.media_ids).await?;
        Ok::<_, ApiError>(Done {
            body: posts::get_in(tx, &state.media, Some(p.user_id), id).await?,
            location: Some(format!("/api/v1/posts/{id}")),
            events,
        })
    })
    .await
}

#[utoipa::path(get, path = "/api/v1/posts/{id}", tag = "posts", security((), ("bearer" = []), ("api_key" = [])),
    params(("id" = i64, Path)),
    responses((status = 200, body = PostView), (status = 404, description = "Absent, deleted or blocked")))]
pub async fn get(
    state: web::Data<AppState>,
    viewer: MaybeAuth,
    id: web::Path<i64>,
) -> Result<web::Json<PostView>, ApiError> {
    Ok(web::Json(
        posts::get(
            &state.db,
            &state.caches,
            &state.media,
            viewer.user_id(),
            id.into_inner(),
        )
        .await?,
    ))
}

#[utoipa::path(patch, path = "/api/v1/posts/{id}", tag = "posts", security(("bearer" = []), ("api_key" = [])),
    params(("id" = i64, Path)), request_body = EditPostRequest,
    responses(
        (status = 200, body = PostView),
        (status = 403, description = "Not the author"),
        (status = 404),
        (status = 422),
    ))]
pub async fn edit(
    state: web::Data<AppState>,
    Auth(p): Auth,
    id: web::Path<i64>,
    body: JsonObject<EditPostRequest>,
) -> Result<web::Json<PostView>, ApiError> {
    let id = id.into_inner();
    posts::edit(&state.db, &state.events, p.user_id, id, &body.text).await?;
    Ok(web::Json(
        posts::get(&state.db, &state.caches, &state.media, Some(p.user_id), id).await?,
    ))
}

#[utoipa::path(delete, path = "/api/v1/posts/{id}", tag = "posts", security(("bearer" = []), ("api_key" = [])),
    params(("id" = i64, Path)),
    responses(
        (status = 204, description = "Deleted, with its comments"),
        (status = 403, description = "Neither the author nor a moderator"),
        (status = 404),
    ))]
pub async fn delete(
    state: web::Data<AppState>,
    Auth(p): Auth,
    id: web::Path<i64>,
) -> Result<HttpResponse, ApiError> {
    posts::delete(&state.db, &state.events, &p, id.into_inner()).await?;
    Ok(HttpResponse::NoContent().finish())
}

#[utoipa::path(get, path = "/api/v1/posts/{id}/history", tag = "posts", security((), ("bearer" = []), ("api_key" = [])),
    params(("id" = i64, Path)),
    responses((status = 200, description = "Every version, oldest first", body = Vec<PostVersion>), (status = 404)))]
pub async fn history(
    state: web::Data<AppState>,
    viewer: MaybeAuth,
    id: web::Path<i64>,
) -> Result<web::Json<Vec<PostVersion>>, ApiError> {
    Ok(web::Json(
        posts::history(&state.db, viewer.user_id(), id.into_inner()).await?,
    ))
}

#[utoipa::path(get, path = "/api/v1/users/{id}/posts", tag = "posts", security((), ("bearer" = []), ("api_key" = [])),
    params(("id" = i64, Path), PageParams),
    responses((status = 200, body = Page<PostView>), (status = 404)))]
pub async fn by_user(
    state: web::Data<AppState>,
    (viewer, id, page): PageOf,
) -> PageAnswer<PostView> {
    let list = posts::by_user(
        &state.db,
        &state.caches,
        &state.media,
        viewer.user_id(),
        *id,
        &page,
    );
    Ok(web::Json(list.await?))
}

#[utoipa::path(put, path = "/api/v1/posts/{id}/reactions", tag = "reactions", security(("bearer" = []), ("api_key" = [])),
    params(("id" = i64, Path), IdempotencyKey), request_body = ReactRequest,
    responses((status = 200, description = "The post with its counts", body = PostView), (status = 404), (status = 422, description = "Unknown kind")))]
pub async fn react(
    req: HttpRequest,
    state: web::Data<AppState>,
    Auth(p): Auth,
    id: web::Path<i64>,
    body: JsonObject<ReactRequest>,
) -> Result<Answer, ApiError> {
    let id = id.into_inner();
    let key = idempotent::key(&req, p.user_id, &idempotent::content(&*body)?)?;
    idempotency::run(&state.db, &state.events, key, 200, async |tx| {
        let events = reactions::react(tx, p.user_id, id, body.kind).await?;
        Ok::<_, ApiError>(Done {
            body: posts::get_in(tx, &state.media, Some(p.user_id), id).await?,
            location: None,
            events,
        })
    })
    .await
}

#[utoipa::path(delete, path = "/api/v1/posts/{id}/reactions", tag = "reactions", security(("bearer" = []), ("api_key" = [])),
    params(("id" = i64, Path)), responses((status = 204, description = "No reaction (idempotent)"), (status = 404)))]
pub async fn unreact(
    state: web::Data<AppState>,
    Auth(p): Auth,
    id: web::Path<i64>,
) -> Result<HttpResponse, ApiError> {
    reactions::unreact(&state.db, &state.events, p.user_id, id.into_inner()).await?;
    Ok(HttpResponse::NoContent().finish())
}

#[utoipa::path(get, path = "/api/v1/posts/{id}/reactions", tag = "reactions", security((), ("bearer" = []), ("api_key" = [])),
    params(("id" = i64, Path), ReactionFilter, PageParams),
    responses((status = 200, body = Page<Reactor>), (status = 404)))]
pub async fn reactions(
    state: web::Data<AppState>,
    viewer: MaybeAuth,
    id: web::Path<i64>,
    filter: web::Query<ReactionFilter>,
    page: web::Query<PageParams>,
) -> Result<web::Json<Page<Reactor>>, ApiError> {
    Ok(web::Json(
        reactions::list(
            &state.db,
            viewer.user_id(),
            id.into_inner(),
            filter.kind,
            &page,
        )
        .await?,
    ))
}

#[utoipa::path(post, path = "/api/v1/posts/{id}/views", tag = "reactions", security(("bearer" = []), ("api_key" = [])),
    params(("id" = i64, Path)),
    responses((status = 200, body = ViewCount), (status = 404)))]
pub async fn view(
    state: web::Data<AppState>,
    Auth(p): Auth,
    id: web::Path<i64>,
) -> Result<web::Json<ViewCount>, ApiError> {
    Ok(web::Json(ViewCount {
        views: reactions::record_view(&state.db, &state.events, p.user_id, id.into_inner()).await?,
    }))
}
