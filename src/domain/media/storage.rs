//! Where media bytes live: an S3-compatible bucket or a local directory,
//! behind one enum so callers never care which.

use std::path::{Path, PathBuf};

use s3::creds::Credentials;
use s3::error::S3Error;
use s3::{Bucket, Region};
use secrecy::ExposeSecret as _;

use crate::config::{MediaSettings, S3Settings, StorageSettings};
use crate::domain::accounts::tokens::random_token;

/// Stored objects never change (a new upload gets a new key), so clients and
/// CDNs may keep them forever.
pub const CACHE_CONTROL: &str = "public, max-age=31536000, immutable";
/// Presigned links last as long as S3 allows (SigV4's limit is 7 days).
pub const PRESIGN_SECS: u32 = 7 * 24 * 3600;
/// The one prefix under which media keys live.
const KEY_PREFIX: &str = "m/";
pub const THUMB_SUFFIX: &str = "_thumb";

#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    /// The store could not be reached or answered with a server error: worth retrying.
    #[error("media storage unavailable: {0}")]
    Unavailable(String),
    #[error("media storage failed: {0}")]
    Failed(String),
    #[error("no such object")]
    NotFound,
}

pub enum Storage {
    Local(LocalStorage),
    S3(S3Storage),
}

pub struct LocalStorage {
    dir: PathBuf,
    /// `ROOKERY_PUBLIC_URL`: objects are served at `<public_url>/media/<key>`.
    public_url: String,
}

pub struct S3Storage {
    bucket: Box<Bucket>,
    public_url: Option<String>,
}

/// A fresh pair of keys for an image and its thumbnail. 128 random bits:
/// keys are effectively capabilities when the bucket is public.
pub fn new_keys(extension: &str) -> (String, String) {
    let id = random_token(16);
    (
        format!("{KEY_PREFIX}{id}.{extension}"),
        format!("{KEY_PREFIX}{id}{THUMB_SUFFIX}.{extension}"),
    )
}

/// Whether `key` has exactly the shape [`new_keys`] makes. Anything else,
/// such as `..`, a slash or a NUL, is refused before it gets near a path.
pub fn is_valid_key(key: &str) -> bool {
    let Some(name) = key.strip_prefix(KEY_PREFIX) else {
        return false;
    };
    let Some((stem, extension)) = name.split_once('.') else {
        return false;
    };
    !stem.is_empty()
        && stem.len() <= 64
        && stem
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        && content_type_for(key).is_some()
        && matches!(extension, "jpg" | "png")
}

/// The content type of a stored object, from the extension we gave it.
pub fn content_type_for(key: &str) -> Option<&'static str> {
    match Path::new(key).extension()?.to_str()? {
        "jpg" => Some("image/jpeg"),
        "png" => Some("image/png"),
        _ => None,
    }
}

fn s3_error(err: S3Error) -> StorageError {
    match err {
        S3Error::Reqwest(e) => StorageError::Unavailable(e.to_string()),
        S3Error::HttpFailWithBody(404, _) => StorageError::NotFound,
        S3Error::HttpFailWithBody(code, body) if code >= 500 => {
            StorageError::Unavailable(format!("HTTP {code}: {body}"))
        }
        other => StorageError::Failed(other.to_string()),
    }
}

fn io_error(err: std::io::Error) -> StorageError {
    if err.kind() == std::io::ErrorKind::NotFound {
        StorageError::NotFound
    } else {
        StorageError::Failed(err.to_string())
    }
}

impl Storage {
    pub fn from_settings(settings: &MediaSettings) -> Result<Self, StorageError> {
        Ok(match &settings.storage {
            StorageSettings::Local { dir } => Self::Local(LocalStorage {
                dir: dir.clone(),
                public_url: settings.public_url.clone(),
            }),
            StorageSettings::S3(s3) => Self::S3(S3Storage::new(s3)?),
        })
    }

    /// Stores `data` at `key`, replacing nothing: keys are fresh. "Not
    /// found" here means the bucket or directory is missing: the server's
    /// configuration is wrong, which is not the client's missing resource.
    pub async fn put(
        &self,
        key: &str,
        data: &[u8],
        content_type: &str,
    ) -> Result<(), StorageError> {
        let stored = match self {
            Self::Local(local) => local.put(key, data).await,
            Self::S3(s3) => {
                async {
                    s3.bucket
                        .put_object_builder(key, data)
                        .with_content_type(content_type)
                        .with_cache_control(CACHE_CONTROL)
                        .map_err(s3_error)?
                        .execute()
                        .await
                        .map_err(s3_error)?;
                    Ok(())
                }
                .await
            }
        };
        stored.map_err(|e| match e {
            StorageError::NotFound => StorageError::Failed(format!(
                "cannot store {key}: the bucket or directory does not exist"
            )),
            other => other,
        })
    }

