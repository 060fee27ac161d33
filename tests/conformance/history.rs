//! The conformance cases of history: reads of the store as of a past time (`as_of`) answer as
//! the store did then, timeless rows and blobs read live, and views of the past refuse writes.

use std::sync::atomic::{AtomicBool, Ordering};

use cronusfs::storage::{HistoryBounds, IntLift};

use super::*;

/// Labelled answers of a store (or a view of it), each formatted, to compare two reads whole.
type Answers = Vec<(String, String)>;

fn bounds(s: &dyn Storage) -> HistoryBounds {
    s.history_bounds().unwrap()
}

/// Returns the store's settled clock: every commit so far is visible at it, none after.
fn now(s: &dyn Storage) -> i64 {
    bounds(s).now
}

fn view(s: &dyn Storage, at: i64) -> Box<dyn Storage> {
    s.as_of(at)
        .unwrap_or_else(|e| panic!("as_of({at}) refused: {e}"))
}

/// Returns each call's answer (the call must succeed), labelled with `ctx` and the call.
macro_rules! answers {
    ($ctx:expr; $($call:expr),+ $(,)?) => {{
        let ctx = $ctx;
        [$((format!("{ctx} {}", stringify!($call)), format!("{:?}", $call.unwrap()))),+]
    }};
}

/// Asserts that each call (a write through a view of the past) fails with `ReadOnly`.
macro_rules! read_only {
    ($($call:expr),+ $(,)?) => {
        $(
            let got = $call;
            let what = stringify!($call);
            assert!(matches!(got, Err(StorageError::ReadOnly)), "{what}: {got:?}");
        )+
    };
}

/// Asserts that `got` (a view as of `at`) gives exactly the answers `want` recorded then.
fn assert_answers(want: &Answers, got: &Answers, at: i64) {
    assert_eq!(want.len(), got.len());
    for ((what, w), (_, g)) in want.iter().zip(got) {
        assert_eq!(g, w, "{what} as of {at}");
    }
}

/// Returns every row of `s` through its backup iterator, sorted.
fn backup(s: &dyn Storage) -> Vec<Row> {
    sorted(
        s.backup_rows(2)
            .map(|c| c.unwrap())
            .collect::<Vec<_>>()
            .concat(),
    )
}

/// Answers of lookups by iden and lifts by prop (values, time windows, limits).
fn row_answers(s: &dyn Storage) -> Answers {
    let (a, b, two, one) = (iden("a"), iden("b"), Valu::Int(2), Valu::from("one"));
    let mut out = Vec::from(answers!("";
        s.rows_by_id_prop(&a, "x", None), s.rows_by_id_prop(&b, "x", Some(&two))));
    for i in ["a", "b", "c", "d", "nobody"] {
        out.extend(answers!(i; s.rows_by_id(&iden(i))));
    }
    for valu in [None, Some(&two), Some(&one)] {
        for prop in ["x", "y"] {
            let q = PropQuery {
                valu,
                ..PropQuery::new(prop)
            };
            let w = q.mintime(11).maxtime(40);
            out.extend(answers!(format!("{prop} {valu:?}:");
                s.rows_by_prop(&q), s.size_by_prop(&q), s.rows_by_prop(&w), s.size_by_prop(&w),
                s.rows_by_prop(&q.limit(2)), s.size_by_prop(&q.limit(1))));
        }
    }
    let many = visited_many(s, &["d", "a", "nobody", "b", "a"]);
    out.push(("visit_rows_by_idens".into(), format!("{many:?}")));
    out.push((
        "visit_rows_by_id a".into(),
        format!("{:?}", visited(s, "a")),
    ));
    out
}

