//! `RowStore<E>`: the one implementation of [`Storage`] over any [`Engine`], and its
//! transactions. Checks the format version at open, runs every write call as one engine
//! transaction (again, when it conflicted with another writer) and commits it as one batch.

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};

use super::as_of::AsOfStore;
use super::engine::{Cf, Engine, EngineRead, EngineTxn, WriteBatch};
use super::history::{self, HistoryBounds, Stamp, is_timeless_blob, now_micros};
use super::keys::{
    self, FORMAT_VERSION, FORMAT_VERSION_BEFORE_HISTORY, META_CREATED, META_FORMAT_VERSION,
    META_HISTORY_SINCE, SYN_CREATED,
};
use super::retry::retry;
use super::row::{check_blob_key, now_millis};
use super::row_view::RowView;
use super::{
    Iden, IntLift, NodesVisitor, PropQuery, Result, Row, RowRead, RowVisitor, RowWrite, Storage,
    StorageError, Transaction, Valu,
};

/// A row store over engine `E`.
#[derive(Debug)]
pub struct RowStore<E: Engine> {
    engine: Arc<E>,
    /// When the store's history began (µs).
    since: i64,
    /// The newest time this process settled the clock at (µs): reads at or before it need
    /// not settle again.
    settled: AtomicI64,
}

impl<E: Engine> RowStore<E> {
    /// Returns a store over `engine`, writing the format version into an empty engine and
    /// checking it in a used one.
    pub fn with_engine(engine: E) -> Result<Self> {
        RowStore::with_blobs(engine, &[])
    }

    /// [`RowStore::with_engine`], writing `blobs` too into an empty engine, in the same
    /// atomic write as the format version (a used engine's blobs are left as they are). A
    /// store one process owns made before history was kept is upgraded: its history begins.
    pub fn with_blobs(engine: E, blobs: &[(&str, Vec<u8>)]) -> Result<Self> {
        match engine.get(Cf::Meta, META_FORMAT_VERSION)? {
            Some(v) => match format_version(&v)? {
                FORMAT_VERSION => {}
                FORMAT_VERSION_BEFORE_HISTORY if !engine.is_shared() => {
                    engine.write(upgrade_batch(&engine, now_micros())?)?;
                }
                found => {
                    return Err(StorageError::FormatVersion {
                        found,
                        supported: FORMAT_VERSION,
                    });
                }
            },
            None => {
                let mut any = false;
                for cf in Cf::ALL {
                    engine.scan(cf, &[], None, &mut |_, _| {
                        any = true;
                        Ok(false)
                    })?;
                }
                if any {
                    return Err(StorageError::Corruption(
                        "store has data but no format version".into(),
                    ));
                }
                engine.write(first_batch(blobs)?)?;
            }
        }
        let since = history::history_since(&engine)?
            .ok_or_else(|| StorageError::Corruption("no history-since in a store".into()))?;
        Ok(RowStore {
            engine: Arc::new(engine),
            since,
            settled: AtomicI64::new(i64::MIN),
        })
    }

    /// Opens a used engine whatever its format version says, and returns it with that
    /// version: only to read what decides an upgrade (a store made before history was kept
    /// reads as any store does) before [`RowStore::upgrade`]. Nothing may be written through
    /// it first.
    pub fn open_to_upgrade(engine: E) -> Result<(Self, u32)> {
        let Some(v) = engine.get(Cf::Meta, META_FORMAT_VERSION)? else {
            return Err(StorageError::Corruption("no format version".into()));
        };
        let version = format_version(&v)?;
        let since = history::history_since(&engine)?.unwrap_or(i64::MAX);
        let store = RowStore {
            engine: Arc::new(engine),
            since,
            settled: AtomicI64::new(i64::MIN),
        };
        Ok((store, version))
    }

    /// Upgrades a store made before history was kept to the format this build reads: one
    /// write of its format version, when its history begins (the store clock now) and each
    /// tracked blob's version then. Returns when history begins; a store already upgraded is
    /// left as it is.
    pub fn upgrade(self) -> Result<i64> {
        let txn = self.engine.begin()?;
        let version = txn
            .get(Cf::Meta, META_FORMAT_VERSION)?
            .map(|v| format_version(&v));
        match version.transpose()? {
            Some(FORMAT_VERSION) => {
                drop(txn);
                return history::history_since(&*self.engine)?
                    .ok_or_else(|| StorageError::Corruption("no history-since".into()));
            }
            Some(FORMAT_VERSION_BEFORE_HISTORY) => {}
            found => {
                return Err(StorageError::FormatVersion {
                    found: found.unwrap_or(0),
                    supported: FORMAT_VERSION,
                });
            }
        }
        let since = self.engine.settle()?;
        txn.commit(upgrade_batch(&*self.engine, since)?)?;
        Ok(since)
    }

