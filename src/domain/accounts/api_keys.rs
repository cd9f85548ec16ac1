//! Long-lived API keys: shown once, stored as SHA-256 hashes.

use chrono::{DateTime, Utc};
use serde::Serialize;
use sqlx::PgPool;
use utoipa::ToSchema;

use super::tokens::{random_token, sha256};
use super::{validate, AccountError};
use crate::domain::events::{DomainEvent, EventSink};
use crate::domain::FieldErrors;

pub const KEY_PREFIX: &str = "rk_";

#[derive(Debug, Serialize, ToSchema)]
pub struct ApiKey {
    pub id: i64,
    pub name: String,
    /// The first characters of the key, to tell keys apart.
    pub prefix: String,
    pub created_at: DateTime<Utc>,
    pub last_used_at: Option<DateTime<Utc>>,
}

/// The answer to creating a key: the only time the key itself is shown.
#[derive(Debug, Serialize, ToSchema)]
pub struct CreatedApiKey {
    #[serde(flatten)]
    pub meta: ApiKey,
    pub key: String,
}

pub async fn create(db: &PgPool, user_id: i64, name: &str) -> Result<CreatedApiKey, AccountError> {
    let name = match validate::text_field(name, validate::API_KEY_NAME_MAX) {
        Ok(Some(name)) => name,
        Ok(None) => return Err(invalid_name("must not be empty".into())),
        Err(m) => return Err(invalid_name(m)),
    };
    let key = format!("{KEY_PREFIX}{}", random_token(32));
    insert(db, user_id, &name, &key).await
}

/// Stores a key whose text the caller chose. Only for tools such as demo
/// seeding; keys made through the API are always random.
pub async fn insert(
    db: &PgPool,
    user_id: i64,
    name: &str,
    key: &str,
) -> Result<CreatedApiKey, AccountError> {
    let prefix: String = key.chars().take(KEY_PREFIX.len() + 6).collect();
    let meta = sqlx::query_as!(
        ApiKey,
        "INSERT INTO api_keys (user_id, name, key_hash, prefix) VALUES ($1, $2, $3, $4)
         RETURNING id, name, prefix, created_at, last_used_at",
        user_id,
        name,
        sha256(key),
        prefix
    )
    .fetch_one(db)
    .await?;
    Ok(CreatedApiKey {
        meta,
        key: key.to_owned(),
    })
}

fn invalid_name(message: String) -> AccountError {
    let mut errors = FieldErrors::new();
    errors.insert("name".into(), vec![message]);
    AccountError::Invalid(errors)
}

pub async fn list(db: &PgPool, user_id: i64) -> Result<Vec<ApiKey>, AccountError> {
    Ok(sqlx::query_as!(
        ApiKey,
        "SELECT id, name, prefix, created_at, last_used_at FROM api_keys WHERE user_id = $1 ORDER BY id",
        user_id
    )
    .fetch_all(db)
    .await?)
}

/// Revokes one of the caller's keys; someone else's key is "not found".
/// Connections opened with the key close, on every node.
pub async fn revoke(
    db: &PgPool,
    events: &EventSink,
    user_id: i64,
    key_id: i64,
) -> Result<(), AccountError> {
    let mut tx = db.begin().await?;
    let done = sqlx::query!(
        "DELETE FROM api_keys WHERE id = $1 AND user_id = $2",
        key_id,
        user_id
    )
    .execute(&mut *tx)
    .await?;
    if done.rows_affected() == 0 {
        return Err(AccountError::NotFound("API key"));
    }
    let revoked = DomainEvent::CredentialsRevoked {
        user_id,
        api_key_id: Some(key_id),
    };
    events.commit(tx, vec![revoked]).await?;
    Ok(())
}

/// An API key as the read cache keeps it, by the SHA-256 of the key.
#[derive(Debug)]
pub struct CachedKey {
    pub key_id: i64,
    pub user_id: i64,
    /// When it was last recorded as used (Unix seconds).
    pub last_used: std::sync::atomic::AtomicI64,
}
