//! Throttling of everything that costs a password hash, as OWASP's
//! Authentication Cheat Sheet advises:
//!
//! - **failed** password checks per client address (logins, password
//!   changes, account deletions): each check takes a unit of the address's
//!   allowance before it runs, and a check that passes gives it back, so
//!   colleagues behind one office's address are never refused for logging in
//!   (and concurrent guesses cannot all slip through before the first fails);
//! - **all** password checks per account, keyed by user id after the lookup,
//!   so an account's username and email share one allowance. A login that
//!   matches no account is keyed by the login string instead (hashed), so
//!   that it is refused after as many attempts as a real account and the
//!   refusal does not tell which logins exist;
//! - registrations per client address (each one hashes a password).
//!
//! Each allowance is a GCRA (generic cell rate algorithm) bucket: `limit`
//! units, one back every `60 s / limit`. With Redis the buckets are shared by
//! every node: one Lua script takes or gives back a unit atomically, on
//! Redis's clock. Without Redis each process counts alone. If Redis is
//! unreachable (or slower than [`REDIS_TIMEOUT`]), the limiter fails open to
//! the in-process buckets, which then start empty: limits still hold per node,
//! so during an outage a cluster of N nodes allows up to N times the quota.
//! A warning is logged when that starts and when Redis answers again.

use std::collections::HashMap;
use std::net::IpAddr;
use std::num::NonZeroU32;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use redis::aio::ConnectionManager;

use super::tokens::sha256;

/// How long a node waits for Redis before it decides with its own buckets.
pub const REDIS_TIMEOUT: Duration = Duration::from_millis(500);
/// After Redis failed, how long the node decides alone before trying it again.
const REDIS_RETRY_AFTER: Duration = Duration::from_secs(5);

/// Refused: try again after `retry_after`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("too many attempts; retry in {} seconds", retry_after_secs(*.retry_after))]
pub struct Throttled {
    pub retry_after: Duration,
}

/// Whole seconds for `Retry-After`, rounded up, at least 1.
pub fn retry_after_secs(wait: Duration) -> u64 {
    wait.as_secs()
        .saturating_add(u64::from(wait.subsec_nanos() > 0))
        .max(1)
}

/// Whose allowance an attempt counts against.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Bucket {
    /// Failed password checks from one client address.
    FailuresFrom(IpAddr),
    /// Password checks of one account.
    Account(i64),
    /// Logins with a login string that matched no account (lower-cased).
    UnknownLogin(String),
    /// Registrations from one client address.
    RegistrationsFrom(IpAddr),
}

impl Bucket {
    /// The key, without personal data: login strings are hashed.
    fn key(&self) -> String {
        match self {
            Self::FailuresFrom(ip) => format!("fail:{ip}"),
            Self::Account(id) => format!("account:{id}"),
            Self::UnknownLogin(login) => format!("login:{}", hex::encode(&sha256(login)[..16])),
            Self::RegistrationsFrom(ip) => format!("register:{ip}"),
        }
    }
}

/// A GCRA bucket's rule: `limit` units, one back every `interval`.
#[derive(Debug, Clone, Copy)]
struct Rate {
    limit: u32,
    interval: Duration,
}

impl Rate {
    fn per_minute(limit: NonZeroU32) -> Self {
        Self {
            limit: limit.get(),
            interval: Duration::from_secs(60) / limit.get(),
        }
    }

    /// The time all of the limit takes to come back.
    fn window(self) -> Duration {
        self.interval * self.limit
    }
}

/// In-process buckets: for each key, the theoretical arrival time (TAT) of
/// the next unit. A bucket is full when its TAT is in the past.
#[derive(Default)]
struct LocalBuckets {
    tat: Mutex<HashMap<String, Instant>>,
}

impl LocalBuckets {
    fn take(&self, key: &str, rate: Rate, now: Instant) -> Result<(), Duration> {
        let mut tat = self.tat.lock().unwrap_or_else(PoisonError::into_inner);
        let current = tat.get(key).copied().unwrap_or(now).max(now);
        let next = current + rate.interval;
        let ahead = next - now;
        if ahead > rate.window() {
            return Err(ahead - rate.window());
        }
        tat.insert(key.to_owned(), next);
        Ok(())
    }

