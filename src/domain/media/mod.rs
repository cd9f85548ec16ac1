//! Media: uploaded images, processed off the async workers, stored in a
//! bucket or a directory, and later attached to posts. This module owns the
//! `media` table; no other module reads or writes it.
//!
//! Lifecycle: an upload makes an unattached row; creating a post attaches
//! it with [`attach`] in the post's transaction; rows still unattached after
//! [`UNATTACHED_TTL`] are deleted with their objects by
//! [`MediaService::cleanup_unattached`], which start-up runs periodically.

pub mod process;
pub mod storage;
pub mod worker;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use actix::Addr;
use serde::Serialize;
use sqlx::{PgConnection, PgPool};
use utoipa::ToSchema;

use crate::config::MediaSettings;
use crate::domain::events::EventSink;
use crate::domain::idempotency::{self, Answer, Begun, IdempotencyError};
use process::ProcessError;
use storage::{Storage, StorageError};
use worker::{ImageWorker, ProcessImage};

/// At most this many media per post.
pub const MAX_PER_POST: usize = 4;
/// Uploads not attached to a post within this time are deleted.
pub const UNATTACHED_TTL: Duration = Duration::from_secs(24 * 3600);
pub const CLEANUP_INTERVAL: Duration = Duration::from_secs(3600);
/// Rows deleted per statement, so a large backlog does not hold one huge transaction.
const CLEANUP_BATCH: i64 = 500;

/// A freshly uploaded image, as its owner sees it.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Media {
    pub id: i64,
    pub url: String,
    pub thumbnail_url: String,
    pub width: i32,
    pub height: i32,
    /// A compact placeholder to show while the image loads (blurha.sh).
    #[schema(example = "LEHV6nWB2yk8pyo0adR*.7kCMdnj")]
    pub blurhash: String,
    #[schema(example = "image/jpeg")]
    pub content_type: String,
    /// Size of the stored image in bytes.
    pub bytes: i64,
}

/// An attached image as stored: what the read cache keeps of it.
#[derive(Debug, Clone)]
pub struct StoredMedia {
    pub id: i64,
    pub storage_key: String,
    pub thumb_key: String,
    pub width: i32,
    pub height: i32,
    pub blurhash: String,
    pub content_type: String,
}

/// Each post's stored media, in position order. Posts without media are absent.
pub async fn stored_for_posts(
    db: impl sqlx::PgExecutor<'_>,
    post_ids: &[i64],
) -> Result<HashMap<i64, Vec<StoredMedia>>, sqlx::Error> {
    let rows = sqlx::query!(
        r#"SELECT id, post_id AS "post_id!", storage_key, thumb_key, width, height, blurhash, content_type
           FROM media
           WHERE post_id = ANY($1)
           ORDER BY post_id, position"#,
        post_ids
    )
    .fetch_all(db)
    .await?;
    let mut by_post: HashMap<i64, Vec<StoredMedia>> = HashMap::new();
    for row in rows {
        by_post.entry(row.post_id).or_default().push(StoredMedia {
            id: row.id,
            storage_key: row.storage_key,
            thumb_key: row.thumb_key,
            width: row.width,
            height: row.height,
            blurhash: row.blurhash,
            content_type: row.content_type,
        });
    }
    Ok(by_post)
}

/// An image attached to a post, as anyone may see it.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct MediaView {
    pub id: i64,
    pub url: String,
    pub thumbnail_url: String,
    pub width: i32,
    pub height: i32,
    pub blurhash: String,
    pub content_type: String,
}

