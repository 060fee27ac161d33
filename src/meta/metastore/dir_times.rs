//! Directory times kept in the store: when an entry of a job directory or folder is added,
//! removed or renamed (or a partition of a dataset), the transaction that does it records the
//! time in the directory's blob `dirtime/<iden>`, so a remount, another host and `at/<T>`
//! (blobs keep their versions) see what this mount saw.
//!
//! A blob, not a row: a row's keys hold its value, so a row rewritten at every create would
//! leave a deleted key per change in the directory's own key range, which every later read of
//! the directory (each commit checks it exists) would step over until a compaction. A blob is
//! one key, read and written by a point lookup.
//!
//! The blob holds two times (epoch ms, 8 bytes big-endian each, `i64::MIN` for none): when
//! the entries last changed since a time was set on the directory, and when that time was set
//! (`utimens`, whose value is the `cronus:mtime` row). A directory's mtime is the first when
//! there is one, else the time set. Order is the store's, not the clocks': a change of entries
//! made now reads the blob in its transaction, so it comes after a set it sees, whatever the
//! hosts' clocks say. A file created before a set and committed after it (its last close:
//! `tar -x` and `rsync -a` set a directory's time after writing its files) entered before
//! the set, so the set time stays: the mount knows the order of the two when both went
//! through it, and compares times only with a set made elsewhere.

use super::folders::{folder_iden, folder_iden_prefix};
use super::tree::job_iden;
use super::{Metastore, ObjectPath, SetOrder, prop};
use crate::meta::Result;
use crate::storage::{Iden, RowWrite, Storage};

/// What is recorded of the entries of the folders of a directory, by folder iden.
#[derive(Debug, Default)]
pub struct FolderTimes {
    times: std::collections::HashMap<String, i64>,
}

/// How the blob of a directory's entries' time begins.
const PREFIX: &str = "dirtime/";

/// The key of the blob holding when the entries of directory node `iden` last changed.
pub(super) fn entries_key(iden: &Iden) -> String {
    format!("{PREFIX}{iden}")
}

/// What a directory's blob says: when its entries last changed since a time was set on it,
/// and when that time was set.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct DirTimes {
    entries: Option<i64>,
    set: Option<i64>,
}

impl DirTimes {
    fn decode(bytes: &[u8]) -> Self {
        let at = |i: usize| {
            let n = i64::from_be_bytes(bytes.get(i..i + 8)?.try_into().ok()?);
            (n != i64::MIN).then_some(n)
        };
        DirTimes {
            entries: at(0),
            set: at(8),
        }
    }

    fn encode(self) -> [u8; 16] {
        let mut out = [0; 16];
        out[..8].copy_from_slice(&self.entries.unwrap_or(i64::MIN).to_be_bytes());
        out[8..].copy_from_slice(&self.set.unwrap_or(i64::MIN).to_be_bytes());
        out
    }
}

/// How a change of entries is ordered against a time set on the directory.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Change {
    /// Made now, in this transaction: after any set the store holds.
    Now,
    /// A file's first commit, dated by when its name entered the directory: before a set the
    /// mount saw after it, or, the order not known, a set at a time not before it.
    Entered(SetOrder),
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
pub(super) fn entry_changed_in(
    txn: &dyn RowWrite,
    path: &ObjectPath,
    at: i64,
    change: Change,
) -> Result<()> {
    entries_changed_in(txn, &dir_iden(&parent_dir(path))?, at, change)
}

/// Records in `txn` that the entries of directory node `iden` changed at `at`, as
/// [`entry_changed_in`] does (a dataset's, when one of its partitions comes or goes).
pub(super) fn entries_changed_in(
    txn: &dyn RowWrite,
    iden: &Iden,
    at: i64,
    change: Change,
) -> Result<()> {
    // Its kind row alone: a range no change of the node's other rows touches.
    if txn.rows_by_id_prop(iden, prop::KIND, None)?.is_empty() {
        return Ok(());
    }
    let key = entries_key(iden);
    let was = (txn.blob_get(&key)?).map_or_else(DirTimes::default, |b| DirTimes::decode(&b));
    let set_since = |set: i64| match change {
        Change::Entered(SetOrder::Before) => at < set,
        _ => at <= set,
    };
    if let Change::Entered(order) = change
        && (order == SetOrder::After || was.set.is_some_and(set_since))
    {
        return Ok(()); // It entered before the time set on the directory.
    }
    let now = DirTimes {
        entries: Some(was.entries.map_or(at, |e| e.max(at))),
        set: None,
    };
    if now != was {
        txn.blob_set(&key, &now.encode())?;
    }
    Ok(())
}

/// Records in `txn` that a time was set on directory node `iden` at `at` (epoch ms): the
/// changes of its entries before it no longer make its mtime.
pub(super) fn time_set_in(txn: &dyn RowWrite, iden: &Iden, at: i64) -> Result<()> {
    let now = DirTimes {
        entries: None,
        set: Some(at),
    };
    txn.blob_set(&entries_key(iden), &now.encode())?;
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
        self.in_dataset_txn(path.dataset, |txn| {
            entry_changed_in(txn, path, at, Change::Now)
        })
    }

    /// Returns what is recorded of the entries of the folders in job directory or folder
    /// `dir` (and below it), by folder iden: one scan of their blobs, for a listing.
    pub fn folders_entries_in(&self, dir: &ObjectPath) -> Result<FolderTimes> {
        let prefix = entries_key(&Iden::new(folder_iden_prefix(dir))?);
        let found = self.store.blobs_with_prefix(&prefix)?;
        let times = (found.into_iter())
            .filter_map(|(key, bytes)| {
                let iden = key.strip_prefix(PREFIX)?.to_string();
                Some((iden, DirTimes::decode(&bytes).entries?))
            })
            .collect();
        Ok(FolderTimes { times })
    }

    /// Returns when the entries of folder `iden` last changed since a time was set on it,
    /// from `listed` ([`Metastore::folders_entries_in`]) or, for a folder whose place is too
    /// long for its iden to say it (a hashed iden), from its own blob.
    pub fn folder_entries_changed(&self, listed: &FolderTimes, iden: &Iden) -> Result<Option<i64>> {
        match iden.as_str().contains("/folders/#") {
            true => self.entries_changed_at(iden),
            false => Ok(listed.times.get(iden.as_str()).copied()),
        }
    }

    /// Returns when the entries of directory node `iden` (a dataset, job or folder) last
    /// changed since a time was set on it, if they did: its mtime then.
    pub fn entries_changed_at(&self, iden: &Iden) -> Result<Option<i64>> {
        let bytes = self.store.blob_get(&entries_key(iden))?;
        Ok(bytes.and_then(|b| DirTimes::decode(&b).entries))
    }
}