    fn give_back(&self, key: &str, rate: Rate, now: Instant) {
        let mut tat = self.tat.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(t) = tat.get_mut(key) {
            match t.checked_sub(rate.interval) {
                Some(earlier) if earlier > now => *t = earlier,
                _ => {
                    tat.remove(key);
                }
            }
        }
    }

    /// Forgets full buckets, so memory follows recent traffic only.
    fn prune(&self, now: Instant) {
        let mut tat = self.tat.lock().unwrap_or_else(PoisonError::into_inner);
        tat.retain(|_, t| *t > now);
        tat.shrink_to_fit();
    }
}

/// The same GCRA in Redis (5 or newer: the script writes after `TIME`, which
/// needs effects replication), in milliseconds on Redis's clock. `ARGV[3]` is 1
/// to take a unit, -1 to give one back. Answers 0 when done, or how many
/// milliseconds to wait when the bucket is empty. The key expires when the
/// bucket is full again, so idle keys cost nothing.
const GCRA_LUA: &str = r"
local interval = tonumber(ARGV[1])
local limit = tonumber(ARGV[2])
local cost = tonumber(ARGV[3])
local clock = redis.call('TIME')
local now = tonumber(clock[1]) * 1000 + math.floor(tonumber(clock[2]) / 1000)
local tat = tonumber(redis.call('GET', KEYS[1]) or '0')
if tat < now then tat = now end
local next = tat + cost * interval
if cost > 0 and next - now > limit * interval then
  return next - now - limit * interval
end
if next <= now then
  redis.call('DEL', KEYS[1])
else
  redis.call('SET', KEYS[1], next, 'PX', next - now)
end
return 0
";

struct SharedBuckets {
    client: redis::Client,
    prefix: String,
    conn: tokio::sync::Mutex<Option<ConnectionManager>>,
    /// Until when Redis is skipped after a failure.
    skip_until: Mutex<Option<Instant>>,
    degraded: AtomicBool,
}

impl SharedBuckets {
    async fn connection(&self) -> redis::RedisResult<ConnectionManager> {
        let mut conn = self.conn.lock().await;
        if let Some(c) = conn.as_ref() {
            return Ok(c.clone());
        }
        let config = redis::aio::ConnectionManagerConfig::new()
            .set_connection_timeout(Some(REDIS_TIMEOUT))
            .set_response_timeout(Some(REDIS_TIMEOUT))
            .set_number_of_retries(1);
        let c = self
            .client
            .get_connection_manager_with_config(config)
            .await?;
        *conn = Some(c.clone());
        Ok(c)
    }

    async fn eval(&self, key: &str, rate: Rate, cost: i8) -> Result<Duration, String> {
        let interval_ms = u64::try_from(rate.interval.as_millis()).unwrap_or(u64::MAX);
        let call = async {
            let mut conn = self.connection().await?;
            redis::cmd("EVAL")
                .arg(GCRA_LUA)
                .arg(1)
                .arg(format!("{}{key}", self.prefix))
                .arg(interval_ms.max(1))
                .arg(rate.limit)
                .arg(cost)
                .query_async::<u64>(&mut conn)
                .await
        };
        match tokio::time::timeout(REDIS_TIMEOUT * 2, call).await {
            Ok(Ok(wait_ms)) => Ok(Duration::from_millis(wait_ms)),
            Ok(Err(e)) => Err(e.to_string()),
            Err(_) => Err("timed out".into()),
        }
    }

    fn skipping(&self, now: Instant) -> bool {
        self.skip_until
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .is_some_and(|until| now < until)
    }

    fn failed(&self, error: &str, now: Instant) {
        *self
            .skip_until
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = Some(now + REDIS_RETRY_AFTER);
        if !self.degraded.swap(true, Ordering::Relaxed) {
            tracing::warn!(
                error,
                "redis unavailable for the login limits; each node limits on its own until it is back"
            );
        }
    }

