use actix_multipart::{Multipart, MultipartError};
use actix_web::http::header;
use actix_web::{web, HttpRequest, HttpResponse};
use futures_util::TryStreamExt as _;
use utoipa::openapi::schema::{
    Array, ArrayBuilder, KnownFormat, ObjectBuilder, SchemaFormat, SchemaType, Type,
};
use utoipa::ToSchema;

use crate::domain::idempotency::Answer;
use crate::domain::media::{storage, Media, MediaError, MAX_PER_POST};
use crate::http::error::ApiError;
use crate::http::extract::Auth;
use crate::http::state::AppState;
use crate::http::v1::idempotent::{self, IdempotencyKey};

/// Room for the multipart framing (boundary lines, part headers) around the
/// file itself.
const MULTIPART_OVERHEAD: usize = 16 * 1024;

/// The schema of the media ids attached to a new post: different ids, at
/// most [`MAX_PER_POST`] of them.
pub(crate) fn media_ids_schema() -> Array {
    ArrayBuilder::new()
        .items(
            ObjectBuilder::new()
                .schema_type(Type::Integer)
                .format(Some(SchemaFormat::KnownFormat(KnownFormat::Int64))),
        )
        .max_items(Some(MAX_PER_POST))
        .unique_items(true)
        .build()
}

/// [`media_ids_schema`], where `null` also means none.
pub(crate) fn nullable_media_ids_schema() -> Array {
    let mut schema = media_ids_schema();
    schema.schema_type = SchemaType::from_iter([Type::Array, Type::Null]);
    schema
}

/// The upload form (for the OpenAPI document): one field, `file`.
#[derive(ToSchema)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)]
pub struct UploadForm {
    /// A JPEG, PNG, GIF (first frame) or WebP image; the format is detected
    /// from its bytes. At most `ROOKERY_MEDIA_MAX_BYTES` (10 MiB by default).
    #[schema(value_type = String, format = Binary)]
    pub file: Vec<u8>,
}

#[utoipa::path(post, path = "/api/v1/media", tag = "media", security(("bearer" = []), ("api_key" = [])),
    params(IdempotencyKey),
    request_body(content((UploadForm = "multipart/form-data", encoding(("file" = (content_type = "image/jpeg, image/png, image/gif, image/webp")))))),
    responses(
        (status = 201, description = "Stored, without metadata; attach it to a post within 24 hours or it is deleted", body = Media),
        (status = 413, description = "The file is over the limit"),
        (status = 415, description = "Not a JPEG, PNG, GIF or WebP image, or not a multipart body"),
        (status = 422, description = "No `file` field, or the image is truncated, corrupt or too large to decode"),
        (status = 503, description = "Media storage is unavailable"),
    ))]
pub async fn upload(
    req: HttpRequest,
    state: web::Data<AppState>,
    Auth(p): Auth,
    payload: Multipart,
) -> Result<Answer, ApiError> {
    let file = read_file_field(&req, payload, state.media.max_bytes()).await?;
    // The file's bytes, not the form's: a retry's multipart boundary differs.
    let key = idempotent::key(&req, p.user_id, &file)?;
    Ok(state
        .media
        .upload(&state.db, &state.events, key, p.user_id, file, |media| {
            media.clone()
        })
        .await?)
}

#[utoipa::path(get, path = "/media/{key}", tag = "media",
    params(("key" = String, Path, description = "The object key, as in the upload's `url`, e.g. `m/<random>.jpg`")),
    responses(
        (status = 200, description = "The image, cacheable forever", content(("image/jpeg"), ("image/png"))),
        (status = 404),
    ))]
pub async fn serve(
    state: web::Data<AppState>,
    key: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let (data, content_type) = state.media.open(&key).await?;
    Ok(HttpResponse::Ok()
        .content_type(content_type)
        .insert_header((header::CACHE_CONTROL, storage::CACHE_CONTROL))
        .insert_header((header::X_CONTENT_TYPE_OPTIONS, "nosniff"))
        .body(data))
}

/// Reads the one `file` field, refusing any other field and more than
/// `limit` bytes: up front
/// from Content-Length when the client sends it, and while streaming
/// otherwise, so an oversized body is never buffered whole. Shared with the
/// microblog-compatible upload, which must behave the same.
pub(crate) async fn read_file_field(
    req: &HttpRequest,
    mut payload: Multipart,
    limit: usize,
) -> Result<Vec<u8>, MediaError> {
    let too_large = MediaError::TooLarge { limit };
    let declared = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|len| len > (limit + MULTIPART_OVERHEAD) as u64) {
        return Err(too_large);
    }
    let mut file: Option<Vec<u8>> = None;
    while let Some(mut field) = payload.try_next().await.map_err(multipart_error)? {
        match field.name() {
            Some("file") if file.is_some() => {
                return Err(MediaError::Invalid("send exactly one `file` field".into()));
            }
            Some("file") => {}
            // As the OpenAPI document says: the form has one field. Refused
            // before it is read, so no other field is a way around the limit.
            Some(other) => {
                return Err(MediaError::Invalid(format!(
                    "unexpected field `{other}`: the form has only a `file` field"
                )));
            }
            None => return Err(MediaError::Invalid("a form field has no name".into())),
        }
        let mut buf = Vec::new();
        while let Some(chunk) = field.try_next().await.map_err(multipart_error)? {
            if buf.len() + chunk.len() > limit {
                return Err(too_large);
            }
            buf.extend_from_slice(&chunk);
        }
        file = Some(buf);
    }
    file.ok_or_else(|| MediaError::Invalid("the multipart body has no `file` field".into()))
}

fn multipart_error(err: MultipartError) -> MediaError {
    match err {
        MultipartError::ContentTypeMissing
        | MultipartError::ContentTypeParse
        | MultipartError::ContentTypeIncompatible
        | MultipartError::BoundaryMissing => MediaError::Unsupported(
            "the body must be multipart/form-data with a `file` field".into(),
        ),
        other => MediaError::Invalid(format!("the multipart body is malformed: {other}")),
    }
}
