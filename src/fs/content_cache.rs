//! The local cache of whole contents as plain files (`cache/ab/cdef…`, named by content id,
//! private to the owner): what the kernel reads directly (FUSE passthrough) for a reader of
//! a cached content. Bounded in bytes with least-recently-used eviction, kept across mounts,
//! never the store of record: an entry is written to `cache/tmp/`, synced, then renamed into
//! place, so a name always holds the whole content it is named after.

use std::collections::{HashMap, HashSet, VecDeque};
use std::fs::{File, OpenOptions};
use std::io;
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Condvar, Mutex, MutexGuard};

use super::FsCore;
use crate::meta::{ContentId, Manifest};
use crate::meters;
use crate::storage::Storage;

/// Contents smaller than this are read through the daemon (a request or a few per read): a
/// cache entry (a file made and synced, opened and registered with the kernel at each open)
/// would cost about what it saves.
pub const SMALLEST_CACHED: u64 = 1 << 20;

/// Most contents waiting to be filled; more asked for meanwhile are not queued (the next
/// reader asks again).
const MOST_WANTED: usize = 256;

/// The cache's directory in a daemon's local directory (the store directory, or a shared
/// store's directory of one mount point).
pub const CACHE_DIR: &str = "cache";

/// Space a fill leaves free on the cache's file system, at least: the store may share it.
const KEEP_FREE_MIN: u64 = 256 << 20;

struct Entry {
    size: u64,
    /// When it was last used (a tick of the cache's clock).
    used: u64,
}

#[derive(Default)]
struct Index {
    entries: HashMap<ContentId, Entry>,
    total: u64,
    clock: u64,
    /// Contents asked for and not filled yet, oldest first.
    wanted: VecDeque<(ContentId, u64)>,
    queued: HashSet<ContentId>,
}

impl Index {
    /// Shows how much the cache holds in the metrics.
    fn show(&self) {
        meters::set_gauge(meters::CACHE_BYTES, self.total as f64);
        meters::set_gauge(meters::CACHE_ENTRIES, self.entries.len() as f64);
    }
}

/// The cache directory and what it holds.
pub struct ContentCache {
    dir: PathBuf,
    limit: u64,
    index: Mutex<Index>,
    wanted: Condvar,
    /// Whether the kernel reads entries itself (FUSE passthrough granted, and not refused
    /// since): without it the cache is neither read nor filled.
    passthrough: AtomicBool,
    /// Why the last fill failed, until one succeeds.
    fill_failed: Mutex<Option<String>>,
}

impl ContentCache {
    /// Opens (making it if need be) the cache in `dir`, holding at most `limit` bytes: its
    /// entries are read back, oldest use first, and what an interrupted fill left is removed.
    pub fn open(dir: &Path, limit: u64) -> io::Result<Self> {
        let make = |p: &Path| {
            std::fs::DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(p)
        };
        make(dir)?;
        check_private(dir)?;
        make(&dir.join("tmp"))?;
        for leftover in std::fs::read_dir(dir.join("tmp"))? {
            let _ = std::fs::remove_file(leftover?.path());
        }
        let mut found = Vec::new();
        for (id, path) in cache_entries(dir)? {
            if let Ok(meta) = std::fs::metadata(&path) {
                found.push((meta.mtime(), meta.mtime_nsec(), id, meta.len()));
            }
        }
        found.sort();
        let mut index = Index::default();
        for (_, _, id, size) in found {
            index.clock += 1;
            index.total += size;
            let used = index.clock;
            index.entries.insert(id, Entry { size, used });
        }
        let cache = ContentCache {
            dir: dir.to_path_buf(),
            limit,
            index: Mutex::new(index),
            wanted: Condvar::new(),
            passthrough: AtomicBool::new(false),
            fill_failed: Mutex::new(None),
        };
        {
            let mut index = cache.lock();
            cache.evict(&mut index);
            index.show();
        }
        Ok(cache)
    }

    fn lock(&self) -> MutexGuard<'_, Index> {
        self.index.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn path_of(&self, id: ContentId) -> PathBuf {
        let hex = id.to_string();
        self.dir.join(&hex[..2]).join(&hex[2..])
    }

    /// Opens the entry of `id` (a content of `size` bytes) for reading, marking it used; `None`
    /// when there is none (or a damaged one, which is dropped).
    pub fn open_entry(&self, id: ContentId, size: u64) -> Option<File> {
        let mut index = self.lock();
        index.entries.get(&id)?;
        let opened = File::open(self.path_of(id));
        match opened {
            Ok(file) if file.metadata().is_ok_and(|m| m.len() == size) => {
                index.clock += 1;
                let now = index.clock;
                if let Some(entry) = index.entries.get_mut(&id) {
                    entry.used = now;
                }
                Some(file)
            }
            _ => {
                self.drop_entry(&mut index, id);
                None
            }
        }
    }

