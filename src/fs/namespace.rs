//! `Namespace`: the tree the mount shows, as read. The catalogue ([`Metastore`]) with the
//! files open handles have not committed yet merged over it ([`Uncommitted`]: files created
//! and not committed, sizes written and not committed, objects unlinked while open), the
//! inode numbers given out, and what is kept between reads (listings, nodes' rows, the objects
//! seen at each path). Every lookup, attribute, listing and row an answer gives comes from
//! here, so a new kind of node plugs in once; `FsCore` makes the changes and keeps the handles.

mod listing;

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use super::attr::{self, Attr, Defaults, Kind, time_of_millis};
use super::generations::{Generations, InProgress, Reach};
use super::inode::{Ino, Inodes, TreeNode};
use super::known_names::KnownNames;
use super::uncommitted::Uncommitted;
use super::view_access::Caller;
use super::{DirEntry, FsError, FsResult, cache, in_dir, parse_job, xattr};
use crate::meta::{ContentId, DatasetId, Metastore, ObjectId, ObjectPath, Placed, SetOrder, prop};
use crate::storage::{Iden, Row, Storage, Valu};

/// The tree as read: the catalogue with uncommitted files merged in, and what is kept between
/// reads.
pub struct Namespace<S: Storage> {
    pub(super) meta: Metastore<S>,
    pub(super) inodes: Inodes,
    pub(super) defaults: Defaults,
    /// When the mount started: the times of nodes that have no rows.
    pub(super) started: SystemTime,
    /// Bumped before and after every change made through the core, and within a dataset when
    /// another host's commit within it is heard: a cached listing taken at one value is
    /// current while the value of what it reads has not moved.
    pub(super) generations: Generations,
    /// How many changes through the core are in progress, by what they change: a change
    /// reads attributes before and after its writes within one generation, so none of what
    /// it may change are kept or served meanwhile.
    changing: InProgress,
    /// Bumped before and after every change made through the core, wherever it is: the
    /// order of this mount's own changes (see `dir_sets`).
    local: AtomicU64,
    listings: cache::GenerationCache<Listing>,
    /// The generation at which a time was last set on each directory through this mount: a
    /// file not committed yet that entered it before is known to come before the set (a
    /// directory shows the entry of such a file at once, and the store hears of it at the
    /// file's first commit; every other change of entries reaches the store in its own
    /// transaction).
    dir_sets: Mutex<HashMap<Ino, u64>>,
    /// Nodes' rows as attributes, kept like listings (`getfattr -d` lists, then reads each).
    pub(super) xattrs: cache::GenerationCache<xattr::NodeRows>,
    /// Directories' and messages' rows and the last change of their entries (what their
    /// attributes are made of), kept like listings.
    node_attr_rows: cache::GenerationCache<NodeAttrRows>,
    /// Objects' committed rows, kept like listings when the store is this process's alone
    /// (see [`Namespace::object_rows`]).
    object_rows: cache::GenerationCache<Arc<Vec<Row>>, ObjectId>,
    /// Whether other processes commit to the store too (a shared store).
    shared: bool,
    /// The objects seen at each path: one read for a repeated lookup, and the names the
    /// kernel must forget when another host changes an object.
    pub(super) known: KnownNames,
    /// What open handles have not committed yet.
    pub(super) uncommitted: Uncommitted,
    /// Whether the root answers `at` and `snapshots` (the live tree; a tree of the past has
    /// no past of its own).
    past_paths: bool,
    /// For the tree of a snapshot of one dataset: that dataset, the only one it shows (with
    /// its menu and configuration, and the view entries under it).
    pub(super) scope: Option<DatasetId>,
}

/// A directory's entries, shared between the handles reading them.
pub type Listing = Arc<Vec<DirEntry>>;

/// A node's rows and the last change of its entries (`None`: not a directory that keeps
/// one, or none yet).
type NodeAttrRows = Arc<(Vec<Row>, Option<i64>)>;

/// How many nodes' attribute rows are kept between reads (a few hundred bytes each).
const CACHED_NODE_ATTRS: usize = 4096;

