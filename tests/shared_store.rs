//! The PostgreSQL store as several hosts use it: separate engines (separate connection pools,
//! as separate processes would have) on one store, writing at once. Transactions are
//! serializable: read-modify-write never loses an update, conflicts are retried.

use std::sync::atomic::{AtomicU32, Ordering};

use cronusfs::storage::postgres::{PgEngine, PgUrl};
use cronusfs::storage::retry::transact;
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
