//! Property tests: random sequences of row operations (plain calls and transactions, committed
//! or dropped) run against each backend and against the plain model; every answer and the final
//! contents must agree, and so must the store as of each time between two operations (history)
//! with the model as it was then.

use cronusfs::storage::{Iden, IntLift, PropQuery, Row, RowWrite, Storage, StorageError, Valu};
use proptest::prelude::*;

use crate::backends::temp_rocks;
use crate::conformance::sorted;
use crate::model::{Model, ModelResult};

#[derive(Clone, Debug)]
struct Query {
    prop: String,
    valu: Option<Valu>,
    mintime: Option<i64>,
    maxtime: Option<i64>,
    limit: Option<usize>,
}

impl Query {
    fn get(&self) -> PropQuery<'_> {
        PropQuery {
            prop: &self.prop,
            valu: self.valu.as_ref(),
            mintime: self.mintime,
            maxtime: self.maxtime,
            limit: self.limit,
            after: None,
        }
    }
}

#[derive(Clone, Debug)]
enum Op {
    Add(Vec<Row>),
    DelById(Iden),
    DelByProp(Query),
    DelByIdProp(Iden, String, Option<Valu>),
    DelJoin(Query),
    Set(Iden, String, Valu),
    UpdateProp(String, String),
    UpdateValu(String, Valu, Valu),
    RowsById(Iden),
    RowsByIdProp(Iden, String, Option<Valu>),
    RowsByProp(Query),
    SizeByProp(Query),
    JoinByProp(Query),
    RowsByInt(String, IntLift, Option<usize>),
    SizeByInt(String, IntLift, Option<usize>),
    JoinsByInt(String, IntLift, Option<usize>),
    JoinsByIn(String, Vec<Valu>, Option<usize>),
    Txn(Vec<Op>, bool),
}

