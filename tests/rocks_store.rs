//! RocksDB-specific behaviour: reopening gives the same answers, a store in use cannot be opened
//! again (in this process or another), a missing store and a foreign format version are clear
//! errors, a store from before history was kept is upgraded in place.

use std::process::Command;

use cronusfs::storage::engine::{Cf, Engine, EngineRead, WriteBatch};
use cronusfs::storage::keys::{META_FORMAT_VERSION, META_HISTORY_SINCE};
use cronusfs::storage::rocks::RocksEngine;
use cronusfs::storage::{
    Iden, PropQuery, RocksStore, Row, RowRead, RowWrite, Storage, StorageError, Valu,
};

use crate::conformance::{row, sorted};

fn answers(s: &RocksStore) -> Vec<String> {
    let v = Valu::from("same");
    vec![
        format!(
            "{:?}",
            sorted(
                s.backup_rows(7)
                    .map(|c| c.unwrap())
                    .collect::<Vec<_>>()
                    .concat()
            )
        ),
        format!(
            "{:?}",
            s.rows_by_prop(&PropQuery::new("n").limit(10)).unwrap()
        ),
        format!("{:?}", s.rows_by_range("n", -50, 50, None).unwrap()),
        format!(
            "{:?}",
            s.join_by_prop(&PropQuery::new("tag").valu(&v)).unwrap()
        ),
        format!("{:?}", s.blob_keys().unwrap()),
        format!("{:?}", s.blob_get("big").unwrap()),
        format!("{:?}", s.created().unwrap()),
    ]
}

#[test]
fn reopen_gives_the_same_answers() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("store");
    let before = {
        let s = RocksStore::create(&path).unwrap();
        let rows: Vec<Row> = (-100..100)
            .map(|n| row(&format!("i{n}"), "n", n, n * 3))
            .collect();
        s.add_rows(&rows).unwrap();
        s.add_rows(&[
            row("i1", "tag", "same", 1),
            row("i2", "tag", "same", 2),
            row("x", "long", "L".repeat(5000).as_str(), 9),
        ])
        .unwrap();
        s.del_rows_by_id(&Iden::new("i5").unwrap()).unwrap();
        s.blob_set("big", &vec![7u8; 3 << 20]).unwrap();
        let txn = s.begin().unwrap();
        txn.add_rows(&[row("t", "n", 1000, 1)]).unwrap();
        txn.commit().unwrap();
        let txn = s.begin().unwrap();
        txn.add_rows(&[row("dropped", "n", 2000, 1)]).unwrap();
        drop(txn);
        s.sync().unwrap();
        answers(&s)
    };
    let again = RocksStore::open(&path).unwrap();
    assert_eq!(answers(&again), before);
    assert_eq!(
        again.size_by_ge("n", 1000, None).unwrap(),
        1,
        "committed kept, dropped gone"
    );
}

#[test]
fn a_store_in_use_cannot_be_opened_twice() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("store");
    let s = RocksStore::create(&path).unwrap();
    s.add_rows(&[row("a", "x", 1, 1)]).unwrap();
    assert!(matches!(
        RocksStore::open(&path),
        Err(StorageError::Locked { .. })
    ));

    let out = Command::new(env!("CARGO_BIN_EXE_cronusfs"))
        .args([
            "--store",
            path.to_str().unwrap(),
            "--wait",
            "0",
            "rows",
            "get",
            "a",
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("in use by another process"), "stderr: {err}");
    assert_eq!(err.lines().count(), 1, "one line: {err}");
    // Nothing was damaged: the holder still reads and writes, and after it closes others can.
    s.add_rows(&[row("a", "x", 2, 2)]).unwrap();
    drop(s);
    let s = RocksStore::open(&path).unwrap();
    assert_eq!(s.rows_by_id(&Iden::new("a").unwrap()).unwrap().len(), 2);
}

#[test]
fn missing_store_and_foreign_format_are_clear_errors() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("nothing-here");
    let err = RocksStore::open(&path).unwrap_err();
    assert!(matches!(err, StorageError::NoStore { .. }));
    assert!(!path.exists(), "opening does not create");

    let path = dir.path().join("store");
    drop(RocksStore::create(&path).unwrap());
    {
        let engine = RocksEngine::open(&path, false).unwrap();
        let mut b = WriteBatch::new();
        b.put(
            Cf::Meta,
            META_FORMAT_VERSION.to_vec(),
            99u32.to_be_bytes().to_vec(),
        );
        engine.write(b).unwrap();
    }
    let err = RocksStore::open(&path).unwrap_err();
    assert!(
        matches!(
            err,
            StorageError::FormatVersion {
                found: 99,
                supported: 2
            }
        ),
        "{err:?}"
    );
    assert!(err.to_string().contains("version 99"));
}

