//! Password hashing with argon2id at OWASP's recommended parameters
//! (m = 19 MiB, t = 2, p = 1). Hashing is CPU- and memory-heavy, so it runs on
//! the blocking pool behind a semaphore: a login flood queues instead of
//! exhausting memory or stalling the async workers.
//!
//! **Memory.** argon2 works in `m` KiB of memory per hash. Had each hash
//! allocated and freed its own 19 MiB, glibc would raise its mmap threshold on
//! the first free (it is dynamic), serve the next ones from its per-thread
//! arenas and keep that memory: 160 users registering and logging in from 8
//! clients took the server from 23 MB to 1.2 GB. So the memory comes from a
//! fixed pool instead ([`BlockPool`]): one buffer per permit of the semaphore,
//! allocated the first time it is needed and never freed, so the process
//! never holds more than `concurrency` × 19 MiB for hashing, whatever the
//! allocator's settings.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use argon2::password_hash::rand_core::OsRng;
use argon2::password_hash::{Output, ParamsString, PasswordHash, SaltString};
use argon2::{Algorithm, Argon2, Block, Params, Version};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use super::validate::Password;
use super::AccountError;

/// OWASP Password Storage Cheat Sheet, argon2id first option.
pub const MEMORY_KIB: u32 = 19 * 1024;
const ITERATIONS: u32 = 2;
const PARALLELISM: u32 = 1;

/// Verified against when no account matches (or the login is unusable), so
/// an unknown login costs the same hash as a wrong password: these
/// parameters, a random salt, and the hash of a random password that was
/// thrown away. Its outcome is never used. A constant rather than a hash
/// made at start, so an idle server holds no hashing buffer yet.
const DUMMY_HASH: &str =
    "$argon2id$v=19$m=19456,t=2,p=1$Df/6XwERluHjfNnezHQ9Ug$z/UFFGW6aX5k05ld5vU60cRiCp+w914DGv38n9MSR60";

/// A stored hash that asks for more memory than a pool buffer holds (none
/// that Rookery wrote does: it only ever used [`MEMORY_KIB`]) is verified in a
/// buffer of its own, allocated for that verification under the same permit,
/// up to this much. Beyond it the hash is refused (logged), so a damaged or
/// planted row cannot make a login allocate gigabytes.
pub const MAX_STORED_MEMORY_KIB: u32 = 64 * 1024;

/// The working memory of `capacity` concurrent hashes: a semaphore with one
/// permit per buffer, and the buffers, each [`MEMORY_KIB`] KiB. Buffers are
/// allocated on first use, handed out only with a permit (so a free one, or
/// room for one more, always exists) and returned when the hash is done.
struct BlockPool {
    permits: Arc<Semaphore>,
    capacity: usize,
    blocks_per_buffer: usize,
    free: Mutex<Vec<Box<[Block]>>>,
    allocated: AtomicUsize,
    leases: AtomicU64,
}

/// A permit and the buffer that goes with it; the buffer goes back to the
/// pool (before the permit is released) when the lease is dropped.
struct Lease {
    pool: Arc<BlockPool>,
    buffer: Option<Box<[Block]>>,
    _permit: OwnedSemaphorePermit,
}

impl Lease {
    fn blocks(&mut self) -> &mut [Block] {
        self.buffer.as_deref_mut().unwrap_or_default()
    }
}

impl Drop for Lease {
    fn drop(&mut self) {
        if let Some(buffer) = self.buffer.take() {
            self.pool
                .free
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .push(buffer);
        }
    }
}

impl BlockPool {
    fn new(capacity: usize) -> Result<Self, AccountError> {
        let blocks_per_buffer = params(MEMORY_KIB)?.block_count();
        Ok(Self {
            permits: Arc::new(Semaphore::new(capacity)),
            capacity,
            blocks_per_buffer,
            free: Mutex::new(Vec::with_capacity(capacity)),
            allocated: AtomicUsize::new(0),
            leases: AtomicU64::new(0),
        })
    }

