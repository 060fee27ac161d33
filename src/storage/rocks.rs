//! The RocksDB engine: one column family per [`Cf`], an exclusive lock file, tuned options, and
//! RocksDB's status codes kept as [`EngineErrorKind`]. The only file that imports `rocksdb`.

use std::fs::{File, OpenOptions};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use rocksdb::{
    BlockBasedIndexType, BlockBasedOptions, Cache, ColumnFamily, ColumnFamilyDescriptor, DB,
    DBCompressionType, ErrorKind, Options, ReadOptions, SliceTransform, WriteOptions,
};

use super::engine::{Cf, Engine, EngineRead, SerialTxn, Visitor, WriteBatch, is_empty_range};
use super::history::LocalClock;
use super::keys;
use super::{EngineErrorKind, Result, StorageError};
use crate::meters::EngineMeters;

/// Name of the lock file a process holds while it has the store open.
pub const LOCK_FILE: &str = "cronusfs.lock";

/// Size of the block cache shared by every column family (uncompressed blocks).
const BLOCK_CACHE_BYTES: usize = 64 << 20;

/// An [`Engine`] over a RocksDB database in one directory.
pub struct RocksEngine {
    db: DB,
    path: PathBuf,
    writers: Mutex<()>,
    clock: LocalClock,
    meters: EngineMeters,
    // Held (and flock-ed) for as long as the engine is open; dropped after `db`.
    _lock: File,
}

impl std::fmt::Debug for RocksEngine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RocksEngine")
            .field("path", &self.path)
            .finish()
    }
}

/// How many more times `open` tries a store's lock, 10 ms apart, before it is in use.
const LOCK_TRIES: u32 = 20;

impl RocksEngine {
    /// Opens the database in directory `path`. With `create`, makes the directory and a new
    /// database if there is none; without, a directory holding no database is
    /// [`StorageError::NoStore`]. Another open handle is [`StorageError::Locked`].
    pub fn open(path: &Path, create: bool) -> Result<Self> {
        if path.exists() && !path.is_dir() {
            return Err(StorageError::NotAStore {
                path: path.to_path_buf(),
            });
        }
        if !create && !path.join("CURRENT").is_file() {
            return Err(StorageError::NoStore {
                path: path.to_path_buf(),
            });
        }
        std::fs::create_dir_all(path)?;
        make_private(path)?;
        let lock = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(path.join(LOCK_FILE))?;
        // A lock just released can still be held for a moment by a child another thread of
        // this process forked before it execs (the lock's file description goes with the
        // fork): a few tries over 200 ms before the store counts as in use.
        let mut tries = 0;
        loop {
            match lock.try_lock() {
                Ok(()) => break,
                Err(std::fs::TryLockError::WouldBlock) if tries < LOCK_TRIES => {
                    tries += 1;
                    std::thread::sleep(std::time::Duration::from_millis(10));
                }
                Err(std::fs::TryLockError::WouldBlock) => {
                    return Err(StorageError::Locked {
                        path: path.to_path_buf(),
                    });
                }
                Err(std::fs::TryLockError::Error(e)) => return Err(e.into()),
            }
        }
        let cache = Cache::new_lru_cache(BLOCK_CACHE_BYTES);
        let cfs = Cf::ALL.map(|cf| ColumnFamilyDescriptor::new(cf.name(), cf_options(cf, &cache)));
        let db = DB::open_cf_descriptors(&db_options(), path, cfs).map_err(engine_error)?;
        for cf in Cf::ALL.into_iter().filter(|cf| churned(*cf)) {
            let handle = db
                .cf_handle(cf.name())
                .ok_or(StorageError::Corruption(format!(
                    "column family {} missing",
                    cf.name()
                )))?;
            db.set_options_cf(&handle, SCAN_FLUSH_TRIGGERS)
                .map_err(engine_error)?;
        }
        // Again for the files the open itself made (a recovered write-ahead log's table).
        make_private(path)?;
        let mut engine = RocksEngine {
            db,
            path: path.to_path_buf(),
            writers: Mutex::new(()),
            clock: LocalClock::default(),
            meters: EngineMeters::new("rocksdb"),
            _lock: lock,
        };
        // A clock stepped back across a restart must not stamp before the newest commit.
        engine.clock = LocalClock::starting_after(super::history::newest_commit(&engine)?);
        Ok(engine)
    }