pub fn as_of_rows_and_lifts(s: &dyn Storage) {
    let seeded = seed(s);
    s.add_rows(&[row("a", "x", 2, 12), row("d", "y", "one", 15)])
        .unwrap();
    let t1 = now(s);
    let at_t1 = row_answers(s);
    assert_eq!(s.del_rows_by_id(&iden("b")).unwrap(), 2);
    s.set_rows_by_id_prop(&iden("a"), "x", &Valu::Int(2))
        .unwrap();
    s.add_rows(&[
        row("c", "y", "one", 31),
        row("d", "x", 2, 5),
        row("b", "x", 2, 40),
    ])
    .unwrap();
    let t2 = now(s);
    let at_t2 = row_answers(s);
    assert_ne!(at_t1, at_t2, "the writes between t1 and t2 changed answers");
    s.del_rows_by_prop(&PropQuery::new("y").valu(&Valu::from("one")))
        .unwrap();
    s.add_rows(&[row("e", "x", 9, 1)]).unwrap();
    let t3 = now(s);
    let at_t3 = row_answers(s);
    assert_ne!(at_t2, at_t3);
    assert_answers(&at_t1, &row_answers(&*view(s, t1)), t1);
    assert_answers(&at_t2, &row_answers(&*view(s, t2)), t2);
    assert_answers(&at_t3, &row_answers(&*view(s, t3)), t3);
    let latest = now(s);
    assert_answers(&at_t3, &row_answers(&*view(s, latest)), latest);
    let past = view(s, t1);
    assert_eq!(past.rows_by_id(&iden("b")).unwrap(), seeded[2..4].to_vec());
    assert_eq!(
        ints(&past.rows_by_id_prop(&iden("a"), "x", None).unwrap()),
        vec![1, 2],
        "set_rows_by_id_prop after t1 is not seen at t1"
    );
}

/// Answers of joins, integer lifts, `in` joins and the prop list.
fn join_answers(s: &dyn Storage) -> Answers {
    let (x, two) = (PropQuery::new("x"), Valu::from("two"));
    let vals = [
        Valu::Int(3),
        Valu::Int(1),
        Valu::from("1"),
        Valu::Int(5),
        Valu::Int(2),
    ];
    let mut out = Vec::from(answers!("";
        s.props(), s.join_by_prop(&x), s.join_by_prop(&x.limit(1)),
        s.join_by_prop(&PropQuery::new("old")), s.join_by_prop(&PropQuery::new("y").valu(&two)),
        s.rows_by_ge("x", 2, None), s.rows_by_lt("x", 3, None), s.size_by_range("x", 0, 10, None),
        s.joins_by_le("x", 2, None), s.rows_by_int("old", IntLift::Ge(0), None),
        s.joins_by_in("x", &vals, None), s.joins_by_in("x", &vals, Some(2))));
    let lifts = [
        IntLift::Ge(2),
        IntLift::Le(3),
        IntLift::Gt(1),
        IntLift::Lt(5),
        IntLift::Range(1, 4),
        IntLift::Range(i64::MIN, i64::MAX),
    ];
    for lift in lifts {
        for limit in [None, Some(1), Some(2)] {
            out.extend(answers!(format!("{lift:?} {limit:?}:");
                s.rows_by_int("x", lift, limit), s.size_by_int("x", lift, limit),
                s.joins_by_int("x", lift, limit)));
        }
    }
    out
}

pub fn as_of_joins_props_int_lifts(s: &dyn Storage) {
    seed(s);
    s.add_rows(&[row("c", "old", 7, 31), row("e", "old", 8, 32)])
        .unwrap();
    let t1 = now(s);
    let at_t1 = join_answers(s);
    assert_eq!(s.props().unwrap(), ["old", "x", "y"]);
    assert_eq!(s.del_rows_by_prop(&PropQuery::new("old")).unwrap(), 2);
    s.add_rows(&[row("d", "x", 5, 5), row("d", "new", 1, 6)])
        .unwrap();
    s.del_rows_by_id_prop(&iden("b"), "x", None).unwrap();
    s.update_property_valu("x", &Valu::Int(3), &Valu::Int(4))
        .unwrap();
    let t2 = now(s);
    let at_t2 = join_answers(s);
    assert_eq!(s.props().unwrap(), ["new", "x", "y"]);
    assert_ne!(at_t1, at_t2, "the writes between t1 and t2 changed answers");
    s.update_property("new", "newer").unwrap();
    let past = view(s, t1);
    assert_eq!(past.props().unwrap(), ["old", "x", "y"], "props at t1");
    assert_eq!(
        ints(&past.rows_by_int("old", IntLift::Ge(0), None).unwrap()),
        vec![7, 8]
    );
    assert_eq!(
        view(s, t2).props().unwrap(),
        ["new", "x", "y"],
        "props at t2"
    );
    assert_answers(&at_t1, &join_answers(&*past), t1);
    assert_answers(&at_t2, &join_answers(&*view(s, t2)), t2);
    let latest = now(s);
    assert_eq!(view(s, latest).props().unwrap(), ["newer", "x", "y"]);
    assert_answers(&join_answers(s), &join_answers(&*view(s, latest)), latest);
}

