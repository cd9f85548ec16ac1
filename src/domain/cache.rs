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

use std::collections::{HashMap, HashSet};
use std::hash::{BuildHasher, Hash};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
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
    /// First pages of home feeds.
    pub timelines: u64,
    pub idle: Duration,
}

impl Default for CacheSettings {
    /// About 20 MB of posts (a cached post is about 1 KB), 10 MB of users
    /// and 20 MB of pages of ids.
    fn default() -> Self {
        Self {
            posts: 20_000,
            users: 20_000,
            timelines: 20_000,
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

/// The first page of a user's home feed (latest first): the post ids, and
/// the authors whose posts may enter it.
#[derive(Debug)]
pub struct TimelinePage {
    /// Up to [`TIMELINE_PAGE`] ids, newest first; fewer when that is all
    /// the feed holds.
    pub ids: Vec<i64>,
    /// The user and everyone they follow.
    pub authors: Vec<i64>,
}

/// Ids kept per cached page: the largest page a client may ask for, and one
/// more to tell whether there is a next page.
pub const TIMELINE_PAGE: usize = crate::domain::pagination::MAX_LIMIT as usize + 1;

/// Past this many (author, reader) pairs the index of readers is emptied,
/// with the pages it indexes.
const READERS_MAX: usize = 1_000_000;

/// Pages of ids, and which cached pages each author's posts may enter.
pub struct Timelines {
    pub pages: Cache<i64, TimelinePage>,
    /// Author → users whose cached page includes their posts. Entries are
    /// added before a page is cached and never removed alone (a stale entry
    /// only costs a needless invalidation); the whole index goes when it
    /// grows too large.
    readers: Mutex<(HashMap<i64, HashSet<i64>>, usize)>,
    /// Moves with every change by an author: a page read while it moved may
    /// have missed it before its reader was indexed, so it is not kept.
    by_authors: AtomicU64,
}

/// What a timeline fill must show.
pub struct TimelineTicket {
    ticket: Option<Ticket>,
    by_authors: u64,
}

impl Timelines {
    fn new(capacity: u64, idle: Duration, gate: &Arc<Gate>) -> Self {
        Self {
            pages: Cache::new(capacity, idle, gate.clone()),
            readers: Mutex::new((HashMap::new(), 0)),
            by_authors: AtomicU64::new(0),
        }
    }

    /// The cached page of `user_id`, or a ticket to fill it.
    pub fn get(&self, user_id: i64) -> Result<Arc<TimelinePage>, TimelineTicket> {
        let by_authors = self.by_authors.load(Ordering::SeqCst);
        let (mut found, _, ticket) = self.pages.get_many(&[user_id]);
        found
            .remove(&user_id)
            .ok_or(TimelineTicket { ticket, by_authors })
    }

    /// Keeps a page read after `ticket` was taken, unless a change may have
    /// slipped past it.
    pub fn fill(&self, user_id: i64, ticket: TimelineTicket, page: Arc<TimelinePage>) {
        if ticket.ticket.is_none() {
            return;
        }
        let over = {
            let Ok(mut guard) = self.readers.lock() else {
                return;
            };
            let (readers, pairs) = &mut *guard;
            for author in &page.authors {
                if readers.entry(*author).or_default().insert(user_id) {
                    *pairs += 1;
                }
            }
            *pairs > READERS_MAX
        };
        if over {
            self.trim();
            return;
        }
        if self.by_authors.load(Ordering::SeqCst) != ticket.by_authors {
            return;
        }
        self.pages
            .fill(ticket.ticket, &[user_id], &HashMap::from([(user_id, page)]));
        if self.by_authors.load(Ordering::SeqCst) != ticket.by_authors {
            self.pages.forget(&user_id);
        }
    }

    /// Forgets the pages `author_id`'s posts may be in.
    fn forget_author(&self, author_id: i64) {
        self.by_authors.fetch_add(1, Ordering::SeqCst);
        let readers: Vec<i64> = match self.readers.lock() {
            Ok(guard) => guard
                .0
                .get(&author_id)
                .map_or_else(Vec::new, |r| r.iter().copied().collect()),
            // A panic elsewhere left the index unknown: forget every page.
            Err(_) => {
                self.pages.forget_where(|_| true);
                return;
            }
        };
        for user_id in readers {
            self.pages.forget(&user_id);
        }
        self.pages.forget(&author_id);
    }

    fn trim(&self) {
        let Ok(mut guard) = self.readers.lock() else {
            return;
        };
        if guard.1 > READERS_MAX {
            // Pages first, so none outlives its index entries.
            self.by_authors.fetch_add(1, Ordering::SeqCst);
            self.pages.forget_where(|_| true);
            *guard = (HashMap::new(), 0);
        }
    }

    fn clear(&self) {
        self.by_authors.fetch_add(1, Ordering::SeqCst);
        self.pages.map.invalidate_all();
        if let Ok(mut guard) = self.readers.lock() {
            *guard = (HashMap::new(), 0);
        }
    }
}

/// Every read cache of this node.
pub struct Caches {
    pub posts: Cache<i64, CachedPost>,
    pub users: Cache<i64, CachedUser>,
    /// API keys by the SHA-256 of the key.
    pub keys: Cache<Vec<u8>, CachedKey>,
    pub timelines: Timelines,
    /// Each microblog reader's candidates: their own and their followees'
    /// newest posts, kept and forgotten as the timelines are.
    pub candidates: Timelines,
    /// Who liked each post, newest first (at most the microblog's list cap).
    pub likers: Cache<i64, Vec<i64>>,
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
            timelines: Timelines::new(settings.timelines, settings.idle, &gate),
            candidates: Timelines::new(settings.timelines / 10, settings.idle, &gate),
            likers: Cache::new(settings.posts, settings.idle, gate.clone()),
            gate,
        })
    }

