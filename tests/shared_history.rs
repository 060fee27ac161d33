//! History on a shared store (PostgreSQL, real server): hosts committing side by side never
//! change an answer about a time already read, and each host sees what the others committed
//! before a time it reads.

use std::sync::atomic::{AtomicUsize, Ordering};

use cronusfs::storage::postgres::{PgEngine, PgUrl};
use cronusfs::storage::retry::transact;
use cronusfs::storage::{Iden, Row, RowRead, RowStore, RowWrite, Storage, Valu};

fn open(url: &str) -> RowStore<PgEngine> {
    RowStore::with_engine(PgEngine::open(&PgUrl::parse(url).unwrap(), true).unwrap()).unwrap()
}

/// Returns every row of `s`, sorted.
fn all_rows(s: &dyn Storage) -> Vec<Row> {
    let mut rows: Vec<Row> = s
        .backup_rows(500)
        .map(|c| c.unwrap())
        .collect::<Vec<_>>()
        .concat();
    rows.sort_by_key(|r| format!("{r:?}"));
    rows
}

/// Commits transactions on `host` (number `h`), each setting a counter and adding a row: 30,
/// and more until the reader has read 10 times (at most 3,000); returns how many.
fn commit_many(host: &RowStore<PgEngine>, h: usize, reads: &AtomicUsize) -> i64 {
    let node = Iden::new(format!("host{h}")).unwrap();
    let mut n = 0i64;
    while n < 30 || (reads.load(Ordering::SeqCst) < 10 && n < 3000) {
        transact(host, |txn| {
            txn.set_rows_by_id_prop(&node, "n", &Valu::Int(n))?;
            let log = Iden::new(format!("log{h}-{n}")).unwrap();
            txn.add_rows(&[Row::new(&log, "n", n, n)])
        })
        .unwrap();
        n += 1;
    }
    n
}

#[test]
fn an_answer_about_a_past_time_never_changes_while_hosts_commit() {
    let url = crate::services::pg_store_url();
    let hosts: Vec<RowStore<PgEngine>> = (0..4).map(|_| open(&url)).collect();
    let reader = open(&url);
    let (finished, reads) = (AtomicUsize::new(0), AtomicUsize::new(0));
    let mut seen: Vec<(i64, Vec<Row>)> = Vec::new();
    let last: Vec<i64> = std::thread::scope(|scope| {
        let writers: Vec<_> = (hosts.iter().enumerate())
            .map(|(h, host)| {
                let (finished, reads) = (&finished, &reads);
                scope.spawn(move || {
                    let n = commit_many(host, h, reads);
                    finished.fetch_add(1, Ordering::SeqCst);
                    n - 1
                })
            })
            .collect();
        while finished.load(Ordering::SeqCst) < hosts.len() {
            reads.fetch_add(1, Ordering::SeqCst);
            let t = reader.history_bounds().unwrap().now;
            seen.push((t, all_rows(&*reader.as_of(t).unwrap())));
            // An earlier answer, read again while the hosts go on committing.
            let (t0, first) = &seen[seen.len() / 2];
            assert_eq!(&all_rows(&*reader.as_of(*t0).unwrap()), first, "as of {t0}");
        }
        writers.into_iter().map(|w| w.join().unwrap()).collect()
    });
    assert!(seen.len() >= 10, "the reader read while the hosts wrote");
    let grew = seen.windows(2).filter(|w| w[0].1 != w[1].1).count();
    assert!(grew > 0, "the reader saw commits land between its reads");
    for (t, rows) in &seen {
        assert_eq!(
            &all_rows(&*reader.as_of(*t).unwrap()),
            rows,
            "as of {t}, at the end"
        );
    }
    // Every host's last commit is before a time read now, on any host.
    let now = hosts[2].history_bounds().unwrap().now;
    let then = hosts[2].as_of(now).unwrap();
    for (h, last) in last.iter().enumerate() {
        let rows = then
            .rows_by_id(&Iden::new(format!("host{h}")).unwrap())
            .unwrap();
        assert_eq!(rows.len(), 1);
        assert_eq!(rows[0].valu, Valu::Int(*last), "host {h} as of {now}");
    }
}

/// Rewrites the shared store at `url` as format version 1 left it (see
/// `rocks_store::make_it_format_1`).
fn make_it_format_1(url: &str, keep_sessions: bool) {
    let engine = PgEngine::open(&PgUrl::parse(url).unwrap(), false).unwrap();
    crate::rocks_store::make_it_format_1(&engine, keep_sessions);
}

fn cronusfs(args: &[&str]) -> std::process::Output {
    std::process::Command::new(env!("CARGO_BIN_EXE_cronusfs"))
        .args(args)
        .output()
        .unwrap()
}

#[test]
fn a_shared_store_from_before_history_is_upgraded_by_command_once_its_daemons_stopped() {
    let url = crate::services::pg_store_url();
    let old = vec![Row::new(&Iden::new("a").unwrap(), "x", 1, 10)];
    {
        let s = open(&url);
        s.add_rows(&old).unwrap();
        s.blob_set("info/a", b"old").unwrap();
        let m = cronusfs::meta::Metastore::new(s);
        m.sessions().open("elsewhere", 4242, "/mnt/x").unwrap();
    }
    make_it_format_1(&url, true);
    let refused =
        RowStore::with_engine(PgEngine::open(&PgUrl::parse(&url).unwrap(), false).unwrap());
    let err = refused.err().unwrap().to_string();
    assert!(
        err.contains("version 1") && err.contains("cronusfs upgrade"),
        "{err}"
    );
    let out = cronusfs(&["upgrade", &url]);
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success() && said.contains("elsewhere pid 4242"),
        "{said}"
    );
    make_it_format_1(&url, false);
    let out = cronusfs(&["upgrade", &url]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("keeps history from"));
    let again = cronusfs(&["upgrade", &url]);
    assert!(String::from_utf8_lossy(&again.stdout).contains("up to date"));
    let s = RowStore::with_engine(PgEngine::open(&PgUrl::parse(&url).unwrap(), false).unwrap())
        .unwrap();
    let since = s.history_bounds().unwrap().since;
    s.del_rows_by_id(&Iden::new("a").unwrap()).unwrap();
    s.blob_set("info/a", b"new").unwrap();
    let then = s.as_of(since).unwrap();
    assert_eq!(then.rows_by_id(&Iden::new("a").unwrap()).unwrap(), old);
    assert_eq!(
        then.blob_get("info/a").unwrap().as_deref(),
        Some(&b"old"[..])
    );
    assert_eq!(s.check_indexes().unwrap(), Vec::<String>::new());
}