    /// Drops the entry of `id`: its file no longer holds that content.
    pub fn forget(&self, id: ContentId) {
        self.drop_entry(&mut self.lock(), id);
    }

    /// Removes the entry of `id` from `index` and its file from the disk (a reader that has
    /// it open keeps reading it: the file lives until it is closed).
    fn drop_entry(&self, index: &mut Index, id: ContentId) {
        if let Some(gone) = index.entries.remove(&id) {
            index.total -= gone.size;
            index.show();
        }
        let _ = std::fs::remove_file(self.path_of(id));
    }

    /// Returns whether a content of `size` bytes is one the cache keeps: not under
    /// [`SMALLEST_CACHED`], and not over half the cache.
    fn worth_keeping(&self, size: u64) -> bool {
        (SMALLEST_CACHED..=self.limit / 2).contains(&size)
    }

    /// Returns the cache when the kernel reads its entries (passthrough), else `None`.
    fn served(&self) -> Option<&Self> {
        self.passthrough.load(Ordering::Relaxed).then_some(self)
    }

    /// Asks for `id` (a content of `size` bytes) to be filled by [`ContentCache::next_wanted`]'s
    /// caller, unless it is held, asked for already, too small or too big for the cache.
    pub fn want(&self, id: ContentId, size: u64) {
        if !self.worth_keeping(size) {
            return;
        }
        let mut index = self.lock();
        if index.entries.contains_key(&id)
            || index.wanted.len() >= MOST_WANTED
            || !index.queued.insert(id)
        {
            return;
        }
        index.wanted.push_back((id, size));
        self.wanted.notify_one();
    }

    /// Waits for a content to fill and returns it with its size.
    pub fn next_wanted(&self) -> (ContentId, u64) {
        let mut index = self.lock();
        loop {
            if let Some(next) = index.wanted.pop_front() {
                return next;
            }
            index = self.wanted.wait(index).unwrap_or_else(|e| e.into_inner());
        }
    }

    /// Makes the entry of `id` (`size` bytes) with `fill`, which writes the content into the
    /// empty file it is given; skipped when the file system would be left with too little room.
    pub fn fill(
        &self,
        id: ContentId,
        size: u64,
        fill: impl FnOnce(&File) -> io::Result<()>,
    ) -> io::Result<()> {
        let result = self.fill_entry(id, size, fill);
        self.lock().queued.remove(&id);
        result
    }

    fn fill_entry(
        &self,
        id: ContentId,
        size: u64,
        fill: impl FnOnce(&File) -> io::Result<()>,
    ) -> io::Result<()> {
        self.remake_if_removed()?;
        if self.lock().entries.contains_key(&id) || !self.room_for(size)? {
            return Ok(());
        }
        let tmp = self.dir.join("tmp").join(id.to_string());
        let file = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&tmp)?;
        let written = fill(&file).and_then(|()| file.sync_all());
        let placed = written.and_then(|()| {
            let path = self.path_of(id);
            std::fs::DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(path.parent().unwrap_or(&self.dir))?;
            std::fs::rename(&tmp, &path)
        });
        if let Err(e) = placed {
            let _ = std::fs::remove_file(&tmp);
            return Err(e);
        }
        let mut index = self.lock();
        index.clock += 1;
        let used = index.clock;
        if index.entries.insert(id, Entry { size, used }).is_none() {
            index.total += size;
            meters::count(meters::CACHE_FILLED_BYTES, size);
        }
        self.evict(&mut index);
        index.show();
        Ok(())
    }

    /// Makes the cache's directories again if somebody removed them (`rm -r STORE/cache`
    /// while mounted), forgetting the entries that went with them.
    fn remake_if_removed(&self) -> io::Result<()> {
        let tmp = self.dir.join("tmp");
        if tmp.is_dir() {
            return Ok(());
        }
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(&tmp)?;
        let mut index = self.lock();
        index.entries.retain(|id, _| self.path_of(*id).exists());
        index.total = index.entries.values().map(|e| e.size).sum();
        index.show();
        tracing::warn!(
            "the content cache {} was removed; made it again",
            self.dir.display()
        );
        Ok(())
    }

    /// Returns whether `size` more bytes leave the cache's file system enough room.
    fn room_for(&self, size: u64) -> io::Result<bool> {
        let disk = crate::storage::disk::statvfs(&self.dir)?;
        let total = disk.f_blocks.saturating_mul(disk.f_frsize);
        let available = disk.f_bavail.saturating_mul(disk.f_frsize);
        let keep = KEEP_FREE_MIN.max(total / 20);
        Ok(available >= size.saturating_add(keep))
    }

    /// Removes the least recently used entries until the cache is within its limit.
    fn evict(&self, index: &mut Index) {
        if index.total <= self.limit {
            return;
        }
        let mut by_use: Vec<(u64, ContentId)> =
            index.entries.iter().map(|(id, e)| (e.used, *id)).collect();
        by_use.sort_unstable();
        for (_, id) in by_use {
            if index.total <= self.limit {
                break;
            }
            self.drop_entry(index, id);
        }
    }
}

