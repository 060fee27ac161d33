//! Changes to the tree: `mkdir` and `rmdir` of datasets, partitions and jobs, `unlink` and
//! `rename` of objects, `setattr` (size, mode, owner, times).

use std::time::SystemTime;

use super::attr::{Attr, Kind, millis_of};
use super::file::{Fh, OpenFlags, Opened, check_name};
use super::in_past;
use super::inode::{Ino, TreeNode};
use super::{FsCore, FsError, FsResult, parse_job};
use crate::meta::{DatasetId, MetaError, ObjectId, ObjectPath, prop};
use crate::storage::{Row, Storage, Valu, now_millis};

/// Who makes a node, and the permission bits asked for (after the umask).
#[derive(Clone, Copy, Debug)]
pub struct Creator {
    /// The maker's user.
    pub uid: u32,
    /// The maker's group.
    pub gid: u32,
    /// The permission bits.
    pub mode: u32,
}

/// What a `create` asks for besides the name: whether a name that exists is an error, and how
/// an existing file is opened otherwise.
#[derive(Clone, Copy, Debug)]
pub struct CreateFlags {
    /// `O_EXCL`: a name that exists is EEXIST.
    pub exclusive: bool,
    /// Opened for reading (`O_RDONLY` or `O_RDWR`).
    pub read: bool,
    /// Writing and `O_TRUNC`.
    pub open: OpenFlags,
}

/// What a `setattr` changes.
#[derive(Clone, Copy, Debug, Default)]
pub struct SetAttr {
    /// New size (truncate).
    pub size: Option<u64>,
    /// New permission bits.
    pub mode: Option<u32>,
    /// New owner.
    pub uid: Option<u32>,
    /// New group.
    pub gid: Option<u32>,
    /// New modification time.
    pub mtime: Option<SystemTime>,
}

impl<S: Storage> FsCore<S> {
    /// Makes directory `name` in `parent`: a dataset (a uuid) in `datasets/`, a partition in
    /// `partitions/`, a job (its number) in `jobs/`. Anywhere else is EPERM.
    pub fn mkdir(&self, parent: Ino, name: &str) -> FsResult<Attr> {
        in_past!(self, parent.0, |core| core.mkdir(parent, name));
        let _change = self.ns.change_at(parent);
        self.writable()?;
        check_name(name)?;
        let dir = self.ns.node(parent)?;
        Self::refuse_view(&dir)?;
        let made = match dir {
            TreeNode::Datasets => {
                let ds: DatasetId = name
                    .parse()
                    .map_err(|_| FsError::InvalidName(format!("{name:?} is not a uuid")))?;
                self.ns.meta.create_dataset(ds)?;
                TreeNode::Dataset(ds)
            }
            TreeNode::Partitions(ds) => {
                self.ns.meta.add_partition(ds, name)?;
                self.forget_shown_with(&dir);
                TreeNode::Partition(ds, name.to_string())
            }
            TreeNode::Jobs(ds, key) => {
                let job = parse_job(name)
                    .ok_or_else(|| FsError::InvalidName(format!("{name:?} is not a job number")))?;
                self.ns.meta.open_job(ds, job)?;
                self.forget_shown_with(&TreeNode::Jobs(ds, key.clone()));
                TreeNode::Job(ds, key, job)
            }
            dir @ (TreeNode::Job(..) | TreeNode::Folder(..)) => {
                let at = super::in_dir(&dir, name).expect("a job or folder");
                if self.ns.object_at(&at)?.is_some() {
                    return Err(FsError::Exists);
                }
                self.ns.meta.make_folder(&at)?;
                self.entries_moved_in(&dir);
                TreeNode::Folder(at.dataset, at.partition, at.job, at.name)
            }
            n if n.is_dir() => {
                // An existing name is EEXIST whatever the level allows.
                return Err(match self.ns.child(&n, name) {
                    Ok(_) => FsError::Exists,
                    Err(_) => FsError::NotPermitted,
                });
            }
            _ => return Err(FsError::NotDir),
        };
        let ino = self.ns.inodes.ino(&made);
        self.ns.attr_of(ino, &made)
    }

    /// [`FsCore::mkdir`], the new directory owned by `by` with its mode.
    pub fn mkdir_as(&self, parent: Ino, name: &str, by: Creator) -> FsResult<Attr> {
        let attr = self.mkdir(parent, name)?;
        self.adopt(attr.ino, None, by)
    }

