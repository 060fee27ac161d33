//! Directory times kept in the store: when an entry of a job directory or folder is added,
//! removed or renamed (or a partition of a dataset), the transaction that does it records the
//! time in the directory's blob `dirtime/<iden>` (8 bytes, epoch ms, big-endian), so a remount,
//! another host and `at/<T>` (blobs keep their versions) see what this mount saw.
//!
//! A blob, not a row: a row's keys hold its value, so a row rewritten at every create would
//! leave a deleted key per change in the directory's own key range, which every later read of
//! the directory (each commit checks it exists) would step over until a compaction. A blob is
//! one key, read and written by a point lookup.
//!
//! A directory's mtime is the later of two: the last change of its entries, and the time set
//! on it (`cronus:mtime`, whose row time says when it was set). A file created before
//! `utimens` of its directory and committed after it (`tar -x` and `rsync -a` set a
//! directory's time after writing its files) records its entry's time, the older one, and
//! the time set stays.

use super::folders::folder_iden;
use super::tree::job_iden;
use super::{Metastore, ObjectPath, prop};
use crate::meta::Result;
use crate::storage::{Iden, RowWrite, Storage};

/// How the blob of a directory's entries' time begins.
const PREFIX: &str = "dirtime/";

/// The key of the blob holding when the entries of directory node `iden` last changed.
pub(super) fn entries_key(iden: &Iden) -> String {
    format!("{PREFIX}{iden}")
}

fn decode(bytes: &[u8]) -> Option<i64> {
    Some(i64::from_be_bytes(bytes.try_into().ok()?))
}

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

/// Records in `txn` that the entries of the directory holding `path` changed at `at` (epoch
/// ms), unless a later change is recorded or the directory is gone.
pub(super) fn entry_changed_in(txn: &dyn RowWrite, path: &ObjectPath, at: i64) -> Result<()> {
    entries_changed_in(txn, &dir_iden(&parent_dir(path))?, at)
}

/// Records in `txn` that the entries of directory node `iden` changed at `at`, as
/// [`entry_changed_in`] does (a dataset's, when one of its partitions comes or goes).
pub(super) fn entries_changed_in(txn: &dyn RowWrite, iden: &Iden, at: i64) -> Result<()> {
    // Its kind row alone: a range no change of the node's other rows touches.
    if txn.rows_by_id_prop(iden, prop::KIND, None)?.is_empty() {
        return Ok(());
    }
    let key = entries_key(iden);
    if let Some(before) = txn.blob_get(&key)?.as_deref().and_then(decode)
        && before >= at
    {
        return Ok(());
    }
    txn.blob_set(&key, &at.to_be_bytes())?;
    Ok(())
}

/// Moves what is recorded of directory `from`'s entries to `to` in `txn` (a folder renamed).
pub(super) fn move_entries_time(txn: &dyn RowWrite, from: &Iden, to: &Iden) -> Result<()> {
    if let Some(bytes) = txn.blob_get(&entries_key(from))? {
        txn.blob_set(&entries_key(to), &bytes)?;
        txn.blob_del(&entries_key(from))?;
    }
    Ok(())
}

/// Deletes what is recorded of directory `iden`'s entries in `txn` (it is removed).
pub(super) fn forget_entries_time(txn: &dyn RowWrite, iden: &Iden) -> Result<()> {
    if txn.blob_has(&entries_key(iden))? {
        txn.blob_del(&entries_key(iden))?;
    }
    Ok(())
}

impl<S: Storage> Metastore<S> {
    /// Records that the entries of the directory holding `path` changed at `at` (for a change
    /// the store does not see otherwise: a file the mount created and removes before its
    /// first commit).
    pub fn entry_changed(&self, path: &ObjectPath, at: i64) -> Result<()> {
        self.in_txn(|txn| entry_changed_in(txn, path, at))
    }

    /// Returns when the entries of directory node `iden` (a dataset, job or folder) last
    /// changed, if that was recorded.
    pub fn entries_changed_at(&self, iden: &Iden) -> Result<Option<i64>> {
        Ok(self
            .store
            .blob_get(&entries_key(iden))?
            .as_deref()
            .and_then(decode))
    }
}