    /// Returns the engine under the store.
    pub fn engine(&self) -> &E {
        &self.engine
    }

    /// Returns the store's creation time (epoch ms).
    pub fn created(&self) -> Result<i64> {
        let raw = self.engine.get(Cf::Meta, META_CREATED)?.unwrap_or_default();
        <[u8; 8]>::try_from(raw.as_slice())
            .map(i64::from_be_bytes)
            .map_err(|_| StorageError::Corruption("creation time is not 8 bytes".into()))
    }

    fn view(&self) -> RowView<&E> {
        RowView::new(&self.engine)
    }

    /// Runs `op` on a view of a new engine transaction and commits what it wrote; all again
    /// when the transaction conflicted with another writer.
    fn write_with<T>(&self, op: impl Fn(&TxnView<'_, E>) -> Result<T>) -> Result<T> {
        retry(|| {
            let view = RowView::for_writes(self.engine.begin()?);
            let out = op(&view)?;
            let (txn, batch) = view.finish()?;
            txn.commit(batch)?;
            Ok(out)
        })
    }

    /// Settles the store clock unless `at` is at or before a time already settled; returns
    /// the bounds of history.
    fn settle_for(&self, at: i64) -> Result<HistoryBounds> {
        let known = self.settled.load(Ordering::Acquire);
        let now = match at <= known {
            true => known,
            false => {
                let now = self.engine.settle()?;
                self.settled.fetch_max(now, Ordering::AcqRel);
                now
            }
        };
        let floor = history::history_floor(&*self.engine)?.unwrap_or(self.since);
        Ok(HistoryBounds {
            since: self.since,
            floor,
            now,
        })
    }
}

/// The chunks of a backup: `next_chunk(after)` reads the rows after a resume key (and the
/// next one), `keep` leaves rows out; a chunk left empty by `keep` is skipped, not the end.
pub(super) fn backup_chunks<'a>(
    mut next_chunk: impl FnMut(Option<&[u8]>) -> Result<(Vec<Row>, Option<Vec<u8>>)> + 'a,
    keep: impl Fn(&Row) -> bool + 'a,
) -> Box<dyn Iterator<Item = Result<Vec<Row>>> + 'a> {
    let mut resume: Option<Option<Vec<u8>>> = Some(None);
    Box::new(std::iter::from_fn(move || {
        loop {
            let after = resume.take()?;
            match next_chunk(after.as_deref()) {
                Ok((mut rows, next)) => {
                    resume = next.map(Some);
                    rows.retain(&keep);
                    if !rows.is_empty() {
                        return Some(Ok(rows));
                    }
                }
                Err(e) => return Some(Err(e)),
            }
        }
    }))
}

/// Returns a stored format version.
fn format_version(v: &[u8]) -> Result<u32> {
    <[u8; 4]>::try_from(v)
        .map(u32::from_be_bytes)
        .map_err(|_| StorageError::Corruption("format version is not 4 bytes".into()))
}

/// Returns the write that makes an empty engine a store: its format version, its creation
/// time, when its history begins and `blobs` (checked as any blob key is).
pub(crate) fn first_batch(blobs: &[(&str, Vec<u8>)]) -> Result<WriteBatch> {
    let mut batch = WriteBatch::new();
    batch.put(
        Cf::Meta,
        META_FORMAT_VERSION.to_vec(),
        FORMAT_VERSION.to_be_bytes().to_vec(),
    );
    let now = now_millis().to_be_bytes().to_vec();
    batch.put(Cf::Meta, META_CREATED.to_vec(), now.clone());
    let since = now_micros();
    batch.put(
        Cf::Meta,
        META_HISTORY_SINCE.to_vec(),
        since.to_be_bytes().to_vec(),
    );
    // Recorded once, where every backend's store is made, as Synapse storage layers do.
    batch.put(Cf::Blobs, keys::blob_key(SYN_CREATED), now);
    for (key, valu) in blobs {
        check_blob_key(key)?;
        batch.put(Cf::Blobs, keys::blob_key(key), valu.clone());
        put_first_version(&mut batch, key, valu, since);
    }
    Ok(batch)
}

