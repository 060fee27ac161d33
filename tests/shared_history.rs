//! History on a shared store (PostgreSQL, real server): hosts committing side by side never
//! change an answer about a time already read, and each host sees what the others committed
//! before a time it reads.

use std::sync::atomic::{AtomicUsize, Ordering};

use cronusfs::storage::postgres::{PgEngine, PgUrl};
use cronusfs::storage::retry::transact;
use cronusfs::storage::{Iden, Row, RowRead, RowStore, Storage, Valu};

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

/// Commits 30 transactions on `host` (number `h`), each setting a counter and adding a row.
fn commit_many(host: &RowStore<PgEngine>, h: usize) {
    let node = Iden::new(format!("host{h}")).unwrap();
    for n in 0..30i64 {
        transact(host, |txn| {
            txn.set_rows_by_id_prop(&node, "n", &Valu::Int(n))?;
            let log = Iden::new(format!("log{h}-{n}")).unwrap();
            txn.add_rows(&[Row::new(&log, "n", n, n)])
        })
        .unwrap();
    }
}

#[test]
fn an_answer_about_a_past_time_never_changes_while_hosts_commit() {
    let url = crate::services::pg_store_url();
    let hosts: Vec<RowStore<PgEngine>> = (0..4).map(|_| open(&url)).collect();
    let reader = open(&url);
    let finished = AtomicUsize::new(0);
    let mut seen: Vec<(i64, Vec<Row>)> = Vec::new();
    std::thread::scope(|scope| {
        for (h, host) in hosts.iter().enumerate() {
            let finished = &finished;
            scope.spawn(move || {
                commit_many(host, h);
                finished.fetch_add(1, Ordering::SeqCst);
            });
        }
        while finished.load(Ordering::SeqCst) < hosts.len() {
            let t = reader.history_bounds().unwrap().now;
            seen.push((t, all_rows(&*reader.as_of(t).unwrap())));
            // An earlier answer, read again while the hosts go on committing.
            let (t0, first) = &seen[seen.len() / 2];
            assert_eq!(&all_rows(&*reader.as_of(*t0).unwrap()), first, "as of {t0}");
        }
    });
    assert!(seen.len() > 3, "the reader read while the hosts wrote");
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
    for h in 0..hosts.len() {
        let rows = then
            .rows_by_id(&Iden::new(format!("host{h}")).unwrap())
            .unwrap();
        assert_eq!(rows.len(), 1);
        assert_eq!(rows[0].valu, Valu::Int(29), "host {h} as of {now}");
    }
}
