//! The backend conformance suite: every case written once as a function over `&dyn Storage`,
//! and `conformance_suite!` that stamps all of them out for one backend, so no backend can skip
//! a case. The cases of reads and lifts are here, those of writes in `conformance/writes.rs`,
//! those of history (reads of the store as of a past time) in `conformance/history.rs`.

use cronusfs::storage::{
    Iden, PropQuery, Row, RowRead, RowWrite, Storage, StorageError, Valu, ValuRef,
};

/// Declares module `$backend` with one `#[test]` per conformance case, each run on a store
/// made by `$make` (an expression giving `(store, guard)`; the guard lives as long as the test).
#[macro_export]
macro_rules! conformance_suite {
    ($backend:ident, $make:expr) => {
        mod $backend {
            #[allow(unused_imports)]
            use super::*;
            $crate::conformance_suite!(@cases $make;
                rows_by_id_and_idens, rows_by_id_prop, rows_by_prop_and_size, empty_and_unknown,
                limits, duplicate_rows_collapse, int_and_string_never_equal, extreme_integers,
                integer_lifts_are_one_ordered_scan, long_strings, time_window_edges,
                joins_whole_nodes, joins_by_in, deletes_are_seen_by_lifts, del_rows_deletes_the_named_rows,
                set_rows_by_id_prop,
                update_property, update_property_valu, blobs, backup_iterator, bad_input,
                blobs_with_a_prefix_come_with_their_values,
                transactions, prop_prefixes_do_not_mix, add_rows_is_atomic,
                visiting_rows_matches_rows_by_id, visiting_many_nodes_matches_rows_by_id,
                props_are_listed_once_each, a_new_store_records_when_it_was_made,
                as_of_rows_and_lifts, as_of_joins_props_int_lifts, long_strings_at_a_time,
                readding_a_row_keeps_its_birth, same_txn_add_delete_leaves_nothing,
                transactions_land_at_one_time, tracked_and_timeless_blobs,
                a_deleted_blob_leaves_nothing_once_pruned,
                session_rows_are_timeless, future_and_before_history_refused,
                stamps_pass_every_settled_time, backup_at_a_time, commits_say_who_and_what,
                wide_scans_of_the_past_cross_pages, lifts_resume_after_the_last_row_of_a_page);
        }
    };
    (@cases $make:expr; $($case:ident),* $(,)?) => {
        $(
            #[test]
            fn $case() {
                let (store, _guard) = $make;
                $crate::conformance::$case(&store);
            }
        )*
    };
}

mod history;
mod history_log;
mod pages;
mod writes;
pub use history::*;
pub use history_log::*;
pub use pages::*;
pub use writes::*;

pub fn iden(s: &str) -> Iden {
    Iden::new(s).unwrap()
}

pub fn row(i: &str, p: &str, v: impl Into<Valu>, t: i64) -> Row {
    Row::new(&iden(i), p, v, t)
}

/// Returns rows sorted by (iden, prop, value text, time), to compare sets of rows.
pub fn sorted(mut rows: Vec<Row>) -> Vec<Row> {
    rows.sort_by(|a, b| {
        (a.iden.as_str(), &a.prop, format!("{:?}", a.valu), a.time).cmp(&(
            b.iden.as_str(),
            &b.prop,
            format!("{:?}", b.valu),
            b.time,
        ))
    });
    rows
}

fn times(rows: &[Row]) -> Vec<i64> {
    rows.iter().map(|r| r.time).collect()
}

fn ints(rows: &[Row]) -> Vec<i64> {
    rows.iter()
        .map(|r| r.valu.as_int().expect("integer row"))
        .collect()
}

/// Three nodes: a (x=1, y="one"), b (x=2, y="two"), c (x=3).
fn seed(s: &dyn Storage) -> Vec<Row> {
    let rows = vec![
        row("a", "x", 1, 10),
        row("a", "y", "one", 11),
        row("b", "x", 2, 20),
        row("b", "y", "two", 21),
        row("c", "x", 3, 30),
    ];
    s.add_rows(&rows).unwrap();
    rows
}