    /// Deletes `key`; an object already gone is not an error.
    pub async fn delete(&self, key: &str) -> Result<(), StorageError> {
        let result = match self {
            Self::Local(local) => tokio::fs::remove_file(local.path(key)?)
                .await
                .map_err(io_error),
            Self::S3(s3) => s3
                .bucket
                .delete_object(key)
                .await
                .map(|_| ())
                .map_err(s3_error),
        };
        match result {
            Err(StorageError::NotFound) => Ok(()),
            other => other,
        }
    }

    /// The URL a client fetches `key` from.
    pub async fn url(&self, key: &str) -> Result<String, StorageError> {
        match self {
            Self::Local(local) => Ok(format!("{}/media/{key}", local.public_url)),
            Self::S3(S3Storage {
                public_url: Some(base),
                ..
            }) => Ok(format!("{base}/{key}")),
            Self::S3(s3) => s3
                .bucket
                .presign_get(key, PRESIGN_SECS, None)
                .await
                .map_err(s3_error),
        }
    }

    /// Reads a locally stored object, for `GET /media/{key}`. With S3 storage
    /// nothing is served here: clients get the bucket's URLs.
    pub async fn read_local(&self, key: &str) -> Result<Vec<u8>, StorageError> {
        match self {
            Self::Local(local) => tokio::fs::read(local.path(key)?).await.map_err(io_error),
            Self::S3(_) => Err(StorageError::NotFound),
        }
    }
}

impl LocalStorage {
    fn path(&self, key: &str) -> Result<PathBuf, StorageError> {
        if !is_valid_key(key) {
            return Err(StorageError::NotFound);
        }
        Ok(self.dir.join(key))
    }

    async fn put(&self, key: &str, data: &[u8]) -> Result<(), StorageError> {
        let path = self.path(key)?;
        if let Some(parent) = path.parent() {
            tokio::fs::create_dir_all(parent)
                .await
                .map_err(|e| StorageError::Failed(format!("{}: {e}", parent.display())))?;
        }
        // Write aside, then rename: a reader never sees half a file, and a
        // crash leaves only a stray temporary file, never a truncated image.
        let partial = path.with_extension(format!("{}.partial", random_token(6)));
        if let Err(e) = tokio::fs::write(&partial, data).await {
            let _ = tokio::fs::remove_file(&partial).await;
            return Err(StorageError::Failed(format!("{}: {e}", partial.display())));
        }
        tokio::fs::rename(&partial, &path)
            .await
            .map_err(|e| StorageError::Failed(format!("{}: {e}", path.display())))
    }
}

impl S3Storage {
    fn new(settings: &S3Settings) -> Result<Self, StorageError> {
        let region = match &settings.endpoint {
            Some(endpoint) => Region::Custom {
                region: settings.region.clone(),
                endpoint: endpoint.clone(),
            },
            None => settings
                .region
                .parse()
                .map_err(|e| StorageError::Failed(format!("S3_REGION: {e}")))?,
        };
        let credentials = Credentials::new(
            Some(&settings.access_key),
            Some(settings.secret_key.expose_secret()),
            None,
            None,
            None,
        )
        .map_err(|e| StorageError::Failed(format!("S3 credentials: {e}")))?;
        let bucket = Bucket::new(&settings.bucket, region, credentials).map_err(s3_error)?;
        let bucket = if settings.path_style {
            bucket.with_path_style()
        } else {
            bucket
        };
        Ok(Self {
            bucket,
            public_url: settings.public_url.clone(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn made_keys_are_valid_and_unique() {
        let (key, thumb) = new_keys("jpg");
        assert!(is_valid_key(&key), "{key}");
        assert!(is_valid_key(&thumb), "{thumb}");
        assert!(thumb.ends_with("_thumb.jpg"));
        assert_ne!(key, new_keys("jpg").0);
        assert_eq!(content_type_for(&key), Some("image/jpeg"));
    }

    #[test]
    fn hostile_keys_are_refused() {
        for key in [
            "",
            "m/",
            "m/.jpg",
            "m/../secret.jpg",
            "m/a/../../b.jpg",
            "../m/a.jpg",
            "/etc/passwd",
            "m/a.jpg/..",
            "m/a.txt",
            "m/a.jpg.png",
            "m/a\0.jpg",
            "m/a%2F.jpg",
            "x/a.jpg",
        ] {
            assert!(!is_valid_key(key), "{key:?} accepted");
        }
    }
}
