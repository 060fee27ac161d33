//! Fault injection: a workload of transactions runs over `FaultyEngine`, failing each engine
//! operation in turn (and, separately, every operation from some point on, then healing). After
//! every run the store must hold exactly the transactions whose commit returned success: no
//! partial transaction is ever visible.

use cronusfs::storage::engine::Engine;
use cronusfs::storage::faulty::FaultyEngine;
use cronusfs::storage::memory::MemoryEngine;
use cronusfs::storage::postgres::{PgEngine, PgUrl};
use cronusfs::storage::rocks::RocksEngine;
use cronusfs::storage::{
    Iden, PropQuery, Row, RowRead, RowStore, RowWrite, Storage, StorageError, Valu,
};

use crate::conformance::{row, sorted};

/// One transaction of the workload: it adds, renames, deletes and updates, so that a partial
/// commit would show as a half-applied change.
fn txn_body(s: &dyn RowWrite, n: i64) -> Result<(), StorageError> {
    let node = format!("n{n}");
    s.add_rows(&[
        row(&node, "step", n, n),
        row(&node, "kind", "item", n),
        row("all", "seen", n, n),
    ])?;
    if n % 2 == 1 {
        s.del_rows_by_id(&Iden::new(format!("n{}", n - 1)).unwrap())?;
    }
    if n % 3 == 2 {
        s.update_property_valu(
            "kind",
            &Valu::from("item"),
            &Valu::from(format!("batch{n}")),
        )?;
    }
    s.blob_set(&format!("blob{n}"), &n.to_be_bytes())?;
    Ok(())
}

fn run_txn(s: &dyn Storage, n: i64) -> Result<(), StorageError> {
    let txn = s.begin()?;
    txn_body(&*txn, n)?;
    txn.commit()
}

/// What the store must hold after `committed` transactions succeeded, computed on a clean store.
fn expected(committed: &[i64]) -> Contents {
    let clean = cronusfs::storage::MemoryStore::new();
    for n in committed {
        run_txn(&clean, *n).unwrap();
    }
    contents(&clean)
}

/// Every row (sorted) and every blob of a store.
type Contents = (Vec<Row>, Vec<(String, Option<Vec<u8>>)>);

fn contents(s: &dyn Storage) -> Contents {
    let rows = s
        .backup_rows(100)
        .map(|c| c.unwrap())
        .collect::<Vec<_>>()
        .concat();
    // The workload's blobs: not the one every store records at its creation.
    let keys = s.blob_keys().unwrap().into_iter();
    let blobs = keys.filter(|k| k != "syn:core:created").map(|k| {
        let v = s.blob_get(&k).unwrap();
        (k, v)
    });
    (sorted(rows), blobs.collect())
}

/// Runs the workload with fault `inject` armed, then heals and checks the store.
fn check_workload<E: Engine + 'static>(
    store: &RowStore<FaultyEngine<E>>,
    inject: impl Fn(&FaultyEngine<E>),
) -> bool {
    inject(store.engine());
    let mut committed = Vec::new();
    let mut failures = 0;
    for n in 0..8 {
        match run_txn(store, n) {
            Ok(()) => committed.push(n),
            Err(StorageError::InjectedFault(_)) => failures += 1,
            Err(other) => panic!("unexpected error {other:?}"),
        }
    }
    store.engine().heal();
    assert_eq!(
        contents(store),
        expected(&committed),
        "committed {committed:?}"
    );
    // The store keeps working after a failure.
    store.add_rows(&[row("after", "ok", 1, 1)]).unwrap();
    assert_eq!(store.size_by_prop(&PropQuery::new("ok")).unwrap(), 1);
    failures > 0
}

fn fresh_memory() -> RowStore<FaultyEngine<MemoryEngine>> {
    RowStore::with_engine(FaultyEngine::new(MemoryEngine::new())).unwrap()
}

fn workload_ops() -> u64 {
    let store = fresh_memory();
    let start = store.engine().ops();
    for n in 0..8 {
        run_txn(&store, n).unwrap();
    }
    store.engine().ops() - start
}

#[test]
fn each_single_failed_operation_leaves_whole_transactions_only() {
    let total = workload_ops();
    assert!(
        total >= 8,
        "every commit reaches the engine: {total} operations"
    );
    for n in 0..total {
        let store = fresh_memory();
        let at = store.engine().ops() + n;
        assert!(
            check_workload(&store, |e| e.fail_op(at)),
            "fault {n} was hit"
        );
    }
}

#[test]
fn a_dead_engine_keeps_the_committed_prefix() {
    let total = workload_ops();
    for n in (0..total).step_by(3) {
        let store = fresh_memory();
        let at = store.engine().ops() + n;
        check_workload(&store, |e| e.fail_from(at));
    }
}