pub fn rows_by_id_and_idens(s: &dyn Storage) {
    let rows = seed(s);
    assert_eq!(
        s.rows_by_id(&iden("a")).unwrap(),
        rows[..2].to_vec(),
        "ordered by prop"
    );
    assert_eq!(s.rows_by_id(&iden("zz")).unwrap(), vec![]);
    let got = s
        .rows_by_idens(&[iden("c"), iden("a"), iden("nope")])
        .unwrap();
    assert_eq!(got, vec![rows[4].clone(), rows[0].clone(), rows[1].clone()]);
    assert_eq!(s.rows_by_idens(&[]).unwrap(), vec![]);
}

pub fn rows_by_id_prop(s: &dyn Storage) {
    seed(s);
    s.add_rows(&[row("a", "x", 5, 12)]).unwrap();
    assert_eq!(
        ints(&s.rows_by_id_prop(&iden("a"), "x", None).unwrap()),
        vec![1, 5]
    );
    let one = s
        .rows_by_id_prop(&iden("a"), "x", Some(&Valu::Int(5)))
        .unwrap();
    assert_eq!(one, vec![row("a", "x", 5, 12)]);
    assert_eq!(
        s.rows_by_id_prop(&iden("a"), "x", Some(&Valu::Int(7)))
            .unwrap(),
        vec![]
    );
    assert_eq!(s.rows_by_id_prop(&iden("a"), "nope", None).unwrap(), vec![]);
}

pub fn rows_by_prop_and_size(s: &dyn Storage) {
    let rows = seed(s);
    let xs = s.rows_by_prop(&PropQuery::new("x")).unwrap();
    assert_eq!(
        xs,
        vec![rows[0].clone(), rows[2].clone(), rows[4].clone()],
        "ordered by time"
    );
    assert_eq!(s.size_by_prop(&PropQuery::new("x")).unwrap(), 3);
    let two = Valu::Int(2);
    assert_eq!(
        s.rows_by_prop(&PropQuery::new("x").valu(&two)).unwrap(),
        vec![rows[2].clone()]
    );
    assert_eq!(s.size_by_prop(&PropQuery::new("x").valu(&two)).unwrap(), 1);
    let one = Valu::from("one");
    assert_eq!(
        s.rows_by_prop(&PropQuery::new("y").valu(&one)).unwrap(),
        vec![rows[1].clone()]
    );
}

pub fn empty_and_unknown(s: &dyn Storage) {
    assert_eq!(s.rows_by_prop(&PropQuery::new("x")).unwrap(), vec![]);
    assert_eq!(s.backup_rows(10).count(), 0);
    seed(s);
    let q = PropQuery::new("unknown");
    assert_eq!(s.rows_by_prop(&q).unwrap(), vec![]);
    assert_eq!(s.size_by_prop(&q).unwrap(), 0);
    assert_eq!(s.join_by_prop(&q).unwrap(), vec![]);
    assert_eq!(s.rows_by_ge("unknown", i64::MIN, None).unwrap(), vec![]);
    assert_eq!(s.size_by_range("unknown", 0, 10, None).unwrap(), 0);
    assert_eq!(
        s.joins_by_in("unknown", &[Valu::Int(1)], None).unwrap(),
        vec![]
    );
    assert_eq!(s.del_rows_by_prop(&q).unwrap(), 0);
    assert_eq!(s.del_rows_by_id(&iden("nobody")).unwrap(), 0);
    assert_eq!(s.update_property("unknown", "other").unwrap(), 0);
}

pub fn limits(s: &dyn Storage) {
    seed(s);
    let q = PropQuery::new("x");
    assert_eq!(s.rows_by_prop(&q.limit(0)).unwrap(), vec![]);
    assert_eq!(times(&s.rows_by_prop(&q.limit(1)).unwrap()), vec![10]);
    assert_eq!(s.size_by_prop(&q.limit(0)).unwrap(), 0);
    assert_eq!(s.size_by_prop(&q.limit(2)).unwrap(), 2);
    assert_eq!(s.size_by_prop(&q.limit(99)).unwrap(), 3);
    assert_eq!(s.rows_by_ge("x", 0, Some(0)).unwrap(), vec![]);
    assert_eq!(ints(&s.rows_by_ge("x", 0, Some(1)).unwrap()), vec![1]);
    assert_eq!(s.size_by_ge("x", 0, Some(2)).unwrap(), 2);
    assert_eq!(s.join_by_prop(&q.limit(0)).unwrap(), vec![]);
    let one_node = s.join_by_prop(&q.limit(1)).unwrap();
    assert_eq!(
        one_node,
        s.rows_by_id(&iden("a")).unwrap(),
        "limit counts driving rows"
    );
    assert_eq!(
        s.joins_by_ge("x", 2, Some(1)).unwrap(),
        s.rows_by_id(&iden("b")).unwrap()
    );
}

