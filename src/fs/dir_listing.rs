//! The listing of a job directory or folder: one lift of the directory's nodes, each node's
//! rows folded into its entry as they are visited (never kept), its folders' entries' times,
//! then the files created there and not committed yet.

use std::collections::HashMap;

use super::{DirEntry, FsResult, Kind, Namespace, TreeNode, attr};
use crate::meta::{DirNodeFold, ListingCursor, Metastore, ObjectId, ObjectPath, prop};
use crate::storage::{Storage, ValuRef};

/// What a node of a job directory or folder is.
#[derive(Clone, Copy)]
enum EntryKind {
    Object,
    Folder,
    Link,
}

/// What a listing keeps of a node's rows as it visits them.
#[derive(Default)]
struct DirNode {
    /// Its kind (`Some` once its kind row is seen).
    kind: Option<EntryKind>,
    /// A link's target's length.
    target_len: u64,
    /// Its path in the job directory (`cronus:object`).
    path: Option<String>,
    /// Its uuid, for objects.
    uuid: Option<ObjectId>,
    attr: attr::AttrRows,
}

impl DirNode {
    fn take(&mut self, p: &str, valu: ValuRef<'_>, time: i64) {
        match (p, valu) {
            (prop::KIND, ValuRef::Str(kind)) => {
                self.kind = Some(match kind {
                    "folder" => EntryKind::Folder,
                    "symlink" => EntryKind::Link,
                    _ => EntryKind::Object,
                })
            }
            (prop::TARGET, ValuRef::Str(target)) => self.target_len = target.len() as u64,
            (prop::OBJECT, ValuRef::Str(path)) => self.path = Some(path.to_string()),
            (prop::UUID, ValuRef::Str(uuid)) => self.uuid = uuid.parse().ok(),
            _ => {}
        }
        self.attr.take(p, valu.as_int(), time);
    }
}

/// Up to how many folders a listing reads the times of their entries one by one; past it, in
/// one scan of every folder's below the directory (a round trip each on a shared store).
const FOLDERS_READ_ONE_BY_ONE: usize = 8;

impl<S: Storage> Namespace<S> {
    /// Gives the folders among `entries` (of directory `dir`) the time their entries last
    /// changed, when the store recorded one since a time was set on them (their mtime, and
    /// their ctime if later), as `getattr` of each would.
    fn show_folders_entries(&self, dir: &ObjectPath, entries: &mut [DirEntry]) -> FsResult<()> {
        let folders = entries.iter().filter(|e| e.attr.kind == Kind::Dir).count();
        let scanned = match folders > FOLDERS_READ_ONE_BY_ONE {
            true => Some(self.meta.folders_entries_in(dir)?),
            false => None,
        };
        for entry in entries.iter_mut().filter(|e| e.attr.kind == Kind::Dir) {
            let name = match dir.name.as_str() {
                "" => entry.name.clone(),
                up => format!("{up}/{}", entry.name),
            };
            let path = ObjectPath::new(dir.dataset, &dir.partition, dir.job, &name);
            let iden = Metastore::<S>::folder_iden(&path)?;
            let changed = match &scanned {
                Some(times) => self.meta.folder_entries_changed(times, &iden)?,
                None => self.meta.entries_changed_at(&iden)?,
            };
            if let Some(at) = changed.map(attr::time_of_millis) {
                entry.attr.mtime = at;
                entry.attr.ctime = entry.attr.ctime.max(at);
            }
            // A file not committed yet in it, as `getattr` shows.
            if let Some(at) = self
                .pending_entered_at(entry.attr.ino)
                .map(attr::time_of_millis)
            {
                entry.attr.mtime = entry.attr.mtime.max(at);
                entry.attr.ctime = entry.attr.ctime.max(at);
            }
        }
        Ok(())
    }

    /// Returns the entry of node `iden` of directory `dir`, reading its rows without keeping
    /// them, with what open handles had `written` before the rows were read (see
    /// [`Namespace::object_attr`]); `None` for a node that is not an object or folder.
    fn dir_entry(
        &self,
        dir: &ObjectPath,
        seen: DirNode,
        written: &HashMap<ObjectId, (u64, i64)>,
    ) -> crate::meta::Result<Option<DirEntry>> {
        let (Some(kind), Some(path)) = (seen.kind, seen.path) else {
            return Ok(None);
        };
        let name = path.rsplit('/').next().unwrap_or(&path).to_string();
        let (ds, key, job) = (dir.dataset, dir.partition.clone(), dir.job);
        let (node, kind, size) = match kind {
            EntryKind::Folder => (TreeNode::Folder(ds, key, job, path), Kind::Dir, None),
            EntryKind::Link => {
                let node = TreeNode::Symlink(ds, key, job, path);
                (node, Kind::Symlink, Some(seen.target_len))
            }
            EntryKind::Object => {
                let Some(id) = seen.uuid else {
                    return Ok(None);
                };
                self.known
                    .remember_listed(&ObjectPath::new(ds, &key, job, &path), id);
                (TreeNode::Object(id), Kind::File, None)
            }
        };
        let ino = self.inodes.ino(&node);
        let mut attr = self.defaults.attr_of(ino, kind, &seen.attr, size);
        if let TreeNode::Object(id) = node
            && let Some(w) = written.get(&id)
        {
            super::uncommitted::apply_written(&mut attr, *w);
        }
        Ok(Some(DirEntry {
            name,
            attr,
            place: None,
        }))
    }

    /// Lists a job directory or folder `dir`: its objects and folders (one lift, then each
    /// node's rows), then the files created in it and not committed yet.
    pub(super) fn list_dir(&self, dir: &ObjectPath) -> FsResult<Vec<DirEntry>> {
        Ok(self.list_dir_page(dir, None, usize::MAX)?.0)
    }

    /// Lists a page of job directory or folder `dir`: at most `page` of its objects and
    /// folders after `after` (from the first without), by name within the page; the files
    /// created in it and not committed yet come with the last page. Returns where the next
    /// page starts (`None` after the last).
    pub(super) fn list_dir_page(
        &self,
        dir: &ObjectPath,
        after: Option<&ListingCursor>,
        page: usize,
    ) -> FsResult<(Vec<DirEntry>, Option<ListingCursor>)> {
        let written = self.uncommitted.all_written();
        let fold = DirNodeFold {
            take: &|seen: &mut DirNode, p, v, t| seen.take(p, v, t),
            finish: &|seen| self.dir_entry(dir, seen, &written),
        };
        let (mut entries, next) = self.meta.map_dir_nodes_page(dir, after, page, &fold)?;
        self.show_folders_entries(dir, &mut entries)?;
        if next.is_none() {
            self.add_pending(dir, &mut entries);
        }
        entries.sort_by(|a, b| a.name.cmp(&b.name));
        Ok((entries, next))
    }

    /// Adds to `entries` the files created in `dir` and not committed yet.
    fn add_pending(&self, dir: &ObjectPath, entries: &mut Vec<DirEntry>) {
        for (name, id) in self.uncommitted.pending_in(dir) {
            let ino = self.inodes.ino(&TreeNode::Object(id));
            if let Some(attr) = self.uncommitted.pending_attr(id, ino, &self.defaults) {
                entries.push(DirEntry {
                    name,
                    attr,
                    place: None,
                });
            }
        }
    }
}
