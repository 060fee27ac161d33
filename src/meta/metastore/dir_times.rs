//! Directory times kept in the store: when an entry of a job directory or folder is added,
//! removed or renamed, the transaction that does it moves the directory's `cronus:mtime` row
//! (and with it its ctime), so a remount, another host and `at/<T>` see what this mount saw.
//!
//! The row's value is the directory's mtime, its row time when it was written. An entry
//! change at time `at` moves the mtime to `at` unless the row was written at or after `at`: a
//! later change of entries, or a `touch -d` of the directory made after the entry appeared
//! (a file created before `utimens` of its directory and committed after it, at its last
//! close, leaves the time `tar -x` or `rsync -a` set).

use super::folders::folder_iden;
use super::tree::job_iden;
use super::{Metastore, ObjectPath, prop};
use crate::meta::Result;
use crate::storage::{Iden, Row, RowWrite, Storage, Valu};

/// Returns the directory holding `path`: its job directory (`name` empty) or its folder.
pub(super) fn parent_dir(path: &ObjectPath) -> ObjectPath {
    let folder = path.name.rsplit_once('/').map_or("", |(up, _)| up);
    ObjectPath::new(path.dataset, &path.partition, path.job, folder)
}

/// Returns the iden of the node whose rows directory `dir` shows: the job of a job directory
/// (under every partition), else the folder.
fn dir_iden(dir: &ObjectPath) -> Result<Iden> {
    match dir.name.as_str() {
        "" => Ok(job_iden(dir.dataset, dir.job)),
        _ => folder_iden(dir),
    }
}

/// Moves the mtime of the directory holding `path` to `at` (epoch ms) inside `txn`, unless
/// its mtime row was written at or after `at`, or the directory is gone.
pub(super) fn entry_changed_in(txn: &dyn RowWrite, path: &ObjectPath, at: i64) -> Result<()> {
    entries_changed_in(txn, &dir_iden(&parent_dir(path))?, at)
}

/// Moves the mtime of node `iden`, a directory whose entries changed at `at`, as
/// [`entry_changed_in`] does (a dataset's, when one of its partitions comes or goes).
pub(super) fn entries_changed_in(txn: &dyn RowWrite, iden: &Iden, at: i64) -> Result<()> {
    let rows = txn.rows_by_id(iden)?;
    if !rows.iter().any(|r| r.prop == prop::KIND) {
        return Ok(());
    }
    let old: Vec<Row> = (rows.into_iter())
        .filter(|r| r.prop == prop::MTIME)
        .collect();
    if old.iter().any(|r| r.time >= at) {
        return Ok(());
    }
    txn.del_rows(&old)?;
    txn.add_rows(&[Row::new(iden, prop::MTIME, Valu::Int(at), at)])?;
    Ok(())
}

impl<S: Storage> Metastore<S> {
    /// Moves the mtime of the directory holding `path` to `at`, as an entry change there does
    /// (for a change the store does not see otherwise: a file the mount created and removes
    /// before its first commit).
    pub fn entry_changed(&self, path: &ObjectPath, at: i64) -> Result<()> {
        self.in_txn(|txn| entry_changed_in(txn, path, at))
    }
}
