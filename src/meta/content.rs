//! Content-addressed bytes: content cut into fixed-size chunks stored once each in a chunk
//! store (`chunk/<blake3>`: the store's blob side store, or an S3 bucket), and a manifest per
//! content in the blob side store (`content/<id>`, id = BLAKE3 of all the bytes, committed
//! with the rows that refer to it) listing its chunks. Whole chunks of zeros are holes: never stored, never read, and a
//! content with holes is named by a hash of its manifest instead (`manifest::sparse_id`). Bytes
//! stream in and out chunk by chunk; nothing holds a whole object in memory.

mod manifest;
mod sweep;

use std::fmt;
use std::fs::File;
use std::io::Read;
use std::os::unix::fs::FileExt;
use std::str::FromStr;

use super::{MetaError, Result};
use crate::storage::{ChunkStore, RowRead, RowWrite, Storage, disk};

pub use manifest::{Manifest, Run, sparse_id, zero_chunk};
pub use sweep::{Keeper, Marks};

/// Size of every chunk but the last of a content.
pub const CHUNK_SIZE: usize = 1 << 20;
/// Content past this many bytes has its chunks stored without the write-ahead log and flushed
/// once before its manifest commits: one copy fewer for large objects, while small ones (which
/// would each pay a flush) stay logged.
const UNLOGGED_AFTER: u64 = 8 << 20;
const CHUNK_PREFIX: &str = "chunk/";
const CONTENT_PREFIX: &str = "content/";

/// The address of a content: the BLAKE3 hash of its bytes (shown as 64 lowercase hex digits,
/// the same as `b3sum` prints).
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ContentId([u8; 32]);

impl ContentId {
    /// Returns the id of `bytes`.
    pub fn of(bytes: &[u8]) -> Self {
        ContentId(*blake3::hash(bytes).as_bytes())
    }
}

impl ContentId {
    /// Returns the id whose 32 bytes are `bytes`.
    pub fn from_bytes(bytes: [u8; 32]) -> Self {
        ContentId(bytes)
    }

    /// Returns the id's 32 bytes.
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }
}

impl fmt::Display for ContentId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&blake3::Hash::from_bytes(self.0).to_hex())
    }
}

impl fmt::Debug for ContentId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ContentId({self})")
    }
}

impl FromStr for ContentId {
    type Err = MetaError;
    fn from_str(s: &str) -> Result<Self> {
        if s.len() != 64
            || !s
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
        {
            return Err(MetaError::BadContentId(s.to_string()));
        }
        blake3::Hash::from_hex(s)
            .map(|h| ContentId(*h.as_bytes()))
            .map_err(|_| MetaError::BadContentId(s.to_string()))
    }
}

/// Returns the blob key of the manifest of `id`.
fn manifest_key(id: ContentId) -> String {
    format!("{CONTENT_PREFIX}{id}")
}

/// Returns whether content `id`'s manifest is stored, as `r` (a transaction) reads it.
pub(crate) fn has_manifest(r: &dyn RowRead, id: ContentId) -> Result<bool> {
    Ok(r.blob_has(&manifest_key(id))?)
}

/// Deletes content `id`'s manifest through `w` (a transaction, or the store itself).
pub(crate) fn delete_manifest(w: &dyn RowWrite, id: ContentId) -> Result<()> {
    w.blob_del(&manifest_key(id))?;
    Ok(())
}

fn chunk_key(hash: &[u8; 32]) -> String {
    format!("{CHUNK_PREFIX}{}", blake3::Hash::from_bytes(*hash).to_hex())
}

/// Returns whether `key` names a chunk as [`chunk_key`] makes it: `chunk/` and 64 lowercase
/// hex digits (not a key of some other store's deeper under `chunk/`).
fn is_chunk_key(key: &str) -> bool {
    key.strip_prefix(CHUNK_PREFIX).is_some_and(|hex| {
        hex.len() == 64
            && hex
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    })
}

/// Content being written chunk by chunk ([`ContentStore::write_stream`]): the hash of
/// everything so far (until a hole makes it useless), the chunks as runs, and the bytes of the
/// chunk not full yet.
pub struct ChunkStream {
    whole: Option<blake3::Hasher>,
    buf: Vec<u8>,
    size: u64,
    runs: Vec<Run>,
    /// The hash of every chunk stored, in order (the metastore pins them against gc).
    stored: Vec<[u8; 32]>,
    /// Some chunk was stored without the write-ahead log.
    unlogged: bool,
}

