//! Symbolic links: nodes of a job directory or folder whose target is a row. A link is placed
//! as a folder is: its iden is its place (folders and links share one name space, so a name
//! is one or the other), its rows `cronus:kind` = `symlink`, `cronus:target` (the target as
//! given, relative or absolute, never resolved), `cronus:object` (its path in the job
//! directory), `cronus:dir` and `cronus:created`. Making one, reading what is at a place,
//! removing one, and moving one inside its dataset, replacing an object or link at the new
//! place.

use std::collections::BTreeMap;

use super::dir_times::{Change, entry_changed_in};
use super::folders::{folder_iden, move_placed_node};
use super::objects::object_meta;
use super::{JobId, Metastore, NodeProps, ObjectId, ObjectPath, RestorePlace, info_key, prop};
use crate::meta::name_rules::check_object_name;
use crate::meta::{MetaError, Result};
use crate::storage::{Iden, PropQuery, Row, RowRead, RowWrite, Storage, Valu, now_millis};

/// Longest link target, in bytes (PATH_MAX less its NUL).
pub const MAX_TARGET_BYTES: usize = 4095;

/// What is placed at a path of a job directory besides objects.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Placed {
    /// A folder.
    Folder,
    /// A symbolic link, with its target.
    Link(String),
}

/// Returns what the rows of a placed node make it, if anything.
pub(super) fn placed_of(rows: &[Row]) -> Option<Placed> {
    let node = NodeProps::new(rows);
    match node.kind()? {
        "folder" => Some(Placed::Folder),
        "symlink" => Some(Placed::Link(node.str(prop::TARGET).ok()?.to_string())),
        _ => None,
    }
}

/// Returns the place of folder or link `iden` from its rows: its job directory (from
/// `cronus:dir`) and its path there (`cronus:object`).
pub(super) fn placed_path(iden: &Iden, rows: &[Row]) -> Result<ObjectPath> {
    let node = NodeProps::new(rows);
    let corrupt = || MetaError::Corrupt(format!("{iden} has no place rows"));
    let (dir, path) = (node.str(prop::DIR), node.str(prop::OBJECT));
    let (Ok(dir), Ok(path)) = (dir, path) else {
        return Err(corrupt());
    };
    let mut parts = dir.splitn(4, '/');
    let (Some(ds), Some(key), Some(job)) = (parts.next(), parts.next(), parts.next()) else {
        return Err(corrupt());
    };
    let job = JobId::parse_canonical(job).ok_or_else(corrupt)?;
    Ok(ObjectPath::new(ds.parse()?, key, job, path))
}

/// Checks a link target: 1 to [`MAX_TARGET_BYTES`] bytes, no NUL.
fn check_target(target: &str) -> Result<()> {
    let reason = match target {
        "" => "it is empty",
        t if t.len() > MAX_TARGET_BYTES => "it is longer than 4095 bytes",
        t if t.contains('\0') => "it contains a NUL byte",
        _ => return Ok(()),
    };
    Err(MetaError::BadName {
        what: "link target",
        name: target.chars().take(64).collect(),
        reason,
    })
}

impl<S: Storage> Metastore<S> {
    /// Makes symbolic link `at` (`at.name` is its path in the job directory) to `target`.
    /// A name taken by an object, folder or link is [`MetaError::ObjectExists`].
    pub fn make_link(&self, at: &ObjectPath, target: &str) -> Result<()> {
        check_target(target)?;
        let own = [
            (prop::KIND, "symlink".into()),
            (prop::TARGET, target.into()),
        ];
        self.place_node(at, &own)
    }

    /// Returns what is placed at `at` other than an object: a folder, a link, or nothing.
    pub fn placed_at(&self, at: &ObjectPath) -> Result<Option<Placed>> {
        match folder_iden(at) {
            Ok(iden) => Ok(placed_of(&self.store.rows_by_id(&iden)?)),
            Err(_) => Ok(None),
        }
    }

    /// Removes symbolic link `at`; a folder there is [`MetaError::FolderExists`].
    pub fn remove_link(&self, at: &ObjectPath) -> Result<()> {
        let iden = folder_iden(at)?;
        self.in_dataset_txn(at.dataset, |txn| {
            match placed_of(&txn.rows_by_id(&iden)?) {
                Some(Placed::Link(_)) => {}
                Some(Placed::Folder) => return Err(MetaError::FolderExists(at.to_string())),
                None => return Err(MetaError::NoSuchObject(at.to_string())),
            }
            txn.del_rows_by_id(&iden)?;
            entry_changed_in(txn, at, now_millis(), Change::Now)?;
            Ok(())
        })
    }

