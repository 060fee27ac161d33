//! The shared store: rows in PostgreSQL, content in S3 (real servers, `services.rs`). Several
//! engines (separate connection pools, as separate hosts would have) on one store writing at
//! once: read-modify-write never loses an update, conflicts are retried; the catalogue's seed
//! walkthrough, versions, gc and large objects on PostgreSQL + S3; the S3 chunk store.

use std::path::Path;
use std::sync::atomic::{AtomicU32, Ordering};

use cronusfs::meta::{Metastore, ObjectPath};
use cronusfs::storage::ChunkStore;
use cronusfs::storage::location::{self, Location};
use cronusfs::storage::postgres::{PgEngine, PgUrl};
use cronusfs::storage::retry::transact;
use cronusfs::storage::s3::{S3Chunks, S3Url};
use cronusfs::storage::{Iden, RowRead, RowStore, RowWrite, Storage, StorageError, Valu};

fn open(url: &str) -> RowStore<PgEngine> {
    RowStore::with_engine(PgEngine::open(&PgUrl::parse(url).unwrap(), true).unwrap()).unwrap()
}

fn counter(s: &dyn RowRead) -> i64 {
    let rows = s
        .rows_by_id_prop(&Iden::new("counter").unwrap(), "n", None)
        .unwrap();
    rows.first().map_or(0, |r| r.valu.as_int().unwrap())
}

#[test]
fn increments_from_several_hosts_are_never_lost() {
    let url = crate::services::pg_store_url();
    let hosts: Vec<RowStore<PgEngine>> = (0..4).map(|_| open(&url)).collect();
    let attempts = AtomicU32::new(0);
    const EACH: i64 = 25;
    std::thread::scope(|scope| {
        for host in &hosts {
            let attempts = &attempts;
            scope.spawn(move || {
                for _ in 0..EACH {
                    transact(host, |txn| {
                        attempts.fetch_add(1, Ordering::SeqCst);
                        let iden = Iden::new("counter").unwrap();
                        let next = counter(txn) + 1;
                        txn.set_rows_by_id_prop(&iden, "n", &Valu::Int(next))?;
                        Ok::<_, StorageError>(())
                    })
                    .unwrap();
                }
            });
        }
    });
    assert_eq!(counter(&hosts[0]), 4 * EACH, "every increment counted once");
    let ran = attempts.load(Ordering::SeqCst);
    assert!(
        ran > 4 * EACH as u32,
        "four hosts on one row conflicted ({ran} runs)"
    );
}

#[test]
fn a_conflicting_commit_applies_nothing_and_says_so() {
    let url = crate::services::pg_store_url();
    let (a, b) = (open(&url), open(&url));
    let iden = Iden::new("node").unwrap();
    a.set_rows_by_id_prop(&iden, "v", &Valu::Int(0)).unwrap();
    let first = a.begin().unwrap();
    let second = b.begin().unwrap();
    // Both read the row, both write it: the second commit conflicts.
    assert_eq!(first.rows_by_id(&iden).unwrap().len(), 1);
    assert_eq!(second.rows_by_id(&iden).unwrap().len(), 1);
    first
        .set_rows_by_id_prop(&iden, "v", &Valu::Int(1))
        .unwrap();
    second
        .set_rows_by_id_prop(&iden, "v", &Valu::Int(2))
        .unwrap();
    second
        .add_rows(&[cronusfs::storage::Row::new(&iden, "w", 7, 1)])
        .unwrap();
    first.commit().unwrap();
    let err = second.commit().unwrap_err();
    assert!(matches!(err, StorageError::Conflict(_)), "{err:?}");
    let rows = b.rows_by_id(&iden).unwrap();
    assert_eq!(rows.len(), 1, "nothing of the failed transaction: {rows:?}");
    assert_eq!(rows[0].valu, Valu::Int(1));
    // Both engines go on working (the failed connection went back to the pool clean).
    b.set_rows_by_id_prop(&iden, "v", &Valu::Int(3)).unwrap();
    assert_eq!(a.rows_by_id(&iden).unwrap()[0].valu, Valu::Int(3));
}

