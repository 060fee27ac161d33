//! The ordered key-value engine under the row store: column families, atomic write batches,
//! ordered scans and transactions. Knows no engine library; `rocks.rs`, `memory.rs` and
//! `postgres.rs` implement it.

use std::sync::{Mutex, MutexGuard};

use super::Result;
use super::history::LocalClock;

/// A column family: one ordered key space of the store.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Cf {
    /// Store-wide facts: format version, creation time.
    Meta,
    /// Rows keyed by iden, prop, value, time.
    ByIden,
    /// Rows keyed by prop, value, time, iden.
    ByPropValu,
    /// Rows keyed by prop, time, iden, value.
    ByPropTime,
    /// The blob side store.
    Blobs,
    /// Rows that died, keyed by iden, death, prop, value, time.
    PastByIden,
    /// Rows that died, keyed by prop, value, death, time, iden.
    PastByPropValu,
    /// Rows that died, keyed by prop, death, time, iden, value.
    PastByPropTime,
    /// Every version of every tracked blob, keyed by name, then newest first.
    BlobHistory,
    /// One record per commit (who made it) and one entry per node it changed, newest first.
    History,
}

impl Cf {
    /// Every column family, in index order.
    pub const ALL: [Cf; 10] = [
        Cf::Meta,
        Cf::ByIden,
        Cf::ByPropValu,
        Cf::ByPropTime,
        Cf::Blobs,
        Cf::PastByIden,
        Cf::PastByPropValu,
        Cf::PastByPropTime,
        Cf::BlobHistory,
        Cf::History,
    ];

    /// The column families of a store made before history was kept (format version 1).
    pub const BEFORE_HISTORY: [Cf; 5] = [
        Cf::Meta,
        Cf::ByIden,
        Cf::ByPropValu,
        Cf::ByPropTime,
        Cf::Blobs,
    ];

    /// Returns the column family's name in the engine.
    pub fn name(self) -> &'static str {
        match self {
            Cf::Meta => "meta",
            Cf::ByIden => "rows_by_iden",
            Cf::ByPropValu => "rows_by_prop_valu",
            Cf::ByPropTime => "rows_by_prop_time",
            Cf::Blobs => "blobs",
            Cf::PastByIden => "past_by_iden",
            Cf::PastByPropValu => "past_by_prop_valu",
            Cf::PastByPropTime => "past_by_prop_time",
            Cf::BlobHistory => "blob_history",
            Cf::History => "history",
        }
    }

    /// Returns the column family's position in [`Cf::ALL`].
    pub fn index(self) -> usize {
        self as usize
    }
}

/// One change in a [`WriteBatch`]: a put (`Some(value)`) or a delete (`None`).
pub type BatchOp = (Cf, Vec<u8>, Option<Vec<u8>>);

/// Where a [`WriteBatch`] op carries its commit's stamp, not known until the engine commits:
/// 12 zero bytes at `offset` of the op's key or value, written as `C(s)` (or `D(s)`,
/// inverted) by [`WriteBatch::stamp`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct StampSlot {
    /// The op's index in the batch.
    pub op: usize,
    /// In the key (`true`) or the value.
    pub in_key: bool,
    /// The slot's first byte.
    pub offset: usize,
    /// Whether the stamp is written inverted (`D(s)`).
    pub inverted: bool,
}

/// Where a stamped put carries its commit's stamp: `C(s)` at an offset of its key or value,
/// or `D(s)` (inverted: newest first) at an offset of its key.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StampAt {
    /// `C(s)` at this offset of the key.
    Key(usize),
    /// `D(s)` at this offset of the key.
    KeyInverted(usize),
    /// `C(s)` at this offset of the value.
    Value(usize),
}

/// A list of puts and deletes that an engine applies atomically.
#[derive(Debug, Default)]
pub struct WriteBatch {
    ops: Vec<BatchOp>,
    changed: Vec<String>,
    scope: super::announce::Scope,
    slots: Vec<StampSlot>,
}

