//! The conformance cases of writes: deletes, sets and property renames as lifts see them,
//! blobs, the backup iterator, bad input, transactions and atomic batches.

use super::*;

pub fn deletes_are_seen_by_lifts(s: &dyn Storage) {
    seed(s);
    assert_eq!(s.del_rows_by_id(&iden("a")).unwrap(), 2);
    assert_eq!(s.rows_by_id(&iden("a")).unwrap(), vec![]);
    assert_eq!(ints(&s.rows_by_ge("x", 0, None).unwrap()), vec![2, 3]);
    let two = Valu::Int(2);
    assert_eq!(
        s.del_rows_by_prop(&PropQuery::new("x").valu(&two)).unwrap(),
        1
    );
    assert_eq!(
        s.rows_by_id(&iden("b")).unwrap(),
        vec![row("b", "y", "two", 21)]
    );
    assert_eq!(
        s.del_rows_by_id_prop(&iden("b"), "y", Some(&Valu::from("nope")))
            .unwrap(),
        0
    );
    assert_eq!(
        s.del_rows_by_id_prop(&iden("b"), "y", Some(&Valu::from("two")))
            .unwrap(),
        1
    );
    assert_eq!(s.rows_by_id(&iden("b")).unwrap(), vec![]);
    s.add_rows(&[row("c", "y", "three", 31), row("d", "x", 4, 40)])
        .unwrap();
    assert_eq!(
        s.del_join_by_prop(&PropQuery::new("y")).unwrap(),
        2,
        "all rows of node c"
    );
    assert_eq!(s.rows_by_id(&iden("c")).unwrap(), vec![]);
    assert_eq!(
        s.rows_by_prop(&PropQuery::new("x")).unwrap(),
        vec![row("d", "x", 4, 40)]
    );
    assert_eq!(s.del_rows_by_id_prop(&iden("d"), "x", None).unwrap(), 1);
    assert_eq!(s.size_by_prop(&PropQuery::new("x")).unwrap(), 0);
    assert_eq!(
        s.backup_rows(10).count(),
        0,
        "nothing left behind in any index"
    );
}

pub fn del_rows_deletes_the_named_rows(s: &dyn Storage) {
    s.add_rows(&[
        row("a", "x", 1, 10),
        row("a", "x", 2, 11),
        row("a", "y", "s", 12),
        row("b", "x", 1, 13),
    ])
    .unwrap();
    // A row is named by all four fields; rows that are not stored are skipped.
    s.del_rows(&[
        row("a", "x", 1, 10),
        row("a", "x", 2, 999),
        row("a", "y", "absent", 1),
        row("zz", "x", 1, 1),
    ])
    .unwrap();
    assert_eq!(
        s.rows_by_id(&iden("a")).unwrap(),
        vec![row("a", "x", 2, 11), row("a", "y", "s", 12)]
    );
    assert_eq!(
        s.rows_by_prop(&PropQuery::new("x").valu(&Valu::Int(1)))
            .unwrap(),
        vec![row("b", "x", 1, 13)],
        "the value index lost the row too"
    );
    assert!(matches!(
        s.del_rows(&[row("a", "x", 2, 11), row("a", "", 1, 1)]),
        Err(StorageError::BadProp { .. })
    ));
    assert_eq!(
        s.rows_by_id(&iden("a")).unwrap().len(),
        2,
        "a refused delete deleted nothing"
    );
    let txn = s.begin().unwrap();
    let rows = txn.rows_by_id(&iden("a")).unwrap();
    txn.del_rows(&rows).unwrap();
    assert_eq!(
        txn.rows_by_id(&iden("a")).unwrap(),
        vec![],
        "a transaction sees its own deletes"
    );
    txn.commit().unwrap();
    assert_eq!(s.rows_by_id(&iden("a")).unwrap(), vec![]);
    assert_eq!(s.rows_by_id(&iden("b")).unwrap().len(), 1);
}

