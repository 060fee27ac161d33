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

use std::sync::{Mutex, RwLock, RwLockReadGuard};
use std::time::{Duration, Instant};

use super::generations::{Generations, Reach};
use super::inode::{Ino, TreeNode};
use super::{FsCore, FsError};
use crate::health::{self, Part};
use crate::meta::{DatasetId, JobId, ObjectId, SESSIONS_SCOPE};
use crate::storage::{ChangesElsewhere, Iden, ScopeChanges, Storage};

/// Announcements heard within this long of the last round are taken together in the next.
const COALESCE: Duration = Duration::from_millis(10);

/// What the kernel must forget after another process changed the store.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum KernelInval {
    /// The attributes (and cached pages) of an inode.
    Attributes(Ino),
    /// A name in a directory.
    Entry(Ino, String),
}

/// How many announcements naming objects within what an answer reads the core had heard
/// when the answer began to read the store.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Epoch {
    reach: Reach,
    value: u64,
}

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
    epochs: Generations,
    turn: RwLock<()>,
    /// When the last round of announcements was acted on.
    last_round: Mutex<Option<Instant>>,
    /// When everything the core kept was last dropped (`None`: not yet).
    last_dropped_all: Mutex<Option<Instant>>,
}

impl Announcements {
    fn epoch(&self, reach: Reach) -> Epoch {
        let value = self.epochs.now(reach);
        Epoch { reach, value }
    }

    fn gate(&self, since: Epoch) -> ReplyGate<'_> {
        let turn = self.turn.read().unwrap_or_else(|e| e.into_inner());
        let fresh = self.epochs.now(since.reach) == since.value;
        ReplyGate { _turn: turn, fresh }
    }

    /// Runs `drop_caches`, then moves the epoch of what lies within `ds` (of everything, with
    /// `None`), while no reply gate is held.
    pub(super) fn announce(&self, within: Option<DatasetId>, drop_caches: impl FnOnce()) {
        let _turn = self.turn.write().unwrap_or_else(|e| e.into_inner());
        // Caches first: an answer that sees the new epoch reads past every cache of the old.
        drop_caches();
        match within {
            Some(ds) => self.epochs.bump_within(ds),
            None => self.epochs.bump(),
        }
    }
}

/// What an announcement's scope says of what the commits changed.
enum Within {
    /// Anything this mount shows.
    Store,
    /// One dataset's tree (and the views across datasets).
    Dataset(DatasetId),
    /// Nothing this mount shows (sessions, leases, holds).
    Unshown,
}

fn within(scope: Option<&str>) -> Within {
    match scope {
        None => Within::Store,
        Some(SESSIONS_SCOPE) => Within::Unshown,
        Some(s) => s.parse().map_or(Within::Store, Within::Dataset),
    }
}

impl<S: Storage> FsCore<S> {
    /// Says that other processes change the store and the core hears of it (a shared store):
    /// from now on listings remember the names they show, so that an announcement naming an
    /// object has the kernel forget them too.
    pub fn hear_changes_elsewhere(&self) {
        self.ns.known.remember_listings();
    }

    /// Returns the epoch to take before an answer about directory `ino` giving the kernel
    /// names reads the store.
    pub fn epoch(&self, ino: Ino) -> Epoch {
        let reach = self
            .ns
            .node(ino)
            .map_or(Reach::Everywhere, |n| self.ns.reach(&n));
        self.elsewhere.epoch(reach)
    }