pub fn long_strings_at_a_time(s: &dyn Storage) {
    let long1 = "h".repeat(200);
    let mut long2 = "h".repeat(199);
    long2.push('!');
    let long3 = "k".repeat(129);
    let (a, b) = (
        row("a", "text", long1.as_str(), 1),
        row("b", "text", long2.as_str(), 2),
    );
    s.add_rows(&[a.clone(), b.clone()]).unwrap();
    let t1 = now(s);
    let (v1, v2, v3) = (
        Valu::from(long1.as_str()),
        Valu::from(long2.as_str()),
        Valu::from(long3.as_str()),
    );
    assert_eq!(
        s.del_rows_by_prop(&PropQuery::new("text").valu(&v1))
            .unwrap(),
        1
    );
    let c = row("c", "text", long1.as_str(), 3);
    s.add_rows(std::slice::from_ref(&c)).unwrap();
    assert_eq!(s.update_property_valu("text", &v2, &v3).unwrap(), 1);
    let t2 = now(s);
    let (then, later) = (view(s, t1), view(s, t2));
    let by = |r: &dyn Storage, v: &Valu| r.rows_by_prop(&PropQuery::new("text").valu(v)).unwrap();
    assert_eq!(by(&*then, &v1), vec![a.clone()], "long1 at t1");
    assert_eq!(by(&*then, &v2), vec![b.clone()], "long2 at t1");
    assert_eq!(by(&*then, &v3), vec![], "long3 at t1");
    assert_eq!(by(&*later, &v1), vec![c.clone()], "long1 at t2");
    assert_eq!(by(&*later, &v2), vec![], "long2 at t2");
    assert_eq!(by(&*later, &v3), vec![row("b", "text", long3.as_str(), 2)]);
    assert_eq!(then.rows_by_id(&iden("a")).unwrap(), vec![a.clone()]);
    assert_eq!(then.rows_by_id(&iden("c")).unwrap(), vec![]);
    assert_eq!(later.rows_by_id(&iden("a")).unwrap(), vec![]);
    assert_eq!(later.rows_by_id(&iden("c")).unwrap(), vec![c]);
    assert_eq!(
        then.size_by_prop(&PropQuery::new("text").valu(&v1))
            .unwrap(),
        1
    );
    assert_eq!(
        then.rows_by_id_prop(&iden("b"), "text", Some(&v2)).unwrap(),
        vec![b]
    );
    assert_eq!(then.rows_by_prop(&PropQuery::new("text")).unwrap().len(), 2);
    assert!(then.check_indexes().unwrap().is_empty());
}

pub fn readding_a_row_keeps_its_birth(s: &dyn Storage) {
    let r = row("r", "x", 1, 10);
    let has = |at: i64| view(s, at).rows_by_id(&iden("r")).unwrap() == vec![r.clone()];
    let t0 = now(s);
    s.add_rows(std::slice::from_ref(&r)).unwrap();
    let t1 = now(s);
    s.add_rows(&[r.clone(), row("other", "x", 2, 20)]).unwrap();
    let t2 = now(s);
    assert!(!has(t0), "not yet added at t0");
    assert!(has(t1) && has(t2), "added at t1, still there at t2");
    assert_eq!(s.del_rows_by_id(&iden("r")).unwrap(), 1);
    let t3 = now(s);
    assert!(has(t1), "re-adding did not move its birth past t1");
    assert!(has(t2));
    assert!(!has(t3), "deleted before t3");
    assert_eq!(view(s, t3).size_by_prop(&PropQuery::new("x")).unwrap(), 1);
    s.add_rows(std::slice::from_ref(&r)).unwrap();
    let t4 = now(s);
    assert!(
        has(t1) && has(t2) && !has(t3) && has(t4),
        "a second life after a delete"
    );
    assert_eq!(view(s, t2).size_by_prop(&PropQuery::new("x")).unwrap(), 2);
}