/// Marks a change in progress: bumps the generation of what it changes (within one
/// dataset, or anything) when made and when dropped.
pub(super) struct Change<'a> {
    ns_local: &'a AtomicU64,
    generations: &'a Generations,
    changing: &'a InProgress,
    within: Reach,
}

impl Change<'_> {
    fn bump(&self) {
        self.ns_local.fetch_add(1, Ordering::SeqCst);
        match self.within {
            Reach::Dataset(ds) => self.generations.bump_within(ds),
            Reach::Everywhere => self.generations.bump(),
        }
    }
}

impl Drop for Change<'_> {
    fn drop(&mut self) {
        self.bump();
        self.changing.end(self.within);
    }
}

/// How many directory listings are kept between reads, and how many bytes they may take
/// together (a listing of a million entries is not kept: each handle reading it keeps its
/// own).
const CACHED_LISTINGS: usize = 16;
const LISTINGS_BUDGET: usize = 64 << 20;

/// How many bytes the nodes' rows kept as attributes may take together.
const XATTRS_BUDGET: usize = 32 << 20;

/// Returns about how many bytes `listing` takes.
fn listing_bytes(listing: &Listing) -> usize {
    (listing.iter())
        .map(|e| {
            std::mem::size_of::<DirEntry>() + e.name.len() + e.place.as_ref().map_or(0, |p| p.len())
        })
        .sum()
}

/// How many objects' rows the live tree keeps between reads (a few KiB each); a tree of the
/// past keeps few (a mount may hold a thousand of those trees).
const CACHED_OBJECTS: usize = 4096;
const CACHED_PAST_OBJECTS: usize = 16;

/// Names of the root's directories, in listing order.
const ROOT_DIRS: [(&str, TreeNode); 5] = [
    ("datasets", TreeNode::Datasets),
    ("menus", TreeNode::Menus),
    ("configs", TreeNode::Configs),
    ("objects", TreeNode::Objects),
    ("query", TreeNode::Query),
];

impl<S: Storage> Namespace<S> {
    /// Returns the tree over `meta`, with `defaults` for nodes that have no rows of their own.
    /// Its nodes are numbered by `inodes`; `past_paths` says whether its root has `at` and
    /// `snapshots`.
    pub(super) fn new(
        meta: Metastore<S>,
        defaults: Defaults,
        inodes: Inodes,
        past_paths: bool,
    ) -> Self {
        Namespace {
            shared: meta.storage().is_shared(),
            meta,
            inodes,
            past_paths,
            scope: None,
            defaults,
            started: SystemTime::now(),
            generations: Generations::default(),
            changing: InProgress::default(),
            local: AtomicU64::new(0),
            listings: cache::GenerationCache::new(CACHED_LISTINGS, "listing")
                .with_budget(LISTINGS_BUDGET, listing_bytes),
            xattrs: cache::GenerationCache::new(xattr::CACHED_NODES, "xattrs")
                .with_budget(XATTRS_BUDGET, xattr::rows_bytes),
            node_attr_rows: cache::GenerationCache::new(CACHED_NODE_ATTRS, "attributes"),
            object_rows: cache::GenerationCache::new(
                match past_paths {
                    true => CACHED_OBJECTS,
                    false => CACHED_PAST_OBJECTS,
                },
                "object_rows",
            ),
            dir_sets: Mutex::new(HashMap::new()),
            known: KnownNames::default(),
            uncommitted: Uncommitted::default(),
        }
    }

    /// Returns how many times changes made through the core began or ended (see `local`).
    pub(super) fn generation(&self) -> u64 {
        self.local.load(Ordering::SeqCst)
    }

    /// Returns the generation of what the answers about node `ino` read (see `generations`).
    pub(super) fn generation_of(&self, ino: Ino) -> u64 {
        let reach = self.node(ino).map_or(Reach::Everywhere, |n| self.reach(&n));
        self.generations.now(reach)
    }

    /// Returns what the answers about `node` read: the dataset whose tree it is in, or
    /// everything (a view across datasets, or an object found other than by its place).
    pub(super) fn reach(&self, node: &TreeNode) -> Reach {
        if let Some(ds) = node.dataset() {
            return Reach::Dataset(ds);
        }
        let (TreeNode::Object(id) | TreeNode::ViewObject(id)) = node else {
            return Reach::Everywhere;
        };
        // An object never leaves its dataset (a rename to another is refused).
        self.known
            .dataset_of(*id)
            .map_or(Reach::Everywhere, Reach::Dataset)
    }

