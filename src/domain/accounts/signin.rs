//! Login, refresh-token rotation with reuse detection, and logout.
//!
//! Every login starts a family of refresh tokens. Each refresh rotates: the
//! presented token is marked rotated and a new one of the same family is
//! issued. Presenting a rotated token again means it leaked, so the whole
//! family is revoked.

use std::net::IpAddr;
use std::time::Duration;

use chrono::Utc;
use serde::Serialize;
use sqlx::PgPool;
use utoipa::ToSchema;
use uuid::Uuid;

use super::tokens::{random_token, sha256};
use super::{validate, AccountError, JwtKeys, PasswordHasher, Role, Status};
use crate::domain::accounts::throttle::{Bucket, Check, Throttle};

/// What login and refresh answer.
#[derive(Debug, Serialize, ToSchema)]
pub struct TokenPair {
    pub access_token: String,
    #[schema(example = "Bearer")]
    pub token_type: &'static str,
    /// Seconds until the access token expires.
    pub expires_in: u64,
    /// Opaque and usable once; valid for ROOKERY_REFRESH_TOKEN_TTL_DAYS (30 by default).
    pub refresh_token: String,
}

/// What issuing tokens needs: the signing keys and the refresh tokens' lifetime.
pub struct TokenSettings<'a> {
    pub jwt: &'a JwtKeys,
    pub refresh_ttl: Duration,
}

/// Issues an access token and a new refresh token of `family`, inside the caller's transaction.
pub(super) async fn issue(
    tx: &mut sqlx::PgConnection,
    cfg: &TokenSettings<'_>,
    user_id: i64,
    role: Role,
    version: i32,
    family: Uuid,
) -> Result<TokenPair, AccountError> {
    let refresh = random_token(32);
    let expires_at = Utc::now()
        + chrono::Duration::from_std(cfg.refresh_ttl)
            .map_err(|e| AccountError::Internal(format!("refresh ttl: {e}")))?;
    sqlx::query!(
        "INSERT INTO refresh_tokens (user_id, family_id, token_hash, expires_at) VALUES ($1, $2, $3, $4)",
        user_id,
        family,
        sha256(&refresh),
        expires_at
    )
    .execute(&mut *tx)
    .await?;
    let (access, _) = cfg.jwt.issue(user_id, role, version)?;
    Ok(TokenPair {
        access_token: access,
        token_type: "Bearer",
        expires_in: cfg.jwt.ttl.as_secs(),
        refresh_token: refresh,
    })
}

async fn start(
    db: &PgPool,
    cfg: &TokenSettings<'_>,
    user_id: i64,
    role: Role,
    version: i32,
) -> Result<TokenPair, AccountError> {
    let mut tx = db.begin().await?;
    let pair = issue(&mut tx, cfg, user_id, role, version, Uuid::new_v4()).await?;
    tx.commit().await?;
    Ok(pair)
}

/// `login` is a username or an email. Unknown logins and wrong passwords get
/// the same error and cost the same hash verification.
///
/// Throttled (429) before anything is verified: when `address` has had too
/// many failed checks, or, after the lookup, when the account (by user id,
/// whichever of its username or email was given; by the login string when
/// none matched) has had too many attempts. Only a wrong password counts
/// against the address.
pub async fn login(
    db: &PgPool,
    hasher: &PasswordHasher,
    cfg: &TokenSettings<'_>,
    throttle: &Throttle,
    address: Option<IpAddr>,
    login: &str,
    password: &str,
) -> Result<TokenPair, AccountError> {
    let check = throttle.begin_check(address).await?;
    let result = checked_login(db, hasher, cfg, throttle, &check, login, password).await;
    match &result {
        // A failure: the address keeps it. A refusal by the account's limit
        // already gave the address's unit back.
        Err(AccountError::InvalidCredentials | AccountError::Throttled(_)) => {}
        _ => throttle.passed(check).await,
    }
    result
}

