//! Data for trying Rookery out (`rookery seed-demo`: through the domain, and
//! idempotent) and for measuring it (`rookery seed-bench`: in bulk with
//! `COPY`, where the domain would take hours, into a database with no users
//! yet; `rookery seed-microblog`: the microblog feed benchmark's one viewer,
//! in bulk, once per database).

pub mod bench;
pub mod demo;
pub mod microblog;

/// A small, fast, deterministic generator (SplitMix64); not for secrets.
pub(crate) struct Rng(pub(crate) u64);

impl Rng {
    pub(crate) fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `0..n` (n > 0; the bias is negligible for our sizes).
    pub(crate) fn below(&mut self, n: usize) -> usize {
        // usize fits in u64 on every supported target, and the result is < n.
        usize::try_from(self.next() % n as u64).unwrap_or(0)
    }
}

/// Writes a keys file, creating its directory first; a failure names the path.
pub fn write_keys_file(
    path: &std::path::Path,
    json: &[u8],
) -> Result<(), (String, std::io::Error)> {
    let named = |source| (path.display().to_string(), source);
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(named)?;
    }
    std::fs::write(path, json).map_err(named)
}
