//! The one application state handed to every handler.

use std::sync::Arc;

use sqlx::PgPool;

use crate::config::Settings;
use crate::domain::accounts::signin::TokenSettings;
use crate::domain::accounts::throttle::Throttle;
use crate::domain::accounts::{JwtKeys, PasswordHasher};
use crate::domain::cache::Caches;
use crate::domain::events::EventSink;
use crate::domain::media::MediaService;

#[derive(Clone)]
pub struct AppState {
    pub db: PgPool,
    pub redis: Option<redis::Client>,
    pub jwt: JwtKeys,
    pub hasher: PasswordHasher,
    /// Limits on what costs a password hash: logins, registrations,
    /// password changes, account deletions.
    pub throttle: Throttle,
    pub events: EventSink,
    pub engine: rookery_actors::Engine,
    pub media: MediaService,
    /// The read caches (posts, users, API keys), kept true by domain events.
    pub caches: Arc<Caches>,
    pub settings: Arc<Settings>,
}

impl AppState {
    pub fn token_settings(&self) -> TokenSettings<'_> {
        TokenSettings {
            jwt: &self.jwt,
            refresh_ttl: self.settings.auth.refresh_token_ttl,
        }
    }
}