    /// Gives node `ino`, just made, its maker's owner and mode (what is already in place is
    /// not written).
    /// [`FsCore::create`], the new file owned by `by` with its mode. Without `O_EXCL`, a file
    /// another process made since the kernel looked the name up is opened as it is, as a local
    /// file system does (two `cp` of one new name both succeed); `by` must be allowed by its
    /// mode, which the kernel did not check.
    pub fn create_as(
        &self,
        parent: Ino,
        name: &str,
        by: Creator,
        flags: CreateFlags,
    ) -> FsResult<(Attr, Opened)> {
        match self.create(parent, name) {
            Ok((attr, opened)) => Ok((self.adopt(attr.ino, Some(opened.fh), by)?, opened)),
            Err(FsError::Exists) if !flags.exclusive => {
                let attr = self.lookup(parent, name)?;
                if attr.kind == Kind::Dir {
                    return Err(FsError::IsDir);
                }
                check_access(&attr, by, flags)?;
                let opened = self.open(attr.ino, flags.open)?;
                Ok((self.getattr(attr.ino)?, opened))
            }
            Err(e) => Err(e),
        }
    }

    pub(super) fn adopt(&self, ino: Ino, fh: Option<Fh>, by: Creator) -> FsResult<Attr> {
        let set = SetAttr {
            mode: Some(by.mode),
            uid: Some(by.uid),
            gid: Some(by.gid),
            ..SetAttr::default()
        };
        self.setattr(ino, fh, set)
    }

    /// Removes empty directory `name` of `parent` (a dataset, partition or job).
    pub fn rmdir(&self, parent: Ino, name: &str) -> FsResult<()> {
        in_past!(self, parent.0, |core| core.rmdir(parent, name));
        let _change = self.ns.change_at(parent);
        self.writable()?;
        let dir = self.ns.node(parent)?;
        Self::refuse_view(&dir)?;
        match self.ns.child(&dir, name)? {
            TreeNode::Dataset(ds) => self.ns.meta.remove_dataset(ds)?,
            TreeNode::Partition(ds, key) => {
                self.ns.meta.remove_partition(ds, &key)?;
                self.forget_shown_with(&dir);
            }
            TreeNode::Job(ds, key, job) => {
                self.refuse_pending_in(&ObjectPath::new(ds, &key, job, ""))?;
                self.ns.meta.remove_job(ds, job)?
            }
            TreeNode::Folder(ds, key, job, path) => {
                let folder = ObjectPath::new(ds, &key, job, &path);
                self.refuse_pending_in(&folder)?;
                self.ns.meta.remove_folder(&folder)?;
                self.entries_moved_in(&dir);
            }
            n if n.is_dir() => return Err(FsError::NotPermitted),
            _ => return Err(FsError::NotDir),
        }
        Ok(())
    }

    /// Fails with ENOTEMPTY when a file created in `dir` is not committed yet (its commit at
    /// the last close may not have reached the store): the directory is not empty.
    fn refuse_pending_in(&self, dir: &ObjectPath) -> FsResult<()> {
        match self.ns.uncommitted.pending_in(dir).first() {
            Some(_) => Err(crate::meta::MetaError::NotEmpty(dir.to_string()).into()),
            None => Ok(()),
        }
    }

    /// Removes object `name` of job directory `parent` (its content stays until `gc`).
    pub fn unlink(&self, parent: Ino, name: &str) -> FsResult<()> {
        in_past!(self, parent.0, |core| core.unlink(parent, name));
        let _change = self.ns.change_at(parent);
        self.writable()?;
        let dir = self.ns.node(parent)?;
        Self::refuse_view(&dir)?;
        let node = self.ns.child(&dir, name)?;
        let removed = match node {
            TreeNode::Object(id) => {
                let copies = self.copies_of(&[id]);
                let _quiet = hold(&copies);
                self.orphan_if_open(id)?;
                let path = super::in_dir(&dir, name).ok_or(FsError::NotPermitted)?;
                match self.ns.uncommitted.drop_pending(id) {
                    // The store never had it: only its directory's time says it went.
                    true => self.ns.meta.entry_changed(&path, now_millis())?,
                    false => self.ns.meta.delete_object(&path)?,
                }
                Ok(())
            }
            TreeNode::Symlink(ds, key, job, path) => Ok(self
                .ns
                .meta
                .remove_link(&ObjectPath::new(ds, &key, job, &path))?),
            n if n.is_dir() => Err(FsError::IsDir),
            _ => Err(FsError::NotPermitted),
        };
        if removed.is_ok() {
            self.entries_moved_in(&dir);
        }
        removed
    }