pub fn duplicate_rows_collapse(s: &dyn Storage) {
    let r = row("a", "x", 1, 10);
    s.add_rows(&[r.clone(), r.clone()]).unwrap();
    s.add_rows(std::slice::from_ref(&r)).unwrap();
    assert_eq!(s.rows_by_id(&iden("a")).unwrap(), vec![r.clone()]);
    assert_eq!(s.size_by_prop(&PropQuery::new("x")).unwrap(), 1);
    // Same iden, prop and value at another time is another row.
    s.add_rows(&[row("a", "x", 1, 11)]).unwrap();
    assert_eq!(s.size_by_prop(&PropQuery::new("x")).unwrap(), 2);
    assert_eq!(s.del_rows_by_id(&iden("a")).unwrap(), 2);
}

pub fn int_and_string_never_equal(s: &dyn Storage) {
    s.add_rows(&[row("i", "v", 10, 1), row("s", "v", "10", 2)])
        .unwrap();
    let int = Valu::Int(10);
    let text = Valu::from("10");
    assert_eq!(
        s.rows_by_prop(&PropQuery::new("v").valu(&int)).unwrap(),
        vec![row("i", "v", 10, 1)]
    );
    assert_eq!(
        s.rows_by_prop(&PropQuery::new("v").valu(&text)).unwrap(),
        vec![row("s", "v", "10", 2)]
    );
    assert_eq!(
        s.rows_by_ge("v", i64::MIN, None).unwrap(),
        vec![row("i", "v", 10, 1)]
    );
    assert_eq!(
        s.rows_by_le("v", i64::MAX, None).unwrap(),
        vec![row("i", "v", 10, 1)]
    );
    assert_eq!(s.size_by_range("v", i64::MIN, i64::MAX, None).unwrap(), 1);
    assert_eq!(
        s.rows_by_id_prop(&iden("s"), "v", Some(&int)).unwrap(),
        vec![]
    );
}

pub fn extreme_integers(s: &dyn Storage) {
    let vals = [i64::MIN, i64::MIN + 1, -1, 0, 1, i64::MAX - 1, i64::MAX];
    let rows: Vec<Row> = vals
        .iter()
        .enumerate()
        .map(|(n, v)| row(&format!("n{n}"), "v", *v, 1))
        .collect();
    s.add_rows(&rows).unwrap();
    assert_eq!(
        ints(&s.rows_by_ge("v", i64::MIN, None).unwrap()),
        vals.to_vec()
    );
    assert_eq!(
        ints(&s.rows_by_le("v", i64::MAX, None).unwrap()),
        vals.to_vec()
    );
    assert_eq!(
        ints(&s.rows_by_gt("v", i64::MAX, None).unwrap()),
        Vec::<i64>::new()
    );
    assert_eq!(
        ints(&s.rows_by_lt("v", i64::MIN, None).unwrap()),
        Vec::<i64>::new()
    );
    assert_eq!(
        ints(&s.rows_by_gt("v", i64::MAX - 1, None).unwrap()),
        vec![i64::MAX]
    );
    assert_eq!(
        ints(&s.rows_by_lt("v", i64::MIN + 1, None).unwrap()),
        vec![i64::MIN]
    );
    assert_eq!(
        ints(&s.rows_by_le("v", i64::MIN, None).unwrap()),
        vec![i64::MIN]
    );
    assert_eq!(
        ints(&s.rows_by_ge("v", i64::MAX, None).unwrap()),
        vec![i64::MAX]
    );
    assert_eq!(
        ints(&s.rows_by_range("v", i64::MIN, i64::MAX, None).unwrap()),
        vals[..6].to_vec()
    );
    for v in vals {
        let q = Valu::Int(v);
        assert_eq!(
            s.size_by_prop(&PropQuery::new("v").valu(&q)).unwrap(),
            1,
            "exact {v}"
        );
    }
    assert_eq!(s.size_by_ge("v", 0, None).unwrap(), 4);
    assert_eq!(s.size_by_le("v", -1, None).unwrap(), 3);
}