    /// Returns the gate to hold while sending an answer that began at epoch `since`.
    pub fn reply_gate(&self, since: Epoch) -> ReplyGate<'_> {
        self.elsewhere.gate(since)
    }

    /// Waits at most `timeout` for other processes' commits to the store and returns what
    /// the kernel must forget of the nodes they changed: each object's attributes and the
    /// names this mount showed it under. What the core kept is dropped: of the datasets the
    /// commits said they lie within, or of everything when they did not say; and everything
    /// once `timeout` has passed since it last was, whatever was heard (a missed
    /// announcement costs at most `timeout`).
    pub fn next_kernel_invalidations(&self, timeout: Duration) -> Vec<KernelInval> {
        self.hear_changes_elsewhere();
        let heard = self.hear_within(timeout);
        let out = self.act_on(heard);
        // What was read `timeout` ago is dropped whatever was heard (a missed announcement
        // costs at most that); nothing for the kernel to forget (its caches expire by
        // themselves), so no answer need be held back.
        let mut last = (self.elsewhere.last_dropped_all.lock()).unwrap_or_else(|e| e.into_inner());
        if last.is_none_or(|l| l.elapsed() >= timeout) {
            *last = Some(Instant::now());
            self.ns.forget_cached_answers();
            crate::meters::count_labelled(crate::meters::CACHE_DROPS, "reach", "store");
        }
        out
    }

    /// Acts on what was heard: drops what the core kept of what changed, and returns what
    /// the kernel must forget.
    fn act_on(&self, heard: ChangesElsewhere) -> Vec<KernelInval> {
        let known = match heard {
            ChangesElsewhere::Nothing => return Vec::new(),
            ChangesElsewhere::Anything => {
                self.drop_everything();
                return Vec::new();
            }
            ChangesElsewhere::Known(known) => known,
        };
        crate::meters::count(crate::meters::ANNOUNCEMENT_ROUNDS, 1);
        let mut out = Vec::new();
        for ScopeChanges { scope, nodes } in known {
            let within = within(scope.as_deref());
            match (within, nodes) {
                (Within::Unshown, _) => {}
                (Within::Store, None) => self.drop_everything(),
                (Within::Dataset(ds), None) => self.drop_dataset(ds, self.shows(ds)),
                (Within::Store, Some(nodes)) => self.nodes_changed(None, nodes, &mut out),
                (Within::Dataset(ds), Some(nodes)) => self.nodes_changed(Some(ds), nodes, &mut out),
            }
        }
        each_once(out)
    }

    /// Waits at most `timeout` for announcements, and takes those that follow within
    /// [`COALESCE`] of the last round together.
    fn hear_within(&self, timeout: Duration) -> ChangesElsewhere {
        let mut heard = self.hear_once(timeout);
        let last = *self
            .elsewhere
            .last_round
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        if heard != ChangesElsewhere::Nothing
            && let Some(until) = last.map(|l| l + COALESCE)
        {
            while let Some(left) = until.checked_duration_since(Instant::now()) {
                heard = heard.merge(self.hear_once(left));
            }
        }
        if heard != ChangesElsewhere::Nothing {
            *self
                .elsewhere
                .last_round
                .lock()
                .unwrap_or_else(|e| e.into_inner()) = Some(Instant::now());
        }
        heard
    }

    /// Waits at most `timeout` for announcements; a lost connection is reported in the
    /// mount's health, and heard as [`ChangesElsewhere::Anything`] once it is back.
    fn hear_once(&self, timeout: Duration) -> ChangesElsewhere {
        match self.ns.meta.storage().wait_for_change(timeout) {
            Ok(heard) => {
                if health::set(Part::Announcements, true, "hearing other hosts' commits")
                    == Some(false)
                {
                    tracing::info!("the announcements connection is back");
                }
                heard
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
                ChangesElsewhere::Nothing
            }
        }
    }

    /// Drops everything the core kept, and has the kernel forget every missing name it was
    /// told of.
    fn drop_everything(&self) {
        self.elsewhere
            .announce(None, || self.ns.forget_cached_answers());
        self.negatives.forget_all();
        crate::meters::count_labelled(crate::meters::CACHE_DROPS, "reach", "store");
        *(self.elsewhere.last_dropped_all.lock()).unwrap_or_else(|e| e.into_inner()) =
            Some(Instant::now());
    }

    /// Adds to `out` what the kernel must forget after another host changed directory `dir`
    /// (its rows, or made or removed it): its attributes and its parent's, those of the
    /// directory that shows its rows too (`partitions/` a dataset's, `jobs/` a partition's),
    /// and, once it is gone, its name (a name still there is kept: a process's working
    /// directory in it would show as deleted). A job (`Job` with no partition) stands for
    /// the job under every partition.
    fn dir_changed(&self, dir: &TreeNode, out: &mut Vec<KernelInval>) {
        let gone = matches!(self.ns.rows_of(dir), Err(FsError::NotFound));
        let named: Vec<(TreeNode, TreeNode, String)> = match dir {
            TreeNode::Dataset(ds) => {
                let shows = TreeNode::Partitions(*ds);
                vec![
                    (dir.clone(), TreeNode::Datasets, ds.to_string()),
                    (shows, dir.clone(), "partitions".into()),
                ]
            }
            TreeNode::Partition(ds, key) => {
                let (parent, shows) = (TreeNode::Partitions(*ds), TreeNode::Jobs(*ds, key.clone()));
                vec![
                    (dir.clone(), parent, key.clone()),
                    (shows, dir.clone(), "jobs".into()),
                ]
            }
            // A job is in every partition: the kernel has it under those the table knows.
            TreeNode::Job(ds, _, job) => (self.ns.inodes.job_everywhere(*ds, *job).into_iter())
                .filter_map(|ino| match self.ns.inodes.node(ino)? {
                    TreeNode::Job(d, key, j) => {
                        let node = TreeNode::Job(d, key.clone(), j);
                        Some((node, TreeNode::Jobs(*ds, key), job.to_string()))
                    }
                    _ => None,
                })
                .collect(),
            _ => Vec::new(),
        };
        for (node, parent, name) in named {
            if let Some(ino) = self.ns.inodes.existing(&node) {
                out.push(KernelInval::Attributes(ino));
            }
            if let Some(parent) = self.ns.inodes.existing(&parent) {
                out.push(KernelInval::Attributes(parent));
                if gone {
                    out.push(KernelInval::Entry(parent, name));
                }
            }
        }
    }

    /// Returns whether this mount shows dataset `ds` (the kernel has its directory).
    fn shows(&self, ds: DatasetId) -> bool {
        self.ns.inodes.existing(&TreeNode::Dataset(ds)).is_some()
    }

    /// Drops what the core kept of dataset `ds` (and of the views across datasets); when
    /// names in it may have come or gone (`names`), answers being sent are not kept and the
    /// kernel forgets the missing names in it it was told of.
    fn drop_dataset(&self, ds: DatasetId, names: bool) {
        crate::meters::count_labelled(crate::meters::CACHE_DROPS, "reach", "dataset");
        if !names {
            return self.ns.forget_cached_answers_within(ds);
        }
        (self.elsewhere).announce(Some(ds), || self.ns.forget_cached_answers_within(ds));
        let reach = Reach::Dataset(ds);
        (self.negatives)
            .forget_where(|dir| self.ns.node(dir).is_ok_and(|n| self.ns.reach(&n) == reach));
    }

    /// Acts on commits that changed `nodes` (idens) within dataset `within` (anywhere, with
    /// `None`): drops what the core kept of them and adds to `out` what the kernel must
    /// forget of the objects, folders and links among them.
    fn nodes_changed(
        &self,
        within: Option<DatasetId>,
        nodes: Vec<String>,
        out: &mut Vec<KernelInval>,
    ) {
        // Objects, folders and links: what has a place in a job directory; and the dataset,
        // partition and job directories named.
        // A uuid names a dataset or an object: the dataset the commit lies within, or one
        // this mount shows, is taken for a dataset.
        let dataset = |i: &str| {
            i.parse::<DatasetId>()
                .is_ok_and(|ds| within == Some(ds) || self.shows(ds))
        };
        let (dirs, rest): (Vec<String>, Vec<String>) = (nodes.into_iter())
            .partition(|i| dataset(i) || (i.contains('/') && dir_node(i).is_some()));
        let placed: Vec<String> = (rest.into_iter())
            .filter(|i| i.parse::<ObjectId>().is_ok() || i.contains("/folders/"))
            .collect();
        let dirs: Vec<TreeNode> = dirs.iter().filter_map(|i| dir_node(i)).collect();
        // Where a node is now costs a read, and answers and missing names are only this
        // mount's to hold back or forget where it shows the dataset.
        let shown = within.is_none_or(|ds| self.shows(ds));
        match within {
            Some(ds) => self.drop_dataset(ds, shown && !(placed.is_empty() && dirs.is_empty())),
            None if placed.is_empty() => {
                self.ns.forget_cached_answers();
                crate::meters::count_labelled(crate::meters::CACHE_DROPS, "reach", "store");
            }
            None => self.drop_everything(),
        }
        if shown {
            for dir in &dirs {
                self.dir_changed(dir, out);
            }
        }
        for iden in &placed {
            let mut paths = Vec::new();
            if let Ok(id) = iden.parse::<ObjectId>() {
                if let Some(ino) = self.ns.inodes.existing(&TreeNode::Object(id)) {
                    out.push(KernelInval::Attributes(ino));
                }
                paths = self.ns.known.paths_of(id);
            }
            // Where it is now (a new name, a folder or link): its directory's time moved too.
            if shown {
                let iden = Iden::new(iden.as_str()).ok();
                let now = iden.and_then(|i| self.ns.meta.place_of(&i).ok().flatten());
                paths.extend(now.map(|p| p.key()));
            }
            for key in paths {
                if let Some((dir, name)) = self.entry_of(&key) {
                    out.push(KernelInval::Attributes(dir));
                    out.push(KernelInval::Entry(dir, name));
                }
            }
        }
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

/// Returns the directory node `iden` names: a dataset (its uuid), a partition
/// (`<ds>/partitions/<key>`) or a job of every partition (`<ds>/jobs/<n>`, as
/// `TreeNode::Jobs(ds, "")` stands for all its partitions: see `FsCore::dir_changed`).
fn dir_node(iden: &str) -> Option<TreeNode> {
    if let Ok(ds) = iden.parse::<DatasetId>() {
        return Some(TreeNode::Dataset(ds));
    }
    let (ds, rest) = iden.split_once('/')?;
    let ds: DatasetId = ds.parse().ok()?;
    if let Some(key) = rest.strip_prefix("partitions/") {
        return Some(TreeNode::Partition(ds, key.to_string()));
    }
    let job = JobId(rest.strip_prefix("jobs/")?.parse().ok()?);
    Some(TreeNode::Job(ds, String::new(), job))
}

/// Returns `invals` each once, in the order each was first named (a burst of thousands of
/// nodes names each directory many times).
fn each_once(invals: Vec<KernelInval>) -> Vec<KernelInval> {
    let mut seen = std::collections::HashSet::with_capacity(invals.len());
    (invals.into_iter())
        .filter(|i| seen.insert(i.clone()))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_answer_begun_before_an_announcement_is_not_kept_after_it() {
        let heard = Announcements::default();
        let since = heard.epoch(Reach::Everywhere);
        assert!(heard.gate(since).fresh());
        heard.announce(None, || {});
        let stale = heard.gate(since);
        assert!(!stale.fresh());
        assert_eq!(stale.ttl(Duration::from_secs(1)), Duration::ZERO);
        drop(stale);
        let now = heard.epoch(Reach::Everywhere);
        assert_eq!(
            heard.gate(now).ttl(Duration::from_secs(1)),
            Duration::from_secs(1)
        );
    }

    #[test]
    fn an_announcement_waits_for_replies_being_sent() {
        let heard = Announcements::default();
        let since = heard.epoch(Reach::Everywhere);
        let gate = heard.gate(since);
        std::thread::scope(|s| {
            let announcing = s.spawn(|| heard.announce(None, || {}));
            std::thread::sleep(Duration::from_millis(50));
            assert!(
                !announcing.is_finished(),
                "moved while a reply was being sent"
            );
            assert_eq!(heard.epoch(Reach::Everywhere), since);
            drop(gate);
            announcing.join().unwrap();
        });
        assert_ne!(heard.epoch(Reach::Everywhere), since);
    }

    #[test]
    fn invalidations_are_sent_once_each_in_the_order_first_named() {
        let (a, b) = (
            KernelInval::Attributes(Ino(7)),
            KernelInval::Entry(Ino(7), "x".into()),
        );
        let many = [a.clone(), b.clone(), a.clone(), b.clone(), a.clone()].to_vec();
        assert_eq!(each_once(many), vec![a, b]);
    }

    #[test]
    fn an_announcement_within_a_dataset_keeps_answers_about_another() {
        let heard = Announcements::default();
        let (a, b) = (DatasetId::random(), DatasetId::random());
        let of = |ds| heard.epoch(Reach::Dataset(ds));
        let (in_a, in_b, across) = (of(a), of(b), heard.epoch(Reach::Everywhere));
        heard.announce(Some(a), || {});
        assert!(!heard.gate(in_a).fresh(), "a's answer is not kept");
        assert!(heard.gate(in_b).fresh(), "b's answer is");
        assert!(!heard.gate(across).fresh(), "a view across datasets is not");
    }
}
