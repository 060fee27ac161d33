//! Named snapshots: a time of the store (of the whole store, or of one dataset) kept by name.
//! A snapshot is the node `cronusfs:snapshot:<name>`; gc keeps what every snapshot shows
//! readable, whatever the history retention, until the snapshot is removed.

use super::Metastore;
use crate::meta::name_rules::check_component;
use crate::meta::{DatasetId, MetaError, Result};
use crate::storage::retry::transact;
use crate::storage::{Iden, PropQuery, Row, RowRead, Storage, Valu};

/// The props of a snapshot's node.
mod prop {
    /// The time it shows (µs of the store clock).
    pub const AT: &str = "cronusfs:snapshot:at";
    /// The dataset it shows, when it shows one.
    pub const DATASET: &str = "cronusfs:snapshot:dataset";
    /// When it was made (µs of the store clock).
    pub const CREATED: &str = "cronusfs:snapshot:created";
}

/// A named time of the store.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Snapshot {
    /// Its name (a path component: `snapshots/<name>`).
    pub name: String,
    /// The time it shows (µs of the store clock).
    pub at: i64,
    /// For a snapshot of one dataset: that dataset.
    pub dataset: Option<DatasetId>,
    /// When it was made (µs of the store clock).
    pub created: i64,
}

/// The node holding snapshot `name`'s rows.
fn snapshot_iden(name: &str) -> Result<Iden> {
    Ok(Iden::new(format!("cronusfs:snapshot:{name}"))?)
}

/// Reads snapshot `name` from its node's rows (`None`: there is no such snapshot).
fn read_snapshot(r: &dyn RowRead, name: &str) -> Result<Option<Snapshot>> {
    let rows = r.rows_by_id(&snapshot_iden(name)?)?;
    let int = |p: &str| {
        rows.iter().find_map(|r| match (&r.valu, r.prop == p) {
            (Valu::Int(n), true) => Some(*n),
            _ => None,
        })
    };
    let (Some(at), Some(created)) = (int(prop::AT), int(prop::CREATED)) else {
        return Ok(None);
    };
    let dataset = rows
        .iter()
        .find(|r| r.prop == prop::DATASET)
        .map(|r| r.valu.to_string().parse())
        .transpose()
        .map_err(|_| MetaError::Corrupt(format!("snapshot {name} names no dataset")))?;
    Ok(Some(Snapshot {
        name: name.to_string(),
        at,
        dataset,
        created,
    }))
}

impl<S: Storage> Metastore<S> {
    /// Makes snapshot `name` of the store at `at` (µs; `None`: now), or of one dataset. The
    /// time must be readable now (not in the future, nor older than the history kept), the
    /// dataset must exist then, and the name be free.
    pub fn create_snapshot(
        &self,
        name: &str,
        at: Option<i64>,
        dataset: Option<DatasetId>,
    ) -> Result<Snapshot> {
        check_component("snapshot name", name)?;
        if name.chars().any(char::is_control) {
            // `snapshot ls` prints one per line, tab-separated.
            return Err(MetaError::BadName {
                what: "snapshot name",
                name: name.chars().take(64).collect(),
                reason: "it contains a control character (a tab, a line break)",
            });
        }
        let iden = snapshot_iden(name)?;
        // No gc runs while this holds: the floor it checks against stays where it is until
        // the snapshot is there for gc to keep.
        let _hold = self.leases().hold_off_gc_for_new_write()?;
        let now = self.store.history_bounds()?.now;
        let at = at.unwrap_or(now);
        let then = self.at(at)?;
        if let Some(ds) = dataset
            && !then.has_dataset(ds)?
        {
            return Err(MetaError::NoSuchDataset(ds.to_string()));
        }
        let snapshot = Snapshot {
            name: name.to_string(),
            at,
            dataset,
            created: now,
        };
        let mut rows = vec![
            Row::new(&iden, prop::AT, Valu::Int(at), now / 1000),
            Row::new(&iden, prop::CREATED, Valu::Int(now), now / 1000),
        ];
        if let Some(ds) = dataset {
            rows.push(Row::new(&iden, prop::DATASET, ds.to_string(), now / 1000));
        }
        transact(&self.store, |txn| {
            if read_snapshot(txn, name)?.is_some() {
                return Err(MetaError::SnapshotExists(name.to_string()));
            }
            self.leases().check_held_in(txn)?;
            txn.add_rows(&rows)?;
            Ok(())
        })?;
        Ok(snapshot)
    }

    /// Returns snapshot `name`, if there is one.
    pub fn snapshot(&self, name: &str) -> Result<Option<Snapshot>> {
        if check_component("snapshot name", name).is_err() {
            return Ok(None);
        }
        read_snapshot(&self.store, name)
    }

    /// Returns every snapshot, by name.
    pub fn snapshots(&self) -> Result<Vec<Snapshot>> {
        let rows = self.store.rows_by_prop(&PropQuery::new(prop::AT))?;
        let mut snapshots = Vec::with_capacity(rows.len());
        for row in rows {
            let name = row.iden.as_str().trim_start_matches("cronusfs:snapshot:");
            snapshots.extend(read_snapshot(&self.store, name)?);
        }
        snapshots.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(snapshots)
    }

    /// Removes snapshot `name` (what only it kept goes at the next gc); returns it.
    pub fn remove_snapshot(&self, name: &str) -> Result<Snapshot> {
        let iden = snapshot_iden(name)?;
        transact(&self.store, |txn| {
            let snapshot = read_snapshot(txn, name)?
                .ok_or_else(|| MetaError::NoSuchSnapshot(name.to_string()))?;
            txn.del_rows_by_id(&iden)?;
            Ok(snapshot)
        })
    }

    /// Returns the catalogue as snapshot `snapshot` shows it (read-only, like
    /// [`Metastore::at`], but readable whatever the retention: gc keeps it).
    pub fn snapshot_view(&self, snapshot: &Snapshot) -> Result<Metastore<Box<dyn Storage>>> {
        self.past_view(self.store.as_of_kept(snapshot.at)?)
    }
}
