//! The RocksDB engine: one column family per [`Cf`], an exclusive lock file, tuned options, and
//! RocksDB's status codes kept as [`EngineErrorKind`]. The only file that imports `rocksdb`.

use std::fs::{File, OpenOptions};
use std::path::{Path, PathBuf};

use rocksdb::{
    BlockBasedOptions, Cache, ColumnFamily, ColumnFamilyDescriptor, DB, DBCompressionType,
    ErrorKind, Options, ReadOptions, WriteOptions,
};

use super::engine::{Cf, Engine, Visitor, WriteBatch};
use super::{EngineErrorKind, Result, StorageError};

/// Name of the lock file a process holds while it has the store open.
pub const LOCK_FILE: &str = "cronusfs.lock";

/// An [`Engine`] over a RocksDB database in one directory.
pub struct RocksEngine {
    db: DB,
    path: PathBuf,
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

impl RocksEngine {
    /// Opens the database in directory `path`. With `create`, makes the directory and a new
    /// database if there is none; without, a directory holding no database is
    /// [`StorageError::NoStore`]. Another open handle is [`StorageError::Locked`].
    pub fn open(path: &Path, create: bool) -> Result<Self> {
        if !create && !path.join("CURRENT").is_file() {
            return Err(StorageError::NoStore {
                path: path.to_path_buf(),
            });
        }
        std::fs::create_dir_all(path)?;
        let lock = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(path.join(LOCK_FILE))?;
        match lock.try_lock() {
            Ok(()) => {}
            Err(std::fs::TryLockError::WouldBlock) => {
                return Err(StorageError::Locked {
                    path: path.to_path_buf(),
                });
            }
            Err(std::fs::TryLockError::Error(e)) => return Err(e.into()),
        }
        let cache = Cache::new_lru_cache(64 << 20);
        let cfs = Cf::ALL.map(|cf| ColumnFamilyDescriptor::new(cf.name(), cf_options(cf, &cache)));
        let db = DB::open_cf_descriptors(&db_options(), path, cfs).map_err(engine_error)?;
        Ok(RocksEngine {
            db,
            path: path.to_path_buf(),
            _lock: lock,
        })
    }

    /// Returns the store directory.
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn cf(&self, cf: Cf) -> Result<&ColumnFamily> {
        self.db.cf_handle(cf.name()).ok_or_else(|| {
            StorageError::Corruption(format!("column family {} is missing", cf.name()))
        })
    }
}

fn db_options() -> Options {
    let mut opts = Options::default();
    opts.create_if_missing(true);
    opts.create_missing_column_families(true);
    opts.increase_parallelism(2);
    opts.set_max_background_jobs(2);
    opts.set_keep_log_file_num(4);
    opts
}

fn cf_options(cf: Cf, cache: &Cache) -> Options {
    let mut opts = Options::default();
    let mut table = BlockBasedOptions::default();
    table.set_block_cache(cache);
    table.set_bloom_filter(10.0, false);
    table.set_cache_index_and_filter_blocks(true);
    opts.set_block_based_table_factory(&table);
    opts.set_compression_type(DBCompressionType::Lz4);
    let buffer = match cf {
        Cf::Meta => 4 << 20,
        Cf::ByIden | Cf::ByPropValu | Cf::ByPropTime | Cf::Blobs => 64 << 20,
    };
    opts.set_write_buffer_size(buffer);
    opts
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
    StorageError::Engine {
        kind,
        message: e.into_string(),
    }
}

impl Engine for RocksEngine {
    fn get(&self, cf: Cf, key: &[u8]) -> Result<Option<Vec<u8>>> {
        self.db.get_cf(self.cf(cf)?, key).map_err(engine_error)
    }

    fn scan(
        &self,
        cf: Cf,
        start: &[u8],
        end: Option<&[u8]>,
        visit: &mut Visitor<'_>,
    ) -> Result<()> {
        if end.is_some_and(|end| start >= end) {
            return Ok(());
        }
        let mut opts = ReadOptions::default();
        if let Some(end) = end {
            opts.set_iterate_upper_bound(end);
        }
        let mut it = self.db.raw_iterator_cf_opt(self.cf(cf)?, opts);
        it.seek(start);
        while let (Some(k), Some(v)) = (it.key(), it.value()) {
            if !visit(k, v)? {
                return Ok(());
            }
            it.next();
        }
        it.status().map_err(engine_error)
    }

    fn write(&self, batch: WriteBatch) -> Result<()> {
        let mut wb = rocksdb::WriteBatch::default();
        for (cf, key, value) in batch.into_ops() {
            let handle = self.cf(cf)?;
            match value {
                Some(v) => wb.put_cf(handle, key, v),
                None => wb.delete_cf(handle, key),
            }
        }
        self.db
            .write_opt(wb, &WriteOptions::default())
            .map_err(engine_error)
    }

    fn sync(&self) -> Result<()> {
        self.db.flush_wal(true).map_err(engine_error)
    }
}
