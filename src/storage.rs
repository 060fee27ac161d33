//! The row store contract: the Synapse Cortex storage API as Rust traits (`RowRead`, `RowWrite`,
//! `Storage`, `Transaction`) with its row, value and error types. Knows no engine and no
//! protobuf, Arrow or FUSE: it works on rows and bytes only.

pub mod announce;
mod as_of;
mod boxed;
mod chunks;
mod error;
mod lift;
mod row;

pub mod disk;
pub mod engine;
pub mod faulty;
pub mod history;
mod history_prune;
mod history_reads;
pub mod keys;
pub mod location;
pub mod memory;
pub mod postgres;
pub mod retry;
pub mod rocks;
mod row_view;
mod rowstore;
pub mod s3;

pub use announce::{ChangesElsewhere, ScopeChanges};
pub use chunks::{ChunkStore, RecentChunkCache};
pub use error::{EngineErrorKind, StorageError};
pub use history::{
    Actor, HistoryBounds, Stamp, current_actor, is_timeless_blob, is_timeless_iden,
    set_process_actor, with_actor,
};
pub use history_prune::Pruned;
pub use history_reads::{Commit, RowVersion};
pub use lift::{IntLift, LiftName, PropQuery};
pub use memory::MemoryStore;
pub use rocks::RocksStore;
pub use row::{Iden, MAX_BLOB_KEY_LEN, MAX_IDEN_LEN, MAX_PROP_LEN, Row, Valu, ValuRef, now_millis};
pub use rowstore::{RowStore, RowTxn};

/// Result type of every row-store operation.
pub type Result<T, E = StorageError> = std::result::Result<T, E>;

/// What [`RowRead::visit_rows_by_id`] calls for each row: its prop, value and time.
pub type RowVisitor<'v> = dyn FnMut(&str, ValuRef<'_>, i64) + 'v;

/// What [`RowRead::visit_rows_by_idens`] calls with each row: `(index of its iden, prop,
/// value, time)`.
pub type NodesVisitor<'v> = dyn FnMut(usize, &str, ValuRef<'_>, i64) + 'v;

/// What the whole-index visits ([`RowRead::visit_rows_by_prop`],
/// [`Storage::visit_past_rows_by_prop`]) call with each row; it returns whether to go on.
pub type RowsVisitor<'v> = dyn FnMut(Row) -> Result<bool> + 'v;

/// What [`RowRead::visit_blob_keys_with_prefix`] calls with each key; it returns whether to go
/// on.
pub type KeysVisitor<'v> = dyn FnMut(String) -> Result<bool> + 'v;

/// Read operations of the row store, answered from committed state (or, inside a
/// [`Transaction`], from committed state plus the transaction's own writes).
///
/// Result order: rows of one iden come ordered by prop, value, time; rows lifted by prop come
/// ordered by time (then iden); rows lifted by prop and value, or by an integer lift, come ordered
/// by value, then time, then iden. Joins return each node once, in the order its first driving
/// row was found.
pub trait RowRead {
    /// Returns every row of `iden`.
    fn rows_by_id(&self, iden: &Iden) -> Result<Vec<Row>>;