    /// Says that names came or went in directory `dir`: a job directory's time moved under
    /// every partition (they all show one job), and the kernel must hear of the others.
    pub(super) fn entries_moved_in(&self, dir: &TreeNode) {
        if let TreeNode::Job(..) = dir {
            self.forget_shown_with(dir);
        }
    }

    /// Returns the working copies of `ids` that have one, in id order. Held (see [`hold`])
    /// while a change decides by whether a file is committed yet, they make a commit at a
    /// last close of one of them either finished or not begun: an `unlink` or `rename` of a
    /// file whose first commit is in flight would otherwise drop it from the files not
    /// committed yet, and the commit land it again at its old name.
    pub(super) fn copies_of(&self, ids: &[ObjectId]) -> Vec<super::working::SharedCopy> {
        let mut ids = ids.to_vec();
        ids.sort_unstable();
        ids.dedup();
        ids.into_iter()
            .filter_map(|id| self.files.copy_of(id))
            .collect()
    }

    /// Keeps what `fstat` shows of object `id` (link count 0) while handles have it open: it
    /// is about to be unlinked or replaced by a rename, and stays readable through them, as on
    /// a local disk.
    pub(super) fn orphan_if_open(&self, id: ObjectId) -> FsResult<()> {
        if self.files.is_open(id) {
            let attr = self.getattr(self.ns.inodes.ino(&TreeNode::Object(id)))?;
            self.ns.uncommitted.orphan(id, attr);
        }
        Ok(())
    }

    /// Renames object `name` of job directory `parent` to `new_name` in job directory
    /// `new_parent` of the same dataset, atomically replacing what is there; with `noreplace`
    /// an existing target is EEXIST.
    pub fn rename(
        &self,
        parent: Ino,
        name: &str,
        new_parent: Ino,
        new_name: &str,
        noreplace: bool,
    ) -> FsResult<()> {
        self.refuse_past(parent)?;
        self.refuse_past(new_parent)?;
        let _change = self.ns.change_between(parent, new_parent);
        self.writable()?;
        check_name(new_name)?;
        let (from_dir, to_dir) = (self.ns.node(parent)?, self.ns.node(new_parent)?);
        Self::refuse_view(&from_dir)?;
        Self::refuse_view(&to_dir)?;
        let moving = self.ns.child(&from_dir, name)?;
        if !matches!(
            moving,
            TreeNode::Object(_) | TreeNode::Folder(..) | TreeNode::Symlink(..)
        ) {
            return Err(FsError::NotPermitted); // Datasets, partitions, jobs and read-only files.
        }
        let (Some(from), Some(to)) = (
            super::in_dir(&from_dir, name),
            super::in_dir(&to_dir, new_name),
        ) else {
            return Err(if to_dir.is_dir() {
                FsError::NotPermitted
            } else {
                FsError::NotDir
            });
        };
        if from.dataset != to.dataset {
            return Err(MetaError::CrossDataset(to.dataset.to_string()).into());
        }
        let target = match self.ns.child(&to_dir, new_name) {
            Ok(node) => Some(node),
            Err(FsError::NotFound) => None,
            Err(e) => return Err(e),
        };
        let moved = match moving {
            TreeNode::Object(id) => {
                self.rename_file(id, &from, &to, target, noreplace)?;
                Some(moving)
            }
            TreeNode::Symlink(..) => {
                self.rename_link(&moving, (&from, &to), target, noreplace)?;
                self.ns.child(&to_dir, new_name).ok()
            }
            _ => {
                self.rename_folder(&moving, &from, &to, target, noreplace)?;
                self.entries_moved_in(&from_dir);
                self.entries_moved_in(&to_dir);
                return Ok(());
            }
        };
        self.entries_moved_in(&from_dir);
        self.entries_moved_in(&to_dir);
        // The kernel moved its entry: a round of forgetting must name the new one.
        if let Some(ino) = moved.and_then(|node| self.ns.inodes.existing(&node)) {
            (self.ns.inodes).renamed(ino, (parent, name), (new_parent, new_name));
        }
        Ok(())
    }

