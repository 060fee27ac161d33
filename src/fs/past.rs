//! The past as paths: `at/<T>/` and `snapshots/<name>/`. Each time a name spells is a tree of
//! its own, a read-only [`FsCore`] over the catalogue as it was then ([`Metastore::at`]), with
//! inode and handle numbers apart from the live tree's: `1 << 63 | slot << 32 | n`. The live
//! core sends every request about such a number to the core that gave it out. A slot is given
//! to a tree only once it is made (a lookup that fails uses none), and never again to another:
//! the kernel may still hold numbers of a tree that was dropped.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use super::file::OpenFiles;
use super::inode::{HeldInMount, Ino, Inodes, TreeNode};
use super::namespace::Namespace;
use super::{Attr, DirEntry, FsCore, FsError, FsOptions, FsResult, attr::Defaults, content_cache};
use crate::meta::{Metastore, Snapshot};
use crate::storage::Storage;
use crate::storage::history::parse_time;

/// A tree of the past.
pub(super) type PastCore = FsCore<Box<dyn Storage>>;

/// The bit of every inode and handle number a tree of the past gives out.
const PAST: u64 = 1 << 63;
/// Where a number keeps its tree's slot.
const SLOT_SHIFT: u32 = 32;
/// The last slot a mount gives out (31 bits): past it, new trees are refused (ENOSPC) until
/// the mount is made again.
const LAST_SLOT: u64 = (1 << 31) - 1;
/// The inner number of a tree's root (the live root's number).
const ROOT_INNER: u64 = 1;
/// The most trees of the past a mount keeps; past it, the one used longest ago with no open
/// handle goes (its numbers then answer ENOENT, and a new lookup of its name makes it again).
const MAX_TREES: usize = 1024;

/// Returns the slot of the tree of the past that gave out number `n`, if one did.
fn slot_of(n: u64) -> Option<u64> {
    (n & PAST != 0).then_some((n & !PAST) >> SLOT_SHIFT)
}

/// What a name under `at/` or `snapshots/` asks for: two spellings of one time are two trees
/// (a directory has one name), and a snapshot made again under one name is a new tree.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
enum Spelling {
    At(String),
    Snapshot(String, i64),
}

struct Tree {
    spelling: Spelling,
    core: Arc<PastCore>,
    used: u64,
    /// For a snapshot's tree: when the snapshot was last found still there.
    checked: Option<Instant>,
}

/// How long a snapshot's tree answers before the snapshot is looked for again (removed, its
/// tree answers ENOENT from then on).
const SNAPSHOT_CHECK: Duration = Duration::from_secs(1);

#[derive(Default)]
struct Trees {
    by_slot: HashMap<u64, Tree>,
    by_spelling: HashMap<Spelling, u64>,
    /// The last slot given out or reserved.
    next_slot: u64,
    /// Slots reserved for trees whose making failed: no number of theirs was given out.
    unused: Vec<u64>,
    clock: u64,
}

/// The trees of the past a live core has made, by slot.
#[derive(Default)]
pub(super) struct PastTrees {
    trees: Mutex<Trees>,
}

impl PastTrees {
    fn lock(&self) -> MutexGuard<'_, Trees> {
        self.trees.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Returns every tree made and kept.
    pub(super) fn cores(&self) -> Vec<Arc<PastCore>> {
        self.lock()
            .by_slot
            .values()
            .map(|t| t.core.clone())
            .collect()
    }

    /// Returns the tree in `slot`; ENOENT when it went (see [`MAX_TREES`]).
    fn core(&self, slot: u64) -> FsResult<Arc<PastCore>> {
        let mut trees = self.lock();
        trees.clock += 1;
        let now = trees.clock;
        let tree = trees.by_slot.get_mut(&slot).ok_or(FsError::NotFound)?;
        tree.used = now;
        Ok(tree.core.clone())
    }