impl WriteBatch {
    /// Returns an empty batch.
    pub fn new() -> Self {
        Self::default()
    }
    /// Adds a put of `key` → `value` in `cf`.
    pub fn put(&mut self, cf: Cf, key: Vec<u8>, value: Vec<u8>) {
        self.ops.push((cf, key, Some(value)));
    }
    /// Adds a delete of `key` in `cf`.
    pub fn delete(&mut self, cf: Cf, key: Vec<u8>) {
        self.ops.push((cf, key, None));
    }
    /// Adds a put whose key or value holds the commit's stamp `at` a place, 12 zero bytes
    /// until [`WriteBatch::stamp`] fills them.
    pub fn put_stamped(&mut self, cf: Cf, key: Vec<u8>, value: Vec<u8>, at: StampAt) {
        let (in_key, offset, inverted) = match at {
            StampAt::Key(offset) => (true, offset, false),
            StampAt::KeyInverted(offset) => (true, offset, true),
            StampAt::Value(offset) => (false, offset, false),
        };
        let op = self.ops.len();
        self.slots.push(StampSlot {
            op,
            in_key,
            offset,
            inverted,
        });
        self.ops.push((cf, key, Some(value)));
    }
    /// Returns where the batch needs its commit's stamp: empty for a batch that changes no
    /// tracked data (it needs none, and is not a commit of history).
    pub fn stamp_slots(&self) -> &[StampSlot] {
        &self.slots
    }
    /// Writes `s` into every stamp slot.
    pub fn stamp(&mut self, s: super::history::Stamp) {
        let plain = super::keys::stamp_bytes(s);
        let inverted = super::keys::stamp_bytes_inverted(s);
        for slot in std::mem::take(&mut self.slots) {
            let (_, key, value) = &mut self.ops[slot.op];
            let target = match slot.in_key {
                true => key,
                false => value.as_mut().expect("a stamped op is a put"),
            };
            let bytes = if slot.inverted { &inverted } else { &plain };
            target[slot.offset..slot.offset + bytes.len()].copy_from_slice(bytes);
        }
    }
    /// Returns the ops with the stamp slots of each (for an engine that stamps at the server).
    pub fn into_ops_and_slots(self) -> (Vec<BatchOp>, Vec<StampSlot>) {
        (self.ops, self.slots)
    }
    /// Returns the column family and key of each change, in order.
    pub fn ops(&self) -> impl Iterator<Item = (Cf, &[u8])> {
        self.ops.iter().map(|(cf, key, _)| (*cf, key.as_slice()))
    }
    /// Returns the number of changes.
    pub fn len(&self) -> usize {
        self.ops.len()
    }
    /// Returns whether the batch holds no change.
    pub fn is_empty(&self) -> bool {
        self.ops.is_empty()
    }
    /// Returns how many bytes of keys and values the batch puts (what it asks of the disk).
    pub fn put_bytes(&self) -> u64 {
        self.ops
            .iter()
            .filter_map(|(_, k, v)| v.as_ref().map(|v| (k.len() + v.len()) as u64))
            .sum()
    }
    /// Returns the changes, in the order they were added (a later change to a key wins).
    /// Stamp slots must have been filled.
    pub fn into_ops(self) -> Vec<BatchOp> {
        debug_assert!(self.slots.is_empty(), "a batch written unstamped");
        self.ops
    }
    /// Records that the batch changes node `iden` (announced to other processes by engines
    /// that several share).
    pub fn note_changed(&mut self, iden: String) {
        self.changed.push(iden);
    }
    /// Returns the nodes the batch changes, as noted.
    pub fn changed(&self) -> &[String] {
        &self.changed
    }
    /// Records where the batch's changes lie (see [`super::Transaction::announce_within`]).
    pub fn set_scope(&mut self, scope: super::announce::Scope) {
        self.scope = scope;
    }
    /// Returns where the batch's changes lie, as its writer said.
    pub fn scope(&self) -> &super::announce::Scope {
        &self.scope
    }
}

/// Returns whether the key range `[start, end)` is empty (`start >= end`); a scan of it visits
/// nothing.
pub fn is_empty_range(start: &[u8], end: Option<&[u8]>) -> bool {
    end.is_some_and(|end| start >= end)
}

/// The visitor a scan calls with each `(key, value)`; it returns `Ok(true)` to go on.
pub type Visitor<'v> = dyn FnMut(&[u8], &[u8]) -> Result<bool> + 'v;

/// The visitor a scan of several ranges calls with each `(range index, key, value)`.
pub type SpansVisitor<'v> = dyn FnMut(usize, &[u8], &[u8]) -> Result<()> + 'v;

