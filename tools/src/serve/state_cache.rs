//! Saved conversation states, keyed by a hash of the tokens they have read.
//!
//! A recurrent model's whole context is its fixed-size state, so a chat turn
//! that extends an earlier one can resume from that turn's saved state and
//! read only the new tokens. Entries live in memory under a byte cap and an
//! entry cap, least recently used first out; with a spill directory evicted
//! states go to disk (under their own cap) instead of being dropped.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Mutex;

/// FNV-1a 64 of every prefix of `tokens`: `out[k]` hashes `tokens[..k]`.
pub fn prefix_hashes(tokens: &[u32]) -> Vec<u64> {
    const OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
    const PRIME: u64 = 0x0100_0000_01b3;
    let mut out = Vec::with_capacity(tokens.len() + 1);
    let mut h = OFFSET;
    out.push(h);
    for t in tokens {
        for b in t.to_le_bytes() {
            h = (h ^ u64::from(b)).wrapping_mul(PRIME);
        }
        out.push(h);
    }
    out
}

/// Limits of a [`StateCache`].
#[derive(Clone, Debug)]
pub struct CacheLimits {
    /// Most states kept in memory.
    pub max_entries: usize,
    /// Most bytes (states plus their token keys) kept in memory.
    pub max_bytes: usize,
    /// Where evicted states are written, if anywhere.
    pub spill_dir: Option<PathBuf>,
    /// Most bytes of states kept in the spill directory.
    pub max_spill_bytes: usize,
}

/// Where an entry's state is.
enum Stored {
    Memory(Vec<u8>),
    Disk { path: PathBuf, len: usize },
}

struct Entry {
    tokens: Vec<u32>,
    stored: Stored,
    last_used: u64,
}

impl Entry {
    fn memory_bytes(&self) -> usize {
        let state = match &self.stored {
            Stored::Memory(s) => s.len(),
            Stored::Disk { .. } => 0,
        };
        state + self.tokens.len() * 4
    }
}

#[derive(Default)]
struct Inner {
    entries: HashMap<u64, Entry>,
    memory_bytes: usize,
    in_memory: usize,
    spill_bytes: usize,
    clock: u64,
}

/// Counts reported by `/metrics`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CacheStats {
    /// States held in memory.
    pub memory_entries: usize,
    /// Bytes held in memory (states and token keys).
    pub memory_bytes: usize,
    /// States spilled to disk.
    pub disk_entries: usize,
    /// Bytes of spilled states.
    pub disk_bytes: usize,
}

/// The state cache; shared by the generating threads.
pub struct StateCache {
    limits: CacheLimits,
    inner: Mutex<Inner>,
}