#[test]
fn a_store_url_is_checked_and_its_password_never_shown() {
    let err = PgUrl::parse("postgres://u:hunter2@127.0.0.1:1/db?schema=Bad-Name").unwrap_err();
    let text = err.to_string();
    assert!(text.contains("schema"), "{text}");
    assert!(!text.contains("hunter2"), "{text}");
    let url = PgUrl::parse("postgres://u:hunter2@127.0.0.1:1/db").unwrap();
    assert_eq!(
        url.to_string(),
        "postgres://u:***@127.0.0.1:1/db?schema=cronusfs"
    );
    // Nothing listens on port 1: a clear error, not a hang or a panic.
    let err = PgEngine::open(&url, false).unwrap_err();
    assert!(matches!(err, StorageError::Unreachable(_)), "{err:?}");
    assert!(!format!("{err} {err:?}").contains("hunter2"));
}

#[test]
fn opening_a_database_without_a_store_says_so() {
    let url = crate::services::pg_store_url();
    let err = PgEngine::open(&PgUrl::parse(&url).unwrap(), false).unwrap_err();
    assert!(matches!(err, StorageError::NoStore { .. }), "{err:?}");
    assert!(err.to_string().contains("cronusfs init"), "{err}");
}

/// Returns a new store on the test PostgreSQL server with its content in the test S3 bucket,
/// as `cronusfs init URL --content s3://…` makes it, and an opener of its catalogue.
pub fn pg_s3_store() -> (String, impl Fn() -> Metastore<Box<dyn Storage>>) {
    let url = crate::services::pg_store_url();
    let content = S3Url::parse(&crate::services::s3_content_url()).unwrap();
    crate::services::use_s3_env();
    let location = Location::parse(Path::new(&url)).unwrap();
    drop(location::create(&location, Some(&content)).unwrap());
    let open = move || {
        let store = location::open(&location).unwrap();
        Metastore::with_chunks(store.rows, store.chunks.expect("content in S3"))
    };
    (url, open)
}

#[test]
fn seed_walkthrough_on_postgres_and_s3() {
    let (_url, open) = pg_s3_store();
    crate::metastore::seed_walkthrough(&open);
}

#[test]
fn versions_dedup_and_gc_on_postgres_and_s3() {
    let (_url, open) = pg_s3_store();
    crate::metastore::versions_dedup_and_gc_on(&open());
}

#[test]
fn large_objects_on_postgres_and_s3() {
    let (_url, open) = pg_s3_store();
    crate::metastore::large_objects_stream_in_and_out_of(&open());
}

#[test]
fn s3_chunks_are_put_once_and_listed_by_prefix() {
    let (_url, _open) = pg_s3_store();
    let url = S3Url::parse(&crate::services::s3_content_url()).unwrap();
    let (a, b) = (S3Chunks::open(&url).unwrap(), S3Chunks::open(&url).unwrap());
    assert_eq!(a.chunk_get("chunk/x").unwrap(), None);
    // Two hosts storing the same chunk at once: both succeed (a conditional put).
    std::thread::scope(|scope| {
        for host in [&a, &b] {
            scope.spawn(move || {
                for _ in 0..5 {
                    host.chunk_put("chunk/x", b"same bytes", false).unwrap();
                }
            });
        }
    });
    a.chunk_put("chunk/y", b"other", true).unwrap();
    a.chunk_put("content/z", b"not a chunk", false).unwrap();
    assert_eq!(
        b.chunk_get("chunk/x").unwrap().as_deref(),
        Some(&b"same bytes"[..])
    );
    assert_eq!(b.chunk_keys("chunk/").unwrap(), ["chunk/x", "chunk/y"]);
    assert_eq!(b.chunk_del("chunk/x").unwrap(), 10);
    assert_eq!(
        b.chunk_del("chunk/x").unwrap(),
        0,
        "deleting twice is no error"
    );
    assert_eq!(a.chunk_keys("chunk/").unwrap(), ["chunk/y"]);
    a.prefetch_chunk("chunk/y");
    assert_eq!(
        a.chunk_get("chunk/y").unwrap().as_deref(),
        Some(&b"other"[..])
    );
}