pub fn same_txn_add_delete_leaves_nothing(s: &dyn Storage) {
    let kept = row("e", "x", 1, 1);
    s.add_rows(std::slice::from_ref(&kept)).unwrap();
    let t0 = now(s);
    let txn = s.begin().unwrap();
    txn.add_rows(&[row("g", "gone", 1, 1), row("h", "x", 2, 2)])
        .unwrap();
    assert_eq!(txn.del_rows_by_id(&iden("g")).unwrap(), 1);
    // Delete and re-add a row that was there before: it stays there throughout.
    assert_eq!(txn.del_rows_by_id(&iden("e")).unwrap(), 1);
    txn.add_rows(std::slice::from_ref(&kept)).unwrap();
    txn.commit().unwrap();
    let t1 = now(s);
    for at in [t0, t1] {
        let v = view(s, at);
        assert_eq!(v.rows_by_id(&iden("g")).unwrap(), vec![], "g at {at}");
        assert_eq!(v.size_by_prop(&PropQuery::new("gone")).unwrap(), 0);
        assert_eq!(v.rows_by_prop(&PropQuery::new("gone")).unwrap(), vec![]);
        assert!(!v.props().unwrap().contains(&"gone".to_string()));
        assert_eq!(
            v.rows_by_id(&iden("e")).unwrap(),
            vec![kept.clone()],
            "e at {at}"
        );
    }
    assert_eq!(view(s, t0).rows_by_id(&iden("h")).unwrap(), vec![]);
    assert_eq!(
        view(s, t1).rows_by_id(&iden("h")).unwrap(),
        vec![row("h", "x", 2, 2)]
    );
    assert_eq!(
        backup(&*view(s, t1)),
        sorted(vec![kept, row("h", "x", 2, 2)])
    );
    assert_eq!(s.check_indexes().unwrap(), Vec::<String>::new());
    assert_eq!(view(s, t1).check_indexes().unwrap(), Vec::<String>::new());
    assert_eq!(view(s, t0).check_indexes().unwrap(), Vec::<String>::new());
}

const A_ROWS: [(&str, i64); 2] = [("x", 10), ("y", 11)];

fn node_rows(i: &str) -> Vec<Row> {
    A_ROWS.iter().map(|(p, t)| row(i, p, 1, *t)).collect()
}

/// In one transaction: deletes node `from`'s rows and adds node `to`'s.
fn move_node(s: &dyn Storage, from: &str, to: &str) {
    let txn = s.begin().unwrap();
    assert_eq!(txn.del_rows_by_id(&iden(from)).unwrap(), 2);
    txn.add_rows(&node_rows(to)).unwrap();
    txn.commit().unwrap();
}

/// Returns how many rows nodes a and b have in `v`.
fn a_and_b(v: &dyn Storage) -> (usize, usize) {
    let a = v.rows_by_id(&iden("a")).unwrap().len();
    (a, v.rows_by_id(&iden("b")).unwrap().len())
}

/// Sets its flag when dropped.
struct StopOnDrop<'f>(&'f AtomicBool);

impl Drop for StopOnDrop<'_> {
    fn drop(&mut self) {
        self.0.store(true, Ordering::Release);
    }
}

pub fn transactions_land_at_one_time(s: &dyn Storage) {
    s.add_rows(&node_rows("a")).unwrap();
    let before = now(s);
    move_node(s, "a", "b");
    let after = now(s);
    assert_eq!(a_and_b(&*view(s, before)), (2, 0));
    assert_eq!(a_and_b(&*view(s, after)), (0, 2));
    {
        let txn = s.begin().unwrap();
        txn.del_rows_by_id(&iden("b")).unwrap();
        txn.add_rows(&node_rows("c")).unwrap();
        txn.blob_set("info/dropped", b"1").unwrap();
        // Dropped without commit.
    }
    let dropped = now(s);
    for at in [before, after, dropped] {
        let v = view(s, at);
        assert_eq!(v.rows_by_id(&iden("c")).unwrap(), vec![], "c at {at}");
        assert_eq!(v.blob_get("info/dropped").unwrap(), None);
    }
    assert_eq!(
        a_and_b(&*view(s, dropped)),
        (0, 2),
        "the dropped delete left b"
    );
    assert_eq!(backup(&*view(s, dropped)), sorted(node_rows("b")));
    // A reader settling times while transactions commit never sees half of one.
    let done = AtomicBool::new(false);
    std::thread::scope(|scope| {
        let reader = scope.spawn(|| {
            let mut reads = 0;
            while reads == 0 || !done.load(Ordering::Acquire) {
                let t = now(s);
                let got = a_and_b(&*view(s, t));
                assert!(
                    got == (2, 0) || got == (0, 2),
                    "half a transaction at {t}: {got:?}"
                );
                reads += 1;
            }
        });
        {
            // Set even if a write panics, so that the reader stops and the panic is reported.
            let _stop = StopOnDrop(&done);
            for n in 0..20 {
                let (from, to) = if n % 2 == 0 { ("b", "a") } else { ("a", "b") };
                move_node(s, from, to);
            }
        }
        reader.join().unwrap();
    });
}

