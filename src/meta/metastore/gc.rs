//! Garbage collection of the catalogue's bytes: deleting every content no version history
//! keeps (current or past), menu or configuration refers to, and every chunk no remaining
//! content uses, past the gc gate (writes in flight, here and in other processes) and the
//! read holds of open handles.

use std::collections::HashSet;

use std::time::Duration;

use super::{Metastore, Snapshot, prop};
use crate::meta::content::{ContentId, GcReport, has_manifest};
use crate::meta::{MetaError, Result};
use crate::meters;
use crate::storage::RowRead;
use crate::storage::retry::transact;
use crate::storage::{Iden, PropQuery, Row, Storage, Valu};

impl<S: Storage> Metastore<S> {
    /// Deletes every content that no object version, menu or configuration refers to, now or
    /// in the history the store keeps, and every chunk no remaining content uses.
    pub fn gc(&self) -> Result<GcReport> {
        self.gc_with_progress(&mut |_, _| {})
    }

    /// [`Metastore::gc`], calling `progress(done, total)` as contents and chunks are examined.
    pub fn gc_with_progress(&self, progress: &mut dyn FnMut(u64, u64)) -> Result<GcReport> {
        let _exclusive = self.gc_gate.lock_out_writes();
        let _sweep = self.leases().begin_sweep()?;
        // Times older than the retention are no longer answered for from now on: what only
        // they needed is reclaimed.
        let now = self.store.history_bounds()?.now;
        let retention = i64::try_from(self.history_retention()?.as_micros()).unwrap_or(i64::MAX);
        let floor = self
            .store
            .raise_history_floor(now.saturating_sub(retention))?;
        let snapshots = self.snapshots()?;
        let pins: Vec<i64> = (snapshots.iter())
            .map(|s| s.at)
            .filter(|at| *at < floor)
            .collect();
        let pruned = self.store.prune_history(floor, &pins)?;
        let rows = self.store.rows_by_prop(&PropQuery::new(prop::CONTENT))?;
        let mut live = content_ids(&rows)?;
        let past = content_ids(&self.store.past_rows_by_prop(prop::CONTENT, floor)?)?;
        let only_past: Vec<ContentId> = past.difference(&live).copied().collect();
        live.extend(only_past.iter().copied());
        let only_snapshots: Vec<ContentId> = self
            .snapshot_contents(&snapshots, floor)?
            .difference(&live)
            .copied()
            .collect();
        live.extend(only_snapshots.iter().copied());
        let pinned = self.gc_gate.pinned();
        let read_holds = self.read_holds();
        let delete = &mut |id| read_holds.delete_unless_held(id);
        let mut report = (self.content()).collect_garbage_with(&live, &pinned, delete, progress)?;
        for id in only_past {
            report.history += u64::from(has_manifest(&self.store, id)?);
        }
        for id in only_snapshots {
            report.snapshots += u64::from(has_manifest(&self.store, id)?);
        }
        report.pruned = pruned.rows;
        meters::count(meters::GC_SWEEPS, 1);
        meters::count(meters::GC_FREED_BYTES, report.bytes);
        Ok(report)
    }

    /// Returns the contents that snapshots older than `floor` show (newer ones are in the
    /// history kept): of the whole store, or of the objects of one dataset.
    fn snapshot_contents(&self, snapshots: &[Snapshot], floor: i64) -> Result<HashSet<ContentId>> {
        let mut contents = HashSet::new();
        for snapshot in snapshots {
            if snapshot.at >= floor {
                continue;
            }
            let then = self.store.as_of_kept(snapshot.at)?;
            let mut rows = then.rows_by_prop(&PropQuery::new(prop::CONTENT))?;
            if let Some(ds) = snapshot.dataset {
                let valu = Valu::from(ds.to_string());
                let of_dataset = then.rows_by_prop(&PropQuery::new(prop::DATASET).valu(&valu))?;
                let idens: HashSet<&Iden> = of_dataset.iter().map(|r| &r.iden).collect();
                rows.retain(|r| idens.contains(&r.iden));
            }
            contents.extend(content_ids(&rows)?);
        }
        Ok(contents)
    }
}

impl<S: Storage> Metastore<S> {
    /// Returns how long the store keeps its history: gc reclaims what only older times need.
    pub fn history_retention(&self) -> Result<Duration> {
        Metastore::<S>::retention_in(&self.store)
    }

    /// Records `retention` as how long the store keeps its history; returns the one it
    /// replaces. The next gc reclaims what only older times need.
    pub fn set_history_retention(&self, retention: Duration) -> Result<Duration> {
        if retention > MAX_HISTORY_RETENTION {
            return Err(MetaError::BadSetting(format!(
                "history retention {} s is longer than 100 years",
                retention.as_secs()
            )));
        }
        let ms = retention.as_millis() as i64;
        transact(&self.store, |txn| {
            let old = Metastore::<S>::retention_in(txn)?;
            txn.blob_set(HISTORY_RETENTION_BLOB, &ms.to_be_bytes())?;
            Ok::<_, MetaError>(old)
        })
    }

    fn retention_in(r: &dyn RowRead) -> Result<Duration> {
        match r.blob_get(HISTORY_RETENTION_BLOB)? {
            None => Ok(DEFAULT_HISTORY_RETENTION),
            Some(raw) => <[u8; 8]>::try_from(raw.as_slice())
                .map(|b| Duration::from_millis(i64::from_be_bytes(b).max(0) as u64))
                .map_err(|_| MetaError::Corrupt("history retention is not 8 bytes".into())),
        }
    }
}

/// The blob holding how long the store keeps its history (ms, 8-byte big-endian i64).
pub const HISTORY_RETENTION_BLOB: &str = "cronusfs:history-retention";
/// How long a store keeps its history unless told otherwise: 30 days.
pub const DEFAULT_HISTORY_RETENTION: Duration = Duration::from_secs(30 * 86_400);
/// The longest history retention a store takes.
pub const MAX_HISTORY_RETENTION: Duration = Duration::from_secs(100 * 365 * 86_400);

/// Returns the contents `rows` (of `cronus:content`) name.
fn content_ids(rows: &[Row]) -> Result<HashSet<ContentId>> {
    rows.iter().map(|r| r.valu.to_string().parse()).collect()
}
