//! File attributes as the core reports them (no kernel types): kind, size, permissions,
//! owner and times, computed from a node's rows. `chmod`, `chown` and `utimens` land in rows
//! too (`cronus:mode`, `cronus:uid`, `cronus:gid`, `cronus:mtime`), so they survive remounts.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use super::inode::Ino;
use crate::meta::prop;
use crate::storage::{Row, Valu};

/// Directory or regular file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// A directory.
    Dir,
    /// A regular file.
    File,
}

/// What `stat` shows of a node.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Attr {
    /// The inode number.
    pub ino: Ino,
    /// Directory or file.
    pub kind: Kind,
    /// Size in bytes (0 for directories).
    pub size: u64,
    /// Permission bits (`0o755`, `0o644`, …).
    pub perm: u16,
    /// Link count: 1 for files, 2 for directories.
    pub nlink: u32,
    /// Owner.
    pub uid: u32,
    /// Group.
    pub gid: u32,
    /// Last content change (or what `utimens` set).
    pub mtime: SystemTime,
    /// Last change of anything about the node (content, rows, name).
    pub ctime: SystemTime,
    /// Creation.
    pub crtime: SystemTime,
}

/// The owner and default permissions of nodes that have none of their own.
#[derive(Clone, Copy, Debug)]
pub struct Defaults {
    /// Owner of every node without a `cronus:uid` row.
    pub uid: u32,
    /// Group of every node without a `cronus:gid` row.
    pub gid: u32,
    /// Whether the mount is read-only (write bits are cleared).
    pub read_only: bool,
}

/// Returns the time of epoch milliseconds `ms` (before 1970 clamps to the epoch).
pub fn time_of_millis(ms: i64) -> SystemTime {
    UNIX_EPOCH + Duration::from_millis(u64::try_from(ms).unwrap_or(0))
}

/// Returns `t` in epoch milliseconds.
pub fn millis_of(t: SystemTime) -> i64 {
    t.duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

fn int_of(rows: &[Row], p: &str) -> Option<i64> {
    rows.iter()
        .find(|r| r.prop == p)
        .and_then(|r| match r.valu {
            Valu::Int(i) => Some(i),
            Valu::Str(_) => None,
        })
}

impl Defaults {
    /// Returns the attributes of a node of `kind` whose rows are `rows` (empty for nodes that
    /// have no rows, like `/datasets`). `size` overrides the `cronus:size` row when given.
    pub fn attr(&self, ino: Ino, kind: Kind, rows: &[Row], size: Option<u64>) -> Attr {
        let created = int_of(rows, prop::CREATED).unwrap_or(0);
        let modified = int_of(rows, prop::MODIFIED).unwrap_or(created);
        let mtime = int_of(rows, prop::MTIME).unwrap_or(modified);
        let changed = rows.iter().map(|r| r.time).max().unwrap_or(modified);
        let default_perm = match kind {
            Kind::Dir => 0o755,
            Kind::File => 0o644,
        };
        let mut perm = int_of(rows, prop::MODE).map_or(default_perm, |m| (m & 0o7777) as u16);
        if self.read_only {
            perm &= !0o222;
        }
        let size = match kind {
            Kind::Dir => 0,
            Kind::File => size.unwrap_or_else(|| int_of(rows, prop::SIZE).unwrap_or(0) as u64),
        };
        Attr {
            ino,
            kind,
            size,
            perm,
            nlink: if kind == Kind::Dir { 2 } else { 1 },
            uid: int_of(rows, prop::UID).map_or(self.uid, |u| u as u32),
            gid: int_of(rows, prop::GID).map_or(self.gid, |g| g as u32),
            mtime: time_of_millis(mtime),
            ctime: time_of_millis(changed.max(mtime)),
            crtime: time_of_millis(created),
        }
    }
}
