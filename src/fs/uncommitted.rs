//! `Uncommitted`: what open handles changed and have not committed yet, which the
//! [`super::namespace::Namespace`] merges over the catalogue: files created and not committed
//! ("pending": visible in their directory with their uuid already chosen, their path,
//! creation time and the rows `chmod`/`chown`/`utimens` set before the first commit), the
//! size and time of each object's latest uncommitted write, and what `fstat` shows of objects
//! unlinked while open.

use std::collections::HashMap;
use std::sync::Mutex;

use super::FsResult;
use super::attr::{Attr, Defaults, Kind};
use super::file::lock;
use super::inode::Ino;
use crate::meta::{ObjectId, ObjectPath, prop};
use crate::storage::{Valu, now_millis};

/// What open handles have not committed yet.
#[derive(Default)]
pub struct Uncommitted {
    pending: Mutex<HashMap<ObjectId, PendingFile>>,
    /// Size and time (epoch ms) of the latest uncommitted write per object (what `stat` shows
    /// meanwhile).
    written: Mutex<HashMap<ObjectId, (u64, i64)>>,
    /// Objects unlinked while open: what `fstat` shows until their last handle closes.
    orphans: Mutex<HashMap<ObjectId, Attr>>,
}

/// A file created and not committed yet.
pub(super) struct PendingFile {
    pub(super) path: ObjectPath,
    pub(super) created: i64,
    /// When its name appeared in its directory (created or renamed there), epoch ms: what
    /// the directory's mtime moves to at the first commit; and the core's generation then
    /// (a time set on the directory later is known to come after).
    pub(super) entered: (i64, u64),
    /// Rows `chmod`/`chown`/`utimens` set before the first commit.
    pub(super) rows: Vec<(String, Valu, i64)>,
}

impl Uncommitted {
    /// Records file `id`, created at `path` at `created` (epoch ms, at the core's generation
    /// `seq`) and not committed yet.
    pub(super) fn add_pending(&self, id: ObjectId, path: ObjectPath, (created, seq): (i64, u64)) {
        let file = PendingFile {
            path,
            created,
            entered: (created, seq),
            rows: Vec::new(),
        };
        lock(&self.pending).insert(id, file);
    }

    /// Forgets pending file `id` and returns what was kept for it.
    pub(super) fn take_pending(&self, id: ObjectId) -> Option<PendingFile> {
        lock(&self.pending).remove(&id)
    }

    /// Returns the size and time (epoch ms) of the latest uncommitted change to `id`, if any.
    pub fn written(&self, id: ObjectId) -> Option<(u64, i64)> {
        lock(&self.written).get(&id).copied()
    }

    /// Returns the size and time of every object's latest uncommitted change (what a listing
    /// looks at before it reads the rows: see [`super::namespace::Namespace::object_attr`]).
    pub(super) fn all_written(&self) -> HashMap<ObjectId, (u64, i64)> {
        lock(&self.written).clone()
    }

    /// Records that `id` changed at `time` and what its size is now.
    pub(super) fn set_written(&self, id: ObjectId, size: u64, time: i64) {
        lock(&self.written).insert(id, (size, time));
    }

    /// Shows in `attr` (of object `id`) the latest uncommitted change to `id`, if any: its
    /// size, and its time as mtime (and ctime).
    pub(super) fn show_written(&self, id: ObjectId, attr: &mut Attr) {
        if let Some(w) = self.written(id) {
            apply_written(attr, w);
        }
    }

    /// Forgets the uncommitted size of `id`.
    pub(super) fn forget_written(&self, id: ObjectId) {
        lock(&self.written).remove(&id);
    }

    /// Records what `fstat` shows of `id`, unlinked while open (link count 0).
    pub fn orphan(&self, id: ObjectId, mut attr: Attr) {
        attr.nlink = 0;
        lock(&self.orphans).insert(id, attr);
    }

    /// Forgets what `fstat` showed of `id` (its last handle closed).
    pub(super) fn forget_orphan(&self, id: ObjectId) {
        lock(&self.orphans).remove(&id);
    }

    /// Returns the attributes of `id` if it was unlinked while open.
    pub fn orphan_attr(&self, id: ObjectId) -> Option<Attr> {
        let mut attr = lock(&self.orphans).get(&id).cloned()?;
        self.show_written(id, &mut attr);
        Some(attr)
    }

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