    /// Returns the store directory.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Turns `batch` into RocksDB's.
    fn rocks_batch(&self, batch: WriteBatch) -> Result<rocksdb::WriteBatch> {
        let mut wb = rocksdb::WriteBatch::default();
        for (cf, key, value) in batch.into_ops() {
            let handle = self.cf(cf)?;
            match value {
                Some(v) => wb.put_cf(handle, key, v),
                None => wb.delete_cf(handle, key),
            }
        }
        Ok(wb)
    }

    fn cf(&self, cf: Cf) -> Result<&ColumnFamily> {
        self.db.cf_handle(cf.name()).ok_or_else(|| {
            StorageError::Corruption(format!("column family {} is missing", cf.name()))
        })
    }
}

/// Makes the store directory 0700 and every file in it 0600, whatever the umask was when they
/// were made: a store holds every object's bytes, and is its owner's alone. (Files RocksDB
/// makes later follow the process's umask, which `cronusfs` sets to 077; the directory's
/// mode alone already keeps other users out.)
fn make_private(dir: &Path) -> Result<()> {
    use std::os::unix::fs::PermissionsExt;
    let set = |path: &Path, mode: u32| -> Result<()> {
        let changed = std::fs::symlink_metadata(path).and_then(|meta| {
            if meta.permissions().mode() & 0o7777 == mode {
                return Ok(());
            }
            std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
        });
        match changed {
            // RocksDB deletes obsolete files (old logs, options) in the background.
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            other => Ok(other?),
        }
    };
    set(dir, 0o700)?;
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        match entry.file_type()? {
            t if t.is_file() => set(&entry.path(), 0o600)?,
            t if t.is_dir() => set(&entry.path(), 0o700)?,
            _ => {}
        }
    }
    Ok(())
}

fn db_options() -> Options {
    let mut opts = Options::default();
    opts.create_if_missing(true);
    opts.create_missing_column_families(true);
    opts.increase_parallelism(2);
    opts.set_max_background_jobs(2);
    opts.set_keep_log_file_num(4);
    // All memtables together stay under this (each column family's own size still applies):
    // the daemon's memory must not grow with the size of the objects written.
    opts.set_db_write_buffer_size(MEMTABLE_BUDGET_BYTES);
    // Content chunks are read in order from blob files: let the kernel read ahead of them (by
    // default RocksDB advises random access, so every cold chunk waits for its own disk read).
    opts.set_advise_random_on_open(false);
    opts
}

/// The memory all memtables may use together (with the block cache, most of a busy daemon's
/// memory: the two keep it under 300 MiB after 100,000 objects and a 1 GiB write).
const MEMTABLE_BUDGET_BYTES: usize = 64 << 20;

