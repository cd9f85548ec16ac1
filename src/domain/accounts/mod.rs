//! Accounts: users, their credentials, sign-in (access tokens and families of
//! rotating refresh tokens) and API keys. ("Session" means the real-time
//! engine's per-user actor, nothing here.) This module owns the `users`, `refresh_tokens` and `api_keys`
//! tables; no other module writes them.

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

#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema, sqlx::Type, clap::ValueEnum,
)]
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