    /// Returns the tree `spelling` names, made by `make` (given the base of its numbers) the
    /// first time.
    fn tree(
        &self,
        spelling: Spelling,
        make: impl FnOnce(u64) -> FsResult<PastCore>,
    ) -> FsResult<Arc<PastCore>> {
        let made = self.lock().by_spelling.get(&spelling).copied();
        if let Some(slot) = made {
            return self.core(slot);
        }
        let slot = {
            let mut trees = self.lock();
            match trees.unused.pop() {
                Some(slot) => slot,
                None if trees.next_slot < LAST_SLOT => {
                    trees.next_slot += 1;
                    trees.next_slot
                }
                None => {
                    return Err(FsError::NoSpace(
                        "the mount made too many trees of the past",
                    ));
                }
            }
        };
        // Made outside the lock: opening the past reads the store.
        let core = match make(PAST | slot << SLOT_SHIFT) {
            Ok(core) => Arc::new(core),
            Err(e) => {
                self.lock().unused.push(slot);
                return Err(e);
            }
        };
        let mut trees = self.lock();
        if let Some(other) = trees.by_spelling.get(&spelling).copied() {
            trees.unused.push(slot);
            drop(trees);
            return self.core(other); // Made by another request meanwhile.
        }
        if trees.by_slot.len() >= MAX_TREES {
            evict_one(&mut trees);
        }
        trees.clock += 1;
        let used = trees.clock;
        trees.by_spelling.insert(spelling.clone(), slot);
        let tree = Tree {
            spelling,
            core: core.clone(),
            used,
            checked: Some(Instant::now()),
        };
        trees.by_slot.insert(slot, tree);
        Ok(core)
    }

    /// Returns whether the tree in `slot` shows a snapshot (its root's parent is `snapshots/`).
    fn is_snapshot(&self, slot: u64) -> bool {
        self.lock()
            .by_slot
            .get(&slot)
            .is_some_and(|t| matches!(t.spelling, Spelling::Snapshot(..)))
    }

    /// Returns the snapshot (name, creation) the tree in `slot` shows, when it is time to
    /// look whether it is still there.
    fn snapshot_to_check(&self, slot: u64) -> Option<(String, i64)> {
        let trees = self.lock();
        let tree = trees.by_slot.get(&slot)?;
        let Spelling::Snapshot(name, created) = &tree.spelling else {
            return None;
        };
        let fresh = tree.checked.is_some_and(|t| t.elapsed() < SNAPSHOT_CHECK);
        (!fresh).then(|| (name.clone(), *created))
    }

    /// Records that the snapshot of the tree in `slot` was found still there.
    fn snapshot_checked(&self, slot: u64) {
        if let Some(tree) = self.lock().by_slot.get_mut(&slot) {
            tree.checked = Some(Instant::now());
        }
    }
}

/// Drops the tree used longest ago that no handle has open.
fn evict_one(trees: &mut Trees) {
    let idle = trees
        .by_slot
        .iter()
        .filter(|(_, t)| !t.core.files.any_open())
        .min_by_key(|(_, t)| t.used)
        .map(|(slot, _)| *slot);
    if let Some(slot) = idle
        && let Some(tree) = trees.by_slot.remove(&slot)
    {
        trees.by_spelling.remove(&tree.spelling);
    }
}

impl PastCore {
    /// Returns the read-only tree of `meta` (a catalogue at a past time) whose numbers follow
    /// `base`, set up like the live core's `options` but with no content cache.
    fn of_past(
        meta: Metastore<Box<dyn Storage>>,
        options: &FsOptions,
        base: u64,
        held: Arc<HeldInMount>,
    ) -> Self {
        let options = FsOptions {
            read_only: true,
            cache_dir: None,
            // Its entries count toward the live tree's bound, which has the kernel forget them.
            max_inodes: 0,
            ..options.clone()
        };
        // Modes show as they were (a copy with `cp -a` keeps them); changes are EROFS.
        let defaults = Defaults {
            uid: options.uid,
            gid: options.gid,
            read_only: false,
        };
        FsCore {
            ns: Namespace::new(meta, defaults, Inodes::numbered_from(base, held), false),
            files: OpenFiles::numbered_from(base),
            elsewhere: Default::default(),
            contents: None::<content_cache::ContentCache>,
            cache_refused: None,
            past: None,
            negatives: Default::default(),
            control: Default::default(),
            held_rounds: Default::default(),
            options,
        }
    }

