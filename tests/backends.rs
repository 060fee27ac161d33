//! Instantiates the conformance suite for every backend: memory, RocksDB, PostgreSQL (a real
//! server, see `services.rs`), and each behind a fault-injection wrapper told to fail nothing.

use cronusfs::storage::faulty::FaultyEngine;
use cronusfs::storage::memory::MemoryEngine;
use cronusfs::storage::postgres::{PgEngine, PgUrl};
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

/// Returns a store in a new schema of the test PostgreSQL server.
pub fn temp_postgres() -> (RowStore<PgEngine>, ()) {
    let url = PgUrl::parse(&crate::services::pg_store_url()).unwrap();
    (
        RowStore::with_engine(PgEngine::open(&url, true).unwrap()).unwrap(),
        (),
    )
}

conformance_suite!(postgres, temp_postgres());
conformance_suite!(faulty_postgres, {
    let url = PgUrl::parse(&crate::services::pg_store_url()).unwrap();
    let engine = PgEngine::open(&url, true).unwrap();
    (
        RowStore::with_engine(FaultyEngine::new(engine)).unwrap(),
        (),
    )
});
