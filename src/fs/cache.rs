//! `GenerationCache`: values per inode or object (listings, a node's rows) kept while the
//! core's change generation has not moved, and dropped as soon as it has.

use std::collections::HashMap;
use std::hash::Hash;
use std::sync::Mutex;

use super::inode::Ino;

/// Values per key (an inode by default), each tagged with the generation it was computed at;
/// a value is served only while the generation is the same. At most `capacity` values are
/// kept: a full cache starts over.
pub struct GenerationCache<V, K = Ino> {
    entries: Mutex<Entries<K, V>>,
    capacity: usize,
    /// What it keeps, as its metrics say (`listing`, `attributes`, …).
    kind: &'static str,
}

struct Entries<K, V> {
    values: HashMap<K, (u64, V)>,
}

impl<V: Clone, K: Eq + Hash + Copy> GenerationCache<V, K> {
    /// An empty cache of at most `capacity` values of `kind` (what its metrics call them).
    pub fn new(capacity: usize, kind: &'static str) -> Self {
        GenerationCache {
            entries: Mutex::new(Entries {
                values: HashMap::new(),
            }),
            capacity,
            kind,
        }
    }

    /// Returns the value of `key` computed at generation `now` (the generation of what the
    /// value reads: always the same counters for one key), or computes it with `make`
    /// (outside the lock, so slow computations of different keys overlap) and keeps it.
    pub fn get_or<E>(&self, key: K, now: u64, make: impl FnOnce() -> Result<V, E>) -> Result<V, E> {
        if let Some((generation, value)) = self.lock().values.get(&key)
            && *generation == now
        {
            crate::meters::count_kept(self.kind, true);
            return Ok(value.clone());
        }
        crate::meters::count_kept(self.kind, false);
        let value = make()?;
        let mut entries = self.lock();
        match entries.values.get(&key) {
            // Computed before a change another value of the key was made after.
            Some((newer, _)) if *newer > now => return Ok(value),
            Some(_) => {}
            // The newest value is the one about to be asked for again.
            None if entries.values.len() >= self.capacity => entries.values.clear(),
            None => {}
        }
        entries.values.insert(key, (now, value.clone()));
        Ok(value)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Entries<K, V>> {
        self.entries.lock().unwrap_or_else(|e| e.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_live_until_the_generation_moves_and_a_full_cache_starts_over() {
        let cache = GenerationCache::new(2, "test");
        let made = std::cell::Cell::new(0);
        let get = |ino: u64, now: u64| {
            cache
                .get_or(Ino(ino), now, || {
                    made.set(made.get() + 1);
                    Ok::<_, ()>(ino * 10 + now)
                })
                .unwrap()
        };
        assert_eq!((get(1, 0), get(1, 0)), (10, 10));
        assert_eq!(made.get(), 1, "the second read is served from the cache");
        assert_eq!(get(1, 1), 11, "a new generation recomputes");
        assert_eq!(made.get(), 2);
        get(2, 1);
        get(3, 1); // Full: starts over with 3 alone.
        assert_eq!(made.get(), 4);
        get(3, 1);
        assert_eq!(made.get(), 4, "the newest value survived");
        get(1, 1);
        assert_eq!(made.get(), 5, "older ones did not");
        assert!(cache.get_or(Ino(9), 1, || Err("no")).is_err());
        assert_eq!(made.get(), 5);
    }

    #[test]
    fn each_key_has_its_own_generation_and_a_late_old_value_does_not_replace_a_newer() {
        let cache = GenerationCache::new(8, "test");
        let get = |ino: u64, now: u64| {
            (cache.get_or(Ino(ino), now, || Ok::<_, ()>(ino * 10 + now))).unwrap()
        };
        assert_eq!((get(1, 5), get(2, 7)), (15, 27));
        // Key 2's counters moved: key 1's value is still served.
        assert_eq!(get(2, 8), 28);
        let kept = cache.get_or(Ino(1), 5, || Err::<u64, _>("recomputed"));
        assert_eq!(kept, Ok(15));
        // A value of key 2 computed at 7 that finishes last is given, not kept.
        assert_eq!(get(2, 7), 27);
        let newest = cache.get_or(Ino(2), 8, || Err::<u64, _>("recomputed"));
        assert_eq!(newest, Ok(28));
    }
}
