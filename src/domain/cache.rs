//! The read caches: posts, users and API keys as the database holds them,
//! shared by every request of this node, so a read touches Postgres only when
//! it misses. What a viewer may see of them is decided on every read, from
//! the cached rows and the viewer's own state (see `posts::load`).
//!
//! In process (moka) rather than in Redis: a hit costs a hash lookup and an
//! `Arc` clone instead of a round trip and a decode (loadtests/RESULTS.md,
//! section 13, has the figures).
//!
//! Kept true by the domain events: every committed change announces its
//! events through the engine, which hands them to [`Caches::changed`] on this
//! node before the write answers and on the other nodes through the bus.
//! When a node may have missed some, the engine calls [`Caches::reset`] (see
//! `rookery_actors::delivery::changes`). Two rules make a fill safe against
//! an invalidation that races it:
//! - a fill carries a [`Ticket`] taken before its database read; if anything
//!   that could touch its key happened since (a stamp of the key's stripe, or
//!   a reset, moved), the value is not kept;
//! - an invalidation moves the stamp before it removes the entry, and a fill
//!   checks the stamp again after inserting, so whichever comes second wins.

use std::collections::HashMap;
use std::hash::{BuildHasher, Hash};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use rookery_actors::delivery::changes::ChangeListener;
use rookery_actors::DomainEvent;

use crate::domain::accounts::api_keys::CachedKey;
use crate::domain::accounts::users::CachedUser;
use crate::domain::posts::CachedPost;

/// Stripes of invalidation stamps per cache: a fill fails only when its own
/// stripe moved.
const STRIPES: usize = 64;

/// How many entries each cache holds, and how long one may stay unread.
#[derive(Debug, Clone, Copy)]
pub struct CacheSettings {
    pub posts: u64,
    pub users: u64,
    pub idle: Duration,
}

impl Default for CacheSettings {
    /// About 20 MB of posts (a cached post is about 1 KB) and 10 MB of users.
    fn default() -> Self {
        Self {
            posts: 20_000,
            users: 20_000,
            idle: Duration::from_secs(600),
        }
    }
}

/// Whether the caches may be used, and how many resets there were.
struct Gate {
    trusted: AtomicBool,
    epoch: AtomicU64,
}

/// One cache of values by key, with its stripes of stamps.
pub struct Cache<K, V> {
    map: moka::sync::Cache<K, Arc<V>>,
    stamps: Box<[AtomicU64]>,
    /// Picks a key's stripe.
    hasher: std::hash::RandomState,
    gate: Arc<Gate>,
}

/// What a fill must show: the reset epoch and its keys' stamps as they were
/// before the database was read.
pub struct Ticket {
    epoch: u64,
    stamps: Vec<u64>,
}