    /// Calls `visit(prop, value, time)` for every row of `iden`, in the order of
    /// [`RowRead::rows_by_id`], without making owned rows: for readers of many nodes that keep
    /// a few values of each (a directory listing).
    fn visit_rows_by_id(&self, iden: &Iden, visit: &mut RowVisitor<'_>) -> Result<()>;

    /// Calls `visit(i, prop, value, time)` for every row of each `idens[i]`, node after node in
    /// the order given, like [`RowRead::visit_rows_by_id`]: a listing of many nodes, which a
    /// store across a network answers in one round trip (callers ask for a few hundred at once).
    fn visit_rows_by_idens(&self, idens: &[Iden], visit: &mut NodesVisitor<'_>) -> Result<()> {
        for (i, iden) in idens.iter().enumerate() {
            self.visit_rows_by_id(iden, &mut |p, v, t| visit(i, p, v, t))?;
        }
        Ok(())
    }

    /// Returns every row of each iden in `idens`, concatenated in the order given.
    fn rows_by_idens(&self, idens: &[Iden]) -> Result<Vec<Row>> {
        let mut out = Vec::new();
        for iden in idens {
            out.extend(self.rows_by_id(iden)?);
        }
        Ok(out)
    }

    /// Returns the rows of `iden` with `prop` (and `valu`, if given).
    fn rows_by_id_prop(&self, iden: &Iden, prop: &str, valu: Option<&Valu>) -> Result<Vec<Row>>;

    /// Returns the rows matching `query` (prop, optional value, time window, limit).
    fn rows_by_prop(&self, query: &PropQuery<'_>) -> Result<Vec<Row>>;

    /// Calls `visit(row)` for every row matching `query`, in the order of
    /// [`RowRead::rows_by_prop`], without collecting them: the reader of a whole index (gc's
    /// mark set) holds one row at a time. `visit` must not read the store (a shared store
    /// scans on one connection).
    fn visit_rows_by_prop(&self, query: &PropQuery<'_>, visit: &mut RowsVisitor<'_>) -> Result<()> {
        for row in self.rows_by_prop(query)? {
            if !visit(row)? {
                break;
            }
        }
        Ok(())
    }

    /// Returns the number of rows matching `query` (its limit caps the count).
    fn size_by_prop(&self, query: &PropQuery<'_>) -> Result<usize>;

    /// Returns all rows of every iden that has a row matching `query`; the limit counts driving
    /// rows.
    fn join_by_prop(&self, query: &PropQuery<'_>) -> Result<Vec<Row>>;

    /// Returns the integer rows of `prop` inside `lift`, ordered by value, at most `limit`.
    /// String rows of the prop never match.
    fn rows_by_int(&self, prop: &str, lift: IntLift, limit: Option<usize>) -> Result<Vec<Row>>;

    /// Returns the number of integer rows of `prop` inside `lift`, capped at `limit`.
    fn size_by_int(&self, prop: &str, lift: IntLift, limit: Option<usize>) -> Result<usize>;

    /// Returns whole nodes of the idens with an integer row of `prop` inside `lift`; `limit`
    /// counts driving rows.
    fn joins_by_int(&self, prop: &str, lift: IntLift, limit: Option<usize>) -> Result<Vec<Row>>;

    /// Returns whole nodes having `prop` equal to any of `valus`; `limit` counts distinct nodes.
    fn joins_by_in(&self, prop: &str, valus: &[Valu], limit: Option<usize>) -> Result<Vec<Row>>;

    /// Returns every prop that has at least one row, in byte order: one short scan per prop
    /// of the by-prop index (a skip scan), never a read of every row.
    fn props(&self) -> Result<Vec<String>>;

    /// Returns the bytes stored under blob `key`, if any.
    fn blob_get(&self, key: &str) -> Result<Option<Vec<u8>>>;

    /// Returns whether blob `key` exists (also when its value is empty).
    fn blob_has(&self, key: &str) -> Result<bool>;

    /// Returns every blob key, in byte order.
    fn blob_keys(&self) -> Result<Vec<String>> {
        self.blob_keys_with_prefix("")
    }

    /// Returns the blob keys that start with `prefix`, in byte order (one range scan).
    fn blob_keys_with_prefix(&self, prefix: &str) -> Result<Vec<String>>;

    /// Calls `visit(key)` for every blob key that starts with `prefix`, in byte order, without
    /// collecting them (one range scan, paged). `visit` must not read the store.
    fn visit_blob_keys_with_prefix(&self, prefix: &str, visit: &mut KeysVisitor<'_>) -> Result<()> {
        for key in self.blob_keys_with_prefix(prefix)? {
            if !visit(key)? {
                break;
            }
        }
        Ok(())
    }

    /// Returns the blobs whose keys start with `prefix`, with their values, in key order (one
    /// range scan: one round trip on a shared store).
    fn blobs_with_prefix(&self, prefix: &str) -> Result<Vec<(String, Vec<u8>)>>;

    /// Returns integer rows with value `>= valu`.
    fn rows_by_ge(&self, prop: &str, valu: i64, limit: Option<usize>) -> Result<Vec<Row>> {
        self.rows_by_int(prop, IntLift::Ge(valu), limit)
    }
    /// Returns integer rows with value `<= valu`.
    fn rows_by_le(&self, prop: &str, valu: i64, limit: Option<usize>) -> Result<Vec<Row>> {
        self.rows_by_int(prop, IntLift::Le(valu), limit)
    }
    /// Returns integer rows with value `> valu`.
    fn rows_by_gt(&self, prop: &str, valu: i64, limit: Option<usize>) -> Result<Vec<Row>> {
        self.rows_by_int(prop, IntLift::Gt(valu), limit)
    }
    /// Returns integer rows with value `< valu`.
    fn rows_by_lt(&self, prop: &str, valu: i64, limit: Option<usize>) -> Result<Vec<Row>> {
        self.rows_by_int(prop, IntLift::Lt(valu), limit)
    }
    /// Returns integer rows with `min <= value < max`.
    fn rows_by_range(
        &self,
        prop: &str,
        min: i64,
        max: i64,
        limit: Option<usize>,
    ) -> Result<Vec<Row>> {
        self.rows_by_int(prop, IntLift::Range(min, max), limit)
    }
    /// Returns the number of integer rows with value `>= valu`.
    fn size_by_ge(&self, prop: &str, valu: i64, limit: Option<usize>) -> Result<usize> {
        self.size_by_int(prop, IntLift::Ge(valu), limit)
    }
    /// Returns the number of integer rows with value `<= valu`.
    fn size_by_le(&self, prop: &str, valu: i64, limit: Option<usize>) -> Result<usize> {
        self.size_by_int(prop, IntLift::Le(valu), limit)
    }
    /// Returns the number of integer rows with `min <= value < max`.
    fn size_by_range(&self, prop: &str, min: i64, max: i64, limit: Option<usize>) -> Result<usize> {
        self.size_by_int(prop, IntLift::Range(min, max), limit)
    }
    /// Returns whole nodes with an integer row `>= valu`.
    fn joins_by_ge(&self, prop: &str, valu: i64, limit: Option<usize>) -> Result<Vec<Row>> {
        self.joins_by_int(prop, IntLift::Ge(valu), limit)
    }
    /// Returns whole nodes with an integer row `<= valu`.
    fn joins_by_le(&self, prop: &str, valu: i64, limit: Option<usize>) -> Result<Vec<Row>> {
        self.joins_by_int(prop, IntLift::Le(valu), limit)
    }
    /// Returns whole nodes with an integer row `> valu`.
    fn joins_by_gt(&self, prop: &str, valu: i64, limit: Option<usize>) -> Result<Vec<Row>> {
        self.joins_by_int(prop, IntLift::Gt(valu), limit)
    }
    /// Returns whole nodes with an integer row `< valu`.
    fn joins_by_lt(&self, prop: &str, valu: i64, limit: Option<usize>) -> Result<Vec<Row>> {
        self.joins_by_int(prop, IntLift::Lt(valu), limit)
    }
    /// Returns whole nodes with an integer row in `min <= value < max`.
    fn joins_by_range(
        &self,
        prop: &str,
        min: i64,
        max: i64,
        limit: Option<usize>,
    ) -> Result<Vec<Row>> {
        self.joins_by_int(prop, IntLift::Range(min, max), limit)
    }
}

/// Write operations of the row store. Each call is atomic: all of its changes become visible
/// together or none do. Outside a transaction each call commits on return.
pub trait RowWrite: RowRead {
    /// Adds `rows` in one atomic write. Rows are a set: adding a row equal in all four fields to
    /// a stored one changes nothing. Every row is validated before anything is written.
    fn add_rows(&self, rows: &[Row]) -> Result<()>;

    /// Deletes every row of `iden`; returns how many were deleted.
    fn del_rows_by_id(&self, iden: &Iden) -> Result<usize>;

    /// Deletes the rows matching `query` (its limit is ignored); returns how many.
    fn del_rows_by_prop(&self, query: &PropQuery<'_>) -> Result<usize>;

    /// Deletes exactly `rows` (equal in all four fields; a row not stored is skipped), reading
    /// nothing: for a writer that read the rows it replaces in the same transaction.
    fn del_rows(&self, rows: &[Row]) -> Result<()>;

    /// Deletes the rows of `iden` with `prop` (and `valu`, if given); returns how many.
    fn del_rows_by_id_prop(&self, iden: &Iden, prop: &str, valu: Option<&Valu>) -> Result<usize>;

    /// Deletes every row of each iden that has a row matching `query`; returns how many rows.
    fn del_join_by_prop(&self, query: &PropQuery<'_>) -> Result<usize>;

    /// Replaces the rows of `iden` with `prop` by one row `(iden, prop, valu, now)`.
    fn set_rows_by_id_prop(&self, iden: &Iden, prop: &str, valu: &Valu) -> Result<()>;

    /// Renames `oldprop` to `newprop` on every row (iden, value and time kept); returns how many
    /// rows changed.
    fn update_property(&self, oldprop: &str, newprop: &str) -> Result<usize>;

    /// Replaces value `oldval` of `prop` by `newval` (same type required; time kept); returns how
    /// many rows changed.
    fn update_property_valu(&self, prop: &str, oldval: &Valu, newval: &Valu) -> Result<usize>;

    /// Stores `valu` under blob `key`, replacing any previous value.
    fn blob_set(&self, key: &str, valu: &[u8]) -> Result<()>;

    /// Deletes blob `key` and returns its old value; a missing key is [`StorageError::NoSuchBlob`].
    fn blob_del(&self, key: &str) -> Result<Vec<u8>>;
}

/// A store: row and blob operations, transactions, a backup iterator and durability control.
pub trait Storage: RowWrite + ChunkStore + Send + Sync {
    /// Starts a transaction. Transactions are serializable: an engine one process owns runs them
    /// one at a time (this waits for any other open transaction), a shared engine runs them
    /// side by side and fails the commit of one that conflicted with another writer
    /// ([`StorageError::Conflict`]; [`retry::transact`] runs it again). The transaction sees
    /// its own writes; nothing of it is visible to others until [`Transaction::commit`], and
    /// dropping it uncommitted discards everything.
    fn begin(&self) -> Result<Box<dyn Transaction + '_>>;

    /// Returns every row of the store in chunks of at most `chunk_rows` rows (rows of one iden
    /// may span chunks), for backup: feeding them to `add_rows` of an empty store copies it.
    fn backup_rows(&self, chunk_rows: usize) -> Box<dyn Iterator<Item = Result<Vec<Row>>> + '_>;

    /// Checks that the three row indexes hold the same rows and that every entry decodes;
    /// returns one line per problem (empty when sound). Reads the whole store.
    fn check_indexes(&self) -> Result<Vec<String>>;

    /// Makes everything committed so far durable against a machine crash (a process crash never
    /// loses a committed write).
    fn sync(&self) -> Result<()>;

    /// Stores blob `key` → `valu` outside the write-ahead log (one copy fewer for large
    /// values), for bytes nothing refers to yet: it is readable at once but not durable, not
    /// even against a process crash, until [`Storage::persist_blobs`] returns.
    fn blob_set_unlogged(&self, key: &str, valu: &[u8]) -> Result<()>;

    /// Makes every blob stored so far, logged or not, durable against a machine crash.
    fn persist_blobs(&self) -> Result<()>;

    /// Gives the disk back the room of deleted blobs now (after a `gc`), rather than whenever
    /// the engine gets round to it.
    fn reclaim_blob_space(&self) -> Result<()>;

    /// Waits at most `timeout` for another process (another host) to commit a change to the
    /// store; returns whether one did, or may have (caches of the store should be dropped).
    fn wait_for_change(&self, timeout: std::time::Duration) -> Result<ChangesElsewhere>;

    /// Returns the store's clock, epoch milliseconds: the database server's for a store
    /// several hosts share, this host's otherwise. Sessions' heartbeats and their expiry are
    /// timed by it, so that hosts whose clocks disagree agree on how old a heartbeat is.
    fn server_time(&self) -> Result<i64>;

    /// Returns whether other processes (other hosts) may use the store at the same time as
    /// this one (a shared store); `false` for a store one process owns.
    fn is_shared(&self) -> bool;

    /// Settles the store's commit clock and returns the bounds of its history: when it began
    /// (`since`) and the clock now (`now`, µs). Every commit so far is visible at `now`;
    /// every later one is stamped after it, so an answer about `now` never changes.
    fn history_bounds(&self) -> Result<HistoryBounds>;

    /// Returns the store as it was at `at` (µs of the store clock): every read answers with
    /// the rows and tracked blobs that were there then, timeless data (sessions, chunks,
    /// manifests, settings) as it is now; every write is [`StorageError::ReadOnly`]. A time
    /// the clock has not reached is [`StorageError::FutureTime`], one before history began
    /// [`StorageError::BeforeHistory`].
    fn as_of(&self, at: i64) -> Result<Box<dyn Storage>>;

    /// [`Storage::as_of`] for a time its caller keeps readable whatever the retention (a
    /// named snapshot, whose rows and contents gc keeps): the time may be older than the
    /// history floor, and reads are not refused when the floor passes it.
    fn as_of_kept(&self, at: i64) -> Result<Box<dyn Storage>>;

    /// Fails with [`StorageError::PastRetention`] when this is a view of a time gc no longer
    /// keeps (see [`Storage::as_of`]); `Ok` for every other store.
    fn check_readable(&self) -> Result<()> {
        Ok(())
    }

    /// Returns the commits that changed tracked data in `(after, upto]` (µs), newest first:
    /// who made each and which nodes it changed. Costs what landed then, not what exists.
    fn commits(&self, after: i64, upto: i64) -> Result<Vec<Commit>>;

    /// Returns every version of the rows of `iden` that history keeps, ordered by birth:
    /// each row with the commits that added and deleted it.
    fn row_versions(&self, iden: &Iden) -> Result<Vec<RowVersion>>;

    /// Returns who made each commit of `stamps` (`None` for a stamp no commit record has:
    /// a row from before history began, or a commit after the time a view of the past reads).
    fn commit_actors(&self, stamps: &[Stamp]) -> Result<Vec<Option<Actor>>>;

    /// Returns the rows of `prop` that history keeps, no longer live, that died after
    /// `died_after` (µs): what a read of the past may still need (gc keeps the contents they
    /// name).
    fn past_rows_by_prop(&self, prop: &str, died_after: i64) -> Result<Vec<Row>> {
        let mut out = Vec::new();
        self.visit_past_rows_by_prop(prop, died_after, &mut |row| {
            out.push(row);
            Ok(true)
        })?;
        Ok(out)
    }

    /// Calls `visit(row)` for each row [`Storage::past_rows_by_prop`] returns, one at a time
    /// (gc's mark set of a big history). `visit` must not read the store.
    fn visit_past_rows_by_prop(
        &self,
        prop: &str,
        died_after: i64,
        visit: &mut RowsVisitor<'_>,
    ) -> Result<()>;

    /// Raises the oldest time the store answers for to `floor` (µs; never lowers it) and
    /// returns it: reads of earlier times are [`StorageError::PastRetention`] from then on,
    /// so gc may reclaim what only they needed.
    fn raise_history_floor(&self, floor: i64) -> Result<i64>;

    /// Deletes the history no time at or after `floor` (µs), and no time of `pins`, reads:
    /// row versions dead by the floor that no pin saw alive, tracked blob versions older than
    /// the one each of those times reads, and commit records at or before the floor.
    fn prune_history(&self, floor: i64, pins: &[i64]) -> Result<Pruned>;
}

/// An open transaction: all of its writes commit atomically, or none do.
pub trait Transaction: RowWrite {
    /// Commits every write of the transaction in one atomic step.
    fn commit(self: Box<Self>) -> Result<()>;

    /// Says that every change of the transaction lies within `scope` (a name the caller gives
    /// a part of the store, such as a dataset): a store several processes share announces the
    /// commit as within it, and processes keep what they read outside it. A transaction said
    /// to lie within two different scopes, or within none, is announced as anywhere.
    fn announce_within(&self, scope: &str);
}
