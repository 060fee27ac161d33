//! Other processes' commits to a shared store: hearing their announcements, dropping what the
//! core keeps, saying what the kernel must forget (the attributes of the objects named and
//! every name this mount showed them under, by lookup or by listing), and keeping an answer
//! read before an announcement from reaching the kernel after that announcement's
//! invalidations with a time-to-live, where it would outlive them.
//!
//! The race this closes: a lookup or listing reads the store, another host commits a rename,
//! its announcement arrives and the kernel is told to forget the old name, and only then is
//! the answer read before the commit sent: the kernel would keep the old name for the whole
//! entry time-to-live. So every answer that gives the kernel names takes the [`Epoch`] before
//! it reads, and replies under a [`ReplyGate`]: the gate is held while the reply is sent, and
//! an announcement moves the epoch only while no gate is held (then sends its invalidations).
//! An answer sent under the gate before the move reaches the kernel before the invalidations;
//! one whose epoch moved is sent with a time-to-live of zero, so the kernel keeps nothing of it.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{RwLock, RwLockReadGuard};
use std::time::Duration;

use super::FsCore;
use super::inode::{Ino, TreeNode};
use crate::health::{self, Part};
use crate::meta::{JobId, ObjectId};
use crate::storage::Storage;
use crate::storage::{ChangesElsewhere, Iden};

/// What the kernel must forget after another process changed the store.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum KernelInval {
    /// The attributes (and cached pages) of an inode.
    Attributes(Ino),
    /// A name in a directory.
    Entry(Ino, String),
}

/// How many announcements naming objects the core had heard when an answer began to read the
/// store.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Epoch(u64);

/// Held while a reply giving the kernel names is sent: no announcement moves the epoch
/// meanwhile.
pub struct ReplyGate<'a> {
    _turn: RwLockReadGuard<'a, ()>,
    fresh: bool,
}

impl ReplyGate<'_> {
    /// Returns whether no announcement came since the answer began to read the store.
    pub fn fresh(&self) -> bool {
        self.fresh
    }

    /// Returns how long the kernel may keep the answer: `ttl` when it is fresh, else nothing.
    pub fn ttl(&self, ttl: Duration) -> Duration {
        if self.fresh { ttl } else { Duration::ZERO }
    }
}

/// What the core heard of other processes' commits.
#[derive(Default)]
pub(super) struct Announcements {
    epoch: AtomicU64,
    turn: RwLock<()>,
}

impl Announcements {
    fn epoch(&self) -> Epoch {
        Epoch(self.epoch.load(Ordering::SeqCst))
    }

    fn gate(&self, since: Epoch) -> ReplyGate<'_> {
        let turn = self.turn.read().unwrap_or_else(|e| e.into_inner());
        let fresh = self.epoch.load(Ordering::SeqCst) == since.0;
        ReplyGate { _turn: turn, fresh }
    }

    /// Runs `drop_caches`, then moves the epoch, while no reply gate is held.
    pub(super) fn announce(&self, drop_caches: impl FnOnce()) {
        let _turn = self.turn.write().unwrap_or_else(|e| e.into_inner());
        // Caches first: an answer that sees the new epoch reads past every cache of the old.
        drop_caches();
        self.epoch.fetch_add(1, Ordering::SeqCst);
    }
}

impl<S: Storage> FsCore<S> {
    /// Says that other processes change the store and the core hears of it (a shared store):
    /// from now on listings remember the names they show, so that an announcement naming an
    /// object has the kernel forget them too.
    pub fn hear_changes_elsewhere(&self) {
        self.ns.known.remember_listings();
    }

    /// Returns the epoch to take before an answer giving the kernel names reads the store.
    pub fn epoch(&self) -> Epoch {
        self.elsewhere.epoch()
    }

