//! Open files. A read-only handle reads the version committed when it opened, fetching whole
//! chunks and keeping the last few; the writable handles of one object share its working copy
//! (`working.rs`), and `flush` (every `close`) of one that wrote commits the copy as a new
//! version. A file created and not yet committed is "pending": visible in its directory, with
//! its uuid already chosen.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

mod read;

use super::attr::Attr;
use super::in_past;
use super::inode::{Ino, TreeNode};
use super::working::{SharedCopy, WorkingCopy};
use super::{FsCore, FsError, FsResult};
use crate::meta::{HeldManifest, MetaError, Metastore, ObjectId, prop};
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
#[derive(Debug)]
pub struct Opened {
    /// The handle.
    pub fh: Fh,
    /// Whether the kernel may keep the pages it cached at earlier opens (a content that never
    /// changes: menus, configurations, `objects/<id>`).
    pub keep_cache: bool,
    /// Whether the kernel must bypass its page cache for this handle (every object handle: a
    /// writer's bytes are not a version yet, and a reader reads the version it opened).
    pub direct_io: bool,
    /// Whether the handle is a stream, without offsets or seeking (`.cronusfs/accesslog`).
    pub stream: bool,
    /// For a read-only handle of an object whose content the cache holds, and that no handle
    /// writes: the cache entry, which the kernel may read in place of the daemon.
    pub cached: Option<super::CachedContent>,
}

struct FileHandle {
    id: ObjectId,
    /// The committed content a read-only handle reads (the version at its open), and a
    /// writable one while its working copy is still that content.
    base: Option<Arc<HeldManifest>>,
    /// The last chunks read from `base`, newest last.
    chunks: VecDeque<(u64, Arc<Vec<u8>>)>,
    /// The object's working copy, for a writable handle.
    working: Option<SharedCopy>,
    /// How many writes (and size changes) were made through this handle, and how many of
    /// them a finished commit covers: a `flush` commits when the two differ (a handle only
    /// created or opened with `O_TRUNC` commits at release, not at each close: a shell's `>`
    /// closes a duplicate descriptor before it writes). The second count moves only once the
    /// commit is done, so a `flush` that comes while another is committing the same writes
    /// (a forked child closing its copy of the descriptor) waits for that commit to finish
    /// instead of returning before it.
    writes: u64,
    flushed: u64,
}

/// Every open file and directory handle, and the files created but not committed yet.
#[derive(Default)]
pub struct OpenFiles {
    next: AtomicU64,
    handles: Mutex<HashMap<u64, Arc<Mutex<FileHandle>>>>,
    /// How many handles each object has open (asked on every release and unlink, so it must
    /// not wait for a handle busy committing a large file).
    open_counts: Mutex<HashMap<ObjectId, usize>>,
    dirs: Mutex<HashMap<u64, super::DirWindow>>,
    /// How many directory handles are open (listed or not).
    open_dirs: AtomicUsize,
    /// The working copy of each object open for writing.
    working: Mutex<HashMap<ObjectId, SharedCopy>>,
}

