//! gc on a shared store while other hosts write (PostgreSQL + S3; each "host" is its own
//! catalogue with its own connection pool and session): a stream's chunks stored and not yet
//! committed on one host are never reclaimed by gc on another; new writes wait while a sweep
//! runs; gc gives up, leaving nothing behind, when writes stay in progress; a writer whose
//! session expired commits nothing; a dead host's lease does not hold gc up.

use std::thread::sleep;
use std::time::{Duration, Instant};

use cronusfs::meta::{ChunkStream, MetaError, Metastore, ObjectPath, Session, VersionDetails};
use cronusfs::storage::{PropQuery, Storage, now_millis};

type Catalog = Metastore<Box<dyn Storage>>;

const TTL: Duration = Duration::from_secs(30);
const SWEEPING: &str = "cronusfs:session:sweeping";

/// A host: its own catalogue of the store, with a session its writes hold leases under. The
/// store's session time-to-live is set to `ttl` first (one value for every host).
fn host(open: &impl Fn() -> Catalog, name: &str, ttl: Duration) -> (Catalog, Session) {
    let m = open();
    m.sessions().set_ttl(ttl).unwrap();
    let session = m
        .sessions()
        .open(name, std::process::id(), &format!("/mnt/{name}"))
        .unwrap();
    m.leases().attach_session(&session);
    (m, session)
}

/// A store with a dataset and job, and the path of an object in it.
fn store_with_job() -> (impl Fn() -> Catalog, ObjectPath) {
    let (_url, open) = crate::shared_store::pg_s3_store();
    let m = open();
    let (ds, ..) = crate::metastore::dataset(&m, &["k"]);
    let job = m.new_job(ds).unwrap();
    (open, ObjectPath::new(ds, "k", job, "streamed.bin"))
}

/// Bytes enough for three stored chunks and a tail.
fn big(seed: u8) -> Vec<u8> {
    crate::content::bytes(3 * cronusfs::meta::content::CHUNK_SIZE + 1000, seed)
}

fn sweeping(m: &Catalog) -> bool {
    !m.storage()
        .rows_by_prop(&PropQuery::new(SWEEPING))
        .unwrap()
        .is_empty()
}

/// Commits `stream` at `path` through `m` as a new object, dated now.
fn commit(m: &Catalog, path: &ObjectPath, stream: ChunkStream) -> Result<(), MetaError> {
    let id = cronusfs::meta::ObjectId::random();
    m.put_stream(path, id, stream, VersionDetails::at(now_millis()))
        .map(drop)
}

/// Tends `m`'s lease (as its heartbeat would) until it is given up.
fn release(m: &Catalog) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while m.leases().is_held() {
        assert!(Instant::now() < deadline, "the lease was never given up");
        m.leases().tend().unwrap();
        sleep(Duration::from_millis(50));
    }
}

fn wait_until(what: &str, done: impl Fn() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while !done() {
        assert!(Instant::now() < deadline, "never: {what}");
        sleep(Duration::from_millis(10));
    }
}

/// A session time-to-live short enough to outlive in a test.
const SHORT: Duration = Duration::from_millis(400);

/// A host (the store's session TTL set to [`SHORT`]) that stored the chunks of `big(seed)` in
/// a stream, then stalled past its TTL without beating.
fn stalled_writer(open: &impl Fn() -> Catalog, seed: u8) -> (Catalog, Session, ChunkStream) {
    let (a, session) = host(open, "host-a", SHORT);
    let mut stream = ChunkStream::default();
    a.stream_write(&mut stream, &big(seed)).unwrap();
    sleep(SHORT + Duration::from_millis(150));
    (a, session, stream)
}

#[test]
fn gc_on_one_host_waits_for_a_stream_written_on_another() {
    let (open, path) = store_with_job();
    let (a, _) = host(&open, "host-a", TTL);
    let (b, _) = host(&open, "host-b", TTL);
    let bytes = big(7);
    let half = bytes.len() / 2;
    let mut stream = ChunkStream::default();
    a.stream_write(&mut stream, &bytes[..half]).unwrap();
    assert!(
        a.leases().is_held(),
        "a stream that stored chunks holds the lease"
    );
    std::thread::scope(|s| {
        let gc = s.spawn(|| (b.gc(), Instant::now()));
        wait_until("gc marks its sweep", || sweeping(&b));
        sleep(Duration::from_millis(300));
        assert!(
            !gc.is_finished(),
            "gc went ahead while another host had chunks not yet referenced"
        );
        a.stream_write(&mut stream, &bytes[half..]).unwrap();
        commit(&a, &path, stream).unwrap();
        let committed_at = Instant::now();
        release(&a);
        let (report, done_at) = gc.join().unwrap();
        report.unwrap();
        assert!(done_at >= committed_at, "gc ended before the commit");
    });
    assert!(!sweeping(&b), "gc removed its sweep mark");
    assert_eq!(crate::metastore::read_all(&b, &path), bytes);
    let meta = b.object(&path).unwrap();
    assert_eq!(
        b.content().verify(meta.content).unwrap(),
        Vec::<String>::new()
    );
}

