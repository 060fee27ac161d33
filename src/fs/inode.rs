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

/// Numbers given out since the last sweep before the next one may run (or a quarter of the
/// table, if more): a sweep costs a pass over the table, so it runs once per that many.
const SWEEP_AFTER: usize = 4_096;

/// What one number stands for, and whether the kernel holds it.
struct Numbered {
    node: TreeNode,
    /// Entries the kernel was given with this number and has not forgotten (its lookup
    /// count). None: the number was only shown (a plain listing, `..`) or the kernel forgot
    /// it; it goes once unused for a whole sweep period, and the node gets a new one if shown
    /// again after that.
    lookups: u64,
    /// The directory the kernel was given it in, while it holds it.
    parent: u64,
    /// The table's clock when the number was last given out or asked about.
    used: u64,
}

struct Table {
    by_ino: HashMap<u64, Numbered>,
    by_node: HashMap<TreeNode, u64>,
    next: u64,
    /// What the tree's fixed numbers are offset by.
    base: u64,
    /// Counts every use of a number.
    clock: u64,
    /// The clock at the last sweep: a number the kernel does not hold and unused since goes
    /// at the next one.
    swept_at: u64,
    /// Numbers given out since the last sweep.
    given_since_sweep: usize,
    /// How many numbers the kernel holds.
    held: usize,
    /// For each directory, how many numbers the kernel holds that it was given in it.
    held_in: HashMap<u64, usize>,
}

impl Table {
    fn is_fixed(&self, ino: u64) -> bool {
        ino > self.base && ino < self.base + FIRST_DYNAMIC
    }

    /// Returns the number of `node`, giving it one if it has none, marked used now.
    fn number(&mut self, node: &TreeNode) -> u64 {
        self.clock += 1;
        if let Some(&ino) = self.by_node.get(node) {
            if let Some(n) = self.by_ino.get_mut(&ino) {
                n.used = self.clock;
            }
            return ino;
        }
        self.sweep_if_due();
        let ino = self.next;
        self.next += 1;
        let numbered = Numbered {
            node: node.clone(),
            lookups: 0,
            parent: 0,
            used: self.clock,
        };
        self.by_ino.insert(ino, numbered);
        self.by_node.insert(node.clone(), ino);
        self.given_since_sweep += 1;
        ino
    }

    /// Drops the numbers the kernel does not hold and nothing used since the last sweep,
    /// once enough were given out since (see [`SWEEP_AFTER`]).
    fn sweep_if_due(&mut self) {
        if self.given_since_sweep < SWEEP_AFTER.max(self.by_ino.len() / 4) {
            return;
        }
        let (swept_at, base) = (self.swept_at, self.base);
        let mut gone = Vec::new();
        self.by_ino.retain(|ino, n| {
            let fixed = *ino > base && *ino < base + FIRST_DYNAMIC;
            let keep = fixed || n.lookups > 0 || n.used >= swept_at;
            if !keep {
                gone.push((*ino, std::mem::replace(&mut n.node, TreeNode::Root)));
            }
            keep
        });
        for (ino, node) in gone {
            if self.by_node.get(&node) == Some(&ino) {
                self.by_node.remove(&node);
            }
        }
        self.swept_at = self.clock;
        self.given_since_sweep = 0;
        // The maps give back what a burst made them take.
        if self.by_ino.capacity() > 4 * self.by_ino.len().max(SWEEP_AFTER) {
            self.by_ino.shrink_to(2 * self.by_ino.len());
            self.by_node.shrink_to(2 * self.by_node.len());
        }
    }

    /// Gives `ino` the node `node`, keeping what the kernel holds of it.
    fn bind(&mut self, ino: u64, node: TreeNode) {
        self.clock += 1;
        let numbered = match self.by_ino.get(&ino) {
            Some(n) => Numbered {
                node,
                lookups: n.lookups,
                parent: n.parent,
                used: n.used,
            },
            None => Numbered {
                node,
                lookups: 0,
                parent: 0,
                used: self.clock,
            },
        };
        if let Some(old) = self.by_ino.insert(ino, numbered) {
            self.by_node.remove(&old.node);
        }
    }

    /// Counts a number the kernel now holds, given in directory `parent`.
    fn now_held(&mut self, parent: u64) {
        self.held += 1;
        *self.held_in.entry(parent).or_default() += 1;
    }

    /// Counts a number the kernel no longer holds, given in directory `parent`.
    fn no_longer_held(&mut self, parent: u64) {
        self.held = self.held.saturating_sub(1);
        if let Some(n) = self.held_in.get_mut(&parent) {
            *n -= 1;
            if *n == 0 {
                self.held_in.remove(&parent);
            }
        }
    }
}

