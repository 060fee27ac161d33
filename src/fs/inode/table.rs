//! The table behind [`Inodes`](super::Inodes): each number's node, the kernel's lookup count
//! of it with the entry (directory and name) it was last given under, and the sweep of the
//! numbers nobody holds.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

use super::{FIRST_DYNAMIC, FIXED, Ino, TreeNode};
use crate::meta::{DatasetId, JobId};

/// Numbers given out since the last sweep before the next one may run (or a quarter of the
/// table, if more): a sweep costs a pass over the table, so it runs once per that many.
pub(super) const SWEEP_AFTER: usize = 4_096;

/// What the trees of one mount share (the live tree and the trees of the past): how many
/// numbers the kernel holds in all of them, and the clock every use of a number is dated by.
#[derive(Default)]
pub struct HeldInMount {
    count: AtomicUsize,
    clock: AtomicU64,
}

impl HeldInMount {
    /// Returns how many numbers the kernel holds in the mount's trees.
    pub fn count(&self) -> usize {
        self.count.load(Ordering::Relaxed)
    }

    fn tick(&self) -> u64 {
        self.clock.fetch_add(1, Ordering::Relaxed) + 1
    }
}

/// The entries of a file or link the kernel holds: what a round of forgetting names.
#[derive(Debug)]
pub struct HeldEntry {
    /// When its number was last used (the mount's clock).
    pub used: u64,
    /// Its number.
    pub ino: Ino,
    /// What it stands for.
    pub node: TreeNode,
    /// Each directory the kernel has it in, and its name there (one object shows in every
    /// query view it matches, under one number).
    pub entries: Vec<(Ino, String)>,
}

/// The most entries kept of one number: an object in more query views than this at once
/// keeps the kernel's other entries of it until the kernel drops them itself.
const MOST_ENTRIES: usize = 8;

/// What one number stands for, and whether the kernel holds it.
struct Numbered {
    node: TreeNode,
    /// Entries the kernel was given with this number and has not forgotten (its lookup
    /// count). None: the number was only shown (a plain listing, `..`) or the kernel forgot
    /// it; it goes once unused for a whole sweep period, and the node gets a new one if shown
    /// again after that.
    lookups: u64,
    /// The directories and names the kernel was given it under (the last [`MOST_ENTRIES`]).
    entries: Vec<(u64, Box<str>)>,
    /// The mount's clock when the number was last given out or asked about.
    used: u64,
}

impl Numbered {
    fn new(node: TreeNode, used: u64) -> Self {
        Numbered {
            node,
            lookups: 0,
            entries: Vec::new(),
            used,
        }
    }
}

pub(super) struct Table {
    by_ino: HashMap<u64, Numbered>,
    by_node: HashMap<TreeNode, u64>,
    next: u64,
    /// What the tree's fixed numbers are offset by.
    base: u64,
    /// The clock at the last sweep: a number the kernel does not hold and unused since goes
    /// at the next one.
    swept_at: u64,
    /// Numbers given out since the last sweep.
    given_since_sweep: usize,
    /// How many numbers of this table the kernel holds.
    held: usize,
    shared: Arc<HeldInMount>,
    /// The partitions under which each job directory has a number (a job is in every
    /// partition of its dataset, and they all show its rows).
    job_keys: HashMap<(DatasetId, JobId), Vec<String>>,
}

impl Drop for Table {
    fn drop(&mut self) {
        // A tree of the past let go: the kernel's entries of it no longer count.
        self.shared.count.fetch_sub(self.held, Ordering::Relaxed);
    }
}

impl Table {
    /// A table of the tree whose numbers are `base` plus the mount tree's.
    pub(super) fn new(base: u64, shared: Arc<HeldInMount>) -> Self {
        let mut table = Table {
            by_ino: HashMap::new(),
            by_node: HashMap::new(),
            next: base + FIRST_DYNAMIC,
            base,
            swept_at: 0,
            given_since_sweep: 0,
            held: 0,
            shared,
            job_keys: HashMap::new(),
        };
        for (node, ino) in FIXED {
            table
                .by_ino
                .insert(base + ino, Numbered::new(node.clone(), 0));
            table.by_node.insert(node, base + ino);
        }
        table
    }