async fn checked_login(
    db: &PgPool,
    hasher: &PasswordHasher,
    cfg: &TokenSettings<'_>,
    throttle: &Throttle,
    check: &Check,
    login: &str,
    password: &str,
) -> Result<TokenPair, AccountError> {
    let login = login.trim();
    if login.is_empty() || password.chars().count() > validate::PASSWORD_MAX {
        // Still pay for a verification, so timing does not tell this case apart.
        hasher.verify(password, None).await?;
        return Err(AccountError::InvalidCredentials);
    }
    let row = sqlx::query!(
        r#"SELECT id, password_hash, role AS "role: Role", status AS "status: Status", token_version
           FROM users
           WHERE (lower(username) = lower($1) OR lower(email) = lower($1)) AND status <> 'deleted'
           LIMIT 1"#,
        login
    )
    .fetch_optional(db)
    .await?;
    let account = match &row {
        Some(r) => Bucket::Account(r.id),
        None => Bucket::UnknownLogin(login.to_lowercase()),
    };
    throttle.check_account(check, account).await?;
    let hash = row.as_ref().and_then(|r| r.password_hash.as_deref());
    if !hasher.verify(password, hash).await? {
        return Err(AccountError::InvalidCredentials);
    }
    let Some(row) = row else {
        return Err(AccountError::InvalidCredentials);
    };
    if row.status != Status::Active {
        return Err(AccountError::Suspended);
    }
    start(db, cfg, row.id, row.role, row.token_version).await
}

pub async fn refresh(
    db: &PgPool,
    cfg: &TokenSettings<'_>,
    token: &str,
) -> Result<TokenPair, AccountError> {
    let mut tx = db.begin().await?;
    // FOR UPDATE serialises concurrent uses of one token: the second sees it rotated.
    let row = sqlx::query!(
        r#"SELECT t.id, t.family_id, t.expires_at, t.rotated_at, t.revoked_at,
                  u.id AS user_id, u.role AS "role: Role", u.status AS "status: Status", u.token_version
           FROM refresh_tokens t JOIN users u ON u.id = t.user_id
           WHERE t.token_hash = $1
           FOR UPDATE OF t"#,
        sha256(token)
    )
    .fetch_optional(&mut *tx)
    .await?;
    let Some(row) = row else {
        return Err(AccountError::InvalidRefreshToken);
    };
    if row.rotated_at.is_some() && row.revoked_at.is_none() {
        tracing::warn!(user_id = row.user_id, family = %row.family_id, "refresh token reused; revoking its family");
        sqlx::query!(
            "UPDATE refresh_tokens SET revoked_at = now() WHERE family_id = $1 AND revoked_at IS NULL",
            row.family_id
        )
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        return Err(AccountError::InvalidRefreshToken);
    }
    if row.revoked_at.is_some() || row.rotated_at.is_some() || row.expires_at <= Utc::now() {
        return Err(AccountError::InvalidRefreshToken);
    }
    if row.status != Status::Active {
        return Err(AccountError::InactiveAccount);
    }
    sqlx::query!(
        "UPDATE refresh_tokens SET rotated_at = now() WHERE id = $1",
        row.id
    )
    .execute(&mut *tx)
    .await?;
    let pair = issue(
        &mut tx,
        cfg,
        row.user_id,
        row.role,
        row.token_version,
        row.family_id,
    )
    .await?;
    tx.commit().await?;
    Ok(pair)
}

/// Ends the session the token belongs to. Unknown tokens are not an error:
/// the outcome the caller wants (that token is unusable) already holds.
pub async fn logout(db: &PgPool, token: &str) -> Result<(), AccountError> {
    sqlx::query!(
        "UPDATE refresh_tokens SET revoked_at = now()
         WHERE family_id = (SELECT family_id FROM refresh_tokens WHERE token_hash = $1) AND revoked_at IS NULL",
        sha256(token)
    )
    .execute(db)
    .await?;
    Ok(())
}
