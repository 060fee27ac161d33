//! The filesystem core: the SPEC §4 tree over a [`Metastore`], with every operation the mount
//! serves as a plain method taking inode numbers and names and returning typed errors. No
//! kernel types appear here; `fuse.rs` only translates between this and `fuser`, so the tests
//! drive every operation without a mount.

mod access_log;
mod attr;
mod by_path;
mod bytes;
mod cache;
mod changes;
mod content_cache;
mod control;
mod dir_handles;
mod dir_listing;
mod elsewhere;
mod error;
mod file;
mod generations;
mod held;
mod inode;
mod known_names;
mod links;
mod namespace;
mod negatives;
mod node_paths;
mod past;
mod query_views;
mod uncommitted;
mod view_access;
mod working;
mod xattr;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

pub use access_log::{ACCESS_LOG_HEADER, Access, AccessLog, escaped, process_name};
pub use attr::{Attr, Defaults, Kind, millis_of, time_of_millis};
pub use by_path::{PathReader, PathWriter, Walk, components};
pub use bytes::ReadBytes;
pub use changes::{CreateFlags, Creator, SetAttr};
pub use content_cache::{
    CACHE_DIR, CacheCheck, CacheHealth, CachedContent, SMALLEST_CACHED, check_cache,
};
pub use control::{CONTROL_DIR, ControlFile, TextSource};
pub use dir_handles::{DEFAULT_LISTING_PAGE, DirWindow};
pub use elsewhere::{Epoch, KernelInval, ReplyGate};
pub use error::{FsError, FsResult};
pub use file::{Fh, OpenFlags, Opened};
pub use held::DEFAULT_MAX_INODES;
pub use inode::{Ino, TreeNode};
pub use namespace::{Listing, Namespace};
pub use view_access::Caller;
pub use xattr::{XattrFlags, XattrReply};

use crate::meta::{JobId, Metastore, ObjectPath};
use crate::storage::Storage;

/// How the core is set up.
#[derive(Clone, Debug)]
pub struct FsOptions {
    /// Refuse every change with EROFS.
    pub read_only: bool,
    /// Owner of nodes that have none of their own.
    pub uid: u32,
    /// Group of nodes that have none of their own.
    pub gid: u32,
    /// Where open files being written keep their bytes until they are committed.
    pub staging_dir: PathBuf,
    /// Where whole contents are kept as plain files for readers (`None`: nowhere).
    pub cache_dir: Option<PathBuf>,
    /// The most bytes the content cache holds.
    pub cache_limit: u64,
    /// The most inodes the kernel may hold before it is told to forget the least used
    /// directories (0: no bound).
    pub max_inodes: usize,
    /// Members of a job directory or folder read at once: a bigger one is listed (and held)
    /// a page at a time, a smaller one whole, and kept ([`DEFAULT_LISTING_PAGE`]).
    pub listing_page: usize,
}

/// How many inodes a mount remembers and handles it has open.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Census {
    /// Inodes with a number the kernel may ask about.
    pub inodes: usize,
    /// Inodes the kernel holds entries of.
    pub held_inodes: usize,
    /// File and directory handles open.
    pub open_handles: usize,
}

/// One entry of a directory listing, with the attributes readdirplus returns.
#[derive(Clone, Debug)]
pub struct DirEntry {
    /// The entry's name.
    pub name: String,
    /// Its attributes.
    pub attr: Attr,
    /// For an entry of a query view: its place in the tree (`datasets/…`), whose directories
    /// decide who may see it.
    pub place: Option<Arc<str>>,
}

/// The filesystem over one catalogue: the tree as read ([`Namespace`]) and the changes made
/// to it, the open handles, the content cache, and what is heard of other processes.
pub struct FsCore<S: Storage> {
    ns: namespace::Namespace<S>,
    options: FsOptions,
    files: file::OpenFiles,
    /// What the core heard of other processes' commits (a shared store).
    elsewhere: elsewhere::Announcements,
    /// Whole contents as local files, for readers the kernel serves without the daemon.
    contents: Option<content_cache::ContentCache>,
    /// Why there is no content cache though one was asked for.
    cache_refused: Option<String>,
    /// The trees of `at/` and `snapshots/` looked up so far (`None` in a tree of the past).
    past: Option<past::PastTrees>,
    /// The negative answers the kernel may keep, and those it must forget.
    negatives: negatives::Negatives,
    /// What `.cronusfs/` shows, and its open handles.
    control: control::Control,
    /// When the kernel was last told to forget directories to keep within `max_inodes`.
    held_rounds: held::Rounds,
}