    fn answered(&self) {
        if self.degraded.swap(false, Ordering::Relaxed) {
            tracing::info!("redis is back; login limits are shared by the nodes again");
        }
    }
}

/// The limiter of everything that costs a password hash (see the module).
#[derive(Clone)]
pub struct Throttle {
    local: Arc<LocalBuckets>,
    shared: Option<Arc<SharedBuckets>>,
    checks: Rate,
    registrations: Rate,
}

/// A password check under way: it holds a unit of its address's failure
/// allowance until [`Throttle::passed`] gives it back.
#[must_use = "a check that passed must be handed to Throttle::passed"]
#[derive(Debug)]
pub struct Check {
    address: Option<IpAddr>,
}

impl Throttle {
    /// `checks_per_minute` applies to failed checks per address and to all
    /// checks per account; `registrations_per_minute` to registrations per
    /// address. With `redis`, the buckets are shared under keys starting
    /// with `namespace` (so nodes of one deployment, and only they, share them).
    pub fn new(
        checks_per_minute: NonZeroU32,
        registrations_per_minute: NonZeroU32,
        redis: Option<redis::Client>,
        namespace: &str,
    ) -> Self {
        Self {
            local: Arc::default(),
            shared: redis.map(|client| {
                Arc::new(SharedBuckets {
                    client,
                    prefix: format!("rookery:{namespace}:throttle:"),
                    conn: tokio::sync::Mutex::new(None),
                    skip_until: Mutex::new(None),
                    degraded: AtomicBool::new(false),
                })
            }),
            checks: Rate::per_minute(checks_per_minute),
            registrations: Rate::per_minute(registrations_per_minute),
        }
    }

    fn rate(&self, bucket: &Bucket) -> Rate {
        match bucket {
            Bucket::RegistrationsFrom(_) => self.registrations,
            _ => self.checks,
        }
    }

    /// Takes one unit from `bucket`, or says how long until one is back.
    pub async fn take(&self, bucket: &Bucket) -> Result<(), Throttled> {
        let (key, rate) = (bucket.key(), self.rate(bucket));
        let now = Instant::now();
        if let Some(shared) = self.shared.as_ref().filter(|s| !s.skipping(now)) {
            match shared.eval(&key, rate, 1).await {
                Ok(wait) if wait.is_zero() => {
                    shared.answered();
                    return Ok(());
                }
                Ok(wait) => {
                    shared.answered();
                    return Err(Throttled { retry_after: wait });
                }
                Err(e) => shared.failed(&e, now),
            }
        }
        self.local
            .take(&key, rate, now)
            .map_err(|retry_after| Throttled { retry_after })
    }

    /// Gives one unit back to `bucket` (an attempt that did not count).
    pub async fn give_back(&self, bucket: &Bucket) {
        let (key, rate) = (bucket.key(), self.rate(bucket));
        let now = Instant::now();
        if let Some(shared) = self.shared.as_ref().filter(|s| !s.skipping(now)) {
            match shared.eval(&key, rate, -1).await {
                Ok(_) => {
                    shared.answered();
                    return;
                }
                Err(e) => shared.failed(&e, now),
            }
        }
        self.local.give_back(&key, rate, now);
    }

    /// Before a password check from `address`: takes a unit of the
    /// address's failure allowance.
    pub async fn begin_check(&self, address: Option<IpAddr>) -> Result<Check, Throttled> {
        if let Some(ip) = address {
            self.take(&Bucket::FailuresFrom(ip)).await?;
        }
        Ok(Check { address })
    }

    /// Counts the check against `account` (a user id, or a login that
    /// matched none). Refused, the check does not happen, so the address's
    /// unit goes back.
    pub async fn check_account(&self, check: &Check, account: Bucket) -> Result<(), Throttled> {
        let taken = self.take(&account).await;
        if taken.is_err() {
            if let Some(ip) = check.address {
                self.give_back(&Bucket::FailuresFrom(ip)).await;
            }
        }
        taken
    }