    /// Returns the gate to hold while sending an answer that began at epoch `since`.
    pub fn reply_gate(&self, since: Epoch) -> ReplyGate<'_> {
        self.elsewhere.gate(since)
    }

    /// Waits at most `timeout` for other processes' commits to the store, drops the core's
    /// caches (whether it heard of any or not: a missed announcement costs at most
    /// `timeout`), and returns what the kernel must forget of the objects they changed: each
    /// one's attributes and the names this mount showed it under.
    pub fn next_kernel_invalidations(&self, timeout: Duration) -> Vec<KernelInval> {
        self.hear_changes_elsewhere();
        let heard = self.ns.meta.storage().wait_for_change(timeout);
        match &heard {
            Ok(_) => {
                if health::set(Part::Announcements, true, "hearing other hosts' commits")
                    == Some(false)
                {
                    tracing::info!("the announcements connection is back");
                }
            }
            Err(e) => {
                let detail = format!(
                    "lost ({e}): other hosts' changes show only once what this mount keeps \
                     expires (CRONUSFS_CACHE_TTL_MS); reconnecting every second"
                );
                if health::set(Part::Announcements, false, &detail) != Some(false) {
                    tracing::warn!("the announcements connection is {detail}");
                }
                std::thread::sleep(timeout.min(Duration::from_secs(1)));
            }
        }
        // Objects, folders and links: what has a place in a job directory.
        let placed: Vec<String> = match heard {
            Ok(ChangesElsewhere::Nodes(idens)) => (idens.into_iter())
                .filter(|i| i.parse::<ObjectId>().is_ok() || i.contains("/folders/"))
                .collect(),
            _ => Vec::new(),
        };
        if placed.is_empty() {
            // Nothing, anything, or nothing placed (a heartbeat): nothing for the kernel to
            // forget now (its 1 s caches expire by themselves), so no answer need be held back.
            self.ns.forget_cached_answers();
            return Vec::new();
        }
        self.elsewhere.announce(|| self.ns.forget_cached_answers());
        // A name another host made is known to no listing here: every missing name the
        // kernel was told of is forgotten.
        self.negatives.forget_all();
        let mut out = Vec::new();
        for iden in &placed {
            let mut paths = Vec::new();
            if let Ok(id) = iden.parse::<ObjectId>() {
                if let Some(ino) = self.ns.inodes.existing(&TreeNode::Object(id)) {
                    out.push(KernelInval::Attributes(ino));
                }
                paths = self.ns.known.paths_of(id);
            }
            // Where it is now (a new name, a folder or link): its directory's time moved too.
            let iden = Iden::new(iden.as_str()).ok();
            let now = iden.and_then(|i| self.ns.meta.place_of(&i).ok().flatten());
            paths.extend(now.map(|p| p.key()));
            for key in paths {
                if let Some((dir, name)) = self.entry_of(&key) {
                    for inval in [KernelInval::Attributes(dir), KernelInval::Entry(dir, name)] {
                        if !out.contains(&inval) {
                            out.push(inval);
                        }
                    }
                }
            }
        }
        out
    }

    /// Returns the directory inode (if the kernel has one) and leaf name of the object path
    /// `key` (`<ds>/<key>/<job>/<name>`).
    pub(super) fn entry_of(&self, key: &str) -> Option<(Ino, String)> {
        let mut parts = key.splitn(4, '/');
        let (ds, part, job, name) = (parts.next()?, parts.next()?, parts.next()?, parts.next()?);
        let (ds, job) = (ds.parse().ok()?, JobId(job.parse().ok()?));
        let dir = match name.rsplit_once('/') {
            Some((folder, _)) => TreeNode::Folder(ds, part.to_string(), job, folder.to_string()),
            None => TreeNode::Job(ds, part.to_string(), job),
        };
        let leaf = name.rsplit('/').next()?.to_string();
        Some((self.ns.inodes.existing(&dir)?, leaf))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_answer_begun_before_an_announcement_is_not_kept_after_it() {
        let heard = Announcements::default();
        let since = heard.epoch();
        assert!(heard.gate(since).fresh());
        heard.announce(|| {});
        let stale = heard.gate(since);
        assert!(!stale.fresh());
        assert_eq!(stale.ttl(Duration::from_secs(1)), Duration::ZERO);
        drop(stale);
        let now = heard.epoch();
        assert_eq!(
            heard.gate(now).ttl(Duration::from_secs(1)),
            Duration::from_secs(1)
        );
    }

    #[test]
    fn an_announcement_waits_for_replies_being_sent() {
        let heard = Announcements::default();
        let since = heard.epoch();
        let gate = heard.gate(since);
        std::thread::scope(|s| {
            let announcing = s.spawn(|| heard.announce(|| {}));
            std::thread::sleep(Duration::from_millis(50));
            assert!(
                !announcing.is_finished(),
                "moved while a reply was being sent"
            );
            assert_eq!(heard.epoch(), since);
            drop(gate);
            announcing.join().unwrap();
        });
        assert_ne!(heard.epoch(), since);
    }
}