    pub fn trusted(&self) -> bool {
        self.gate.trusted.load(Ordering::SeqCst)
    }
}

/// What each event makes stale. Per-viewer state (a viewer's reaction,
/// follows and blocks) is never cached, so only what every viewer shares is
/// named here.
fn touched(event: &DomainEvent) -> (Vec<i64>, Vec<i64>) {
    use DomainEvent as E;
    match event {
        E::PostCreated { author_id, .. } => (vec![], vec![*author_id]),
        E::PostEdited { post_id, .. }
        | E::CommentCreated { post_id, .. }
        | E::CommentDeleted { post_id, .. } => (vec![*post_id], vec![]),
        E::PostDeleted { post_id, author_id } => (vec![*post_id], vec![*author_id]),
        E::ReactionAdded { post_id, .. }
        | E::ReactionRemoved { post_id, .. }
        | E::PostViewed { post_id, .. } => (vec![*post_id], vec![]),
        // A hidden post leaves its author's post count.
        E::ContentModerated {
            post_id, author_id, ..
        } => (vec![*post_id], vec![*author_id]),
        E::Followed { .. } | E::Unfollowed { .. } | E::Blocked { .. } | E::Unblocked { .. } => {
            (vec![], pair(event))
        }
        E::ProfileEdited { user_id } => (vec![], vec![*user_id]),
        E::CredentialsRevoked { user_id, .. } => (vec![], vec![*user_id]),
        E::CommentEdited { .. }
        | E::Mentioned { .. }
        | E::FanOut { .. }
        | E::TimelineWrite { .. }
        | E::NotificationsRead { .. } => (vec![], vec![]),
    }
}

/// The two users a follow, an unfollow, a block or an unblock is between
/// (no one for other events).
fn pair(event: &DomainEvent) -> Vec<i64> {
    use DomainEvent as E;
    match *event {
        E::Followed {
            follower_id,
            followee_id,
        }
        | E::Unfollowed {
            follower_id,
            followee_id,
        } => vec![follower_id, followee_id],
        E::Blocked {
            blocker_id,
            blocked_id,
        }
        | E::Unblocked {
            blocker_id,
            blocked_id,
        } => vec![blocker_id, blocked_id],
        _ => Vec::new(),
    }
}

