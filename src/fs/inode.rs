//! Inode numbers: what each number stands for in the tree, allocated the first time a node is
//! looked up and stable for the life of the mount (an object keeps its number across renames
//! and new versions, because its number stands for its uuid, not its path).

mod table;

use std::sync::{Arc, Mutex};

use super::control::ControlFile;
use crate::meta::{ContentId, DatasetId, JobId, ObjectId};
use table::Table;
pub use table::{HeldEntry, HeldInMount};

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

    /// Returns the dataset whose tree the node is in (whose rows alone its answers read);
    /// `None` for nodes that show what lies across datasets or outside them (a dataset's
    /// menu and configuration are messages of their own).
    pub fn dataset(&self) -> Option<DatasetId> {
        match self {
            TreeNode::Dataset(ds)
            | TreeNode::Partitions(ds)
            | TreeNode::Partition(ds, _)
            | TreeNode::Jobs(ds, _)
            | TreeNode::Job(ds, ..)
            | TreeNode::Folder(ds, ..)
            | TreeNode::Symlink(ds, ..) => Some(*ds),
            TreeNode::Root
            | TreeNode::Datasets
            | TreeNode::Menus
            | TreeNode::Configs
            | TreeNode::Objects
            | TreeNode::DatasetMenu(_)
            | TreeNode::DatasetConfig(_)
            | TreeNode::Object(_)
            | TreeNode::Menu(_)
            | TreeNode::Config(_)
            | TreeNode::Content(_)
            | TreeNode::Query
            | TreeNode::View(_)
            | TreeNode::ViewObject(_)
            | TreeNode::ViewLink(..)
            | TreeNode::At
            | TreeNode::Snapshots
            | TreeNode::Control
            | TreeNode::ControlFile(_) => None,
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

/// The two-way map between inode numbers and nodes, with how many entries of each number the
/// kernel holds (FUSE's lookup count) and under which name: a number lives while the kernel
/// holds it, and a while after, so the table follows what the kernel caches, not how big the
/// store is.
pub struct Inodes {
    table: Mutex<Table>,
    /// The table's [`HeldInMount`], read without its lock.
    shared: Arc<HeldInMount>,
}

impl Default for Inodes {
    fn default() -> Self {
        Inodes::numbered_from(0, Arc::default())
    }
}

impl Inodes {
    /// Returns the map of a tree whose numbers are `base` plus what a mount's tree has (the
    /// root `base + 1`): a tree of the past numbers its nodes apart from the live one's. What
    /// the kernel holds of it counts in `shared`, the mount's.
    pub fn numbered_from(base: u64, shared: Arc<HeldInMount>) -> Self {
        Inodes {
            table: Mutex::new(Table::new(base, shared.clone())),
            shared,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Table> {
        self.table.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Returns what the mount's trees share: the count of what the kernel holds in them all.
    pub fn shared(&self) -> &Arc<HeldInMount> {
        &self.shared
    }

    /// Returns how many nodes have a number.
    pub fn count(&self) -> usize {
        self.lock().len()
    }

    /// Returns how many numbers of this tree the kernel holds entries of.
    pub fn held(&self) -> usize {
        self.lock().held()
    }

    /// Returns the number of `node`, giving it one if it has none yet.
    pub fn ino(&self, node: &TreeNode) -> Ino {
        Ino(self.lock().number(node))
    }

    /// Counts one more entry of `ino` given to the kernel as `name` in directory `parent` (a
    /// lookup, a create, a `readdirplus` entry); false when `ino` no longer stands for
    /// anything (it was shown long ago and went unused: the entry must be looked up again).
    pub fn hold(&self, ino: Ino, parent: Ino, name: &str) -> bool {
        self.lock().hold(ino.0, parent, name)
    }

    /// The kernel forgot `lookups` entries of `ino`. A number it no longer holds stays a
    /// while (a lookup answered meanwhile may still give it out), then goes.
    pub fn forget(&self, ino: Ino, lookups: u64) {
        self.lock().forget(ino.0, lookups);
    }

    /// The kernel's entry `from` (directory and name) of `ino` is `to` now (renamed through
    /// the mount).
    pub fn renamed(&self, ino: Ino, from: (Ino, &str), to: (Ino, &str)) {
        self.lock().renamed(ino.0, from, to);
    }

    /// Returns the number of `node` if the kernel was given one.
    pub fn existing(&self, node: &TreeNode) -> Option<Ino> {
        self.lock().existing(node).map(Ino)
    }

    /// Returns the numbers of job `job` of dataset `ds` under each partition that has one.
    pub fn job_everywhere(&self, ds: DatasetId, job: JobId) -> Vec<Ino> {
        let table = self.lock();
        table.job_everywhere(ds, job).into_iter().map(Ino).collect()
    }

    /// Returns the node numbered `ino`, if any.
    pub fn node(&self, ino: Ino) -> Option<TreeNode> {
        self.lock().node(ino.0)
    }

    /// Returns up to `most` entries of files and links the kernel holds, used longest ago
    /// first (see [`Table::least_used_entries`]).
    pub fn least_used_entries(&self, most: usize) -> Vec<HeldEntry> {
        self.lock().least_used_entries(most)
    }

    /// Marks the numbers a round named as used now (see [`Table::touch`]).
    pub fn named(&self, inos: impl IntoIterator<Item = Ino>) {
        let mut t = self.lock();
        for ino in inos {
            t.touch(ino.0);
        }
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
        let moved: Vec<(u64, TreeNode)> = t
            .numbered()
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
                Some((*ino, new))
            })
            .collect();
        for (ino, new) in moved {
            t.bind(ino, new.clone());
            // A node replaced by the move loses its number: it is gone.
            t.point(new, ino);
        }
    }

    /// Makes `ino` stand for `node` from now on (a created file whose first commit landed on
    /// an object another writer had made at the same path meanwhile).
    pub fn rebind(&self, ino: Ino, node: TreeNode) {
        let mut t = self.lock();
        t.bind(ino.0, node.clone());
        t.alias(node, ino.0);
    }
}

#[cfg(test)]
mod tests {
    use super::table::SWEEP_AFTER;
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

    fn object() -> TreeNode {
        TreeNode::Object(ObjectId::random())
    }

    /// Gives out `n` numbers nobody holds: enough for a sweep to be due.
    fn show_many(inodes: &Inodes, n: usize) {
        for _ in 0..n {
            inodes.ino(&object());
        }
    }

    #[test]
    fn numbers_the_kernel_holds_stay_and_the_rest_go_after_a_sweep_period() {
        let inodes = Inodes::default();
        let (held, shown) = (object(), object());
        let held_ino = inodes.ino(&held);
        let hold = |ino| inodes.hold(ino, Ino::ROOT, "f");
        assert!(hold(held_ino) && hold(held_ino));
        let shown_ino = inodes.ino(&shown);
        assert_eq!((inodes.held(), inodes.shared().count()), (1, 1));
        // A sweep keeps what was used since the one before it; the second one drops it.
        show_many(&inodes, 2 * SWEEP_AFTER + 2);
        assert_eq!(inodes.node(held_ino), Some(held.clone()));
        assert_eq!(
            inodes.node(shown_ino),
            None,
            "a number nobody held outlived two sweeps"
        );
        assert!(!hold(shown_ino));
        assert!(inodes.count() < 2 * SWEEP_AFTER + 16, "{}", inodes.count());
        // Forgotten once of twice: still held; then forgotten, it goes like the others.
        inodes.forget(held_ino, 1);
        show_many(&inodes, 3 * SWEEP_AFTER);
        assert_eq!(inodes.node(held_ino), Some(held.clone()));
        inodes.forget(held_ino, 1);
        assert_eq!(inodes.held(), 0);
        assert!(
            hold(held_ino),
            "a lookup answered meanwhile may still give it out"
        );
        inodes.forget(held_ino, 1);
        show_many(&inodes, 3 * SWEEP_AFTER);
        assert_eq!(inodes.node(held_ino), None);
        assert_ne!(
            inodes.ino(&held),
            held_ino,
            "numbers are never given out twice"
        );
        // Fixed numbers stay whatever the kernel says.
        inodes.forget(Ino::ROOT, 5);
        assert_eq!(inodes.node(Ino::ROOT), Some(TreeNode::Root));
    }

    #[test]
    fn renamed_and_rebound_numbers_keep_what_the_kernel_holds() {
        let inodes = Inodes::default();
        let ds = DatasetId::random();
        let place = |p: &str| TreeNode::Folder(ds, "k".into(), JobId(0), p.into());
        let (dir, inner) = (inodes.ino(&place("a")), inodes.ino(&place("a/b")));
        assert!(inodes.hold(dir, Ino::ROOT, "a") && inodes.hold(inner, dir, "b"));
        inodes.move_placed(&place("a"), &place("z"));
        assert_eq!(inodes.node(inner), Some(place("z/b")));
        let file = inodes.ino(&object());
        assert!(inodes.hold(file, inner, "f"));
        let landed = object();
        inodes.rebind(file, landed.clone());
        assert_eq!(inodes.held(), 3);
        show_many(&inodes, 3 * SWEEP_AFTER);
        assert_eq!(inodes.node(file), Some(landed));
        assert_eq!(inodes.existing(&place("z")), Some(dir));
    }

    #[test]
    fn the_least_used_entries_of_files_come_first_and_directories_never() {
        let inodes = Inodes::default();
        let dir = inodes.ino(&TreeNode::Job(DatasetId::random(), "k".into(), JobId(0)));
        assert!(inodes.hold(dir, Ino(2), "0"));
        let files: Vec<Ino> = (0..4).map(|_| inodes.ino(&object())).collect();
        for (i, f) in files.iter().enumerate() {
            assert!(inodes.hold(*f, dir, &format!("f{i}")));
        }
        inodes.node(files[0]); // Used again: the youngest now.
        let named = |most| -> Vec<String> {
            let held = inodes.least_used_entries(most);
            inodes.named(held.iter().map(|e| e.ino));
            let entries = held.into_iter().flat_map(|e| e.entries);
            entries
                .map(|(parent, name)| (assert_eq!(parent, dir), name).1)
                .collect()
        };
        // Looking is not naming: candidates a round does not name keep their place.
        let looked: Vec<Ino> = inodes.least_used_entries(2).iter().map(|e| e.ino).collect();
        assert_eq!(looked, [files[1], files[2]]);
        assert_eq!(named(2), ["f1", "f2"]);
        // Those named are used now: the next round names others first.
        assert_eq!(named(10), ["f3", "f0", "f1", "f2"]);
        inodes.forget(files[3], 1);
        assert_eq!(named(10), ["f0", "f1", "f2"]);
        // A number the kernel has under two names (two query views) is named under both.
        assert!(inodes.hold(files[1], dir, "again"));
        assert_eq!(named(1), ["f0"]);
        assert_eq!(named(1), ["f2"]);
        assert_eq!(named(1), ["f1", "again"]);
    }
}