/// Adds to `batch` the version a tracked blob has when history begins at `since`.
fn put_first_version(batch: &mut WriteBatch, key: &str, valu: &[u8], since: i64) {
    if !is_timeless_blob(key) {
        batch.put(
            Cf::BlobHistory,
            keys::blob_version_key(key, Stamp::at(since)),
            keys::blob_version_value(Some(valu)),
        );
    }
}

/// Returns the write that upgrades a store made before history was kept: its format
/// version, when its history begins (`since`, µs) and the version each tracked blob has then.
fn upgrade_batch(engine: &impl Engine, since: i64) -> Result<WriteBatch> {
    let mut batch = WriteBatch::new();
    batch.put(
        Cf::Meta,
        META_FORMAT_VERSION.to_vec(),
        FORMAT_VERSION.to_be_bytes().to_vec(),
    );
    batch.put(
        Cf::Meta,
        META_HISTORY_SINCE.to_vec(),
        since.to_be_bytes().to_vec(),
    );
    let mut tracked = Vec::new();
    engine.scan(Cf::Blobs, &[], None, &mut |k, v| {
        let key = keys::decode_blob_key(k)?;
        if !is_timeless_blob(&key) {
            tracked.push((key, v.to_vec()));
        }
        Ok(true)
    })?;
    for (key, valu) in tracked {
        put_first_version(&mut batch, &key, &valu, since);
    }
    Ok(batch)
}

/// A view of rows through an open transaction of engine `E`.
type TxnView<'s, E> = RowView<<E as Engine>::Txn<'s>>;

/// A transaction on a [`RowStore`]: an engine transaction and the writes made in it so far.
pub struct RowTxn<'s, E: Engine + 's> {
    view: TxnView<'s, E>,
    /// Where its changes lie, as its writer said.
    scope: std::cell::RefCell<super::announce::Scope>,
}

/// Implements [`RowRead`] for a type by forwarding every call to the `RowView` `$view` gives.
macro_rules! forward_row_read {
    ($ty:ty, $self_:ident => $view:expr) => {
        impl<E: Engine> RowRead for $ty {
            fn rows_by_id(&$self_, iden: &Iden) -> Result<Vec<Row>> {
                $view.rows_by_id(iden)
            }
            fn visit_rows_by_id(&$self_, iden: &Iden, visit: &mut RowVisitor<'_>) -> Result<()> {
                $view.visit_rows_by_id(iden, visit)
            }
            fn visit_rows_by_idens(&$self_, idens: &[Iden], visit: &mut NodesVisitor<'_>) -> Result<()> {
                $view.visit_rows_by_idens(idens, visit)
            }
            fn rows_by_id_prop(&$self_, iden: &Iden, prop: &str, valu: Option<&Valu>) -> Result<Vec<Row>> {
                $view.rows_by_id_prop(iden, prop, valu)
            }
            fn rows_by_prop(&$self_, q: &PropQuery<'_>) -> Result<Vec<Row>> {
                $view.rows_by_prop(q)
            }
            fn visit_rows_by_prop(&$self_, q: &PropQuery<'_>, visit: &mut super::RowsVisitor<'_>) -> Result<()> {
                $view.visit_rows_by_prop(q, visit)
            }
            fn size_by_prop(&$self_, q: &PropQuery<'_>) -> Result<usize> {
                $view.size_by_prop(q)
            }
            fn join_by_prop(&$self_, q: &PropQuery<'_>) -> Result<Vec<Row>> {
                $view.join_by_prop(q)
            }
            fn rows_by_int(&$self_, prop: &str, lift: IntLift, limit: Option<usize>) -> Result<Vec<Row>> {
                $view.rows_by_int(prop, lift, limit)
            }
            fn size_by_int(&$self_, prop: &str, lift: IntLift, limit: Option<usize>) -> Result<usize> {
                $view.size_by_int(prop, lift, limit)
            }
            fn joins_by_int(&$self_, prop: &str, lift: IntLift, limit: Option<usize>) -> Result<Vec<Row>> {
                $view.joins_by_int(prop, lift, limit)
            }
            fn joins_by_in(&$self_, prop: &str, valus: &[Valu], limit: Option<usize>) -> Result<Vec<Row>> {
                $view.joins_by_in(prop, valus, limit)
            }
            fn blob_get(&$self_, key: &str) -> Result<Option<Vec<u8>>> {
                $view.blob_get(key)
            }
            fn blob_has(&$self_, key: &str) -> Result<bool> {
                $view.blob_has(key)
            }
            fn blob_keys_with_prefix(&$self_, prefix: &str) -> Result<Vec<String>> {
                $view.blob_keys_with_prefix(prefix)
            }
            fn visit_blob_keys_with_prefix(&$self_, prefix: &str, visit: &mut super::KeysVisitor<'_>) -> Result<()> {
                $view.visit_blob_keys_with_prefix(prefix, visit)
            }
            fn blobs_with_prefix(&$self_, prefix: &str) -> Result<Vec<(String, Vec<u8>)>> {
                $view.blobs_with_prefix(prefix)
            }
            fn props(&$self_) -> Result<Vec<String>> {
                $view.props()
            }
        }
    };
}