/// Implements the methods of [`EngineRead`] inside an `impl` by forwarding each call to
/// `$target`, after running `$before` (a fault wrapper counts the call there).
macro_rules! forward_engine_read {
    ($self_:ident => $target:expr $(, before: $before:expr)?) => {
        fn get(&$self_, cf: Cf, key: &[u8]) -> Result<Option<Vec<u8>>> {
            $($before;)?
            $target.get(cf, key)
        }
        fn scan(
            &$self_,
            cf: Cf,
            start: &[u8],
            end: Option<&[u8]>,
            visit: &mut Visitor<'_>,
        ) -> Result<()> {
            $($before;)?
            $target.scan(cf, start, end, visit)
        }
        fn scan_keys(
            &$self_,
            cf: Cf,
            start: &[u8],
            end: Option<&[u8]>,
            visit: &mut Visitor<'_>,
        ) -> Result<()> {
            $($before;)?
            $target.scan_keys(cf, start, end, visit)
        }
        fn scan_spans(
            &$self_,
            cf: Cf,
            spans: &[(Vec<u8>, Vec<u8>)],
            visit: &mut SpansVisitor<'_>,
        ) -> Result<()> {
            $($before;)?
            $target.scan_spans(cf, spans, visit)
        }
        fn multi_get(&$self_, cf: Cf, keys: &[Vec<u8>]) -> Result<Vec<Option<Vec<u8>>>> {
            $($before;)?
            $target.multi_get(cf, keys)
        }
    };
}
pub(crate) use forward_engine_read;

/// What a process heard of other processes' commits (a storage-level notion; engines report it).
pub use super::ChangesElsewhere;

/// Reads of an engine: its committed state, or what one of its transactions sees.
pub trait EngineRead {
    /// Returns the value of `key` in `cf`.
    fn get(&self, cf: Cf, key: &[u8]) -> Result<Option<Vec<u8>>>;

    /// Returns the value of each of `keys` in `cf`, in order: point lookups (bloom-filtered
    /// on RocksDB), which an engine across a network answers in one round trip
    /// ([`multi_get_by_spans`]).
    fn multi_get(&self, cf: Cf, keys: &[Vec<u8>]) -> Result<Vec<Option<Vec<u8>>>> {
        keys.iter().map(|k| self.get(cf, k)).collect()
    }

    /// Calls `visit` with each entry of `cf` with `start <= key < end` (no `end`: to the last
    /// key) in ascending key order, until it returns `Ok(false)` or an error. An empty or
    /// inverted range (`start >= end`) visits nothing.
    fn scan(&self, cf: Cf, start: &[u8], end: Option<&[u8]>, visit: &mut Visitor<'_>)
    -> Result<()>;

    /// Like [`EngineRead::scan`], but the visitor may be given an empty value: for listings
    /// of keys whose values are large (an engine across a network leaves them out).
    fn scan_keys(
        &self,
        cf: Cf,
        start: &[u8],
        end: Option<&[u8]>,
        visit: &mut Visitor<'_>,
    ) -> Result<()> {
        self.scan(cf, start, end, visit)
    }

    /// Calls `visit(i, key, value)` with each entry of `cf` in `[start, end)` of `spans[i]`,
    /// range after range in the order given, keys ascending within each: the rows of many
    /// nodes at once (an engine across a network reads them in one round trip).
    fn scan_spans(
        &self,
        cf: Cf,
        spans: &[(Vec<u8>, Vec<u8>)],
        visit: &mut SpansVisitor<'_>,
    ) -> Result<()> {
        for (i, (start, end)) in spans.iter().enumerate() {
            self.scan(cf, start, Some(end), &mut |k, v| {
                visit(i, k, v).map(|()| true)
            })?;
        }
        Ok(())
    }
}

/// [`EngineRead::multi_get`] as one [`EngineRead::scan_spans`] of one-key spans: for an
/// engine whose every read is a round trip.
pub fn multi_get_by_spans<R: EngineRead + ?Sized>(
    r: &R,
    cf: Cf,
    keys: &[Vec<u8>],
) -> Result<Vec<Option<Vec<u8>>>> {
    let spans: Vec<(Vec<u8>, Vec<u8>)> = (keys.iter())
        .map(|k| (k.clone(), [k.as_slice(), &[0]].concat()))
        .collect();
    let mut out = vec![None; keys.len()];
    if !spans.is_empty() {
        r.scan_spans(cf, &spans, &mut |i, _, v| {
            out[i] = Some(v.to_vec());
            Ok(())
        })?;
    }
    Ok(out)
}

impl<T: EngineRead + ?Sized> EngineRead for &T {
    forward_engine_read!(self => (**self));
}

/// An open engine transaction: its reads and, at commit, its writes form one serializable
/// step. Dropping it uncommitted ends it with no effect.
pub trait EngineTxn: EngineRead {
    /// Applies `batch` atomically and ends the transaction. When another writer changed what
    /// the transaction read, nothing is applied and the error is [`StorageError::Conflict`]:
    /// the caller runs the whole transaction again.
    ///
    /// [`StorageError::Conflict`]: super::StorageError::Conflict
    fn commit(self, batch: WriteBatch) -> Result<()>;
}

/// An ordered key-value engine with column families.
///
/// Contract: `write` is atomic (after a crash, all of a batch or none of it is there) and its
/// effects are visible to every later call; a process crash never loses a batch `write`
/// returned for; `sync` makes every returned write survive a machine crash. A scan's visitor
/// must not call back into the engine. Transactions are serializable: an engine either runs
/// one at a time ([`SerialTxn`]) or detects conflicts at commit.
pub trait Engine: EngineRead + Send + Sync {
    /// An open transaction of this engine.
    type Txn<'e>: EngineTxn
    where
        Self: 'e;