#[test]
fn a_store_keeps_its_content_location() {
    let (url, open) = pg_s3_store();
    let location = Location::parse(Path::new(&url)).unwrap();
    let elsewhere = S3Url::parse("s3://other-bucket?endpoint=http://127.0.0.1:1").unwrap();
    let err = location::create(&location, Some(&elsewhere)).unwrap_err();
    assert!(
        err.to_string().contains("keeps its content at s3://"),
        "{err}"
    );
    // The chunks of an object are in the bucket, not in PostgreSQL.
    let m = open();
    let ds = cronusfs::meta::DatasetId::random();
    m.create_dataset(ds).unwrap();
    m.add_partition(ds, "k").unwrap();
    let job = m.new_job(ds).unwrap();
    let path = ObjectPath::new(ds, "k", job, "f.bin");
    let meta = m
        .put_object(&path, &mut &[9u8; 3000][..], &mut |_| {})
        .unwrap();
    assert!(
        m.storage()
            .blob_keys_with_prefix("chunk/")
            .unwrap()
            .is_empty()
    );
    let s3 = location::open(&location).unwrap().chunks.unwrap();
    assert_eq!(s3.chunk_keys("chunk/").unwrap().len(), 1);
    assert!(m.content().verify(meta.content).unwrap().is_empty());
}

#[test]
fn seed_scenario_through_the_cli_on_postgres_and_s3() {
    let scratch = tempfile::tempdir().unwrap();
    let (url, content) = (
        crate::services::pg_store_url(),
        crate::services::s3_content_url(),
    );
    crate::services::use_s3_env();
    let init = std::process::Command::new(env!("CARGO_BIN_EXE_cronusfs"))
        .args(["init", &url, "--content", &content])
        .output()
        .unwrap();
    crate::mount::assert_success(&init);
    let again = std::process::Command::new(env!("CARGO_BIN_EXE_cronusfs"))
        .args(["init", &url])
        .output()
        .unwrap();
    let said = String::from_utf8_lossy(&again.stderr);
    assert!(
        !again.status.success() && said.contains("is already a store"),
        "{said}"
    );
    crate::cli_catalog::seed_scenario(Path::new(&url), scratch.path());
}

#[test]
fn the_seed_scenario_through_a_mount_of_postgres_and_s3() {
    crate::mount::seed_scenario_with_ordinary_tools(&crate::mount::Mounted::shared());
}

/// The session lines of `cronusfs status -s STORE` run with `m`'s environment.
fn sessions_of(m: &crate::mount::Mounted) -> Vec<String> {
    let out = m
        .cronusfs()
        .arg("status")
        .arg("-s")
        .arg(&m.store)
        .output()
        .unwrap();
    crate::mount::assert_success(&out);
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .filter(|l| !l.starts_with("history: ") && !l.starts_with("  health: "))
        .map(str::to_string)
        .collect()
}