pub(super) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl OpenFiles {
    /// Returns the handles of a tree whose handle numbers follow `base` (a tree of the past
    /// numbers its handles apart from the live one's).
    pub fn numbered_from(base: u64) -> Self {
        OpenFiles {
            next: AtomicU64::new(base),
            ..OpenFiles::default()
        }
    }

    /// Returns whether any file or directory handle is open.
    pub fn any_open(&self) -> bool {
        !lock(&self.handles).is_empty() || self.open_dirs.load(Ordering::Relaxed) > 0
    }

    /// Returns how many file and directory handles are open.
    pub fn open_count(&self) -> usize {
        lock(&self.handles).len() + self.open_dirs.load(Ordering::Relaxed)
    }

    pub(super) fn new_fh(&self) -> u64 {
        self.next.fetch_add(1, Ordering::Relaxed) + 1
    }

    fn handle(&self, fh: Fh) -> FsResult<Arc<Mutex<FileHandle>>> {
        lock(&self.handles)
            .get(&fh.0)
            .cloned()
            .ok_or(FsError::BadHandle)
    }

    /// Returns the working copy of `id`, made from `base` if there is none; counts one more
    /// handle sharing it. (The map's lock and a copy's are never held together: a commit
    /// holding its copy may rebind the map.)
    fn join_copy(
        &self,
        id: ObjectId,
        ino: Ino,
        base: &dyn Fn() -> FsResult<Option<Arc<HeldManifest>>>,
    ) -> FsResult<SharedCopy> {
        loop {
            let found = lock(&self.working).get(&id).cloned();
            let wc = match found {
                Some(wc) => wc,
                None => {
                    let fresh = Arc::new(Mutex::new(WorkingCopy::new(id, ino, base()?)));
                    lock(&self.working).entry(id).or_insert(fresh).clone()
                }
            };
            let mut copy = lock(&wc);
            if !copy.retired {
                copy.handles += 1;
                drop(copy);
                return Ok(wc);
            }
            // Its last handle closed meanwhile: it is leaving the map, or was left in it under
            // this id (its id moved on). Either way it is dead: take it out, so the next turn
            // makes a fresh one rather than finding it again forever.
            drop(copy);
            let mut working = lock(&self.working);
            if working.get(&id).is_some_and(|w| Arc::ptr_eq(w, &wc)) {
                working.remove(&id);
            }
        }
    }

    /// Returns the working copy of `id`, if a writable handle has it open.
    pub(super) fn copy_of(&self, id: ObjectId) -> Option<SharedCopy> {
        lock(&self.working).get(&id).cloned()
    }

    /// Returns the ids of every object a writable handle has open.
    pub(super) fn copied_ids(&self) -> Vec<ObjectId> {
        lock(&self.working).keys().copied().collect()
    }

    /// Moves everything kept for `old` to `new`: a commit found another object at its path.
    pub(super) fn rebind(&self, old: ObjectId, new: ObjectId) {
        let mut counts = lock(&self.open_counts);
        if let Some(n) = counts.remove(&old) {
            *counts.entry(new).or_default() += n;
        }
        drop(counts);
        let mut working = lock(&self.working);
        if let Some(wc) = working.remove(&old) {
            working.entry(new).or_insert(wc);
        }
        drop(working);
        let handles: Vec<_> = lock(&self.handles).values().cloned().collect();
        for h in handles {
            let mut h = lock(&h);
            if h.id == old {
                h.id = new;
            }
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

    /// Stores the window of its listing directory handle `fh` reads now.
    pub fn set_window(&self, fh: Fh, window: super::DirWindow) {
        lock(&self.dirs).insert(fh.0, window);
    }

    /// Returns the window of its listing directory handle `fh` read last, if it read one.
    pub fn window(&self, fh: Fh) -> Option<super::DirWindow> {
        lock(&self.dirs).get(&fh.0).cloned()
    }

    /// Opens a directory handle.
    pub fn open_dir(&self) -> Fh {
        self.open_dirs.fetch_add(1, Ordering::Relaxed);
        Fh(self.new_fh())
    }

    /// Forgets directory handle `fh`.
    pub fn release_dir(&self, fh: Fh) {
        lock(&self.dirs).remove(&fh.0);
        self.open_dirs.fetch_sub(1, Ordering::Relaxed);
    }
}

impl<S: Storage> FsCore<S> {
    /// Opens file `ino`.
    pub fn open(&self, ino: Ino, flags: OpenFlags) -> FsResult<Opened> {
        in_past!(self, ino.0, |core| core.open(ino, flags));
        if flags.truncate && self.options.read_only {
            return Err(FsError::ReadOnly);
        }
        let node = match self.ns.node(ino)? {
            // An object in a view reads as the object; a view changes nothing.
            TreeNode::ViewObject(id) if !flags.write => TreeNode::Object(id),
            node if flags.write => {
                Self::refuse_view(&node)?;
                node
            }
            node => node,
        };
        if node.is_dir() {
            return Err(if flags.write {
                FsError::IsDir
            } else {
                FsError::BadHandle
            });
        }
        if let TreeNode::ControlFile(file) = node {
            return self.open_control(file, flags.write);
        }
        let TreeNode::Object(id) = node else {
            if flags.write {
                return Err(if self.options.read_only {
                    FsError::ReadOnly
                } else {
                    FsError::NotPermitted
                });
            }
            return self.open_immutable(&node);
        };
        if flags.write {
            self.writable()?;
            return self.open_writable(id, ino, flags.truncate);
        }
        let base = self.base_of(id)?;
        let cached = match (&base, self.files.copy_of(id)) {
            (Some(base), None) => self.cached_content(base),
            _ => None,
        };
        let mut opened = self.object_handle(id, base, None);
        opened.cached = cached;
        Ok(opened)
    }

    /// Returns the content object `id` has committed (`None` for a file not committed yet).
    /// The content is held against `gc` for as long as the handle keeps it.
    fn base_of(&self, id: ObjectId) -> FsResult<Option<Arc<HeldManifest>>> {
        if self.ns.uncommitted.is_pending(id) {
            return Ok(None);
        }
        let mut attempts = 0;
        loop {
            // The rows a lookup or stat just read, while nothing changed since; read anew
            // after gc took the version they name.
            let content = match attempts {
                0 => Metastore::<S>::object_of_rows(id, &self.ns.object_rows(id)?)?.content,
                _ => self.ns.meta.object_by_id(id)?.content,
            };
            match self.ns.meta.read_holds().hold(content) {
                // gc took that version between the two reads: a newer one replaced it.
                Err(MetaError::NoSuchContent(_)) if attempts < 3 => attempts += 1,
                held => return Ok(Some(Arc::new(held?))),
            }
        }
    }

    /// Registers a handle of object `id`. Every object handle bypasses the kernel's page
    /// cache, which is one per inode: a reader sees exactly the version it opened, whatever
    /// writers or readers of other versions do meanwhile (the kernel's size of the inode,
    /// which they change, would otherwise cut or zero-pad what it reads).
    fn object_handle(
        &self,
        id: ObjectId,
        base: Option<Arc<HeldManifest>>,
        working: Option<SharedCopy>,
    ) -> Opened {
        let handle = FileHandle {
            id,
            base,
            chunks: VecDeque::new(),
            working,
            writes: 0,
            flushed: 0,
        };
        let fh = self.files.new_fh();
        self.files.insert(fh, id, handle);
        // In a tree of the past a file never changes: the kernel may keep its pages.
        let past = self.past.is_none();
        Opened {
            fh: Fh(fh),
            keep_cache: past,
            direct_io: !past,
            stream: false,
            cached: None,
        }
    }

    /// Opens object `id` for writing: its handle shares the object's working copy, which
    /// `O_TRUNC` empties for every handle, as on a local file system.
    fn open_writable(&self, id: ObjectId, ino: Ino, truncate: bool) -> FsResult<Opened> {
        let wc = self.files.join_copy(id, ino, &|| self.base_of(id))?;
        let base = {
            let mut copy = lock(&wc);
            if truncate {
                let at = self
                    .ns
                    .uncommitted
                    .pending_created(id)
                    .unwrap_or_else(now_millis);
                self.empty_copy(&mut copy, at);
            }
            copy.base.clone()
        };
        Ok(self.object_handle(id, base, Some(wc)))
    }

    /// Opens a read-only file: a menu, a configuration or a content by its id.
    fn open_immutable(&self, node: &TreeNode) -> FsResult<Opened> {
        let content = match node {
            TreeNode::Content(id) => *id,
            _ => {
                let rows = self.ns.rows_of(node)?;
                let row = rows
                    .iter()
                    .find(|r| r.prop == prop::CONTENT)
                    .ok_or(FsError::NotFound)?;
                row.valu.to_string().parse()?
            }
        };
        let handle = FileHandle {
            id: ObjectId::random(), // Never committed: the handle is read-only.
            base: Some(Arc::new(self.ns.meta.read_holds().hold(content)?)),
            chunks: VecDeque::new(),
            working: None,
            writes: 0,
            flushed: 0,
        };
        let fh = self.files.new_fh();
        self.files.insert(fh, handle.id, handle);
        Ok(Opened {
            fh: Fh(fh),
            keep_cache: true,
            direct_io: false,
            stream: false,
            cached: None,
        })
    }

    /// Returns the size of the committed version read-only handle `fh` reads (`None` for a
    /// handle that reads no stored version: a writable one, a control file).
    pub fn version_size(&self, fh: Fh) -> FsResult<Option<u64>> {
        if let Some(core) = self.past_core_of_handle(fh.0) {
            return core.version_size(fh);
        }
        let handle = self.files.handle(fh)?;
        let handle = lock(&handle);
        match handle.working {
            Some(_) => Ok(None),
            None => Ok(handle.base.as_ref().map(|m| m.size)),
        }
    }

    /// Creates file `name` in job directory `parent` and opens it for writing. The file is
    /// visible at once; its first version is committed when it is closed.
    pub fn create(&self, parent: Ino, name: &str) -> FsResult<(Attr, Opened)> {
        in_past!(self, parent.0, |core| core.create(parent, name));
        let unchanged_since = self.ns.generation_of(parent);
        let _change = self.ns.change_at(parent);
        self.writable()?;
        check_name(name)?;
        let dir = self.ns.node(parent)?;
        Self::refuse_view(&dir)?;
        let Some(path) = super::in_dir(&dir, name) else {
            return Err(if dir.is_dir() {
                FsError::NotPermitted
            } else {
                FsError::NotDir
            });
        };
        if self.ns.is_taken(&path, unchanged_since)? {
            return Err(FsError::Exists);
        }
        let id = ObjectId::random();
        let now = now_millis();
        self.ns.known.remember(path.key(), id);
        (self.ns.uncommitted).add_pending(id, path, (now, self.ns.generation()));
        let ino = self.ns.inodes.ino(&TreeNode::Object(id));
        let opened = self.open(
            ino,
            OpenFlags {
                write: true,
                truncate: true,
            },
        )?;
        self.entries_moved_in(&dir);
        Ok((self.getattr(ino)?, opened))
    }

    /// Writes `data` at `offset` of the working copy; returns how many bytes were written.
    pub fn write(&self, fh: Fh, offset: u64, data: &[u8]) -> FsResult<usize> {
        in_past!(self, fh.0, |core| core.write(fh, offset, data));
        Ok(self.write_at(fh, Some(offset), data)?.0)
    }

    /// Writes `data` at the end of the working copy, as a write through an `O_APPEND`
    /// descriptor does on a local disk: the end is the copy's when the write runs (the kernel's
    /// offset comes from the size it last saw, which a truncate through another descriptor
    /// may have left stale). Returns how many bytes were written and where they landed.
    pub fn append(&self, fh: Fh, data: &[u8]) -> FsResult<(usize, u64)> {
        in_past!(self, fh.0, |core| core.append(fh, data));
        self.write_at(fh, None, data)
    }

    /// Writes `data` at `offset` of the working copy, or at its end.
    fn write_at(&self, fh: Fh, offset: Option<u64>, data: &[u8]) -> FsResult<(usize, u64)> {
        let handle = self.files.handle(fh)?;
        let wc = {
            let mut h = lock(&handle);
            let wc = h.working.clone().ok_or(FsError::BadHandle)?;
            h.writes += 1;
            wc
        };
        let mut copy = lock(&wc);
        let _change = self.ns.change_at(copy.ino);
        let at = offset.unwrap_or_else(|| copy.size());
        self.write_copy(&mut copy, at, data)?;
        Ok((data.len(), at))
    }

    /// Truncates through handle `fh` (ftruncate), or else the working copy of `ino`, or else
    /// commits a truncated copy as a new version at once.
    pub(super) fn truncate(&self, ino: Ino, fh: Option<Fh>, size: u64) -> FsResult<()> {
        let _change = self.ns.change_at(ino);
        self.writable()?;
        let TreeNode::Object(id) = self.ns.node(ino)? else {
            return Err(FsError::NotPermitted);
        };
        if let Some(handle) = fh.and_then(|fh| self.files.handle(fh).ok()) {
            let mut h = lock(&handle);
            if let Some(wc) = h.working.clone() {
                h.writes += 1;
                drop(h);
                return self.set_copy_len(&mut lock(&wc), size);
            }
        }
        if let Some(wc) = self.files.copy_of(id) {
            return self.set_copy_len(&mut lock(&wc), size);
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
            let wc = lock(&handle).working.clone().ok_or(FsError::BadHandle)?;
            let mut copy = lock(&wc);
            self.set_copy_len(&mut copy, size)?;
            self.commit_copy(&mut copy)
        })();
        self.release(opened.fh)?;
        result
    }

    /// Forgets that file `pending` is pending, once its first commit wrote `landed` (the rows
    /// `chmod`/`chown`/`utimens` set before it) onto object `id` (itself, or the object its
    /// commit became a version of); rows set since are written now.
    pub(super) fn land_pending_rows(
        &self,
        pending: ObjectId,
        id: ObjectId,
        landed: &[(String, Valu, i64)],
    ) -> FsResult<()> {
        let removed = self.ns.uncommitted.take_pending(pending);
        // Rows set while the commit that took `landed` ran are set now.
        if let Some(p) = removed.filter(|p| p.rows != landed) {
            let rows: Vec<(&str, Valu, i64)> = p
                .rows
                .iter()
                .map(|(k, v, t)| (k.as_str(), v.clone(), *t))
                .collect();
            if !rows.is_empty() {
                self.ns.meta.set_node_rows(&id.iden(), &rows, true)?;
            }
        }
        Ok(())
    }

    /// Commits the working copy of handle `fh` if it wrote since its last commit (or, with
    /// `always`, if the copy has anything to commit).
    fn commit_handle(&self, fh: Fh, always: bool) -> FsResult<()> {
        if self.is_control_handle(fh) {
            return Ok(());
        }
        let handle = self.files.handle(fh)?;
        let (wc, upto) = {
            let h = lock(&handle);
            let Some(wc) = h.working.clone() else {
                return Ok(());
            };
            if h.writes == h.flushed && !always {
                return Ok(()); // Created or truncated only: committed at release.
            }
            (wc, h.writes)
        };
        // Whoever takes the copy first commits it; a second flush of the same writes waits
        // here for that commit and finds nothing left to do.
        self.commit_copy(&mut lock(&wc))?;
        let mut h = lock(&handle);
        h.flushed = h.flushed.max(upto);
        Ok(())
    }

    /// Commits the working copy if handle `fh` wrote (every `close` calls this): durable when
    /// it returns.
    pub fn flush(&self, fh: Fh) -> FsResult<()> {
        if let Some(core) = self.past_core_of_handle(fh.0) {
            return core.flush(fh);
        }
        self.commit_handle(fh, false)
    }

    /// Commits the working copy and makes it survive a crash of the machine.
    pub fn fsync(&self, fh: Fh) -> FsResult<()> {
        if let Some(core) = self.past_core_of_handle(fh.0) {
            return core.fsync(fh);
        }
        self.commit_handle(fh, true)?;
        Ok(self.ns.meta.storage().sync()?)
    }

    /// Closes handle `fh` for good, committing what its working copy has not committed yet;
    /// the last handle of a copy gives it up.
    pub fn release(&self, fh: Fh) -> FsResult<()> {
        if let Some(core) = self.past_core_of_handle(fh.0) {
            return core.release(fh);
        }
        if self.release_control(fh) {
            return Ok(());
        }
        // A handle whose writes were all committed leaves the copy to the handles that changed
        // it since (a shell's next `>` of the file: its O_TRUNC must not be committed by this
        // late release as an empty version nobody wanted).
        let own_done = self.files.handle(fh).ok().is_some_and(|h| {
            let h = lock(&h);
            h.writes > 0 && h.writes == h.flushed
        });
        let result = match own_done {
            true => Ok(()),
            false => self.commit_handle(fh, true),
        };
        let handle = lock(&self.files.handles)
            .remove(&fh.0)
            .ok_or(FsError::BadHandle)?;
        let (id, working, base) = {
            let h = lock(&handle);
            (h.id, h.working.clone(), h.base.clone())
        };
        if let (None, Some(base)) = (&working, base) {
            // Filled once its reader is done with it, so the two do not compete.
            self.want_cached(&base);
        }
        if let Some(wc) = working {
            let mut copy = lock(&wc);
            copy.handles -= 1;
            if copy.handles == 0 {
                self.drop_copy(&mut copy);
                copy.retired = true;
                let id = copy.id;
                drop(copy);
                self.forget_retired(id, &wc);
            }
        }
        if self.files.closed(id) {
            self.ns.uncommitted.forget_orphan(id);
        }
        result
    }

    /// Forgets what retired copy `wc` of `id` held and did not commit (gone with it), and a
    /// file never committed (its first commit failed: a full disk), unless a fresh copy took
    /// its place meanwhile (a writable open found it retired): what `stat` shows of `id` is
    /// then that copy's. Under the map's lock, so no fresh copy is made between the check
    /// and the forgetting.
    fn forget_retired(&self, id: ObjectId, wc: &SharedCopy) {
        let mut working = lock(&self.files.working);
        if !working.get(&id).is_some_and(|w| Arc::ptr_eq(w, wc)) {
            return;
        }
        working.remove(&id);
        self.ns.uncommitted.forget_written(id);
        if self.ns.uncommitted.drop_pending(id) {
            self.ns.uncommitted.forget_orphan(id);
        }
    }
}

/// Checks an object name for `create`, `rename` and `mkdir`.
pub(super) fn check_name(name: &str) -> FsResult<()> {
    if name.len() > crate::meta::name_rules::MAX_NAME_BYTES {
        return Err(FsError::NameTooLong);
    }
    crate::meta::name_rules::check_component("name", name)?;
    Ok(())
}
