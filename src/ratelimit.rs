//! Login throttling, keyed by client address and by login name, so neither
//! one address nor a botnet aimed at one account gets more than the quota.

use std::net::IpAddr;
use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::Duration;

use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};

#[derive(Clone)]
pub struct LoginLimiter {
    by_address: Arc<DefaultKeyedRateLimiter<IpAddr>>,
    by_login: Arc<DefaultKeyedRateLimiter<String>>,
}

impl LoginLimiter {
    pub fn new(per_minute: NonZeroU32) -> Self {
        let quota = Quota::per_minute(per_minute);
        Self {
            by_address: Arc::new(RateLimiter::keyed(quota)),
            by_login: Arc::new(RateLimiter::keyed(quota)),
        }
    }

    /// `Err(wait)` when either key is over its quota; `wait` is until the next
    /// attempt would be allowed.
    pub fn check(&self, address: Option<IpAddr>, login: &str) -> Result<(), Duration> {
        let now = DefaultClock::default().now();
        if let Some(address) = address {
            self.by_address
                .check_key(&address)
                .map_err(|not_until| not_until.wait_time_from(now))?;
        }
        self.by_login
            .check_key(&login.trim().to_lowercase())
            .map_err(|not_until| not_until.wait_time_from(now))
    }

    /// Forgets keys whose quota has fully recovered, so memory stays bounded.
    pub fn prune(&self) {
        self.by_address.retain_recent();
        self.by_address.shrink_to_fit();
        self.by_login.retain_recent();
        self.by_login.shrink_to_fit();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_key_gets_its_own_quota() {
        let limiter = LoginLimiter::new(NonZeroU32::new(2).unwrap());
        let a: IpAddr = "10.0.0.1".parse().unwrap();
        let b: IpAddr = "10.0.0.2".parse().unwrap();
        assert!(limiter.check(Some(a), "alice").is_ok());
        assert!(limiter.check(Some(a), "bob").is_ok());
        // Address a is spent, whatever the login.
        assert!(limiter.check(Some(a), "carol").is_err());
        // Login alice has one attempt left from another address, then none.
        assert!(limiter.check(Some(b), "ALICE").is_ok());
        let wait = limiter.check(Some(b), "alice").unwrap_err();
        assert!(wait > Duration::ZERO && wait <= Duration::from_secs(60));
    }
}