    /// A buffer for the holder of a permit: a free one, or a new one while
    /// fewer than `capacity` exist. With one permit per buffer, a holder
    /// always finds one of the two.
    fn buffer(&self) -> Result<Box<[Block]>, AccountError> {
        self.leases.fetch_add(1, Ordering::Relaxed);
        if let Some(buffer) = self
            .free
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .pop()
        {
            return Ok(buffer);
        }
        let grown = self
            .allocated
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                (n < self.capacity).then_some(n + 1)
            });
        if grown.is_err() {
            return Err(AccountError::Internal(
                "argon2 block pool exhausted although a permit was held".into(),
            ));
        }
        Ok(vec![Block::default(); self.blocks_per_buffer].into_boxed_slice())
    }

    async fn lease(self: &Arc<Self>) -> Result<Lease, AccountError> {
        let permit = self
            .permits
            .clone()
            .acquire_owned()
            .await
            .map_err(|e| AccountError::Internal(e.to_string()))?;
        Ok(Lease {
            pool: self.clone(),
            buffer: Some(self.buffer()?),
            _permit: permit,
        })
    }
}

fn params(memory_kib: u32) -> Result<Params, AccountError> {
    Params::new(memory_kib, ITERATIONS, PARALLELISM, None)
        .map_err(|e| AccountError::Internal(format!("argon2 parameters: {e}")))
}

/// Hashes `password` with a new random salt into a PHC string
/// (`$argon2id$v=19$m=19456,t=2,p=1$salt$hash`), working in `blocks`.
fn hash_in(password: &str, blocks: &mut [Block]) -> Result<String, AccountError> {
    let failed = |e: &dyn std::fmt::Display| AccountError::Internal(format!("hashing failed: {e}"));
    let params = params(MEMORY_KIB)?;
    let argon2 = Argon2::new(Algorithm::Argon2id, Version::V0x13, params.clone());
    let salt = SaltString::generate(&mut OsRng);
    let mut salt_bytes = [0u8; 64];
    let salt_raw = salt.decode_b64(&mut salt_bytes).map_err(|e| failed(&e))?;
    let output = Output::init_with(Params::DEFAULT_OUTPUT_LEN, |out| {
        Ok(argon2.hash_password_into_with_memory(
            password.as_bytes(),
            salt_raw,
            out,
            &mut *blocks,
        )?)
    })
    .map_err(|e| failed(&e))?;
    let hash = PasswordHash {
        algorithm: Algorithm::Argon2id.ident(),
        version: Some(Version::V0x13.into()),
        params: ParamsString::try_from(&params).map_err(|e| failed(&e))?,
        salt: Some(salt.as_salt()),
        hash: Some(output),
    };
    Ok(hash.to_string())
}

/// Verifies `password` against a PHC string with the parameters stored in
/// it, so hashes made with other parameters keep working: those needing no
/// more memory than `blocks` work in it, larger ones (up to
/// [`MAX_STORED_MEMORY_KIB`]) in a buffer of their own. The outputs are
/// compared in constant time (`Output`'s `PartialEq`).
fn verify_in(password: &str, hash: &str, blocks: &mut [Block]) -> bool {
    let Ok(parsed) = PasswordHash::new(hash) else {
        tracing::error!("a stored password hash is not a PHC string; it matches nothing");
        return false;
    };
    let (Some(salt), Some(expected)) = (parsed.salt, parsed.hash) else {
        return false;
    };
    let Ok(algorithm) = Algorithm::try_from(parsed.algorithm) else {
        return false;
    };
    let version = match parsed.version.map(Version::try_from).transpose() {
        Ok(version) => version.unwrap_or_default(),
        Err(_) => return false,
    };
    let Ok(params) = Params::try_from(&parsed) else {
        return false;
    };
    let mut own;
    let memory: &mut [Block] = if params.block_count() <= blocks.len() {
        blocks
    } else if params.m_cost() <= MAX_STORED_MEMORY_KIB {
        own = vec![Block::default(); params.block_count()];
        &mut own
    } else {
        tracing::error!(
            m_cost_kib = params.m_cost(),
            max_kib = MAX_STORED_MEMORY_KIB,
            "a stored password hash asks for more memory than allowed; it matches nothing"
        );
        return false;
    };
    let mut salt_bytes = [0u8; 64];
    let Ok(salt) = salt.decode_b64(&mut salt_bytes) else {
        return false;
    };
    let argon2 = Argon2::new(algorithm, version, params);
    Output::init_with(expected.len(), |out| {
        Ok(argon2.hash_password_into_with_memory(password.as_bytes(), salt, out, &mut *memory)?)
    })
    .is_ok_and(|computed| computed == expected)
}