/// The two-way map between inode numbers and nodes, with how many entries of each number the
/// kernel holds (FUSE's lookup count): a number lives while the kernel holds it, and a while
/// after, so the table follows what the kernel caches, not how big the store is.
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
            base,
            clock: 0,
            swept_at: 0,
            given_since_sweep: 0,
            held: 0,
            held_in: HashMap::new(),
        };
        for (node, ino) in FIXED {
            let numbered = Numbered {
                node: node.clone(),
                lookups: 0,
                parent: 0,
                used: 0,
            };
            table.by_ino.insert(base + ino, numbered);
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

    /// Returns how many numbers the kernel holds entries of.
    pub fn held(&self) -> usize {
        self.lock().held
    }

    /// Returns the number of `node`, giving it one if it has none yet.
    pub fn ino(&self, node: &TreeNode) -> Ino {
        Ino(self.lock().number(node))
    }

    /// Counts one more entry of `ino` given to the kernel in directory `parent` (a lookup, a
    /// create, a `readdirplus` entry); false when `ino` no longer stands for anything (it was
    /// shown long ago and went unused: the entry must be looked up again).
    pub fn hold(&self, ino: Ino, parent: Ino) -> bool {
        let mut t = self.lock();
        t.clock += 1;
        let (clock, fixed) = (t.clock, t.is_fixed(ino.0));
        let Some(n) = t.by_ino.get_mut(&ino.0) else {
            return false;
        };
        n.used = clock;
        if fixed {
            return true;
        }
        n.lookups += 1;
        if n.lookups == 1 {
            n.parent = parent.0;
            t.now_held(parent.0);
        }
        true
    }

    /// The kernel forgot `lookups` entries of `ino`. A number it no longer holds stays a
    /// while (a lookup answered meanwhile may still give it out), then goes.
    pub fn forget(&self, ino: Ino, lookups: u64) {
        let mut t = self.lock();
        t.clock += 1;
        let (clock, fixed) = (t.clock, t.is_fixed(ino.0));
        let Some(n) = t.by_ino.get_mut(&ino.0) else {
            return;
        };
        if fixed || n.lookups == 0 {
            return;
        }
        n.lookups = n.lookups.saturating_sub(lookups);
        n.used = clock;
        if n.lookups == 0 {
            let parent = n.parent;
            t.no_longer_held(parent);
        }
    }

    /// Returns the number of `node` if the kernel was given one.
    pub fn existing(&self, node: &TreeNode) -> Option<Ino> {
        self.lock().by_node.get(node).map(|ino| Ino(*ino))
    }

    /// Returns the node numbered `ino`, if any.
    pub fn node(&self, ino: Ino) -> Option<TreeNode> {
        let mut t = self.lock();
        t.clock += 1;
        let clock = t.clock;
        let n = t.by_ino.get_mut(&ino.0)?;
        n.used = clock;
        Some(n.node.clone())
    }

    /// Returns the directories, used longest ago first, that the kernel was given at least
    /// `excess` numbers in (those it holds), among those `nameable` says it can be told to
    /// forget: having it forget them lets it forget everything under them not in use.
    /// `nameable` runs under the table's lock: it must not use the table.
    pub fn least_used_dirs(
        &self,
        excess: usize,
        nameable: impl Fn(&TreeNode) -> bool,
    ) -> Vec<TreeNode> {
        let t = self.lock();
        let mut dirs: Vec<(u64, usize, &TreeNode)> = (t.held_in.iter())
            .filter_map(|(dir, held)| {
                let n = t.by_ino.get(dir)?;
                nameable(&n.node).then_some((n.used, *held, &n.node))
            })
            .collect();
        dirs.sort_unstable_by_key(|(used, ..)| *used);
        let mut freed = 0;
        let mut chosen = Vec::new();
        for (_, held, node) in dirs {
            if freed >= excess {
                break;
            }
            freed += held;
            chosen.push(node.clone());
        }
        chosen
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
            t.bind(ino, new.clone());
            // A node replaced by the move loses its number: it is gone.
            if let Some(replaced) = t.by_node.insert(new, ino)
                && replaced != ino
                && let Some(gone) = t.by_ino.remove(&replaced)
                && gone.lookups > 0
            {
                t.no_longer_held(gone.parent);
            }
        }
    }

    /// Makes `ino` stand for `node` from now on (a created file whose first commit landed on
    /// an object another writer had made at the same path meanwhile).
    pub fn rebind(&self, ino: Ino, node: TreeNode) {
        let mut t = self.lock();
        t.bind(ino.0, node.clone());
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
        assert!(inodes.hold(held_ino, Ino::ROOT) && inodes.hold(held_ino, Ino::ROOT));
        let shown_ino = inodes.ino(&shown);
        assert_eq!(inodes.held(), 1);
        // A sweep keeps what was used since the one before it; the second one drops it.
        show_many(&inodes, 2 * SWEEP_AFTER + 2);
        assert_eq!(inodes.node(held_ino), Some(held.clone()));
        assert_eq!(
            inodes.node(shown_ino),
            None,
            "a number nobody held outlived two sweeps"
        );
        assert!(!inodes.hold(shown_ino, Ino::ROOT));
        assert!(inodes.count() < 2 * SWEEP_AFTER + 16, "{}", inodes.count());
        // Forgotten once of twice: still held; then forgotten, it goes like the others.
        inodes.forget(held_ino, 1);
        show_many(&inodes, 3 * SWEEP_AFTER);
        assert_eq!(inodes.node(held_ino), Some(held.clone()));
        inodes.forget(held_ino, 1);
        assert_eq!(inodes.held(), 0);
        assert!(
            inodes.hold(held_ino, Ino::ROOT),
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
        assert!(inodes.hold(dir, Ino::ROOT) && inodes.hold(inner, dir));
        inodes.move_placed(&place("a"), &place("z"));
        assert_eq!(inodes.node(inner), Some(place("z/b")));
        let file = inodes.ino(&object());
        assert!(inodes.hold(file, inner));
        let landed = object();
        inodes.rebind(file, landed.clone());
        assert_eq!(inodes.held(), 3);
        show_many(&inodes, 3 * SWEEP_AFTER);
        assert_eq!(inodes.node(file), Some(landed));
        assert_eq!(inodes.existing(&place("z")), Some(dir));
        let any = |n: &TreeNode| matches!(n, TreeNode::Folder(..));
        // Both folders have one number held in them; the one used longest ago comes first.
        assert_eq!(inodes.least_used_dirs(1, any), vec![place("z")]);
        assert_eq!(
            inodes.least_used_dirs(2, any),
            vec![place("z"), place("z/b")]
        );
        inodes.forget(file, 1);
        assert_eq!(inodes.least_used_dirs(2, any), vec![place("z")]);
    }
}