pub fn integer_lifts_are_one_ordered_scan(s: &dyn Storage) {
    let vals = [-300, 5, -2, 1000, 0, -1, 77, -77];
    let rows: Vec<Row> = vals
        .iter()
        .enumerate()
        .map(|(n, v)| row(&format!("n{n}"), "v", *v, n as i64))
        .collect();
    s.add_rows(&rows).unwrap();
    s.add_rows(&[row("s", "v", "a string", 0)]).unwrap();
    assert_eq!(
        ints(&s.rows_by_range("v", -100, 100, None).unwrap()),
        vec![-77, -2, -1, 0, 5, 77]
    );
    assert_eq!(
        ints(&s.rows_by_range("v", -100, 100, Some(3)).unwrap()),
        vec![-77, -2, -1]
    );
    assert_eq!(
        ints(&s.rows_by_lt("v", 0, None).unwrap()),
        vec![-300, -77, -2, -1]
    );
    assert_eq!(
        ints(&s.rows_by_gt("v", -2, None).unwrap()),
        vec![-1, 0, 5, 77, 1000]
    );
    assert_eq!(s.rows_by_range("v", 5, 5, None).unwrap(), vec![]);
    assert_eq!(s.rows_by_range("v", 10, -10, None).unwrap(), vec![]);
    assert_eq!(
        ints(&s.rows_by_range("v", 5, 6, None).unwrap()),
        vec![5],
        "min inclusive, max exclusive"
    );
    let nodes = s.joins_by_range("v", -2, 1, None).unwrap();
    assert_eq!(nodes.len(), 3, "joins return whole nodes");
    assert_eq!(
        s.joins_by_lt("v", -100, None).unwrap(),
        s.rows_by_id(&iden("n0")).unwrap()
    );
}

pub fn long_strings(s: &dyn Storage) {
    let megabyte: String = (0..1_000_000)
        .map(|i| char::from(b'a' + (i % 26) as u8))
        .collect();
    let mut almost = megabyte.clone();
    almost.replace_range(999_999.., "Z");
    let just_long = "q".repeat(129);
    let just_short = "q".repeat(128);
    let rows = vec![
        row("m", "text", megabyte.as_str(), 1),
        row("n", "text", almost.as_str(), 2),
        row("o", "text", just_long.as_str(), 3),
        row("p", "text", just_short.as_str(), 4),
    ];
    s.add_rows(&rows).unwrap();
    for r in &rows {
        let got = s
            .rows_by_prop(&PropQuery::new("text").valu(&r.valu))
            .unwrap();
        assert_eq!(
            got,
            vec![r.clone()],
            "exact lookup of a {}-byte string",
            r.valu.to_string().len()
        );
        assert_eq!(
            s.size_by_prop(&PropQuery::new("text").valu(&r.valu))
                .unwrap(),
            1
        );
        assert_eq!(
            s.rows_by_id_prop(&r.iden, "text", Some(&r.valu)).unwrap(),
            vec![r.clone()]
        );
    }
    assert_eq!(s.rows_by_id(&iden("m")).unwrap(), vec![rows[0].clone()]);
    assert_eq!(s.rows_by_prop(&PropQuery::new("text")).unwrap(), rows);
    let other = Valu::Str(format!("{megabyte}!"));
    assert_eq!(
        s.size_by_prop(&PropQuery::new("text").valu(&other))
            .unwrap(),
        0
    );
    assert_eq!(
        s.del_rows_by_prop(&PropQuery::new("text").valu(&rows[0].valu))
            .unwrap(),
        1
    );
    assert_eq!(s.size_by_prop(&PropQuery::new("text")).unwrap(), 3);
}