#[derive(Debug, thiserror::Error)]
pub enum MediaError {
    #[error("the file is larger than the limit of {limit} bytes")]
    TooLarge { limit: usize },
    #[error("{0}")]
    Unsupported(String),
    /// Something wrong with the uploaded file or form.
    #[error("{0}")]
    Invalid(String),
    #[error(
        "media {0} cannot be attached: it does not exist, is not yours or is already attached"
    )]
    NotAttachable(i64),
    #[error("a post can have at most {max} media")]
    TooManyAttachments { max: usize },
    #[error("media not found")]
    NotFound,
    #[error(transparent)]
    Storage(#[from] StorageError),
    #[error(transparent)]
    Db(#[from] sqlx::Error),
    #[error(transparent)]
    Idempotency(#[from] IdempotencyError),
    #[error("{0}")]
    Internal(String),
}

impl From<ProcessError> for MediaError {
    fn from(err: ProcessError) -> Self {
        match err {
            ProcessError::Unsupported => Self::Unsupported(err.to_string()),
            ProcessError::Empty | ProcessError::TooLarge(_) | ProcessError::Undecodable(_) => {
                Self::Invalid(err.to_string())
            }
            ProcessError::Encode(detail) => Self::Internal(detail),
        }
    }
}

/// Uploads, lookups and cleanup; cheap to clone (held in `AppState`).
#[derive(Clone)]
pub struct MediaService {
    storage: Arc<Storage>,
    worker: Addr<ImageWorker>,
    max_bytes: usize,
}

impl MediaService {
    /// Starts `threads` image workers: call inside the actix `System`.
    pub fn new(settings: &MediaSettings, threads: usize) -> Result<Self, MediaError> {
        Ok(Self {
            storage: Arc::new(Storage::from_settings(settings)?),
            worker: worker::start(threads),
            max_bytes: settings.max_bytes,
        })
    }

    /// The largest accepted upload, in bytes.
    pub fn max_bytes(&self) -> usize {
        self.max_bytes
    }

    /// Processes, stores and records an upload. Either everything is kept or
    /// nothing is: a failed store leaves no row, a failed insert no objects.
    /// Processes and stores an upload as one idempotent write (see
    /// [`idempotency`]): the answer, shaped by `answer` (201), is stored under
    /// `key` in the transaction that records the media.
    pub async fn upload<T>(
        &self,
        db: &PgPool,
        events: &EventSink,
        key: Option<idempotency::Key>,
        owner_id: i64,
        bytes: Vec<u8>,
        answer: impl FnOnce(&Media) -> T + Send + 'static,
    ) -> Result<Answer, MediaError>
    where
        T: serde::Serialize,
    {
        // With a key, its lock is held from here: a retry while this one is
        // processing gets a 409, not a second copy.
        let write = match idempotency::begin(db, key).await? {
            Begun::Replay(earlier) => return Ok(earlier),
            Begun::Fresh(write) => write,
        };
        let processed = self
            .worker
            .send(ProcessImage(bytes))
            .await
            .map_err(|e| MediaError::Internal(format!("image worker: {e}")))
            .and_then(|processed| processed.map_err(MediaError::from));
        let (mut write, processed) = write.or_abandon(processed).await?;
        // Detached from the request: a client hanging up mid-way must not cut
        // this short between storing and recording, leaving objects that no
        // row (and so no cleanup) knows of.
        let (this, events) = (self.clone(), events.clone());
        actix::spawn(async move {
            let stored = this.store(write.conn(), owner_id, processed).await;
            let (write, (media, keys)) = write.or_abandon(stored).await?;
            let body = answer(&media);
            match write.finish(&events, Vec::new(), 201, None, &body).await {
                Ok(stored) => Ok(stored),
                Err(e) => {
                    this.discard(&[&keys.0, &keys.1]).await;
                    Err(e.into())
                }
            }
        })
        .await
        .map_err(|e| MediaError::Internal(format!("upload task: {e}")))?
    }

    /// Puts the objects and records them in `tx`; returns the media and its
    /// two storage keys. On failure no object is left behind.
    async fn store(
        &self,
        tx: &mut PgConnection,
        owner_id: i64,
        image: process::ProcessedImage,
    ) -> Result<(Media, (String, String)), MediaError> {
        let (key, thumb_key) = storage::new_keys(image.format.extension());
        let content_type = image.format.content_type();
        let width = dimension(image.width)?;
        let height = dimension(image.height)?;
        let bytes = i64::try_from(image.data.len())
            .map_err(|_| MediaError::Internal("image size overflows".into()))?;
        let stored = async {
            self.storage.put(&key, &image.data, content_type).await?;
            self.storage
                .put(&thumb_key, &image.thumb, content_type)
                .await
        }
        .await;
        if let Err(e) = stored {
            // Either put may have landed before the failure (a timeout can
            // follow a completed write): remove both.
            self.discard(&[&key, &thumb_key]).await;
            return Err(e.into());
        }
        let inserted = sqlx::query_scalar!(
            "INSERT INTO media (owner_id, storage_key, thumb_key, content_type, width, height, bytes, blurhash)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
             RETURNING id",
            owner_id,
            key,
            thumb_key,
            content_type,
            width,
            height,
            bytes,
            image.blurhash,
        )
        .fetch_one(&mut *tx)
        .await;
        let id = match inserted {
            Ok(id) => id,
            Err(e) => {
                self.discard(&[&key, &thumb_key]).await;
                return Err(e.into());
            }
        };
        // The row rolls back with the caller's transaction on any error from
        // here, so the objects go with it.
        let urls = async {
            Ok::<_, StorageError>((
                self.storage.url(&key).await?,
                self.storage.url(&thumb_key).await?,
            ))
        };
        let (url, thumbnail_url) = match urls.await {
            Ok(urls) => urls,
            Err(e) => {
                self.discard(&[&key, &thumb_key]).await;
                return Err(e.into());
            }
        };
        let media = Media {
            id,
            url,
            thumbnail_url,
            width,
            height,
            blurhash: image.blurhash,
            content_type: content_type.to_owned(),
            bytes,
        };
        Ok((media, (key, thumb_key)))
    }

    /// Best-effort deletion of objects no row refers to any more. A failure
    /// is logged, not returned: the caller's outcome does not depend on it.
    async fn discard(&self, keys: &[&str]) {
        for key in keys {
            if let Err(e) = self.storage.delete(key).await {
                tracing::warn!(key, error = %e, "could not delete a media object; it is orphaned");
            }
        }
    }

    /// Each post's media, in position order. Posts without media are absent.
    pub async fn for_posts(
        &self,
        db: impl sqlx::PgExecutor<'_>,
        post_ids: &[i64],
    ) -> Result<HashMap<i64, Vec<MediaView>>, MediaError> {
        let stored = stored_for_posts(db, post_ids).await?;
        let mut by_post = HashMap::with_capacity(stored.len());
        for (post_id, media) in stored {
            by_post.insert(post_id, self.views(&media).await?);
        }
        Ok(by_post)
    }

    /// How stored media are shown: their URLs are made on each read, since
    /// presigned ones expire.
    pub async fn views(&self, stored: &[StoredMedia]) -> Result<Vec<MediaView>, MediaError> {
        let mut views = Vec::with_capacity(stored.len());
        for m in stored {
            views.push(MediaView {
                id: m.id,
                url: self.storage.url(&m.storage_key).await?,
                thumbnail_url: self.storage.url(&m.thumb_key).await?,
                width: m.width,
                height: m.height,
                blurhash: m.blurhash.clone(),
                content_type: m.content_type.clone(),
            });
        }
        Ok(views)
    }

    /// A locally stored object and its content type, for `GET /media/{key}`.
    pub async fn open(&self, key: &str) -> Result<(Vec<u8>, &'static str), MediaError> {
        let content_type = storage::content_type_for(key)
            .filter(|_| storage::is_valid_key(key))
            .ok_or(MediaError::NotFound)?;
        match self.storage.read_local(key).await {
            Ok(data) => Ok((data, content_type)),
            Err(StorageError::NotFound) => Err(MediaError::NotFound),
            Err(e) => Err(e.into()),
        }
    }

    /// Deletes media never attached to a post and older than `older_than`,
    /// rows first and then objects, so a concurrent [`attach`] either wins
    /// (and the row stays) or finds the row gone; never a post pointing at
    /// deleted objects. Returns how many were deleted.
    pub async fn cleanup_unattached(
        &self,
        db: &PgPool,
        older_than: Duration,
    ) -> Result<u64, MediaError> {
        let age = older_than.as_secs_f64();
        let mut deleted = 0u64;
        loop {
            // SKIP LOCKED: rows an attach is holding are left for the next run.
            let rows = sqlx::query!(
                "DELETE FROM media WHERE id IN (
                     SELECT id FROM media
                     WHERE post_id IS NULL AND created_at < now() - make_interval(secs => $1)
                     ORDER BY created_at
                     LIMIT $2
                     FOR UPDATE SKIP LOCKED)
                 RETURNING storage_key, thumb_key",
                age,
                CLEANUP_BATCH
            )
            .fetch_all(db)
            .await?;
            for row in &rows {
                self.discard(&[&row.storage_key, &row.thumb_key]).await;
            }
            deleted += rows.len() as u64;
            if (rows.len() as i64) < CLEANUP_BATCH {
                return Ok(deleted);
            }
        }
    }
}

fn dimension(value: u32) -> Result<i32, MediaError> {
    i32::try_from(value).map_err(|_| MediaError::Internal("image dimension overflows".into()))
}

/// Attaches `media_ids` to `post_id`, in that order (positions 0..n), inside
/// the caller's transaction. Every id must be the owner's and unattached;
/// otherwise nothing is attached and the error names the first offending id.
/// The caller rolls its transaction back on error.
pub async fn attach(
    tx: &mut PgConnection,
    owner_id: i64,
    post_id: i64,
    media_ids: &[i64],
) -> Result<(), MediaError> {
    if media_ids.len() > MAX_PER_POST {
        return Err(MediaError::TooManyAttachments { max: MAX_PER_POST });
    }
    for (i, id) in media_ids.iter().enumerate() {
        if media_ids[..i].contains(id) {
            return Err(MediaError::NotAttachable(*id));
        }
    }
    if media_ids.is_empty() {
        return Ok(());
    }
    // Lock first, then check, then update: a concurrent attach of the same
    // media waits here and then sees it attached.
    let available = sqlx::query_scalar!(
        "SELECT id FROM media
         WHERE id = ANY($1) AND owner_id = $2 AND post_id IS NULL
         FOR UPDATE",
        media_ids,
        owner_id
    )
    .fetch_all(&mut *tx)
    .await?;
    if let Some(missing) = media_ids.iter().find(|id| !available.contains(id)) {
        return Err(MediaError::NotAttachable(*missing));
    }
    let positions: Vec<i16> = (0..media_ids.len())
        .map(|i| i16::try_from(i).unwrap_or(i16::MAX))
        .collect();
    sqlx::query!(
        "UPDATE media AS m SET post_id = $1, position = a.position
         FROM UNNEST($2::BIGINT[], $3::SMALLINT[]) AS a(id, position)
         WHERE m.id = a.id",
        post_id,
        media_ids,
        &positions
    )
    .execute(&mut *tx)
    .await?;
    Ok(())
}