    pub(super) fn len(&self) -> usize {
        self.by_ino.len()
    }

    pub(super) fn held(&self) -> usize {
        self.held
    }

    fn is_fixed(&self, ino: u64) -> bool {
        ino > self.base && ino < self.base + FIRST_DYNAMIC
    }

    /// Returns the number of `node`, giving it one if it has none, marked used now.
    pub(super) fn number(&mut self, node: &TreeNode) -> u64 {
        let now = self.shared.tick();
        if let Some(&ino) = self.by_node.get(node) {
            if let Some(n) = self.by_ino.get_mut(&ino) {
                n.used = now;
            }
            return ino;
        }
        self.sweep_if_due();
        let ino = self.next;
        self.next += 1;
        self.by_ino.insert(ino, Numbered::new(node.clone(), now));
        self.by_node.insert(node.clone(), ino);
        if let TreeNode::Job(ds, key, job) = node {
            self.job_keys
                .entry((*ds, *job))
                .or_default()
                .push(key.clone());
        }
        self.given_since_sweep += 1;
        ino
    }

    /// Returns the numbers of job `job` of dataset `ds` under each of its partitions.
    pub(super) fn job_everywhere(&self, ds: DatasetId, job: JobId) -> Vec<u64> {
        let keys = self
            .job_keys
            .get(&(ds, job))
            .map(Vec::as_slice)
            .unwrap_or_default();
        (keys.iter())
            .filter_map(|key| {
                self.by_node
                    .get(&TreeNode::Job(ds, key.clone(), job))
                    .copied()
            })
            .collect()
    }

