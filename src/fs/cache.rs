//! `GenerationCache`: values per inode (listings, a node's rows) kept while the core's change
//! generation has not moved, and dropped as soon as it has.

use std::collections::HashMap;
use std::sync::Mutex;

use super::inode::Ino;

/// Values per inode, each tagged with the generation it was computed at; a value is served
/// only while the generation is the same. At most `capacity` values are kept: a full cache
/// starts over.
pub struct GenerationCache<V> {
    entries: Mutex<HashMap<Ino, (u64, V)>>,
    capacity: usize,
}

impl<V: Clone> GenerationCache<V> {
    /// An empty cache of at most `capacity` values.
    pub fn new(capacity: usize) -> Self {
        GenerationCache {
            entries: Mutex::new(HashMap::new()),
            capacity,
        }
    }

    /// Returns the value of `ino` computed at generation `now`, or computes it with `make`
    /// (outside the lock, so slow computations of different inodes overlap) and keeps it.
    pub fn get_or<E>(
        &self,
        ino: Ino,
        now: u64,
        make: impl FnOnce() -> Result<V, E>,
    ) -> Result<V, E> {
        if let Some((generation, value)) = self.lock().get(&ino)
            && *generation == now
        {
            return Ok(value.clone());
        }
        let value = make()?;
        let mut entries = self.lock();
        entries.retain(|_, (generation, _)| *generation == now);
        if entries.len() >= self.capacity {
            entries.clear(); // The newest value is the one about to be asked for again.
        }
        entries.insert(ino, (now, value.clone()));
        Ok(value)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<Ino, (u64, V)>> {
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
