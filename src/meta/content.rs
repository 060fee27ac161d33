//! Content-addressed bytes: content cut into fixed-size chunks stored once each in the blob side
//! store (`chunk/<blake3>`), and a manifest per content (`content/<id>`, id = BLAKE3 of all the
//! bytes) listing its chunks. Bytes stream in and out chunk by chunk; nothing holds a whole
//! object in memory.

use std::collections::HashSet;
use std::fmt;
use std::io::Read;
use std::str::FromStr;

use super::{MetaError, Result};
use crate::storage::{RowWrite, Storage};

/// Size of every chunk but the last of a content.
pub const CHUNK_SIZE: usize = 1 << 20;
/// Content past this many bytes has its chunks stored without the write-ahead log and flushed
/// once before its manifest commits: one copy fewer for large objects, while small ones (which
/// would each pay a flush) stay logged.
const UNLOGGED_AFTER: u64 = 8 << 20;
const CHUNK_PREFIX: &str = "chunk/";
const CONTENT_PREFIX: &str = "content/";
const MANIFEST_VERSION: u8 = 1;
const MANIFEST_HEADER: usize = 1 + 8 + 4;
const MANIFEST_ENTRY: usize = 32 + 4;

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

/// The list of chunks of one content.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Manifest {
    /// The content's id.
    pub id: ContentId,
    /// Total size in bytes.
    pub size: u64,
    /// Each chunk's hash and length, in order.
    pub chunks: Vec<([u8; 32], u32)>,
}

impl Manifest {
    /// Returns the chunk holding byte `offset` and the offset inside it, or `None` past the end.
    pub fn locate(&self, offset: u64) -> Option<(usize, usize)> {
        if offset >= self.size {
            return None;
        }
        // Every chunk but the last is CHUNK_SIZE long (checked at decode), so this is direct.
        let index = (offset / CHUNK_SIZE as u64) as usize;
        Some((index, (offset % CHUNK_SIZE as u64) as usize))
    }

    fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(MANIFEST_HEADER + self.chunks.len() * MANIFEST_ENTRY);
        out.push(MANIFEST_VERSION);
        out.extend_from_slice(&self.size.to_be_bytes());
        out.extend_from_slice(&(self.chunks.len() as u32).to_be_bytes());
        for (hash, len) in &self.chunks {
            out.extend_from_slice(hash);
            out.extend_from_slice(&len.to_be_bytes());
        }
        out
    }

    fn decode(id: ContentId, bytes: &[u8]) -> Result<Self> {
        let bad = || MetaError::Corrupt(format!("manifest of {id} does not decode"));
        let (head, body) = bytes.split_at_checked(MANIFEST_HEADER).ok_or_else(bad)?;
        if head[0] != MANIFEST_VERSION {
            return Err(bad());
        }
        let size = u64::from_be_bytes(head[1..9].try_into().map_err(|_| bad())?);
        let count = u32::from_be_bytes(head[9..13].try_into().map_err(|_| bad())?) as usize;
        if body.len() != count * MANIFEST_ENTRY {
            return Err(bad());
        }
        let chunks: Vec<([u8; 32], u32)> = body
            .chunks_exact(MANIFEST_ENTRY)
            .map(|e| {
                (
                    e[..32].try_into().expect("32 bytes"),
                    u32::from_be_bytes(e[32..].try_into().expect("4 bytes")),
                )
            })
            .collect();
        let full = chunks
            .split_last()
            .is_none_or(|(_, init)| init.iter().all(|c| c.1 as usize == CHUNK_SIZE));
        if !full || chunks.iter().map(|c| u64::from(c.1)).sum::<u64>() != size {
            return Err(bad());
        }
        Ok(Manifest { id, size, chunks })
    }

    /// Returns the blob key of the manifest.
    fn key(id: ContentId) -> String {
        format!("{CONTENT_PREFIX}{id}")
    }
}

fn chunk_key(hash: &[u8; 32]) -> String {
    format!("{CHUNK_PREFIX}{}", blake3::Hash::from_bytes(*hash).to_hex())
}

/// Content being written chunk by chunk ([`ContentStore::write_stream`]): the hash of
/// everything so far, the chunks stored, and the bytes of the chunk not full yet.
pub struct ChunkStream {
    whole: blake3::Hasher,
    buf: Vec<u8>,
    size: u64,
    chunks: Vec<([u8; 32], u32)>,
    /// Some chunk was stored without the write-ahead log.
    unlogged: bool,
}