    /// Forgets that `node` has a number (it had, and lost it).
    fn unindex(&mut self, node: &TreeNode) {
        if let TreeNode::Job(ds, key, job) = node
            && let Some(keys) = self.job_keys.get_mut(&(*ds, *job))
        {
            keys.retain(|k| k != key);
            if keys.is_empty() {
                self.job_keys.remove(&(*ds, *job));
            }
        }
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
                self.unindex(&node);
            }
        }
        self.swept_at = self.shared.tick();
        self.given_since_sweep = 0;
        // The maps give back what a burst made them take.
        if self.by_ino.capacity() > 4 * self.by_ino.len().max(SWEEP_AFTER) {
            self.by_ino.shrink_to(2 * self.by_ino.len());
            self.by_node.shrink_to(2 * self.by_node.len());
        }
    }

    /// Returns the node numbered `ino`, marked used now.
    pub(super) fn node(&mut self, ino: u64) -> Option<TreeNode> {
        let now = self.shared.tick();
        let n = self.by_ino.get_mut(&ino)?;
        n.used = now;
        Some(n.node.clone())
    }

    pub(super) fn existing(&self, node: &TreeNode) -> Option<u64> {
        self.by_node.get(node).copied()
    }

    /// Counts one more entry of `ino` given to the kernel as `name` in `parent`; false when
    /// `ino` stands for nothing.
    pub(super) fn hold(&mut self, ino: u64, parent: Ino, name: &str) -> bool {
        let (now, fixed) = (self.shared.tick(), self.is_fixed(ino));
        let Some(n) = self.by_ino.get_mut(&ino) else {
            return false;
        };
        n.used = now;
        if fixed {
            return true;
        }
        if !n
            .entries
            .iter()
            .any(|(p, m)| *p == parent.0 && **m == *name)
        {
            if n.entries.len() == MOST_ENTRIES {
                n.entries.remove(0);
            }
            n.entries.push((parent.0, name.into()));
        }
        n.lookups += 1;
        if n.lookups == 1 {
            self.held += 1;
            self.shared.count.fetch_add(1, Ordering::Relaxed);
        }
        true
    }

    /// Records that the kernel's entry `from` of `ino`, if it holds one, is `to` now.
    pub(super) fn renamed(&mut self, ino: u64, from: (Ino, &str), to: (Ino, &str)) {
        if let Some(n) = self.by_ino.get_mut(&ino)
            && n.lookups > 0
        {
            n.entries.retain(|(p, m)| (*p, &**m) != (from.0.0, from.1));
            n.entries.push((to.0.0, to.1.into()));
        }
    }

    /// The kernel forgot `lookups` entries of `ino`; the number stays a sweep period.
    pub(super) fn forget(&mut self, ino: u64, lookups: u64) {
        let (now, fixed) = (self.shared.tick(), self.is_fixed(ino));
        let Some(n) = self.by_ino.get_mut(&ino) else {
            return;
        };
        if fixed || n.lookups == 0 {
            return;
        }
        n.lookups = n.lookups.saturating_sub(lookups);
        n.used = now;
        if n.lookups == 0 {
            n.entries = Vec::new();
            self.no_longer_held();
        }
    }

    fn no_longer_held(&mut self) {
        self.held -= 1;
        self.shared.count.fetch_sub(1, Ordering::Relaxed);
    }

    /// Returns up to `most` entries of files and links the kernel holds, used longest ago
    /// first. Never a directory's: it may be some process's working directory, which the
    /// kernel would then show as deleted.
    pub(super) fn least_used_entries(&mut self, most: usize) -> Vec<HeldEntry> {
        let mut held: Vec<(u64, u64)> = (self.by_ino.iter())
            .filter(|(_, n)| n.lookups > 0 && !n.entries.is_empty() && !n.node.is_dir())
            .map(|(ino, n)| (n.used, *ino))
            .collect();
        if held.len() > most {
            held.select_nth_unstable(most);
            held.truncate(most);
        }
        held.sort_unstable();
        (held.into_iter())
            .filter_map(|(used, ino)| {
                let n = self.by_ino.get(&ino)?;
                let entries = (n.entries.iter())
                    .map(|(parent, name)| (Ino(*parent), name.to_string()))
                    .collect();
                Some(HeldEntry {
                    used,
                    ino: Ino(ino),
                    node: n.node.clone(),
                    entries,
                })
            })
            .collect()
    }

    /// Marks `ino` used now: a round named it, and an entry the kernel keeps anyway must not
    /// be named again at the next round, before the others.
    pub(super) fn touch(&mut self, ino: u64) {
        let now = self.shared.tick();
        if let Some(n) = self.by_ino.get_mut(&ino) {
            n.used = now;
        }
    }

    /// Gives `ino` the node `node`, keeping what the kernel holds of it.
    pub(super) fn bind(&mut self, ino: u64, node: TreeNode) {
        let now = self.shared.tick();
        let numbered = match self.by_ino.remove(&ino) {
            Some(old) => {
                self.by_node.remove(&old.node);
                self.unindex(&old.node);
                Numbered { node, ..old }
            }
            None => Numbered::new(node, now),
        };
        self.by_ino.insert(ino, numbered);
    }

    /// Points `node` at `ino`; a number `node` had before goes (what it stood for is gone).
    pub(super) fn point(&mut self, node: TreeNode, ino: u64) {
        if let Some(replaced) = self.by_node.insert(node, ino)
            && replaced != ino
            && let Some(gone) = self.by_ino.remove(&replaced)
            && gone.lookups > 0
        {
            self.no_longer_held();
        }
    }

    /// Points `node` at `ino` too (a number `node` had keeps standing for it: the kernel may
    /// hold it).
    pub(super) fn alias(&mut self, node: TreeNode, ino: u64) {
        self.by_node.insert(node, ino);
    }

    /// The numbered nodes, for a rename that moves many.
    pub(super) fn numbered(&self) -> impl Iterator<Item = (&TreeNode, &u64)> {
        self.by_node.iter()
    }
}
