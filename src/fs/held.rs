//! What the kernel holds of the tree: the entries it was given and has not forgotten (FUSE's
//! lookup counts, kept by [`Inodes`](super::inode::Inodes)), and the bound on them: past
//! `FsOptions::max_inodes` numbers held, the kernel is told to forget the entries of files
//! and links used longest ago, so that the daemon's memory follows a budget whatever the
//! store holds.

use std::sync::Mutex;
use std::time::{Duration, Instant};

use super::elsewhere::KernelInval;
use super::inode::{HeldEntry, Ino, TreeNode};
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
    /// Counts an entry of `ino` given to the kernel as `name` in directory `parent` (a
    /// lookup's, a create's, a `readdirplus` entry); false when the number stands for nothing
    /// any more (the name must be looked up again). Past the budget of numbers held, has the
    /// kernel forget some.
    pub fn hold(&self, ino: Ino, parent: Ino, name: &str) -> bool {
        let held = match self.past_core_of_handle(ino.0) {
            Some(core) => core.ns.inodes.hold(ino, parent, name),
            None => self.ns.inodes.hold(ino, parent, name),
        };
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
            if self.hold(attr.ino, parent, name) {
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

    /// When the kernel holds more numbers than [`FsOptions::max_inodes`](super::FsOptions)
    /// in the mount's trees, queues (at most once per [`ROUND_EVERY`]) the invalidation of
    /// enough entries of files and links, used longest ago first and open by no handle, to
    /// go back to three quarters of the bound: the kernel then forgets them.
    fn forget_least_used_if_over(&self) {
        let (max, held) = (self.options.max_inodes, self.ns.inodes.shared().count());
        if max == 0 || held <= max || !self.held_rounds.begin() {
            return;
        }
        let excess = held - max / 4 * 3;
        let mut chosen = self.unused_entries(excess);
        for core in self.past.iter().flat_map(|p| p.cores()) {
            chosen.extend(core.unused_entries(excess));
        }
        chosen.sort_unstable_by_key(|e| e.used);
        chosen.truncate(excess);
        // Only what is named counts as used: the other trees' candidates keep their place.
        for e in &chosen {
            match self.past_core_of_handle(e.ino.0) {
                Some(core) => core.ns.inodes.named([e.ino]),
                None => self.ns.inodes.named([e.ino]),
            }
        }
        let invals: Vec<KernelInval> = (chosen.into_iter())
            .flat_map(|e| e.entries)
            .map(|(parent, name)| KernelInval::Entry(parent, name))
            .collect();
        crate::meters::count(crate::meters::INODE_BUDGET_ROUNDS, 1);
        self.negatives.queue(invals);
    }

    /// Up to `most` entries of files and links of this tree the kernel holds and no handle
    /// has open (its name would show deleted to the process holding it), used longest ago
    /// first.
    fn unused_entries(&self, most: usize) -> Vec<HeldEntry> {
        let (open, unused): (Vec<HeldEntry>, Vec<HeldEntry>) =
            (self.ns.inodes.least_used_entries(most))
                .into_iter()
                .partition(|e| match e.node {
                    TreeNode::Object(id) | TreeNode::ViewObject(id) => self.files.is_open(id),
                    _ => false,
                });
        // Open ones go to the back, lest they crowd out the others at every round.
        self.ns.inodes.named(open.iter().map(|e| e.ino));
        unused
    }
}
