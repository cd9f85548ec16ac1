//! Turning a presented credential (a JWT or an API key) into a [`Principal`].
//! The account row is always consulted, through the read cache, so a
//! suspended or deleted account, or a token issued before a password change,
//! is refused at once: every such change announces an event that makes every
//! node's cache forget the user (and their keys) before anything reads it
//! again (see `domain::cache`).

use std::collections::HashMap;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;

use rookery_actors::delivery::session::Credential;
use serde::Serialize;
use sqlx::PgPool;
use utoipa::ToSchema;

use super::api_keys::CachedKey;
use super::tokens::{sha256, Claims};
use super::users::{self, CachedUser};
use super::{AccountError, JwtKeys, Role, Status};
use crate::domain::cache::Caches;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum AuthMethod {
    Jwt,
    ApiKey,
}

/// The authenticated caller.
#[derive(Debug, Clone)]
pub struct Principal {
    pub user_id: i64,
    pub username: String,
    /// The role as stored now, which may be newer than the token's claim.
    pub role: Role,
    pub method: AuthMethod,
    pub claims: Option<Claims>,
    /// What was presented: live connections close when it is revoked.
    pub credential: Credential,
}

pub async fn from_jwt(
    db: &PgPool,
    caches: &Caches,
    keys: &JwtKeys,
    token: &str,
) -> Result<Principal, AccountError> {
    let claims = keys.verify(token)?;
    let user_id: i64 = claims
        .sub
        .parse()
        .map_err(|_| AccountError::Token("the access token subject is not a user id".into()))?;
    let user = active_user(db, caches, user_id).await?;
    if claims.ver != user.token_version {
        return Err(AccountError::Token(
            "the access token was revoked; log in again".into(),
        ));
    }
    Ok(Principal {
        user_id,
        username: user.username.clone(),
        role: user.role,
        method: AuthMethod::Jwt,
        credential: Credential::AccessToken {
            version: claims.ver,
        },
        claims: Some(claims),
    })
}

/// The account behind a credential, which must be active now (the cache
/// forgets a user on every change of status or credentials).
async fn active_user(
    db: &PgPool,
    caches: &Caches,
    user_id: i64,
) -> Result<Arc<CachedUser>, AccountError> {
    let user = users::cached(db, caches, &[user_id])
        .await?
        .remove(&user_id)
        .ok_or(AccountError::InactiveAccount)?;
    if user.status != Status::Active {
        return Err(AccountError::InactiveAccount);
    }
    Ok(user)
}

pub async fn from_api_key(
    db: &PgPool,
    caches: &Caches,
    key: &str,
) -> Result<Principal, AccountError> {
    let hash = sha256(key);
    let (mut found, missed, ticket) = caches.keys.get_many(std::slice::from_ref(&hash));
    let api_key = match found.remove(&hash) {
        Some(k) => k,
        None => {
            let row = sqlx::query!(
                "SELECT id, user_id, last_used_at FROM api_keys WHERE key_hash = $1",
                hash
            )
            .fetch_optional(db)
            .await?
            .ok_or_else(|| AccountError::Token("the API key is unknown or revoked".into()))?;
            let k = Arc::new(CachedKey {
                key_id: row.id,
                user_id: row.user_id,
                last_used: AtomicI64::new(row.last_used_at.map_or(0, |t| t.timestamp())),
            });
            caches
                .keys
                .fill(ticket, &missed, &HashMap::from([(hash, k.clone())]));
            k
        }
    };
    let user = active_user(db, caches, api_key.user_id).await?;
    // Recording every use would turn each read into a write; a minute's
    // precision is plenty, and one request a minute claims the write.
    let now = chrono::Utc::now().timestamp();
    let last = api_key.last_used.load(Ordering::Relaxed);
    if now - last > 60
        && api_key
            .last_used
            .compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed)
            .is_ok()
    {
        // A lost timestamp costs nothing, so this write does not wait for the
        // WAL flush, which would otherwise come with the first request of each minute.
        sqlx::query!(
            "UPDATE api_keys SET last_used_at = now()
             FROM (SELECT set_config('synchronous_commit', 'off', true)) AS relaxed
             WHERE id = $1",
            api_key.key_id
        )
        .execute(db)
        .await?;
    }
    Ok(Principal {
        user_id: user.id,
        username: user.username.clone(),
        role: user.role,
        method: AuthMethod::ApiKey,
        claims: None,
        credential: Credential::ApiKey { id: api_key.key_id },
    })
}