/// A time, the bytes of blob `info/x` then, and the `info/` keys then.
type BlobThen<'a> = (i64, Option<&'a [u8]>, &'a [&'a str]);

pub fn tracked_and_timeless_blobs(s: &dyn Storage) {
    s.blob_set("cronusfs:setting", b"s1").unwrap();
    let t0 = now(s);
    s.blob_set("info/x", b"v1").unwrap();
    let t1 = now(s);
    s.blob_set("info/x", b"v2").unwrap();
    s.blob_set("cronusfs:setting", b"s2").unwrap();
    s.blob_set("chunk/abc", b"c").unwrap();
    let t2 = now(s);
    assert_eq!(s.blob_del("info/x").unwrap(), b"v2");
    s.blob_set("info/y", b"y").unwrap();
    let t3 = now(s);
    let want: [BlobThen; 4] = [
        (t0, None, &[]),
        (t1, Some(&b"v1"[..]), &["info/x"]),
        (t2, Some(&b"v2"[..]), &["info/x"]),
        (t3, None, &["info/y"]),
    ];
    for (at, x, keys) in want {
        let v = view(s, at);
        assert_eq!(
            v.blob_get("info/x").unwrap().as_deref(),
            x,
            "info/x at {at}"
        );
        assert_eq!(v.blob_has("info/x").unwrap(), x.is_some(), "info/x at {at}");
        assert_eq!(
            v.blob_keys_with_prefix("info/").unwrap(),
            keys,
            "keys at {at}"
        );
        // Timeless blobs read live whatever the time.
        assert_eq!(
            v.blob_get("cronusfs:setting").unwrap().as_deref(),
            Some(&b"s2"[..])
        );
        assert_eq!(v.blob_get("chunk/abc").unwrap().as_deref(), Some(&b"c"[..]));
        assert!(v.blob_has("chunk/abc").unwrap());
        assert_eq!(v.blob_keys_with_prefix("chunk/").unwrap(), ["chunk/abc"]);
    }
    assert_eq!(view(s, t2).blob_get("info/y").unwrap(), None);
    assert_eq!(
        view(s, t3).blob_get("info/y").unwrap().as_deref(),
        Some(&b"y"[..])
    );
    s.blob_del("cronusfs:setting").unwrap();
    s.blob_set("info/x", b"v3").unwrap();
    let v = view(s, t1);
    assert_eq!(
        v.blob_get("cronusfs:setting").unwrap(),
        None,
        "a deleted timeless blob"
    );
    assert!(!v.blob_has("cronusfs:setting").unwrap());
    assert_eq!(v.blob_get("info/x").unwrap().as_deref(), Some(&b"v1"[..]));
    assert_eq!(s.blob_get("info/x").unwrap().as_deref(), Some(&b"v3"[..]));
}

/// A blob deleted before the floor leaves nothing once history is pruned past it (its
/// deletion answers no time that its absence does not), while a live blob keeps the version
/// times at the floor read, and a time after the floor reads both as before.
pub fn a_deleted_blob_leaves_nothing_once_pruned(s: &dyn Storage) {
    s.blob_set("info/gone", b"1").unwrap();
    s.blob_set("info/gone", b"2").unwrap();
    s.blob_del("info/gone").unwrap();
    s.blob_set("info/kept", b"k").unwrap();
    let floor = now(s);
    let pruned = s.prune_history(floor, &[]).unwrap();
    assert_eq!(pruned.blob_versions, 3, "{pruned:?}");
    let v = view(s, now(s));
    assert_eq!(v.blob_get("info/gone").unwrap(), None);
    assert_eq!(v.blob_get("info/kept").unwrap().as_deref(), Some(&b"k"[..]));
    assert_eq!(s.prune_history(floor, &[]).unwrap().blob_versions, 0);
}