impl<K, V> Cache<K, V>
where
    K: Hash + Eq + Clone + Send + Sync + 'static,
    V: Send + Sync + 'static,
{
    fn new(capacity: u64, idle: Duration, gate: Arc<Gate>) -> Self {
        Self {
            map: moka::sync::Cache::builder()
                .max_capacity(capacity)
                .time_to_idle(idle)
                .support_invalidation_closures()
                .build(),
            stamps: (0..STRIPES).map(|_| AtomicU64::new(0)).collect(),
            hasher: std::hash::RandomState::new(),
            gate,
        }
    }

    fn stripe(&self, key: &K) -> &AtomicU64 {
        let hash = self.hasher.hash_one(key);
        // In range: the remainder of a division by the length.
        &self.stamps[(hash % self.stamps.len() as u64) as usize]
    }

    /// The cached values among `keys`, and the keys missed with the ticket
    /// to fill them (`None` while the caches are not trusted: then nothing
    /// is read from them either).
    pub fn get_many(&self, keys: &[K]) -> (HashMap<K, Arc<V>>, Vec<K>, Option<Ticket>) {
        let epoch = self.gate.epoch.load(Ordering::SeqCst);
        if !self.gate.trusted.load(Ordering::SeqCst) {
            return (HashMap::new(), keys.to_vec(), None);
        }
        let mut found = HashMap::with_capacity(keys.len());
        let mut missed = Vec::new();
        let mut stamps = Vec::new();
        for key in keys {
            match self.map.get(key) {
                Some(v) => {
                    found.insert(key.clone(), v);
                }
                None => {
                    stamps.push(self.stripe(key).load(Ordering::SeqCst));
                    missed.push(key.clone());
                }
            }
        }
        (found, missed, Some(Ticket { epoch, stamps }))
    }

    /// Keeps what was read for `missed` (as returned with `ticket`) unless
    /// something may have changed it since the ticket was taken. Keys read
    /// but absent from `values` are not cached.
    pub fn fill(&self, ticket: Option<Ticket>, missed: &[K], values: &HashMap<K, Arc<V>>) {
        let Some(ticket) = ticket else { return };
        for (key, stamp) in missed.iter().zip(ticket.stamps) {
            let Some(value) = values.get(key) else {
                continue;
            };
            if !self.current(key, ticket.epoch, stamp) {
                continue;
            }
            self.map.insert(key.clone(), value.clone());
            // An invalidation between the check and the insert found nothing
            // to remove: undo the insert.
            if !self.current(key, ticket.epoch, stamp) {
                self.map.invalidate(key);
            }
        }
    }

    fn current(&self, key: &K, epoch: u64, stamp: u64) -> bool {
        self.gate.trusted.load(Ordering::SeqCst)
            && self.gate.epoch.load(Ordering::SeqCst) == epoch
            && self.stripe(key).load(Ordering::SeqCst) == stamp
    }

    /// Forgets `key`: the stamp first, so a fill in flight cannot keep an
    /// older value.
    pub fn forget(&self, key: &K) {
        self.stripe(key).fetch_add(1, Ordering::SeqCst);
        self.map.invalidate(key);
    }

    /// Forgets every entry `matches` picks (rare: revocations).
    fn forget_where(&self, matches: impl Fn(&V) -> bool + Send + Sync + 'static) {
        for stamp in self.stamps.iter() {
            stamp.fetch_add(1, Ordering::SeqCst);
        }
        // Only fails without `support_invalidation_closures`, which `new` sets.
        if self
            .map
            .invalidate_entries_if(move |_, v| matches(v))
            .is_err()
        {
            self.map.invalidate_all();
        }
    }

    pub fn entry_count(&self) -> u64 {
        self.map.entry_count()
    }
}

/// Every read cache of this node.
pub struct Caches {
    pub posts: Cache<i64, CachedPost>,
    pub users: Cache<i64, CachedUser>,
    /// API keys by the SHA-256 of the key.
    pub keys: Cache<Vec<u8>, CachedKey>,
    gate: Arc<Gate>,
}

impl Caches {
    /// Trusted from the start: a node alone hears every change it makes. A
    /// node on a bus is told otherwise until its subscription stands.
    pub fn new(settings: CacheSettings) -> Arc<Self> {
        let gate = Arc::new(Gate {
            trusted: AtomicBool::new(true),
            epoch: AtomicU64::new(0),
        });
        Arc::new(Self {
            posts: Cache::new(settings.posts, settings.idle, gate.clone()),
            users: Cache::new(settings.users, settings.idle, gate.clone()),
            keys: Cache::new(settings.users, settings.idle, gate.clone()),
            gate,
        })
    }

    pub fn trusted(&self) -> bool {
        self.gate.trusted.load(Ordering::SeqCst)
    }

    fn forget_user(&self, user_id: i64) {
        self.users.forget(&user_id);
    }
}

/// What each event makes stale. Per-viewer state (a viewer's reaction,
/// follows and blocks) is never cached, so only what every viewer shares is
/// named here.
fn touched(event: &DomainEvent) -> (Vec<i64>, Vec<i64>) {
    use DomainEvent as E;
    match event {
        E::PostCreated { author_id, .. } => (vec![], vec![*author_id]),
        E::PostEdited { post_id, .. } | E::CommentCreated { post_id, .. } => {
            (vec![*post_id], vec![])
        }
        E::PostDeleted { post_id, author_id } => (vec![*post_id], vec![*author_id]),
        E::ReactionAdded { post_id, .. }
        | E::ReactionRemoved { post_id, .. }
        | E::PostViewed { post_id, .. }
        | E::ContentModerated { post_id, .. } => (vec![*post_id], vec![]),
        E::Followed {
            follower_id,
            followee_id,
        }
        | E::Unfollowed {
            follower_id,
            followee_id,
        } => (vec![], vec![*follower_id, *followee_id]),
        E::Blocked {
            blocker_id,
            blocked_id,
        }
        | E::Unblocked {
            blocker_id,
            blocked_id,
        } => (vec![], vec![*blocker_id, *blocked_id]),
        E::ProfileEdited { user_id } => (vec![], vec![*user_id]),
        E::CredentialsRevoked { user_id, .. } => (vec![], vec![*user_id]),
        E::CommentEdited { .. }
        | E::Mentioned { .. }
        | E::FanOut { .. }
        | E::TimelineWrite { .. }
        | E::NotificationsRead { .. } => (vec![], vec![]),
    }
}

