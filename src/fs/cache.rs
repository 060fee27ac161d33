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
}

struct Entries<K, V> {
    values: HashMap<K, (u64, V)>,
    /// The generation the values were last pruned at: values of older ones are dropped once
    /// per generation, not at every insert.
    pruned: u64,
}

impl<V: Clone, K: Eq + Hash + Copy> GenerationCache<V, K> {
    /// An empty cache of at most `capacity` values.
    pub fn new(capacity: usize) -> Self {
        GenerationCache {
            entries: Mutex::new(Entries {
                values: HashMap::new(),
                pruned: 0,
            }),
            capacity,
        }
    }

    /// Returns the value of `ino` computed at generation `now`, or computes it with `make`
    /// (outside the lock, so slow computations of different inodes overlap) and keeps it.
    pub fn get_or<E>(&self, key: K, now: u64, make: impl FnOnce() -> Result<V, E>) -> Result<V, E> {
        if let Some((generation, value)) = self.lock().values.get(&key)
            && *generation == now
        {
            return Ok(value.clone());
        }
        let value = make()?;
        let mut entries = self.lock();
        if now < entries.pruned {
            return Ok(value); // Computed before a change another value was made after.
        }
        if now > entries.pruned {
            entries
                .values
                .retain(|_, (generation, _)| *generation == now);
            entries.pruned = now;
        }
        if entries.values.len() >= self.capacity {
            entries.values.clear(); // The newest value is the one about to be asked for again.
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
        let cache = GenerationCache::new(2);
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
}