/// The prefix extractor of a column family: the key part one point lookup scans (a node in
/// `ByIden`, a prop=value pair in `ByPropValu`), so bloom filters can skip files without it.
type Extractor = (&'static str, fn(&[u8]) -> &[u8], fn(&[u8]) -> bool);

fn extractor(cf: Cf) -> Option<Extractor> {
    match cf {
        Cf::ByIden | Cf::PastByIden => Some((
            "cronusfs.iden.v1",
            keys::iden_key_prefix,
            keys::has_iden_key_prefix,
        )),
        Cf::ByPropValu | Cf::PastByPropValu => Some((
            "cronusfs.prop_valu.v1",
            keys::prop_valu_key_prefix,
            keys::has_prop_valu_key_prefix,
        )),
        Cf::Meta
        | Cf::ByPropTime
        | Cf::Blobs
        | Cf::PastByPropTime
        | Cf::BlobHistory
        | Cf::History => None,
    }
}

/// Whether the live keys of column family `cf` die as rows change. A row's key holds its value
/// and time, so every new version of an object deletes some keys of its node and writes others
/// beside them: a file rewritten all day leaves thousands of dead keys in the one range every
/// read of its node scans (2,500 rewrites made each rewrite 20× slower, for good: the dead keys
/// outlived a remount in the table files). Scans that cross many dead keys in the memtable
/// flush it ([`SCAN_FLUSH_TRIGGERS`]), and a table file dense in them is compacted soon after,
/// which drops them.
fn churned(cf: Cf) -> bool {
    matches!(cf, Cf::ByIden | Cf::ByPropValu | Cf::ByPropTime | Cf::Blobs)
}

/// A scan crossing this many dead or overwritten entries of the active memtable in one step,
/// or this many on average across its steps, has the memtable flushed (RocksDB's
/// `memtable_op_scan_flush_trigger`, `memtable_avg_op_scan_flush_trigger`).
const SCAN_FLUSH_TRIGGERS: &[(&str, &str)] = &[
    ("memtable_op_scan_flush_trigger", "1024"),
    ("memtable_avg_op_scan_flush_trigger", "256"),
];

fn cf_options(cf: Cf, cache: &Cache) -> Options {
    let mut opts = Options::default();
    let mut table = BlockBasedOptions::default();
    table.set_block_cache(cache);
    table.set_bloom_filter(10.0, false);
    // Index and filter blocks are partitioned and live in the block cache, so that their
    // memory is bounded whatever the store holds (held by the table readers, they grew with
    // it: 128 MiB at mount with 1,000,000 objects). Each table's top-level index and filter
    // stay pinned (small), and so do the newest tables' whole (L0: the hot ones).
    table.set_index_type(BlockBasedIndexType::TwoLevelIndexSearch);
    table.set_partition_filters(true);
    table.set_metadata_block_size(4096);
    table.set_cache_index_and_filter_blocks(true);
    table.set_cache_index_and_filter_blocks_with_high_priority(true);
    table.set_pin_top_level_index_and_filter(true);
    table.set_pin_l0_filter_and_index_blocks_in_cache(true);
    if let Some((name, transform, in_domain)) = extractor(cf) {
        opts.set_prefix_extractor(SliceTransform::create(name, transform, Some(in_domain)));
        opts.set_memtable_prefix_bloom_ratio(0.1);
        table.set_whole_key_filtering(false);
    }
    // Whole-prop lifts scan `ByPropTime`: big blocks make them cheaper. Point lookups seek in
    // `ByIden`/`ByPropValu`, where a block is decompressed per lookup that misses the cache:
    // small blocks keep that cheap.
    if cf == Cf::ByPropTime {
        table.set_block_size(16 << 10);
    }
    opts.set_block_based_table_factory(&table);
    opts.set_compression_type(DBCompressionType::Lz4);
    if churned(cf) {
        // A table file with 256 deletions among any 1,024 consecutive entries is compacted.
        opts.add_compact_on_deletion_collector_factory(1024, 256, 0.0);
    }
    let buffer = match cf {
        Cf::Meta => 4 << 20,
        Cf::Blobs => 32 << 20,
        Cf::ByIden | Cf::ByPropValu | Cf::ByPropTime => 64 << 20,
        // History is written as much as rows are changed, read rarely.
        Cf::PastByIden | Cf::PastByPropValu | Cf::PastByPropTime => 16 << 20,
        Cf::BlobHistory | Cf::History => 8 << 20,
    };
    opts.set_write_buffer_size(buffer);
    if cf == Cf::Blobs {
        // Large values (content chunks) go to blob files: flushed once, never rewritten by
        // compaction, read without passing through (and evicting) the block cache. Blob files
        // whose values were deleted are reclaimed by compaction.
        opts.set_enable_blob_files(true);
        opts.set_min_blob_size(4096);
        opts.set_blob_file_size(256 << 20);
        opts.set_enable_blob_gc(true);
        // Large objects are written past the log and flushed at their commit: room for four
        // memtables keeps a long write from stalling on the flushes (each one syncs a file).
        opts.set_max_write_buffer_number(4);
    }
    opts
}

/// Room kept free on the store's filesystem beyond what the memtables will need when they are
/// flushed: a new write-ahead log (RocksDB preallocates up to the memtable budget for it) and
/// some slack. RocksDB must never meet a full disk in the middle of its own work (it would stop
/// taking writes until reopened).
const SPACE_SLACK_BYTES: u64 = MEMTABLE_BUDGET_BYTES as u64 + (16 << 20);

/// A batch putting at most this much is catalogue work (rows, a manifest, an xattr), not
/// content: it is not checked, so that `rm`, `setfattr` and `gc` work on a full store. RocksDB
/// preallocates its write-ahead log in blocks of about a memtable, so such small appends land
/// in room it already holds (and `statvfs` counts that room as used: checking them would
/// refuse them for space they do not need).
const SMALL_BATCH_BYTES: u64 = 256 << 10;

impl RocksEngine {
    /// Refuses a write of `bytes` that would leave too little room for the flushes RocksDB
    /// owes: [`StorageError::NoSpace`] (ENOSPC). Deletes and small catalogue writes always
    /// pass.
    fn check_space(&self, bytes: u64) -> Result<()> {
        if bytes <= SMALL_BATCH_BYTES {
            return Ok(());
        }
        let memtables = self
            .db
            .property_int_value("rocksdb.cur-size-all-mem-tables")
            .map_err(engine_error)?
            .unwrap_or(0);
        let needed = bytes + memtables + SPACE_SLACK_BYTES;
        let free = super::disk::free_bytes(&self.path)?;
        if free < needed {
            return Err(StorageError::NoSpace {
                path: self.path.clone(),
                free,
                needed,
            });
        }
        Ok(())
    }
}

/// Keeps RocksDB's error class: errno and retry decisions depend on it.
fn engine_error(e: rocksdb::Error) -> StorageError {
    let kind = match e.kind() {
        ErrorKind::NotFound => EngineErrorKind::NotFound,
        ErrorKind::Corruption => EngineErrorKind::Corruption,
        ErrorKind::NotSupported => EngineErrorKind::NotSupported,
        ErrorKind::InvalidArgument => EngineErrorKind::InvalidArgument,
        ErrorKind::IOError => EngineErrorKind::Io,
        ErrorKind::Busy => EngineErrorKind::Busy,
        ErrorKind::TimedOut => EngineErrorKind::TimedOut,
        ErrorKind::Aborted => EngineErrorKind::Aborted,
        ErrorKind::TryAgain | ErrorKind::MergeInProgress => EngineErrorKind::TryAgain,
        ErrorKind::ShutdownInProgress => EngineErrorKind::ShutdownInProgress,
        ErrorKind::Incomplete => EngineErrorKind::Incomplete,
        ErrorKind::Expired
        | ErrorKind::CompactionTooLarge
        | ErrorKind::ColumnFamilyDropped
        | ErrorKind::Unknown => EngineErrorKind::Other,
    };
    let message = e.into_string();
    let kind = match kind {
        EngineErrorKind::Io if message.contains("No space left on device") => {
            EngineErrorKind::NoSpace
        }
        EngineErrorKind::Io if message.contains("Disk quota exceeded") => EngineErrorKind::NoSpace,
        kind => kind,
    };
    StorageError::Engine { kind, message }
}

/// Returns whether every key below `end` that starts at or after `prefix` has `prefix`.
fn within_prefix(prefix: &[u8], end: &[u8]) -> bool {
    end.starts_with(prefix) || keys::prefix_end(prefix).is_some_and(|e| e == end)
}

impl RocksEngine {
    fn get_at(
        &self,
        snap: Option<&rocksdb::Snapshot<'_>>,
        cf: Cf,
        key: &[u8],
    ) -> Result<Option<Vec<u8>>> {
        let mut opts = ReadOptions::default();
        if let Some(snap) = snap {
            opts.set_snapshot(snap);
        }
        let cf = self.cf(cf)?;
        (self.meters.get).time(|| self.db.get_cf_opt(cf, key, &opts).map_err(engine_error))
    }

    fn scan_at(
        &self,
        snap: Option<&rocksdb::Snapshot<'_>>,
        cf: Cf,
        (start, end): (&[u8], Option<&[u8]>),
        visit: &mut Visitor<'_>,
    ) -> Result<()> {
        if is_empty_range(start, end) {
            return Ok(());
        }
        let mut opts = ReadOptions::default();
        if let Some(snap) = snap {
            opts.set_snapshot(snap);
        }
        if let Some(end) = end {
            opts.set_iterate_upper_bound(end);
        }
        // Prefix (bloom-filtered) mode only when the whole range lies inside the start key's
        // prefix; any wider scan must see every key in order.
        let within_one_prefix = extractor(cf).is_some_and(|(_, transform, in_domain)| {
            in_domain(start) && end.is_some_and(|end| within_prefix(transform(start), end))
        });
        if within_one_prefix {
            opts.set_prefix_same_as_start(true);
        } else {
            opts.set_total_order_seek(true);
        }
        let mut it = self.db.raw_iterator_cf_opt(self.cf(cf)?, opts);
        self.meters.scan.time(|| {
            it.seek(start);
            while let (Some(k), Some(v)) = (it.key(), it.value()) {
                if !visit(k, v)? {
                    return Ok(());
                }
                it.next();
            }
            it.status().map_err(engine_error)
        })
    }
}

impl EngineRead for RocksEngine {
    fn get(&self, cf: Cf, key: &[u8]) -> Result<Option<Vec<u8>>> {
        self.get_at(None, cf, key)
    }

    fn scan(
        &self,
        cf: Cf,
        start: &[u8],
        end: Option<&[u8]>,
        visit: &mut Visitor<'_>,
    ) -> Result<()> {
        self.scan_at(None, cf, (start, end), visit)
    }
}

/// A consistent read of a [`RocksEngine`]: a RocksDB snapshot.
pub struct RocksSnapshot<'e> {
    engine: &'e RocksEngine,
    snap: rocksdb::Snapshot<'e>,
}

