//! `ChunkStore`: where the chunks of contents live. A store keeps them in its own blob side
//! store by default (every [`Storage`] is a chunk store); a shared store may keep them in an S3
//! bucket instead (`s3.rs`). Keys are content-addressed: one key always names the same bytes.

use super::{KeysVisitor, Result, Storage};

/// A place for chunks: named byte strings that are written once and never changed.
pub trait ChunkStore: Send + Sync {
    /// Returns the bytes of chunk `key`, if stored.
    fn chunk_get(&self, key: &str) -> Result<Option<Vec<u8>>>;

    /// Stores `bytes` as chunk `key` unless it is stored already (by this or any other
    /// writer: the same key is the same bytes, so a concurrent store of it is not an error).
    /// With `defer_durability`, the chunk may stay volatile until
    /// [`ChunkStore::persist_chunks`]; otherwise it is durable on return.
    fn chunk_put(&self, key: &str, bytes: &[u8], defer_durability: bool) -> Result<()>;

    /// Makes every chunk stored so far durable.
    fn persist_chunks(&self) -> Result<()>;

    /// Deletes chunk `key`; returns how many bytes it held (0 if it was not there).
    fn chunk_del(&self, key: &str) -> Result<u64>;

    /// Returns the keys of the stored chunks that start with `prefix`, in byte order.
    fn chunk_keys(&self, prefix: &str) -> Result<Vec<String>>;

    /// Calls `visit(key)` for each stored chunk whose key starts with `prefix`, in no set
    /// order, without collecting them (gc of a store of millions); stops when it returns false.
    /// `visit` must not use the store.
    fn visit_chunk_keys(&self, prefix: &str, visit: &mut KeysVisitor<'_>) -> Result<()> {
        for key in self.chunk_keys(prefix)? {
            if !visit(key)? {
                break;
            }
        }
        Ok(())
    }

    /// Gives back the room of deleted chunks now rather than whenever the engine would.
    fn reclaim_chunk_space(&self) -> Result<()>;

    /// Hints that chunk `key` will be read soon (a sequential reader's next chunk): a store
    /// across a network starts fetching it. The default does nothing.
    fn prefetch_chunk(&self, _key: &str) {}

    /// Checks, before `gc` deletes anything, that these chunks are the store's alone to
    /// reclaim: an S3 content location's owner marker must name the store, and no other
    /// store's location may be inside or around it ([`super::StorageError::SweepRefused`]
    /// otherwise). Chunks in the store's own blob side store are its own: the default checks
    /// nothing.
    fn check_sweep(&self) -> Result<()> {
        Ok(())
    }
}

impl<S: Storage + ?Sized> ChunkStore for S {
    fn chunk_get(&self, key: &str) -> Result<Option<Vec<u8>>> {
        self.blob_get(key)
    }

    fn chunk_put(&self, key: &str, bytes: &[u8], defer_durability: bool) -> Result<()> {
        if self.blob_has(key)? {
            return Ok(());
        }
        match defer_durability {
            true => self.blob_set_unlogged(key, bytes),
            false => self.blob_set(key, bytes),
        }
    }

    fn persist_chunks(&self) -> Result<()> {
        self.persist_blobs()
    }

    fn chunk_del(&self, key: &str) -> Result<u64> {
        match self.blob_del(key) {
            Ok(old) => Ok(old.len() as u64),
            Err(super::StorageError::NoSuchBlob(_)) => Ok(0),
            Err(e) => Err(e),
        }
    }

    fn chunk_keys(&self, prefix: &str) -> Result<Vec<String>> {
        self.blob_keys_with_prefix(prefix)
    }

    fn visit_chunk_keys(&self, prefix: &str, visit: &mut KeysVisitor<'_>) -> Result<()> {
        self.visit_blob_keys_with_prefix(prefix, visit)
    }

    fn reclaim_chunk_space(&self) -> Result<()> {
        self.reclaim_blob_space()
    }
}

/// How many bytes of recently stored chunks [`RecentChunkCache`] holds, at most.
const RECENT_BYTES: usize = 4 << 20;

/// A chunk store across a network with the chunks this process stored last kept in memory
/// (up to 4 MiB, oldest dropped first): a writer reads back the first and last bytes of what
/// it just stored (to type the content, and an Arrow file's footer) without a round trip.
/// Chunks never change under their key, so a kept copy is never stale; a deleted chunk is
/// dropped from it too.
pub struct RecentChunkCache<C: ChunkStore> {
    inner: C,
    recent: std::sync::Mutex<std::collections::VecDeque<(String, Vec<u8>)>>,
}

impl<C: ChunkStore> RecentChunkCache<C> {
    /// Wraps `inner`.
    pub fn new(inner: C) -> Self {
        RecentChunkCache {
            inner,
            recent: std::sync::Mutex::new(std::collections::VecDeque::new()),
        }
    }