pub fn set_rows_by_id_prop(s: &dyn Storage) {
    s.add_rows(&[
        row("a", "x", 1, 10),
        row("a", "x", 2, 11),
        row("a", "y", 5, 12),
    ])
    .unwrap();
    s.set_rows_by_id_prop(&iden("a"), "x", &Valu::from("new"))
        .unwrap();
    let xs = s.rows_by_id_prop(&iden("a"), "x", None).unwrap();
    assert_eq!(xs.len(), 1);
    assert_eq!(xs[0].valu, Valu::from("new"));
    assert!(
        xs[0].time > 1_600_000_000_000,
        "set stamps the current time"
    );
    assert_eq!(s.rows_by_id_prop(&iden("a"), "y", None).unwrap().len(), 1);
    s.set_rows_by_id_prop(&iden("z"), "x", &Valu::Int(7))
        .unwrap();
    assert_eq!(
        ints(&s.rows_by_id_prop(&iden("z"), "x", None).unwrap()),
        vec![7]
    );
}

pub fn update_property(s: &dyn Storage) {
    seed(s);
    assert_eq!(s.update_property("x", "size").unwrap(), 3);
    assert_eq!(s.size_by_prop(&PropQuery::new("x")).unwrap(), 0);
    let moved = s.rows_by_prop(&PropQuery::new("size")).unwrap();
    assert_eq!(
        moved,
        vec![
            row("a", "size", 1, 10),
            row("b", "size", 2, 20),
            row("c", "size", 3, 30)
        ]
    );
    assert_eq!(ints(&s.rows_by_ge("size", 2, None).unwrap()), vec![2, 3]);
    assert!(matches!(
        s.update_property("y", "y"),
        Err(StorageError::BadProp { .. })
    ));
    assert!(matches!(
        s.update_property("y", ""),
        Err(StorageError::BadProp { .. })
    ));
}

pub fn update_property_valu(s: &dyn Storage) {
    s.add_rows(&[
        row("a", "x", 1, 10),
        row("b", "x", 1, 11),
        row("c", "x", 2, 12),
    ])
    .unwrap();
    assert_eq!(
        s.update_property_valu("x", &Valu::Int(1), &Valu::Int(100))
            .unwrap(),
        2
    );
    assert_eq!(
        ints(&s.rows_by_ge("x", 0, None).unwrap()),
        vec![2, 100, 100]
    );
    assert_eq!(
        s.rows_by_id(&iden("a")).unwrap(),
        vec![row("a", "x", 100, 10)],
        "time kept"
    );
    assert_eq!(
        s.update_property_valu("x", &Valu::Int(5), &Valu::Int(6))
            .unwrap(),
        0
    );
    assert!(matches!(
        s.update_property_valu("x", &Valu::Int(2), &Valu::from("2")),
        Err(StorageError::BadValu(_))
    ));
    assert!(matches!(
        s.update_property_valu("x", &Valu::Int(2), &Valu::Int(2)),
        Err(StorageError::BadValu(_))
    ));
    assert_eq!(
        ints(&s.rows_by_id(&iden("c")).unwrap()),
        vec![2],
        "a refused update changes nothing"
    );
}

/// Blobs by prefix with their values: one scan, in key order, what a transaction wrote (and
/// deleted) included before it commits, and in a view of the past as they were.
pub fn blobs_with_a_prefix_come_with_their_values(s: &dyn Storage) {
    for (k, v) in [
        ("d/a", &b"1"[..]),
        ("d/b/c", b"22"),
        ("d", b"x"),
        ("e/a", b"3"),
    ] {
        s.blob_set(k, v).unwrap();
    }
    let want = |pairs: &[(&str, &[u8])]| -> Vec<(String, Vec<u8>)> {
        (pairs.iter())
            .map(|(k, v)| (k.to_string(), v.to_vec()))
            .collect()
    };
    assert_eq!(
        s.blobs_with_prefix("d/").unwrap(),
        want(&[("d/a", b"1"), ("d/b/c", b"22")])
    );
    let then = s.history_bounds().unwrap().now;
    let txn = s.begin().unwrap();
    txn.blob_set("d/a0", b"new").unwrap();
    txn.blob_del("d/a").unwrap();
    assert_eq!(
        txn.blobs_with_prefix("d/").unwrap(),
        want(&[("d/a0", b"new"), ("d/b/c", b"22")])
    );
    txn.commit().unwrap();
    let past = s.as_of(then).unwrap();
    assert_eq!(
        past.blobs_with_prefix("d/").unwrap(),
        want(&[("d/a", b"1"), ("d/b/c", b"22")])
    );
    assert!(s.blobs_with_prefix("none/").unwrap().is_empty());
}

