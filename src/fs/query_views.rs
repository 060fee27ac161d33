//! The query views under `query/`: read-only directories where a path is a query
//! (`query/quality=10/cronus:type=ARROW/`, each level one more term that must match). A view
//! lists the objects that match as files named by their Cronus name (reading, rows and
//! permissions those of the object), and the datasets, partitions, jobs, folders, menus and
//! configurations that match as symbolic links to their place. `query/` lists the view of
//! each prop that has rows; deeper views are as many as the queries, made by a lookup of their
//! term and never listed.

use std::collections::HashMap;

use super::attr::AttrRows;
use super::uncommitted::apply_written;
use super::{Attr, DirEntry, FsCore, FsError, FsResult, Ino, Kind, Namespace, TreeNode};
use crate::meta::name_rules::MAX_NAME_BYTES;
use crate::meta::query::check_view_prop;
use crate::meta::{Condition, DirNodeFold, Match, MatchRows, Term};
use crate::storage::{Storage, ValuRef};

/// What a view's listing keeps of a node's rows as it visits them.
#[derive(Default)]
struct ViewNode {
    place: MatchRows,
    attr: AttrRows,
}

/// Returns the terms of view `path` (`a=1/b>2`).
fn terms_of(path: &str) -> FsResult<Vec<Term>> {
    path.split('/')
        .map(|t| t.parse::<Term>().map_err(FsError::from))
        .collect()
}

/// Returns the view one term below `dir` (`query/` or a view).
fn view_below(dir: &TreeNode, term: &str) -> Option<TreeNode> {
    match dir {
        TreeNode::Query => Some(TreeNode::View(term.to_string())),
        TreeNode::View(path) => Some(TreeNode::View(format!("{path}/{term}"))),
        _ => None,
    }
}

impl<S: Storage> Namespace<S> {
    /// Returns the node `name` in `dir` (`query/` or a view): a match listed there, else the
    /// view one term further down.
    pub(super) fn view_child(&self, dir: &TreeNode, name: &str) -> FsResult<TreeNode> {
        if let TreeNode::View(_) = dir
            && let Some(entry) = self.view_entry(self.inodes.ino(dir), name)?
        {
            return self.node(entry.attr.ino);
        }
        if name.parse::<Term>().is_err() {
            return Err(FsError::NotFound);
        }
        view_below(dir, name).ok_or(FsError::NotDir)
    }

    /// Returns the entry `name` of the listing of view `dir`.
    pub(super) fn view_entry(&self, dir: Ino, name: &str) -> FsResult<Option<DirEntry>> {
        // The listing is sorted by name: a binary search, not a walk of a big view.
        let listing = self.listing(dir)?;
        let at = listing.binary_search_by(|e| e.name.as_str().cmp(name));
        Ok(at.ok().map(|at| listing[at].clone()))
    }

    /// Lists view `path`: one lift per term, then the rows of each node that matches them all.
    pub(super) fn list_view(&self, path: &str) -> FsResult<Vec<DirEntry>> {
        let terms = terms_of(path)?;
        // The view's directory is this many levels below the root: `query` and one per term.
        let depth = 1 + terms.len() as u32;
        let fold = DirNodeFold {
            take: &|seen: &mut ViewNode, p, v: ValuRef<'_>, t| {
                seen.place.take(p, v);
                seen.attr.take(p, v.as_int(), t);
            },
            finish: &|seen: ViewNode| Ok(seen.place.finish().map(|m| (m, seen.attr))),
        };
        // The sizes open handles wrote, before the rows: a commit that lands in between is
        // then seen in its rows (see `Namespace::object_attr`).
        let written = self.uncommitted.all_written();
        let matches = self.meta.map_nodes(self.meta.find(&terms)?, &fold)?;
        let mut partitions = HashMap::new();
        let mut entries = Vec::with_capacity(matches.len());
        for (found, rows) in matches {
            if !self.place_in_scope(&found.path(None))? {
                continue;
            }
            if let Match::Object { id, .. } = &found {
                let ino = self.inodes.ino(&TreeNode::ViewObject(*id));
                let attr = self.view_object_attr(ino, &rows, written.get(id).copied());
                // A Cronus name too long for a file name is `<uuid>.<ext>` (`Match::name`).
                let name = found.name(None);
                let place = Some(found.path(None).into());
                entries.push(DirEntry { name, attr, place });
                continue;
            }
            let keys = self.meta.partitions_of_match(&found, &mut partitions)?;
            for key in keys {
                let name = found.name(key.as_deref());
                if name.len() > MAX_NAME_BYTES {
                    continue; // No file name can hold it; the dataset's link leads there.
                }
                let place = found.path(key.as_deref());
                let link = TreeNode::ViewLink(depth, place.clone());
                let attr = self.attr_of(self.inodes.ino(&link), &link)?;
                let place = Some(place.into());
                entries.push(DirEntry { name, attr, place });
            }
        }
        entries.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(entries)
    }

    /// The entries of `query/`: the view of each prop some node has a row of, when the prop
    /// can be a file name and is not the daemons' own (`cronusfs:`: sessions, snapshots).
    pub(super) fn prop_views(&self) -> FsResult<Vec<(String, TreeNode)>> {
        Ok((self.meta.props()?.into_iter())
            .filter(|p| {
                !p.starts_with("cronusfs:")
                    && check_view_prop(p).is_ok()
                    && p.len() <= MAX_NAME_BYTES
                    && p.parse::<Term>()
                        .is_ok_and(|t| t.condition == Condition::Has)
            })
            .map(|p| (p.clone(), TreeNode::View(p)))
            .collect())
    }

    /// The attributes of an object as view entry `ino` shows it: its `rows`', with what open
    /// handles had `written` before those rows were read, without write bits.
    pub(super) fn view_object_attr(
        &self,
        ino: Ino,
        rows: &AttrRows,
        written: Option<(u64, i64)>,
    ) -> Attr {
        let mut attr = self.defaults.attr_of(ino, Kind::File, rows, None);
        if let Some(w) = written {
            apply_written(&mut attr, w);
        }
        attr.perm &= !0o222;
        attr
    }

    /// Returns the target of symbolic link `ino`: a view's is relative, so that it leads to the
    /// same place wherever the file system is mounted; a user's link's is what it was made with.
    pub fn readlink(&self, ino: Ino) -> FsResult<String> {
        match self.node(ino)? {
            TreeNode::ViewLink(depth, place) => Ok(link_target(depth, &place)),
            node @ TreeNode::Symlink(..) => self.link_target(&node),
            _ => Err(FsError::InvalidArgument("not a symbolic link")),
        }
    }
}

impl<S: Storage> FsCore<S> {
    /// Refuses any change to `node` when it is in the query views, the past or `.cronusfs/`
    /// (EROFS).
    pub(super) fn refuse_view(node: &TreeNode) -> FsResult<()> {
        match node {
            TreeNode::Query
            | TreeNode::View(_)
            | TreeNode::ViewObject(_)
            | TreeNode::ViewLink(..)
            | TreeNode::At
            | TreeNode::Snapshots
            | TreeNode::Control
            | TreeNode::ControlFile(_) => Err(FsError::ReadOnly),
            _ => Ok(()),
        }
    }
}

/// The target of a link `depth` directories below the root to `place` (a path from the root).
pub(super) fn link_target(depth: u32, place: &str) -> String {
    format!("{}{place}", "../".repeat(depth as usize))
}