    /// Moves symbolic link `from` to `to` in the same dataset, atomically replacing an object
    /// or link at `to` (returns the replaced object's uuid); a folder at `to` is
    /// [`MetaError::FolderExists`].
    pub fn rename_link(&self, from: &ObjectPath, to: &ObjectPath) -> Result<Option<ObjectId>> {
        if from.dataset != to.dataset {
            return Err(MetaError::CrossDataset(to.to_string()));
        }
        check_object_name(&to.name)?;
        self.in_dataset_txn(to.dataset, |txn| {
            self.require_dir(txn, to)?;
            if !matches!(
                placed_of(&txn.rows_by_id(&folder_iden(from)?)?),
                Some(Placed::Link(_))
            ) {
                return Err(MetaError::NoSuchObject(from.to_string()));
            }
            if from == to {
                return Ok(None);
            }
            let replaced = replace_at(txn, self, to)?;
            move_placed_node(txn, from, to)?;
            let now = now_millis();
            entry_changed_in(txn, from, now, Change::Now)?;
            entry_changed_in(txn, to, now, Change::Now)?;
            Ok(replaced)
        })
    }
}

impl<S: Storage> Metastore<S> {
    /// Returns every symbolic link in `place` (a dataset, partition or job directory), with its
    /// target, in no particular order.
    pub fn links(&self, place: &RestorePlace) -> Result<Vec<(ObjectPath, String)>> {
        let mut out = Vec::new();
        for (iden, rows) in links_in(self, place)? {
            if let Some(Placed::Link(target)) = placed_of(&rows) {
                out.push((placed_path(&iden, &rows)?, target));
            }
        }
        Ok(out)
    }

    /// Returns the place of node `iden` when it has one (an object's, a folder's or a
    /// link's), or the place it had when it was deleted, as history keeps it.
    pub fn place_of(&self, iden: &Iden) -> Result<Option<ObjectPath>> {
        let mut rows = self.store.rows_by_id(iden)?;
        if rows.is_empty() {
            // Its rows that died last: what it was when it went.
            let versions = self.store.row_versions(iden)?;
            let last = versions.iter().filter_map(|v| v.died).max();
            rows = (versions.into_iter())
                .filter(|v| last.is_some() && v.died == last)
                .map(|v| v.row)
                .collect();
        }
        Ok(match NodeProps::new(&rows).kind() {
            Some("object") => Some(object_meta(&rows)?.path),
            Some("folder" | "symlink") => Some(placed_path(iden, &rows)?),
            _ => None,
        })
    }

    /// Returns what is wrong with the folders and links `view` holds, one line each: a place
    /// that does not match the node's iden or whose directory is missing, a link's target that
    /// could not have been made (not 1–4095 bytes of text without NUL), a name an object has
    /// too. What `fsck` checks, and what an import refuses to leave behind (a sidecar's rows
    /// are written as they are).
    pub fn placed_problems(&self, view: &dyn RowRead) -> Result<Vec<String>> {
        let mut problems = BTreeMap::new();
        let mut checked = std::collections::HashSet::new();
        for kind in ["folder", "symlink"] {
            let query = PropQuery::new(prop::KIND);
            for row in view.rows_by_prop(&query.valu(&Valu::from(kind)))? {
                let rows = view.rows_by_id(&row.iden)?;
                if let Err(why) = self.check_placed(view, &row.iden, &rows) {
                    // A node of both kinds is one problem.
                    let line = format!("{kind} {}: {why}", row.iden);
                    problems.entry(row.iden.clone()).or_insert(line);
                }
                checked.insert(row.iden);
            }
        }
        // A node placed in a directory (`cronus:dir`) is an object (a uuid), a folder or a
        // link: any other would take a name no listing shows.
        // One row at a time: a store of millions of objects has as many of these rows.
        crate::meta::sorted_runs::visit_into(
            |visit| view.visit_rows_by_prop(&PropQuery::new(prop::DIR), visit),
            |row: Row| {
                if checked.contains(&row.iden) || row.iden.as_str().parse::<ObjectId>().is_ok() {
                    return Ok(());
                }
                let line = format!("node {}: placed, but no object, folder or link", row.iden);
                problems.entry(row.iden.clone()).or_insert(line);
                checked.insert(row.iden);
                Ok(())
            },
        )?;
        Ok(problems.into_values().collect())
    }

