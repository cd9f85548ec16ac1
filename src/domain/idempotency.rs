//! Idempotent creating writes (posts, comments, media, follows, reactions),
//! as payment APIs do it: a client that sends `Idempotency-Key` can retry a
//! request whose answer it never got, without writing twice. Owns
//! `idempotency_keys`.
//!
//! Every creating write runs in a [`Write`]: one transaction that holds the
//! change, its domain events and, with a key, the answer, so a key exists
//! exactly when the write does. The transaction first takes an advisory lock
//! on the user and key, on every node alike: a second request while the
//! first is still running finds it taken (409); one after it finds the
//! stored answer and replays it (or, with another request under the same
//! key, 422). Only successful writes are remembered: a refused request can be
//! corrected and sent again under the same key.

use sha2::{Digest as _, Sha256};
use sqlx::{PgConnection, PgPool, Postgres, Transaction};

use crate::domain::events::{DomainEvent, EventSink};

/// How long a key is remembered.
pub const KEEP_HOURS: i32 = 24;
/// The longest key accepted (a UUID is 36 characters).
pub const KEY_MAX: usize = 255;

#[derive(Debug, thiserror::Error)]
pub enum IdempotencyError {
    #[error("the Idempotency-Key header must be 1 to {KEY_MAX} visible ASCII characters")]
    BadKey,
    #[error(
        "a request with this Idempotency-Key is still being processed; retry after it finishes"
    )]
    InFlight,
    #[error("this Idempotency-Key was already used with a different request; use a new key for a new request")]
    Mismatch,
    #[error("the answer could not be encoded: {0}")]
    Encode(#[from] serde_json::Error),
    #[error(transparent)]
    Db(#[from] sqlx::Error),
}

/// A client's key for one request, with what identifies the request.
#[derive(Debug, Clone)]
pub struct Key {
    user_id: i64,
    key: String,
    fingerprint: Vec<u8>,
}

impl Key {
    /// The key a request carries, if any. `request` is what makes the
    /// request this request: its method and path, and its content (the
    /// parsed JSON body, or an upload's bytes), so a retry that sends the
    /// same content differently encoded still matches.
    pub fn new(
        user_id: i64,
        header: Option<&str>,
        request: &[&[u8]],
    ) -> Result<Option<Self>, IdempotencyError> {
        let Some(key) = header else {
            return Ok(None);
        };
        if key.is_empty() || key.len() > KEY_MAX || !key.bytes().all(|b| b.is_ascii_graphic()) {
            return Err(IdempotencyError::BadKey);
        }
        let mut hash = Sha256::new();
        for part in request {
            // Length-prefixed, so parts cannot run into each other.
            hash.update((part.len() as u64).to_be_bytes());
            hash.update(part);
        }
        Ok(Some(Self {
            user_id,
            key: key.to_owned(),
            fingerprint: hash.finalize().to_vec(),
        }))
    }
}

/// A stored (or just written) answer.
#[derive(Debug, Clone)]
pub struct Answer {
    pub status: u16,
    pub location: Option<String>,
    /// The JSON body.
    pub body: Vec<u8>,
    /// Replayed from an earlier request rather than written now.
    pub replayed: bool,
}

/// Either the answer to an earlier request with the same key, or a write to do.
pub enum Begun {
    Replay(Answer),
    Fresh(Write),
}

/// One creating write in progress: its transaction, and its key if any.
pub struct Write {
    tx: Transaction<'static, Postgres>,
    key: Option<Key>,
}

/// Opens the write's transaction; with a key, takes its lock and looks for
/// an earlier answer.
pub async fn begin(db: &PgPool, key: Option<Key>) -> Result<Begun, IdempotencyError> {
    let mut tx = db.begin().await?;
    if let Some(k) = &key {
        let locked = sqlx::query_scalar!(
            r#"SELECT pg_try_advisory_xact_lock(hashtextextended($1 || ':' || $2::bigint, 0)) AS "locked!""#,
            k.key,
            k.user_id
        )
        .fetch_one(&mut *tx)
        .await?;
        if !locked {
            return Err(IdempotencyError::InFlight);
        }
        let earlier = sqlx::query!(
            "SELECT fingerprint, status, location, body FROM idempotency_keys
             WHERE user_id = $1 AND key = $2 AND created_at > now() - make_interval(hours => $3)",
            k.user_id,
            k.key,
            KEEP_HOURS
        )
        .fetch_optional(&mut *tx)
        .await?;
        if let Some(earlier) = earlier {
            // Ended here, not when the connection next runs: a dropped
            // transaction's rollback (and with it the key's lock) waits for
            // that, and a retry arriving meanwhile would be told 409.
            tx.rollback().await?;
            if earlier.fingerprint != k.fingerprint {
                return Err(IdempotencyError::Mismatch);
            }
            return Ok(Begun::Replay(Answer {
                status: u16::try_from(earlier.status).unwrap_or(200),
                location: earlier.location,
                body: earlier.body,
                replayed: true,
            }));
        }
    }
    Ok(Begun::Fresh(Write { tx, key }))
}

impl Write {
    /// Goes on with `result`'s value, or, on its error, rolls the write back
    /// now, releasing its key for a retry at once (a dropped transaction is
    /// rolled back only when its connection is next used). A failed rollback
    /// is only logged: the connection is then closed, which ends the
    /// transaction too.
    pub async fn or_abandon<T, E>(self, result: Result<T, E>) -> Result<(Self, T), E> {
        match result {
            Ok(value) => Ok((self, value)),
            Err(e) => {
                if let Err(rollback) = self.tx.rollback().await {
                    tracing::warn!(error = %rollback, "rolling back an abandoned write");
                }
                Err(e)
            }
        }
    }

    /// The transaction the write runs in.
    pub fn conn(&mut self) -> &mut PgConnection {
        &mut self.tx
    }

    /// Stores the answer under the key (if any), records `announced` and
    /// commits: the answer is what the transaction itself wrote and read, so
    /// a write that committed is never answered as failed.
    pub async fn finish(
        mut self,
        events: &EventSink,
        announced: Vec<DomainEvent>,
        status: u16,
        location: Option<String>,
        body: &impl serde::Serialize,
    ) -> Result<Answer, IdempotencyError> {
        let body = serde_json::to_vec(body)?;
        if let Some(k) = &self.key {
            // A row past its 24 hours may still be there: it is replaced.
            sqlx::query!(
                "INSERT INTO idempotency_keys (user_id, key, fingerprint, status, location, body)
                 VALUES ($1, $2, $3, $4, $5, $6)
                 ON CONFLICT (user_id, key) DO UPDATE
                 SET fingerprint = EXCLUDED.fingerprint, status = EXCLUDED.status,
                     location = EXCLUDED.location, body = EXCLUDED.body, created_at = now()",
                k.user_id,
                k.key,
                k.fingerprint,
                i16::try_from(status).unwrap_or(200),
                location,
                body
            )
            .execute(&mut *self.tx)
            .await?;
        }
        events.commit(self.tx, announced).await?;
        Ok(Answer {
            status,
            location,
            body,
            replayed: false,
        })
    }
}

/// What a write produced: the body of its answer, where the new resource
/// lives, and the events that announce it.
pub struct Done<T> {
    pub body: T,
    pub location: Option<String>,
    pub events: Vec<DomainEvent>,
}

/// Runs `write` as one idempotent creating write answered with `status`: a
/// replay if the key was used before, else `write` in a fresh transaction,
/// committed together with its answer and events.
pub async fn run<T, E>(
    db: &PgPool,
    events: &EventSink,
    key: Option<Key>,
    status: u16,
    write: impl AsyncFnOnce(&mut PgConnection) -> Result<Done<T>, E>,
) -> Result<Answer, E>
where
    T: serde::Serialize,
    E: From<IdempotencyError>,
{
    let mut fresh = match begin(db, key).await? {
        Begun::Replay(earlier) => return Ok(earlier),
        Begun::Fresh(fresh) => fresh,
    };
    let done = write(fresh.conn()).await;
    let (fresh, done) = fresh.or_abandon(done).await?;
    Ok(fresh
        .finish(events, done.events, status, done.location, &done.body)
        .await?)
}

/// Forgets keys past their 24 hours; returns how many.
pub async fn prune(db: &PgPool) -> Result<u64, sqlx::Error> {
    Ok(sqlx::query!(
        "DELETE FROM idempotency_keys WHERE created_at < now() - make_interval(hours => $1)",
        KEEP_HOURS
    )
    .execute(db)
    .await?
    .rows_affected())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_checked_and_requests_told_apart() {
        assert!(Key::new(1, None, &[b"x"]).unwrap().is_none());
        for bad in ["", "has space", "tab\there", "é", &"k".repeat(KEY_MAX + 1)] {
            assert!(
                matches!(Key::new(1, Some(bad), &[]), Err(IdempotencyError::BadKey)),
                "{bad:?}"
            );
        }
        let a = Key::new(1, Some("k-1"), &[b"POST", b"/p", b"{}"])
            .unwrap()
            .unwrap();
        let same = Key::new(1, Some("k-1"), &[b"POST", b"/p", b"{}"])
            .unwrap()
            .unwrap();
        let other = Key::new(1, Some("k-1"), &[b"POST", b"/p", b"{\"a\":1}"])
            .unwrap()
            .unwrap();
        // Parts are delimited: "ab"+"c" is not "a"+"bc".
        let split1 = Key::new(1, Some("k"), &[b"ab", b"c"]).unwrap().unwrap();
        let split2 = Key::new(1, Some("k"), &[b"a", b"bc"]).unwrap().unwrap();
        assert_eq!(a.fingerprint, same.fingerprint);
        assert_ne!(a.fingerprint, other.fingerprint);
        assert_ne!(split1.fingerprint, split2.fingerprint);
    }
}
