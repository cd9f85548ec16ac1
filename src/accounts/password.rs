//! Password hashing with argon2id at OWASP's recommended parameters
//! (m = 19 MiB, t = 2, p = 1). Hashing is CPU- and memory-heavy, so it runs on
//! the blocking pool behind a semaphore: a login flood queues instead of
//! exhausting memory or stalling the async workers.

use std::sync::Arc;

use argon2::password_hash::rand_core::OsRng;
use argon2::password_hash::{PasswordHash, PasswordHasher as _, PasswordVerifier as _, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};
use tokio::sync::Semaphore;

use super::AccountError;

/// OWASP Password Storage Cheat Sheet, argon2id first option.
const MEMORY_KIB: u32 = 19 * 1024;
const ITERATIONS: u32 = 2;
const PARALLELISM: u32 = 1;

#[derive(Clone)]
pub struct PasswordHasher {
    permits: Arc<Semaphore>,
    /// A real hash of a random password: verified against when the user does
    /// not exist, so an unknown login takes as long as a wrong password.
    dummy_hash: Arc<str>,
}

fn argon2() -> Result<Argon2<'static>, AccountError> {
    let params = Params::new(MEMORY_KIB, ITERATIONS, PARALLELISM, None)
        .map_err(|e| AccountError::Internal(format!("argon2 parameters: {e}")))?;
    Ok(Argon2::new(Algorithm::Argon2id, Version::V0x13, params))
}

/// Hashes synchronously; callers on the async runtime use [`PasswordHasher::hash`].
pub fn hash_blocking(password: &str) -> Result<String, AccountError> {
    let salt = SaltString::generate(&mut OsRng);
    argon2()?
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| AccountError::Internal(format!("hashing failed: {e}")))
}

pub fn verify_blocking(password: &str, hash: &str) -> bool {
    let Ok(parsed) = PasswordHash::new(hash) else {
        return false;
    };
    // Verify with the parameters stored in the hash itself, so older hashes keep working.
    Argon2::default()
        .verify_password(password.as_bytes(), &parsed)
        .is_ok()
}

impl PasswordHasher {
    pub fn new(max_concurrent: usize) -> Result<Self, AccountError> {
        let dummy = super::tokens::random_token(24);
        Ok(Self {
            permits: Arc::new(Semaphore::new(max_concurrent.max(1))),
            dummy_hash: hash_blocking(&dummy)?.into(),
        })
    }

    pub async fn hash(&self, password: &str) -> Result<String, AccountError> {
        let _permit = self
            .permits
            .acquire()
            .await
            .map_err(|e| AccountError::Internal(e.to_string()))?;
        let password = password.to_owned();
        tokio::task::spawn_blocking(move || hash_blocking(&password))
            .await
            .map_err(|e| AccountError::Internal(format!("hashing task failed: {e}")))?
    }

    /// Verifies against `hash`, or against the dummy hash when there is none,
    /// so both paths cost the same.
    pub async fn verify(&self, password: &str, hash: Option<&str>) -> Result<bool, AccountError> {
        let _permit = self
            .permits
            .acquire()
            .await
            .map_err(|e| AccountError::Internal(e.to_string()))?;
        let password = password.to_owned();
        let real = hash.is_some();
        let hash: String = hash
            .map(str::to_owned)
            .unwrap_or_else(|| self.dummy_hash.to_string());
        let ok = tokio::task::spawn_blocking(move || verify_blocking(&password, &hash))
            .await
            .map_err(|e| AccountError::Internal(format!("verification task failed: {e}")))?;
        Ok(ok && real)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hashes_are_argon2id_with_owasp_parameters() {
        let h = hash_blocking("correct horse").unwrap();
        assert!(h.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"), "{h}");
        assert!(verify_blocking("correct horse", &h));
        assert!(!verify_blocking("wrong horse", &h));
        assert!(!verify_blocking("correct horse", "not a hash"));
    }

    #[test]
    fn equal_passwords_get_different_salts() {
        assert_ne!(
            hash_blocking("same").unwrap(),
            hash_blocking("same").unwrap()
        );
    }
}