impl Default for ChunkStream {
    fn default() -> Self {
        ChunkStream {
            whole: Some(blake3::Hasher::new()),
            // Grown by the first writes: most streams are small files, and a 1 MiB buffer for
            // each file open for writing would make the daemon's memory grow with open files.
            buf: Vec::new(),
            size: 0,
            runs: Vec::new(),
            stored: Vec::new(),
            unlogged: false,
        }
    }
}

impl ChunkStream {
    /// Returns how many bytes were written so far.
    pub fn len(&self) -> u64 {
        self.size + self.buf.len() as u64
    }

    /// Returns whether nothing was written.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Returns the hashes of the chunks stored so far (holes are not stored).
    pub fn chunk_hashes(&self) -> impl Iterator<Item = &[u8; 32]> {
        self.stored.iter()
    }

    /// Appends `count` whole chunks of zeros without hashing or storing anything.
    fn push_holes(&mut self, count: u64) {
        debug_assert!(self.buf.is_empty());
        manifest::push_run(&mut self.runs, *zero_chunk(), CHUNK_SIZE as u32, count);
        self.size += count * CHUNK_SIZE as u64;
        self.whole = None;
    }
}

/// What a garbage collection freed.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct GcReport {
    /// Contents whose manifests were deleted.
    pub contents: u64,
    /// Chunks deleted.
    pub chunks: u64,
    /// Bytes of chunk data deleted.
    pub bytes: u64,
    /// Contents no version refers to any more that open handles still read: kept, with
    /// their chunks, for a later `gc`.
    pub held: u64,
    /// Contents only past versions refer to: kept, with their chunks, for reads of the
    /// store as it was.
    pub history: u64,
    /// Contents only snapshots older than the history kept show: kept, with their chunks.
    pub snapshots: u64,
    /// Row versions history no longer keeps (dead before the retention, seen by no
    /// snapshot): deleted.
    pub pruned: u64,
}

/// Content-addressed bytes: manifests in a store's blob side store, chunks in a chunk store
/// (a cheap handle: copy it freely).
#[derive(Clone, Copy)]
pub struct ContentStore<'s> {
    store: &'s dyn Storage,
    chunks: &'s dyn ChunkStore,
}

impl<'s> ContentStore<'s> {
    /// Returns the content store of `store`, chunks and all.
    pub fn new(store: &'s dyn Storage) -> Self {
        ContentStore {
            store,
            chunks: store,
        }
    }

    /// Returns the content store with manifests in `store` and chunks in `chunks`.
    pub fn with_chunks(store: &'s dyn Storage, chunks: &'s dyn ChunkStore) -> Self {
        ContentStore { store, chunks }
    }

    /// Reads `reader` to its end, storing every chunk not stored yet (each as its own atomic
    /// write), and returns the manifest. The content is only reachable once the manifest is
    /// committed with [`ContentStore::commit_manifest`]; until then its chunks are garbage that
    /// `gc` may reclaim.
    pub fn write_chunks(
        &self,
        reader: &mut dyn Read,
        progress: &mut dyn FnMut(u64),
    ) -> Result<Manifest> {
        let mut stream = ChunkStream::default();
        let mut buf = vec![0u8; CHUNK_SIZE];
        loop {
            let n = read_full(reader, &mut buf)?;
            self.write_stream(&mut stream, &buf[..n], &mut |_| {})?;
            progress(stream.len());
            if n < CHUNK_SIZE {
                break;
            }
        }
        self.finish_stream(stream, &mut |_| {})
    }

    /// Appends `data` to `stream`, storing every chunk it completes; `before_store(hash)` runs
    /// before a chunk is looked for or stored (the metastore pins it against `gc` there).
    pub fn write_stream(
        &self,
        stream: &mut ChunkStream,
        mut data: &[u8],
        before_store: &mut dyn FnMut(&[u8; 32]),
    ) -> Result<()> {
        while !data.is_empty() {
            if stream.buf.is_empty() && data.len() >= CHUNK_SIZE {
                // A whole chunk in the caller's bytes: no copy.
                self.store_chunk(stream, &data[..CHUNK_SIZE], before_store)?;
                data = &data[CHUNK_SIZE..];
                continue;
            }
            let (n, before) = (
                (CHUNK_SIZE - stream.buf.len()).min(data.len()),
                stream.buf.len(),
            );
            let needed = stream.buf.len() + n;
            if needed > stream.buf.capacity() {
                // Doubling, but never past one chunk.
                let want = needed.max(stream.buf.capacity() * 2).min(CHUNK_SIZE);
                stream.buf.reserve_exact(want - stream.buf.len());
            }
            stream.buf.extend_from_slice(&data[..n]);
            data = &data[n..];
            if stream.buf.len() == CHUNK_SIZE {
                let full = std::mem::take(&mut stream.buf);
                let stored = self.store_chunk(stream, &full, before_store);
                stream.buf = full;
                if let Err(e) = stored {
                    // Bytes accepted before stay buffered; these were not written.
                    stream.buf.truncate(before);
                    return Err(e);
                }
                stream.buf.clear();
            }
        }
        Ok(())
    }