#[test]
fn a_new_write_waits_while_another_host_sweeps() {
    let (open, path) = store_with_job();
    let (a, _) = host(&open, "host-a", TTL);
    let (b, _) = host(&open, "host-b", TTL);
    let (c, _) = host(&open, "host-c", TTL);
    let mut stream = ChunkStream::default();
    a.stream_write(&mut stream, &big(1)).unwrap();
    let other = ObjectPath::new(path.dataset, "k", path.job, "other.bin");
    let other_bytes = big(2);
    std::thread::scope(|s| {
        let gc = s.spawn(|| {
            let report = b.gc();
            (report, Instant::now())
        });
        wait_until("gc marks its sweep", || sweeping(&b));
        let write = s.spawn(|| {
            let put = c.put_object(&other, &mut other_bytes.as_slice(), &mut |_| {});
            (put, Instant::now())
        });
        sleep(Duration::from_millis(300));
        assert!(!write.is_finished(), "a new write started during a sweep");
        commit(&a, &path, stream).unwrap();
        release(&a);
        let (report, gc_done) = gc.join().unwrap();
        report.unwrap();
        let (put, put_done) = write.join().unwrap();
        put.unwrap();
        assert!(
            put_done >= gc_done,
            "the write finished before the sweep ended"
        );
    });
    assert_eq!(crate::metastore::read_all(&a, &other), other_bytes);
    assert_eq!(crate::metastore::read_all(&c, &path), big(1));
}

#[test]
fn gc_gives_up_when_another_host_keeps_writing_and_leaves_no_mark() {
    let (open, path) = store_with_job();
    let (a, _) = host(&open, "host-a", TTL);
    let (b, _) = host(&open, "host-b", TTL);
    b.leases().set_gc_wait(Duration::from_millis(300));
    let mut stream = ChunkStream::default();
    a.stream_write(&mut stream, &big(3)).unwrap();
    match b.gc() {
        Err(MetaError::Busy(said)) => assert!(said.contains("host-a"), "{said}"),
        other => panic!("gc with a write in progress elsewhere: {other:?}"),
    }
    assert!(!sweeping(&b), "a gc that gave up left its sweep mark");
    // Writers are not held up, and the write in progress commits whole.
    let c_bytes = big(4);
    let c_path = ObjectPath::new(path.dataset, "k", path.job, "c.bin");
    b.put_object(&c_path, &mut c_bytes.as_slice(), &mut |_| {})
        .unwrap();
    commit(&a, &path, stream).unwrap();
    assert_eq!(crate::metastore::read_all(&b, &path), big(3));
}

#[test]
fn a_writer_whose_session_expired_commits_nothing() {
    let (open, path) = store_with_job();
    let (a, session, stream) = stalled_writer(&open, 5);
    // Another host expires the session of the stalled one.
    let expired = open().sessions().expire().unwrap();
    assert_eq!(expired.len(), 1);
    match commit(&a, &path, stream) {
        Err(MetaError::LeaseLost) => {}
        other => panic!("a commit after the session expired: {other:?}"),
    }
    assert!(matches!(a.object(&path), Err(MetaError::NoSuchObject(_))));
    // Beating again records the session anew; the next write takes a new lease.
    a.sessions().beat(&session).unwrap();
    a.put_object(&path, &mut big(6).as_slice(), &mut |_| {})
        .unwrap();
    assert_eq!(crate::metastore::read_all(&a, &path), big(6));
}

#[test]
fn a_dead_host_s_lease_does_not_hold_gc_up() {
    let (open, path) = store_with_job();
    let (a, _, stream) = stalled_writer(&open, 8); // host a stops beating: it is dead
    let (b, _) = host(&open, "host-b", SHORT);
    // Were the dead host's lease waited for, gc would give up with Busy after this wait.
    b.leases().set_gc_wait(Duration::from_secs(20));
    let report = b.gc().unwrap();
    assert!(
        report.chunks >= 3,
        "the dead host's chunks are reclaimed: {report:?}"
    );
    // Were host a only slow, it finds its lease gone and commits nothing.
    match commit(&a, &path, stream) {
        Err(MetaError::LeaseLost) => {}
        other => panic!("a commit after the session expired: {other:?}"),
    }
    assert!(matches!(a.object(&path), Err(MetaError::NoSuchObject(_))));
}

/// Many small files committed at once by one host into one directory (the commits at release
/// of `tar -x` or of a create loop, on several threads) commit one at a time: run together,
/// their transactions read and write neighbouring keys of PostgreSQL's indexes, which its
/// serializable isolation reports as conflicts, and a stream of them exhausted a commit's
/// retries and lost files. Conflicts with other hosts remain and are retried.
#[test]
fn a_process_s_versions_commit_one_at_a_time_and_all_land() {
    use cronusfs::storage::MemoryStore;
    use cronusfs::storage::faulty::FaultyEngine;
    use cronusfs::storage::postgres::{PgEngine, PgUrl};
    let url = PgUrl::parse(&crate::services::pg_store_url()).unwrap();
    let engine = FaultyEngine::new(PgEngine::open(&url, true).unwrap());
    let rows = cronusfs::storage::RowStore::with_engine(engine).unwrap();
    // Chunks elsewhere: every PostgreSQL transaction of the threads below is a version's.
    let m = Metastore::with_chunks(rows, Box::new(MemoryStore::new()));
    let (ds, ..) = crate::metastore::dataset(&m, &["k"]);
    let job = m.new_job(ds).unwrap();
    std::thread::scope(|s| {
        for t in 0..8 {
            let m = &m;
            s.spawn(move || {
                for n in 0..40 {
                    let p = ObjectPath::new(ds, "k", job, &format!("t{t}-{n}"));
                    let bytes = format!("{t} {n}");
                    m.put_object(&p, &mut bytes.as_bytes(), &mut |_| {})
                        .unwrap();
                }
            });
        }
    });
    assert_eq!(m.objects(ds, "k", job).unwrap().len(), 8 * 40);
    assert_eq!(
        m.storage().engine().most_open_txns(),
        1,
        "two commits of one process ran at once"
    );
}