    /// Checks one folder or link (see [`Metastore::placed_problems`]).
    fn check_placed(&self, view: &dyn RowRead, iden: &Iden, rows: &[Row]) -> Result<()> {
        let at = placed_path(iden, rows)?;
        check_object_name(&at.name)?;
        if folder_iden(&at)? != *iden {
            return Err(MetaError::Corrupt(format!("its place is {at}")));
        }
        if rows.iter().filter(|r| r.prop == prop::KIND).count() != 1 {
            return Err(MetaError::Corrupt("it has more than one kind".into()));
        }
        if NodeProps::new(rows).kind() == Some("symlink") {
            check_link_rows(view, &at, rows)?;
        }
        if self.object_rows_at(view, &at)?.is_some() {
            return Err(MetaError::ObjectExists(at.to_string()));
        }
        self.require_dir(view, &at)
    }
}

/// Checks what only a link at `at` must be: one target a link could have been made with, and
/// no entries (a sidecar could give a folder's node a link's rows).
fn check_link_rows(view: &dyn RowRead, at: &ObjectPath, rows: &[Row]) -> Result<()> {
    let targets: Vec<&Valu> = (rows.iter())
        .filter(|r| r.prop == prop::TARGET)
        .map(|r| &r.valu)
        .collect();
    match targets[..] {
        [Valu::Str(target)] => check_target(target)?,
        _ => return Err(MetaError::Corrupt("it has not one target".into())),
    }
    let inside = Valu::from(at.key());
    if view.size_by_prop(&PropQuery::new(prop::DIR).valu(&inside))? > 0 {
        return Err(MetaError::Corrupt("a link holds entries".into()));
    }
    Ok(())
}

/// Clears `to` for a link or object moving there, inside `txn`: deletes the object or link
/// there (returning the object's uuid); a folder is [`MetaError::FolderExists`].
pub(super) fn replace_at<S: Storage>(
    txn: &dyn RowWrite,
    meta: &Metastore<S>,
    to: &ObjectPath,
) -> Result<Option<ObjectId>> {
    let placed = folder_iden(to)?;
    match placed_of(&txn.rows_by_id(&placed)?) {
        Some(Placed::Folder) => return Err(MetaError::FolderExists(to.to_string())),
        Some(Placed::Link(_)) => {
            txn.del_rows_by_id(&placed)?;
        }
        None => {}
    }
    let Some(old) = meta.object_rows_at(txn, to)? else {
        return Ok(None);
    };
    let old_id: ObjectId = NodeProps::new(&old).str(prop::UUID)?.parse()?;
    txn.del_rows_by_id(&old_id.iden())?;
    txn.blob_del(&info_key(&old_id.to_string()))?;
    Ok(Some(old_id))
}

/// Returns the links in `place` in catalogue `m`, by iden, with their rows.
pub(super) fn links_in<T: Storage>(
    m: &Metastore<T>,
    place: &RestorePlace,
) -> Result<BTreeMap<Iden, Vec<Row>>> {
    placed_in(m, place, "symlink")
}

/// Returns the folders in `place` in catalogue `m`, by iden, with their rows.
pub(super) fn folders_in<T: Storage>(
    m: &Metastore<T>,
    place: &RestorePlace,
) -> Result<BTreeMap<Iden, Vec<Row>>> {
    placed_in(m, place, "folder")
}

/// Returns the nodes of kind `kind` placed in a job directory of `place` in catalogue `m`.
fn placed_in<T: Storage>(
    m: &Metastore<T>,
    place: &RestorePlace,
    kind: &str,
) -> Result<BTreeMap<Iden, Vec<Row>>> {
    let kind = Valu::from(kind);
    let rows = (m.storage()).rows_by_prop(&PropQuery::new(prop::KIND).valu(&kind))?;
    let prefix = format!("{}/folders/", place.dataset);
    let mut found = BTreeMap::new();
    for row in rows
        .into_iter()
        .filter(|r| r.iden.as_str().starts_with(&prefix))
    {
        let rows = m.node_rows(&row.iden)?;
        if place.holds(&placed_path(&row.iden, &rows)?) {
            found.insert(row.iden, rows);
        }
    }
    Ok(found)
}
