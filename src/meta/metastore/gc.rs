//! Garbage collection of the catalogue's bytes: deleting every content no version history
//! keeps (current or past), menu or configuration refers to, and every chunk no remaining
//! content uses, past the gc gate (writes in flight, here and in other processes) and the
//! read holds of open handles.

use std::time::Duration;

use super::{Metastore, Snapshot, prop};
use crate::meta::content::{ContentId, GcReport, Keeper, Marks};
use crate::meta::sorted_runs::{Membership, RUN_BYTES, SortedRuns, visit_into};
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
        self.gc_within(RUN_BYTES, progress)
    }

    /// [`Metastore::gc_with_progress`], with each of its mark sets holding at most `budget`
    /// bytes in memory: past it, a set spills sorted runs to temporary files. What it reclaims
    /// does not depend on the budget.
    pub fn gc_within(&self, budget: usize, progress: &mut dyn FnMut(u64, u64)) -> Result<GcReport> {
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
        let mut marks = Marks::new(budget);
        visit_into(
            |visit| (self.store).visit_rows_by_prop(&PropQuery::new(prop::CONTENT), visit),
            |row: Row| marks.keep(Keeper::Live, content_id(&row)?),
        )?;
        visit_into(
            |visit| (self.store).visit_past_rows_by_prop(prop::CONTENT, floor, visit),
            |row: Row| marks.keep(Keeper::History, content_id(&row)?),
        )?;
        for snapshot in snapshots.iter().filter(|s| s.at < floor) {
            self.mark_snapshot(snapshot, budget, &mut marks)?;
        }
        let pinned = self.gc_gate.pinned();
        let read_holds = self.read_holds();
        let delete = &mut |id| read_holds.delete_unless_held(id);
        let mut report = (self.content()).sweep(marks, &pinned, delete, progress)?;
        report.pruned = pruned.rows;
        meters::count(meters::GC_SWEEPS, 1);
        meters::count(meters::GC_FREED_BYTES, report.bytes);
        Ok(report)
    }

    /// Marks the contents snapshot `snapshot` (older than the history kept: newer ones are in
    /// it) shows: of the whole store, or of the objects of one dataset.
    fn mark_snapshot(&self, snapshot: &Snapshot, budget: usize, marks: &mut Marks) -> Result<()> {
        let then = self.store.as_of_kept(snapshot.at)?;
        let contents = PropQuery::new(prop::CONTENT);
        let Some(ds) = snapshot.dataset else {
            return visit_into(
                |visit| then.visit_rows_by_prop(&contents, visit),
                |row: Row| marks.keep(Keeper::Snapshot, content_id(&row)?),
            );
        };
        // The dataset's nodes, and every content row, keyed by a hash of the node's iden: a
        // merge of the two sorted sets names the dataset's contents (two idens of one hash
        // would keep one content too many, never one too few).
        let mut nodes = SortedRuns::<16>::new(budget);
        let valu = Valu::from(ds.to_string());
        visit_into(
            |visit| then.visit_rows_by_prop(&PropQuery::new(prop::DATASET).valu(&valu), visit),
            |row: Row| Ok(nodes.push(iden_key(&row.iden))?),
        )?;
        let mut rows = SortedRuns::<48>::new(budget);
        visit_into(
            |visit| then.visit_rows_by_prop(&contents, visit),
            |row: Row| {
                let mut record = [0u8; 48];
                record[..16].copy_from_slice(&iden_key(&row.iden));
                record[16..].copy_from_slice(content_id(&row)?.as_bytes());
                Ok(rows.push(record)?)
            },
        )?;
        let mut of_dataset = Membership::of(nodes)?;
        for record in rows.into_sorted()? {
            let record = record?;
            let (node, id) = record.split_at(16);
            if of_dataset.contains(node.try_into().expect("16 bytes"))? {
                let id = ContentId::from_bytes(id.try_into().expect("32 bytes"));
                marks.keep(Keeper::Snapshot, id)?;
            }
        }
        Ok(())
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

/// Returns the content a `cronus:content` row names.
fn content_id(row: &Row) -> Result<ContentId> {
    row.valu.to_string().parse()
}

/// Returns 16 bytes that name node `iden` in a sorted set.
fn iden_key(iden: &Iden) -> [u8; 16] {
    let hash = blake3::hash(iden.as_str().as_bytes());
    hash.as_bytes()[..16].try_into().expect("16 bytes")
}
