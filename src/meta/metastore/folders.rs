//! Renaming a folder inside the job directories of one dataset: the folder and every folder
//! and object under it move in one transaction, objects keeping their uuids.

use super::tree::move_object;
use super::{Metastore, Node, ObjectPath, folder_iden, prop};
use crate::meta::names::check_object_name;
use crate::meta::{MetaError, Result};
use crate::storage::{PropQuery, Row, RowWrite, Storage, Valu, now_millis};

impl<S: Storage> Metastore<S> {
    /// Moves the folder at `from` (with everything in it) to `to`, in the same dataset and
    /// any of its job directories, atomically. An empty folder at `to` is replaced; a folder
    /// with entries is [`MetaError::NotEmpty`], an object [`MetaError::ObjectExists`]; `to`
    /// inside `from` is [`MetaError::BadName`].
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
        self.in_txn(|txn| {
            self.require_dir(txn, to)?;
            if txn.rows_by_id(&folder_iden(from)?)?.is_empty() {
                return Err(MetaError::NoSuchObject(from.to_string()));
            }
            if same_dir && from.name == to.name {
                return Ok(());
            }
            if self.object_rows_at(txn, to)?.is_some() {
                return Err(MetaError::ObjectExists(to.to_string()));
            }
            let target = folder_iden(to)?;
            if !txn.rows_by_id(&target)?.is_empty() {
                let inside = Valu::from(to.key());
                if txn.size_by_prop(&PropQuery::new(prop::DIR).valu(&inside))? > 0 {
                    return Err(MetaError::NotEmpty(format!("folder {to}")));
                }
                txn.del_rows_by_id(&target)?;
            }
            move_tree(txn, from, to)?;
            Ok(())
        })
    }
}

/// Moves folder `from` to `to` inside `txn`, then everything in it, depth first.
fn move_tree(txn: &dyn RowWrite, from: &ObjectPath, to: &ObjectPath) -> Result<()> {
    move_folder_node(txn, from, to)?;
    let inside = Valu::from(from.key());
    let members = txn.rows_by_prop(&PropQuery::new(prop::DIR).valu(&inside))?;
    for member in members {
        let rows = txn.rows_by_id(&member.iden)?;
        let node = Node::new(&rows);
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
            _ => move_object(txn, node.str(prop::UUID)?.parse()?, &rows, &new)?,
        }
    }
    Ok(())
}

/// Gives folder `from`'s node the iden of `to`, with its place rows rewritten and every other
/// row (user rows, mode, owner, times) kept.
fn move_folder_node(txn: &dyn RowWrite, from: &ObjectPath, to: &ObjectPath) -> Result<()> {
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
    Ok(())
}
