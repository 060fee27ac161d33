//! Row-store benchmark on the RocksDB backend (or, with `--store postgres://…`, on PostgreSQL:
//! each run in a new schema of that database): rows added per second (batches of 1,000), rows
//! lifted per second by prop, prop=value point lookups per second, integer range lifts per
//! second, and the store's size on disk. Prints the median of several runs next to the targets.
//!
//! `cargo bench --bench rowstore -- [--rows N] [--runs R] [--lookups N] [--dir DIR]
//! [--store URL]` (see scripts/bench.sh).

use std::path::{Path, PathBuf};
use std::time::Instant;

use cronusfs::storage::location::{self, Location};
use cronusfs::storage::{Iden, PropQuery, Row, Storage, Valu};

const PROPS_PER_IDEN: usize = 4;
const BATCH: usize = 1000;
const RANGE_LIFTS: usize = 20_000;
/// Width of each integer range lift: about 100 rows of `bench:score` each at 1M rows.
const RANGE_WIDTH: i64 = 100 * 4;

struct Args {
    rows: usize,
    lookups: usize,
    runs: usize,
    dir: PathBuf,
    store: Option<String>,
}

fn parse_args() -> Args {
    let mut args = Args {
        rows: 1_000_000,
        lookups: 100_000,
        runs: 3,
        dir: std::env::temp_dir(),
        store: None,
    };
    let mut it = std::env::args().skip(1);
    while let Some(a) = it.next() {
        match a.as_str() {
            "--rows" => args.rows = it.next().and_then(|v| v.parse().ok()).expect("--rows N"),
            "--lookups" => {
                args.lookups = it.next().and_then(|v| v.parse().ok()).expect("--lookups N")
            }
            "--runs" => args.runs = it.next().and_then(|v| v.parse().ok()).expect("--runs R"),
            "--dir" => args.dir = it.next().map(PathBuf::from).expect("--dir DIR"),
            "--store" => args.store = Some(it.next().expect("--store URL")),
            _ => {} // cargo bench passes --bench; ignore what is not ours.
        }
    }
    args
}

/// A cheap deterministic generator (xorshift), so every run lifts the same data.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

/// The rows of iden number `n`: two integer props and two string props.
fn rows_of(n: usize, iden: &Iden) -> [Row; PROPS_PER_IDEN] {
    let t = 1_700_000_000_000 + n as i64;
    [
        Row::new(iden, "bench:score", (n as i64 * 4) - 2_000_000, t),
        Row::new(iden, "bench:name", format!("name-{n:08}"), t),
        Row::new(iden, "bench:bucket", (n % 1000) as i64, t),
        Row::new(
            iden,
            "bench:kind",
            ["alpha", "beta", "gamma", "delta"][n % 4],
            t,
        ),
    ]
}

/// Read throughput: rows lifted/s, point lookups/s, range lifts/s.
#[derive(Clone, Copy)]
struct Reads {
    lift: f64,
    lookup: f64,
    range: f64,
}

struct Figures {
    add: f64,
    fresh: Reads,
    settled: Reads,
    bytes: u64,
}

fn dir_size(p: &Path) -> u64 {
    std::fs::read_dir(p)
        .map(|rd| {
            rd.flatten()
                .map(|e| e.metadata().map(|m| m.len()).unwrap_or(0))
                .sum()
        })
        .unwrap_or(0)
}

/// Loads the rows in batches; returns rows added per second.
fn load(store: &dyn Storage, idens: &[Iden]) -> f64 {
    let start = Instant::now();
    let mut batch = Vec::with_capacity(BATCH);
    for (n, iden) in idens.iter().enumerate() {
        batch.extend(rows_of(n, iden));
        if batch.len() >= BATCH {
            store.add_rows(&batch).unwrap();
            batch.clear();
        }
    }
    store.add_rows(&batch).unwrap();
    (idens.len() * PROPS_PER_IDEN) as f64 / start.elapsed().as_secs_f64()
}

