//! Open files. A handle reading committed content fetches whole chunks and keeps the last few;
//! a handle that writes gets a private staging file (an unnamed temporary file in the store's
//! `staging/` directory) holding the whole object as this writer sees it, and `flush` (every
//! `close`) commits it as a new version. Two writers never mix bytes: each commits its own
//! whole copy, and the last to close wins. A file created and not yet committed is "pending":
//! visible in its directory, with its uuid already chosen.

use std::collections::{HashMap, VecDeque};
use std::fs::File;
use std::io::{Read, Write};
use std::os::unix::fs::FileExt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use super::attr::{Attr, Defaults, Kind};
use super::inode::{Ino, Node};
use super::{FsCore, FsError, FsResult, ReadBytes};
use crate::meta::{ChunkStream, ContentId, Manifest, MetaError, ObjectId, ObjectPath, prop};
use crate::storage::{Storage, Valu, now_millis};

/// How many chunks a reading handle keeps (the kernel reads ahead by up to a few chunks).
const KEPT_CHUNKS: usize = 4;

/// A file or directory handle number.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Fh(pub u64);

/// What an `open` asks for.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct OpenFlags {
    /// Opened for writing (`O_WRONLY` or `O_RDWR`).
    pub write: bool,
    /// `O_TRUNC`.
    pub truncate: bool,
}

/// What `open` and `create` return.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Opened {
    /// The handle.
    pub fh: Fh,
    /// Whether the kernel may keep the pages it cached at earlier opens (the content has not
    /// changed since).
    pub keep_cache: bool,
}

struct Staging {
    file: File,
    size: u64,
}

struct FileHandle {
    id: ObjectId,
    ino: Ino,
    writable: bool,
    /// The committed content this handle reads while it has not written.
    base: Option<Arc<Manifest>>,
    /// The last chunks read from `base`, newest last.
    chunks: VecDeque<(usize, Arc<Vec<u8>>)>,
    staging: Option<Staging>,
    /// The bytes of a writer that has only appended to an empty file so far (`cp`, `>`,
    /// pyarrow): stored chunk by chunk as they arrive, with no staging copy. The first write
    /// elsewhere, read or truncation turns it into a staging file.
    stream: Option<ChunkStream>,
    /// Something to commit: bytes written, a truncation, or a file just created.
    dirty: bool,
    /// Bytes were written or the size set through this handle since its last commit (a
    /// handle only created or opened with `O_TRUNC` commits at release, not at each close:
    /// a shell's `>` closes a duplicate descriptor before it writes).
    wrote: bool,
    /// When the bytes this handle will commit last changed (epoch ms): the version's time.
    changed: i64,
}

struct Pending {
    path: ObjectPath,
    created: i64,
    /// Rows `chmod`/`chown`/`utimens` set before the first commit.
    rows: Vec<(String, Valu, i64)>,
}