/// Checks that the cache directory `dir` is the daemon's own: a directory (not a link to one
/// elsewhere) owned by the owner of the directory it is in, and closed to others (made so if it is not): its files are
/// served to readers as the contents they are named after, so nobody else may place one.
fn check_private(dir: &Path) -> io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    let meta = std::fs::symlink_metadata(dir)?;
    // The daemon's own directory holds it (the store directory, or the mount point's under
    // `~/.cache`): its owner is the daemon's user.
    let owner = std::fs::metadata(dir.parent().unwrap_or(dir))?.uid();
    if !meta.is_dir() || meta.uid() != owner {
        return Err(io::Error::new(
            io::ErrorKind::PermissionDenied,
            "the cache must be a directory of the daemon's own user, not a link",
        ));
    }
    if meta.mode() & 0o077 != 0 {
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))?;
    }
    Ok(())
}

/// A reader's content held by the cache: the file the kernel may read it from.
#[derive(Debug)]
pub struct CachedContent {
    /// The content.
    pub content: ContentId,
    /// Its cache entry, open for reading.
    pub file: File,
}

impl<S: Storage> FsCore<S> {
    /// Returns the cache entry of `base`, for a reader of it.
    pub(super) fn cached_content(&self, base: &Manifest) -> Option<CachedContent> {
        let cache = self.contents.as_ref()?.served()?;
        if !cache.worth_keeping(base.size) {
            return None;
        }
        let Some(file) = cache.open_entry(base.id, base.size) else {
            meters::count(meters::CACHE_MISSES, 1);
            return None;
        };
        meters::count(meters::CACHE_HITS, 1);
        Some(CachedContent {
            content: base.id,
            file,
        })
    }

    /// Asks for `base` to be made a cache entry (by [`FsCore::fill_content_cache`]) unless it
    /// is one: a reader of it just finished.
    pub(super) fn want_cached(&self, base: &Manifest) {
        // An entry nobody would read through the kernel is not worth its disk.
        if let Some(cache) = self.contents.as_ref().and_then(ContentCache::served) {
            cache.want(base.id, base.size);
        }
    }

    /// Says whether the kernel serves readers from cache entries (FUSE passthrough granted,
    /// and not refused since); without a cache, nothing does.
    pub fn set_passthrough(&self, granted: bool) {
        if let Some(cache) = &self.contents {
            cache.passthrough.store(granted, Ordering::Relaxed);
        }
    }

    /// Returns whether the kernel serves readers from cache entries.
    pub fn passthrough(&self) -> bool {
        self.contents
            .as_ref()
            .and_then(ContentCache::served)
            .is_some()
    }

    /// Drops the cache entries of contents the store no longer holds (`gc` freed them), and
    /// returns how many. A reader with such an entry open keeps reading it (though gc keeps
    /// what open handles read, so none should be).
    pub fn forget_freed_contents(&self) -> usize {
        let Some(cache) = &self.contents else {
            return 0;
        };
        let ids: Vec<ContentId> = cache.lock().entries.keys().copied().collect();
        let content = self.ns.meta.content();
        let freed: Vec<ContentId> = (ids.into_iter())
            .filter(|id| matches!(content.contains(*id), Ok(false)))
            .collect();
        for id in &freed {
            cache.forget(*id);
        }
        freed.len()
    }

    /// Drops the cache entry of `content`, whose file was changed (a shared writable mapping
    /// of a handle the kernel backed with it).
    pub fn forget_cached(&self, content: ContentId) {
        if let Some(cache) = self.contents.as_ref() {
            cache.forget(content);
        }
    }

    /// Fills the content cache with what readers asked for, one content at a time, for as long
    /// as the process runs (the mount runs it on a thread of its own). Returns at once when the
    /// core has no cache.
    pub fn fill_content_cache(&self) {
        let Some(cache) = self.contents.as_ref() else {
            return;
        };
        loop {
            let (id, size) = cache.next_wanted();
            let filled = cache.fill(id, size, |file| {
                let content = self.ns.meta.content();
                let manifest = content.manifest(id).map_err(io::Error::other)?;
                content
                    .copy_to_file(&manifest, file)
                    .map_err(io::Error::other)
            });
            let mut failed = cache.fill_failed.lock().unwrap_or_else(|e| e.into_inner());
            match filled {
                Ok(()) => *failed = None,
                Err(e) => {
                    tracing::warn!(error = %e, "could not keep content {id} in the cache");
                    *failed = Some(e.to_string());
                }
            }
        }
    }