/// Sends a request about a number (an inode or a handle) that a tree of the past gave out to
/// that tree: `in_past!(self, ino.0, |core| core.getattr(ino))`.
macro_rules! in_past {
    ($self:ident, $n:expr, |$core:ident| $call:expr) => {
        if let Some($core) = $self.past_core($n)? {
            return $call;
        }
    };
}
use in_past;

impl<S: Storage> FsCore<S> {
    /// Returns the filesystem over `meta`.
    pub fn new(meta: Metastore<S>, options: FsOptions) -> FsResult<Self> {
        std::fs::create_dir_all(&options.staging_dir)?;
        let (contents, cache_refused) = match &options.cache_dir {
            // Without a cache (a read-only disk, say) the daemon serves every read itself.
            Some(dir) if options.cache_limit > 0 => {
                match content_cache::ContentCache::open(dir, options.cache_limit) {
                    Ok(cache) => (Some(cache), None),
                    Err(e) => {
                        tracing::warn!(
                            error = %e,
                            "no content cache in {}: the daemon serves every read itself",
                            dir.display()
                        );
                        (None, Some(format!("cannot use {} ({e})", dir.display())))
                    }
                }
            }
            _ => (None, None),
        };
        let defaults = Defaults {
            uid: options.uid,
            gid: options.gid,
            read_only: options.read_only,
        };
        Ok(FsCore {
            contents,
            cache_refused,
            ns: namespace::Namespace::new(meta, defaults, inode::Inodes::default(), true),
            options,
            files: file::OpenFiles::default(),
            elsewhere: elsewhere::Announcements::default(),
            past: Some(past::PastTrees::default()),
            negatives: negatives::Negatives::default(),
            control: control::Control::default(),
            held_rounds: held::Rounds::default(),
        })
    }

    /// Returns whether the core keeps a content cache (`FsOptions::cache_dir`).
    pub fn has_content_cache(&self) -> bool {
        self.contents.is_some()
    }

    /// Returns how many inodes the mount remembers and how many handles it has open (those
    /// of trees of the past included), for the metrics.
    pub fn census(&self) -> Census {
        let mut census = Census {
            inodes: self.ns.inodes.count(),
            held_inodes: self.ns.inodes.held(),
            open_handles: self.files.open_count(),
        };
        for core in self.past.iter().flat_map(|p| p.cores()) {
            let theirs = core.census();
            census.inodes += theirs.inodes;
            census.held_inodes += theirs.held_inodes;
            census.open_handles += theirs.open_handles;
        }
        census
    }

    /// Returns the catalogue.
    pub fn metastore(&self) -> &Metastore<S> {
        &self.ns.meta
    }

    /// Runs `f`, a change made to the catalogue other than through the core (a command the
    /// daemon runs for the CLI), so that no cached listing or row outlives it. Any answer a
    /// reply was still sending is kept by the kernel for no time, and the missing names it
    /// was told of are forgotten (before this returns): the change may have made them.
    pub fn run_external_change<T>(&self, f: impl FnOnce() -> T) -> T {
        let done = {
            let _change = self.ns.change();
            f()
        };
        self.elsewhere
            .announce(None, || self.ns.forget_cached_answers());
        // Sent before the command returns to its client, who may look the name up next.
        if let Some(batch) = self.negatives.forget_all() {
            self.negatives.wait_sent(batch, Duration::from_secs(1));
        }
        done
    }

    /// Looks `name` up in directory `parent`, for a caller who may see everything.
    pub fn lookup(&self, parent: Ino, name: &str) -> FsResult<Attr> {
        self.lookup_as(parent, name, &Caller::root())
    }