/// Every open file and directory handle, and the files created but not committed yet.
#[derive(Default)]
pub struct OpenFiles {
    next: AtomicU64,
    handles: Mutex<HashMap<u64, Arc<Mutex<FileHandle>>>>,
    /// How many handles each object has open (asked on every release and unlink, so it must
    /// not wait for a handle busy committing a large file).
    open_counts: Mutex<HashMap<ObjectId, usize>>,
    dirs: Mutex<HashMap<u64, Arc<Vec<super::DirEntry>>>>,
    pending: Mutex<HashMap<ObjectId, Pending>>,
    /// Size of the latest uncommitted write per object (what `stat` shows meanwhile).
    written: Mutex<HashMap<ObjectId, (u64, i64)>>,
    /// The content each object had when the kernel last cached it.
    cached: Mutex<HashMap<ObjectId, ContentId>>,
    /// Objects unlinked while open: what `fstat` shows until their last handle closes.
    orphans: Mutex<HashMap<ObjectId, Attr>>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl OpenFiles {
    fn new_fh(&self) -> u64 {
        self.next.fetch_add(1, Ordering::Relaxed) + 1
    }

    fn handle(&self, fh: Fh) -> FsResult<Arc<Mutex<FileHandle>>> {
        lock(&self.handles)
            .get(&fh.0)
            .cloned()
            .ok_or(FsError::BadHandle)
    }

    /// Returns the uuid of the file created at `path` and not committed yet.
    pub fn pending_at(&self, path: &ObjectPath) -> Option<ObjectId> {
        lock(&self.pending)
            .iter()
            .find(|(_, p)| &p.path == path)
            .map(|(id, _)| *id)
    }

    /// Returns the names and uuids of the pending files directly in directory `dir` (a job
    /// directory when `dir.name` is empty, else that folder).
    pub fn pending_in(&self, dir: &ObjectPath) -> Vec<(String, ObjectId)> {
        lock(&self.pending)
            .iter()
            .filter_map(|(id, p)| {
                let same_job = p.path.dataset == dir.dataset
                    && p.path.partition == dir.partition
                    && p.path.job == dir.job;
                let (folder, name) = p.path.name.rsplit_once('/').unwrap_or(("", &p.path.name));
                (same_job && folder == dir.name).then(|| (name.to_string(), *id))
            })
            .collect()
    }

    /// Returns the attributes of pending file `id`, or `None` if it is not pending.
    pub fn pending_attr(&self, id: ObjectId, ino: Ino, defaults: &Defaults) -> Option<Attr> {
        let pending = lock(&self.pending);
        let p = pending.get(&id)?;
        let mut rows = vec![crate::storage::Row::new(
            &id.iden(),
            prop::CREATED,
            p.created,
            p.created,
        )];
        rows.extend(
            p.rows
                .iter()
                .map(|(k, v, t)| crate::storage::Row::new(&id.iden(), k, v.clone(), *t)),
        );
        let mut attr = defaults.attr(ino, Kind::File, &rows, Some(0));
        if let Some(w) = self.written(id) {
            apply_written(&mut attr, w);
        }
        Some(attr)
    }

    /// Returns the size and time (epoch ms) of the latest uncommitted change to `id`, if any.
    pub fn written(&self, id: ObjectId) -> Option<(u64, i64)> {
        lock(&self.written).get(&id).copied()
    }

    /// Returns the rows recorded for pending file `id` (`None` if it is not pending).
    pub fn pending_rows(&self, id: ObjectId) -> Option<Vec<(String, Valu)>> {
        lock(&self.pending).get(&id).map(|p| {
            p.rows
                .iter()
                .map(|(k, v, _)| (k.clone(), v.clone()))
                .collect()
        })
    }

    /// Returns when pending file `id` was created.
    fn pending_created(&self, id: ObjectId) -> Option<i64> {
        lock(&self.pending).get(&id).map(|p| p.created)
    }

    /// Records that handle `h` now holds `size` bytes, changed at `time`.
    fn touch(&self, h: &mut FileHandle, size: u64, time: i64) {
        h.changed = time;
        lock(&self.written).insert(h.id, (size, time));
    }

    /// Returns the path of pending file `id`.
    pub fn pending_path(&self, id: ObjectId) -> Option<ObjectPath> {
        lock(&self.pending).get(&id).map(|p| p.path.clone())
    }

    /// Moves pending file `id` to `path`; returns whether it was pending.
    pub fn move_pending(&self, id: ObjectId, path: &ObjectPath) -> bool {
        match lock(&self.pending).get_mut(&id) {
            Some(p) => {
                p.path = path.clone();
                true
            }
            None => false,
        }
    }

    /// Moves the pending files under folder `from` to the same places under `to`.
    pub fn move_pending_under(&self, from: &ObjectPath, to: &ObjectPath) {
        for p in lock(&self.pending).values_mut() {
            let same_job = (p.path.dataset, &p.path.partition, p.path.job)
                == (from.dataset, &from.partition, from.job);
            if let Some(rest) = p.path.name.strip_prefix(&format!("{}/", from.name))
                && same_job
            {
                p.path = ObjectPath::new(
                    to.dataset,
                    &to.partition,
                    to.job,
                    &format!("{}/{rest}", to.name),
                );
            }
        }
    }

    /// Forgets pending file `id` (unlinked before its first commit); returns whether it was.
    pub fn drop_pending(&self, id: ObjectId) -> bool {
        lock(&self.pending).remove(&id).is_some()
    }

    /// Records (or with `None` forgets) a row for pending file `id` to write at its first
    /// commit; returns whether `id` is pending.
    pub fn pending_row(&self, id: ObjectId, p: &str, valu: Option<Valu>) -> bool {
        match lock(&self.pending).get_mut(&id) {
            Some(pending) => {
                pending.rows.retain(|(k, _, _)| k != p);
                pending
                    .rows
                    .extend(valu.map(|v| (p.to_string(), v, now_millis())));
                true
            }
            None => false,
        }
    }

    /// Returns whether some handle has `id` open.
    pub fn is_open(&self, id: ObjectId) -> bool {
        lock(&self.open_counts).contains_key(&id)
    }

    /// Adds handle `h` (open on object `id`) under number `fh`.
    fn insert(&self, fh: u64, id: ObjectId, h: FileHandle) {
        *lock(&self.open_counts).entry(id).or_default() += 1;
        lock(&self.handles).insert(fh, Arc::new(Mutex::new(h)));
    }

    /// Counts one handle fewer open on `id`; returns whether none is left.
    fn closed(&self, id: ObjectId) -> bool {
        let mut counts = lock(&self.open_counts);
        match counts.get_mut(&id) {
            Some(n) if *n > 1 => {
                *n -= 1;
                false
            }
            _ => {
                counts.remove(&id);
                true
            }
        }
    }

    /// Moves one open handle's count from `old` to `new` (its object changed identity).
    fn moved(&self, old: ObjectId, new: ObjectId) {
        self.closed(old);
        *lock(&self.open_counts).entry(new).or_default() += 1;
    }

    /// Records what `fstat` shows of `id`, unlinked while open (link count 0).
    pub fn orphan(&self, id: ObjectId, mut attr: Attr) {
        attr.nlink = 0;
        lock(&self.orphans).insert(id, attr);
    }

    /// Returns the attributes of `id` if it was unlinked while open.
    pub fn orphan_attr(&self, id: ObjectId) -> Option<Attr> {
        let mut attr = lock(&self.orphans).get(&id).cloned()?;
        if let Some(w) = self.written(id) {
            apply_written(&mut attr, w);
        }
        Some(attr)
    }

    /// Returns the open writable handles of `id`.
    fn writers_of(&self, id: ObjectId) -> Vec<Arc<Mutex<FileHandle>>> {
        let handles: Vec<_> = lock(&self.handles).values().cloned().collect();
        handles
            .into_iter()
            .filter(|h| {
                let h = lock(h);
                h.id == id && h.writable
            })
            .collect()
    }

    /// Stores a directory listing for handle `fh`.
    pub fn set_listing(&self, fh: Fh, entries: Arc<Vec<super::DirEntry>>) {
        lock(&self.dirs).insert(fh.0, entries);
    }

    /// Returns the listing of directory handle `fh`, if one was taken.
    pub fn listing(&self, fh: Fh) -> Option<Arc<Vec<super::DirEntry>>> {
        lock(&self.dirs).get(&fh.0).cloned()
    }

    /// Opens a directory handle.
    pub fn open_dir(&self) -> Fh {
        Fh(self.new_fh())
    }

    /// Forgets directory handle `fh`.
    pub fn release_dir(&self, fh: Fh) {
        lock(&self.dirs).remove(&fh.0);
    }
}

/// A `Read` over the first `end` bytes of a staging file, by position (`pread`).
struct StagedReader<'f> {
    file: &'f File,
    pos: u64,
    end: u64,
}