impl Default for ChunkStream {
    fn default() -> Self {
        ChunkStream {
            whole: blake3::Hasher::new(),
            buf: Vec::with_capacity(CHUNK_SIZE),
            size: 0,
            chunks: Vec::new(),
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

    /// Returns the hashes of the chunks stored so far.
    pub fn chunk_hashes(&self) -> impl Iterator<Item = &[u8; 32]> {
        self.chunks.iter().map(|(h, _)| h)
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
}

/// Content-addressed bytes over a store's blob side store (a cheap handle: copy it freely).
#[derive(Clone, Copy)]
pub struct ContentStore<'s> {
    store: &'s dyn Storage,
}

impl<'s> ContentStore<'s> {
    /// Returns the content store of `store`.
    pub fn new(store: &'s dyn Storage) -> Self {
        ContentStore { store }
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
            let n = (CHUNK_SIZE - stream.buf.len()).min(data.len());
            stream.buf.extend_from_slice(&data[..n]);
            data = &data[n..];
            if stream.buf.len() == CHUNK_SIZE {
                let full = std::mem::take(&mut stream.buf);
                self.store_chunk(stream, &full, before_store)?;
                stream.buf = full;
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
            self.store.persist_blobs()?;
        }
        Ok(Manifest {
            id: ContentId(*stream.whole.finalize().as_bytes()),
            size: stream.size,
            chunks: stream.chunks,
        })
    }

    fn store_chunk(
        &self,
        stream: &mut ChunkStream,
        piece: &[u8],
        before_store: &mut dyn FnMut(&[u8; 32]),
    ) -> Result<()> {
        stream.whole.update(piece);
        let hash = *blake3::hash(piece).as_bytes();
        before_store(&hash);
        let key = chunk_key(&hash);
        if !self.store.blob_has(&key)? {
            if stream.size >= UNLOGGED_AFTER {
                // Past the first chunks, skip the write-ahead log (a second full copy of
                // every byte); the chunks are persisted before the manifest commits.
                self.store.blob_set_unlogged(&key, piece)?;
                stream.unlogged = true;
            } else {
                self.store.blob_set(&key, piece)?;
            }
        }
        stream.chunks.push((hash, piece.len() as u32));
        stream.size += piece.len() as u64;
        Ok(())
    }

    /// Returns the bytes `stream` holds so far, chunk by chunk (for a writer that must turn
    /// its stream into a file it can change anywhere).
    pub fn stream_bytes(&self, stream: &ChunkStream, out: &mut dyn std::io::Write) -> Result<()> {
        for (hash, len) in &stream.chunks {
            let key = chunk_key(hash);
            match self.store.blob_get(&key)? {
                Some(data) if data.len() == *len as usize => out.write_all(&data)?,
                _ => return Err(MetaError::Corrupt(format!("{key} of a stream is missing"))),
            }
        }
        out.write_all(&stream.buf)?;
        Ok(())
    }

    /// Records `manifest` inside `txn` (the caller's transaction, which also writes the rows
    /// that refer to the content), unless the content is already stored.
    pub fn commit_manifest(txn: &dyn RowWrite, manifest: &Manifest) -> Result<()> {
        let key = Manifest::key(manifest.id);
        if !txn.blob_has(&key)? {
            txn.blob_set(&key, &manifest.encode())?;
        }
        Ok(())
    }

    /// Returns the manifest of content `id`.
    pub fn manifest(&self, id: ContentId) -> Result<Manifest> {
        let bytes = self
            .store
            .blob_get(&Manifest::key(id))?
            .ok_or(MetaError::NoSuchContent(id))?;
        Manifest::decode(id, &bytes)
    }

    /// Returns whether content `id` is stored.
    pub fn contains(&self, id: ContentId) -> Result<bool> {
        Ok(self.store.blob_has(&Manifest::key(id))?)
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

    /// Returns chunk `index` of `manifest`; a missing chunk or one of the wrong length is
    /// [`MetaError::Corrupt`] (`verify` also checks the hashes).
    pub fn chunk(&self, manifest: &Manifest, index: usize) -> Result<Vec<u8>> {
        let (hash, len) = &manifest.chunks[index];
        let key = chunk_key(hash);
        match self.store.blob_get(&key)? {
            Some(data) if data.len() == *len as usize => Ok(data),
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
        let mut whole = blake3::Hasher::new();
        for (hash, len) in &manifest.chunks {
            let key = chunk_key(hash);
            match self.store.blob_get(&key) {
                Err(e) => problems.push(format!("content {id}: {key}: {e}")),
                Ok(None) => problems.push(format!("content {id}: {key} is missing")),
                Ok(Some(data))
                    if blake3::hash(&data).as_bytes() != hash || data.len() != *len as usize =>
                {
                    problems.push(format!("content {id}: {key} does not match its hash"));
                }
                Ok(Some(data)) => {
                    whole.update(&data);
                }
            }
        }
        if problems.is_empty() && whole.finalize().as_bytes() != &id.0 {
            problems.push(format!("content {id}: bytes do not hash to the content id"));
        }
        Ok(problems)
    }

    /// Returns the ids of every stored content.
    pub fn ids(&self) -> Result<Vec<ContentId>> {
        let keys = self.store.blob_keys_with_prefix(CONTENT_PREFIX)?;
        keys.iter()
            .map(|k| k[CONTENT_PREFIX.len()..].parse())
            .collect()
    }

    /// Deletes every content not in `live`, then every chunk no remaining content uses and not
    /// in `pinned` (chunks of writes in progress);
    /// `progress(done, total)` counts the contents and chunks examined.
    pub fn collect_garbage(
        &self,
        live: &HashSet<ContentId>,
        pinned: &HashSet<[u8; 32]>,
        progress: &mut dyn FnMut(u64, u64),
    ) -> Result<GcReport> {
        let mut report = GcReport::default();
        let mut used: HashSet<String> = pinned.iter().map(chunk_key).collect();
        let ids = self.ids()?;
        let chunk_keys = self.store.blob_keys_with_prefix(CHUNK_PREFIX)?;
        let total = (ids.len() + chunk_keys.len()) as u64;
        let mut done = 0u64;
        for id in &ids {
            if live.contains(id) {
                let chunks = self.manifest(*id)?.chunks;
                used.extend(chunks.into_iter().map(|(h, _)| chunk_key(&h)));
            } else {
                self.store.blob_del(&Manifest::key(*id))?;
                report.contents += 1;
            }
            done += 1;
            progress(done, total);
        }
        for key in chunk_keys {
            if !used.contains(&key) {
                report.bytes += self.store.blob_del(&key)?.len() as u64;
                report.chunks += 1;
            }
            done += 1;
            progress(done, total);
        }
        Ok(report)
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
    current: Option<(usize, Vec<u8>)>,
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
