//! Instantiates the conformance suite for every backend: memory, RocksDB, and both behind a
//! fault-injection wrapper that is told to fail nothing.

use cronusfs::storage::faulty::FaultyEngine;
use cronusfs::storage::memory::MemoryEngine;
use cronusfs::storage::rocks::RocksEngine;
use cronusfs::storage::{MemoryStore, RocksStore, RowStore};

/// Returns a RocksDB store in a fresh temporary directory (the guard deletes it).
pub fn temp_rocks() -> (RocksStore, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    (RocksStore::create(&dir.path().join("store")).unwrap(), dir)
}

conformance_suite!(memory, (MemoryStore::new(), ()));
conformance_suite!(rocks, temp_rocks());
conformance_suite!(
    faulty_memory,
    (
        RowStore::with_engine(FaultyEngine::new(MemoryEngine::new())).unwrap(),
        ()
    )
);
conformance_suite!(faulty_rocks, {
    let dir = tempfile::tempdir().unwrap();
    let engine = RocksEngine::open(&dir.path().join("store"), true).unwrap();
    (
        RowStore::with_engine(FaultyEngine::new(engine)).unwrap(),
        dir,
    )
});