impl Read for StagedReader<'_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let want = buf.len().min((self.end - self.pos) as usize);
        if want == 0 {
            return Ok(0);
        }
        let n = self.file.read_at(&mut buf[..want], self.pos)?;
        self.pos += n as u64;
        Ok(n)
    }
}

impl<S: Storage> FsCore<S> {
    fn new_staging(&self) -> FsResult<Staging> {
        Ok(Staging {
            file: tempfile::tempfile_in(&self.options.staging_dir)?,
            size: 0,
        })
    }

    /// Opens file `ino`.
    pub fn open(&self, ino: Ino, flags: OpenFlags) -> FsResult<Opened> {
        let node = self.node(ino)?;
        if node.is_dir() {
            return Err(if flags.write {
                FsError::IsDir
            } else {
                FsError::BadHandle
            });
        }
        let Node::Object(id) = node else {
            if flags.write {
                return Err(if self.options.read_only {
                    FsError::ReadOnly
                } else {
                    FsError::NotPermitted
                });
            }
            return self.open_immutable(ino, &node);
        };
        if flags.write {
            self.writable()?;
        }
        let base = match self.files.pending_path(id) {
            Some(_) => None,
            None => Some(Arc::new(
                self.meta
                    .content()
                    .manifest(self.meta.object_by_id(id)?.content)?,
            )),
        };
        let keep_cache = match &base {
            Some(m) => lock(&self.files.cached).insert(id, m.id) == Some(m.id),
            None => false,
        };
        let mut handle = FileHandle {
            id,
            ino,
            writable: flags.write,
            base,
            chunks: VecDeque::new(),
            staging: None,
            stream: None,
            dirty: false,
            wrote: false,
            changed: now_millis(),
        };
        if flags.write && flags.truncate {
            handle.stream = Some(ChunkStream::default());
            handle.dirty = true;
            let at = self.files.pending_created(id).unwrap_or(handle.changed);
            self.files.touch(&mut handle, 0, at);
        }
        let fh = self.files.new_fh();
        self.files.insert(fh, handle.id, handle);
        Ok(Opened {
            fh: Fh(fh),
            keep_cache: keep_cache && !flags.truncate,
        })
    }

