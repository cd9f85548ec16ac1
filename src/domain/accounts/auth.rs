//! Turning a presented credential (a JWT or an API key) into a [`Principal`].
//! The account row is always consulted, so a suspended or deleted account, or
//! a token issued before a password change, is refused at once.

use rookery_actors::delivery::session::Credential;
use serde::Serialize;
use sqlx::PgPool;
use utoipa::ToSchema;

use super::tokens::{sha256, Claims};
use super::{AccountError, JwtKeys, Role, Status};

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

pub async fn from_jwt(db: &PgPool, keys: &JwtKeys, token: &str) -> Result<Principal, AccountError> {
    let claims = keys.verify(token)?;
    let user_id: i64 = claims
        .sub
        .parse()
        .map_err(|_| AccountError::Token("the access token subject is not a user id".into()))?;
    let row = sqlx::query!(
        r#"SELECT username, role AS "role: Role", status AS "status: Status", token_version
           FROM users WHERE id = $1"#,
        user_id
    )
    .fetch_optional(db)
    .await?
    .ok_or(AccountError::InactiveAccount)?;
    if row.status != Status::Active {
        return Err(AccountError::InactiveAccount);
    }
    if claims.ver != row.token_version {
        return Err(AccountError::Token(
            "the access token was revoked; log in again".into(),
        ));
    }
    Ok(Principal {
        user_id,
        username: row.username,
        role: row.role,
        method: AuthMethod::Jwt,
        credential: Credential::AccessToken {
            version: claims.ver,
        },
        claims: Some(claims),
    })
}

pub async fn from_api_key(db: &PgPool, key: &str) -> Result<Principal, AccountError> {
    let row = sqlx::query!(
        r#"SELECT k.id AS key_id, k.last_used_at, u.id AS user_id, u.username, u.role AS "role: Role",
                  u.status AS "status: Status"
           FROM api_keys k JOIN users u ON u.id = k.user_id
           WHERE k.key_hash = $1"#,
        sha256(key)
    )
    .fetch_optional(db)
    .await?
    .ok_or_else(|| AccountError::Token("the API key is unknown or revoked".into()))?;
    if row.status != Status::Active {
        return Err(AccountError::InactiveAccount);
    }
    // Recording every use would turn each read into a write; a minute's precision is plenty.
    let stale = row
        .last_used_at
        .is_none_or(|t| chrono::Utc::now() - t > chrono::Duration::minutes(1));
    if stale {
        // A lost timestamp costs nothing, so this write does not wait for the
        // WAL flush, which would otherwise come with the first request of each minute.
        sqlx::query!(
            "UPDATE api_keys SET last_used_at = now()
             FROM (SELECT set_config('synchronous_commit', 'off', true)) AS relaxed
             WHERE id = $1",
            row.key_id
        )
        .execute(db)
        .await?;
    }
    Ok(Principal {
        user_id: row.user_id,
        username: row.username,
        role: row.role,
        method: AuthMethod::ApiKey,
        claims: None,
        credential: Credential::ApiKey { id: row.key_id },
    })
}
