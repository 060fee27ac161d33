//! Listings of the tree's directories (every one but a job directory's own, which
//! `dir_listing.rs` folds) and each directory's parent, for `..`.

use std::sync::Arc;

use super::{Listing, Namespace, ROOT_DIRS};
use crate::fs::inode::{Ino, TreeNode};
use crate::fs::{ControlFile, DirEntry, FsError, FsResult, in_dir};
use crate::meta::ListingCursor;
use crate::storage::Storage;

impl<S: Storage> Namespace<S> {
    /// Lists directory `ino` (without `.` and `..`), with each entry's attributes.
    pub fn readdir(&self, ino: Ino) -> FsResult<Vec<DirEntry>> {
        let node = self.node(ino)?;
        if let Some(dir) = in_dir(&node, "") {
            return self.list_dir(&dir);
        }
        if let TreeNode::View(path) = &node {
            return self.list_view(path);
        }
        let children = self.children(&node)?;
        let mut entries = Vec::with_capacity(children.len());
        for (name, child) in children {
            let ino = self.inodes.ino(&child);
            match self.attr_of(ino, &child) {
                Ok(attr) => entries.push(DirEntry {
                    name,
                    attr,
                    place: None,
                }),
                Err(FsError::NotFound) => {} // Removed while we listed.
                Err(e) => return Err(e),
            }
        }
        Ok(entries)
    }

    /// The first page of directory `ino`'s listing: all of it (kept, as [`Namespace::listing`]
    /// keeps it), unless it is a job directory or folder of more than `page` members, listed
    /// a page at a time; then where the next page starts.
    pub(crate) fn first_page(
        &self,
        ino: Ino,
        page: usize,
    ) -> FsResult<(Listing, Option<ListingCursor>)> {
        let node = self.node(ino)?;
        let Some(dir) = in_dir(&node, "") else {
            return Ok((self.listing(ino)?, None));
        };
        let now = self.generation_of(ino);
        let kept = self
            .listings
            .get_or(ino, now, || match self.list_dir_page(&dir, None, page) {
                Ok((entries, None)) => Ok(Arc::new(entries)),
                Ok((entries, Some(next))) => Err(Ok((Arc::new(entries), next))),
                Err(e) => Err(Err(e)),
            });
        match kept {
            Ok(whole) => Ok((whole, None)),
            // One page of many: never kept.
            Err(Ok((first, next))) => Ok((first, Some(next))),
            Err(Err(e)) => Err(e),
        }
    }

    /// The page of job directory or folder `ino`'s listing after `after`, and where the next
    /// page starts.
    pub(crate) fn next_page(
        &self,
        ino: Ino,
        after: &ListingCursor,
        page: usize,
    ) -> FsResult<(Listing, Option<ListingCursor>)> {
        let node = self.node(ino)?;
        let dir = in_dir(&node, "").ok_or(FsError::NotDir)?;
        let (entries, next) = self.list_dir_page(&dir, Some(after), page)?;
        Ok((Arc::new(entries), next))
    }

    /// Returns the names and nodes of the entries of directory `node` (not a job directory or
    /// folder, which `list_dir` lists with their attributes in one pass).
    pub(super) fn children(&self, node: &TreeNode) -> FsResult<Vec<(String, TreeNode)>> {
        let mut children = self.all_children(node)?;
        if self.scope.is_some() || self.is_past() {
            let mut shown = Vec::with_capacity(children.len());
            for (name, child) in children {
                if self.in_scope(&child)? {
                    shown.push((name, child));
                }
            }
            children = shown;
        }
        Ok(children)
    }

