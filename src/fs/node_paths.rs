//! Paths of inodes, for the lines of the access log: where in the mount each node the kernel
//! asks about is (`/datasets/<uuid>/partitions/<key>/jobs/<n>/<name>`), from the inode table
//! and the places this mount has seen objects at, never from the store.

use super::inode::TreeNode;
use super::namespace::Namespace;
use super::{CONTROL_DIR, FsCore, Ino};
use crate::meta::{DatasetId, JobId, ObjectId};
use crate::storage::Storage;

impl<S: Storage> FsCore<S> {
    /// Returns the path of inode `ino` in the mount (a tree of the past's prefixed with its
    /// name), followed by `/name` when a request names an entry of it; `ino:N` for a number
    /// the mount has forgotten.
    pub fn path_of(&self, ino: Ino, name: Option<&str>) -> String {
        let mut path = match self.past_prefix(ino) {
            Some((prefix, core)) => match core.ns.place_of(ino) {
                Some(inner) if inner == "/" => prefix,
                Some(inner) => prefix + &inner,
                None => format!("ino:{}", ino.0),
            },
            None => (self.ns.place_of(ino)).unwrap_or_else(|| format!("ino:{}", ino.0)),
        };
        if let Some(name) = name {
            if !path.ends_with('/') {
                path.push('/');
            }
            path.push_str(name);
        }
        path
    }
}

impl<S: Storage> Namespace<S> {
    /// Returns the path of inode `ino` in this tree, if it still has the number.
    fn place_of(&self, ino: Ino) -> Option<String> {
        let node = self.inodes.node(ino)?;
        Some(match node {
            TreeNode::Object(id) | TreeNode::ViewObject(id) => self.object_place(id),
            node => node_path(&node),
        })
    }

    /// Where object `id` was last seen (or is being created), by its uuid when this mount
    /// has not seen its place.
    fn object_place(&self, id: ObjectId) -> String {
        let seen = self.known.paths_of(id).into_iter().next();
        let key = seen.or_else(|| self.uncommitted.pending_path(id).map(|p| p.key()));
        let place = key.and_then(|key| {
            let mut parts = key.splitn(4, '/');
            let (ds, part, job, name) =
                (parts.next()?, parts.next()?, parts.next()?, parts.next()?);
            Some(format!(
                "/datasets/{ds}/partitions/{part}/jobs/{job}/{name}"
            ))
        });
        place.unwrap_or_else(|| format!("object:{id}"))
    }
}

/// The path of a node that is not an object.
fn node_path(node: &TreeNode) -> String {
    let job = |ds: &DatasetId, key: &str, job: &JobId| {
        format!("/datasets/{ds}/partitions/{key}/jobs/{job}")
    };
    match node {
        TreeNode::Root => "/".into(),
        TreeNode::Datasets => "/datasets".into(),
        TreeNode::Menus => "/menus".into(),
        TreeNode::Configs => "/configs".into(),
        TreeNode::Objects => "/objects".into(),
        TreeNode::Dataset(ds) => format!("/datasets/{ds}"),
        TreeNode::DatasetMenu(ds) => format!("/datasets/{ds}/menu"),
        TreeNode::DatasetConfig(ds) => format!("/datasets/{ds}/config"),
        TreeNode::Partitions(ds) => format!("/datasets/{ds}/partitions"),
        TreeNode::Partition(ds, key) => format!("/datasets/{ds}/partitions/{key}"),
        TreeNode::Jobs(ds, key) => format!("/datasets/{ds}/partitions/{key}/jobs"),
        TreeNode::Job(ds, key, n) => job(ds, key, n),
        TreeNode::Folder(ds, key, n, path) | TreeNode::Symlink(ds, key, n, path) => {
            format!("{}/{path}", job(ds, key, n))
        }
        TreeNode::Object(id) | TreeNode::ViewObject(id) => format!("object:{id}"),
        TreeNode::Menu(uuid) => format!("/menus/{uuid}"),
        TreeNode::Config(uuid) => format!("/configs/{uuid}"),
        TreeNode::Content(id) => format!("/objects/{id}"),
        TreeNode::Query => "/query".into(),
        TreeNode::View(terms) => format!("/query/{terms}"),
        // A link's own name is in its view; what it points at says more.
        TreeNode::ViewLink(_, place) => format!("/query/… -> /{place}"),
        TreeNode::At => "/at".into(),
        TreeNode::Snapshots => "/snapshots".into(),
        TreeNode::Control => format!("/{CONTROL_DIR}"),
        TreeNode::ControlFile(file) => format!("/{CONTROL_DIR}/{}", file.name()),
    }
}