    /// How the content cache is, for `status`: well or not, and what it holds or what is
    /// wrong.
    pub fn content_cache_health(&self) -> CacheHealth {
        let Some(cache) = &self.contents else {
            return match &self.cache_refused {
                Some(why) => CacheHealth::Failing(format!("{why}: the daemon serves every read")),
                None => CacheHealth::Off("none: the daemon serves every read".into()),
            };
        };
        if let Some(why) = cache
            .fill_failed
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
        {
            return CacheHealth::Failing(format!(
                "the last fill failed ({why}): the daemon serves what is not cached"
            ));
        }
        if cache.served().is_none() {
            return CacheHealth::Off(
                "not read: the kernel gave no passthrough; the daemon serves every read".into(),
            );
        }
        let index = cache.lock();
        CacheHealth::Ok(format!(
            "{} entries, {} of {}, in {}",
            index.entries.len(),
            in_mib(index.total),
            in_mib(cache.limit),
            cache.dir.display()
        ))
    }
}

/// `n` bytes in MiB, one decimal.
fn in_mib(n: u64) -> String {
    format!("{:.1} MiB", n as f64 / (1u64 << 20) as f64)
}

/// How a mount's content cache is ([`FsCore::content_cache_health`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CacheHealth {
    /// It holds contents the kernel reads: what it holds.
    Ok(String),
    /// There is none, or the kernel does not read it: why.
    Off(String),
    /// It was asked for and cannot work, or its last fill failed: why.
    Failing(String),
}

/// What [`check_cache`] found.
#[derive(Debug, Default)]
pub struct CacheCheck {
    /// Entries whose bytes are the content they are named after.
    pub sound: usize,
    /// Each entry removed, and why.
    pub removed: Vec<String>,
}

/// Checks every entry of the content cache in `dir` (if there is one) against `content`: an
/// entry whose content the store no longer holds, or whose bytes differ from it (chunk by
/// chunk against the manifest), is removed, so no reader is ever served it again. Run by
/// `fsck`; a daemon serving the store drops such an entry from its index at its next use.
pub fn check_cache(dir: &Path, content: &crate::meta::ContentStore<'_>) -> io::Result<CacheCheck> {
    let mut check = CacheCheck::default();
    if !dir.is_dir() {
        return Ok(check);
    }
    for (id, path) in cache_entries(dir)? {
        let verdict = match content.manifest(id) {
            Err(crate::meta::MetaError::NoSuchContent(_)) => Some("the store no longer holds it"),
            Err(_) => None, // fsck reports the store's own damage.
            Ok(manifest) => (!entry_matches(&path, &manifest)?).then_some("its bytes differ"),
        };
        match verdict {
            Some(why) => {
                std::fs::remove_file(&path)?;
                check
                    .removed
                    .push(format!("cache entry {id}: {why}; removed"));
            }
            None => check.sound += 1,
        }
    }
    Ok(check)
}

/// Returns the entries of the cache in `dir` with their paths.
fn cache_entries(dir: &Path) -> io::Result<Vec<(ContentId, PathBuf)>> {
    let mut found = Vec::new();
    for sub in std::fs::read_dir(dir)? {
        let sub = sub?;
        let prefix = sub.file_name().to_string_lossy().into_owned();
        if prefix.len() != 2 || !sub.file_type()?.is_dir() {
            continue;
        }
        for entry in std::fs::read_dir(sub.path())? {
            let entry = entry?;
            let name = format!("{prefix}{}", entry.file_name().to_string_lossy());
            if let Ok(id) = name.parse::<ContentId>() {
                found.push((id, entry.path()));
            }
        }
    }
    Ok(found)
}

/// Returns whether the file at `path` holds exactly `manifest`'s content.
fn entry_matches(path: &Path, manifest: &Manifest) -> io::Result<bool> {
    use std::os::unix::fs::FileExt;
    let file = File::open(path)?;
    if file.metadata()?.len() != manifest.size {
        return Ok(false);
    }
    let mut buf = vec![0u8; crate::meta::content::CHUNK_SIZE];
    let mut offset = 0u64;
    for run in manifest.runs() {
        let len = run.len as usize;
        for _ in 0..run.count {
            file.read_exact_at(&mut buf[..len], offset)?;
            if blake3::hash(&buf[..len]).as_bytes() != &run.hash {
                return Ok(false);
            }
            offset += len as u64;
        }
    }
    Ok(true)
}