/// Implements [`RowWrite`] for a type by running every call through `$run`, a function of
/// `(&self, |view| …)` that decides when the view's writes commit.
macro_rules! forward_row_write {
    ($ty:ty, $run:path) => {
        impl<E: Engine> RowWrite for $ty {
            fn add_rows(&self, rows: &[Row]) -> Result<()> {
                $run(self, |v| v.add_rows(rows))
            }
            fn del_rows_by_id(&self, iden: &Iden) -> Result<usize> {
                $run(self, |v| v.del_rows_by_id(iden))
            }
            fn del_rows(&self, rows: &[Row]) -> Result<()> {
                $run(self, |v| v.del_given_rows(rows))
            }
            fn del_rows_by_prop(&self, q: &PropQuery<'_>) -> Result<usize> {
                $run(self, |v| v.del_rows_by_prop(q))
            }
            fn del_rows_by_id_prop(
                &self,
                iden: &Iden,
                prop: &str,
                valu: Option<&Valu>,
            ) -> Result<usize> {
                $run(self, |v| v.del_rows_by_id_prop(iden, prop, valu))
            }
            fn del_join_by_prop(&self, q: &PropQuery<'_>) -> Result<usize> {
                $run(self, |v| v.del_join_by_prop(q))
            }
            fn set_rows_by_id_prop(&self, iden: &Iden, prop: &str, valu: &Valu) -> Result<()> {
                $run(self, |v| v.set_rows_by_id_prop(iden, prop, valu))
            }
            fn update_property(&self, oldprop: &str, newprop: &str) -> Result<usize> {
                $run(self, |v| v.update_property(oldprop, newprop))
            }
            fn update_property_valu(
                &self,
                prop: &str,
                oldval: &Valu,
                newval: &Valu,
            ) -> Result<usize> {
                $run(self, |v| v.update_property_valu(prop, oldval, newval))
            }
            fn blob_set(&self, key: &str, valu: &[u8]) -> Result<()> {
                $run(self, |v| v.blob_set(key, valu))
            }
            fn blob_del(&self, key: &str) -> Result<Vec<u8>> {
                $run(self, |v| v.blob_del(key))
            }
        }
    };
}

pub(super) use {forward_row_read, forward_row_write};

