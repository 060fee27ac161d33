//! Files created and not committed yet ("pending"): visible in their directory with their
//! uuid already chosen, their path, creation time and the rows `chmod`/`chown`/`utimens` set
//! before the first commit, kept by [`OpenFiles`] until that commit lands.

use super::attr::{Attr, Defaults, Kind};
use super::file::{OpenFiles, apply_written, lock};
use super::inode::Ino;
use crate::meta::{ObjectId, ObjectPath, prop};
use crate::storage::{Valu, now_millis};

/// A file created and not committed yet.
pub(super) struct Pending {
    pub(super) path: ObjectPath,
    pub(super) created: i64,
    /// Rows `chmod`/`chown`/`utimens` set before the first commit.
    pub(super) rows: Vec<(String, Valu, i64)>,
}

impl OpenFiles {
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

    /// Returns the rows recorded for pending file `id` (`None` if it is not pending).
    pub fn pending_rows(&self, id: ObjectId) -> Option<Vec<(String, Valu)>> {
        lock(&self.pending).get(&id).map(|p| {
            p.rows
                .iter()
                .map(|(k, v, _)| (k.clone(), v.clone()))
                .collect()
        })
    }

    /// Returns the rows recorded for pending file `id` with their times (none if it is not
    /// pending).
    pub fn pending_rows_timed(&self, id: ObjectId) -> Vec<(String, Valu, i64)> {
        lock(&self.pending)
            .get(&id)
            .map_or_else(Vec::new, |p| p.rows.clone())
    }

    /// Returns when pending file `id` was created.
    pub(super) fn pending_created(&self, id: ObjectId) -> Option<i64> {
        lock(&self.pending).get(&id).map(|p| p.created)
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
}