fn reads(store: &dyn Storage, nodes: usize, lookups: usize, rng: &mut Rng) -> Reads {
    let start = Instant::now();
    let mut lifted = 0;
    for prop in ["bench:score", "bench:name", "bench:bucket", "bench:kind"] {
        lifted += store.rows_by_prop(&PropQuery::new(prop)).unwrap().len();
    }
    assert_eq!(lifted, nodes * PROPS_PER_IDEN);
    let lift = lifted as f64 / start.elapsed().as_secs_f64();

    let start = Instant::now();
    for _ in 0..lookups {
        let n = rng.next() as usize % nodes;
        let v = Valu::Str(format!("name-{n:08}"));
        let got = store
            .rows_by_prop(&PropQuery::new("bench:name").valu(&v))
            .unwrap();
        debug_assert_eq!(got.len(), 1);
    }
    let lookup = lookups as f64 / start.elapsed().as_secs_f64();

    let start = Instant::now();
    let span = (nodes as i64) * 4;
    for _ in 0..RANGE_LIFTS {
        let lo = (rng.next() % span as u64) as i64 - 2_000_000;
        store
            .rows_by_range("bench:score", lo, lo + RANGE_WIDTH, None)
            .unwrap();
    }
    let range = RANGE_LIFTS as f64 / start.elapsed().as_secs_f64();
    Reads {
        lift,
        lookup,
        range,
    }
}

fn one_run(args: &Args, run: usize) -> Figures {
    let dir = tempfile::tempdir_in(&args.dir).expect("bench dir");
    let path = dir.path().join("store");
    let location = match &args.store {
        Some(url) => {
            let schema = format!("bench_{}_{run}", std::process::id());
            Location::parse(Path::new(&format!("{url}?schema={schema}"))).unwrap()
        }
        None => Location::Dir(path.clone()),
    };
    let store = location::create(&location, None).unwrap().rows;
    let nodes = args.rows / PROPS_PER_IDEN;
    let idens: Vec<Iden> = (0..nodes)
        .map(|n| Iden::new(format!("{:032x}", n as u128 * 0x9e3779b97f4a7c15)).unwrap())
        .collect();
    let mut rng = Rng(0x5eed + run as u64);
    let add = load(&store, &idens);
    // Right after the load: memtables full, flushes and compactions still running.
    let fresh = reads(&store, nodes, args.lookups, &mut rng);
    store.sync().unwrap();
    drop(store);
    // Reopened: the WAL is replayed into table files; the state a long-lived store is in.
    let store = location::open(&location).unwrap().rows;
    let settled = reads(&store, nodes, args.lookups, &mut rng);
    drop(store);
    let bytes = dir_size(&path);
    Figures {
        add,
        fresh,
        settled,
        bytes,
    }
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn main() {
    let args = parse_args();
    println!(
        "row-store benchmark: {} rows ({} idens x {PROPS_PER_IDEN} props), {} runs, in {}",
        args.rows,
        args.rows / PROPS_PER_IDEN,
        args.runs,
        args.store
            .as_deref()
            .unwrap_or(&args.dir.display().to_string())
    );
    let runs: Vec<Figures> = (0..args.runs)
        .map(|r| {
            let f = one_run(&args, r);
            let (a, b) = (f.fresh, f.settled);
            println!(
                "  run {r}: add {:.0}/s | fresh: lift {:.0}/s lookup {:.0}/s range {:.0}/s \
                 | settled: lift {:.0}/s lookup {:.0}/s range {:.0}/s | {:.1} MiB",
                f.add,
                a.lift,
                a.lookup,
                a.range,
                b.lift,
                b.lookup,
                b.range,
                f.bytes as f64 / 1048576.0
            );
            f
        })
        .collect();
    let m = |f: &dyn Fn(&Figures) -> f64| median(runs.iter().map(f).collect());
    println!(
        "\nmedian of {} runs                measured      target   vs target \
         (the original on the same data: scripts/bench_synapse.py)",
        runs.len()
    );
    let line = |name: &str, v: f64, target: f64| {
        println!("{name:<31} {v:>12.0} {target:>11.0} {:>10.2}x", v / target);
    };
    line("rows added/s (batch 1000)", m(&|f| f.add), 300_000.0);
    for (state, pick) in [
        ("fresh", (|f: &Figures| f.fresh) as fn(&Figures) -> Reads),
        ("settled", |f| f.settled),
    ] {
        line(
            &format!("rows lifted/s by prop, {state}"),
            m(&|f| pick(f).lift),
            2_000_000.0,
        );
        line(
            &format!("prop=value lookups/s, {state}"),
            m(&|f| pick(f).lookup),
            200_000.0,
        );
        println!(
            "{:<31} {:>12.0}",
            format!("range lifts/s, {state}"),
            m(&|f| pick(f).range)
        );
    }
    println!(
        "{:<31} {:>12.1} MiB",
        "store size on disk",
        m(&|f| f.bytes as f64) / 1048576.0
    );
}
