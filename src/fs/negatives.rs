//! Names the kernel was told are missing, and for how long (negative entries): kept only
//! where a name appears through the kernel itself (a job directory or a folder, where files
//! and folders are made), and forgotten by the kernel as soon as the store may have gained a
//! name past it: a command a client ran on the mounted store over its socket, or another
//! host's commit (a shared store). The same thread has the kernel forget the attributes of
//! a directory that shows another node's rows when that node changes.

use std::collections::HashMap;
use std::sync::{Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use super::FsCore;
use super::elsewhere::KernelInval;
use super::inode::{Ino, TreeNode};
use crate::storage::Storage;

/// The most missing names remembered; past it, no more negative answers are kept by the
/// kernel until some expire (a lookup storm of missing names cannot grow the daemon).
const MAX_NEGATIVES: usize = 65_536;

/// The negative answers given and not yet expired, and the kernel invalidations waiting to be
/// sent.
#[derive(Default)]
pub(super) struct Negatives {
    state: Mutex<State>,
    queued: Condvar,
}

#[derive(Default)]
struct State {
    given: HashMap<(Ino, String), Instant>,
    pending: Vec<KernelInval>,
    /// How many batches were queued, and how many of them the kernel has been sent.
    queued: u64,
    sent: u64,
}

impl Negatives {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Records that the kernel may keep "`name` is not in `parent`" for `ttl`; returns false
    /// (keep nothing) when too many are kept already.
    fn note(&self, parent: Ino, name: &str, ttl: Duration) -> bool {
        let now = Instant::now();
        let mut state = self.lock();
        if state.given.len() >= MAX_NEGATIVES {
            state.given.retain(|_, until| *until > now);
            if state.given.len() >= MAX_NEGATIVES {
                return false;
            }
        }
        state.given.insert((parent, name.to_string()), now + ttl);
        true
    }

    /// Queues `invals` (sent as soon as the sending thread wakes).
    pub(super) fn queue(&self, invals: Vec<KernelInval>) {
        if invals.is_empty() {
            return;
        }
        let mut state = self.lock();
        state.pending.extend(invals);
        state.queued += 1;
        drop(state);
        self.queued.notify_all();
    }

    /// Queues the invalidation of every negative answer the kernel may still keep; returns
    /// the batch's number, once there is one to send ([`Negatives::wait_sent`]).
    pub(super) fn forget_all(&self) -> Option<u64> {
        self.forget_where(|_| true)
    }

    /// Queues the invalidation of every negative answer the kernel may still keep of a
    /// directory `dir` for which `which(dir)` holds; returns the batch's number, once there
    /// is one to send ([`Negatives::wait_sent`]).
    pub(super) fn forget_where(&self, which: impl Fn(Ino) -> bool) -> Option<u64> {
        let now = Instant::now();
        let mut state = self.lock();
        let mut live = Vec::new();
        state.given.retain(|(parent, name), until| {
            if !which(*parent) {
                return true;
            }
            if *until > now {
                live.push(KernelInval::Entry(*parent, name.clone()));
            }
            false
        });
        if live.is_empty() {
            return None;
        }
        state.pending.extend(live);
        state.queued += 1;
        let batch = state.queued;
        drop(state);
        self.queued.notify_all();
        Some(batch)
    }

    /// Queues the invalidation of the attributes of `ino` (sent as soon as the sending thread
    /// wakes, after the reply to the request that changed them).
    fn forget_attributes(&self, ino: Ino) {
        let mut state = self.lock();
        state.pending.push(KernelInval::Attributes(ino));
        state.queued += 1;
        drop(state);
        self.queued.notify_all();
    }

    /// Waits at most `timeout` until batch `batch` was sent to the kernel.
    pub(super) fn wait_sent(&self, batch: u64, timeout: Duration) {
        let state = self.lock();
        let _ = self
            .queued
            .wait_timeout_while(state, timeout, |s| s.sent < batch)
            .unwrap_or_else(|e| e.into_inner());
    }

    /// Waits at most `timeout` for queued invalidations, passes each to `send`, and then says
    /// they were sent.
    fn send_next(&self, timeout: Duration, send: &mut dyn FnMut(KernelInval)) {
        let state = self.lock();
        let (mut state, _) = self
            .queued
            .wait_timeout_while(state, timeout, |s| s.pending.is_empty())
            .unwrap_or_else(|e| e.into_inner());
        let (pending, batch) = (std::mem::take(&mut state.pending), state.queued);
        drop(state);
        for inval in pending {
            send(inval);
        }
        self.lock().sent = batch;
        self.queued.notify_all();
    }
}

impl<S: Storage> FsCore<S> {
    /// Returns how long the kernel may keep "`name` is not in `parent`" after a lookup found
    /// nothing (zero: not at all). Only in a job directory or a folder of the live tree, where
    /// a name appears through the kernel's own create, mkdir or rename, or past it through
    /// [`FsCore::run_external_change`] or another host's commit, which have the kernel forget
    /// the answer ([`FsCore::send_negative_invalidations`]).
    pub fn negative_ttl(&self, parent: Ino, name: &str, ttl: Duration) -> Duration {
        if !matches!(self.past_core(parent.0), Ok(None)) {
            return Duration::ZERO; // A tree of the past never gains a name.
        }
        let kept = matches!(
            self.ns.node(parent),
            Ok(TreeNode::Job(..) | TreeNode::Folder(..))
        );
        match kept && self.negatives.note(parent, name, ttl) {
            true => ttl,
            false => Duration::ZERO,
        }
    }

    /// Has the kernel forget the attributes of `ino` after the reply to the request running
    /// (an append the daemon placed elsewhere than the kernel's offset: the size it keeps is
    /// not the file's).
    pub fn forget_attributes(&self, ino: Ino) {
        self.negatives.forget_attributes(ino);
    }

    /// Has the kernel forget the attributes of the directory that shows the rows of `changed`
    /// besides `changed` itself (a dataset's `partitions/`, a partition's `jobs/`, and a
    /// dataset for its `partitions/`; a job directory under every other partition, for its
    /// rows and its entries' time): the kernel does not know they changed.
    pub(super) fn forget_shown_with(&self, changed: &TreeNode) {
        if let TreeNode::Job(ds, _, job) = changed {
            let own = self.ns.inodes.existing(changed);
            for ino in self.ns.inodes.job_everywhere(*ds, *job) {
                if Some(ino) != own {
                    self.negatives.forget_attributes(ino);
                }
            }
            return;
        }
        let also = match changed {
            TreeNode::Dataset(ds) => TreeNode::Partitions(*ds),
            // A new job moves its dataset's counter row (and so its ctime).
            TreeNode::Partitions(ds) | TreeNode::Jobs(ds, _) => TreeNode::Dataset(*ds),
            TreeNode::Partition(ds, key) => TreeNode::Jobs(*ds, key.clone()),
            _ => return,
        };
        if let Some(ino) = self.ns.inodes.existing(&also) {
            self.negatives.forget_attributes(ino);
        }
    }

    /// Waits at most `timeout` for what the kernel must forget (missing names the store may
    /// have gained past it, attributes of directories showing rows that changed) and has
    /// `send` send each to the kernel.
    pub fn send_negative_invalidations(
        &self,
        timeout: Duration,
        send: &mut dyn FnMut(KernelInval),
    ) {
        self.negatives.send_next(timeout, send);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn live_answers_are_forgotten_once_and_expired_ones_not_at_all() {
        let negatives = Negatives::default();
        assert!(negatives.note(Ino(5), "a", Duration::from_secs(60)));
        assert!(negatives.note(Ino(5), "gone", Duration::ZERO));
        assert_eq!(negatives.forget_all(), Some(1));
        let mut sent = Vec::new();
        negatives.send_next(Duration::ZERO, &mut |i| sent.push(i));
        assert_eq!(sent, [KernelInval::Entry(Ino(5), "a".into())]);
        negatives.wait_sent(1, Duration::from_secs(60)); // Returns at once: sent.
        assert_eq!(
            negatives.forget_all(),
            None,
            "each answer is forgotten once"
        );
        negatives.send_next(Duration::from_millis(10), &mut |i| sent.push(i));
        assert_eq!(sent.len(), 1);
    }
}