    /// Drops every listing and row the tree keeps: the store changed other than through it.
    pub(super) fn forget_cached_answers(&self) {
        self.generations.bump();
    }

    /// Drops the listings and rows kept of dataset `ds` (and of the views across datasets).
    pub(super) fn forget_cached_answers_within(&self, ds: DatasetId) {
        self.generations.bump_within(ds);
    }

    /// Returns the committed rows of object `id` (empty: no such object). On a store this
    /// process alone commits to, every change goes through the core and moves the generation,
    /// so rows read while it has not moved are served again: a lookup, `stat`, `open` and
    /// `getfattr` of one object read it once. On a shared store they are read anew each time:
    /// another host's commit is seen at the next open, announced or not.
    pub(super) fn object_rows(&self, id: ObjectId) -> FsResult<Arc<Vec<Row>>> {
        let read = || Ok::<_, FsError>(Arc::new(self.meta.node_rows(&id.iden())?));
        match self.shared {
            true => read(),
            false => {
                let now = self.generations.now(self.reach(&TreeNode::Object(id)));
                self.object_rows.get_or(id, now, read)
            }
        }
    }

    /// Records that a time was set on directory `dir` through this mount now: the files not
    /// committed yet that entered it before no longer make its time.
    pub(super) fn dir_time_set(&self, dir: Ino) {
        let mut sets = self.dir_sets.lock().unwrap_or_else(|e| e.into_inner());
        sets.insert(dir, self.generation());
    }

    /// Returns where the last time set on directory `dir` through this mount falls against
    /// generation `seq`.
    pub(super) fn dir_time_set_order(&self, dir: Ino, seq: u64) -> SetOrder {
        let sets = self.dir_sets.lock().unwrap_or_else(|e| e.into_inner());
        match sets.get(&dir) {
            Some(set) if *set > seq => SetOrder::After,
            Some(_) => SetOrder::Before,
            None => SetOrder::Unknown,
        }
    }

    /// Returns when the last file not committed yet entered directory `dir` (a job directory
    /// or folder) after the last time set on it through this mount: its time until that
    /// file's first commit tells the store.
    pub(super) fn pending_entered_at(&self, dir: Ino) -> Option<i64> {
        let path = in_dir(&self.node(dir).ok()?, "")?;
        let set = self
            .dir_sets
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(&dir)
            .copied();
        self.uncommitted.pending_entered_in(&path, set)
    }