#[test]
fn unlogged_blobs_are_readable_at_once_and_kept_once_persisted() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("store");
    let big = vec![7u8; 3 << 20];
    {
        let s = RocksStore::create(&path).unwrap();
        s.blob_set_unlogged("chunk/a", &big).unwrap();
        s.blob_set("logged", b"x").unwrap();
        assert_eq!(s.blob_get("chunk/a").unwrap().as_deref(), Some(&big[..]));
        s.persist_blobs().unwrap();
        assert!(matches!(
            s.blob_set_unlogged("", b"v"),
            Err(StorageError::BadBlobKey { .. })
        ));
    }
    let s = RocksStore::open(&path).unwrap();
    assert_eq!(s.blob_get("chunk/a").unwrap().as_deref(), Some(&big[..]));
    assert_eq!(s.blob_get("logged").unwrap().as_deref(), Some(&b"x"[..]));
}

#[test]
fn large_contents_written_without_the_log_survive_a_reopen() {
    use std::io::Read;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("store");
    let mut x = 1u64;
    let bytes: Vec<u8> = (0..(20 << 20) + 5)
        .map(|_| {
            x = x
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            (x >> 33) as u8
        })
        .collect();
    let id = {
        let s = RocksStore::create(&path).unwrap();
        let content = cronusfs::meta::ContentStore::new(&s);
        let manifest = content.write_chunks(&mut &bytes[..], &mut |_| {}).unwrap();
        let txn = s.begin().unwrap();
        cronusfs::meta::ContentStore::commit_manifest(&*txn, &manifest).unwrap();
        txn.commit().unwrap();
        manifest.id
    };
    let s = RocksStore::open(&path).unwrap();
    let content = cronusfs::meta::ContentStore::new(&s);
    assert!(content.verify(id).unwrap().is_empty());
    let mut back = Vec::new();
    content.reader(id).unwrap().read_to_end(&mut back).unwrap();
    assert!(back == bytes);
}

/// Rewrites the store of `engine` as format version 1 wrote it: row values without their
/// birth tag (`0xFF` and a 12-byte stamp), no history, no history-since; without
/// `keep_sessions`, its sessions' rows gone too. For the upgrade tests of every engine.
pub fn make_it_format_1(engine: &impl Engine, keep_sessions: bool) {
    let mut b = WriteBatch::new();
    for cf in [Cf::ByIden, Cf::ByPropValu, Cf::ByPropTime] {
        engine
            .scan(cf, &[], None, &mut |k, v| {
                if !keep_sessions && k.starts_with(b"cronusfs:session:") {
                    b.delete(cf, k.to_vec());
                    return Ok(true);
                }
                let untagged = if v.first() == Some(&0xFF) {
                    &v[13..]
                } else {
                    v
                };
                b.put(cf, k.to_vec(), untagged.to_vec());
                Ok(true)
            })
            .unwrap();
    }
    let history = [
        Cf::PastByIden,
        Cf::PastByPropValu,
        Cf::PastByPropTime,
        Cf::BlobHistory,
        Cf::History,
    ];
    for cf in history {
        engine
            .scan(cf, &[], None, &mut |k, _| {
                b.delete(cf, k.to_vec());
                Ok(true)
            })
            .unwrap();
    }
    b.put(
        Cf::Meta,
        META_FORMAT_VERSION.to_vec(),
        1u32.to_be_bytes().to_vec(),
    );
    b.delete(Cf::Meta, META_HISTORY_SINCE.to_vec());
    engine.write(b).unwrap();
}

#[test]
fn a_store_from_before_history_is_upgraded_when_opened() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("store");
    let old_rows = vec![
        row("a", "x", 1, 10),
        row("a", "y", "z".repeat(200).as_str(), 11),
    ];
    {
        let s = RocksStore::create(&path).unwrap();
        s.add_rows(&old_rows).unwrap();
        s.blob_set("info/a", b"old info").unwrap();
        s.blob_set("content/m", b"manifest").unwrap();
    }
    make_it_format_1(&RocksEngine::open(&path, false).unwrap(), true);
    let before = cronusfs::storage::history::now_micros();
    let s = RocksStore::open(&path).unwrap();
    let bounds = s.history_bounds().unwrap();
    assert!(
        bounds.since >= before,
        "history begins at the upgrade: {bounds:?}"
    );
    assert_eq!(
        sorted(s.rows_by_id(&Iden::new("a").unwrap()).unwrap()),
        old_rows
    );
    // What was there at the upgrade stays readable as it was once changed.
    s.del_rows_by_id_prop(&Iden::new("a").unwrap(), "y", None)
        .unwrap();
    s.add_rows(&[row("b", "x", 2, 20)]).unwrap();
    s.blob_set("info/a", b"new info").unwrap();
    let then = s.as_of(bounds.since).unwrap();
    assert_eq!(
        sorted(then.rows_by_id(&Iden::new("a").unwrap()).unwrap()),
        old_rows
    );
    assert_eq!(then.rows_by_id(&Iden::new("b").unwrap()).unwrap(), vec![]);
    assert_eq!(
        then.blob_get("info/a").unwrap().as_deref(),
        Some(&b"old info"[..])
    );
    assert_eq!(
        then.blob_get("content/m").unwrap().as_deref(),
        Some(&b"manifest"[..])
    );
    assert_eq!(s.check_indexes().unwrap(), Vec::<String>::new());
    drop((then, s));
    let s = RocksStore::open(&path).unwrap();
    assert_eq!(
        s.history_bounds().unwrap().since,
        bounds.since,
        "upgraded once"
    );
    assert!(matches!(
        s.as_of(bounds.since - 1),
        Err(StorageError::BeforeHistory { .. })
    ));
}

