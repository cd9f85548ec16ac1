//! Access tokens (HS256 JWTs, algorithm pinned) and the opaque random tokens
//! used for refresh tokens and API keys.

use std::time::Duration;

use argon2::password_hash::rand_core::{OsRng, RngCore};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use secrecy::ExposeSecret as _;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use utoipa::ToSchema;

use super::{AccountError, Role};

pub const ISSUER: &str = "rookery";

/// The claims of an access token.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct Claims {
    /// The user id, as a string (RFC 7519 §4.1.2).
    pub sub: String,
    pub role: Role,
    pub iat: i64,
    pub exp: i64,
    /// A unique id for this token.
    pub jti: String,
    pub iss: String,
    /// The account's token version when issued; a newer version revokes this token.
    pub ver: i32,
}

#[derive(Clone)]
pub struct JwtKeys {
    encoding: EncodingKey,
    decoding: DecodingKey,
    validation: Validation,
    pub ttl: Duration,
}

impl JwtKeys {
    pub fn new(secret: &secrecy::SecretString, ttl: Duration) -> Self {
        let bytes = secret.expose_secret().as_bytes();
        // Only HS256 is accepted: a token naming any other algorithm, or none, is refused.
        let mut validation = Validation::new(Algorithm::HS256);
        validation.set_issuer(&[ISSUER]);
        validation.set_required_spec_claims(&["exp", "iat", "sub", "iss"]);
        validation.leeway = 5;
        Self {
            encoding: EncodingKey::from_secret(bytes),
            decoding: DecodingKey::from_secret(bytes),
            validation,
            ttl,
        }
    }

    pub fn issue(
        &self,
        user_id: i64,
        role: Role,
        version: i32,
    ) -> Result<(String, Claims), AccountError> {
        let now = chrono::Utc::now().timestamp();
        let claims = Claims {
            sub: user_id.to_string(),
            role,
            iat: now,
            exp: now + i64::try_from(self.ttl.as_secs()).unwrap_or(i64::MAX / 2),
            jti: uuid::Uuid::new_v4().to_string(),
            iss: ISSUER.to_owned(),
            ver: version,
        };
        let token = jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &self.encoding)
            .map_err(|e| AccountError::Internal(format!("signing failed: {e}")))?;
        Ok((token, claims))
    }

    /// Checks signature, algorithm, issuer and expiry; the message says which failed.
    pub fn verify(&self, token: &str) -> Result<Claims, AccountError> {
        jsonwebtoken::decode::<Claims>(token, &self.decoding, &self.validation)
            .map(|data| data.claims)
            .map_err(|e| {
                let reason = match e.kind() {
                    ErrorKind::ExpiredSignature => {
                        "the access token has expired; refresh it or log in again"
                    }
                    ErrorKind::InvalidSignature => "the access token signature is invalid",
                    ErrorKind::InvalidAlgorithm | ErrorKind::InvalidAlgorithmName => {
                        "the access token uses an algorithm other than HS256"
                    }
                    ErrorKind::InvalidIssuer => "the access token was not issued by this server",
                    ErrorKind::MissingRequiredClaim(_) => "the access token lacks a required claim",
                    _ => "the access token is malformed",
                };
                AccountError::Token(reason.to_owned())
            })
    }
}

/// `bytes` random bytes from the OS, URL-safe base64 without padding.
pub fn random_token(bytes: usize) -> String {
    let mut buf = vec![0u8; bytes];
    OsRng.fill_bytes(&mut buf);
    URL_SAFE_NO_PAD.encode(buf)
}

/// Tokens and keys carry 256 bits of entropy, so a fast hash is enough to
/// store them: there is nothing to brute-force.
pub fn sha256(token: &str) -> Vec<u8> {
    Sha256::digest(token.as_bytes()).to_vec()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys() -> JwtKeys {
        JwtKeys::new(&"k".repeat(32).into(), Duration::from_secs(900))
    }

    #[test]
    fn issued_tokens_verify_with_their_claims() {
        let (token, claims) = keys().issue(42, Role::Moderator, 0).unwrap();
        let back = keys().verify(&token).unwrap();
        assert_eq!(back.sub, "42");
        assert_eq!(back.role, Role::Moderator);
        assert_eq!(back.exp - back.iat, 900);
        assert_eq!(back.jti, claims.jti);
    }

    #[test]
    fn another_secret_fails_the_signature() {
        let (token, _) = keys().issue(1, Role::User, 0).unwrap();
        let other = JwtKeys::new(&"o".repeat(32).into(), Duration::from_secs(900));
        let err = other.verify(&token).unwrap_err().to_string();
        assert!(err.contains("signature"), "{err}");
    }

    #[test]
    fn alg_none_is_refused() {
        let (token, _) = keys().issue(1, Role::User, 0).unwrap();
        let payload = token.split('.').nth(1).unwrap();
        let header = URL_SAFE_NO_PAD.encode(br#"{"alg":"none","typ":"JWT"}"#);
        let forged = format!("{header}.{payload}.");
        assert!(keys().verify(&forged).is_err());
    }

    #[test]
    fn random_tokens_are_unique_and_url_safe() {
        let a = random_token(32);
        assert_eq!(a.len(), 43);
        assert_ne!(a, random_token(32));
        assert!(a
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_'));
    }
}