pub fn blobs(s: &dyn Storage) {
    assert_eq!(s.blob_get("k").unwrap(), None);
    assert!(!s.blob_has("k").unwrap());
    let big: Vec<u8> = (0..(1 << 20)).map(|i| (i % 251) as u8).collect();
    let kinds: [(&str, &[u8]); 5] = [
        ("empty", b""),
        ("nul", b"\0\0\xff\0"),
        ("text", "héllo wörld".as_bytes()),
        ("syn:core:created", &1_700_000_000_000i64.to_be_bytes()),
        ("big", &big),
    ];
    for (k, v) in kinds {
        s.blob_set(k, v).unwrap();
    }
    for (k, v) in kinds {
        assert_eq!(s.blob_get(k).unwrap().as_deref(), Some(v), "blob {k}");
        assert!(s.blob_has(k).unwrap());
    }
    assert_eq!(
        s.blob_keys().unwrap(),
        vec!["big", "empty", "nul", "syn:core:created", "text"]
    );
    s.blob_set("text", b"replaced").unwrap();
    assert_eq!(s.blob_get("text").unwrap().unwrap(), b"replaced");
    assert_eq!(s.blob_del("empty").unwrap(), b"");
    assert!(!s.blob_has("empty").unwrap());
    assert!(matches!(
        s.blob_del("empty"),
        Err(StorageError::NoSuchBlob(_))
    ));
    assert!(matches!(
        s.blob_set("", b"x"),
        Err(StorageError::BadBlobKey { .. })
    ));
    assert_eq!(
        s.rows_by_prop(&PropQuery::new("big")).unwrap(),
        vec![],
        "blobs are not rows"
    );
}

pub fn backup_iterator(s: &dyn Storage) {
    let mut rows = seed(s);
    let lo = "0".repeat(32);
    let hi = "f".repeat(32);
    rows.extend([
        row(&lo, "edge", 1, 1),
        row(&hi, "edge", 2, 2),
        row("\u{10FFFF}", "edge", 3, 3),
        row("\0", "edge", 4, 4),
    ]);
    s.add_rows(&rows[5..]).unwrap();
    for chunk in [1, 2, 3, 1000] {
        let chunks: Vec<Vec<Row>> = s.backup_rows(chunk).map(|c| c.unwrap()).collect();
        assert!(chunks.iter().all(|c| !c.is_empty() && c.len() <= chunk));
        let all: Vec<Row> = chunks.concat();
        assert_eq!(sorted(all), sorted(rows.clone()), "chunk size {chunk}");
    }
    let copy = cronusfs::storage::MemoryStore::new();
    for chunk in s.backup_rows(2) {
        copy.add_rows(&chunk.unwrap()).unwrap();
    }
    for r in &rows {
        assert_eq!(
            copy.rows_by_id(&r.iden).unwrap(),
            s.rows_by_id(&r.iden).unwrap()
        );
    }
}

pub fn bad_input(s: &dyn Storage) {
    let long = "p".repeat(1025);
    let max = "p".repeat(1024);
    assert!(matches!(
        s.add_rows(&[row("a", "", 1, 1)]),
        Err(StorageError::BadProp { .. })
    ));
    assert!(matches!(
        s.add_rows(&[row("a", &long, 1, 1)]),
        Err(StorageError::BadProp { .. })
    ));
    assert!(matches!(
        s.rows_by_prop(&PropQuery::new("")),
        Err(StorageError::BadProp { .. })
    ));
    assert!(matches!(
        s.rows_by_ge(&long, 1, None),
        Err(StorageError::BadProp { .. })
    ));
    assert!(matches!(
        s.set_rows_by_id_prop(&iden("a"), "", &Valu::Int(1)),
        Err(StorageError::BadProp { .. })
    ));
    assert!(matches!(Iden::new(""), Err(StorageError::BadIden { .. })));
    s.add_rows(&[row("a", &max, 1, 1)]).unwrap();
    assert_eq!(s.size_by_prop(&PropQuery::new(&max)).unwrap(), 1);
    assert_eq!(
        s.rows_by_id(&iden("a")).unwrap().len(),
        1,
        "refused calls wrote nothing"
    );
}