#[derive(Clone)]
pub struct PasswordHasher {
    pool: Arc<BlockPool>,
}

impl PasswordHasher {
    /// At most `concurrency` hashes at once, each in one of at most
    /// `concurrency` buffers of [`MEMORY_KIB`] KiB.
    pub fn new(concurrency: usize) -> Result<Self, AccountError> {
        Ok(Self {
            pool: Arc::new(BlockPool::new(concurrency.max(1))?),
        })
    }

    pub async fn hash(&self, password: Password<'_>) -> Result<String, AccountError> {
        let mut lease = self.pool.lease().await?;
        let password = password.as_str().to_owned();
        tokio::task::spawn_blocking(move || hash_in(&password, lease.blocks()))
            .await
            .map_err(|e| AccountError::Internal(format!("hashing task failed: {e}")))?
    }

    /// Verifies against `hash`, or against the dummy hash when there is none,
    /// so both paths cost the same.
    pub async fn verify(&self, password: &str, hash: Option<&str>) -> Result<bool, AccountError> {
        let mut lease = self.pool.lease().await?;
        let password = password.to_owned();
        let real = hash.is_some();
        let hash = hash.unwrap_or(DUMMY_HASH).to_owned();
        let ok = tokio::task::spawn_blocking(move || verify_in(&password, &hash, lease.blocks()))
            .await
            .map_err(|e| AccountError::Internal(format!("verification task failed: {e}")))?;
        Ok(ok && real)
    }

    /// How many hashes may run at once (and how many buffers may exist).
    pub fn concurrency(&self) -> usize {
        self.pool.capacity
    }

    /// How many working-memory buffers exist now: never more than
    /// [`Self::concurrency`].
    pub fn buffers_allocated(&self) -> usize {
        self.pool.allocated.load(Ordering::Acquire)
    }