    /// The password was right: the check was no failure, so the address
    /// gets its unit back.
    pub async fn passed(&self, check: Check) {
        if let Some(ip) = check.address {
            self.give_back(&Bucket::FailuresFrom(ip)).await;
        }
    }

    /// Before a registration from `address` (it will hash a password).
    pub async fn begin_registration(&self, address: Option<IpAddr>) -> Result<(), Throttled> {
        match address {
            Some(ip) => self.take(&Bucket::RegistrationsFrom(ip)).await,
            None => Ok(()),
        }
    }

    /// Forgets in-process buckets that are full again, so memory stays bounded.
    pub fn prune(&self) {
        self.local.prune(Instant::now());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rate(limit: u32) -> Rate {
        Rate::per_minute(NonZeroU32::new(limit).unwrap())
    }

    #[test]
    fn a_bucket_holds_its_limit_then_one_unit_per_interval() {
        let buckets = LocalBuckets::default();
        let r = rate(3);
        let t0 = Instant::now();
        for _ in 0..3 {
            assert!(buckets.take("k", r, t0).is_ok());
        }
        let wait = buckets.take("k", r, t0).unwrap_err();
        assert_eq!(wait, Duration::from_secs(20));
        // Another key is untouched.
        assert!(buckets.take("other", r, t0).is_ok());
        // One unit back after one interval, not two.
        let t1 = t0 + Duration::from_secs(20);
        assert!(buckets.take("k", r, t1).is_ok());
        assert!(buckets.take("k", r, t1).is_err());
    }

    #[test]
    fn giving_back_makes_room_and_full_buckets_are_forgotten() {
        let buckets = LocalBuckets::default();
        let r = rate(2);
        let t0 = Instant::now();
        assert!(buckets.take("k", r, t0).is_ok());
        assert!(buckets.take("k", r, t0).is_ok());
        assert!(buckets.take("k", r, t0).is_err());
        buckets.give_back("k", r, t0);
        assert!(buckets.take("k", r, t0).is_ok());
        // Giving back more than was taken does not bank units.
        for _ in 0..5 {
            buckets.give_back("k", r, t0);
        }
        assert!(buckets.take("k", r, t0).is_ok());
        assert!(buckets.take("k", r, t0).is_ok());
        assert!(buckets.take("k", r, t0).is_err());
        buckets.prune(t0 + Duration::from_secs(61));
        assert!(buckets.tat.lock().unwrap().is_empty());
    }

    #[test]
    fn retry_after_rounds_up_to_whole_seconds() {
        assert_eq!(retry_after_secs(Duration::ZERO), 1);
        assert_eq!(retry_after_secs(Duration::from_millis(5_001)), 6);
        assert_eq!(retry_after_secs(Duration::from_secs(6)), 6);
    }

    #[tokio::test]
    async fn successes_from_one_address_do_not_count_failures_do() {
        let throttle = Throttle::new(
            NonZeroU32::new(2).unwrap(),
            NonZeroU32::new(2).unwrap(),
            None,
            "test",
        );
        let office: IpAddr = "192.0.2.1".parse().unwrap();
        for user in 0..10 {
            let check = throttle.begin_check(Some(office)).await.unwrap();
            throttle
                .check_account(&check, Bucket::Account(user))
                .await
                .unwrap();
            throttle.passed(check).await;
        }
        for user in 10..12 {
            let check = throttle.begin_check(Some(office)).await.unwrap();
            throttle
                .check_account(&check, Bucket::Account(user))
                .await
                .unwrap();
            // Dropped without `passed`: a failure.
        }
        assert!(throttle.begin_check(Some(office)).await.is_err());
    }

    #[test]
    fn keys_hold_no_login_strings() {
        let key = Bucket::UnknownLogin("alice@example.com".into()).key();
        assert!(!key.contains("alice"), "{key}");
        assert_eq!(key.len(), "login:".len() + 32);
    }
}
