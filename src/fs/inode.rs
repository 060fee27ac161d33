//! Inode numbers: what each number stands for in the tree, allocated the first time a node is
//! looked up and stable for the life of the mount (an object keeps its number across renames
//! and new versions, because its number stands for its uuid, not its path).

use std::collections::HashMap;
use std::sync::Mutex;

use super::control::ControlFile;
use crate::meta::{ContentId, DatasetId, JobId, ObjectId};

/// An inode number as the kernel sees it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Ino(pub u64);

impl Ino {
    /// The mount's root directory.
    pub const ROOT: Ino = Ino(1);

    /// Returns whether this is `.cronusfs/` or one of its files, whose requests are not the
    /// mount's work (reading its stats must not show in them).
    pub fn is_control(self) -> bool {
        FIXED.iter().any(|(node, n)| {
            *n == self.0 && matches!(node, TreeNode::Control | TreeNode::ControlFile(_))
        })
    }
}

/// What an inode is: one place of the SPEC §4 tree.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum TreeNode {
    /// `/`.
    Root,
    /// `/datasets`.
    Datasets,
    /// `/menus`.
    Menus,
    /// `/configs`.
    Configs,
    /// `/objects`.
    Objects,
    /// `/datasets/<uuid>`.
    Dataset(DatasetId),
    /// `/datasets/<uuid>/menu`: the dataset's Menu message.
    DatasetMenu(DatasetId),
    /// `/datasets/<uuid>/config`: the dataset's Configuration message.
    DatasetConfig(DatasetId),
    /// `/datasets/<uuid>/partitions`.
    Partitions(DatasetId),
    /// `/datasets/<uuid>/partitions/<key>`.
    Partition(DatasetId, String),
    /// `/datasets/<uuid>/partitions/<key>/jobs`.
    Jobs(DatasetId, String),
    /// `/datasets/<uuid>/partitions/<key>/jobs/<n>`.
    Job(DatasetId, String, JobId),
    /// A folder inside a job directory: its path there (`sub`, `sub/deeper`).
    Folder(DatasetId, String, JobId, String),
    /// A symbolic link inside a job directory or folder: its path in the job directory.
    Symlink(DatasetId, String, JobId, String),
    /// An object file in a job directory (committed, or created and not yet committed).
    Object(ObjectId),
    /// `/menus/<uuid>`.
    Menu(String),
    /// `/configs/<uuid>`.
    Config(String),
    /// `/objects/<content-id>`.
    Content(ContentId),
    /// `/query`: the root of the query views.
    Query,
    /// `/query/<term>/<term>/…`: a query view, the terms as the path spells them.
    View(String),
    /// An object as a view shows it (read-only; reads, rows and permissions are the object's).
    ViewObject(ObjectId),
    /// A symbolic link in a view to a matching node's place: the number of directories
    /// between the link and the root, and the place's path from the root.
    ViewLink(u32, String),
    /// `/at`: the tree at any time, looked up by name (`at/2026-12-06T01:30:00Z`), never
    /// listed.
    At,
    /// `/snapshots`: the tree of each named snapshot.
    Snapshots,
    /// `/.cronusfs`: files that show the daemon itself.
    Control,
    /// A file of `/.cronusfs`.
    ControlFile(ControlFile),
}

impl TreeNode {
    /// Returns whether the node is a registered menu or configuration (a message: read-only,
    /// its rows included).
    pub fn is_message(&self) -> bool {
        matches!(
            self,
            TreeNode::Menu(_)
                | TreeNode::Config(_)
                | TreeNode::DatasetMenu(_)
                | TreeNode::DatasetConfig(_)
        )
    }

    /// Returns whether the node is a directory.
    pub fn is_dir(&self) -> bool {
        match self {
            TreeNode::Root
            | TreeNode::Datasets
            | TreeNode::Menus
            | TreeNode::Configs
            | TreeNode::Objects
            | TreeNode::Dataset(_)
            | TreeNode::Partitions(_)
            | TreeNode::Partition(..)
            | TreeNode::Jobs(..)
            | TreeNode::Job(..)
            | TreeNode::Folder(..)
            | TreeNode::Query
            | TreeNode::View(_)
            | TreeNode::At
            | TreeNode::Snapshots
            | TreeNode::Control => true,
            TreeNode::DatasetMenu(_)
            | TreeNode::DatasetConfig(_)
            | TreeNode::Object(_)
            | TreeNode::Symlink(..)
            | TreeNode::Menu(_)
            | TreeNode::Config(_)
            | TreeNode::Content(_)
            | TreeNode::ViewObject(_)
            | TreeNode::ViewLink(..)
            | TreeNode::ControlFile(_) => false,
        }
    }

    /// Returns the place of a folder or symbolic link: dataset, partition, job and path.
    fn placed(&self) -> Option<(&DatasetId, &String, &JobId, &String)> {
        match self {
            TreeNode::Folder(ds, key, job, path) | TreeNode::Symlink(ds, key, job, path) => {
                Some((ds, key, job, path))
            }
            _ => None,
        }
    }

    /// The same kind of node as `self` (a folder or link) at another place.
    fn placed_at(&self, ds: DatasetId, key: String, job: JobId, path: String) -> TreeNode {
        match self {
            TreeNode::Symlink(..) => TreeNode::Symlink(ds, key, job, path),
            _ => TreeNode::Folder(ds, key, job, path),
        }
    }
}

