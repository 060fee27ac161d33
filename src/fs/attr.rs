//! File attributes as the core reports them (no kernel types): kind, size, permissions,
//! owner and times, computed from a node's rows. `chmod`, `chown` and `utimens` land in rows
//! too (`cronus:mode`, `cronus:uid`, `cronus:gid`, `cronus:mtime`), so they survive remounts.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use super::inode::Ino;
use crate::meta::prop;
use crate::storage::Row;

/// Directory, regular file or symbolic link.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// A directory.
    Dir,
    /// A regular file.
    File,
    /// A symbolic link (the query views' links to matching directories).
    Symlink,
}

/// What `stat` shows of a node.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Attr {
    /// The inode number.
    pub ino: Ino,
    /// Directory, file or link.
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

/// Returns the time of epoch milliseconds `ms` (negative: before 1970).
pub fn time_of_millis(ms: i64) -> SystemTime {
    let span = Duration::from_millis(ms.unsigned_abs());
    match ms < 0 {
        true => UNIX_EPOCH.checked_sub(span).unwrap_or(UNIX_EPOCH),
        false => UNIX_EPOCH + span,
    }
}

/// Returns `t` in epoch milliseconds (negative before 1970; sub-millisecond parts dropped,
/// towards the epoch).
pub fn millis_of(t: SystemTime) -> i64 {
    let ms = |d: Duration| i64::try_from(d.as_millis()).unwrap_or(i64::MAX);
    match t.duration_since(UNIX_EPOCH) {
        Ok(after) => ms(after),
        Err(before) => -ms(before.duration()),
    }
}

/// The rows a node's attributes come from, gathered in one pass over its rows (owned, or
/// visited straight from the store by a listing).
#[derive(Clone, Copy, Debug, Default)]
pub struct AttrRows {
    created: Option<i64>,
    modified: Option<i64>,
    mtime: Option<i64>,
    mode: Option<i64>,
    uid: Option<i64>,
    gid: Option<i64>,
    size: Option<i64>,
    /// The time of the node's newest row.
    changed: Option<i64>,
    /// For a directory, when its entries last changed since a time was set on it.
    entries: Option<i64>,
}

impl AttrRows {
    /// Gathers from `rows`.
    pub fn of(rows: &[Row]) -> Self {
        let mut out = AttrRows::default();
        for r in rows {
            out.take(&r.prop, r.valu.as_int(), r.time);
        }
        out
    }

    /// Takes one row: its prop, its value when it is an integer, and its time. The first
    /// integer row of a prop counts (a node's rows come ordered by prop, then value).
    pub fn take(&mut self, p: &str, int: Option<i64>, time: i64) {
        self.changed = Some(self.changed.map_or(time, |c| c.max(time)));
        let slot = match p {
            prop::CREATED => &mut self.created,
            prop::MODIFIED => &mut self.modified,
            prop::MTIME => &mut self.mtime,
            prop::MODE => &mut self.mode,
            prop::UID => &mut self.uid,
            prop::GID => &mut self.gid,
            prop::SIZE => &mut self.size,
            _ => return,
        };
        if slot.is_none() {
            *slot = int;
        }
    }

    /// Takes when a directory's entries last changed since a time was set on it (epoch ms):
    /// its mtime, and its ctime if later.
    pub fn take_entries_changed(&mut self, at: Option<i64>) {
        self.entries = at;
    }

    /// Returns the node's mtime, if its rows (or its entries) say one: the last change of its
    /// entries since a time was set on it, else that time.
    fn mtime(&self) -> Option<i64> {
        self.entries.or(self.mtime)
    }
}

impl Defaults {
    /// Returns the attributes of a node of `kind` whose rows are `rows` (empty for nodes that
    /// have no rows, like `/datasets`). `size` overrides the `cronus:size` row when given.
    pub fn attr(&self, ino: Ino, kind: Kind, rows: &[Row], size: Option<u64>) -> Attr {
        self.attr_of(ino, kind, &AttrRows::of(rows), size)
    }

    /// [`Defaults::attr`] from rows already gathered.
    pub fn attr_of(&self, ino: Ino, kind: Kind, rows: &AttrRows, size: Option<u64>) -> Attr {
        let created = rows.created.unwrap_or(0);
        let modified = rows.modified.unwrap_or(created);
        let mtime = rows.mtime().unwrap_or(modified);
        let changed = rows
            .changed
            .unwrap_or(modified)
            .max(rows.entries.unwrap_or(0));
        let default_perm = match kind {
            Kind::Dir => 0o755,
            Kind::File => 0o644,
            Kind::Symlink => 0o777,
        };
        let mut perm = rows.mode.map_or(default_perm, |m| (m & 0o7777) as u16);
        if self.read_only {
            perm &= !0o222;
        }
        let size = match kind {
            Kind::Dir => 0,
            Kind::File => size.unwrap_or_else(|| rows.size.unwrap_or(0) as u64),
            Kind::Symlink => size.unwrap_or(0),
        };
        Attr {
            ino,
            kind,
            size,
            perm,
            nlink: if kind == Kind::Dir { 2 } else { 1 },
            uid: rows.uid.map_or(self.uid, |u| u as u32),
            gid: rows.gid.map_or(self.gid, |g| g as u32),
            mtime: time_of_millis(mtime),
            ctime: time_of_millis(changed.max(mtime)),
            crtime: time_of_millis(created),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_before_1970_keep_their_sign() {
        for ms in [-86_400_000, -1, 0, 1, 981_173_106_000] {
            assert_eq!(millis_of(time_of_millis(ms)), ms);
        }
        let before = UNIX_EPOCH - Duration::from_secs(86_400);
        assert_eq!(millis_of(before), -86_400_000);
    }
}