forward_row_read!(RowStore<E>, self => self.view());
forward_row_read!(RowTxn<'_, E>, self => self.view);
forward_row_write!(RowStore<E>, autocommit);
forward_row_write!(RowTxn<'_, E>, in_txn);

/// Runs a write on the store as its own atomic transaction.
fn autocommit<E: Engine, T>(
    store: &RowStore<E>,
    op: impl Fn(&TxnView<'_, E>) -> Result<T>,
) -> Result<T> {
    store.write_with(op)
}

/// Runs a write inside an open transaction: it stays pending until the transaction commits.
fn in_txn<'s, E: Engine, T>(
    txn: &RowTxn<'s, E>,
    op: impl FnOnce(&TxnView<'s, E>) -> Result<T>,
) -> Result<T> {
    op(&txn.view)
}

impl<E: Engine + 'static> Storage for RowStore<E> {
    fn begin(&self) -> Result<Box<dyn Transaction + '_>> {
        Ok(Box::new(RowTxn::<'_, E> {
            view: RowView::for_writes(self.engine.begin()?),
            scope: Default::default(),
        }))
    }

    fn backup_rows(&self, chunk_rows: usize) -> Box<dyn Iterator<Item = Result<Vec<Row>>> + '_> {
        backup_chunks(
            move |after| self.view().backup_chunk(after, chunk_rows),
            |_| true,
        )
    }

    fn check_indexes(&self) -> Result<Vec<String>> {
        let mut problems = self.view().check_indexes()?;
        let snapshot = self.engine.snapshot()?;
        problems.extend(super::history_reads::check_past_indexes(&snapshot)?);
        Ok(problems)
    }

    fn sync(&self) -> Result<()> {
        self.engine.sync()
    }

    fn blob_set_unlogged(&self, key: &str, valu: &[u8]) -> Result<()> {
        check_blob_key(key)?;
        if !is_timeless_blob(key) {
            // A tracked blob's versions are history, written with it.
            return self.blob_set(key, valu);
        }
        let mut batch = WriteBatch::new();
        batch.put(Cf::Blobs, keys::blob_key(key), valu.to_vec());
        self.engine.write_unlogged(batch)
    }

    fn persist_blobs(&self) -> Result<()> {
        self.engine.flush(Cf::Blobs)
    }

    fn reclaim_blob_space(&self) -> Result<()> {
        self.engine.reclaim(Cf::Blobs)
    }

    fn wait_for_change(&self, timeout: std::time::Duration) -> Result<super::ChangesElsewhere> {
        self.engine.wait_for_change(timeout)
    }

    fn server_time(&self) -> Result<i64> {
        self.engine.server_time()
    }

    fn is_shared(&self) -> bool {
        self.engine.is_shared()
    }

    fn history_bounds(&self) -> Result<HistoryBounds> {
        self.settle_for(i64::MAX)
    }

    fn commits(&self, after: i64, upto: i64) -> Result<Vec<super::Commit>> {
        super::history_reads::commits(&self.engine.snapshot()?, after, upto)
    }

    fn row_versions(&self, iden: &Iden) -> Result<Vec<super::RowVersion>> {
        // One snapshot: a row that dies meanwhile is not missed between its two scans.
        super::history_reads::row_versions(&self.engine.snapshot()?, iden)
    }

    fn commit_actors(&self, stamps: &[Stamp]) -> Result<Vec<Option<super::Actor>>> {
        super::history_reads::commit_actors(&*self.engine, stamps)
    }

    fn visit_past_rows_by_prop(
        &self,
        prop: &str,
        died_after: i64,
        visit: &mut super::RowsVisitor<'_>,
    ) -> Result<()> {
        super::history_reads::visit_past_rows_by_prop(&*self.engine, prop, died_after, visit)
    }

    fn raise_history_floor(&self, floor: i64) -> Result<i64> {
        retry(|| {
            let txn = self.engine.begin()?;
            let old = history::history_floor(&txn)?.unwrap_or(self.since);
            if floor <= old {
                return Ok(old);
            }
            let mut batch = WriteBatch::new();
            let key = keys::META_HISTORY_FLOOR.to_vec();
            batch.put(Cf::Meta, key, floor.to_be_bytes().to_vec());
            txn.commit(batch)?;
            Ok(floor)
        })
    }

    fn as_of(&self, at: i64) -> Result<Box<dyn Storage>> {
        history::check_time(at, self.settle_for(at)?)?;
        Ok(Box::new(AsOfStore::new(
            Arc::clone(&self.engine),
            at,
            self.since,
        )))
    }

    fn prune_history(&self, floor: i64, pins: &[i64]) -> Result<super::Pruned> {
        super::history_prune::prune(&*self.engine, floor, pins)
    }

    fn as_of_kept(&self, at: i64) -> Result<Box<dyn Storage>> {
        history::check_kept_time(at, self.settle_for(at)?)?;
        Ok(Box::new(
            AsOfStore::new(Arc::clone(&self.engine), at, self.since).kept(),
        ))
    }
}

impl<E: Engine> Transaction for RowTxn<'_, E> {
    fn commit(self: Box<Self>) -> Result<()> {
        let (txn, mut batch) = self.view.finish()?;
        batch.set_scope(self.scope.into_inner());
        txn.commit(batch)
    }

    fn announce_within(&self, scope: &str) {
        self.scope.borrow_mut().add(scope);
    }
}