#[derive(Debug, PartialEq)]
enum Answer {
    Rows(Vec<Row>),
    Count(usize),
    Done,
    Failed(&'static str),
}

fn iden() -> BoxedStrategy<Iden> {
    prop::sample::select(vec![
        "a",
        "b",
        "c",
        "ab",
        "a\0",
        "00000000000000000000000000000000",
    ])
    .prop_map(|s| Iden::new(s).unwrap())
    .boxed()
}

fn prop_name() -> BoxedStrategy<String> {
    prop::sample::select(vec!["p", "q", "pq", "p\0", ""])
        .prop_map(String::from)
        .boxed()
}

fn valu() -> BoxedStrategy<Valu> {
    prop_oneof![
        (-3i64..4).prop_map(Valu::Int),
        prop::sample::select(vec![i64::MIN, i64::MAX, -256, 256]).prop_map(Valu::Int),
        prop::sample::select(vec!["", "x", "10", "-1", "\0"]).prop_map(Valu::from),
        (129usize..132).prop_map(|n| Valu::Str("L".repeat(n))),
    ]
    .boxed()
}

fn time() -> impl Strategy<Value = i64> {
    -2i64..4
}

fn limit() -> impl Strategy<Value = Option<usize>> {
    prop::option::of(0usize..4)
}

fn query() -> BoxedStrategy<Query> {
    (
        prop_name(),
        prop::option::of(valu()),
        prop::option::of(time()),
        prop::option::of(time()),
        limit(),
    )
        .prop_map(|(prop, valu, mintime, maxtime, limit)| Query {
            prop,
            valu,
            mintime,
            maxtime,
            limit,
        })
        .boxed()
}

fn int_lift() -> BoxedStrategy<IntLift> {
    let v = prop_oneof![
        -4i64..5,
        prop::sample::select(vec![i64::MIN, i64::MAX, i64::MIN + 1, i64::MAX - 1])
    ];
    prop_oneof![
        v.clone().prop_map(IntLift::Ge),
        v.clone().prop_map(IntLift::Le),
        v.clone().prop_map(IntLift::Gt),
        v.clone().prop_map(IntLift::Lt),
        (v.clone(), v).prop_map(|(a, b)| IntLift::Range(a, b)),
    ]
    .boxed()
}

fn row() -> BoxedStrategy<Row> {
    (iden(), prop_name(), valu(), time())
        .prop_map(|(i, p, v, t)| Row {
            iden: i,
            prop: p,
            valu: v,
            time: t,
        })
        .boxed()
}

fn write_op() -> BoxedStrategy<Op> {
    prop_oneof![
        4 => prop::collection::vec(row(), 0..5).prop_map(Op::Add),
        1 => iden().prop_map(Op::DelById),
        1 => query().prop_map(Op::DelByProp),
        1 => (iden(), prop_name(), prop::option::of(valu())).prop_map(|(i, p, v)| Op::DelByIdProp(i, p, v)),
        1 => query().prop_map(Op::DelJoin),
        1 => (iden(), prop_name(), valu()).prop_map(|(i, p, v)| Op::Set(i, p, v)),
        1 => (prop_name(), prop_name()).prop_map(|(a, b)| Op::UpdateProp(a, b)),
        1 => (prop_name(), valu(), valu()).prop_map(|(p, a, b)| Op::UpdateValu(p, a, b)),
    ]
    .boxed()
}

fn read_op() -> BoxedStrategy<Op> {
    prop_oneof![
        iden().prop_map(Op::RowsById),
        (iden(), prop_name(), prop::option::of(valu()))
            .prop_map(|(i, p, v)| Op::RowsByIdProp(i, p, v)),
        query().prop_map(Op::RowsByProp),
        query().prop_map(Op::SizeByProp),
        query().prop_map(Op::JoinByProp),
        (prop_name(), int_lift(), limit()).prop_map(|(p, l, n)| Op::RowsByInt(p, l, n)),
        (prop_name(), int_lift(), limit()).prop_map(|(p, l, n)| Op::SizeByInt(p, l, n)),
        (prop_name(), int_lift(), limit()).prop_map(|(p, l, n)| Op::JoinsByInt(p, l, n)),
        (prop_name(), prop::collection::vec(valu(), 0..4), limit())
            .prop_map(|(p, v, n)| Op::JoinsByIn(p, v, n)),
    ]
    .boxed()
}

fn op() -> BoxedStrategy<Op> {
    let step = prop_oneof![3 => write_op(), 3 => read_op()];
    prop_oneof![
        6 => step.clone(),
        1 => (prop::collection::vec(step, 1..6), any::<bool>()).prop_map(|(ops, commit)| Op::Txn(ops, commit)),
    ]
    .boxed()
}

fn failed(e: StorageError) -> Answer {
    Answer::Failed(match e {
        StorageError::BadProp { .. } => "BadProp",
        StorageError::BadValu(_) => "BadValu",
        other => panic!("unexpected store error {other:?}"),
    })
}

fn answer<T>(r: Result<T, StorageError>, f: impl FnOnce(T) -> Answer) -> Answer {
    r.map_or_else(failed, f)
}

fn expect<T>(r: ModelResult<T>, f: impl FnOnce(T) -> Answer) -> Answer {
    r.map_or_else(Answer::Failed, f)
}

/// Runs `op` on the store view `s` and on `model`; returns both answers.
fn step(s: &dyn RowWrite, model: &mut Model, op: &Op) -> (Answer, Answer) {
    use Answer::{Count, Done, Rows};
    match op {
        Op::Add(rows) => (
            answer(s.add_rows(rows), |_| Done),
            expect(model.add_rows(rows), |_| Done),
        ),
        Op::DelById(i) => (
            answer(s.del_rows_by_id(i), Count),
            Count(model.del_rows_by_id(i)),
        ),
        Op::DelByProp(q) => (
            answer(s.del_rows_by_prop(&q.get()), Count),
            expect(model.del_rows_by_prop(&q.get()), Count),
        ),
        Op::DelByIdProp(i, p, v) => (
            answer(s.del_rows_by_id_prop(i, p, v.as_ref()), Count),
            expect(model.del_rows_by_id_prop(i, p, v.as_ref()), Count),
        ),
        Op::DelJoin(q) => (
            answer(s.del_join_by_prop(&q.get()), Count),
            expect(model.del_join_by_prop(&q.get()), Count),
        ),
        Op::Set(i, p, v) => match s.set_rows_by_id_prop(i, p, v) {
            Err(e) => (
                failed(e),
                expect(model.rows_by_id_prop(i, p, None), |_| Done),
            ),
            Ok(()) => {
                let now = s.rows_by_id_prop(i, p, None).unwrap();
                assert!(now.len() == 1 && &now[0].valu == v, "set left {now:?}");
                (
                    Done,
                    expect(model.set_rows_by_id_prop(i, p, v, now[0].time), |_| Done),
                )
            }
        },
        Op::UpdateProp(a, b) => (
            answer(s.update_property(a, b), Count),
            expect(model.update_property(a, b), Count),
        ),
        Op::UpdateValu(p, a, b) => (
            answer(s.update_property_valu(p, a, b), Count),
            expect(model.update_property_valu(p, a, b), Count),
        ),
        Op::RowsById(i) => (answer(s.rows_by_id(i), Rows), Rows(model.rows_by_id(i))),
        Op::RowsByIdProp(i, p, v) => (
            answer(s.rows_by_id_prop(i, p, v.as_ref()), Rows),
            expect(model.rows_by_id_prop(i, p, v.as_ref()), Rows),
        ),
        Op::RowsByProp(q) => (
            answer(s.rows_by_prop(&q.get()), Rows),
            expect(model.rows_by_prop(&q.get()), Rows),
        ),
        Op::SizeByProp(q) => (
            answer(s.size_by_prop(&q.get()), Count),
            expect(model.size_by_prop(&q.get()), Count),
        ),
        Op::JoinByProp(q) => (
            answer(s.join_by_prop(&q.get()), Rows),
            expect(model.join_by_prop(&q.get()), Rows),
        ),
        Op::RowsByInt(p, l, n) => (
            answer(s.rows_by_int(p, *l, *n), Rows),
            expect(model.rows_by_int(p, *l, *n), Rows),
        ),
        Op::SizeByInt(p, l, n) => (
            answer(s.size_by_int(p, *l, *n), Count),
            expect(model.rows_by_int(p, *l, *n).map(|r| r.len()), Count),
        ),
        Op::JoinsByInt(p, l, n) => (
            answer(s.joins_by_int(p, *l, *n), Rows),
            expect(model.joins_by_int(p, *l, *n), Rows),
        ),
        Op::JoinsByIn(p, v, n) => (
            answer(s.joins_by_in(p, v, *n), Rows),
            expect(model.joins_by_in(p, v, *n), Rows),
        ),
        Op::Txn(..) => unreachable!("transactions are run by run_ops"),
    }
}

/// Runs `op` (number `n`) on `store` and on `model`, and checks that their answers agree.
fn apply(store: &dyn Storage, model: &mut Model, n: usize, op: &Op) -> Result<(), TestCaseError> {
    if let Op::Txn(inner, commit) = op {
        let txn = store.begin().unwrap();
        let mut scratch = model.clone();
        for op in inner {
            let (got, want) = step(&*txn, &mut scratch, op);
            prop_assert_eq!(got, want, "op {} in transaction {:?}", n, op);
        }
        if *commit {
            txn.commit().unwrap();
            *model = scratch;
        }
    } else {
        let (got, want) = step(store, model, op);
        prop_assert_eq!(got, want, "op {}: {:?}", n, op);
    }
    Ok(())
}

/// Returns every row of `store` through its backup iterator, sorted.
fn backup(store: &dyn Storage) -> Vec<Row> {
    let all: Vec<Row> = store
        .backup_rows(3)
        .map(|c| c.unwrap())
        .collect::<Vec<_>>()
        .concat();
    sorted(all)
}

fn run_ops(store: &dyn Storage, ops: &[Op]) -> Result<(), TestCaseError> {
    let mut model = Model::default();
    for (n, op) in ops.iter().enumerate() {
        apply(store, &mut model, n, op)?;
    }
    prop_assert_eq!(backup(store), sorted(model.all()));
    Ok(())
}

/// Returns the idens `ops` name (rows added, nodes deleted or set, in transactions too), each
/// once, in the order they first appear.
fn idens_of(ops: &[Op]) -> Vec<Iden> {
    let mut out: Vec<Iden> = Vec::new();
    for op in ops {
        let named: Vec<Iden> = match op {
            Op::Add(rows) => rows.iter().map(|r| r.iden.clone()).collect(),
            Op::DelById(i) | Op::DelByIdProp(i, ..) | Op::Set(i, ..) => vec![i.clone()],
            Op::Txn(inner, _) => idens_of(inner),
            _ => Vec::new(),
        };
        for i in named {
            if !out.contains(&i) {
                out.push(i);
            }
        }
    }
    out
}

/// Runs `ops` as `run_ops` does, settling the store's clock after each: a view of the store as
/// of each settled time must hold exactly the rows the model held then.
fn run_history(store: &dyn Storage, ops: &[Op]) -> Result<(), TestCaseError> {
    let mut model = Model::default();
    let mut then = vec![(store.history_bounds().unwrap().now, model.clone())];
    for (n, op) in ops.iter().enumerate() {
        apply(store, &mut model, n, op)?;
        then.push((store.history_bounds().unwrap().now, model.clone()));
    }
    let idens = idens_of(ops);
    for (n, (at, model)) in then.iter().enumerate() {
        let view = store.as_of(*at).unwrap();
        prop_assert_eq!(
            backup(&*view),
            sorted(model.all()),
            "as of {} (after {} ops)",
            at,
            n
        );
        for i in idens.iter().take(3) {
            prop_assert_eq!(
                view.rows_by_id(i).unwrap(),
                model.rows_by_id(i),
                "{:?} as of {}",
                i,
                at
            );
        }
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 96, ..ProptestConfig::default() })]

    #[test]
    fn memory_backend_matches_the_model(ops in prop::collection::vec(op(), 1..40)) {
        run_ops(&cronusfs::storage::MemoryStore::new(), &ops)?;
    }

    #[test]
    fn rocks_backend_matches_the_model(ops in prop::collection::vec(op(), 1..40)) {
        let (store, _dir) = temp_rocks();
        run_ops(&store, &ops)?;
    }

    #[test]
    fn memory_history_matches_the_model(ops in prop::collection::vec(op(), 1..40)) {
        run_history(&cronusfs::storage::MemoryStore::new(), &ops)?;
    }

    #[test]
    fn rocks_history_matches_the_model(ops in prop::collection::vec(op(), 1..40)) {
        let (store, _dir) = temp_rocks();
        run_history(&store, &ops)?;
    }
}

proptest! {
    // Each case is a new schema on a real server and every write a committed transaction.
    #![proptest_config(ProptestConfig { cases: 32, ..ProptestConfig::default() })]

    #[test]
    fn postgres_backend_matches_the_model(ops in prop::collection::vec(op(), 1..40)) {
        let (store, ()) = crate::backends::temp_postgres();
        run_ops(&store, &ops)?;
    }

    #[test]
    fn postgres_history_matches_the_model(ops in prop::collection::vec(op(), 1..40)) {
        let (store, ()) = crate::backends::temp_postgres();
        run_history(&store, &ops)?;
    }
}
