//! `.cronusfs/` under a mount's root: files that show the daemon itself, not the store.
//! `stats` holds the mount's metrics in Prometheus' text format and `health` what the daemon
//! knows of its own health, each made anew at each open by the source the daemon gives
//! ([`FsCore::show_stats_from`], [`FsCore::show_health_from`]); `accesslog` streams a line per
//! request while it is open ([`AccessLog`]). The directory is looked up, never
//! listed (`ls`, `find` and `rsync` of the mount do not see it), read-only, and only in the
//! live tree (not under `at/` or `snapshots/`).

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};

use super::access_log::{AccessLog, TooManyReaders};
use super::{
    Attr, Fh, FsCore, FsError, FsResult, Ino, Kind, Namespace, Opened, ReadBytes, TreeNode,
};
use crate::meta::MetaError;
use crate::storage::Storage;
use crate::storage::history::current_actor;

/// The directory's name under the root.
pub const CONTROL_DIR: &str = ".cronusfs";

/// A file of `.cronusfs/`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ControlFile {
    /// `stats`: the mount's metrics.
    Stats,
    /// `accesslog`: a line per request, while open (its owner's only: it names every user's
    /// paths and processes).
    AccessLog,
    /// `health`: the daemon's own health (its owner's only: its last error may name paths).
    Health,
}

impl ControlFile {
    /// Every control file, as listed.
    pub const ALL: [ControlFile; 3] = [
        ControlFile::Stats,
        ControlFile::AccessLog,
        ControlFile::Health,
    ];

    /// The file's name in `.cronusfs/`.
    pub fn name(self) -> &'static str {
        match self {
            ControlFile::Stats => "stats",
            ControlFile::AccessLog => "accesslog",
            ControlFile::Health => "health",
        }
    }

    /// The control file called `name`, if any.
    pub fn named(name: &str) -> Option<ControlFile> {
        Self::ALL.into_iter().find(|f| f.name() == name)
    }
}

/// What makes the text of `stats` or `health`.
pub type TextSource = Box<dyn Fn() -> String + Send + Sync>;

/// The most handles of `stats` and `health` one user may have open at once: each holds its
/// bytes (tens of KiB), so a user who opens them without end (through `--allow-other`) must not
/// grow the daemon without end, nor keep another user (the owner's `status`) out.
const MOST_OPEN: usize = 256;

/// The text `stats` holds while no source was given (a core not served by a daemon).
const NO_STATS: &str = "# no metrics are recorded in this process\n";
/// The text `health` holds while no source was given.
const NO_HEALTH: &str = "no health is recorded in this process\n";

/// An open handle of `stats` or `health`: its opener's uid and the bytes it reads.
type ShownHandle = (u32, Arc<Vec<u8>>);

/// The source of `stats`, the bytes each open handle of it reads, and the access log.
#[derive(Default)]
pub(super) struct Control {
    stats: OnceLock<TextSource>,
    health: OnceLock<TextSource>,
    /// Each open handle of `stats` or `health`.
    handles: Mutex<HashMap<u64, ShownHandle>>,
    pub(super) access: Arc<AccessLog>,
}

impl Control {
    fn handles(&self) -> MutexGuard<'_, HashMap<u64, ShownHandle>> {
        self.handles.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The text of `stats` or `health` now.
    fn text_of(&self, file: ControlFile) -> Vec<u8> {
        let (source, none) = match file {
            ControlFile::Health => (&self.health, NO_HEALTH),
            ControlFile::Stats => (&self.stats, NO_STATS),
            // Not made at its open: its handles read the requests as they come.
            ControlFile::AccessLog => return Vec::new(),
        };
        match source.get() {
            Some(source) => source().into_bytes(),
            None => none.as_bytes().to_vec(),
        }
    }
}

impl<S: Storage> Namespace<S> {
    /// The attributes of `.cronusfs/` or one of its files: the mount owner's, read-only, and
    /// a file's size 0 (its bytes are made at its open, read past any size).
    pub(super) fn control_attr(&self, ino: Ino, node: &TreeNode) -> Attr {
        let kind = if node.is_dir() { Kind::Dir } else { Kind::File };
        let mut attr = self.defaults.attr(ino, kind, &[], Some(0));
        // What names paths, users and processes is the mount owner's alone.
        attr.perm &= match node {
            TreeNode::ControlFile(ControlFile::Health | ControlFile::AccessLog) => 0o400,
            _ => 0o555,
        };
        (attr.mtime, attr.ctime, attr.crtime) = (self.started, self.started, self.started);
        attr
    }
}