pub fn session_rows_are_timeless(s: &dyn Storage) {
    let (session, n) = (iden("cronusfs:session:abc"), iden("n"));
    let at = |t: i64, i: &Iden| view(s, t).rows_by_id(i).unwrap();
    let t1 = now(s);
    let rows = vec![
        row(session.as_str(), "beat", 5, 100),
        row(session.as_str(), "lease", "x", 101),
        row("n", "x", 1, 1),
    ];
    s.add_rows(&rows).unwrap();
    let t2 = now(s);
    assert_eq!(at(t1, &session), rows[..2].to_vec(), "live at t1");
    assert_eq!(at(t1, &n), vec![], "n not yet at t1");
    assert_eq!(at(t2, &n), rows[2..].to_vec());
    s.set_rows_by_id_prop(&session, "beat", &Valu::Int(6))
        .unwrap();
    let live = s.rows_by_id(&session).unwrap();
    assert_eq!(live[0].valu, Valu::Int(6), "the beat was set");
    assert_eq!(at(t1, &session), live, "the newest beat, at t1");
    assert_eq!(at(t2, &session), live, "the newest beat, at t2");
    assert_eq!(s.del_rows_by_id(&session).unwrap(), 2);
    assert_eq!(s.del_rows_by_id(&n).unwrap(), 1);
    let t3 = now(s);
    for t in [t1, t2, t3] {
        assert_eq!(at(t, &session), vec![], "deleted, at {t}");
    }
    assert_eq!(at(t2, &n), rows[2..].to_vec());
    assert_eq!(at(t3, &n), vec![]);
}

/// Asserts that every kind of write through `v` (a view of the past) is refused.
fn writes_refused(v: &dyn Storage) {
    let (x, a, one, five) = (PropQuery::new("x"), iden("a"), Valu::Int(1), Valu::Int(5));
    read_only!(
        v.add_rows(&[row("w", "x", 9, 9)]),
        v.del_rows_by_id(&a),
        v.del_rows_by_prop(&x),
        v.del_rows_by_id_prop(&a, "x", None),
        v.del_join_by_prop(&x),
        v.set_rows_by_id_prop(&a, "x", &five),
        v.update_property("x", "z"),
        v.update_property_valu("x", &one, &five),
        v.blob_set("info/w", b"w"),
        v.blob_set("cronusfs:w", b"w"),
        v.blob_del("info/k"),
        v.blob_set_unlogged("info/w", b"w"),
    );
    match v.begin() {
        Err(e) => assert!(matches!(e, StorageError::ReadOnly), "begin: {e:?}"),
        Ok(txn) => {
            read_only!(
                txn.add_rows(&[row("w", "x", 9, 9)]),
                txn.del_rows_by_id(&a),
                txn.blob_set("info/w", b"w"),
            );
            let done = txn.commit();
            assert!(
                matches!(done, Ok(()) | Err(StorageError::ReadOnly)),
                "{done:?}"
            );
        }
    }
}

pub fn future_and_before_history_refused(s: &dyn Storage) {
    let rows = seed(s);
    s.blob_set("info/k", b"k").unwrap();
    let b = bounds(s);
    assert!(b.since <= b.now, "{b:?}");
    let ahead = b.now + 60_000_000;
    match s.as_of(ahead) {
        Err(StorageError::FutureTime { at, now }) => {
            assert_eq!(at, ahead);
            assert!((b.now..ahead).contains(&now), "now {now} vs {b:?}");
        }
        Err(e) => panic!("as_of the future: {e:?}"),
        Ok(_) => panic!("as_of the future succeeded"),
    }
    match s.as_of(b.since - 1) {
        Err(StorageError::BeforeHistory { at, since }) => {
            assert_eq!((at, since), (b.since - 1, b.since));
        }
        Err(e) => panic!("as_of before history: {e:?}"),
        Ok(_) => panic!("as_of before history succeeded"),
    }
    assert_eq!(
        view(s, b.since).rows_by_id(&iden("a")).unwrap(),
        vec![],
        "empty at creation"
    );
    let v = view(s, b.now);
    assert_eq!(backup(&*v), sorted(rows.clone()));
    writes_refused(&*v);
    writes_refused(&*view(s, b.since));
    assert_eq!(
        backup(s),
        sorted(rows.clone()),
        "the refused writes changed nothing"
    );
    assert_eq!(s.blob_get("info/k").unwrap().as_deref(), Some(&b"k"[..]));
    assert!(!s.blob_has("info/w").unwrap() && !s.blob_has("cronusfs:w").unwrap());
    assert_eq!(s.props().unwrap(), ["x", "y"]);
    assert_eq!(
        backup(&*view(s, now(s))),
        sorted(rows),
        "nothing committed by the views"
    );
}

