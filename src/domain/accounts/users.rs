//! Registration, profiles, password change and account deletion.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Arc;

use sqlx::PgPool;

use super::signin::{self, TokenPair, TokenSettings};

use super::{validate, Account, AccountError, PasswordHasher, Role};
use crate::domain::accounts::throttle::{Bucket, Throttle};
use crate::domain::cache::Caches;
use crate::domain::events::{DomainEvent, EventSink};
use crate::domain::FieldErrors;

#[derive(Debug)]
pub struct NewAccount<'a> {
    pub username: &'a str,
    pub email: &'a str,
    pub password: &'a str,
    pub display_name: Option<&'a str>,
    pub role: Role,
}

/// A change to the profile: `None` leaves a field alone, `Some(None)` clears it.
#[derive(Debug, Default)]
pub struct ProfileChange {
    pub display_name: Option<Option<String>>,
    pub bio: Option<Option<String>>,
}

/// Every credential of the user is void: their live connections close.
fn revoked_all(user_id: i64) -> DomainEvent {
    DomainEvent::CredentialsRevoked {
        user_id,
        api_key_id: None,
    }
}

fn push(errors: &mut FieldErrors, field: &str, message: String) {
    errors.entry(field.to_owned()).or_default().push(message);
}

/// Registration by a trusted caller (the command line, the demo seeder): not throttled.
pub async fn register(
    db: &PgPool,
    hasher: &PasswordHasher,
    new: NewAccount<'_>,
) -> Result<Account, AccountError> {
    create(db, hasher, new, None).await
}

/// Registration by a client at `address`: valid requests (each one hashes a
/// password) are throttled per address.
pub async fn register_from(
    db: &PgPool,
    hasher: &PasswordHasher,
    throttle: &Throttle,
    address: Option<IpAddr>,
    new: NewAccount<'_>,
) -> Result<Account, AccountError> {
    create(db, hasher, new, Some((throttle, address))).await
}

async fn create(
    db: &PgPool,
    hasher: &PasswordHasher,
    new: NewAccount<'_>,
    client: Option<(&Throttle, Option<IpAddr>)>,
) -> Result<Account, AccountError> {
    let mut errors = FieldErrors::new();
    let username = validate::username(new.username)
        .map_err(|m| push(&mut errors, "username", m))
        .ok();
    let email = validate::email(new.email)
        .map_err(|m| push(&mut errors, "email", m))
        .ok();
    let password = validate::password(new.password)
        .map_err(|m| push(&mut errors, "password", m))
        .ok();
    let display_name = match new.display_name {
        Some(raw) => validate::display_text(raw, validate::DISPLAY_NAME_MAX)
            .map_err(|m| push(&mut errors, "display_name", m))
            .ok()
            .flatten(),
        None => None,
    };
    let (Some(username), Some(email), Some(password), true) =
        (username, email, password, errors.is_empty())
    else {
        return Err(AccountError::Invalid(errors));
    };
    if let Some((throttle, address)) = client {
        throttle.begin_registration(address).await?;
    }
    let hash = hasher.hash(password).await?;
    sqlx::query_as!(
        Account,
        r#"INSERT INTO users (username, email, password_hash, display_name, role)
           VALUES ($1, $2, $3, $4, $5)
           RETURNING id, username, email AS "email!", display_name, bio, role AS "role: Role", created_at"#,
        username.as_str(),
        email.as_str(),
        hash,
        display_name,
        new.role as Role,
    )
    .fetch_one(db)
    .await
    .map_err(AccountError::from_unique)
}

pub async fn account(db: &PgPool, user_id: i64) -> Result<Account, AccountError> {
    sqlx::query_as!(
        Account,
        r#"SELECT id, username, email AS "email!", display_name, bio, role AS "role: Role", created_at
           FROM users WHERE id = $1 AND status <> 'deleted'"#,
        user_id
    )
    .fetch_optional(db)
    .await?
    .ok_or(AccountError::NotFound("account"))
}