    /// [`Namespace::children`], whatever the tree's scope.
    fn all_children(&self, node: &TreeNode) -> FsResult<Vec<(String, TreeNode)>> {
        Ok(match node {
            TreeNode::Root => ROOT_DIRS
                .iter()
                .map(|(n, node)| (n.to_string(), node.clone()))
                .collect(),
            TreeNode::Datasets => self
                .meta
                .datasets()?
                .into_iter()
                .map(|d| (d.to_string(), TreeNode::Dataset(d)))
                .collect(),
            TreeNode::Dataset(ds) => {
                let mut v = vec![("partitions".to_string(), TreeNode::Partitions(*ds))];
                if self.meta.dataset_transform(*ds)?.is_some() {
                    v.insert(0, ("config".into(), TreeNode::DatasetConfig(*ds)));
                    v.insert(0, ("menu".into(), TreeNode::DatasetMenu(*ds)));
                }
                v
            }
            TreeNode::Partitions(ds) => self
                .meta
                .partitions(*ds)?
                .into_iter()
                .map(|k| (k.clone(), TreeNode::Partition(*ds, k)))
                .collect(),
            TreeNode::Partition(ds, key) => vec![("jobs".into(), TreeNode::Jobs(*ds, key.clone()))],
            TreeNode::Jobs(ds, key) => self
                .meta
                .jobs(*ds)?
                .into_iter()
                .map(|j| (j.to_string(), TreeNode::Job(*ds, key.clone(), j)))
                .collect(),
            TreeNode::Menus => self
                .meta
                .registered("menu")?
                .into_iter()
                .map(|u| (u.clone(), TreeNode::Menu(u)))
                .collect(),
            TreeNode::Configs => self
                .meta
                .registered("config")?
                .into_iter()
                .map(|u| (u.clone(), TreeNode::Config(u)))
                .collect(),
            TreeNode::Objects => self
                .meta
                .content()
                .ids()?
                .into_iter()
                .map(|c| (c.to_string(), TreeNode::Content(c)))
                .collect(),
            // One view per prop that has rows (the `prop` term); deeper views are as many as
            // the queries, made by a lookup, never listed.
            TreeNode::Query => self.prop_views()?,
            // `at/` lists nothing (every time can be looked up); `FsCore::readdir` lists the
            // snapshots.
            TreeNode::At | TreeNode::Snapshots => Vec::new(),
            TreeNode::Control => (ControlFile::ALL.into_iter())
                .map(|f| (f.name().to_string(), TreeNode::ControlFile(f)))
                .collect(),
            TreeNode::Job(..) | TreeNode::Folder(..) | TreeNode::View(_) => {
                unreachable!("listed above")
            }
            TreeNode::DatasetMenu(_)
            | TreeNode::DatasetConfig(_)
            | TreeNode::Object(_)
            | TreeNode::Symlink(..)
            | TreeNode::Menu(_)
            | TreeNode::Config(_)
            | TreeNode::Content(_)
            | TreeNode::ViewObject(_)
            | TreeNode::ViewLink(..)
            | TreeNode::ControlFile(_) => return Err(FsError::NotDir),
        })
    }

    /// Returns the parent directory's inode of directory `ino` (for `..`).
    pub fn parent_of(&self, ino: Ino) -> FsResult<Ino> {
        let parent = match self.node(ino)? {
            TreeNode::Root
            | TreeNode::Datasets
            | TreeNode::Menus
            | TreeNode::Configs
            | TreeNode::Objects
            | TreeNode::Query
            | TreeNode::At
            | TreeNode::Snapshots
            | TreeNode::Control => TreeNode::Root,
            TreeNode::ControlFile(_) => TreeNode::Control,
            TreeNode::Dataset(_) => TreeNode::Datasets,
            TreeNode::Partitions(ds) | TreeNode::DatasetMenu(ds) | TreeNode::DatasetConfig(ds) => {
                TreeNode::Dataset(ds)
            }
            TreeNode::Partition(ds, _) => TreeNode::Partitions(ds),
            TreeNode::Jobs(ds, key) => TreeNode::Partition(ds, key),
            TreeNode::Job(ds, key, _) => TreeNode::Jobs(ds, key),
            TreeNode::Folder(ds, key, job, path) => match path.rsplit_once('/') {
                Some((up, _)) => TreeNode::Folder(ds, key, job, up.to_string()),
                None => TreeNode::Job(ds, key, job),
            },
            TreeNode::Menu(_) => TreeNode::Menus,
            TreeNode::Config(_) => TreeNode::Configs,
            TreeNode::Content(_) => TreeNode::Objects,
            TreeNode::View(path) => match path.rsplit_once('/') {
                Some((up, _)) => TreeNode::View(up.to_string()),
                None => TreeNode::Query,
            },
            TreeNode::Object(_)
            | TreeNode::Symlink(..)
            | TreeNode::ViewObject(_)
            | TreeNode::ViewLink(..) => {
                return Err(FsError::NotDir);
            }
        };
        Ok(self.inodes.ino(&parent))
    }
}