#[test]
fn a_clock_behind_a_time_already_read_stamps_after_it() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("store");
    let read = {
        let s = RocksStore::create(&path).unwrap();
        s.add_rows(&[row("a", "x", 1, 1)]).unwrap();
        s.history_bounds().unwrap().now
    };
    // As if the host's clock had been an hour ahead when that time was read, and stepped
    // back since: the store keeps the time it settled.
    let ahead = read + 3_600_000_000;
    {
        let engine = RocksEngine::open(&path, false).unwrap();
        let mut b = WriteBatch::new();
        b.put(
            Cf::Meta,
            b"history-horizon".to_vec(),
            ahead.to_be_bytes().to_vec(),
        );
        engine.write(b).unwrap();
    }
    let s = RocksStore::open(&path).unwrap();
    s.add_rows(&[row("b", "x", 2, 2)]).unwrap();
    let commits = s.commits(ahead, i64::MAX).unwrap();
    assert_eq!(
        commits.len(),
        1,
        "the new commit is stamped after the time read"
    );
    assert_eq!(commits[0].nodes, ["b"]);
    let then = s.as_of(read).unwrap();
    assert_eq!(then.rows_by_id(&Iden::new("b").unwrap()).unwrap(), vec![]);
}

#[test]
fn check_indexes_finds_a_past_entry_missing_from_one_past_index() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("store");
    {
        let s = RocksStore::create(&path).unwrap();
        s.add_rows(&[row("a", "x", 1, 10)]).unwrap();
        s.del_rows_by_id(&Iden::new("a").unwrap()).unwrap();
        s.add_rows(&[row("a", "x", 2, 11)]).unwrap();
        assert!(s.check_indexes().unwrap().is_empty(), "a sound store");
    }
    {
        let engine = RocksEngine::open(&path, false).unwrap();
        let mut first = None;
        engine
            .scan(Cf::PastByPropValu, &[], None, &mut |k, _| {
                first = Some(k.to_vec());
                Ok(false)
            })
            .unwrap();
        let mut b = WriteBatch::new();
        b.delete(Cf::PastByPropValu, first.expect("the dead row's entry"));
        engine.write(b).unwrap();
    }
    let problems = RocksStore::open(&path).unwrap().check_indexes().unwrap();
    assert!(
        problems
            .iter()
            .any(|p| p.starts_with("past_by_prop_valu: missing")),
        "{problems:?}"
    );
    assert!(
        problems.iter().any(|p| p.contains("1 / 0 / 1 entries")),
        "{problems:?}"
    );
}

/// The index check reads each index a page of 10,000 entries at a time and first compares
/// sums of hashes: an entry missing from one index past the first page, and an entry whose
/// value was swapped for another row's (same count, same keys), are both named.
#[test]
fn check_indexes_names_an_entry_past_the_first_page_and_a_swapped_value() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("store");
    {
        let s = RocksStore::create(&path).unwrap();
        for batch in 0..12 {
            let rows: Vec<Row> = (0..1_000)
                .map(|i| row(&format!("n{batch:02}-{i:04}"), "x", batch * 1_000 + i, 10))
                .collect();
            s.add_rows(&rows).unwrap();
        }
        assert!(s.check_indexes().unwrap().is_empty(), "a sound store");
    }
    {
        let engine = RocksEngine::open(&path, false).unwrap();
        let mut entries = Vec::new();
        engine
            .scan(Cf::ByPropValu, &[], None, &mut |k, v| {
                entries.push((k.to_vec(), v.to_vec()));
                Ok(true)
            })
            .unwrap();
        assert_eq!(entries.len(), 12_000);
        let mut b = WriteBatch::new();
        // The last entry of the index, well past the first page.
        b.delete(Cf::ByPropValu, entries[11_999].0.clone());
        // The first row's entry now holds the value of a row of the last batch.
        let swapped = entries[11_998].1.clone();
        assert_ne!(entries[0].1, swapped, "rows of two batches have two values");
        b.put(Cf::ByPropValu, entries[0].0.clone(), swapped);
        engine.write(b).unwrap();
    }
    let problems = RocksStore::open(&path).unwrap().check_indexes().unwrap();
    let missing = |row: &str| {
        problems
            .iter()
            .filter(|p| p.contains(row) && p.contains("is missing from rows_by_prop_valu"))
            .count()
    };
    assert_eq!(
        missing("n11-0999"),
        2,
        "from both other indexes: {problems:?}"
    );
    assert_eq!(missing("n00-0000"), 2, "the swapped value: {problems:?}");
}