pub fn time_window_edges(s: &dyn Storage) {
    let rows: Vec<Row> = [-20, -10, 0, 10, 20]
        .iter()
        .map(|t| row(&format!("t{t}"), "p", "v", *t))
        .collect();
    s.add_rows(&rows).unwrap();
    let v = Valu::from("v");
    for q in [PropQuery::new("p"), PropQuery::new("p").valu(&v)] {
        assert_eq!(
            times(&s.rows_by_prop(&q.mintime(-10).maxtime(10)).unwrap()),
            vec![-10, 0]
        );
        assert_eq!(
            times(&s.rows_by_prop(&q.mintime(10)).unwrap()),
            vec![10, 20]
        );
        assert_eq!(times(&s.rows_by_prop(&q.maxtime(-10)).unwrap()), vec![-20]);
        assert_eq!(
            times(&s.rows_by_prop(&q.mintime(0).maxtime(0)).unwrap()),
            Vec::<i64>::new()
        );
        assert_eq!(
            times(&s.rows_by_prop(&q.mintime(5).maxtime(-5)).unwrap()),
            Vec::<i64>::new()
        );
        assert_eq!(s.size_by_prop(&q.mintime(-20).maxtime(21)).unwrap(), 5);
        assert_eq!(
            s.size_by_prop(&q.mintime(i64::MIN).maxtime(i64::MAX))
                .unwrap(),
            5
        );
    }
    assert_eq!(
        s.del_rows_by_prop(&PropQuery::new("p").mintime(0).maxtime(20))
            .unwrap(),
        2
    );
    assert_eq!(
        times(&s.rows_by_prop(&PropQuery::new("p")).unwrap()),
        vec![-20, -10, 20]
    );
}

pub fn joins_whole_nodes(s: &dyn Storage) {
    seed(s);
    s.add_rows(&[row("a", "x", 9, 40)]).unwrap();
    let joined = s.join_by_prop(&PropQuery::new("x")).unwrap();
    let expect = [
        s.rows_by_id(&iden("a")).unwrap(),
        s.rows_by_id(&iden("b")).unwrap(),
        s.rows_by_id(&iden("c")).unwrap(),
    ]
    .concat();
    assert_eq!(joined, expect, "each node once, in first-driving-row order");
    let two = Valu::from("two");
    assert_eq!(
        s.join_by_prop(&PropQuery::new("y").valu(&two)).unwrap(),
        s.rows_by_id(&iden("b")).unwrap()
    );
    assert_eq!(
        s.join_by_prop(&PropQuery::new("x").mintime(15).maxtime(25))
            .unwrap(),
        s.rows_by_id(&iden("b")).unwrap()
    );
    let ge = s.joins_by_ge("x", 3, None).unwrap();
    assert_eq!(
        sorted(ge),
        sorted(
            [
                s.rows_by_id(&iden("c")).unwrap(),
                s.rows_by_id(&iden("a")).unwrap()
            ]
            .concat()
        )
    );
    assert_eq!(
        s.joins_by_le("x", 1, None).unwrap(),
        s.rows_by_id(&iden("a")).unwrap()
    );
    assert_eq!(
        s.joins_by_gt("x", 3, None).unwrap(),
        s.rows_by_id(&iden("a")).unwrap()
    );
}

pub fn joins_by_in(s: &dyn Storage) {
    seed(s);
    let vals = [Valu::Int(3), Valu::Int(1), Valu::from("1"), Valu::Int(42)];
    let got = s.joins_by_in("x", &vals, None).unwrap();
    assert_eq!(
        got,
        [
            s.rows_by_id(&iden("c")).unwrap(),
            s.rows_by_id(&iden("a")).unwrap()
        ]
        .concat()
    );
    assert_eq!(
        s.joins_by_in("x", &vals, Some(1)).unwrap(),
        s.rows_by_id(&iden("c")).unwrap()
    );
    assert_eq!(s.joins_by_in("x", &vals, Some(0)).unwrap(), vec![]);
    assert_eq!(s.joins_by_in("x", &[], None).unwrap(), vec![]);
}

/// Returns the rows of `iden` as `visit_rows_by_id` hands them, made owned again.
fn visited(r: &dyn RowRead, i: &str) -> Vec<Row> {
    let mut out = Vec::new();
    r.visit_rows_by_id(&iden(i), &mut |p, v, t| {
        let valu = match v {
            ValuRef::Int(n) => Valu::Int(n),
            ValuRef::Str(s) => Valu::Str(s.to_string()),
        };
        out.push(Row::new(&iden(i), p, valu, t));
    })
    .unwrap();
    out
}