    /// Opens a read-only file: a menu, a configuration or a content by its id.
    fn open_immutable(&self, ino: Ino, node: &Node) -> FsResult<Opened> {
        let content = match node {
            Node::Content(id) => *id,
            _ => {
                let rows = self.rows_of(node)?;
                let row = rows
                    .iter()
                    .find(|r| r.prop == prop::CONTENT)
                    .ok_or(FsError::NotFound)?;
                row.valu.to_string().parse()?
            }
        };
        let handle = FileHandle {
            id: ObjectId::random(), // Never committed: the handle is read-only.
            ino,
            writable: false,
            base: Some(Arc::new(self.meta.content().manifest(content)?)),
            chunks: VecDeque::new(),
            staging: None,
            stream: None,
            dirty: false,
            wrote: false,
            changed: 0,
        };
        let fh = self.files.new_fh();
        self.files.insert(fh, handle.id, handle);
        Ok(Opened {
            fh: Fh(fh),
            keep_cache: true,
        })
    }

    /// Creates file `name` in job directory `parent` and opens it for writing. The file is
    /// visible at once; its first version is committed when it is closed.
    pub fn create(&self, parent: Ino, name: &str) -> FsResult<(Attr, Opened)> {
        let _change = self.change();
        self.writable()?;
        check_name(name)?;
        let dir = self.node(parent)?;
        let Some(path) = super::in_dir(&dir, name) else {
            return Err(if dir.is_dir() {
                FsError::NotPermitted
            } else {
                FsError::NotDir
            });
        };
        if self.meta.object_id_at(&path)?.is_some()
            || self.meta.has_folder(&path)?
            || self.files.pending_at(&path).is_some()
        {
            return Err(FsError::Exists);
        }
        let id = ObjectId::random();
        let now = now_millis();
        lock(&self.files.pending).insert(
            id,
            Pending {
                path,
                created: now,
                rows: Vec::new(),
            },
        );
        self.dir_changed(parent);
        let ino = self.inodes.ino(&Node::Object(id));
        let opened = self.open(
            ino,
            OpenFlags {
                write: true,
                truncate: true,
            },
        )?;
        Ok((self.getattr(ino)?, opened))
    }

