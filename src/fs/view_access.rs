//! Who may see what in a query view. A view gathers nodes from all over the tree, so the
//! kernel's permission checks (which look at the view's own directories) cannot protect them:
//! a view shows a caller an entry only when the caller could reach it by its place and read
//! it there. Listing a view shows an entry when `ls` of its real directory would show it to
//! the caller (search permission on every directory from the root down to it, and read
//! permission on it) and the caller may read the node itself (its attributes, which are what
//! the view matched: a view must not tell a value the caller could not read); looking a name
//! up needs the same but read permission on the directory, as a path walk does. Reading the
//! file then is checked by the kernel against the object's own mode, which the view's file
//! carries. Answers about view entries depend on who asks, so the adapter must not let the
//! kernel keep them for other callers.

use std::cell::OnceCell;
use std::collections::HashMap;
use std::sync::Arc;

use super::{Attr, DirEntry, FsError, FsResult, Ino, Kind, Namespace, TreeNode};
use crate::storage::Storage;

/// Who asks: the user, group and process of a request.
#[derive(Debug)]
pub struct Caller {
    /// User id.
    pub uid: u32,
    /// Group id.
    pub gid: u32,
    /// The process, whose supplementary groups are read when a check needs them.
    pub pid: u32,
    groups: OnceCell<Vec<u32>>,
}

/// Read permission, in the bits of one class.
const READ: u16 = 0o4;
/// Search (execute) permission.
const SEARCH: u16 = 0o1;

impl Caller {
    /// A caller that may see everything (root, and the core's own callers: tests, the CLI).
    pub fn root() -> Caller {
        Caller::new(0, 0, 0)
    }

    /// The caller with user `uid` and group `gid`, in process `pid`.
    pub fn new(uid: u32, gid: u32, pid: u32) -> Caller {
        Caller {
            uid,
            gid,
            pid,
            groups: OnceCell::new(),
        }
    }

    /// Runs `f`, a request of this caller that may commit: its commits name the caller's
    /// process and user (with this host and what the daemon serves).
    pub fn on_behalf<T>(&self, f: impl FnOnce() -> T) -> T {
        let (pid, uid) = (i64::from(self.pid), i64::from(self.uid));
        crate::storage::history::with_caller(pid, uid, f)
    }

    /// Returns whether the caller has all of `bits` (one class's bits: read 4, search 1) on
    /// a node with attributes `attr`, by the owner, group and other classes in that order.
    fn may(&self, attr: &Attr, bits: u16) -> bool {
        if self.uid == 0 {
            return true;
        }
        let class = if attr.uid == self.uid {
            attr.perm >> 6
        } else if attr.gid == self.gid || self.groups().contains(&attr.gid) {
            attr.perm >> 3
        } else {
            attr.perm
        };
        class & bits == bits
    }

    /// The supplementary groups of the caller's process (none when they cannot be read: the
    /// process is gone, and nobody is granted more than its user and group give).
    fn groups(&self) -> &[u32] {
        self.groups.get_or_init(|| {
            let status = std::fs::read_to_string(format!("/proc/{}/status", self.pid));
            let status = status.unwrap_or_default();
            status
                .lines()
                .find_map(|l| l.strip_prefix("Groups:"))
                .map(|g| {
                    g.split_whitespace()
                        .filter_map(|n| n.parse().ok())
                        .collect()
                })
                .unwrap_or_default()
        })
    }
}

/// What one check found of the directories on the way to view entries' places.
struct Walk<'c> {
    caller: &'c Caller,
    /// Each directory's node and attributes by its path (`""` the root); `None` when it is
    /// gone.
    dirs: HashMap<String, Option<(TreeNode, Attr)>>,
    /// What [`Walk::reaches`] answered, by directory and whether it was to list it.
    reached: HashMap<(String, bool), bool>,
}

impl<'c> Walk<'c> {
    fn new(caller: &'c Caller) -> Self {
        Walk {
            caller,
            dirs: HashMap::new(),
            reached: HashMap::new(),
        }
    }

