use actix_web::{web, HttpRequest, HttpResponse};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::domain::comments::{self, CommentView, Thread};
use crate::domain::idempotency::{self, Answer, Done};
use crate::domain::pagination::{Page, PageParams};
use crate::http::error::ApiError;
use crate::http::extract::{Auth, JsonObject, MaybeAuth, PageOf};
use crate::http::state::AppState;
use crate::http::v1::idempotent::{self, IdempotencyKey};
use crate::http::v1::PageAnswer;

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct CreateCommentRequest {
    /// 1 to 1000 characters after trimming; no control characters but tabs
    /// and line breaks.
    #[schema(
        pattern = r"^[\t-\r \u0085\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]*[^\u0000-\u0020\u007f-\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000](?:[^\u0000-\u0008\u000b-\u001f\u007f-\u009f]{0,998}[^\u0000-\u0020\u007f-\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000])?[\t-\r \u0085\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]*$"
    )]
    pub text: String,
    /// A top-level comment of the same post, to reply to it.
    pub parent_id: Option<i64>,
}

#[derive(Debug, Deserialize, ToSchema)]
pub struct EditCommentRequest {
    /// As when creating the comment.
    #[schema(
        pattern = r"^[\t-\r \u0085\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]*[^\u0000-\u0020\u007f-\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000](?:[^\u0000-\u0008\u000b-\u001f\u007f-\u009f]{0,998}[^\u0000-\u0020\u007f-\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000])?[\t-\r \u0085\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]*$"
    )]
    pub text: String,
}

#[utoipa::path(post, path = "/api/v1/posts/{id}/comments", tag = "comments", security(("bearer" = []), ("api_key" = [])),
    params(("id" = i64, Path), IdempotencyKey), request_body = CreateCommentRequest,
    responses((status = 201, body = CommentView), (status = 404), (status = 422)))]
pub async fn create(
    req: HttpRequest,
    state: web::Data<AppState>,
    Auth(p): Auth,
    id: web::Path<i64>,
    body: JsonObject<CreateCommentRequest>,
) -> Result<Answer, ApiError> {
    let post_id = id.into_inner();
    let key = idempotent::key(&req, p.user_id, &idempotent::content(&*body)?)?;
    idempotency::run(&state.db, &state.events, key, 201, async |tx| {
        let (comment, events) =
            comments::create(tx, p.user_id, post_id, &body.text, body.parent_id).await?;
        Ok::<_, ApiError>(Done {
            location: Some(format!("/api/v1/comments/{}", comment.id)),
            body: comment,
            events,
        })
    })
    .await
}

#[utoipa::path(get, path = "/api/v1/posts/{id}/comments", tag = "comments", security((), ("bearer" = []), ("api_key" = [])),
    params(("id" = i64, Path), PageParams),
    responses((status = 200, description = "Top-level comments, oldest first", body = Page<CommentView>), (status = 404)))]
pub async fn for_post(state: web::Data<AppState>, list: PageOf) -> PageAnswer<CommentView> {
    thread(&state, list, Thread::Post).await
}

#[utoipa::path(get, path = "/api/v1/comments/{id}", tag = "comments", security((), ("bearer" = []), ("api_key" = [])),
    params(("id" = i64, Path)),
    responses((status = 200, body = CommentView), (status = 404)))]
pub async fn get(
    state: web::Data<AppState>,
    viewer: MaybeAuth,
    id: web::Path<i64>,
) -> Result<web::Json<CommentView>, ApiError> {
    Ok(web::Json(
        comments::get(&state.db, viewer.user_id(), id.into_inner()).await?,
    ))
}

#[utoipa::path(get, path = "/api/v1/comments/{id}/replies", tag = "comments", security((), ("bearer" = []), ("api_key" = [])),
    params(("id" = i64, Path), PageParams),
    responses((status = 200, description = "Replies, oldest first", body = Page<CommentView>), (status = 404)))]
pub async fn replies(state: web::Data<AppState>, list: PageOf) -> PageAnswer<CommentView> {
    thread(&state, list, Thread::Replies).await
}

/// A page of a thread: a post's top-level comments or a comment's replies.
async fn thread(
    state: &AppState,
    (viewer, id, page): PageOf,
    thread: fn(i64) -> Thread,
) -> PageAnswer<CommentView> {
    let list = comments::list(&state.db, viewer.user_id(), thread(*id), &page);
    Ok(web::Json(list.await?))
}

#[utoipa::path(patch, path = "/api/v1/comments/{id}", tag = "comments", security(("bearer" = []), ("api_key" = [])),
    params(("id" = i64, Path)), request_body = EditCommentRequest,
    responses((status = 200, body = CommentView), (status = 403), (status = 404)))]
pub async fn edit(
    state: web::Data<AppState>,
    Auth(p): Auth,
    id: web::Path<i64>,
    body: JsonObject<EditCommentRequest>,
) -> Result<web::Json<CommentView>, ApiError> {
    Ok(web::Json(
        comments::edit(
            &state.db,
            &state.events,
            p.user_id,
            id.into_inner(),
            &body.text,
        )
        .await?,
    ))
}

#[utoipa::path(delete, path = "/api/v1/comments/{id}", tag = "comments", security(("bearer" = []), ("api_key" = [])),
    params(("id" = i64, Path)),
    responses((status = 204, description = "Deleted, with its replies"), (status = 403), (status = 404)))]
pub async fn delete(
    state: web::Data<AppState>,
    Auth(p): Auth,
    id: web::Path<i64>,
) -> Result<HttpResponse, ApiError> {
    comments::delete(&state.db, &state.events, &p, id.into_inner()).await?;
    Ok(HttpResponse::NoContent().finish())
}