    /// Reads up to `size` bytes at `offset`.
    pub fn read(&self, fh: Fh, offset: u64, size: u32) -> FsResult<ReadBytes> {
        let handle = self.files.handle(fh)?;
        let mut h = lock(&handle);
        if h.stream.is_some() {
            self.stage(&mut h)?; // Reading back what is being written: keep it in a file.
        }
        if let Some(staging) = &h.staging {
            let len = (size as u64).min(staging.size.saturating_sub(offset)) as usize;
            let mut buf = vec![0u8; len];
            let mut done = 0;
            while done < len {
                let n = staging
                    .file
                    .read_at(&mut buf[done..], offset + done as u64)?;
                if n == 0 {
                    break;
                }
                done += n;
            }
            buf.truncate(done);
            return Ok(ReadBytes::Owned(buf));
        }
        let Some(manifest) = h.base.clone() else {
            return Ok(ReadBytes::Owned(Vec::new()));
        };
        drop(h);
        self.read_committed(&handle, &manifest, offset, size as usize)
    }

    /// Reads up to `size` bytes at `offset` of committed content: a range of one chunk is
    /// returned as it is, a read across chunks is copied together.
    fn read_committed(
        &self,
        handle: &Mutex<FileHandle>,
        manifest: &Manifest,
        offset: u64,
        size: usize,
    ) -> FsResult<ReadBytes> {
        let Some((index, within)) = manifest.locate(offset) else {
            return Ok(ReadBytes::Owned(Vec::new()));
        };
        let first = self.chunk_of(handle, manifest, index)?;
        if first.len() - within >= size || index + 1 == manifest.chunks.len() {
            let end = within + size.min(first.len() - within);
            return Ok(ReadBytes::Shared(first, within..end));
        }
        let mut out = Vec::with_capacity(size);
        out.extend_from_slice(&first[within..]);
        let mut pos = offset + out.len() as u64;
        while out.len() < size {
            let Some((index, within)) = manifest.locate(pos) else {
                break;
            };
            let data = self.chunk_of(handle, manifest, index)?;
            let n = (data.len() - within).min(size - out.len());
            out.extend_from_slice(&data[within..within + n]);
            pos += n as u64;
        }
        Ok(ReadBytes::Owned(out))
    }

    /// Returns chunk `index` of `manifest` for `handle`: from the handle's last chunks, or
    /// fetched without holding the handle, so the kernel's parallel read-ahead requests fetch
    /// different chunks at the same time.
    fn chunk_of(
        &self,
        handle: &Mutex<FileHandle>,
        manifest: &Manifest,
        index: usize,
    ) -> FsResult<Arc<Vec<u8>>> {
        if let Some((_, data)) = lock(handle).chunks.iter().find(|(i, _)| *i == index) {
            return Ok(data.clone());
        }
        let data = Arc::new(self.meta.content().chunk(manifest, index)?);
        let mut h = lock(handle);
        if !h.chunks.iter().any(|(i, _)| *i == index) {
            h.chunks.push_back((index, data.clone()));
            if h.chunks.len() > KEPT_CHUNKS {
                h.chunks.pop_front();
            }
        }
        Ok(data)
    }