#[test]
fn faults_on_rocksdb_leave_whole_transactions_only() {
    let total = workload_ops();
    for n in (0..total).step_by(5) {
        let dir = tempfile::tempdir().unwrap();
        let engine = RocksEngine::open(&dir.path().join("store"), true).unwrap();
        let store = RowStore::with_engine(FaultyEngine::new(engine)).unwrap();
        let at = store.engine().ops() + n;
        assert!(check_workload(&store, |e| e.fail_op(at)));
    }
}

#[test]
fn faults_on_postgres_leave_whole_transactions_only() {
    let total = workload_ops();
    for n in (0..total).step_by(5) {
        let url = PgUrl::parse(&crate::services::pg_store_url()).unwrap();
        let engine = PgEngine::open(&url, true).unwrap();
        let store = RowStore::with_engine(FaultyEngine::new(engine)).unwrap();
        let at = store.engine().ops() + n;
        assert!(check_workload(&store, |e| e.fail_op(at)));
    }
}

#[test]
fn a_failed_autocommit_call_writes_nothing() {
    let store = fresh_memory();
    store
        .add_rows(&[row("a", "x", 1, 1), row("b", "x", 2, 2)])
        .unwrap();
    let before = contents(&store);
    let at = store.engine().ops() + 1; // The read succeeds, the write fails.
    store.engine().fail_op(at);
    let err = store.update_property("x", "y").unwrap_err();
    assert!(matches!(err, StorageError::InjectedFault(_)));
    assert_eq!(contents(&store), before);
}

/// A stream whose chunk store fails at any one engine operation still names exactly the bytes
/// it lists: its id is their hash, and what it lists is a prefix of what was written.
#[test]
fn a_failed_chunk_store_never_leaves_a_stream_with_a_wrong_id() {
    use cronusfs::meta::{ChunkStream, ContentStore};
    let data = crate::content::bytes(5 << 20, 3);
    let mut n = 0;
    loop {
        let store = RowStore::with_engine(FaultyEngine::new(MemoryEngine::new())).unwrap();
        let start = store.engine().ops();
        store.engine().fail_op(start + n);
        let content = ContentStore::new(&store);
        let mut stream = ChunkStream::default();
        let mut failed = false;
        for piece in data.chunks(300_000) {
            if content
                .write_stream(&mut stream, piece, &mut |_| {})
                .is_err()
            {
                failed = true;
                break;
            }
        }
        store.engine().heal();
        let manifest = content.finish_stream(stream, &mut |_| {}).unwrap();
        let txn = store.begin().unwrap();
        ContentStore::commit_manifest(&*txn, &manifest).unwrap();
        txn.commit().unwrap();
        assert!(
            content.verify(manifest.id).unwrap().is_empty(),
            "fault at op {n}"
        );
        let mut back = Vec::new();
        std::io::Read::read_to_end(&mut content.reader(manifest.id).unwrap(), &mut back).unwrap();
        assert!(data.starts_with(&back), "fault at op {n}: not a prefix");
        if !failed {
            assert_eq!(back.len(), data.len());
            break;
        }
        n += 1;
    }
    assert!(n > 3, "faults were injected ({n} runs)");
}

/// A new version's commit that other hosts' commits keep conflicting with is retried well past
/// one round of attempts (its bytes are stored: giving up loses them), and when the conflicts
/// never end it fails with EBUSY having committed nothing.
#[test]
fn a_contended_version_commit_is_retried_for_rounds_then_commits_nothing() {
    use cronusfs::meta::content::CHUNK_SIZE;
    use cronusfs::meta::{ChunkStream, MetaError, Metastore, ObjectId, ObjectPath, VersionDetails};
    use cronusfs::storage::retry::MAX_ATTEMPTS;
    let m = Metastore::new(fresh_memory());
    let ds = cronusfs::meta::DatasetId::random();
    m.create_dataset(ds).unwrap();
    m.add_partition(ds, "k").unwrap();
    let job = m.new_job(ds).unwrap();
    let path = ObjectPath::new(ds, "k", job, "contended.bin");
    // Whole chunks, stored before the conflicts start: only the commit meets them.
    let commit = |seed: u8, conflicts: u64| {
        let mut stream = ChunkStream::default();
        m.stream_write(&mut stream, &vec![seed; CHUNK_SIZE])
            .unwrap();
        m.storage().engine().conflict_commits(conflicts);
        let put = m.put_stream(&path, ObjectId::random(), stream, VersionDetails::at(1));
        m.storage().engine().conflict_commits(0);
        put
    };
    // More conflicts than one round of attempts: still lands.
    commit(1, u64::from(MAX_ATTEMPTS) + 10).unwrap();
    assert_eq!(m.object(&path).unwrap().version, 1);
    // Conflicts without end: EBUSY, and the object is still its first version.
    let err = commit(2, u64::MAX).unwrap_err();
    assert!(
        matches!(&err, MetaError::Storage(StorageError::Contended { .. })),
        "{err}"
    );
    assert_eq!(m.object(&path).unwrap().version, 1);
}