const FIXED: [(TreeNode, u64); 12] = [
    (TreeNode::Root, 1),
    (TreeNode::Datasets, 2),
    (TreeNode::Menus, 3),
    (TreeNode::Configs, 4),
    (TreeNode::Objects, 5),
    (TreeNode::Query, 6),
    (TreeNode::At, 7),
    (TreeNode::Snapshots, 8),
    (TreeNode::Control, 9),
    (TreeNode::ControlFile(ControlFile::Stats), 10),
    (TreeNode::ControlFile(ControlFile::AccessLog), 11),
    (TreeNode::ControlFile(ControlFile::Health), 12),
];
const FIRST_DYNAMIC: u64 = 16;

struct Table {
    by_ino: HashMap<u64, TreeNode>,
    by_node: HashMap<TreeNode, u64>,
    next: u64,
}

/// The two-way map between inode numbers and nodes.
pub struct Inodes {
    table: Mutex<Table>,
}

impl Default for Inodes {
    fn default() -> Self {
        Inodes::numbered_from(0)
    }
}

impl Inodes {
    /// Returns the map of a tree whose numbers are `base` plus what a mount's tree has (the
    /// root `base + 1`): a tree of the past numbers its nodes apart from the live one's.
    pub fn numbered_from(base: u64) -> Self {
        let mut table = Table {
            by_ino: HashMap::new(),
            by_node: HashMap::new(),
            next: base + FIRST_DYNAMIC,
        };
        for (node, ino) in FIXED {
            table.by_ino.insert(base + ino, node.clone());
            table.by_node.insert(node, base + ino);
        }
        Inodes {
            table: Mutex::new(table),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Table> {
        self.table.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Returns how many nodes have a number.
    pub fn count(&self) -> usize {
        self.lock().by_ino.len()
    }

    /// Returns the number of `node`, giving it one if it has none yet.
    pub fn ino(&self, node: &TreeNode) -> Ino {
        let mut t = self.lock();
        if let Some(ino) = t.by_node.get(node) {
            return Ino(*ino);
        }
        let ino = t.next;
        t.next += 1;
        t.by_ino.insert(ino, node.clone());
        t.by_node.insert(node.clone(), ino);
        Ino(ino)
    }

    /// Returns the number of `node` if the kernel was given one.
    pub fn existing(&self, node: &TreeNode) -> Option<Ino> {
        self.lock().by_node.get(node).map(|ino| Ino(*ino))
    }

    /// Returns the node numbered `ino`, if any.
    pub fn node(&self, ino: Ino) -> Option<TreeNode> {
        self.lock().by_ino.get(&ino.0).cloned()
    }

    /// Gives folder or link `from`, and every folder and link under it, the node of its new
    /// place `to`, keeping the numbers the kernel knows them by (it was renamed).
    pub fn move_placed(&self, from: &TreeNode, to: &TreeNode) {
        let (Some((ds, key, job, path)), Some((to_ds, to_key, to_job, to_path))) =
            (from.placed(), to.placed())
        else {
            return;
        };
        let mut t = self.lock();
        let moved: Vec<(TreeNode, u64, TreeNode)> = t
            .by_node
            .iter()
            .filter_map(|(node, ino)| {
                let (d, k, j, p) = node.placed()?;
                if (d, k, j) != (ds, key, job) {
                    return None;
                }
                let rest = p.strip_prefix(path.as_str())?;
                if !(rest.is_empty() || rest.starts_with('/')) {
                    return None;
                }
                let new =
                    node.placed_at(*to_ds, to_key.clone(), *to_job, format!("{to_path}{rest}"));
                Some((node.clone(), *ino, new))
            })
            .collect();
        for (old, ino, new) in moved {
            t.by_node.remove(&old);
            t.by_ino.insert(ino, new.clone());
            // A node replaced by the move loses its number: it is gone.
            if let Some(replaced) = t.by_node.insert(new, ino)
                && replaced != ino
            {
                t.by_ino.remove(&replaced);
            }
        }
    }

    /// Makes `ino` stand for `node` from now on (a created file whose first commit landed on
    /// an object another writer had made at the same path meanwhile).
    pub fn rebind(&self, ino: Ino, node: TreeNode) {
        let mut t = self.lock();
        if let Some(old) = t.by_ino.insert(ino.0, node.clone()) {
            t.by_node.remove(&old);
        }
        t.by_node.insert(node, ino.0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_are_stable_and_fixed_ones_are_known() {
        let inodes = Inodes::default();
        assert_eq!(inodes.node(Ino::ROOT), Some(TreeNode::Root));
        assert_eq!(inodes.ino(&TreeNode::Objects), Ino(5));
        let d = DatasetId::random();
        let a = inodes.ino(&TreeNode::Dataset(d));
        assert_eq!(a, inodes.ino(&TreeNode::Dataset(d)));
        assert_ne!(a, inodes.ino(&TreeNode::Partitions(d)));
        assert_eq!(inodes.node(a), Some(TreeNode::Dataset(d)));
        assert_eq!(inodes.node(Ino(999)), None);
        let o = ObjectId::random();
        inodes.rebind(a, TreeNode::Object(o));
        assert_eq!(inodes.ino(&TreeNode::Object(o)), a);
        assert_ne!(inodes.ino(&TreeNode::Dataset(d)), a);
    }
}
