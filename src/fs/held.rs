//! What the kernel holds of the tree: the entries it was given and has not forgotten (FUSE's
//! lookup counts, kept by [`Inodes`](super::inode::Inodes)), and the bound on them: past
//! `FsOptions::max_inodes` numbers held, the kernel is told to forget the job directories and
//! folders used longest ago, and so everything under them, so that the daemon's memory
//! follows a budget whatever the store holds.

use std::sync::Mutex;
use std::time::{Duration, Instant};

use super::elsewhere::KernelInval;
use super::inode::{Ino, TreeNode};
use super::{Attr, Caller, FsCore, FsError, FsResult};
use crate::storage::Storage;

/// The least time between two rounds of forgetting: the kernel's forgets of a round arrive
/// in the meantime.
const ROUND_EVERY: Duration = Duration::from_millis(100);

/// How many times a lookup is made again when its number went before it was counted.
const LOOKUP_TRIES: usize = 4;

/// How many numbers a mount lets the kernel hold by default.
pub const DEFAULT_MAX_INODES: usize = 1_000_000;

/// When the last round of forgetting began.
#[derive(Default)]
pub(super) struct Rounds(Mutex<Option<Instant>>);

impl Rounds {
    /// Returns whether a round may begin now (none began within [`ROUND_EVERY`]).
    fn begin(&self) -> bool {
        let mut last = self.0.lock().unwrap_or_else(|e| e.into_inner());
        let now = Instant::now();
        if last.is_some_and(|at| now.duration_since(at) < ROUND_EVERY) {
            return false;
        }
        *last = Some(now);
        true
    }
}

impl<S: Storage> FsCore<S> {
    /// Counts an entry of `ino` given to the kernel in directory `parent` (a lookup's, a
    /// create's, a `readdirplus` entry); false when the number stands for nothing any more
    /// (the name must be looked up again). Past the budget of numbers held, has the kernel
    /// forget some.
    pub fn hold(&self, ino: Ino, parent: Ino) -> bool {
        if let Some(core) = self.past_core_of_handle(ino.0) {
            return core.hold(ino, parent);
        }
        let held = self.ns.inodes.hold(ino, parent);
        if held {
            self.forget_least_used_if_over();
        }
        held
    }

    /// Looks `name` up in directory `parent` for `caller` for an entry the kernel keeps: the
    /// number answered is counted as held (looked up again in the unlikely case it went
    /// between the lookup and the count).
    pub fn lookup_held(&self, parent: Ino, name: &str, caller: &Caller) -> FsResult<Attr> {
        for _ in 0..LOOKUP_TRIES {
            let attr = self.lookup_as(parent, name, caller)?;
            if self.hold(attr.ino, parent) {
                return Ok(attr);
            }
        }
        Err(FsError::NotFound)
    }

    /// The kernel forgot `lookups` entries of `ino` (FUSE's `forget`).
    pub fn forget(&self, ino: Ino, lookups: u64) {
        match self.past_core_of_handle(ino.0) {
            Some(core) => core.forget(ino, lookups),
            None => self.ns.inodes.forget(ino, lookups),
        }
    }

    /// When the kernel holds more numbers than [`FsOptions::max_inodes`](super::FsOptions),
    /// queues (at most once per [`ROUND_EVERY`]) the invalidation of the directories used
    /// longest ago that it holds enough numbers in to go back to three quarters of the
    /// bound: it then forgets whatever under them is not in use.
    fn forget_least_used_if_over(&self) {
        let (max, held) = (self.options.max_inodes, self.ns.inodes.held());
        if max == 0 || held <= max || !self.held_rounds.begin() {
            return;
        }
        let excess = held - max / 4 * 3;
        let dirs = (self.ns.inodes).least_used_dirs(excess, |d| naming(d).is_some());
        let invals: Vec<KernelInval> = (dirs.iter())
            .filter_map(|dir| self.entry_naming(dir))
            .collect();
        crate::meters::count(crate::meters::INODE_BUDGET_ROUNDS, 1);
        self.negatives.queue(invals);
    }

    /// The entry that names directory `dir` in its parent, as the kernel knows it.
    fn entry_naming(&self, dir: &TreeNode) -> Option<KernelInval> {
        let (parent, name) = naming(dir)?;
        Some(KernelInval::Entry(self.ns.inodes.existing(&parent)?, name))
    }
}

/// The parent and name of directory `dir` (`None` for a directory the daemon does not have
/// the kernel forget: the root's and `.cronusfs`, which hold few).
fn naming(dir: &TreeNode) -> Option<(TreeNode, String)> {
    Some(match dir {
        TreeNode::Dataset(ds) => (TreeNode::Datasets, ds.to_string()),
        TreeNode::Partitions(ds) => (TreeNode::Dataset(*ds), "partitions".to_string()),
        TreeNode::Partition(ds, key) => (TreeNode::Partitions(*ds), key.clone()),
        TreeNode::Jobs(ds, key) => (TreeNode::Partition(*ds, key.clone()), "jobs".into()),
        TreeNode::Job(ds, key, job) => (TreeNode::Jobs(*ds, key.clone()), job.to_string()),
        TreeNode::Folder(ds, key, job, path) => match path.rsplit_once('/') {
            Some((up, name)) => (
                TreeNode::Folder(*ds, key.clone(), *job, up.to_string()),
                name.to_string(),
            ),
            None => (TreeNode::Job(*ds, key.clone(), *job), path.clone()),
        },
        TreeNode::View(path) => match path.rsplit_once('/') {
            Some((up, name)) => (TreeNode::View(up.to_string()), name.to_string()),
            None => (TreeNode::Query, path.clone()),
        },
        _ => return None,
    })
}