    fn root(&self) -> Ino {
        self.ns.inodes.ino(&TreeNode::Root)
    }
}

impl<S: Storage> FsCore<S> {
    /// Returns the tree of the past that gave out number `n` (an inode or a handle), when one
    /// of this core's did; ENOENT when its time is no longer kept (gc moved the oldest time
    /// kept past it), before any answer that would read nothing of the store.
    pub(super) fn past_core(&self, n: u64) -> FsResult<Option<Arc<PastCore>>> {
        let (Some(trees), Some(slot)) = (&self.past, slot_of(n)) else {
            return Ok(None);
        };
        let core = trees.core(slot)?;
        core.ns.meta.storage().check_readable()?;
        if let Some((name, created)) = trees.snapshot_to_check(slot) {
            // A snapshot's time is readable whatever the floor only while it is kept.
            match self.ns.meta.snapshot(&name)? {
                Some(s) if s.created == created => trees.snapshot_checked(slot),
                _ => return Err(FsError::NotFound),
            }
        }
        Ok(Some(core))
    }

    /// For a number a tree of the past gave out: that tree's path in the mount
    /// (`/at/<time>`, `/snapshots/<name>`) and the tree, while it is kept.
    pub(super) fn past_prefix(&self, ino: Ino) -> Option<(String, Arc<PastCore>)> {
        let (trees, slot) = (self.past.as_ref()?, slot_of(ino.0)?);
        let kept = trees.lock();
        let tree = kept.by_slot.get(&slot)?;
        let prefix = match &tree.spelling {
            Spelling::At(time) => format!("/at/{time}"),
            Spelling::Snapshot(name, _) => format!("/snapshots/{name}"),
        };
        Some((prefix, tree.core.clone()))
    }

    /// [`FsCore::past_core`] for a request that ends a handle (release, flush): it goes to
    /// its tree whatever the time kept, so that the handle is let go.
    pub(super) fn past_core_of_handle(&self, fh: u64) -> Option<Arc<PastCore>> {
        let (Some(trees), Some(slot)) = (&self.past, slot_of(fh)) else {
            return None;
        };
        trees.core(slot).ok()
    }

    /// Refuses a change in a tree of the past with EROFS (a change of this core's own nodes is
    /// refused by `writable` when the core is one).
    pub(super) fn refuse_past(&self, ino: Ino) -> FsResult<()> {
        match self.past.is_some() && slot_of(ino.0).is_some() {
            true => Err(FsError::ReadOnly),
            false => Ok(()),
        }
    }

    /// Returns whether what the core answers about `ino` can never change: it is in a tree
    /// of the past (the kernel may keep it as long as it likes).
    pub fn never_changes(&self, ino: Ino) -> bool {
        // Not a tree's root: the name a snapshot's root has may name another snapshot later.
        slot_of(ino.0).is_some() && ino.0 & ((1 << SLOT_SHIFT) - 1) != ROOT_INNER
    }

    /// Looks up `name` in `at/` or `snapshots/` (`None` for another directory): the root of
    /// the tree it names. ENOENT for a name that is no time or snapshot, a time in the future,
    /// before history began or older than what is kept.
    pub(super) fn lookup_past(&self, parent: &TreeNode, name: &str) -> FsResult<Option<Attr>> {
        let Some(trees) = &self.past else {
            return Ok(None);
        };
        let meta = &self.ns.meta;
        let core = match parent {
            TreeNode::At => {
                let at = parse_time(name).ok_or(FsError::NotFound)?;
                trees.tree(Spelling::At(name.to_string()), |base| {
                    Ok(PastCore::of_past(
                        meta.at(at)?,
                        &self.options,
                        base,
                        self.ns.inodes.shared().clone(),
                    ))
                })?
            }
            TreeNode::Snapshots => {
                let snap = meta.snapshot(name)?.ok_or(FsError::NotFound)?;
                return self.snapshot_root(trees, &snap).map(Some);
            }
            _ => return Ok(None),
        };
        // A tree made earlier outlives the time kept: looked up again, it is gone.
        core.ns.meta.storage().check_readable()?;
        core.getattr(core.root()).map(Some)
    }