#[test]
fn two_daemons_share_a_store_and_a_killed_one_s_session_expires() {
    let a = crate::mount::Mounted::shared();
    crate::mount::assert_success(&a.on_store(&["session-ttl", "1.5"]));
    let b = a.another_daemon();
    // a takes the store's new time-to-live at its next heartbeat (every 5 s under the old).
    crate::shared_sessions::wait_for_ttl(&a, "1.5");
    let sessions = sessions_of(&a);
    assert_eq!(sessions.len(), 2, "{sessions:?}");
    for m in [&a, &b] {
        let at = m.mnt.display().to_string();
        assert!(
            sessions.iter().any(|l| l.contains(&format!("\t{at}\t"))),
            "{sessions:?}"
        );
    }
    // What one daemon's close committed, the other opens.
    let job = a.job_dir();
    std::fs::write(job.join("from-a.txt"), b"written through a").unwrap();
    let seen_by_b = b
        .mnt
        .join(job.strip_prefix(&a.mnt).unwrap())
        .join("from-a.txt");
    assert_eq!(std::fs::read(&seen_by_b).unwrap(), b"written through a");
    // gc runs beside both daemons (it waits for their writes in progress, if any).
    let gc = a
        .cronusfs()
        .arg("-s")
        .arg(&a.store)
        .arg("gc")
        .output()
        .unwrap();
    crate::mount::assert_success(&gc);
    assert!(String::from_utf8_lossy(&gc.stdout).starts_with("freed "));
    assert_eq!(std::fs::read(&seen_by_b).unwrap(), b"written through a");
    // A daemon killed with SIGKILL stops beating; the other expires its session.
    let pid = a.daemon_pid();
    // SAFETY: kill(2) with the daemon's pid; no memory involved.
    assert_eq!(unsafe { libc::kill(pid, libc::SIGKILL) }, 0);
    let killed = std::time::Instant::now();
    let deadline = killed + std::time::Duration::from_secs(20);
    loop {
        let left = sessions_of(&b);
        if left.len() == 1 {
            eprintln!(
                "measured: a SIGKILLed daemon's session was gone {:?} after the kill",
                killed.elapsed()
            );
            assert!(
                left[0].contains(&format!("pid {}", b.daemon_pid())),
                "{left:?}"
            );
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "never expired: {left:?}"
        );
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
    a.umount();
    b.umount();
    assert_eq!(
        sessions_of(&b),
        ["no sessions: the store is not mounted anywhere"]
    );
}

#[test]
fn a_sigkilled_daemon_of_a_shared_store_loses_nothing_whose_close_returned() {
    crate::mount::sigkilled_daemon_loses_nothing(&crate::mount::Mounted::shared());
}

#[test]
fn a_store_written_by_the_original_imports_into_postgres_and_s3() {
    let (_url, open) = pg_s3_store();
    crate::cronus_import::original_store_imports_into(&open());
}

#[test]
fn export_and_import_between_shared_stores() {
    let ((_a, open_a), (_b, open_b)) = (pg_s3_store(), pg_s3_store());
    crate::cronus_import::changed_bytes_survive_an_export_and_import(&open_a(), &open_b());
}

#[test]
fn a_store_on_postgres_alone_keeps_its_content_in_postgres() {
    let url = crate::services::pg_store_url();
    let location = Location::parse(Path::new(&url)).unwrap();
    let store = location::create(&location, None).unwrap();
    assert!(
        store.chunks.is_none(),
        "no content location: chunks in the store"
    );
    drop(store);
    let open = || Metastore::new(location::open(&location).unwrap().rows);
    crate::metastore::large_objects_stream_in_and_out_of(&open());
    let m = open();
    assert!(
        m.storage().blob_keys_with_prefix("chunk/").unwrap().len() >= 2,
        "the chunks are rows of the blobs table"
    );
    crate::metastore::versions_dedup_and_gc_on(&open());
}

/// Four daemons on one PostgreSQL + S3 store race: `job new` from each host's command line and
/// `mkdir jobs/N` through each mount, all four writing one object name, tagging it and
/// renaming files onto one name, while `gc` runs again and again from a command line. Afterwards job numbers are unique, every object's bytes are
/// one writer's whole, every mount reads the same, and fsck is clean.
#[test]
fn four_daemons_racing_on_one_store_lose_nothing_and_mix_nothing() {
    let a = crate::mount::Mounted::shared();
    let mounts = [a.another_daemon(), a.another_daemon(), a.another_daemon()];
    let all: Vec<&crate::mount::Mounted> = std::iter::once(&a).chain(mounts.iter()).collect();
    let job = a.job_dir();
    let rel = job.strip_prefix(&a.mnt).unwrap().to_path_buf();
    let ds = rel.iter().nth(1).unwrap().to_str().unwrap().to_string();
    let jobs_dir = job
        .parent()
        .unwrap()
        .strip_prefix(&a.mnt)
        .unwrap()
        .to_path_buf();
    let content = |host: usize, round: usize| -> Vec<u8> {
        let seed = (host * 1000 + round) as u8;
        crate::content::bytes(1_500_000 + host * 1000, seed)
    };
    let racing = std::sync::atomic::AtomicBool::new(true);
    let (numbers, sweeps): (Vec<Vec<u32>>, usize) = std::thread::scope(|scope| {
        let collector = scope.spawn(|| gc_while(&a, &racing));
        let workers: Vec<_> = all
            .iter()
            .enumerate()
            .map(|(host, m)| {
                let (rel, jobs_dir, ds) = (&rel, &jobs_dir, &ds);
                scope.spawn(move || {
                    let dir = m.mnt.join(rel);
                    let mut got = Vec::new();
                    for round in 0..4 {
                        let out = m
                            .cronusfs()
                            .args(["-s"])
                            .arg(&m.store)
                            .args(["job", "new", ds])
                            .output()
                            .unwrap();
                        crate::mount::assert_success(&out);
                        got.push(
                            String::from_utf8(out.stdout)
                                .unwrap()
                                .trim()
                                .parse()
                                .unwrap(),
                        );
                        // mkdir of one number by all four: one makes it, the others see it.
                        let n = 100 + round;
                        match std::fs::create_dir(m.mnt.join(jobs_dir).join(n.to_string())) {
                            Ok(()) => {}
                            Err(e) => assert_eq!(e.kind(), std::io::ErrorKind::AlreadyExists),
                        }
                        std::fs::write(dir.join("shared.bin"), content(host, round)).unwrap();
                        let tag = format!("host-{host}");
                        xattr_set(&dir.join("shared.bin"), &tag);
                        let own = dir.join(format!("tmp-{host}-{round}"));
                        std::fs::write(&own, content(host, round)).unwrap();
                        std::fs::rename(&own, dir.join("renamed.bin")).unwrap();
                    }
                    got
                })
            })
            .collect();
        let numbers = workers.into_iter().map(|w| w.join().unwrap()).collect();
        racing.store(false, Ordering::SeqCst);
        (numbers, collector.join().unwrap())
    });
    assert!(sweeps >= 2, "gc ran {sweeps} times during the race");
    let mut all_numbers: Vec<u32> = numbers.concat();
    all_numbers.sort_unstable();
    let before = all_numbers.len();
    all_numbers.dedup();
    assert_eq!(
        all_numbers.len(),
        before,
        "job new handed a number out twice: {numbers:?}"
    );
    let candidates: Vec<Vec<u8>> = (0..4)
        .flat_map(|h| (0..4).map(move |r| content(h, r)))
        .collect();
    std::thread::sleep(std::time::Duration::from_millis(1100)); // the kernels' attribute caches
    let mut seen = Vec::new();
    for m in &all {
        let dir = m.mnt.join(&rel);
        for name in ["shared.bin", "renamed.bin"] {
            let bytes = std::fs::read(dir.join(name)).unwrap();
            assert!(
                candidates.contains(&bytes),
                "{name} through {}: mixed bytes",
                m.mnt.display()
            );
            seen.push((name, bytes));
        }
        let names: Vec<String> = std::fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        let listed = m
            .cronusfs()
            .arg("-s")
            .arg(&m.store)
            .args(["ls", &ds, "k", "0"])
            .output()
            .unwrap();
        assert!(
            !names.iter().any(|n| n.starts_with("tmp-")),
            "a rename left its source, through {}: {names:?}; the store lists {}",
            m.mnt.display(),
            String::from_utf8_lossy(&listed.stdout)
        );
    }
    for (name, bytes) in &seen {
        let first = &seen.iter().find(|(n, _)| n == name).unwrap().1;
        assert!(bytes == first, "the mounts disagree on {name}");
    }
    let jobs: Vec<String> = std::fs::read_dir(a.mnt.join(&jobs_dir))
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    for n in 100..104 {
        assert!(jobs.contains(&n.to_string()), "job {n}: {jobs:?}");
    }
    for m in mounts {
        m.umount();
    }
    a.umount();
    a.assert_fsck_clean();
}

/// Runs `cronusfs gc` on `m`'s store, one after another while `racing`; returns how many ran
/// (each must succeed: it waits for the writes in progress on every host).
fn gc_while(m: &crate::mount::Mounted, racing: &std::sync::atomic::AtomicBool) -> usize {
    let mut runs = 0;
    while racing.load(Ordering::SeqCst) || runs == 0 {
        let out = m
            .cronusfs()
            .arg("-s")
            .arg(&m.store)
            .arg("gc")
            .output()
            .unwrap();
        crate::mount::assert_success(&out);
        runs += 1;
    }
    runs
}

fn xattr_set(path: &Path, value: &str) {
    let out = std::process::Command::new("setfattr")
        .args(["-n", "user.tag", "-v", value])
        .arg(path)
        .output()
        .unwrap();
    crate::mount::assert_success(&out);
}

/// A listing another daemon took (and keeps) shows what one daemon's `close` committed as
/// soon as the store announces the commit: the cache time-to-live is set to a minute here,
/// so only the announcement can make it show within the test's bound. Prints the delays.
#[test]
fn another_daemon_s_commit_reaches_a_kept_listing_when_announced() {
    use std::time::{Duration, Instant};
    let a = crate::mount::Mounted::shared_with(&[("CRONUSFS_CACHE_TTL_MS", "60000")]);
    let b = a.another_daemon();
    let job = a.job_dir();
    let in_b = b.mnt.join(job.strip_prefix(&a.mnt).unwrap());
    let names = |dir: &Path| -> Vec<String> {
        std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect()
    };
    let mut delays = Vec::new();
    for i in 0..20 {
        names(&in_b);
        names(&in_b); // B keeps this listing.
        let name = format!("f{i}");
        std::fs::write(job.join(&name), b"x").unwrap();
        let closed = Instant::now();
        while !names(&in_b).contains(&name) {
            assert!(
                closed.elapsed() < Duration::from_secs(20),
                "{name} never showed in B"
            );
            std::thread::sleep(Duration::from_millis(1));
        }
        delays.push(closed.elapsed());
    }
    delays.sort();
    eprintln!(
        "visibility in another daemon's kept listing: median {:?}, 90th {:?}, max {:?}",
        delays[10], delays[18], delays[19]
    );
}

/// Two daemons on one new shared store, each kernel told it may keep attributes and names
/// (and each daemon its caches) for a minute: `(a, b, a job directory through A, the same
/// through B)`.
fn two_daemons_keeping_a_minute() -> (
    crate::mount::Mounted,
    crate::mount::Mounted,
    std::path::PathBuf,
    std::path::PathBuf,
) {
    let (a, b) = crate::mount::Mounted::shared_pair_kept_a_minute();
    let job = a.job_dir();
    let in_b = b.mnt.join(job.strip_prefix(&a.mnt).unwrap());
    (a, b, job, in_b)
}

/// Waits (at most 20 s, else fails naming `what`) until `done`; returns how long it took.
fn wait_for(what: &str, done: &dyn Fn() -> bool) -> std::time::Duration {
    let start = std::time::Instant::now();
    while !done() {
        assert!(
            start.elapsed() < std::time::Duration::from_secs(20),
            "{what} never reached B"
        );
        std::thread::sleep(std::time::Duration::from_millis(1));
    }
    start.elapsed()
}

/// A new version committed through one daemon reaches `stat` through another although that
/// kernel was told it may keep attributes and names for a minute: the announcement makes the
/// daemon invalidate them. A file renamed away is gone from the other mount's cached names.
#[test]
fn another_daemon_s_commit_reaches_the_kernel_s_cached_attributes() {
    let (_a, _b, job, in_b) = two_daemons_keeping_a_minute();
    std::fs::write(job.join("f"), b"1").unwrap();
    wait_for("f", &|| std::fs::metadata(in_b.join("f")).is_ok());
    assert_eq!(std::fs::metadata(in_b.join("f")).unwrap().len(), 1); // B's kernel keeps it.
    std::fs::write(job.join("f"), b"12345").unwrap();
    let took = wait_for("the new size", &|| {
        std::fs::metadata(in_b.join("f")).is_ok_and(|m| m.len() == 5)
    });
    assert_eq!(std::fs::read(in_b.join("f")).unwrap(), b"12345");
    std::fs::rename(job.join("f"), job.join("g")).unwrap();
    let gone = wait_for("the rename", &|| std::fs::metadata(in_b.join("f")).is_err());
    assert!(std::fs::metadata(in_b.join("g")).is_ok());
    eprintln!("new size seen through B after {took:?}, rename after {gone:?}");
}

/// A name another daemon makes reaches a kernel told to keep its absence for a minute: an
/// announcement has the daemon make its kernel forget every missing name it was told of.
#[test]
fn another_daemon_s_new_name_reaches_a_kernel_that_kept_it_missing() {
    let (_a, _b, job, in_b) = two_daemons_keeping_a_minute();
    let mut delays = Vec::new();
    for i in 0..5 {
        let name = format!("n{i}");
        for _ in 0..2 {
            assert!(std::fs::metadata(in_b.join(&name)).is_err(), "kept missing");
        }
        std::fs::write(job.join(&name), b"x").unwrap();
        delays.push(wait_for(&name, &|| {
            std::fs::metadata(in_b.join(&name)).is_ok()
        }));
    }
    delays.sort();
    eprintln!("a new name through a kept absence: median {:?}", delays[2]);
}

#[test]
fn a_read_inside_a_scan_of_one_transaction_is_an_error_not_a_panic() {
    let s = open(&crate::services::pg_store_url());
    let iden = Iden::new("n").unwrap();
    s.add_rows(&[cronusfs::storage::Row::new(&iden, "p", 1, 10)])
        .unwrap();
    let txn = s.begin().unwrap();
    let mut inner = Vec::new();
    txn.visit_rows_by_id(&iden, &mut |_, _, _| inner.push(txn.rows_by_id(&iden)))
        .unwrap();
    // The transaction's one connection is busy with the scan: the nested read says so.
    assert!(
        matches!(inner.as_slice(), [Err(StorageError::Engine { .. })]),
        "{inner:?}"
    );
}

/// A directory's time moved by another daemon (a new file, a folder, a link, a removal)
/// reaches `stat` through a kernel told to keep attributes a minute.
#[test]
fn another_daemon_s_change_of_entries_reaches_the_directory_s_time() {
    let (_a, _b, job, in_b) = two_daemons_keeping_a_minute();
    let mtime = |p: &std::path::Path| std::fs::metadata(p).unwrap().modified().unwrap();
    std::fs::create_dir(job.join("d")).unwrap();
    wait_for("d", &|| in_b.join("d").is_dir());
    let changes: [&dyn Fn(); 4] = [
        &|| std::fs::write(job.join("d/f"), b"1").unwrap(),
        &|| std::fs::create_dir(job.join("d/sub")).unwrap(),
        &|| std::os::unix::fs::symlink("f", job.join("d/l")).unwrap(),
        &|| std::fs::remove_file(job.join("d/f")).unwrap(),
    ];
    for (i, change) in changes.iter().enumerate() {
        let seen = mtime(&in_b.join("d")); // B's kernel keeps it.
        std::thread::sleep(std::time::Duration::from_millis(5));
        change();
        let there = mtime(&job.join("d"));
        assert!(there > seen);
        let what = format!("change {i}: {there:?} (B had {seen:?})");
        wait_for(&what, &|| mtime(&in_b.join("d")) == there);
    }
}