    /// Returns when the last file not committed yet entered directory `dir`, of those that
    /// entered after generation `after` (all, with `None`).
    pub(super) fn pending_entered_in(&self, dir: &ObjectPath, after: Option<u64>) -> Option<i64> {
        (lock(&self.pending).values())
            .filter(|p| {
                let folder = p.path.name.rsplit_once('/').map_or("", |(up, _)| up);
                (p.path.dataset, &p.path.partition, p.path.job, folder)
                    == (dir.dataset, &dir.partition, dir.job, dir.name.as_str())
                    && after.is_none_or(|after| p.entered.1 > after)
            })
            .map(|p| p.entered.0)
            .max()
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
        self.show_written(id, &mut attr);
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

    /// Returns whether file `id` was created and not committed yet.
    pub fn is_pending(&self, id: ObjectId) -> bool {
        lock(&self.pending).contains_key(&id)
    }

    /// Returns the path of pending file `id`.
    pub fn pending_path(&self, id: ObjectId) -> Option<ObjectPath> {
        lock(&self.pending).get(&id).map(|p| p.path.clone())
    }

    /// Returns when the name of pending file `id` appeared in its directory, and the core's
    /// generation then.
    pub(super) fn pending_entered(&self, id: ObjectId) -> Option<(i64, u64)> {
        lock(&self.pending).get(&id).map(|p| p.entered)
    }

    /// Moves pending file `id` to `path`, its name appearing there at `at` (epoch ms, at the
    /// core's generation `seq`); returns whether it was pending.
    pub fn move_pending(&self, id: ObjectId, path: &ObjectPath, at: (i64, u64)) -> bool {
        match lock(&self.pending).get_mut(&id) {
            Some(p) => {
                p.path = path.clone();
                p.entered = at;
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
        self.pending_row_if(id, p, valu, |_| Ok(())).is_some()
    }

    /// [`Uncommitted::pending_row`] if `admit`, shown the props of the file's rows, allows
    /// it (checked and set under one lock: two racing `XATTR_CREATE`s cannot both pass);
    /// `None` when `id` is not pending.
    pub fn pending_row_if(
        &self,
        id: ObjectId,
        p: &str,
        valu: Option<Valu>,
        admit: impl FnOnce(&mut dyn Iterator<Item = &str>) -> FsResult<()>,
    ) -> Option<FsResult<()>> {
        let mut pending = lock(&self.pending);
        let pending = pending.get_mut(&id)?;
        if let Err(e) = admit(&mut pending.rows.iter().map(|(k, _, _)| k.as_str())) {
            return Some(Err(e));
        }
        pending.rows.retain(|(k, _, _)| k != p);
        (pending.rows).extend(valu.map(|v| (p.to_string(), v, now_millis())));
        Some(Ok(()))
    }
}

/// Shows an uncommitted change in `attr`: its size, and its time as mtime (and ctime).
/// Shows `(size, time)`, an uncommitted change, in `attr`.
pub(super) fn apply_written(attr: &mut Attr, (size, time): (u64, i64)) {
    let t = super::attr::time_of_millis(time);
    attr.size = size;
    attr.mtime = t;
    attr.ctime = attr.ctime.max(t);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::meta::{DatasetId, JobId};

    fn at(ds: DatasetId, job: u32, name: &str) -> ObjectPath {
        ObjectPath::new(ds, "k", JobId(job), name)
    }

    #[test]
    fn a_directory_lists_only_the_pending_files_directly_in_it() {
        let (files, ds) = (Uncommitted::default(), DatasetId::random());
        let ids: Vec<ObjectId> = (0..4).map(|_| ObjectId::random()).collect();
        files.add_pending(ids[0], at(ds, 0, "top"), (1, 0));
        files.add_pending(ids[1], at(ds, 0, "a/in_a"), (1, 0));
        files.add_pending(ids[2], at(ds, 0, "a/b/in_b"), (1, 0));
        files.add_pending(ids[3], at(ds, 1, "a/other_job"), (1, 0));
        assert_eq!(files.pending_in(&at(ds, 0, "")), [("top".into(), ids[0])]);
        assert_eq!(files.pending_in(&at(ds, 0, "a")), [("in_a".into(), ids[1])]);
        assert_eq!(
            files.pending_in(&at(ds, 0, "a/b")),
            [("in_b".into(), ids[2])]
        );
        assert_eq!(files.pending_at(&at(ds, 1, "a/other_job")), Some(ids[3]));
        assert!(files.is_pending(ids[3]) && files.drop_pending(ids[3]));
        assert!(!files.is_pending(ids[3]) && files.pending_at(&at(ds, 1, "a/other_job")).is_none());
    }

    #[test]
    fn a_folder_rename_moves_what_is_under_it_and_nothing_that_only_shares_its_prefix() {
        let (files, ds) = (Uncommitted::default(), DatasetId::random());
        let (under, beside) = (ObjectId::random(), ObjectId::random());
        files.add_pending(under, at(ds, 0, "a/deep/x"), (1, 0));
        files.add_pending(beside, at(ds, 0, "ab/x"), (1, 0));
        files.move_pending_under(&at(ds, 0, "a"), &at(ds, 0, "z"));
        assert_eq!(files.pending_path(under), Some(at(ds, 0, "z/deep/x")));
        assert_eq!(files.pending_path(beside), Some(at(ds, 0, "ab/x")));
    }

    #[test]
    fn uncommitted_writes_show_in_a_pending_file_and_an_orphan_until_forgotten() {
        let files = Uncommitted::default();
        let defaults = Defaults {
            uid: 0,
            gid: 0,
            read_only: false,
        };
        let (id, ds) = (ObjectId::random(), DatasetId::random());
        files.add_pending(id, at(ds, 0, "f"), (1_000, 0));
        assert!(files.pending_row(id, "cronus:mode", Some(Valu::Int(0o600))));
        files.set_written(id, 4096, 5_000);
        let attr = files.pending_attr(id, Ino(99), &defaults).expect("pending");
        assert_eq!((attr.size, attr.perm), (4096, 0o600));
        assert_eq!(attr.mtime, super::super::time_of_millis(5_000));
        let orphan = files
            .take_pending(id)
            .map(|_| attr.clone())
            .expect("was pending");
        files.orphan(id, orphan);
        assert_eq!(
            files.orphan_attr(id).map(|a| (a.nlink, a.size)),
            Some((0, 4096))
        );
        files.forget_written(id);
        files.forget_orphan(id);
        assert!(
            files.orphan_attr(id).is_none() && files.pending_attr(id, Ino(99), &defaults).is_none()
        );
    }
}