impl EngineRead for RocksSnapshot<'_> {
    fn get(&self, cf: Cf, key: &[u8]) -> Result<Option<Vec<u8>>> {
        self.engine.get_at(Some(&self.snap), cf, key)
    }

    fn scan(
        &self,
        cf: Cf,
        start: &[u8],
        end: Option<&[u8]>,
        visit: &mut Visitor<'_>,
    ) -> Result<()> {
        self.engine
            .scan_at(Some(&self.snap), cf, (start, end), visit)
    }
}

impl Engine for RocksEngine {
    type Txn<'e> = SerialTxn<'e, Self>;
    type Snapshot<'e> = RocksSnapshot<'e>;

    fn snapshot(&self) -> Result<RocksSnapshot<'_>> {
        Ok(RocksSnapshot {
            engine: self,
            snap: self.db.snapshot(),
        })
    }

    fn begin(&self) -> Result<Self::Txn<'_>> {
        Ok(SerialTxn::new(self, &self.writers, &self.clock))
    }

    fn settle(&self) -> Result<i64> {
        self.clock.settle(|horizon| {
            let mut batch = WriteBatch::new();
            let key = keys::META_HISTORY_HORIZON.to_vec();
            batch.put(Cf::Meta, key, horizon.to_be_bytes().to_vec());
            self.write(batch)
        })
    }

    fn write(&self, batch: WriteBatch) -> Result<()> {
        // Logged: the write-ahead log now, a table or blob file at the flush.
        self.check_space(2 * batch.put_bytes())?;
        let batch = self.rocks_batch(batch)?;
        (self.meters.write).time(|| {
            (self.db)
                .write_opt(batch, &WriteOptions::default())
                .map_err(engine_error)
        })
    }

    fn sync(&self) -> Result<()> {
        (self.meters.sync).time(|| self.db.flush_wal(true).map_err(engine_error))
    }

    fn write_unlogged(&self, batch: WriteBatch) -> Result<()> {
        self.check_space(batch.put_bytes())?;
        let mut options = WriteOptions::default();
        options.disable_wal(true);
        let batch = self.rocks_batch(batch)?;
        (self.meters.write).time(|| self.db.write_opt(batch, &options).map_err(engine_error))
    }

    fn flush(&self, cf: Cf) -> Result<()> {
        let mut options = rocksdb::FlushOptions::default();
        options.set_wait(true);
        self.db
            .flush_cf_opt(self.cf(cf)?, &options)
            .map_err(engine_error)
    }

    fn reclaim(&self, cf: Cf) -> Result<()> {
        // Compacting drops the references to deleted values; a blob file none is left in is
        // deleted just after. (No option is changed for it: every change writes an OPTIONS
        // file, which a full disk refuses.)
        self.db
            .compact_range_cf(self.cf(cf)?, None::<&[u8]>, None::<&[u8]>);
        Ok(())
    }
}

/// The row store over the RocksDB engine: the default backend.
pub type RocksStore = super::RowStore<RocksEngine>;

impl super::RowStore<RocksEngine> {
    /// Creates a store in directory `path` (made if missing) or opens the one already there.
    pub fn create(path: &Path) -> Result<Self> {
        super::RowStore::with_engine(RocksEngine::open(path, true)?)
    }

    /// Opens the existing store in directory `path`; [`StorageError::NoStore`] if there is none.
    pub fn open(path: &Path) -> Result<Self> {
        super::RowStore::with_engine(RocksEngine::open(path, false)?)
    }
}