pub fn stamps_pass_every_settled_time(s: &dyn Storage) {
    let (first, second) = (iden("first"), iden("second"));
    for n in 0..50i64 {
        s.add_rows(&[row("first", "n", n, n)]).unwrap();
        let t = now(s);
        s.add_rows(&[row("second", "n", n, n)]).unwrap();
        let v = view(s, t);
        let got = (
            ints(&v.rows_by_id(&first).unwrap()),
            ints(&v.rows_by_id(&second).unwrap()),
        );
        let want: (Vec<i64>, Vec<i64>) = ((0..=n).collect(), (0..n).collect());
        assert_eq!(got, want, "as of {t}, after write {n}");
    }
}

pub fn backup_at_a_time(s: &dyn Storage) {
    let mut alive = seed(s);
    let lo = "0".repeat(32);
    alive.push(row(&lo, "edge", 1, 1));
    alive.push(row("long", "text", "L".repeat(300).as_str(), 2));
    s.add_rows(&alive[5..]).unwrap();
    let t1 = now(s);
    assert_eq!(backup(s), sorted(alive.clone()));
    s.del_rows_by_id(&iden("a")).unwrap();
    s.del_rows_by_id(&iden("long")).unwrap();
    s.add_rows(&[row("z", "x", 26, 26), row("b", "x", 3, 22)])
        .unwrap();
    s.update_property("y", "w").unwrap();
    let then = view(s, t1);
    for chunk in [1, 2, 5, 1000] {
        let chunks: Vec<Vec<Row>> = then.backup_rows(chunk).map(|c| c.unwrap()).collect();
        assert!(
            chunks.iter().all(|c| !c.is_empty() && c.len() <= chunk),
            "chunk {chunk}"
        );
        assert_eq!(
            sorted(chunks.concat()),
            sorted(alive.clone()),
            "chunk size {chunk}"
        );
    }
    assert_ne!(backup(s), sorted(alive));
    assert_eq!(backup(&*view(s, now(s))), backup(s));
}

/// Rows of 700 nodes: wide reads of the past go a page (256 entries) at a time.
fn many(n: i64, v: i64) -> Vec<Row> {
    (0..n)
        .map(|i| row(&format!("n{i:04}"), "x", i * v, i))
        .collect()
}

pub fn wide_scans_of_the_past_cross_pages(s: &dyn Storage) {
    let first = many(700, 1);
    s.add_rows(&first).unwrap();
    let t1 = now(s);
    for i in (0..700).step_by(3) {
        s.del_rows_by_id(&iden(&format!("n{i:04}"))).unwrap();
    }
    let mut second: Vec<Row> = (first.iter())
        .filter(|r| r.time % 3 != 0)
        .cloned()
        .collect();
    let extra = many(300, 2);
    s.add_rows(&extra[..150]).unwrap();
    for r in &extra[..150] {
        if !second.contains(r) {
            second.push(r.clone());
        }
    }
    let t2 = now(s);
    for (at, rows) in [(t1, &first), (t2, &second)] {
        let v = view(s, at);
        assert_eq!(backup(&*v), sorted(rows.clone()), "backup as of {at}");
        let mut ints_then: Vec<i64> = rows.iter().filter_map(|r| r.valu.as_int()).collect();
        ints_then.retain(|i| (100..900).contains(i));
        ints_then.sort();
        assert_eq!(
            ints(&v.rows_by_range("x", 100, 900, None).unwrap()),
            ints_then
        );
        let limited = v.rows_by_int("x", IntLift::Ge(0), Some(300)).unwrap();
        assert_eq!(limited.len(), 300, "a limit across pages");
        assert_eq!(v.props().unwrap(), ["x"]);
    }
}