    /// Makes sure handle `h` has its staging file, holding the committed bytes it started from.
    fn stage(&self, h: &mut FileHandle) -> FsResult<()> {
        if h.staging.is_some() {
            return Ok(());
        }
        let mut staging = self.new_staging()?;
        if let Some(stream) = h.stream.take() {
            let copied = {
                let mut writer = std::io::BufWriter::with_capacity(1 << 20, &staging.file);
                self.meta
                    .content()
                    .stream_bytes(&stream, &mut writer)
                    .and_then(|()| writer.flush().map_err(MetaError::from))
            };
            staging.size = stream.len();
            self.meta.drop_stream(stream);
            copied?;
        } else if let Some(manifest) = &h.base {
            let mut reader = self.meta.content().reader(manifest.id)?;
            let mut writer = std::io::BufWriter::with_capacity(1 << 20, &staging.file);
            staging.size = std::io::copy(&mut reader, &mut writer)?;
            drop(writer);
        }
        h.staging = Some(staging);
        Ok(())
    }

    /// Writes `data` at `offset`; returns how many bytes were written.
    pub fn write(&self, fh: Fh, offset: u64, data: &[u8]) -> FsResult<usize> {
        let _change = self.change();
        let handle = self.files.handle(fh)?;
        let mut h = lock(&handle);
        if !h.writable {
            return Err(FsError::BadHandle);
        }
        if let Some(stream) = h.stream.as_mut()
            && offset == stream.len()
        {
            self.meta.stream_write(stream, data)?;
            let size = stream.len();
            (h.dirty, h.wrote) = (true, true);
            self.files.touch(&mut h, size, now_millis());
            return Ok(data.len());
        }
        self.stage(&mut h)?;
        let staging = h.staging.as_mut().expect("staged");
        staging.file.write_all_at(data, offset)?;
        staging.size = staging.size.max(offset + data.len() as u64);
        let size = staging.size;
        (h.dirty, h.wrote) = (true, true);
        self.files.touch(&mut h, size, now_millis());
        Ok(data.len())
    }

    /// Sets the size of what handle `h` will commit.
    fn truncate_handle(&self, h: &mut FileHandle, size: u64) -> FsResult<()> {
        let _change = self.change();
        self.stage(h)?;
        let staging = h.staging.as_mut().expect("staged");
        staging.file.set_len(size)?;
        staging.size = size;
        (h.dirty, h.wrote) = (true, true);
        self.files.touch(h, size, now_millis());
        Ok(())
    }

    /// Truncates through handle `fh` (ftruncate), or else every open writer of `ino`, or else
    /// commits a truncated copy as a new version at once.
    pub(super) fn truncate(&self, ino: Ino, fh: Option<Fh>, size: u64) -> FsResult<()> {
        self.writable()?;
        let Node::Object(id) = self.node(ino)? else {
            return Err(FsError::NotPermitted);
        };
        if let Some(handle) = fh.and_then(|fh| self.files.handle(fh).ok()) {
            let mut h = lock(&handle);
            if h.writable {
                return self.truncate_handle(&mut h, size);
            }
        }
        let writers = self.files.writers_of(id);
        if !writers.is_empty() {
            for w in writers {
                self.truncate_handle(&mut lock(&w), size)?;
            }
            return Ok(());
        }
        let opened = self.open(
            ino,
            OpenFlags {
                write: true,
                truncate: false,
            },
        )?;
        let result = (|| {
            let handle = self.files.handle(opened.fh)?;
            let mut h = lock(&handle);
            self.truncate_handle(&mut h, size)?;
            self.commit(&mut h)
        })();
        self.release(opened.fh)?;
        result
    }