pub async fn update_profile(
    db: &PgPool,
    events: &EventSink,
    user_id: i64,
    change: ProfileChange,
) -> Result<Account, AccountError> {
    let mut errors = FieldErrors::new();
    let mut check =
        |field: &str, value: Option<Option<String>>, max: usize| -> Option<Option<String>> {
            match value {
                Some(Some(raw)) => match validate::display_text(&raw, max) {
                    Ok(v) => Some(v),
                    Err(m) => {
                        push(&mut errors, field, m);
                        None
                    }
                },
                other => other,
            }
        };
    let display_name = check(
        "display_name",
        change.display_name,
        validate::DISPLAY_NAME_MAX,
    );
    let bio = check("bio", change.bio, validate::BIO_MAX);
    if !errors.is_empty() {
        return Err(AccountError::Invalid(errors));
    }
    let mut tx = db.begin().await?;
    let account = sqlx::query_as!(
        Account,
        r#"UPDATE users SET
               display_name = CASE WHEN $2 THEN $3 ELSE display_name END,
               bio = CASE WHEN $4 THEN $5 ELSE bio END,
               updated_at = now()
           WHERE id = $1 AND status <> 'deleted'
           RETURNING id, username, email AS "email!", display_name, bio, role AS "role: Role", created_at"#,
        user_id,
        display_name.is_some(),
        display_name.flatten(),
        bio.is_some(),
        bio.flatten(),
    )
    .fetch_optional(&mut *tx)
    .await?
    .ok_or(AccountError::NotFound("account"))?;
    events
        .commit(tx, vec![DomainEvent::ProfileEdited { user_id }])
        .await?;
    Ok(account)
}

async fn password_hash(db: &PgPool, user_id: i64) -> Result<Option<String>, AccountError> {
    Ok(sqlx::query_scalar!(
        "SELECT password_hash FROM users WHERE id = $1 AND status <> 'deleted'",
        user_id
    )
    .fetch_optional(db)
    .await?
    .flatten())
}

/// Verifies the account's password as a login does, throttled the same way:
/// per account, and a wrong password counts against `address`. `Ok(false)`
/// for a wrong password.
async fn check_password(
    db: &PgPool,
    hasher: &PasswordHasher,
    throttle: &Throttle,
    address: Option<IpAddr>,
    user_id: i64,
    password: &str,
) -> Result<bool, AccountError> {
    let check = throttle.begin_check(address).await?;
    throttle
        .check_account(&check, Bucket::Account(user_id))
        .await?;
    let verified = match password_hash(db, user_id).await {
        Ok(stored) => hasher.verify(password, stored.as_deref()).await,
        Err(e) => Err(e),
    };
    if !matches!(verified, Ok(false)) {
        throttle.passed(check).await;
    }
    verified
}

/// Changes the password and revokes every refresh and access token, then
/// starts a fresh session for the caller, all in one transaction: either the
/// caller holds new tokens or nothing changed.
#[allow(clippy::too_many_arguments)]
pub async fn change_password(
    db: &PgPool,
    events: &EventSink,
    hasher: &PasswordHasher,
    tokens: &TokenSettings<'_>,
    throttle: &Throttle,
    address: Option<IpAddr>,
    user_id: i64,
    current: &str,
    new: &str,
) -> Result<TokenPair, AccountError> {
    let new = validate::password(new).map_err(|m| {
        let mut errors = FieldErrors::new();
        push(&mut errors, "new_password", m);
        AccountError::Invalid(errors)
    })?;
    if !check_password(db, hasher, throttle, address, user_id, current).await? {
        let mut errors = FieldErrors::new();
        push(
            &mut errors,
            "current_password",
            "the current password is incorrect".into(),
        );
        return Err(AccountError::Invalid(errors));
    }
    let hash = hasher.hash(new).await?;
    let mut tx = db.begin().await?;
    let row = sqlx::query!(
        r#"UPDATE users SET password_hash = $2, token_version = token_version + 1, updated_at = now()
           WHERE id = $1 AND status = 'active' RETURNING token_version, role AS "role: Role""#,
        user_id,
        hash
    )
    .fetch_optional(&mut *tx)
    .await?
    .ok_or(AccountError::InactiveAccount)?;
    sqlx::query!(
        "UPDATE refresh_tokens SET revoked_at = now() WHERE user_id = $1 AND revoked_at IS NULL",
        user_id
    )
    .execute(&mut *tx)
    .await?;
    let pair = signin::issue(
        &mut tx,
        tokens,
        user_id,
        row.role,
        row.token_version,
        uuid::Uuid::new_v4(),
    )
    .await?;
    // Live connections opened with the old credentials close, on every node.
    events.commit(tx, vec![revoked_all(user_id)]).await?;
    Ok(pair)
}