    /// Stores the last, partial chunk of `stream` and returns its manifest.
    pub fn finish_stream(
        &self,
        mut stream: ChunkStream,
        before_store: &mut dyn FnMut(&[u8; 32]),
    ) -> Result<Manifest> {
        if !stream.buf.is_empty() {
            let last = std::mem::take(&mut stream.buf);
            self.store_chunk(&mut stream, &last, before_store)?;
        }
        if stream.unlogged {
            self.chunks.persist_chunks()?;
        }
        let id = match stream.whole {
            Some(whole) if !stream.runs.iter().any(Run::is_hole) => {
                ContentId(*whole.finalize().as_bytes())
            }
            _ => sparse_id(stream.size, &stream.runs),
        };
        Ok(Manifest::new(id, stream.size, stream.runs))
    }

    /// Stores the first `size` bytes of `file` like [`ContentStore::write_chunks`], skipping
    /// its holes: a whole chunk the file has no data in is a hole of the content, neither read
    /// nor hashed, so a sparse file costs what was written into it, not its size.
    pub fn write_file(
        &self,
        file: &File,
        size: u64,
        before_store: &mut dyn FnMut(&[u8; 32]),
    ) -> Result<Manifest> {
        let mut stream = ChunkStream::default();
        let mut buf = vec![0u8; CHUNK_SIZE];
        let chunk = CHUNK_SIZE as u64;
        while stream.len() < size {
            let offset = stream.len();
            let len = chunk.min(size - offset) as usize;
            let data_at = disk::next_data(file, offset)?.unwrap_or(u64::MAX).min(size);
            if len == CHUNK_SIZE && data_at >= offset + chunk {
                stream.push_holes((data_at - offset) / chunk);
                continue;
            }
            file.read_exact_at(&mut buf[..len], offset)?;
            self.write_stream(&mut stream, &buf[..len], before_store)?;
        }
        self.finish_stream(stream, before_store)
    }

    /// Writes `manifest`'s content into `file` (empty), leaving its holes as holes of the file.
    pub fn copy_to_file(&self, manifest: &Manifest, file: &File) -> Result<()> {
        let mut offset = 0u64;
        for run in manifest.runs() {
            if !run.is_hole() {
                let data = self.stored_chunk(manifest, run)?;
                for i in 0..run.count {
                    file.write_all_at(&data, offset + i * u64::from(run.len))?;
                }
            }
            offset += run.count * u64::from(run.len);
        }
        file.set_len(manifest.size)?;
        Ok(())
    }

    fn store_chunk(
        &self,
        stream: &mut ChunkStream,
        piece: &[u8],
        before_store: &mut dyn FnMut(&[u8; 32]),
    ) -> Result<()> {
        // The stream records a piece only once it is stored: a failed store (a full disk)
        // leaves it as it was, its id still the hash of exactly what it lists.
        let hash = *blake3::hash(piece).as_bytes();
        if piece.len() == CHUNK_SIZE && hash == *zero_chunk() {
            stream.push_holes(1);
            return Ok(());
        }
        before_store(&hash);
        stream.stored.push(hash);
        let key = chunk_key(&hash);
        // Past the first chunks, skip the write-ahead log (a second full copy of every
        // byte); the chunks are persisted before the manifest commits.
        let defer = stream.size >= UNLOGGED_AFTER;
        self.chunks.chunk_put(&key, piece, defer)?;
        stream.unlogged |= defer;
        if let Some(whole) = stream.whole.as_mut() {
            whole.update(piece);
        }
        manifest::push_run(&mut stream.runs, hash, piece.len() as u32, 1);
        stream.size += piece.len() as u64;
        Ok(())
    }