    /// Marks a change that may touch anything, in progress until the mark is dropped.
    pub(super) fn change(&self) -> Change<'_> {
        self.change_within(Reach::Everywhere)
    }

    /// Marks a change of node `ino` (or of entries of directory `ino`): within its dataset,
    /// when it is in one.
    pub(super) fn change_at(&self, ino: Ino) -> Change<'_> {
        let within = self.node(ino).map_or(Reach::Everywhere, |n| self.reach(&n));
        self.change_within(within)
    }

    /// Marks a change of entries of directories `from` and `to` (a rename).
    pub(super) fn change_between(&self, from: Ino, to: Ino) -> Change<'_> {
        let reach = |ino| self.node(ino).map_or(Reach::Everywhere, |n| self.reach(&n));
        let within = match (reach(from), reach(to)) {
            (a, b) if a == b => a,
            _ => Reach::Everywhere,
        };
        self.change_within(within)
    }

    fn change_within(&self, within: Reach) -> Change<'_> {
        self.changing.begin(within);
        let change = Change {
            ns_local: &self.local,
            generations: &self.generations,
            changing: &self.changing,
            within,
        };
        change.bump();
        change
    }

    /// Returns the listing of directory `ino`: the one taken last if nothing changed through
    /// the core since, else a fresh scan.
    pub(super) fn listing(&self, ino: Ino) -> FsResult<Listing> {
        let now = self.generation_of(ino);
        self.listings
            .get_or(ino, now, || Ok(Arc::new(self.readdir(ino)?)))
    }

    /// Returns whether this is a tree of the past (it has no `at` and `snapshots` of its own).
    pub(super) fn is_past(&self) -> bool {
        !self.past_paths
    }

    pub(super) fn node(&self, ino: Ino) -> FsResult<TreeNode> {
        self.inodes.node(ino).ok_or(FsError::NotFound)
    }

    /// Looks `name` up in directory `parent` for `caller` (in a query view, an entry the
    /// caller could not reach by its place is not there).
    pub fn lookup_as(&self, parent: Ino, name: &str, caller: &Caller) -> FsResult<Attr> {
        if name.len() > crate::meta::name_rules::MAX_NAME_BYTES {
            return Err(FsError::NameTooLong);
        }
        let dir = self.node(parent)?;
        if let TreeNode::View(_) = dir
            && let Some(entry) = self.view_entry(parent, name)?
        {
            self.check_reachable(&entry, caller)?;
        }
        let path = in_dir(&dir, name);
        if let Some(attr) = path
            .as_ref()
            .map(|p| self.known_object(p))
            .transpose()?
            .flatten()
        {
            return Ok(attr);
        }
        let before = self.generations.now(self.reach(&dir));
        let node = match self.child(&dir, name) {
            Err(FsError::NotFound) => {
                if let Some(path) = path {
                    self.known.remember_free(path.key(), before);
                }
                return Err(FsError::NotFound);
            }
            other => other?,
        };
        let ino = self.inodes.ino(&node);
        let attr = self.attr_of(ino, &node)?;
        if let (Some(path), TreeNode::Object(id)) = (path, &node) {
            self.known.remember(path.key(), *id);
        }
        Ok(attr)
    }

    /// Returns the attributes of the object this mount last saw at `path`, when its rows (one
    /// read, by id) still say it is there; `None` sends the lookup the long way.
    pub(super) fn known_object(&self, path: &ObjectPath) -> FsResult<Option<Attr>> {
        let key = path.key();
        let Some(id) = self.known.get(&key) else {
            return Ok(None);
        };
        if self.uncommitted.pending_at(path).is_some() {
            return Ok(None);
        }
        let written = self.uncommitted.written(id);
        let rows = self.object_rows(id)?;
        let here = rows
            .iter()
            .any(|r| r.prop == prop::PATH && matches!(&r.valu, Valu::Str(p) if *p == key));
        if !here {
            self.known.forget(&key);
            return Ok(None);
        }
        let ino = self.inodes.ino(&TreeNode::Object(id));
        Ok(Some(self.object_attr(ino, &rows, written)))
    }

    /// Returns the attributes of `ino`.
    pub fn getattr(&self, ino: Ino) -> FsResult<Attr> {
        self.attr_of(ino, &self.node(ino)?)
    }

    /// Returns the node called `name` in directory `parent`, if it exists.
    pub(super) fn child(&self, parent: &TreeNode, name: &str) -> FsResult<TreeNode> {
        let node = match parent {
            TreeNode::Root => match name {
                // Looked up, never listed: `du`, `find` and `rsync` of the mount do not walk
                // every past state.
                "at" => self.past_paths.then_some(TreeNode::At),
                "snapshots" => self.past_paths.then_some(TreeNode::Snapshots),
                super::CONTROL_DIR => self.past_paths.then_some(TreeNode::Control),
                _ => ROOT_DIRS
                    .iter()
                    .find(|(n, _)| *n == name)
                    .map(|(_, node)| node.clone()),
            },
            // The cores of the past answer below these (`FsCore::lookup_as`).
            TreeNode::At | TreeNode::Snapshots => None,
            TreeNode::Control => super::ControlFile::named(name).map(TreeNode::ControlFile),
            TreeNode::Datasets => name
                .parse::<DatasetId>()
                .ok()
                .filter(|ds| self.meta.has_dataset(*ds).unwrap_or(false))
                .map(TreeNode::Dataset),
            TreeNode::Dataset(ds) => self.dataset_child(*ds, name)?,
            TreeNode::Partitions(ds) => self
                .meta
                .has_partition(*ds, name)?
                .then(|| TreeNode::Partition(*ds, name.to_string())),
            TreeNode::Partition(ds, key) => {
                (name == "jobs").then(|| TreeNode::Jobs(*ds, key.clone()))
            }
            TreeNode::Jobs(ds, key) => match parse_job(name) {
                Some(job) if self.meta.has_job(*ds, job)? => {
                    Some(TreeNode::Job(*ds, key.clone(), job))
                }
                _ => None,
            },
            TreeNode::Job(..) | TreeNode::Folder(..) => self.placed_child(parent, name)?,
            TreeNode::Menus => self.registered_node(name, "menu").map(TreeNode::Menu),
            TreeNode::Configs => self.registered_node(name, "config").map(TreeNode::Config),
            TreeNode::Objects => match name.parse::<ContentId>() {
                Ok(id) if self.meta.content().contains(id)? => Some(TreeNode::Content(id)),
                _ => None,
            },
            TreeNode::Query | TreeNode::View(_) => return self.view_child(parent, name),
            TreeNode::DatasetMenu(_)
            | TreeNode::DatasetConfig(_)
            | TreeNode::Object(_)
            | TreeNode::Symlink(..)
            | TreeNode::Menu(_)
            | TreeNode::Config(_)
            | TreeNode::Content(_)
            | TreeNode::ViewObject(_)
            | TreeNode::ViewLink(..)
            | TreeNode::ControlFile(_) => return Err(FsError::NotDir),
        };
        match node {
            Some(node) if self.in_scope(&node)? => Ok(node),
            _ => Err(FsError::NotFound),
        }
    }

    /// Returns the object, folder or link called `name` in job directory or folder `parent`.
    fn placed_child(&self, parent: &TreeNode, name: &str) -> FsResult<Option<TreeNode>> {
        let path = in_dir(parent, name).expect("a job or folder");
        if let Some(id) = self.object_at(&path)? {
            return Ok(Some(TreeNode::Object(id)));
        }
        let (ds, key, job) = (path.dataset, path.partition.clone(), path.job);
        Ok(match self.meta.placed_at(&path)? {
            Some(Placed::Folder) => Some(TreeNode::Folder(ds, key, job, path.name)),
            Some(Placed::Link(_)) => Some(TreeNode::Symlink(ds, key, job, path.name)),
            None => None,
        })
    }

    pub(super) fn dataset_child(&self, ds: DatasetId, name: &str) -> FsResult<Option<TreeNode>> {
        Ok(match name {
            "partitions" => Some(TreeNode::Partitions(ds)),
            "menu" | "config" if self.meta.dataset_transform(ds)?.is_some() => {
                Some(if name == "menu" {
                    TreeNode::DatasetMenu(ds)
                } else {
                    TreeNode::DatasetConfig(ds)
                })
            }
            _ => None,
        })
    }

    /// Returns `uuid` if it names a registered node of `kind` (`menu` or `config`).
    pub(super) fn registered_node(&self, uuid: &str, kind: &str) -> Option<String> {
        let iden = Iden::new(uuid).ok()?;
        let rows = self.meta.node_rows(&iden).ok()?;
        rows.iter()
            .any(|r| r.prop == prop::KIND && r.valu.to_string() == kind)
            .then(|| uuid.to_string())
    }

    /// Returns the iden holding the rows of `node`, for the nodes that have rows.
    pub(super) fn iden_of(&self, node: &TreeNode) -> FsResult<Option<Iden>> {
        Ok(match node {
            TreeNode::Dataset(ds) | TreeNode::Partitions(ds) => Some(ds.iden()),
            TreeNode::Partition(ds, key) | TreeNode::Jobs(ds, key) => {
                Some(Metastore::<S>::partition_iden(*ds, key))
            }
            TreeNode::Job(ds, _, job) => Some(Metastore::<S>::job_iden(*ds, *job)),
            TreeNode::Folder(ds, key, job, path) | TreeNode::Symlink(ds, key, job, path) => Some(
                Metastore::<S>::folder_iden(&ObjectPath::new(*ds, key, *job, path))?,
            ),
            TreeNode::Object(id) | TreeNode::ViewObject(id) => Some(id.iden()),
            TreeNode::Menu(uuid) | TreeNode::Config(uuid) => Some(Iden::new(uuid.as_str())?),
            TreeNode::DatasetMenu(ds) | TreeNode::DatasetConfig(ds) => {
                let (menu, config) = self.meta.dataset_transform(*ds)?.ok_or(FsError::NotFound)?;
                let uuid = if matches!(node, TreeNode::DatasetMenu(_)) {
                    menu
                } else {
                    config
                };
                Some(Iden::new(uuid)?)
            }
            TreeNode::Root
            | TreeNode::Datasets
            | TreeNode::Menus
            | TreeNode::Configs
            | TreeNode::Objects
            | TreeNode::At
            | TreeNode::Snapshots
            | TreeNode::Control
            | TreeNode::ControlFile(_) => None,
            TreeNode::Content(_) | TreeNode::Query | TreeNode::View(_) | TreeNode::ViewLink(..) => {
                None
            }
        })
    }

    /// Returns the rows of `node`; NotFound when a node that should have rows has none.
    pub(super) fn rows_of(&self, node: &TreeNode) -> FsResult<Vec<Row>> {
        match self.iden_of(node)? {
            Some(iden) => {
                let rows = self.meta.node_rows(&iden)?;
                if rows.is_empty() {
                    return Err(FsError::NotFound);
                }
                Ok(rows)
            }
            None => Ok(Vec::new()),
        }
    }

    /// Returns the object at `path`: a file created there and not committed yet first, else
    /// the committed one. (A file stops being pending only once its commit is in the store, so
    /// looking in this order never misses it between the two; the other order did, under a
    /// commit at release.)
    pub(super) fn object_at(&self, path: &ObjectPath) -> FsResult<Option<ObjectId>> {
        if let Some(id) = self.uncommitted.pending_at(path) {
            return Ok(Some(id));
        }
        Ok(self.meta.object_id_at(path)?)
    }

    /// Returns whether a file, folder or link is at `path`, for a create that began at generation
    /// `since`. The kernel looks a name up before it creates it: when that lookup found it free
    /// and nothing changed since, the store is not asked again (a race with another host is the
    /// same either way: the commit makes ours a new version of theirs).
    pub(super) fn is_taken(&self, path: &ObjectPath, since: u64) -> FsResult<bool> {
        if self.uncommitted.pending_at(path).is_some() {
            return Ok(true);
        }
        if self.known.was_free(&path.key(), since) {
            return Ok(false);
        }
        Ok(self.meta.object_id_at(path)?.is_some() || self.meta.placed_at(path)?.is_some())
    }

    /// Returns the attributes of file `id` (inode `ino`): a pending file's, a committed
    /// object's with what open handles wrote, or what `fstat` shows of one unlinked while open.
    pub(super) fn file_attr(&self, ino: Ino, id: ObjectId) -> FsResult<Attr> {
        if let Some(attr) = self.uncommitted.pending_attr(id, ino, &self.defaults) {
            return Ok(attr);
        }
        let written = self.uncommitted.written(id);
        match self.object_rows(id)? {
            rows if rows.is_empty() => self.uncommitted.orphan_attr(id).ok_or(FsError::NotFound),
            rows => Ok(self.object_attr(ino, &rows, written)),
        }
    }

    /// Returns the rows of file `id`: a pending file's kept for its first commit, else the
    /// committed object's.
    pub(super) fn file_rows(&self, id: ObjectId) -> FsResult<Vec<(String, Valu)>> {
        if let Some(rows) = self.uncommitted.pending_rows(id) {
            return Ok(rows);
        }
        let rows = self.object_rows(id)?;
        Ok(rows
            .iter()
            .map(|r| (r.prop.clone(), r.valu.clone()))
            .collect())
    }

    /// The attributes of a committed object from its rows, with what open handles wrote
    /// (`written`, [`Uncommitted::written`] looked at *before* the rows were read: a commit
    /// forgets it only once its rows are in the store and the generation moved past the rows
    /// read before them, so one or the other is current).
    pub(super) fn object_attr(&self, ino: Ino, rows: &[Row], written: Option<(u64, i64)>) -> Attr {
        let mut attr = self.defaults.attr(ino, Kind::File, rows, None);
        if let Some(w) = written {
            super::uncommitted::apply_written(&mut attr, w);
        }
        attr
    }

    pub(super) fn attr_of(&self, ino: Ino, node: &TreeNode) -> FsResult<Attr> {
        let kind = if node.is_dir() { Kind::Dir } else { Kind::File };
        match node {
            TreeNode::ViewObject(id) => {
                // What handles wrote, before the rows (see `Namespace::object_attr`).
                let written = self.uncommitted.written(*id);
                let rows = attr::AttrRows::of(&self.rows_of(node)?);
                return Ok(self.view_object_attr(ino, &rows, written));
            }
            TreeNode::Control | TreeNode::ControlFile(_) => return Ok(self.control_attr(ino, node)),
            TreeNode::ViewLink(depth, place) => {
                let size = super::query_views::link_target(*depth, place).len() as u64;
                let mut attr = self.defaults.attr(ino, Kind::Symlink, &[], Some(size));
                (attr.mtime, attr.ctime, attr.crtime) = (self.started, self.started, self.started);
                return Ok(attr);
            }
            _ => {}
        }
        if let TreeNode::Object(id) = node {
            return self.file_attr(ino, *id);
        }
        if let TreeNode::Symlink(..) = node {
            return self.link_attr(ino, node);
        }
        if let TreeNode::Content(id) = node {
            let size = self.meta.content().manifest(*id)?.size;
            let mut attr = self.defaults.attr(ino, kind, &[], Some(size));
            // A content may belong to objects of any mode, and to old versions: only the
            // mount's owner reads it by id.
            attr.perm &= 0o400;
            (attr.mtime, attr.ctime, attr.crtime) = (self.started, self.started, self.started);
            return Ok(attr);
        }
        let kept = self.attr_rows(ino, node)?;
        let (rows, entries_changed) = (&kept.0, kept.1);
        let mut gathered = attr::AttrRows::of(rows);
        gathered.take_entries_changed(entries_changed);
        let mut attr = self.defaults.attr_of(ino, kind, &gathered, None);
        if rows.is_empty() {
            (attr.mtime, attr.ctime, attr.crtime) = (self.started, self.started, self.started);
        }
        if let Some(t) = self.pending_entered_at(ino).map(time_of_millis) {
            attr.mtime = attr.mtime.max(t);
            attr.ctime = attr.ctime.max(t);
        }
        if node.is_message() {
            attr.perm &= 0o444;
        }
        if matches!(node, TreeNode::Objects) {
            attr.perm &= 0o700;
        }
        if matches!(
            node,
            TreeNode::Query | TreeNode::View(_) | TreeNode::At | TreeNode::Snapshots
        ) {
            attr.perm &= 0o555;
        }
        Ok(attr)
    }

    /// The attributes of user link `node`: its rows', its size its target's length.
    fn link_attr(&self, ino: Ino, node: &TreeNode) -> FsResult<Attr> {
        let rows = self.rows_of(node)?;
        let target = rows.iter().find(|r| r.prop == prop::TARGET);
        let size = target.map_or(0, |r| r.valu.to_string().len() as u64);
        Ok(self.defaults.attr(ino, Kind::Symlink, &rows, Some(size)))
    }

    /// Returns when the entries of directory `node` last changed, as the store recorded it,
    /// for the directories whose entries change (a dataset and its `partitions/`, a job
    /// directory, a folder).
    /// Returns the rows of `node` (inode `ino`) and the last change of its entries: the ones
    /// read last while nothing they depend on changed (see `generations`), else read again.
    fn attr_rows(&self, ino: Ino, node: &TreeNode) -> FsResult<NodeAttrRows> {
        let read = || Ok(Arc::new((self.rows_of(node)?, self.entries_changed(node)?)));
        let reach = self.reach(node);
        let now = self.generations.now(reach);
        match self.changing.touches(reach) {
            false => self.node_attr_rows.get_or(ino, now, read),
            true => read(),
        }
    }

    fn entries_changed(&self, node: &TreeNode) -> FsResult<Option<i64>> {
        match node {
            TreeNode::Dataset(_)
            | TreeNode::Partitions(_)
            | TreeNode::Job(..)
            | TreeNode::Folder(..) => match self.iden_of(node)? {
                Some(iden) => Ok(self.meta.entries_changed_at(&iden)?),
                None => Ok(None),
            },
            _ => Ok(None),
        }
    }
}