impl StateCache {
    /// An empty cache with these limits.
    pub fn new(limits: CacheLimits) -> Self {
        StateCache { limits, inner: Mutex::new(Inner::default()) }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        // A panic elsewhere cannot leave the map half-updated in a way that
        // matters more than losing the cache: keep serving.
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Find the longest saved prefix of `tokens` that is strictly shorter
    /// than `tokens` (at least one token must be read to get logits) and
    /// hand its state to `restore`; the prefix length if `restore` took it.
    pub fn resume(&self, tokens: &[u32], mut restore: impl FnMut(&[u8]) -> bool) -> Option<usize> {
        let hashes = prefix_hashes(tokens);
        let mut inner = self.lock();
        for k in (1..tokens.len()).rev() {
            let key = hashes[k];
            let Some(entry) = inner.entries.get(&key) else { continue };
            if entry.tokens != tokens[..k] {
                continue;
            }
            let ok = match &entry.stored {
                Stored::Memory(state) => restore(state),
                Stored::Disk { path, .. } => std::fs::read(path).map(|s| restore(&s)).unwrap_or(false),
            };
            if ok {
                inner.clock += 1;
                let now = inner.clock;
                if let Some(e) = inner.entries.get_mut(&key) {
                    e.last_used = now;
                }
                return Some(k);
            }
            // Unreadable or refused: drop it rather than fail again.
            remove(&mut inner, key);
        }
        None
    }

    /// Save the state reached after reading `tokens`.
    pub fn save(&self, tokens: &[u32], state: &[u8]) {
        if tokens.is_empty() || state.len() + tokens.len() * 4 > self.limits.max_bytes {
            return;
        }
        let key = prefix_hashes(tokens)[tokens.len()];
        let mut inner = self.lock();
        inner.clock += 1;
        let now = inner.clock;
        if inner.entries.get(&key).is_some_and(|e| e.tokens == tokens) {
            // The same tokens always lead to the same state.
            if let Some(e) = inner.entries.get_mut(&key) {
                e.last_used = now;
            }
            return;
        }
        remove(&mut inner, key);
        let entry = Entry { tokens: tokens.to_vec(), stored: Stored::Memory(state.to_vec()), last_used: now };
        inner.memory_bytes += entry.memory_bytes();
        inner.in_memory += 1;
        inner.entries.insert(key, entry);
        self.enforce(&mut inner, key);
    }

    /// Evict least recently used states until the limits hold, spilling
    /// them when a directory is set; `keep` (the newest) stays in memory.
    fn enforce(&self, inner: &mut Inner, keep: u64) {
        while inner.in_memory > self.limits.max_entries || inner.memory_bytes > self.limits.max_bytes {
            let victim = inner
                .entries
                .iter()
                .filter(|(k, e)| **k != keep && matches!(e.stored, Stored::Memory(_)))
                .min_by_key(|(_, e)| e.last_used)
                .map(|(k, _)| *k);
            let Some(victim) = victim else { break };
            if !self.spill(inner, victim) {
                remove(inner, victim);
            }
        }
        while inner.spill_bytes > self.limits.max_spill_bytes {
            let victim = inner
                .entries
                .iter()
                .filter(|(_, e)| matches!(e.stored, Stored::Disk { .. }))
                .min_by_key(|(_, e)| e.last_used)
                .map(|(k, _)| *k);
            let Some(victim) = victim else { break };
            remove(inner, victim);
        }
    }

    /// Move one entry's state to the spill directory; false if there is
    /// none or the write failed.
    fn spill(&self, inner: &mut Inner, key: u64) -> bool {
        let Some(dir) = &self.limits.spill_dir else { return false };
        let Some(entry) = inner.entries.get_mut(&key) else { return false };
        let Stored::Memory(state) = &entry.stored else { return false };
        let path = dir.join(format!("{key:016x}.state"));
        if std::fs::write(&path, state).is_err() {
            let _ = std::fs::remove_file(&path);
            return false;
        }
        let len = state.len();
        inner.memory_bytes -= len;
        inner.in_memory -= 1;
        inner.spill_bytes += len;
        entry.stored = Stored::Disk { path, len };
        true
    }

    /// Current counts.
    pub fn stats(&self) -> CacheStats {
        let inner = self.lock();
        CacheStats {
            memory_entries: inner.in_memory,
            memory_bytes: inner.memory_bytes,
            disk_entries: inner.entries.len() - inner.in_memory,
            disk_bytes: inner.spill_bytes,
        }
    }
}

impl Drop for StateCache {
    /// Spilled files belong to this process's index: remove them.
    fn drop(&mut self) {
        let mut inner = self.lock();
        let keys: Vec<u64> = inner.entries.keys().copied().collect();
        for key in keys {
            remove(&mut inner, key);
        }
    }
}

/// Forget an entry, deleting its spill file.
fn remove(inner: &mut Inner, key: u64) {
    let Some(entry) = inner.entries.remove(&key) else { return };
    inner.memory_bytes -= entry.memory_bytes();
    match entry.stored {
        Stored::Memory(_) => inner.in_memory -= 1,
        Stored::Disk { path, len } => {
            inner.spill_bytes -= len;
            let _ = std::fs::remove_file(path);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits(max_entries: usize, spill_dir: Option<PathBuf>) -> CacheLimits {
        CacheLimits { max_entries, max_bytes: 1 << 20, spill_dir, max_spill_bytes: 1 << 20 }
    }

    fn resumed(cache: &StateCache, tokens: &[u32]) -> Option<(usize, Vec<u8>)> {
        let mut got = Vec::new();
        cache
            .resume(tokens, |s| {
                got = s.to_vec();
                true
            })
            .map(|k| (k, got))
    }

    #[test]
    fn the_longest_strictly_shorter_prefix_is_resumed() {
        let cache = StateCache::new(limits(8, None));
        cache.save(&[1, 2], &[12]);
        cache.save(&[1, 2, 3, 4], &[34]);
        assert_eq!(resumed(&cache, &[1, 2, 3, 4, 5]), Some((4, vec![34])));
        // Equal length is not a prefix that leaves a token to read.
        assert_eq!(resumed(&cache, &[1, 2, 3, 4]), Some((2, vec![12])));
        assert_eq!(resumed(&cache, &[1, 3, 3, 4, 5]), None);
        assert_eq!(resumed(&cache, &[9]), None);
    }

    #[test]
    fn least_recently_used_is_evicted_first() {
        let cache = StateCache::new(limits(2, None));
        cache.save(&[1], &[1]);
        cache.save(&[2], &[2]);
        assert!(resumed(&cache, &[1, 0]).is_some());
        cache.save(&[3], &[3]);
        assert!(resumed(&cache, &[2, 0]).is_none(), "[2] was least recently used");
        assert!(resumed(&cache, &[1, 0]).is_some());
        assert!(resumed(&cache, &[3, 0]).is_some());
        assert_eq!(cache.stats().memory_entries, 2);
        assert_eq!(cache.stats().memory_bytes, 2 * (1 + 4));
    }

    #[test]
    fn the_byte_cap_holds_and_oversized_states_are_not_kept() {
        let cache = StateCache::new(CacheLimits { max_bytes: 30, ..limits(100, None) });
        cache.save(&[1], &[0; 40]);
        assert_eq!(cache.stats(), CacheStats::default());
        for t in 0..5 {
            cache.save(&[t], &[t as u8; 10]);
        }
        let stats = cache.stats();
        assert!(stats.memory_bytes <= 30, "{stats:?}");
        assert_eq!(stats.memory_entries, 2);
    }

    #[test]
    fn evicted_states_spill_to_disk_and_come_back() {
        let dir = std::env::temp_dir().join(format!("eddy-state-cache-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        {
            let cache = StateCache::new(limits(1, Some(dir.clone())));
            cache.save(&[7, 8], &[78, 78]);
            cache.save(&[5], &[5]);
            let s = cache.stats();
            assert_eq!((s.memory_entries, s.disk_entries, s.disk_bytes), (1, 1, 2));
            assert_eq!(std::fs::read_dir(&dir).unwrap().count(), 1);
            assert_eq!(resumed(&cache, &[7, 8, 9]), Some((2, vec![78, 78])));
        }
        assert_eq!(std::fs::read_dir(&dir).unwrap().count(), 0, "spill files are removed on drop");
        std::fs::remove_dir(&dir).unwrap();
    }

    #[test]
    fn a_refused_state_is_dropped() {
        let cache = StateCache::new(limits(8, None));
        cache.save(&[1], &[1]);
        assert_eq!(cache.resume(&[1, 2], |_| false), None);
        assert_eq!(cache.stats().memory_entries, 0);
    }
}