    /// Returns the bytes `stream` holds so far, chunk by chunk (for a writer that must turn
    /// its stream into a file it can change anywhere).
    pub fn stream_bytes(&self, stream: &ChunkStream, out: &mut dyn std::io::Write) -> Result<()> {
        for run in &stream.runs {
            let data = match run.is_hole() {
                true => vec![0u8; CHUNK_SIZE],
                false => {
                    let key = chunk_key(&run.hash);
                    match self.chunks.chunk_get(&key)? {
                        Some(data) if data.len() == run.len as usize => data,
                        _ => {
                            return Err(MetaError::Corrupt(format!(
                                "{key} of a stream is missing"
                            )));
                        }
                    }
                }
            };
            for _ in 0..run.count {
                out.write_all(&data)?;
            }
        }
        out.write_all(&stream.buf)?;
        Ok(())
    }

    /// Records `manifest` inside `txn` (the caller's transaction, which also writes the rows
    /// that refer to the content), unless the content is already stored.
    pub fn commit_manifest(txn: &dyn RowWrite, manifest: &Manifest) -> Result<()> {
        let key = manifest_key(manifest.id);
        if !txn.blob_has(&key)? {
            txn.blob_set(&key, &manifest.encode())?;
        }
        Ok(())
    }

    /// Returns the manifest of content `id`.
    pub fn manifest(&self, id: ContentId) -> Result<Manifest> {
        let bytes = self
            .store
            .blob_get(&manifest_key(id))?
            .ok_or(MetaError::NoSuchContent(id))?;
        Manifest::decode(id, &bytes)
    }

    /// Returns whether content `id` is stored.
    pub fn contains(&self, id: ContentId) -> Result<bool> {
        Ok(self.store.blob_has(&manifest_key(id))?)
    }

    /// Copies up to `buf.len()` bytes of `manifest`'s content from `offset` into `buf`; returns
    /// how many (0 at or past the end). Reads only the chunks the range touches.
    pub fn read_at(&self, manifest: &Manifest, offset: u64, buf: &mut [u8]) -> Result<usize> {
        let mut done = 0;
        while done < buf.len() {
            let Some((index, within)) = manifest.locate(offset + done as u64) else {
                break;
            };
            let data = self.chunk(manifest, index)?;
            let n = (data.len() - within).min(buf.len() - done);
            buf[done..done + n].copy_from_slice(&data[within..within + n]);
            done += n;
        }
        Ok(done)
    }