    /// A consistent read of the engine's committed state.
    type Snapshot<'e>: EngineRead
    where
        Self: 'e;

    /// Starts a transaction.
    fn begin(&self) -> Result<Self::Txn<'_>>;

    /// Returns a read of the committed state at one instant: every read through it sees the
    /// same commits, whatever lands meanwhile (a read that spans several scans, such as the
    /// live and past indexes of the store as of a time, must not see a row in neither).
    fn snapshot(&self) -> Result<Self::Snapshot<'_>>;

    /// Applies `batch` atomically.
    fn write(&self, batch: WriteBatch) -> Result<()>;

    /// Makes every write so far durable against a machine crash.
    fn sync(&self) -> Result<()>;

    /// Applies `batch` atomically without the write-ahead log: not durable, not even against a
    /// process crash, until [`Engine::flush`] of its column families returns.
    fn write_unlogged(&self, batch: WriteBatch) -> Result<()> {
        self.write(batch)
    }

    /// Makes every write to `cf` so far (logged or not) durable against a machine crash.
    fn flush(&self, _cf: Cf) -> Result<()> {
        self.sync()
    }

    /// Gives the disk back the room of values deleted from `cf` (an engine that keeps deleted
    /// values in its files until a compaction compacts them now).
    fn reclaim(&self, _cf: Cf) -> Result<()> {
        Ok(())
    }

    /// Returns the engine's clock, epoch milliseconds: the database server's for an engine
    /// several hosts share (so that they agree on how old a heartbeat is, whatever their own
    /// clocks say), this host's for one that one process owns (RocksDB, memory).
    fn server_time(&self) -> Result<i64> {
        Ok(super::now_millis())
    }

    /// Returns whether other processes (other hosts) may use the engine at the same time as
    /// this one: a shared database. An engine one process owns (RocksDB, memory) is not.
    fn is_shared(&self) -> bool {
        false
    }

    /// Settles the engine's commit clock: returns its time now (µs), such that every commit
    /// stamped at or before it is visible to reads that start after this returns, and every
    /// commit not yet visible will be stamped after it.
    fn settle(&self) -> Result<i64>;

    /// Waits at most `timeout` for other processes to commit changes, and says what they
    /// changed. An engine one process owns has no one else to hear from: it waits out the
    /// timeout and hears nothing.
    fn wait_for_change(&self, timeout: std::time::Duration) -> Result<ChangesElsewhere> {
        std::thread::sleep(timeout);
        Ok(ChangesElsewhere::Nothing)
    }
}

/// The transaction of an engine that one process owns alone (RocksDB, memory): transactions
/// take turns on the engine's writer lock, so none can conflict; reads see committed state.
/// A commit that changes tracked data is stamped by the engine's clock.
pub struct SerialTxn<'e, E: ?Sized> {
    engine: &'e E,
    clock: &'e LocalClock,
    _turn: MutexGuard<'e, ()>,
}

impl<'e, E: Engine + ?Sized> SerialTxn<'e, E> {
    /// Waits for the turn of `writers` (the engine's writer lock) and starts a transaction
    /// whose commit `clock` stamps.
    pub fn new(engine: &'e E, writers: &'e Mutex<()>, clock: &'e LocalClock) -> Self {
        // The guarded state is `()`: a panicking writer leaves nothing half-done behind it.
        let turn = writers.lock().unwrap_or_else(|e| e.into_inner());
        SerialTxn {
            engine,
            clock,
            _turn: turn,
        }
    }
}

impl<E: Engine + ?Sized> EngineRead for SerialTxn<'_, E> {
    forward_engine_read!(self => self.engine);
}

impl<E: Engine + ?Sized> EngineTxn for SerialTxn<'_, E> {
    fn commit(self, mut batch: WriteBatch) -> Result<()> {
        if batch.is_empty() {
            return Ok(());
        }
        if batch.stamp_slots().is_empty() {
            return self.engine.write(batch);
        }
        // Held until the batch is visible: a reader settling meanwhile waits for it.
        let section = self.clock.begin_commit();
        batch.stamp(section.stamp());
        self.engine.write(batch)
    }
}
