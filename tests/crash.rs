//! Process death: a child process (this test binary, re-run on one test) commits transactions
//! in a loop until it is killed with SIGKILL at a random moment. After reopening, every
//! transaction is there whole or not at all, and every one the child reported is there. On a
//! RocksDB store and on a PostgreSQL store (a real server, `services.rs`).

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use cronusfs::storage::location::{self, Location};
use cronusfs::storage::{PropQuery, RowRead, Storage};

use crate::conformance::row;

const CHILD_ENV: &str = "CRONUSFS_CRASH_CHILD_STORE";
const ROWS_PER_TXN: usize = 40;

/// The child's body, run only by the crash test (with `--ignored`).
#[test]
#[ignore = "the child process of transactions_survive_sigkill_whole_or_not_at_all"]
fn crash_child_writer() {
    let Ok(name) = std::env::var(CHILD_ENV) else {
        return;
    };
    let store = open(&name);
    for n in 0i64.. {
        let rows: Vec<_> = (0..ROWS_PER_TXN)
            .map(|k| row(&format!("t{n}-{k}"), "txn", n, k as i64))
            .collect();
        let txn = store.begin().unwrap();
        txn.add_rows(&rows).unwrap();
        txn.blob_set(&format!("txn{n}"), &n.to_be_bytes()).unwrap();
        txn.commit().unwrap();
        println!("committed {n}");
    }
}

fn random_delay(round: u64) -> Duration {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos() as u64;
    Duration::from_millis((nanos ^ round.wrapping_mul(7919)) % 60)
}

fn open(name: &str) -> Box<dyn Storage> {
    let location = Location::parse(std::path::Path::new(name)).unwrap();
    location::create(&location, None).unwrap().rows
}

#[test]
fn transactions_survive_sigkill_whole_or_not_at_all() {
    for round in 0..4 {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("store");
        sigkill_a_writer_of(path.to_str().unwrap(), round);
    }
}

#[test]
fn transactions_on_postgres_survive_sigkill_whole_or_not_at_all() {
    for round in 0..4 {
        sigkill_a_writer_of(&crate::services::pg_store_url(), round);
    }
}

/// Kills a child committing transactions to store `name` (made here) at a random moment, then
/// checks what the store holds.
fn sigkill_a_writer_of(name: &str, round: u64) {
    {
        drop(open(name));
        let path = name;
        let mut child = Command::new(std::env::current_exe().unwrap())
            .args([
                "crash::crash_child_writer",
                "--exact",
                "--ignored",
                "--nocapture",
                "--test-threads=1",
            ])
            .env(CHILD_ENV, path)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let (tx, rx) = mpsc::channel();
        let stdout = child.stdout.take().unwrap();
        let reader = std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if let Some(n) = line.strip_prefix("committed ") {
                    let _ = tx.send(n.parse::<i64>().unwrap());
                }
            }
        });
        let first = rx
            .recv_timeout(Duration::from_secs(60))
            .expect("the child commits");
        std::thread::sleep(random_delay(round));
        child.kill().unwrap(); // SIGKILL
        child.wait().unwrap();
        reader.join().unwrap();
        let acked: Vec<i64> = std::iter::once(first).chain(rx.try_iter()).collect();
        let last_acked = *acked.last().unwrap();

        let store = open(name);
        let rows = store.rows_by_prop(&PropQuery::new("txn")).unwrap();
        let mut per_txn = std::collections::BTreeMap::<i64, usize>::new();
        for r in &rows {
            *per_txn.entry(r.valu.as_int().unwrap()).or_default() += 1;
        }
        for (n, count) in &per_txn {
            assert_eq!(
                *count, ROWS_PER_TXN,
                "round {round}: transaction {n} is partial"
            );
            assert!(
                store.blob_has(&format!("txn{n}")).unwrap(),
                "transaction {n} lost its blob"
            );
        }
        for n in 0..=last_acked {
            assert_eq!(
                per_txn.get(&n),
                Some(&ROWS_PER_TXN),
                "round {round}: acknowledged {n} lost"
            );
        }
        let stored: Vec<i64> = per_txn.keys().copied().collect();
        assert_eq!(
            stored,
            (0..stored.len() as i64).collect::<Vec<_>>(),
            "commits are a prefix"
        );
        let txn_blobs = (store.blob_keys().unwrap().iter())
            .filter(|k| k.starts_with("txn"))
            .count();
        assert_eq!(txn_blobs, per_txn.len(), "no blob without its rows");
    }
}