    /// [`FsCore::rename`] of object `id` from `from` to `to`, where `target` is (a file not
    /// committed yet enters `to`'s directory now, which the store hears of at its first
    /// commit).
    fn rename_file(
        &self,
        id: ObjectId,
        from: &ObjectPath,
        to: &ObjectPath,
        target: Option<TreeNode>,
        noreplace: bool,
    ) -> FsResult<()> {
        let (target, link_there) = match target {
            Some(TreeNode::Object(t)) => (Some(t), false),
            Some(TreeNode::Symlink(..)) => (None, true),
            Some(_) => return Err(FsError::IsDir),
            None => (None, false),
        };
        if noreplace && link_there {
            return Err(FsError::Exists);
        }
        if target == Some(id) {
            return Ok(()); // The same file under both names: nothing to do.
        }
        let copies = self.copies_of(&[Some(id), target].into_iter().flatten().collect::<Vec<_>>());
        let _quiet = hold(&copies);
        if noreplace && target.is_some() {
            return Err(FsError::Exists);
        }
        if let Some(t) = target {
            self.orphan_if_open(t)?;
        }
        // A pending target has no rows: forgetting it replaces it.
        let target_pending = target.is_some_and(|t| self.ns.uncommitted.drop_pending(t));
        if self.ns.uncommitted.is_pending(id) {
            if target.is_some() && !target_pending {
                self.ns.meta.delete_object(to)?;
            }
            if link_there {
                self.ns.meta.remove_link(to)?;
            }
            let now = now_millis();
            self.ns.meta.entry_changed(from, now)?;
            (self.ns.uncommitted).move_pending(id, to, (now, self.ns.generation()));
            return Ok(());
        }
        self.ns.meta.rename_object(from, to)?;
        Ok(())
    }

    /// [`FsCore::rename`] of folder node `moving` from `from` to `to`, where `target` is: the
    /// folder and everything in it move at once; an empty folder at `to` is replaced.
    fn rename_folder(
        &self,
        moving: &TreeNode,
        from: &ObjectPath,
        to: &ObjectPath,
        target: Option<TreeNode>,
        noreplace: bool,
    ) -> FsResult<()> {
        match target {
            Some(TreeNode::Object(_) | TreeNode::Symlink(..)) => return Err(FsError::NotDir),
            Some(ref t) if t == moving => return Ok(()),
            Some(_) if noreplace => return Err(FsError::Exists),
            Some(_) if !self.ns.uncommitted.pending_in(to).is_empty() => {
                return Err(MetaError::NotEmpty(format!("folder {to}")).into());
            }
            _ => {}
        }
        // Every file open for writing may be under the folder (a committed one's place is in
        // the store): their commits in flight finish first, and the next ones find the new
        // place (files not committed yet are moved under the lock too).
        let copies = self.copies_of(&self.files.copied_ids());
        let _quiet = hold(&copies);
        self.ns.meta.rename_folder(from, to)?;
        self.ns.uncommitted.move_pending_under(from, to);
        let moved = TreeNode::Folder(to.dataset, to.partition.clone(), to.job, to.name.clone());
        self.ns.inodes.move_placed(moving, &moved);
        Ok(())
    }

    /// Changes the size, permissions, owner or modification time of `ino`.
    pub fn setattr(&self, ino: Ino, fh: Option<Fh>, set: SetAttr) -> FsResult<Attr> {
        in_past!(self, ino.0, |core| core.setattr(ino, fh, set));
        let _change = self.ns.change_at(ino);
        let node = self.ns.node(ino)?;
        let any = set.size.is_some()
            || set.mode.is_some()
            || set.uid.is_some()
            || set.gid.is_some()
            || set.mtime.is_some();
        if !any {
            return self.getattr(ino);
        }
        self.writable()?;
        Self::refuse_view(&node)?;
        if matches!(node, TreeNode::Partitions(_) | TreeNode::Jobs(..)) {
            // Fixed directories showing their dataset's or partition's rows: a chmod here
            // would change that node, not this directory.
            return Err(FsError::NotPermitted);
        }
        if let Some(size) = set.size {
            if node.is_dir() {
                return Err(FsError::IsDir);
            }
            self.truncate(ino, fh, size)?;
        }
        // An owner or mode that is already the node's is not written again (`tar -x` and
        // `cp -p` restore all three on every file); a `touch` reads nothing before its write.
        let now = match set.mode.is_some() || set.uid.is_some() || set.gid.is_some() {
            true => Some(self.getattr(ino)?),
            false => None,
        };
        let differs = |new: u32, old: fn(&Attr) -> u32| now.as_ref().is_none_or(|a| new != old(a));
        let rows: Vec<(&'static str, Valu)> = [
            set.mode
                .filter(|m| differs(m & 0o7777, |a| u32::from(a.perm)))
                .map(|m| (prop::MODE, Valu::Int(i64::from(m & 0o7777)))),
            set.uid
                .filter(|u| differs(*u, |a| a.uid))
                .map(|u| (prop::UID, Valu::Int(i64::from(u)))),
            set.gid
                .filter(|g| differs(*g, |a| a.gid))
                .map(|g| (prop::GID, Valu::Int(i64::from(g)))),
            set.mtime.map(|t| (prop::MTIME, Valu::Int(millis_of(t)))),
        ]
        .into_iter()
        .flatten()
        .collect();
        if rows.is_empty() {
            return self.getattr(ino);
        }
        let id = match node {
            TreeNode::Object(id) => Some(id),
            _ => None,
        };
        let before = id.and_then(|id| self.ns.uncommitted.written(id));
        let left = self.set_system_rows(&node, rows)?;
        self.after_set(ino, &node, set.mtime);
        match (left, id.map(|id| self.ns.uncommitted.written(id))) {
            // A copy committed meanwhile: its rows may be newer than the ones read.
            (_, None) if before.is_some() => self.getattr(ino),
            // The rows the write left answer without another read.
            (Some(rows), Some(written)) => Ok(self.ns.object_attr(ino, &rows, written)),
            _ => self.getattr(ino),
        }
    }