/// Whose pages of ids an event may change: the readers of an author's
/// posts, or the users named.
fn timelines_touched(event: &DomainEvent) -> (Option<i64>, Vec<i64>) {
    use DomainEvent as E;
    match event {
        E::PostCreated { author_id, .. }
        | E::PostDeleted { author_id, .. }
        | E::TimelineWrite { author_id, .. }
        | E::ContentModerated { author_id, .. } => (Some(*author_id), vec![]),
        // A suspension or a deletion takes the user's posts out of every feed.
        E::CredentialsRevoked {
            user_id,
            api_key_id: None,
        } => (Some(*user_id), vec![]),
        _ => (None, pair(event)),
    }
}

impl ChangeListener for Caches {
    fn changed(&self, events: &[DomainEvent]) {
        for event in events {
            let (author, readers) = timelines_touched(event);
            for pages in [&self.timelines, &self.candidates] {
                if let Some(author) = author {
                    pages.forget_author(author);
                }
                for user_id in &readers {
                    pages.pages.forget(user_id);
                }
            }
            let (posts, users) = touched(event);
            for id in posts {
                self.posts.forget(&id);
                self.likers.forget(&id);
            }
            for id in users {
                self.users.forget(&id);
            }
            if let DomainEvent::CredentialsRevoked {
                user_id,
                api_key_id,
            } = *event
            {
                match api_key_id {
                    Some(key_id) => self.keys.forget_where(move |k| k.key_id == key_id),
                    None => {
                        self.keys.forget_where(move |k| k.user_id == user_id);
                        // A suspension or a deletion changes the counts of
                        // everyone the user follows or is followed by (what the
                        // lists show): forget every user (this is rare).
                        self.users.forget_where(|_| true);
                    }
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
        self.timelines.clear();
        self.candidates.clear();
        self.likers.map.invalidate_all();
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

#[cfg(test)]
mod timeline_tests {
    use super::*;

    fn page(authors: &[i64]) -> Arc<TimelinePage> {
        Arc::new(TimelinePage {
            ids: vec![3, 2, 1],
            authors: authors.to_vec(),
        })
    }

    #[test]
    fn an_authors_change_forgets_the_pages_of_their_readers_only() {
        let c = Caches::new(CacheSettings::default());
        for (user, authors) in [(1, vec![10, 1]), (2, vec![11, 2])] {
            let Err(ticket) = c.timelines.get(user) else {
                panic!("empty cache")
            };
            c.timelines.fill(user, ticket, page(&authors));
        }
        assert!(c.timelines.get(1).is_ok() && c.timelines.get(2).is_ok());
        c.changed(&[DomainEvent::PostCreated {
            post_id: 5,
            author_id: 10,
        }]);
        assert!(c.timelines.get(1).is_err(), "a reader of 10");
        assert!(c.timelines.get(2).is_ok(), "not a reader of 10");
    }

    #[test]
    fn a_page_read_while_any_author_changed_is_not_kept() {
        let c = Caches::new(CacheSettings::default());
        let Err(ticket) = c.timelines.get(1) else {
            panic!("empty cache")
        };
        // Committed while the page was being read, by an author the index
        // did not yet link to user 1.
        c.changed(&[DomainEvent::TimelineWrite {
            post_id: 5,
            author_id: 10,
        }]);
        c.timelines.fill(1, ticket, page(&[10, 1]));
        assert!(c.timelines.get(1).is_err());
    }

    #[test]
    fn a_follow_forgets_both_pages() {
        let c = Caches::new(CacheSettings::default());
        for user in [1, 2] {
            let Err(ticket) = c.timelines.get(user) else {
                panic!("empty cache")
            };
            c.timelines.fill(user, ticket, page(&[user]));
        }
        c.changed(&[DomainEvent::Followed {
            follower_id: 1,
            followee_id: 2,
        }]);
        assert!(c.timelines.get(1).is_err() && c.timelines.get(2).is_err());
    }
}