pub fn visiting_rows_matches_rows_by_id(s: &dyn Storage) {
    let long = "L\0ng".repeat(100);
    let rows = vec![
        row("v\0w", "a\0b", "x\0y", 3),
        row("v\0w", "a\0b", -7, 1),
        row("v\0w", "long", long.as_str(), 2),
        row("v\0w", "z", i64::MAX, i64::MIN),
        row("v", "other node", 1, 1),
        row("v\0w\0", "other node", 2, 2),
    ];
    s.add_rows(&rows).unwrap();
    assert_eq!(visited(s, "v\0w"), s.rows_by_id(&iden("v\0w")).unwrap());
    assert_eq!(visited(s, "v\0w").len(), 4);
    assert!(visited(s, "nobody").is_empty());
    // Inside a transaction: its own writes and deletes are seen.
    let txn = s.begin().unwrap();
    txn.add_rows(&[row("v\0w", "new", "n", 9)]).unwrap();
    txn.del_rows_by_id_prop(&iden("v\0w"), "z", None).unwrap();
    assert_eq!(
        visited(&*txn, "v\0w"),
        txn.rows_by_id(&iden("v\0w")).unwrap()
    );
    assert_eq!(visited(&*txn, "v\0w").len(), 4);
}

/// Returns the rows of each of `idens` as `visit_rows_by_idens` hands them, made owned again,
/// one list per iden.
fn visited_many(r: &dyn RowRead, idens: &[&str]) -> Vec<Vec<Row>> {
    let owned: Vec<Iden> = idens.iter().map(|i| iden(i)).collect();
    let mut out = vec![Vec::new(); idens.len()];
    let mut last = 0;
    r.visit_rows_by_idens(&owned, &mut |i, p, v, t| {
        assert!(
            i >= last,
            "node {i} after node {last}: not in the order given"
        );
        last = i;
        let valu = match v {
            ValuRef::Int(n) => Valu::Int(n),
            ValuRef::Str(s) => Valu::Str(s.to_string()),
        };
        out[i].push(Row::new(&owned[i], p, valu, t));
    })
    .unwrap();
    out
}

pub fn visiting_many_nodes_matches_rows_by_id(s: &dyn Storage) {
    let long = "L\0ng".repeat(100);
    let mut rows = vec![
        row("v\0w", "a\0b", "x\0y", 3),
        row("v\0w", "long", long.as_str(), 2),
        row("v", "other node", 1, 1),
        row("v\0w\0", "other node", 2, 2),
    ];
    rows.extend((0..300).map(|n| row(&format!("n{n:03}"), "p", n, n)));
    s.add_rows(&rows).unwrap();
    let idens = ["n007", "v\0w", "nobody", "v", "n007", "n299", "v\0w\0"];
    let each = |r: &dyn RowRead| -> Vec<Vec<Row>> {
        idens
            .iter()
            .map(|i| r.rows_by_id(&iden(i)).unwrap())
            .collect()
    };
    assert_eq!(visited_many(s, &idens), each(s));
    assert_eq!(visited_many(s, &[]), Vec::<Vec<Row>>::new());
    let all: Vec<String> = (0..300).rev().map(|n| format!("n{n:03}")).collect();
    let all: Vec<&str> = all.iter().map(String::as_str).collect();
    let got = visited_many(s, &all);
    assert!(
        got.iter()
            .enumerate()
            .all(|(k, r)| r.len() == 1 && r[0].valu == Valu::Int(299 - k as i64))
    );
    // Inside a transaction: its own writes and deletes are seen.
    let txn = s.begin().unwrap();
    txn.add_rows(&[row("v", "new", "n", 9)]).unwrap();
    txn.del_rows_by_id(&iden("n007")).unwrap();
    assert_eq!(visited_many(&*txn, &idens), each(&*txn));
    assert!(visited_many(&*txn, &idens)[0].is_empty());
}

/// `props` lists each prop with a row once, in byte order, props that prefix each other
/// included, and forgets a prop whose last row is gone.
pub fn props_are_listed_once_each(s: &dyn Storage) {
    assert!(s.props().unwrap().is_empty());
    seed(s);
    assert_eq!(s.props().unwrap(), ["x", "y"]);
    s.add_rows(&[
        row("d", "ab", 1, 1),
        row("d", "a", "s", 1),
        row("e", "abc", 2, 1),
        row("e", "a", 3, 1),
        row("f", "cronus:type", "ARROW", 1),
        row("f", "é", 0, 1),
    ])
    .unwrap();
    let all = s.props().unwrap();
    assert_eq!(all, ["a", "ab", "abc", "cronus:type", "x", "y", "é"]);
    s.del_rows_by_prop(&PropQuery::new("ab")).unwrap();
    assert_eq!(
        s.props().unwrap(),
        ["a", "abc", "cronus:type", "x", "y", "é"]
    );
}