    /// Returns the root of the tree of snapshot `snap`, made the first time.
    fn snapshot_root(&self, trees: &PastTrees, snap: &Snapshot) -> FsResult<Attr> {
        let spelling = Spelling::Snapshot(snap.name.clone(), snap.created);
        let core = trees.tree(spelling, |base| {
            let meta = self.ns.meta.snapshot_view(snap)?;
            let mut core =
                PastCore::of_past(meta, &self.options, base, self.ns.inodes.shared().clone());
            core.ns.scope = snap.dataset;
            Ok(core)
        })?;
        core.getattr(core.root())
    }

    /// Lists `snapshots/`: each snapshot's tree root.
    pub(super) fn list_snapshots(&self) -> FsResult<Vec<DirEntry>> {
        let Some(trees) = &self.past else {
            return Ok(Vec::new());
        };
        let mut entries = Vec::new();
        for snap in self.ns.meta.snapshots()? {
            match self.snapshot_root(trees, &snap) {
                Ok(attr) => entries.push(DirEntry {
                    name: snap.name,
                    attr,
                    place: None,
                }),
                // Removed while listed.
                Err(FsError::NotFound) => {}
                Err(e) => return Err(e),
            }
        }
        Ok(entries)
    }

    /// Returns the parent of directory `ino` of tree `core` (`..`): `at/` or `snapshots/` for
    /// the tree's root.
    pub(super) fn past_parent(&self, core: &PastCore, ino: Ino) -> FsResult<Ino> {
        let up = core.parent_of(ino)?;
        if up != ino {
            return Ok(up);
        }
        let snapshot = match (&self.past, slot_of(ino.0)) {
            (Some(trees), Some(slot)) => trees.is_snapshot(slot),
            _ => false,
        };
        let dir = if snapshot {
            TreeNode::Snapshots
        } else {
            TreeNode::At
        };
        Ok(self.ns.inodes.ino(&dir))
    }
}

impl<S: Storage> Namespace<S> {
    /// Returns whether the tree shows `node`: everything live; in a tree of the past, not
    /// `objects/` (the content store as it is now: what a past catalogue names is read through
    /// its objects); in the tree of a snapshot of one dataset, that dataset, its menu and
    /// configuration only.
    pub(super) fn in_scope(&self, node: &TreeNode) -> FsResult<bool> {
        if self.is_past() && matches!(node, TreeNode::Objects | TreeNode::Content(_)) {
            return Ok(false);
        }
        let Some(scope) = self.scope else {
            return Ok(true);
        };
        Ok(match node {
            TreeNode::Dataset(ds) => *ds == scope,
            TreeNode::Objects | TreeNode::Content(_) => false,
            TreeNode::Menu(uuid) | TreeNode::Config(uuid) => self
                .meta
                .dataset_transform(scope)?
                .is_some_and(|(menu, config)| *uuid == menu || *uuid == config),
            _ => true,
        })
    }

    /// Returns whether a view entry at `place` (`datasets/…`, `menus/…`, `configs/…`) is in
    /// the tree (see [`Namespace::in_scope`]).
    pub(super) fn place_in_scope(&self, place: &str) -> FsResult<bool> {
        let Some(scope) = self.scope else {
            return Ok(true);
        };
        let mut parts = place.splitn(3, '/');
        let (Some(top), Some(name)) = (parts.next(), parts.next()) else {
            return Ok(false);
        };
        match top {
            "datasets" => Ok(name == scope.to_string()),
            "menus" => self.in_scope(&TreeNode::Menu(name.to_string())),
            "configs" => self.in_scope(&TreeNode::Config(name.to_string())),
            _ => Ok(false),
        }
    }
}
