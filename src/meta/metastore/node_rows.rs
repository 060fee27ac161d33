//! Rows of any node by iden: reading them all, and setting or deleting single props (what
//! xattrs and the mount's `chmod`, `chown` and `utimens` change), with the rule that the
//! catalogue's (`cronus:`) and the daemons' (`cronusfs:`) props are not the users' to set.

use super::dir_times::time_set_in;
use super::{Metastore, NodeProps, prop};
use crate::meta::{DatasetId, MetaError, Result};
use crate::storage::retry::transact;
use crate::storage::{Iden, Row, Storage, Transaction, Valu, now_millis};

/// How the props the daemons keep for themselves begin: no user sets or removes them.
pub(crate) const DAEMON_PROPS: &str = "cronusfs:";

impl<S: Storage> Metastore<S> {
    /// Returns every row of node `iden` (empty when there is no such node).
    pub fn node_rows(&self, iden: &Iden) -> Result<Vec<Row>> {
        Ok(self.store.rows_by_id(iden)?)
    }

    /// Sets user row `prop` of node `iden` to `valu` (replacing its values). Props of the
    /// catalogue (`cronus:`) are [`MetaError::SystemProp`] unless `system` is set, which only the
    /// mount does, for the attributes `chmod`, `chown` and `utimens` change.
    pub fn set_node_row(&self, iden: &Iden, p: &str, valu: &Valu, system: bool) -> Result<()> {
        self.set_node_rows(iden, &[(p, valu.clone(), now_millis())], system)
    }

    /// Sets rows `(prop, value, time)` of node `iden` in one transaction, each replacing the
    /// node's rows of its prop; a node that does not exist is [`MetaError::NoSuchObject`].
    /// Reads the node's kind row and the rows it replaces, nothing else.
    pub fn set_node_rows(
        &self,
        iden: &Iden,
        rows: &[(&str, Valu, i64)],
        system: bool,
    ) -> Result<()> {
        for (p, _, _) in rows {
            check_user_prop(p, system)?;
        }
        transact(&self.store, |txn| {
            // Every node has its kind row: one row read says whether it exists.
            let kind = txn.rows_by_id_prop(iden, prop::KIND, None)?;
            if kind.is_empty() {
                return Err(MetaError::NoSuchObject(iden.to_string()));
            }
            announce_node(txn, iden, kind)?;
            for (p, _, _) in rows {
                txn.del_rows_by_id_prop(iden, p, None)?;
            }
            txn.add_rows(&new_rows(iden, rows))?;
            Ok(())
        })
    }

    /// [`Metastore::set_node_rows`] when `admit` (shown the node's rows as the transaction
    /// read them) says yes, returning the node's rows after the change; `None` (nothing
    /// written) when it says no. One read of the whole node serves the check, the deletes and
    /// the answer (the replaced props' rows come last): for a caller that reads the node
    /// anyway (the mount's `utimens` and `setxattr`).
    pub fn set_node_rows_read_back(
        &self,
        iden: &Iden,
        rows: &[(&str, Valu, i64)],
        system: bool,
        admit: &mut dyn FnMut(&[Row]) -> bool,
    ) -> Result<Option<Vec<Row>>> {
        for (p, _, _) in rows {
            check_user_prop(p, system)?;
        }
        transact(&self.store, |txn| {
            let node = txn.rows_by_id(iden)?;
            if !node.iter().any(|r| r.prop == prop::KIND) {
                return Err(MetaError::NoSuchObject(iden.to_string()));
            }
            if let Some(ds) = dataset_of_node(iden, &node) {
                txn.announce_within(&ds.to_string());
            }
            if !admit(&node) {
                return Ok(None);
            }
            let (gone, mut kept): (Vec<Row>, Vec<Row>) =
                (node.into_iter()).partition(|r| rows.iter().any(|(p, _, _)| r.prop == *p));
            let new = new_rows(iden, rows);
            txn.del_rows(&gone)?;
            txn.add_rows(&new)?;
            if let Some((_, _, at)) = rows.iter().find(|(p, _, _)| *p == prop::MTIME)
                && is_directory(&kept)
            {
                time_set_in(txn, iden, *at)?;
            }
            kept.extend(new);
            Ok(Some(kept))
        })
    }

    /// Deletes user row `prop` of node `iden`; returns how many rows went.
    pub fn del_node_row(&self, iden: &Iden, p: &str) -> Result<usize> {
        check_user_prop(p, false)?;
        transact(&self.store, |txn| {
            let kind = txn.rows_by_id_prop(iden, prop::KIND, None)?;
            announce_node(txn, iden, kind)?;
            Ok(txn.del_rows_by_id_prop(iden, p, None)?)
        })
    }
}

/// Says that `txn` changes node `iden` alone (its rows `read` as far as read: its kind row at
/// least), so that it is announced within the node's dataset; an object's dataset row is
/// read for it.
fn announce_node(txn: &dyn Transaction, iden: &Iden, mut read: Vec<Row>) -> Result<()> {
    if NodeProps::new(&read).kind() == Some("object") {
        read.extend(txn.rows_by_id_prop(iden, prop::DATASET, None)?);
    }
    if let Some(ds) = dataset_of_node(iden, &read) {
        txn.announce_within(&ds.to_string());
    }
    Ok(())
}

/// Returns the dataset node `iden` lies within, as its rows `rows` (as far as read) or its
/// iden say: an object's, partition's or job's dataset row, a dataset itself, or the dataset
/// a folder's or link's iden begins with.
fn dataset_of_node(iden: &Iden, rows: &[Row]) -> Option<DatasetId> {
    let node = NodeProps::new(rows);
    let named = [prop::DATASET, prop::PARTITION_OF, prop::JOB_OF]
        .into_iter()
        .find_map(|p| node.str(p).ok());
    let own = (node.kind() == Some("dataset")).then_some(iden.as_str());
    let prefix = iden.as_str().split_once('/').map(|(ds, _)| ds);
    named.or(own).or(prefix)?.parse().ok()
}

/// Returns whether a node with rows `rows` is shown as a directory (its entries' changes move
/// its time: `dir_times.rs`).
fn is_directory(rows: &[Row]) -> bool {
    let kind = rows.iter().find(|r| r.prop == prop::KIND);
    kind.is_some_and(|r| {
        matches!(&r.valu, Valu::Str(k) if ["dataset", "partition", "job", "folder"].contains(&k.as_str()))
    })
}

fn new_rows(iden: &Iden, rows: &[(&str, Valu, i64)]) -> Vec<Row> {
    (rows.iter())
        .map(|(p, valu, time)| Row::new(iden, p, valu.clone(), *time))
        .collect()
}

/// Refuses props of the catalogue's own rows (and the daemons') unless `system` is set.
pub(super) fn check_user_prop(p: &str, system: bool) -> Result<()> {
    // `cronus:` is the catalogue's, `cronusfs:` the daemons' own (sessions, leases, holds).
    if !system && (p.starts_with("cronus:") || p.starts_with(DAEMON_PROPS)) {
        return Err(MetaError::SystemProp(p.to_string()));
    }
    Ok(())
}