    /// Returns whether the caller may search every directory from the root to `dir` (a path
    /// from the root), and, with `list`, read `dir` itself.
    fn reaches<S: Storage>(&mut self, fs: &Namespace<S>, dir: &str, list: bool) -> bool {
        if let Some(known) = self.reached.get(&(dir.to_string(), list)) {
            return *known;
        }
        let bits = if list { READ | SEARCH } else { SEARCH };
        let found = (self.walk_to(fs, dir)).is_some_and(|(_, attr)| self.caller.may(&attr, bits));
        self.reached.insert((dir.to_string(), list), found);
        found
    }

    /// Returns whether the caller may see view entry `entry` (listing its directory with
    /// `list`) and read the node at its place.
    fn sees<S: Storage>(&mut self, fs: &Namespace<S>, entry: &DirEntry, list: bool) -> bool {
        let Some(place) = entry.place.as_deref() else {
            return true;
        };
        if !self.reaches(fs, dir_of(place), list) {
            return false;
        }
        match entry.attr.kind {
            // A link stands for the directory at its place.
            Kind::Symlink => self
                .walk_to(fs, place)
                .is_some_and(|(_, attr)| self.caller.may(&attr, READ)),
            Kind::File | Kind::Dir => self.caller.may(&entry.attr, READ),
        }
    }

    /// Returns the node and attributes of directory `path` (a path from the root) when the
    /// caller may search every directory above it.
    fn walk_to<S: Storage>(&mut self, fs: &Namespace<S>, path: &str) -> Option<(TreeNode, Attr)> {
        let mut at = String::new();
        let mut node = self.dir(fs, &at, None)?;
        for name in path.split('/').filter(|n| !n.is_empty()) {
            if !self.caller.may(&node.1, SEARCH) {
                return None;
            }
            let parent = node.0.clone();
            if !at.is_empty() {
                at.push('/');
            }
            at.push_str(name);
            node = self.dir(fs, &at, Some((&parent, name)))?;
        }
        Some(node)
    }

    /// Returns the node and attributes of directory `path`, named `name` in `parent` (the
    /// root when `None`), from what this walk saw or the store.
    fn dir<S: Storage>(
        &mut self,
        fs: &Namespace<S>,
        path: &str,
        step: Option<(&TreeNode, &str)>,
    ) -> Option<(TreeNode, Attr)> {
        if let Some(known) = self.dirs.get(path) {
            return known.clone();
        }
        let node = match step {
            None => Some(TreeNode::Root),
            Some((parent, name)) => fs.child(parent, name).ok(),
        };
        let found = node.and_then(|n| {
            let attr = fs.attr_of(fs.inodes.ino(&n), &n).ok()?;
            // A user's link ends a walk (nothing is below it): a view shows it as it shows a
            // folder, by a link to its place.
            (n.is_dir() || matches!(n, TreeNode::Symlink(..))).then_some((n, attr))
        });
        self.dirs.insert(path.to_string(), found.clone());
        found
    }
}

/// The directory holding `place` (a path from the root): all but its last name.
fn dir_of(place: &str) -> &str {
    place.rsplit_once('/').map_or("", |(dir, _)| dir)
}

impl<S: Storage> Namespace<S> {
    /// Returns the entries of view listing `entries` that `caller` may see.
    pub(super) fn visible_entries(
        &self,
        entries: Arc<Vec<DirEntry>>,
        caller: &Caller,
    ) -> Arc<Vec<DirEntry>> {
        if caller.uid == 0 {
            return entries;
        }
        let mut walk = Walk::new(caller);
        let visible = (entries.iter())
            .filter(|e| walk.sees(self, e, true))
            .cloned()
            .collect();
        Arc::new(visible)
    }

    /// Fails with ENOENT unless `caller` may reach view entry `entry` by its place and read it.
    pub(super) fn check_reachable(&self, entry: &DirEntry, caller: &Caller) -> FsResult<()> {
        if caller.uid == 0 || Walk::new(caller).sees(self, entry, false) {
            return Ok(());
        }
        Err(FsError::NotFound)
    }

    /// Returns whether what the core answers about `ino` (its attributes, the names in it)
    /// depends on who asks: the query views and their entries, which the kernel must not
    /// keep for other callers.
    pub fn answers_per_caller(&self, ino: Ino) -> bool {
        matches!(
            self.inodes.node(ino),
            Some(TreeNode::View(_) | TreeNode::ViewObject(_) | TreeNode::ViewLink(..))
        )
    }
}
