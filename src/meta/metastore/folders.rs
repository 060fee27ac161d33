//! Folders: directories inside a job directory (what `mkdir` there and `tar -x` make). A
//! folder is a node with rows (`cronus:kind` = `folder`, `cronus:dir` = its parent directory,
//! `cronus:object` = its path in the job); objects in it have names that are paths. Making
//! one, finding it, removing it when empty, and renaming it inside the job directories of one
//! dataset: the folder and every folder and object under it move in one transaction, objects
//! keeping their uuids.

use super::dir_times::{Change, entry_changed_in, forget_entries_time, move_entries_time};
use super::links::{Placed, placed_of};
use super::objects::move_object;
use super::{Metastore, NodeProps, ObjectPath, prop, rows_of};
use crate::meta::name_rules::check_object_name;
use crate::meta::{MetaError, Result};
use crate::storage::{Iden, MAX_IDEN_LEN, PropQuery, Row, RowWrite, Storage, Valu, now_millis};

/// The iden of the folder or link at `path` (a place inside a job directory):
/// `<ds>/folders/<key>/<job>/<path>`, or, for a place too long for an iden (a deep tree's paths
/// reach PATH_MAX, 4096 bytes), `<ds>/folders/#<32 hex digits of the BLAKE3 hash of that>`.
pub(super) fn folder_iden(path: &ObjectPath) -> Result<Iden> {
    let plain = format!(
        "{}/folders/{}/{}/{}",
        path.dataset, path.partition, path.job, path.name
    );
    // Room is left for the prefix of the blob of its entries' time (`dir_times.rs`).
    if plain.len() <= MAX_IDEN_LEN - 16 {
        return Ok(Iden::new(plain)?);
    }
    let hash = blake3::hash(plain.as_bytes()).to_hex();
    Ok(Iden::new(format!(
        "{}/folders/#{}",
        path.dataset,
        &hash[..32]
    ))?)
}

/// How the idens of the folders in job directory or folder `dir` begin (but hashed ones).
pub(super) fn folder_iden_prefix(dir: &ObjectPath) -> String {
    let folder = match dir.name.as_str() {
        "" => String::new(),
        name => format!("{name}/"),
    };
    format!(
        "{}/folders/{}/{}/{folder}",
        dir.dataset, dir.partition, dir.job
    )
}

impl<S: Storage> Metastore<S> {
    /// Makes the folder at `at` (`at.name` is its path in the job directory).
    pub fn make_folder(&self, at: &ObjectPath) -> Result<()> {
        self.place_node(at, &[(prop::KIND, "folder".into())])
    }

    /// Makes a folder or link at `at` with rows `own` besides its place's, in one transaction;
    /// a name taken by an object, folder or link is [`MetaError::ObjectExists`].
    pub(super) fn place_node(&self, at: &ObjectPath, own: &[(&str, Valu)]) -> Result<()> {
        check_object_name(&at.name)?;
        let iden = folder_iden(at)?;
        self.in_dataset_txn(at.dataset, |txn| {
            self.require_dir(txn, at)?;
            if !txn.rows_by_id(&iden)?.is_empty() || self.object_rows_at(txn, at)?.is_some() {
                return Err(MetaError::ObjectExists(at.to_string()));
            }
            let now = now_millis();
            let mut rows = vec![
                (prop::UUID, iden.as_str().into()),
                (prop::CREATED, now.into()),
                (prop::OBJECT, at.name.as_str().into()),
                (prop::DIR, at.dir().into()),
            ];
            rows.extend(own.iter().cloned());
            txn.add_rows(&rows_of(&iden, now, &rows))?;
            entry_changed_in(txn, at, now, Change::Now)?;
            Ok(())
        })
    }

    /// Returns whether there is a folder at `at`.
    pub fn has_folder(&self, at: &ObjectPath) -> Result<bool> {
        Ok(self.placed_at(at)? == Some(Placed::Folder))
    }

    /// Returns the iden of the folder at `at`.
    pub fn folder_iden(at: &ObjectPath) -> Result<Iden> {
        folder_iden(at)
    }

    /// Removes the folder at `at` if nothing is in it ([`MetaError::NotEmpty`]).
    pub fn remove_folder(&self, at: &ObjectPath) -> Result<()> {
        let iden = folder_iden(at)?;
        self.in_dataset_txn(at.dataset, |txn| {
            match placed_of(&txn.rows_by_id(&iden)?) {
                Some(Placed::Folder) => {}
                Some(Placed::Link(_)) => return Err(MetaError::NotAFolder(at.to_string())),
                None => return Err(MetaError::NoSuchObject(at.to_string())),
            }
            let inside = Valu::from(at.key());
            if txn.size_by_prop(&PropQuery::new(prop::DIR).valu(&inside))? > 0 {
                return Err(MetaError::NotEmpty(format!("folder {at}")));
            }
            txn.del_rows_by_id(&iden)?;
            forget_entries_time(txn, &iden)?;
            entry_changed_in(txn, at, now_millis(), Change::Now)?;
            Ok(())
        })
    }