    /// Looks `name` up in directory `parent` for `caller` (see [`Namespace::lookup_as`]).
    pub fn lookup_as(&self, parent: Ino, name: &str, caller: &Caller) -> FsResult<Attr> {
        in_past!(self, parent.0, |core| core.lookup_as(parent, name, caller));
        if let Some(attr) = self.lookup_past(&self.ns.node(parent)?, name)? {
            return Ok(attr);
        }
        self.ns.lookup_as(parent, name, caller)
    }

    /// Returns the attributes of `ino`.
    pub fn getattr(&self, ino: Ino) -> FsResult<Attr> {
        in_past!(self, ino.0, |core| core.getattr(ino));
        self.ns.getattr(ino)
    }

    /// Lists directory `ino` (without `.` and `..`), with each entry's attributes.
    pub fn readdir(&self, ino: Ino) -> FsResult<Vec<DirEntry>> {
        in_past!(self, ino.0, |core| core.readdir(ino));
        if self.ns.node(ino)? == TreeNode::Snapshots {
            return self.list_snapshots();
        }
        self.ns.readdir(ino)
    }

    /// Refuses to make a device node, FIFO, socket or hard link in directory `parent` (they
    /// are not objects, and an object has one name): EROFS where nothing can be made, else
    /// EPERM.
    pub fn mknod(&self, parent: Ino) -> FsResult<Attr> {
        in_past!(self, parent.0, |core| core.mknod(parent));
        match self.options.read_only
            || matches!(self.ns.node(parent)?, TreeNode::At | TreeNode::Snapshots)
        {
            true => Err(FsError::ReadOnly),
            false => Err(FsError::NotPermitted),
        }
    }

    /// Returns the parent directory's inode of directory `ino` (for `..`).
    pub fn parent_of(&self, ino: Ino) -> FsResult<Ino> {
        in_past!(self, ino.0, |core| self.past_parent(&core, ino));
        self.ns.parent_of(ino)
    }

    /// Returns the target of symbolic link `ino` (see [`Namespace::readlink`]).
    pub fn readlink(&self, ino: Ino) -> FsResult<String> {
        in_past!(self, ino.0, |core| core.readlink(ino));
        self.ns.readlink(ino)
    }

    /// Returns whether what the core answers about `ino` depends on who asks (see
    /// [`Namespace::answers_per_caller`]).
    pub fn answers_per_caller(&self, ino: Ino) -> bool {
        match self.past_core(ino.0) {
            Ok(Some(core)) => core.answers_per_caller(ino),
            _ => self.ns.answers_per_caller(ino),
        }
    }

    fn writable(&self) -> FsResult<()> {
        if self.options.read_only {
            return Err(FsError::ReadOnly);
        }
        Ok(())
    }

    /// Returns the filesystem's statistics: the free space of the disk under the store.
    pub fn statfs(&self) -> FsResult<libc::statvfs> {
        Ok(crate::storage::disk::statvfs(&self.options.staging_dir)?)
    }
}

/// The core holds a catalogue: what a process's session beats for.
impl<S: Storage> AsRef<Metastore<S>> for FsCore<S> {
    fn as_ref(&self) -> &Metastore<S> {
        &self.ns.meta
    }
}

/// Returns the path of `name` in directory `dir` when `dir` is a job directory or a folder
/// (with an empty `name`, the directory's own path: empty for a job directory).
fn in_dir(dir: &TreeNode, name: &str) -> Option<ObjectPath> {
    let join = |folder: &str| match (folder, name) {
        ("", n) | (n, "") => n.to_string(),
        (f, n) => format!("{f}/{n}"),
    };
    match dir {
        TreeNode::Job(ds, key, job) => Some(ObjectPath::new(*ds, key, *job, &join(""))),
        TreeNode::Folder(ds, key, job, folder) => {
            Some(ObjectPath::new(*ds, key, *job, &join(folder)))
        }
        _ => None,
    }
}

/// Returns the job number `name` spells canonically (`0`, `17`; not `01`, `+1`, `-1`), up to
/// [`JobId::MAX`].
fn parse_job(name: &str) -> Option<JobId> {
    JobId::parse_canonical(name)
}