    fn recent(&self) -> std::sync::MutexGuard<'_, std::collections::VecDeque<(String, Vec<u8>)>> {
        // Entries are pushed and popped whole: a panic leaves nothing half-made.
        self.recent.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl<C: ChunkStore> ChunkStore for RecentChunkCache<C> {
    fn chunk_get(&self, key: &str) -> Result<Option<Vec<u8>>> {
        if let Some((_, bytes)) = self.recent().iter().find(|(k, _)| k == key) {
            return Ok(Some(bytes.clone()));
        }
        self.inner.chunk_get(key)
    }

    fn chunk_put(&self, key: &str, bytes: &[u8], defer_durability: bool) -> Result<()> {
        self.inner.chunk_put(key, bytes, defer_durability)?;
        let mut recent = self.recent();
        if bytes.len() <= RECENT_BYTES && !recent.iter().any(|(k, _)| k == key) {
            let mut held: usize = recent.iter().map(|(_, b)| b.len()).sum();
            while held + bytes.len() > RECENT_BYTES {
                let Some((_, old)) = recent.pop_front() else {
                    break;
                };
                held -= old.len();
            }
            recent.push_back((key.to_string(), bytes.to_vec()));
        }
        Ok(())
    }

    fn persist_chunks(&self) -> Result<()> {
        self.inner.persist_chunks()
    }

    fn chunk_del(&self, key: &str) -> Result<u64> {
        self.recent().retain(|(k, _)| k != key);
        self.inner.chunk_del(key)
    }

    fn chunk_keys(&self, prefix: &str) -> Result<Vec<String>> {
        self.inner.chunk_keys(prefix)
    }

    fn visit_chunk_keys(&self, prefix: &str, visit: &mut KeysVisitor<'_>) -> Result<()> {
        self.inner.visit_chunk_keys(prefix, visit)
    }

    fn reclaim_chunk_space(&self) -> Result<()> {
        self.inner.reclaim_chunk_space()
    }

    fn prefetch_chunk(&self, key: &str) {
        if !self.recent().iter().any(|(k, _)| k == key) {
            self.inner.prefetch_chunk(key);
        }
    }

    fn check_sweep(&self) -> Result<()> {
        self.inner.check_sweep()
    }
}

impl ChunkStore for Box<dyn ChunkStore> {
    fn chunk_get(&self, key: &str) -> Result<Option<Vec<u8>>> {
        (**self).chunk_get(key)
    }
    fn chunk_put(&self, key: &str, bytes: &[u8], defer_durability: bool) -> Result<()> {
        (**self).chunk_put(key, bytes, defer_durability)
    }
    fn persist_chunks(&self) -> Result<()> {
        (**self).persist_chunks()
    }
    fn chunk_del(&self, key: &str) -> Result<u64> {
        (**self).chunk_del(key)
    }
    fn chunk_keys(&self, prefix: &str) -> Result<Vec<String>> {
        (**self).chunk_keys(prefix)
    }
    fn visit_chunk_keys(&self, prefix: &str, visit: &mut KeysVisitor<'_>) -> Result<()> {
        (**self).visit_chunk_keys(prefix, visit)
    }
    fn reclaim_chunk_space(&self) -> Result<()> {
        (**self).reclaim_chunk_space()
    }
    fn prefetch_chunk(&self, key: &str) {
        (**self).prefetch_chunk(key)
    }
    fn check_sweep(&self) -> Result<()> {
        (**self).check_sweep()
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;
    use std::sync::Mutex;
    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::*;

    /// Chunks in a map, counting the reads that reach it.
    #[derive(Default)]
    struct Counted {
        chunks: Mutex<HashMap<String, Vec<u8>>>,
        gets: AtomicUsize,
    }

    impl ChunkStore for Counted {
        fn chunk_get(&self, key: &str) -> Result<Option<Vec<u8>>> {
            self.gets.fetch_add(1, Ordering::SeqCst);
            Ok(self.chunks.lock().unwrap().get(key).cloned())
        }
        fn chunk_put(&self, key: &str, bytes: &[u8], _: bool) -> Result<()> {
            self.chunks
                .lock()
                .unwrap()
                .insert(key.to_string(), bytes.to_vec());
            Ok(())
        }
        fn persist_chunks(&self) -> Result<()> {
            Ok(())
        }
        fn chunk_del(&self, key: &str) -> Result<u64> {
            let gone = self.chunks.lock().unwrap().remove(key);
            Ok(gone.map_or(0, |b| b.len() as u64))
        }
        fn chunk_keys(&self, _: &str) -> Result<Vec<String>> {
            Ok(self.chunks.lock().unwrap().keys().cloned().collect())
        }
        fn reclaim_chunk_space(&self) -> Result<()> {
            Ok(())
        }
    }

    #[test]
    fn recent_chunks_are_read_back_from_memory_until_pushed_out_or_deleted() {
        let kept = RecentChunkCache::new(Counted::default());
        let gets = || kept.inner.gets.load(Ordering::SeqCst);
        kept.chunk_put("a", b"alpha", false).unwrap();
        assert_eq!(kept.chunk_get("a").unwrap().as_deref(), Some(&b"alpha"[..]));
        assert_eq!(gets(), 0, "read back without reaching the store");
        // Four more chunks of 1 MiB push the oldest out (4 MiB at most).
        for k in ["b", "c", "d", "e"] {
            kept.chunk_put(k, &vec![7u8; 1 << 20], false).unwrap();
        }
        assert_eq!(kept.chunk_get("a").unwrap().as_deref(), Some(&b"alpha"[..]));
        assert_eq!(gets(), 1, "pushed out: read from the store");
        assert_eq!(kept.chunk_get("e").unwrap().map(|b| b.len()), Some(1 << 20));
        assert_eq!(gets(), 1);
        // A deleted chunk is gone from memory as well as from the store.
        assert_eq!(kept.chunk_del("e").unwrap(), 1 << 20);
        assert_eq!(kept.chunk_get("e").unwrap(), None);
        assert_eq!(gets(), 2);
    }
}