impl<S: Storage> FsCore<S> {
    /// Makes `source` what `.cronusfs/stats` shows (once; later calls change nothing).
    pub fn show_stats_from(&self, source: TextSource) {
        let _ = self.control.stats.set(source);
    }

    /// Makes `source` what `.cronusfs/health` shows (once; later calls change nothing).
    pub fn show_health_from(&self, source: TextSource) {
        let _ = self.control.health.set(source);
    }

    /// Opens control file `file` for reading: its bytes now, read by the handle until it is
    /// released. The kernel keeps none of them (direct I/O).
    pub(super) fn open_control(&self, file: ControlFile, write: bool) -> FsResult<Opened> {
        if write {
            return Err(FsError::ReadOnly);
        }
        let fh = self.files.new_fh();
        match file {
            ControlFile::Stats | ControlFile::Health => {
                let uid = (current_actor().uid).clamp(0, i64::from(u32::MAX)) as u32;
                let theirs = (self.control.handles().values())
                    .filter(|(opener, _)| *opener == uid)
                    .count();
                if theirs >= MOST_OPEN {
                    return Err(MetaError::Busy(format!(
                        "{MOST_OPEN} handles of .cronusfs files are open by uid {uid}; close some"
                    ))
                    .into());
                }
                let bytes = Arc::new(self.control.text_of(file));
                self.control.handles().insert(fh, (uid, bytes));
            }
            ControlFile::AccessLog => self.control.access.open(fh).map_err(|TooManyReaders| {
                MetaError::Busy("the access log has as many readers as it takes; close one".into())
            })?,
        }
        Ok(Opened {
            fh: Fh(fh),
            keep_cache: false,
            direct_io: true,
            // A stream has no offsets: a reader that seeks back (a shell's `read`) is told so
            // and reads line by line, instead of losing what it skipped.
            stream: file == ControlFile::AccessLog,
            cached: None,
        })
    }

    /// Reads control handle `fh`, or `None` when `fh` is not one. A read of the access log
    /// waits up to a second for a request (see [`FsCore::is_access_log_handle`]).
    pub(super) fn read_control(&self, fh: Fh, offset: u64, size: u32) -> Option<ReadBytes> {
        if let Some(lines) = self.read_access_log(fh, size, true) {
            return Some(ReadBytes::Owned(lines));
        }
        let bytes = self.control.handles().get(&fh.0)?.1.clone();
        let start = (offset.min(bytes.len() as u64)) as usize;
        let end = (start + size as usize).min(bytes.len());
        Some(ReadBytes::Owned(bytes[start..end].to_vec()))
    }

    /// Returns whether `fh` is a control handle (nothing to commit).
    pub(super) fn is_control_handle(&self, fh: Fh) -> bool {
        self.control.handles().contains_key(&fh.0) || self.control.access.is_handle(fh.0)
    }

    /// Returns whether `fh` is a handle of `.cronusfs/accesslog`, whose reads wait for the
    /// next request: a caller that must not wait reads it from a thread of its own.
    pub fn is_access_log_handle(&self, fh: Fh) -> bool {
        self.control.access.is_handle(fh.0)
    }

    /// Releases control handle `fh`; returns whether it was one.
    pub(super) fn release_control(&self, fh: Fh) -> bool {
        self.control.handles().remove(&fh.0).is_some() || self.control.access.release(fh.0)
    }

    /// The access log: where the requests the mount answers are recorded while it is read.
    pub fn access_log(&self) -> &Arc<AccessLog> {
        &self.control.access
    }

    /// Reads up to `size` bytes of access log handle `fh` (with `wait`, waiting up to a
    /// second for a request when it has none), or `None` when `fh` is not one.
    pub fn read_access_log(&self, fh: Fh, size: u32, wait: bool) -> Option<Vec<u8>> {
        (self.control.access).read(fh.0, size, wait, |ino, name| self.path_of(ino, name))
    }
}