/// Erases the account's personal data and every credential, keeping only a
/// tombstone row so that ids stay stable. One transaction.
pub async fn delete_account(
    db: &PgPool,
    events: &EventSink,
    hasher: &PasswordHasher,
    throttle: &Throttle,
    address: Option<IpAddr>,
    user_id: i64,
    password: &str,
) -> Result<(), AccountError> {
    if !check_password(db, hasher, throttle, address, user_id, password).await? {
        return Err(AccountError::WrongPassword);
    }
    let mut tx = db.begin().await?;
    // '~' cannot appear in a valid username, so the tombstone never collides.
    sqlx::query!(
        "UPDATE users SET username = '~deleted-' || id, email = NULL, password_hash = NULL,
             display_name = NULL, bio = NULL, status = 'deleted',
             token_version = token_version + 1, updated_at = now()
         WHERE id = $1",
        user_id
    )
    .execute(&mut *tx)
    .await?;
    sqlx::query!("DELETE FROM refresh_tokens WHERE user_id = $1", user_id)
        .execute(&mut *tx)
        .await?;
    sqlx::query!("DELETE FROM api_keys WHERE user_id = $1", user_id)
        .execute(&mut *tx)
        .await?;
    events.commit(tx, vec![revoked_all(user_id)]).await?;
    Ok(())
}

/// Suspends or reinstates an account (not a deleted one). Every node's
/// caches forget the user and their live connections close, as for any
/// revocation; returns whether the status changed.
pub async fn set_status(
    db: &PgPool,
    events: &EventSink,
    user_id: i64,
    status: super::Status,
) -> Result<bool, AccountError> {
    if status == super::Status::Deleted {
        return Err(AccountError::NotFound("status"));
    }
    let mut tx = db.begin().await?;
    let changed = sqlx::query!(
        "UPDATE users SET status = $2, updated_at = now()
         WHERE id = $1 AND status <> 'deleted' AND status <> $2",
        user_id,
        status as super::Status
    )
    .execute(&mut *tx)
    .await?
    .rows_affected()
        > 0;
    let announced = if changed {
        vec![revoked_all(user_id)]
    } else {
        Vec::new()
    };
    events.commit(tx, announced).await?;
    Ok(changed)
}

/// A user's row as the read cache keeps it, whatever their status: what a
/// viewer may see of it is decided on each read.
#[derive(Debug, Clone)]
pub struct CachedUser {
    pub id: i64,
    pub username: String,
    pub display_name: Option<String>,
    pub bio: Option<String>,
    pub role: Role,
    pub status: super::Status,
    pub token_version: i32,
    pub created_at: chrono::DateTime<chrono::Utc>,
    pub followers_count: i64,
    pub following_count: i64,
    pub posts_count: i64,
}

/// The users among `ids` that exist, from the cache where it has them.
pub async fn cached(
    db: &PgPool,
    caches: &Caches,
    ids: &[i64],
) -> Result<HashMap<i64, Arc<CachedUser>>, sqlx::Error> {
    let (mut found, missed, ticket) = caches.users.get_many(ids);
    if missed.is_empty() {
        return Ok(found);
    }
    let rows = sqlx::query_as!(
        CachedUser,
        r#"SELECT id, username, display_name, bio, role AS "role: Role",
                  status AS "status: super::Status", token_version, created_at,
                  followers_count, following_count, posts_count
           FROM users WHERE id = ANY($1)"#,
        &missed
    )
    .fetch_all(db)
    .await?;
    let loaded: HashMap<i64, Arc<CachedUser>> =
        rows.into_iter().map(|u| (u.id, Arc::new(u))).collect();
    caches.users.fill(ticket, &missed, &loaded);
    found.extend(loaded);
    Ok(found)
}