    /// How many hashes and verifications have taken a buffer.
    pub fn buffers_leased(&self) -> u64 {
        self.pool.leases.load(Ordering::Relaxed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn checked(password: &str) -> Password<'_> {
        super::super::validate::password(password).unwrap()
    }

    fn pool_buffer() -> Vec<Block> {
        vec![Block::default(); params(MEMORY_KIB).unwrap().block_count()]
    }

    /// A PHC string made by the argon2 crate's own allocating API, with other
    /// parameters than ours.
    fn reference_hash(password: &str, memory_kib: u32) -> String {
        use argon2::password_hash::PasswordHasher as _;
        let argon2 = Argon2::new(
            Algorithm::Argon2id,
            Version::V0x13,
            Params::new(memory_kib, 1, 1, None).unwrap(),
        );
        argon2
            .hash_password(password.as_bytes(), &SaltString::generate(&mut OsRng))
            .unwrap()
            .to_string()
    }

    #[test]
    fn hashes_are_argon2id_with_owasp_parameters() {
        let mut blocks = pool_buffer();
        let h = hash_in("correct horse", &mut blocks).unwrap();
        assert!(h.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"), "{h}");
        assert!(verify_in("correct horse", &h, &mut blocks));
        assert!(!verify_in("wrong horse", &h, &mut blocks));
        assert!(!verify_in("correct horse", "not a hash", &mut blocks));
    }

    #[test]
    fn pool_hashes_are_what_the_argon2_crate_verifies_and_the_reverse() {
        use argon2::password_hash::PasswordVerifier as _;
        let mut blocks = pool_buffer();
        // Ours, checked by the crate's allocating verifier (what the code
        // before the pool used): existing and new hashes are one format.
        let ours = hash_in("correct horse", &mut blocks).unwrap();
        let parsed = PasswordHash::new(&ours).unwrap();
        assert!(Argon2::default()
            .verify_password(b"correct horse", &parsed)
            .is_ok());
        assert!(Argon2::default()
            .verify_password(b"wrong horse", &parsed)
            .is_err());
        // The crate's, with less memory than a buffer: verified in a part of it.
        let theirs = reference_hash("correct horse", 8 * 1024);
        assert!(verify_in("correct horse", &theirs, &mut blocks));
        assert!(!verify_in("wrong horse", &theirs, &mut blocks));
    }

    #[test]
    fn stored_hashes_needing_more_memory_verify_in_their_own_buffer_up_to_a_bound() {
        let mut blocks = pool_buffer();
        let larger = reference_hash("correct horse", 32 * 1024);
        assert!(verify_in("correct horse", &larger, &mut blocks));
        assert!(!verify_in("wrong horse", &larger, &mut blocks));
        // The same hash claiming more than the bound is refused before any
        // memory is allocated (it would not match anyway: m is hashed in).
        let huge = larger.replace("m=32768", &format!("m={}", MAX_STORED_MEMORY_KIB + 1024));
        assert_ne!(huge, larger);
        assert!(!verify_in("correct horse", &huge, &mut blocks));
    }

    #[test]
    fn the_dummy_hash_costs_what_a_stored_hash_costs() {
        // The parameters new hashes get, so verifying it takes as long.
        let mut blocks = pool_buffer();
        let fresh = hash_in("x", &mut blocks).unwrap();
        let params = |h: &str| h.rsplitn(3, '$').nth(2).unwrap().to_owned();
        assert_eq!(params(DUMMY_HASH), params(&fresh));
        let parsed = PasswordHash::new(DUMMY_HASH).unwrap();
        assert_eq!(parsed.hash.unwrap().len(), Params::DEFAULT_OUTPUT_LEN);
        assert!(!verify_in("", DUMMY_HASH, &mut blocks));
    }

    #[test]
    fn equal_passwords_get_different_salts() {
        let mut blocks = pool_buffer();
        assert_ne!(
            hash_in("same", &mut blocks).unwrap(),
            hash_in("same", &mut blocks).unwrap()
        );
    }

    /// The bound: however many hashes and verifications run at once, no
    /// more buffers than permits ever exist, and they are reused.
    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn the_pool_never_holds_more_buffers_than_permits() {
        let hasher = PasswordHasher::new(2).unwrap();
        assert_eq!(hasher.concurrency(), 2);
        // Nothing is allocated before the first hash.
        assert_eq!(hasher.buffers_allocated(), 0);
        let stored = hasher.hash(checked("correct horse")).await.unwrap();
        let tasks: Vec<_> = (0..24)
            .map(|i| {
                let hasher = hasher.clone();
                let stored = stored.clone();
                tokio::spawn(async move {
                    let allocated = hasher.buffers_allocated();
                    match i % 3 {
                        0 => {
                            let h = hasher.hash(checked("another one")).await.unwrap();
                            assert!(h.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"));
                        }
                        1 => assert!(hasher.verify("correct horse", Some(&stored)).await.unwrap()),
                        _ => assert!(!hasher.verify("correct horse", None).await.unwrap()),
                    }
                    allocated.max(hasher.buffers_allocated())
                })
            })
            .collect();
        let mut most = 0;
        for task in tasks {
            most = most.max(task.await.unwrap());
        }
        assert!(most <= 2, "{most} buffers existed at once");
        assert_eq!(hasher.buffers_allocated(), 2);
        // 1 + 24: every one of them in one of the two buffers.
        assert_eq!(hasher.buffers_leased(), 25);
    }
}
