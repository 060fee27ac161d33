//! `ChunkStore`: where the chunks of contents live. A store keeps them in its own blob side
//! store by default (every [`Storage`] is a chunk store); a shared store may keep them in an S3
//! bucket instead (`s3.rs`). Keys are content-addressed: one key always names the same bytes.

use super::{Result, Storage};

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

    /// Gives back the room of deleted chunks now rather than whenever the engine would.
    fn reclaim_chunk_space(&self) -> Result<()>;

    /// Hints that chunk `key` will be read soon (a sequential reader's next chunk): a store
    /// across a network starts fetching it. The default does nothing.
    fn prefetch_chunk(&self, _key: &str) {}
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

    fn reclaim_chunk_space(&self) -> Result<()> {
        self.reclaim_blob_space()
    }
}
