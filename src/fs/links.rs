//! Symbolic links through the core: making one in a job directory or folder (owned by its
//! maker), its target, and what `rename` does with one. The catalogue's side, where a link is
//! a node placed as a folder is, is `meta/metastore/links.rs`.

use super::file::check_name;
use super::inode::{Ino, TreeNode};
use super::{Attr, Creator, FsCore, FsError, FsResult, Namespace, SetAttr, in_dir, in_past};
use crate::meta::{ObjectPath, prop};
use crate::storage::{Storage, Valu};

impl<S: Storage> Namespace<S> {
    /// Returns the target of user link `node`.
    pub(super) fn link_target(&self, node: &TreeNode) -> FsResult<String> {
        let rows = self.rows_of(node)?;
        match rows
            .iter()
            .find(|r| r.prop == prop::TARGET)
            .map(|r| &r.valu)
        {
            Some(Valu::Str(target)) => Ok(target.clone()),
            _ => Err(FsError::NotFound),
        }
    }
}

impl<S: Storage> FsCore<S> {
    /// Makes symbolic link `name` to `target` in job directory or folder `parent`.
    pub fn symlink(&self, parent: Ino, name: &str, target: &str) -> FsResult<Attr> {
        in_past!(self, parent.0, |core| core.symlink(parent, name, target));
        let _change = self.ns.change_at(parent);
        self.writable()?;
        check_name(name)?;
        let dir = self.ns.node(parent)?;
        Self::refuse_view(&dir)?;
        let Some(at) = in_dir(&dir, name) else {
            return Err(if dir.is_dir() {
                FsError::NotPermitted // Datasets, partitions and jobs are named by the catalogue.
            } else {
                FsError::NotDir
            });
        };
        if self.ns.uncommitted.pending_at(&at).is_some() {
            return Err(FsError::Exists);
        }
        self.ns.meta.make_link(&at, target)?;
        self.entries_moved_in(&dir);
        let node = TreeNode::Symlink(at.dataset, at.partition, at.job, at.name);
        let ino = self.ns.inodes.ino(&node);
        self.ns.attr_of(ino, &node)
    }

    /// [`FsCore::symlink`], the link owned by `by` (a link's mode is always 0777).
    pub fn symlink_as(&self, parent: Ino, name: &str, target: &str, by: Creator) -> FsResult<Attr> {
        let attr = self.symlink(parent, name, target)?;
        let owner = SetAttr {
            uid: Some(by.uid),
            gid: Some(by.gid),
            ..SetAttr::default()
        };
        self.setattr(attr.ino, None, owner)
    }

    /// [`FsCore::rename`] of link node `moving` from `from` to `to`, where `target` is: an
    /// object or link there is replaced, a folder is EISDIR.
    pub(super) fn rename_link(
        &self,
        moving: &TreeNode,
        (from, to): (&ObjectPath, &ObjectPath),
        target: Option<TreeNode>,
        noreplace: bool,
    ) -> FsResult<()> {
        match &target {
            Some(t) if t == moving => return Ok(()),
            Some(_) if noreplace => return Err(FsError::Exists),
            Some(TreeNode::Folder(..)) => return Err(FsError::IsDir),
            _ => {}
        }
        let replaced = match target {
            Some(TreeNode::Object(id)) => vec![id],
            _ => Vec::new(),
        };
        let copies = self.copies_of(&replaced);
        let _quiet = super::changes::hold(&copies);
        for id in replaced {
            self.orphan_if_open(id)?;
            // A file not committed yet has no rows to replace.
            self.ns.uncommitted.drop_pending(id);
        }
        self.ns.meta.rename_link(from, to)?;
        let moved = TreeNode::Symlink(to.dataset, to.partition.clone(), to.job, to.name.clone());
        self.ns.inodes.move_placed(moving, &moved);
        Ok(())
    }
}