impl ChangeListener for Caches {
    fn changed(&self, events: &[DomainEvent]) {
        for event in events {
            let (posts, users) = touched(event);
            for id in posts {
                self.posts.forget(&id);
            }
            for id in users {
                self.forget_user(id);
            }
            if let DomainEvent::CredentialsRevoked {
                user_id,
                api_key_id,
            } = *event
            {
                match api_key_id {
                    Some(key_id) => self.keys.forget_where(move |k| k.key_id == key_id),
                    None => self.keys.forget_where(move |k| k.user_id == user_id),
                }
            }
        }
    }

    fn reset(&self, trusted: bool) {
        self.gate.trusted.store(false, Ordering::SeqCst);
        self.gate.epoch.fetch_add(1, Ordering::SeqCst);
        self.posts.map.invalidate_all();
        self.users.map.invalidate_all();
        self.keys.map.invalidate_all();
        self.gate.trusted.store(trusted, Ordering::SeqCst);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn caches() -> Arc<Caches> {
        Caches::new(CacheSettings::default())
    }

    fn fill_one(cache: &Cache<i64, u32>, key: i64, value: u32) -> bool {
        let (_, missed, ticket) = cache.get_many(&[key]);
        let values = HashMap::from([(key, Arc::new(value))]);
        cache.fill(ticket, &missed, &values);
        cache.get_many(&[key]).0.contains_key(&key)
    }

    fn cache(gate: &Arc<Gate>) -> Cache<i64, u32> {
        Cache::new(100, Duration::from_secs(60), gate.clone())
    }

    fn gate() -> Arc<Gate> {
        Arc::new(Gate {
            trusted: AtomicBool::new(true),
            epoch: AtomicU64::new(0),
        })
    }

    #[test]
    fn a_fill_is_kept_and_forgotten_by_its_key() {
        let g = gate();
        let c = cache(&g);
        assert!(fill_one(&c, 1, 10));
        c.forget(&1);
        assert!(c.get_many(&[1]).0.is_empty());
    }

    #[test]
    fn a_fill_that_raced_an_invalidation_or_a_reset_is_not_kept() {
        let g = gate();
        let c = cache(&g);
        let (_, missed, ticket) = c.get_many(&[1]);
        c.forget(&1); // committed after the read began
        c.fill(ticket, &missed, &HashMap::from([(1, Arc::new(10))]));
        assert!(c.get_many(&[1]).0.is_empty());

        let (_, missed, ticket) = c.get_many(&[2]);
        g.epoch.fetch_add(1, Ordering::SeqCst);
        c.fill(ticket, &missed, &HashMap::from([(2, Arc::new(20))]));
        assert!(c.get_many(&[2]).0.is_empty());
    }

    #[test]
    fn an_untrusted_cache_is_neither_read_nor_filled() {
        let g = gate();
        let c = cache(&g);
        assert!(fill_one(&c, 1, 10));
        g.trusted.store(false, Ordering::SeqCst);
        let (found, missed, ticket) = c.get_many(&[1]);
        assert!(found.is_empty() && missed == vec![1] && ticket.is_none());
        g.trusted.store(true, Ordering::SeqCst);
        c.fill(None, &[3], &HashMap::from([(3, Arc::new(30))]));
        assert!(c.get_many(&[3]).0.is_empty());
    }

    #[test]
    fn events_name_what_they_make_stale() {
        let both = touched(&DomainEvent::Followed {
            follower_id: 1,
            followee_id: 2,
        });
        assert_eq!(both, (vec![], vec![1, 2]));
        let deleted = touched(&DomainEvent::PostDeleted {
            post_id: 9,
            author_id: 1,
        });
        assert_eq!(deleted, (vec![9], vec![1]));
        let viewed = touched(&DomainEvent::PostViewed {
            post_id: 9,
            user_id: 3,
        });
        assert_eq!(viewed, (vec![9], vec![]));
    }

    #[test]
    fn a_reset_empties_every_cache_and_sets_trust() {
        let c = caches();
        c.reset(false);
        assert!(!c.trusted());
        c.reset(true);
        assert!(c.trusted());
    }
}