pub fn transactions(s: &dyn Storage) {
    seed(s);
    {
        let txn = s.begin().unwrap();
        txn.add_rows(&[row("t", "x", 50, 50)]).unwrap();
        assert_eq!(txn.del_rows_by_id(&iden("a")).unwrap(), 2);
        assert_eq!(
            ints(&txn.rows_by_ge("x", 0, None).unwrap()),
            vec![2, 3, 50],
            "sees its own writes"
        );
        assert_eq!(txn.size_by_prop(&PropQuery::new("x")).unwrap(), 3);
        txn.blob_set("b", b"1").unwrap();
        assert_eq!(txn.blob_keys().unwrap(), vec!["b", "syn:core:created"]);
        // Dropped without commit: all discarded.
    }
    assert_eq!(ints(&s.rows_by_ge("x", 0, None).unwrap()), vec![1, 2, 3]);
    assert!(!s.blob_has("b").unwrap());
    let txn = s.begin().unwrap();
    txn.add_rows(&[row("t", "x", 50, 50)]).unwrap();
    assert_eq!(
        txn.update_property_valu("x", &Valu::Int(50), &Valu::Int(51))
            .unwrap(),
        1
    );
    txn.del_rows_by_id(&iden("a")).unwrap();
    txn.blob_set("b", b"1").unwrap();
    txn.commit().unwrap();
    assert_eq!(ints(&s.rows_by_ge("x", 0, None).unwrap()), vec![2, 3, 51]);
    assert_eq!(s.blob_get("b").unwrap().unwrap(), b"1");
    let txn = s.begin().unwrap();
    txn.commit().unwrap();
}

pub fn prop_prefixes_do_not_mix(s: &dyn Storage) {
    s.add_rows(&[
        row("a", "p", 1, 1),
        row("a", "pq", 2, 2),
        row("a", "p\0", 3, 3),
        row("a", "p:q", 4, 4),
    ])
    .unwrap();
    for (p, v) in [("p", 1), ("pq", 2), ("p\0", 3), ("p:q", 4)] {
        assert_eq!(
            ints(&s.rows_by_prop(&PropQuery::new(p)).unwrap()),
            vec![v],
            "prop {p:?}"
        );
        assert_eq!(ints(&s.rows_by_ge(p, i64::MIN, None).unwrap()), vec![v]);
        assert_eq!(
            ints(&s.rows_by_id_prop(&iden("a"), p, None).unwrap()),
            vec![v]
        );
    }
    s.add_rows(&[row("ab", "p", 9, 9)]).unwrap();
    assert_eq!(
        s.rows_by_id(&iden("a")).unwrap().len(),
        4,
        "iden a does not see iden ab"
    );
}

pub fn add_rows_is_atomic(s: &dyn Storage) {
    let rows: Vec<Row> = (0..5000)
        .map(|n| row(&format!("n{n}"), "x", n, n))
        .collect();
    let mut bad = rows.clone();
    bad.push(row("z", "", 1, 1));
    assert!(s.add_rows(&bad).is_err());
    assert_eq!(
        s.size_by_prop(&PropQuery::new("x")).unwrap(),
        0,
        "a refused batch writes nothing"
    );
    s.add_rows(&rows).unwrap();
    assert_eq!(s.size_by_prop(&PropQuery::new("x")).unwrap(), 5000);
    assert_eq!(s.size_by_range("x", 1000, 2000, None).unwrap(), 1000);
}

/// A new store records when it was made in blob `syn:core:created` (8-byte big-endian epoch
/// ms), as every Synapse storage layer does, whichever backend made it.
pub fn a_new_store_records_when_it_was_made(s: &dyn Storage) {
    let raw = s
        .blob_get("syn:core:created")
        .unwrap()
        .expect("syn:core:created");
    let made = i64::from_be_bytes(raw.as_slice().try_into().expect("8 bytes"));
    let now = cronusfs::storage::now_millis();
    assert!(
        (now - 3_600_000..=now).contains(&made),
        "{made} vs now {now}"
    );
}