    /// Moves the folder at `from` (with everything in it) to `to`, in the same dataset and
    /// any of its job directories, atomically. An empty folder at `to` is replaced; a folder
    /// with entries is [`MetaError::NotEmpty`], an object [`MetaError::ObjectExists`], a link
    /// [`MetaError::NotAFolder`]; `to` inside `from` is [`MetaError::BadName`].
    pub fn rename_folder(&self, from: &ObjectPath, to: &ObjectPath) -> Result<()> {
        if from.dataset != to.dataset {
            return Err(MetaError::CrossDataset(to.to_string()));
        }
        check_object_name(&to.name)?;
        let same_dir = from.partition == to.partition && from.job == to.job;
        if same_dir
            && to
                .name
                .strip_prefix(&from.name)
                .is_some_and(|r| r.starts_with('/'))
        {
            return Err(MetaError::BadName {
                what: "folder name",
                name: to.name.chars().take(64).collect(),
                reason: "a folder cannot move into itself",
            });
        }
        self.in_dataset_txn(to.dataset, |txn| {
            self.require_dir(txn, to)?;
            if placed_of(&txn.rows_by_id(&folder_iden(from)?)?) != Some(Placed::Folder) {
                return Err(MetaError::NoSuchObject(from.to_string()));
            }
            if same_dir && from.name == to.name {
                return Ok(());
            }
            if self.object_rows_at(txn, to)?.is_some() {
                return Err(MetaError::ObjectExists(to.to_string()));
            }
            let target = folder_iden(to)?;
            let there = placed_of(&txn.rows_by_id(&target)?);
            if let Some(Placed::Link(_)) = there {
                return Err(MetaError::NotAFolder(to.to_string()));
            }
            if there.is_some() {
                let inside = Valu::from(to.key());
                if txn.size_by_prop(&PropQuery::new(prop::DIR).valu(&inside))? > 0 {
                    return Err(MetaError::NotEmpty(format!("folder {to}")));
                }
                txn.del_rows_by_id(&target)?;
                forget_entries_time(txn, &target)?;
            }
            move_tree(txn, from, to)?;
            let now = now_millis();
            entry_changed_in(txn, from, now, Change::Now)?;
            entry_changed_in(txn, to, now, Change::Now)?;
            Ok(())
        })
    }
}

/// Moves folder `from` to `to` inside `txn`, then everything in it, depth first.
fn move_tree(txn: &dyn RowWrite, from: &ObjectPath, to: &ObjectPath) -> Result<()> {
    move_placed_node(txn, from, to)?;
    let inside = Valu::from(from.key());
    let members = txn.rows_by_prop(&PropQuery::new(prop::DIR).valu(&inside))?;
    for member in members {
        let rows = txn.rows_by_id(&member.iden)?;
        let node = NodeProps::new(&rows);
        let name = node.str(prop::OBJECT)?;
        let leaf = name.rsplit('/').next().unwrap_or(name);
        let old = ObjectPath::new(from.dataset, &from.partition, from.job, name);
        let new = ObjectPath::new(
            to.dataset,
            &to.partition,
            to.job,
            &format!("{}/{leaf}", to.name),
        );
        match node.kind() {
            Some("folder") => move_tree(txn, &old, &new)?,
            Some("symlink") => move_placed_node(txn, &old, &new)?,
            _ => move_object(txn, node.str(prop::UUID)?.parse()?, &rows, &new)?,
        }
    }
    Ok(())
}

/// Gives the folder or link at `from` the iden of `to`, with its place rows rewritten and
/// every other row (user rows, mode, owner, times, a link's target) kept.
pub(super) fn move_placed_node(
    txn: &dyn RowWrite,
    from: &ObjectPath,
    to: &ObjectPath,
) -> Result<()> {
    let (old, new) = (folder_iden(from)?, folder_iden(to)?);
    let now = now_millis();
    let rows: Vec<Row> = txn
        .rows_by_id(&old)?
        .into_iter()
        .map(|r| {
            let moved = match r.prop.as_str() {
                prop::UUID => Some(Valu::from(new.as_str())),
                prop::OBJECT => Some(Valu::from(to.name.as_str())),
                prop::DIR => Some(Valu::from(to.dir())),
                _ => None,
            };
            match moved {
                Some(valu) => Row::new(&new, r.prop.as_str(), valu, now),
                None => Row::new(&new, r.prop.as_str(), r.valu, r.time),
            }
        })
        .collect();
    txn.del_rows_by_id(&old)?;
    txn.add_rows(&rows)?;
    move_entries_time(txn, &old, &new)?;
    Ok(())
}
