//! Accounts: users, their credentials, sign-in (access tokens and families of
//! rotating refresh tokens) and API keys. ("Session" means the real-time
//! engine's per-user actor, nothing here.) This module owns the `users`,
//! `refresh_tokens` and `api_keys` tables; no other module writes them.
//!
//! # The auth model
//!
//! **Passwords** ([`password`]): argon2id v0x13 with OWASP's parameters
//! (m=19456 KiB, t=2, p=1), a random salt, stored as a PHC string; a check
//! reads the parameters from the stored hash, so old hashes keep working.
//! Hashing runs on the blocking pool behind a semaphore
//! (`ROOKERY_HASH_CONCURRENCY` permits), each permit with a 19 MiB buffer from
//! a fixed pool, so a login flood queues instead of exhausting memory. A
//! stored hash asking for more than 64 MiB matches nothing.
//!
//! **Login** ([`signin`]): by username or email, case-insensitively. When no
//! account matches, the password is still verified against a dummy hash, so
//! unknown users and wrong passwords cost the same and get the same 401; a
//! suspended account gets 403 only after the right password. [`throttle`]
//! keeps GCRA allowances per client address (failed checks) and per account
//! (all checks), shared by the nodes through Redis; an empty one is a 429
//! with `Retry-After`.
//!
//! **Access tokens** ([`tokens`]): JWT, HS256 pinned, `iss = "rookery"`, with
//! `exp`, `iat`, `sub` (the user id), `role`, `jti` and `ver`, the account's
//! `token_version` at issue; 15 minutes by default. [`auth`] resolves every
//! credential to a [`Principal`] by reading the `users` row: the account must
//! be active, a token's `ver` must equal the row's, and the role is the row's,
//! not the token's.
//!
//! **Refresh tokens** ([`signin`]): 32 random bytes, stored only as SHA-256,
//! in families started by a login. A refresh locks the presented row
//! (`FOR UPDATE`), marks it rotated and issues the next in its family;
//! presenting a rotated token again revokes the whole family (it leaked).
//! Logout revokes the presented token's family.
//!
//! **API keys** ([`api_keys`]): `rk_` and 32 random bytes, stored only as
//! SHA-256 with a short prefix to tell keys apart; shown once. A key
//! authenticates as its owner until revoked.
//!
//! **Password change and deletion** ([`users`]): both verify the password
//! and, in one transaction, bump `token_version` (every access token issued
//! before is refused), revoke (a change) or delete (a deletion) the refresh
//! tokens, and announce `CredentialsRevoked`, which closes the user's live
//! connections on every node. A change returns a fresh token pair; API keys stay. A deletion
//! leaves a tombstone row (`~deleted-<id>`, no email, no hash) and deletes
//! the keys.
//!
//! **Roles**: `user`, `moderator`, `admin`, on the row. Registration always
//! creates `user`; other roles come from `rookery user create --role`.

pub mod api_keys;
pub mod auth;
pub mod password;
pub mod signin;
pub mod throttle;
pub mod tokens;
pub mod users;
pub mod validate;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::domain::FieldErrors;

pub use auth::Principal;
pub use password::PasswordHasher;
pub use tokens::JwtKeys;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema, sqlx::Type)]
#[sqlx(type_name = "user_role", rename_all = "lowercase")]
#[serde(rename_all = "lowercase")]
pub enum Role {
    User,
    Moderator,
    Admin,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::User => "user",
            Role::Moderator => "moderator",
            Role::Admin => "admin",
        }
    }

    /// Moderators and admins may act on other people's content.
    pub fn can_moderate(self) -> bool {
        matches!(self, Role::Moderator | Role::Admin)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema, sqlx::Type)]
#[sqlx(type_name = "user_status", rename_all = "lowercase")]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Active,
    Suspended,
    Deleted,
}

/// The account as its owner sees it.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Account {
    pub id: i64,
    pub username: String,
    pub email: String,
    pub display_name: Option<String>,
    pub bio: Option<String>,
    pub role: Role,
    pub created_at: DateTime<Utc>,
}

#[derive(Debug, thiserror::Error)]
pub enum AccountError {
    #[error("invalid input")]
    Invalid(FieldErrors),
    #[error("{0} is already taken")]
    Taken(&'static str),
    #[error("invalid credentials")]
    InvalidCredentials,
    #[error("wrong password")]
    WrongPassword,
    #[error("account suspended")]
    Suspended,
    #[error("invalid refresh token")]
    InvalidRefreshToken,
    #[error("{0}")]
    Token(String),
    #[error("account inactive")]
    InactiveAccount,
    #[error("{0} not found")]
    NotFound(&'static str),
    #[error(transparent)]
    Throttled(#[from] crate::domain::accounts::throttle::Throttled),
    #[error(transparent)]
    Db(#[from] sqlx::Error),
    #[error("{0}")]
    Internal(String),
}

impl AccountError {
    /// Unique-violation on one of our indexes becomes a friendly "taken".
    fn from_unique(err: sqlx::Error) -> Self {
        if let sqlx::Error::Database(db) = &err {
            match db.constraint() {
                Some("users_username_lower_key") => return Self::Taken("username"),
                Some("users_email_lower_key") => return Self::Taken("email"),
                _ => {}
            }
        }
        Self::Db(err)
    }
}
