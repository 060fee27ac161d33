//! `GenerationCache`: values per inode or object (listings, a node's rows) kept while the
//! core's change generation has not moved, and dropped as soon as it has.

use std::collections::HashMap;
use std::hash::Hash;
use std::sync::Mutex;

use super::inode::Ino;

/// Values per key (an inode by default), each tagged with the generation it was computed at;
/// a value is served only while the generation is the same. At most `capacity` values, and
/// values weighing at most `budget` bytes together, are kept: a full cache starts over, and a
/// value heavier than the whole budget is given but not kept.
pub struct GenerationCache<V, K = Ino> {
    entries: Mutex<Entries<K, V>>,
    capacity: usize,
    /// What it keeps, as its metrics say (`listing`, `attributes`, …).
    kind: &'static str,
    /// The most bytes its values may weigh together, and how a value is weighed.
    budget: usize,
    weigh: fn(&V) -> usize,
}

struct Entries<K, V> {
    values: HashMap<K, (u64, V, usize)>,
    /// What the values weigh together.
    bytes: usize,
}

impl<V: Clone, K: Eq + Hash + Copy> GenerationCache<V, K> {
    /// An empty cache of at most `capacity` values of `kind` (what its metrics call them).
    pub fn new(capacity: usize, kind: &'static str) -> Self {
        GenerationCache {
            entries: Mutex::new(Entries {
                values: HashMap::new(),
                bytes: 0,
            }),
            capacity,
            kind,
            budget: usize::MAX,
            weigh: |_| 0,
        }
    }

    /// The cache, its values weighing at most `budget` bytes together as `weigh` weighs them.
    pub fn with_budget(self, budget: usize, weigh: fn(&V) -> usize) -> Self {
        GenerationCache {
            budget,
            weigh,
            ..self
        }
    }

    /// Returns the value of `key` computed at generation `now` (the generation of what the
    /// value reads: always the same counters for one key), or computes it with `make`
    /// (outside the lock, so slow computations of different keys overlap) and keeps it.
    pub fn get_or<E>(&self, key: K, now: u64, make: impl FnOnce() -> Result<V, E>) -> Result<V, E> {
        if let Some((generation, value, _)) = self.lock().values.get(&key)
            && *generation == now
        {
            crate::meters::count_kept(self.kind, true);
            return Ok(value.clone());
        }
        crate::meters::count_kept(self.kind, false);
        let value = make()?;
        let weight = (self.weigh)(&value);
        if weight > self.budget {
            return Ok(value);
        }
        let mut entries = self.lock();
        match entries.values.get(&key) {
            // Computed before a change another value of the key was made after.
            Some((newer, _, _)) if *newer > now => return Ok(value),
            Some(_) => {}
            None if entries.values.len() >= self.capacity => entries.start_over(),
            None => {}
        }
        if let Some((_, _, old)) = entries.values.remove(&key) {
            entries.bytes -= old;
        }
        if entries.bytes + weight > self.budget {
            entries.start_over();
        }
        entries.bytes += weight;
        entries.values.insert(key, (now, value.clone(), weight));
        Ok(value)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Entries<K, V>> {
        self.entries.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl<K, V> Entries<K, V> {
    /// Drops every value: the newest, about to be kept, is the one asked for again next.
    fn start_over(&mut self) {
        self.values.clear();
        self.bytes = 0;
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
    fn values_keep_to_the_byte_budget_and_one_heavier_than_it_is_not_kept() {
        let cache: GenerationCache<Vec<u8>> =
            GenerationCache::new(100, "test").with_budget(10, |v| v.len());
        let get = |ino: u64, now: u64, len: usize| {
            (cache.get_or(Ino(ino), now, || Ok::<_, ()>(vec![0; len]))).unwrap()
        };
        let kept = |ino: u64, now: u64| cache.get_or(Ino(ino), now, || Err(())).is_ok();
        get(1, 0, 4);
        get(2, 0, 4);
        assert!(kept(1, 0) && kept(2, 0), "8 bytes of 10 kept");
        get(3, 0, 4); // 12 > 10: starts over with 3 alone.
        assert!(kept(3, 0) && !kept(1, 0) && !kept(2, 0));
        assert_eq!(get(4, 0, 11).len(), 11, "given");
        assert!(
            !kept(4, 0) && kept(3, 0),
            "too heavy to keep, and the others stay"
        );
        get(3, 1, 9); // Replaces 3's 4 bytes: 9 of 10, nothing else dropped for it.
        get(5, 1, 1);
        assert!(kept(3, 1) && kept(5, 1), "10 of 10");
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