    /// Commits what handle `h` has written as the object's new version. An object unlinked
    /// (or replaced by a rename) meanwhile takes nothing: its writes vanish with it.
    fn commit(&self, h: &mut FileHandle) -> FsResult<()> {
        let _change = self.change();
        if !h.dirty {
            return Ok(());
        }
        let pending = self.files.pending_path(h.id);
        let path = match pending.clone() {
            Some(p) => p,
            None => match self.meta.object_by_id(h.id) {
                Ok(m) => m.path,
                Err(MetaError::NoSuchObject(_)) => {
                    h.dirty = false;
                    if let Some(stream) = h.stream.take() {
                        self.meta.drop_stream(stream);
                    }
                    lock(&self.files.written).remove(&h.id);
                    return Ok(());
                }
                Err(e) => return Err(e.into()),
            },
        };
        let meta = match (h.stream.take(), &h.staging) {
            (Some(stream), _) => {
                // The stream is spent either way: a failed commit loses these writes (close
                // reports the error).
                h.dirty = false;
                let (meta, manifest) = self.meta.put_stream(&path, h.id, stream, h.changed)?;
                h.base = Some(Arc::new(manifest));
                meta
            }
            (None, Some(staging)) => {
                let mut reader = StagedReader {
                    file: &staging.file,
                    pos: 0,
                    end: staging.size,
                };
                self.meta
                    .put_object_prefer_id(&path, h.id, &mut reader, h.changed)?
            }
            (None, None) => return Err(FsError::BadHandle),
        };
        if meta.id != h.id {
            // Another writer made an object at this path first: ours became its new version.
            self.inodes.rebind(h.ino, Node::Object(meta.id));
            self.files.moved(h.id, meta.id);
            h.id = meta.id;
        }
        if pending.is_some()
            && let Some(p) = lock(&self.files.pending).remove(&h.id)
        {
            let rows: Vec<(&str, Valu, i64)> = p
                .rows
                .iter()
                .map(|(k, v, t)| (k.as_str(), v.clone(), *t))
                .collect();
            if !rows.is_empty() {
                self.meta.set_node_rows(&h.id.iden(), &rows, true)?;
            }
        }
        lock(&self.files.cached).insert(h.id, meta.content);
        lock(&self.files.written).remove(&h.id);
        (h.dirty, h.wrote) = (false, false);
        Ok(())
    }

    /// Commits handle `fh`'s writes (every `close` calls this): durable when it returns.
    pub fn flush(&self, fh: Fh) -> FsResult<()> {
        let handle = self.files.handle(fh)?;
        let mut h = lock(&handle);
        if !h.wrote {
            return Ok(()); // Created or truncated only: committed at release.
        }
        self.commit(&mut h)
    }

    /// Commits handle `fh`'s writes and makes them survive a crash of the machine.
    pub fn fsync(&self, fh: Fh) -> FsResult<()> {
        let handle = self.files.handle(fh)?;
        self.commit(&mut lock(&handle))?;
        Ok(self.meta.storage().sync()?)
    }

    /// Closes handle `fh` for good, committing what it has not committed yet.
    pub fn release(&self, fh: Fh) -> FsResult<()> {
        let handle = lock(&self.files.handles)
            .remove(&fh.0)
            .ok_or(FsError::BadHandle)?;
        let mut h = lock(&handle);
        let result = self.commit(&mut h);
        let id = h.id;
        drop(h);
        if self.files.closed(id) {
            lock(&self.files.orphans).remove(&id);
        }
        result
    }
}

/// Shows an uncommitted change in `attr`: its size, and its time as mtime (and ctime).
pub(super) fn apply_written(attr: &mut Attr, (size, time): (u64, i64)) {
    let t = super::attr::time_of_millis(time);
    attr.size = size;
    attr.mtime = t;
    attr.ctime = attr.ctime.max(t);
}

/// Checks an object name for `create`, `rename` and `mkdir`.
pub(super) fn check_name(name: &str) -> FsResult<()> {
    if name.len() > crate::meta::names::MAX_NAME_BYTES {
        return Err(FsError::NameTooLong);
    }
    crate::meta::names::check_component("name", name)?;
    Ok(())
}