    /// Returns a reader over content `id`, chunk by chunk.
    pub fn reader(&self, id: ContentId) -> Result<ContentReader<'s>> {
        Ok(ContentReader {
            content: *self,
            manifest: self.manifest(id)?,
            pos: 0,
            current: None,
        })
    }

    /// Returns chunk `index` of `manifest` (zeros for a hole); a missing chunk or one of the
    /// wrong length is [`MetaError::Corrupt`] (`verify` also checks the hashes).
    pub fn chunk(&self, manifest: &Manifest, index: u64) -> Result<Vec<u8>> {
        let run = manifest.run_of(index).ok_or_else(|| {
            MetaError::Corrupt(format!("content {} has no chunk {index}", manifest.id))
        })?;
        if run.is_hole() {
            return Ok(vec![0u8; CHUNK_SIZE]);
        }
        // Readers go forward: a chunk store across a network starts fetching the next one.
        if let Some(next) = manifest.run_of(index + 1).filter(|r| !r.is_hole()) {
            self.chunks.prefetch_chunk(&chunk_key(&next.hash));
        }
        self.stored_chunk(manifest, run)
    }

    fn stored_chunk(&self, manifest: &Manifest, run: &Run) -> Result<Vec<u8>> {
        let key = chunk_key(&run.hash);
        match self.chunks.chunk_get(&key)? {
            Some(data) if data.len() == run.len as usize => Ok(data),
            Some(_) => Err(MetaError::Corrupt(format!(
                "{key} of content {} has the wrong length",
                manifest.id
            ))),
            None => Err(MetaError::Corrupt(format!(
                "{key} of content {} is missing",
                manifest.id
            ))),
        }
    }

    /// Checks that every chunk of content `id` exists and hashes to its name, and that the
    /// whole content hashes to `id`; returns the problems found (empty when sound), engine
    /// errors included: one damaged chunk does not hide the others.
    pub fn verify(&self, id: ContentId) -> Result<Vec<String>> {
        let manifest = match self.manifest(id) {
            Ok(m) => m,
            Err(MetaError::Corrupt(e)) => return Ok(vec![e]),
            Err(e) => return Ok(vec![format!("content {id}: its manifest: {e}")]),
        };
        let mut problems = Vec::new();
        let mut whole = (!manifest.has_holes()).then(blake3::Hasher::new);
        for run in manifest.runs().iter().filter(|r| !r.is_hole()) {
            let key = chunk_key(&run.hash);
            match self.chunks.chunk_get(&key) {
                Err(e) => problems.push(format!("content {id}: {key}: {e}")),
                Ok(None) => problems.push(format!("content {id}: {key} is missing")),
                Ok(Some(data))
                    if blake3::hash(&data).as_bytes() != &run.hash
                        || data.len() != run.len as usize =>
                {
                    problems.push(format!("content {id}: {key} does not match its hash"));
                }
                Ok(Some(data)) => {
                    for _ in 0..run.count {
                        whole.iter_mut().for_each(|w| {
                            w.update(&data);
                        });
                    }
                }
            }
        }
        let named = match whole {
            Some(w) => ContentId(*w.finalize().as_bytes()) == id,
            // A content stored before holes existed has its b3sum as id, zero chunks and all.
            None => sparse_id(manifest.size, manifest.runs()) == id || self.b3sum_is(&manifest)?,
        };
        if problems.is_empty() && !named {
            problems.push(format!("content {id}: bytes do not hash to the content id"));
        }
        Ok(problems)
    }

    /// Returns whether the BLAKE3 of all of `manifest`'s bytes, holes read as zeros, is its id.
    fn b3sum_is(&self, manifest: &Manifest) -> Result<bool> {
        let mut whole = blake3::Hasher::new();
        let zeros = vec![0u8; CHUNK_SIZE];
        for run in manifest.runs() {
            let data = match run.is_hole() {
                true => zeros.clone(),
                false => self.stored_chunk(manifest, run)?,
            };
            for _ in 0..run.count {
                whole.update(&data);
            }
        }
        Ok(ContentId(*whole.finalize().as_bytes()) == manifest.id)
    }

    /// Returns the ids of every stored content.
    pub fn ids(&self) -> Result<Vec<ContentId>> {
        let keys = self.store.blob_keys_with_prefix(CONTENT_PREFIX)?;
        keys.iter()
            .map(|k| k[CONTENT_PREFIX.len()..].parse())
            .collect()
    }
}

/// Fills `buf` from `reader` unless the reader ends first; returns how many bytes were read.
fn read_full(reader: &mut dyn Read, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match reader.read(&mut buf[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(n)
}

/// A `Read` over one content that fetches each chunk once, however small the reads.
pub struct ContentReader<'s> {
    content: ContentStore<'s>,
    manifest: Manifest,
    pos: u64,
    current: Option<(u64, Vec<u8>)>,
}

impl ContentReader<'_> {
    /// Returns the content's manifest.
    pub fn manifest(&self) -> &Manifest {
        &self.manifest
    }
}

impl Read for ContentReader<'_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let Some((index, within)) = self.manifest.locate(self.pos) else {
            return Ok(0);
        };
        if self.current.as_ref().is_none_or(|(i, _)| *i != index) {
            let data = self
                .content
                .chunk(&self.manifest, index)
                .map_err(std::io::Error::other)?;
            self.current = Some((index, data));
        }
        let data = &self.current.as_ref().expect("just filled").1;
        let n = (data.len() - within).min(buf.len());
        buf[..n].copy_from_slice(&data[within..within + n]);
        self.pos += n as u64;
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::MemoryStore;

    #[test]
    fn a_stream_holds_no_buffer_until_written_and_pieces_of_any_size_make_the_same_content() {
        let store = MemoryStore::new();
        let content = ContentStore::new(&store);
        assert_eq!(ChunkStream::default().buf.capacity(), 0);
        let bytes: Vec<u8> = (0..(CHUNK_SIZE * 2 + 12_345))
            .map(|i| (i % 251) as u8)
            .collect();
        for piece in [1, 4096, 100_000, CHUNK_SIZE, CHUNK_SIZE + 1] {
            let mut stream = ChunkStream::default();
            for part in bytes.chunks(piece) {
                content
                    .write_stream(&mut stream, part, &mut |_| {})
                    .unwrap();
            }
            assert!(stream.buf.capacity() <= CHUNK_SIZE);
            let manifest = content.finish_stream(stream, &mut |_| {}).unwrap();
            assert_eq!(manifest.id, ContentId::of(&bytes), "pieces of {piece}");
            assert_eq!(manifest.size, bytes.len() as u64);
        }
    }
}
