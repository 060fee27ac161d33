//! How each open file is served: by the kernel from a backing file (FUSE passthrough), or by
//! the daemon. The kernel allows one backing file per inode and, while the inode has it, no
//! open other than a passthrough one; nor a passthrough open while the inode has pages of its
//! own (a handle the daemon serves may have mapped it). This keeps the decisions consistent
//! with those rules; the backing handle type `B` is the adapter's (a registered file).

use std::collections::HashMap;
use std::os::unix::fs::MetadataExt;
use std::sync::{Arc, Mutex, MutexGuard, Weak};

use crate::fs::{CachedContent, Fh, Ino};
use crate::meta::ContentId;

/// How the kernel is to serve a new handle.
pub enum OpenMode<B> {
    /// From backing file `backing`; with `direct_io`, its reads and writes still go to the
    /// daemon (only `mmap` uses the backing file).
    Passthrough {
        /// The registered backing file.
        backing: Arc<B>,
        /// Reads and writes through the daemon.
        direct_io: bool,
    },
    /// By the daemon.
    Served,
}

/// When a file's bytes last changed (its mtime, in nanoseconds). Not its ctime: that moves
/// when the cache drops the entry (an unlink changes the link count), which writes no byte.
fn changed_at(file: &std::fs::File) -> Option<i128> {
    let meta = file.metadata().ok()?;
    Some(i128::from(meta.mtime()) * 1_000_000_000 + i128::from(meta.mtime_nsec()))
}

struct Backed<B> {
    cached: CachedContent,
    backing: Weak<B>,
}

struct PassthroughHandle<B> {
    ino: Ino,
    backing: Arc<B>,
    /// For a writable handle: when the backing file last changed as far as it knows (a shared
    /// writable mapping of it writes the backing file, not the object).
    watched: Option<i128>,
    /// The content whose cache file this handle's mapping wrote, once seen: every later close
    /// of the handle (a duplicate descriptor's first) fails too.
    spoiled: Option<ContentId>,
}

struct Modes<B> {
    backing: HashMap<Ino, Backed<B>>,
    passthrough: HashMap<Fh, PassthroughHandle<B>>,
    served: HashMap<Fh, Ino>,
    served_per_ino: HashMap<Ino, usize>,
}

/// The open handles' I/O modes.
pub struct IoModes<B> {
    modes: Mutex<Modes<B>>,
}

impl<B> Default for IoModes<B> {
    fn default() -> Self {
        IoModes {
            modes: Mutex::new(Modes {
                backing: HashMap::new(),
                passthrough: HashMap::new(),
                served: HashMap::new(),
                served_per_ino: HashMap::new(),
            }),
        }
    }
}

impl<B> Modes<B> {
    /// Returns the cache entry backing `ino` and its registration, while a handle uses it.
    fn live(&self, ino: Ino) -> Option<(&Backed<B>, Arc<B>)> {
        let backed = self.backing.get(&ino)?;
        Some((backed, backed.backing.upgrade()?))
    }

    /// Records passthrough handle `fh` of `ino`, which keeps `backing` registered.
    fn passthrough(&mut self, (ino, fh): (Ino, Fh), backing: &Arc<B>, watched: Option<i128>) {
        let backing = backing.clone();
        let handle = PassthroughHandle {
            ino,
            backing,
            watched,
            spoiled: None,
        };
        self.passthrough.insert(fh, handle);
    }

    fn served(&mut self, ino: Ino, fh: Fh) {
        self.served.insert(fh, ino);
        *self.served_per_ino.entry(ino).or_default() += 1;
    }
}

impl<B> IoModes<B> {
    fn lock(&self) -> MutexGuard<'_, Modes<B>> {
        self.modes.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Decides how handle `fh` of `ino` is served: with the inode's backing file while it has
    /// one (through the daemon, unless it is a reader of the very content that file holds);
    /// from `cached` (registered by `register`) when the daemon serves no other handle of the
    /// inode and passthrough is `allowed`; else by the daemon. A failed `register` is returned
    /// as it is, and the handle is served by the daemon.
    pub fn open<E>(
        &self,
        (ino, fh): (Ino, Fh),
        cached: Option<CachedContent>,
        write: bool,
        allowed: bool,
        register: impl FnOnce(&std::fs::File) -> Result<B, E>,
    ) -> (OpenMode<B>, Option<E>) {
        let mut modes = self.lock();
        if let Some((backed, backing)) = modes.live(ino) {
            let held = backed.cached.content;
            let direct_io = write || cached.is_none_or(|c| c.content != held);
            // Only a writable handle can write the file through a mapping: watch it.
            let watched = if write {
                changed_at(&backed.cached.file)
            } else {
                None
            };
            modes.passthrough((ino, fh), &backing, watched);
            return (OpenMode::Passthrough { backing, direct_io }, None);
        }
        let alone = !modes.served_per_ino.contains_key(&ino);
        let mut refused = None;
        if let Some(cached) = cached.filter(|_| alone && allowed && !write) {
            match register(&cached.file) {
                Ok(backing) => {
                    let backing = Arc::new(backing);
                    let weak = Arc::downgrade(&backing);
                    let backed = Backed {
                        cached,
                        backing: weak,
                    };
                    modes.backing.insert(ino, backed);
                    modes.passthrough((ino, fh), &backing, None);
                    let direct_io = false;
                    return (OpenMode::Passthrough { backing, direct_io }, None);
                }
                Err(e) => refused = Some(e),
            }
        }
        modes.served(ino, fh);
        (OpenMode::Served, refused)
    }

    /// Records handle `fh` of `ino` as served by the daemon (a file just created).
    pub fn served(&self, ino: Ino, fh: Fh) {
        self.lock().served(ino, fh);
    }

    /// Forgets handle `fh`; an inode's backing file is closed with its last handle.
    pub fn released(&self, fh: Fh) {
        let mut modes = self.lock();
        if let Some(handle) = modes.passthrough.remove(&fh) {
            drop(handle.backing);
            if modes.live(handle.ino).is_none() {
                modes.backing.remove(&handle.ino);
            }
        }
        if let Some(ino) = modes.served.remove(&fh) {
            let left = modes.served_per_ino.entry(ino).or_default();
            *left = left.saturating_sub(1);
            if *left == 0 {
                modes.served_per_ino.remove(&ino);
            }
        }
    }

    /// Returns the content whose cache file writable handle `fh` changed (through a shared
    /// writable mapping) since its open, if it did: those bytes are not the object's, and that
    /// file is no longer the content. Once it did, every later call says so again.
    pub fn mapped_writes(&self, fh: Fh) -> Option<ContentId> {
        let mut modes = self.lock();
        let handle = modes.passthrough.get(&fh)?;
        if handle.spoiled.is_some() {
            return handle.spoiled;
        }
        let (ino, before) = (handle.ino, handle.watched?); // A reader's: nothing to look at.
        let backed = modes.backing.get(&ino)?;
        let (content, now) = (backed.cached.content, changed_at(&backed.cached.file));
        let spoiled = (now != Some(before)).then_some(content);
        if let Some(handle) = modes.passthrough.get_mut(&fh) {
            handle.spoiled = spoiled;
        }
        spoiled
    }
}