    /// What follows a `setattr` of `node` (inode `ino`) that set `mtime`, if given: a file's
    /// copy keeps it through its commit, a directory's time in memory gives way to it, and
    /// the directories showing the node's rows are forgotten by the kernel.
    fn after_set(&self, ino: Ino, node: &TreeNode, mtime: Option<SystemTime>) {
        if let (TreeNode::Object(id), Some(t)) = (node, mtime) {
            self.keep_set_mtime(*id, millis_of(t));
        }
        if node.is_dir() && mtime.is_some() {
            self.ns.dir_time_set(ino);
        }
        self.forget_shown_with(node);
    }

    /// Has the writable handles' copy of object `id`, if any, keep mtime `t` through its next
    /// commit (unless a write comes first).
    fn keep_set_mtime(&self, id: ObjectId, t: i64) {
        if let Some(wc) = self.files.copy_of(id) {
            let mut copy = wc.lock().unwrap_or_else(|e| e.into_inner());
            if !copy.retired {
                self.set_copy_mtime(&mut copy, t);
            }
        }
    }

    /// Writes attribute rows of `node` (kept for the first commit of a pending file, `None`);
    /// returns the node's committed rows after the write.
    fn set_system_rows(
        &self,
        node: &TreeNode,
        rows: Vec<(&'static str, Valu)>,
    ) -> FsResult<Option<Vec<Row>>> {
        if let TreeNode::Object(id) = node
            && self.ns.uncommitted.is_pending(*id)
        {
            for (p, v) in rows {
                self.ns.uncommitted.pending_row(*id, p, Some(v));
            }
            return Ok(None);
        }
        let Some(iden) = self.ns.iden_of(node)? else {
            return Err(FsError::NotPermitted);
        };
        if node.is_message() {
            return Err(FsError::NotPermitted);
        }
        let now = now_millis();
        let rows: Vec<(&str, Valu, i64)> = rows.into_iter().map(|(p, v)| (p, v, now)).collect();
        (self.ns.meta)
            .set_node_rows_read_back(&iden, &rows, true, &mut |_| true)
            .map_err(FsError::from)
    }
}

/// Checks the permission bits of `attr` for what `by` opens it for (root may do anything).
fn check_access(attr: &Attr, by: Creator, flags: CreateFlags) -> FsResult<()> {
    if by.uid == 0 {
        return Ok(());
    }
    let bits = if by.uid == attr.uid {
        attr.perm >> 6
    } else if by.gid == attr.gid {
        attr.perm >> 3
    } else {
        attr.perm
    };
    let need = if flags.read { 4 } else { 0 } | if flags.open.write { 2 } else { 0 };
    if bits & need != need {
        return Err(FsError::AccessDenied);
    }
    Ok(())
}

/// Locks every copy of `copies`, in their order.
pub(super) fn hold(
    copies: &[super::working::SharedCopy],
) -> Vec<std::sync::MutexGuard<'_, super::working::WorkingCopy>> {
    copies.iter().map(|c| super::file::lock(c)).collect()
}
