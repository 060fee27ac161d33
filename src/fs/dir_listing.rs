//! The listing of a job directory or folder: one lift of the directory's nodes, each node's
//! rows folded into its entry as they are visited (never kept), then the files created there
//! and not committed yet.

use super::{DirEntry, FsResult, Kind, Namespace, TreeNode, attr};
use crate::meta::{DirNodeFold, Metastore, ObjectId, ObjectPath, prop};
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

impl<S: Storage> Namespace<S> {
    /// Returns the entry of node `iden` of directory `dir`, reading its rows without keeping
    /// them; `None` for a node that is not an object or folder.
    fn dir_entry(
        &self,
        dir: &ObjectPath,
        mut seen: DirNode,
    ) -> crate::meta::Result<Option<DirEntry>> {
        let (Some(kind), Some(path)) = (seen.kind, seen.path) else {
            return Ok(None);
        };
        let name = path.rsplit('/').next().unwrap_or(&path).to_string();
        let (ds, key, job) = (dir.dataset, dir.partition.clone(), dir.job);
        let (node, kind, size) = match kind {
            EntryKind::Folder => {
                let iden = Metastore::<S>::folder_iden(&ObjectPath::new(ds, &key, job, &path))?;
                (seen.attr).take_entries_changed(self.meta.entries_changed_at(&iden)?);
                (TreeNode::Folder(ds, key, job, path), Kind::Dir, None)
            }
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
        if let TreeNode::Object(id) = node {
            self.uncommitted.show_written(id, &mut attr);
        }
        Ok(Some(DirEntry {
            name,
            attr,
            place: None,
        }))
    }

    /// Lists a job directory or folder `dir`: its objects and folders (one lift, then each
    /// node's rows), then the
    /// files created in it and not committed yet.
    pub(super) fn list_dir(&self, dir: &ObjectPath) -> FsResult<Vec<DirEntry>> {
        let fold = DirNodeFold {
            take: &|seen: &mut DirNode, p, v, t| seen.take(p, v, t),
            finish: &|seen| self.dir_entry(dir, seen),
        };
        let mut entries = self.meta.map_dir_nodes(dir, &fold)?;
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
        entries.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(entries)
    }
}
