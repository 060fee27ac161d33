//! Fills a store for the scale benchmark (`scripts/bench_scale.py`): one dataset, partition
//! `k`, `--jobs J` job directories of `--per-job N` small objects each, written through the
//! library by `--threads T` writers (a mount would take an hour for a million), with the rate
//! printed; `--tagged M` of the objects, spread evenly, get the row `quality=10` (what a query
//! view of M matches lists).
//!
//! `cargo bench --bench scale -- --store DIR --jobs J --per-job N [--threads T] [--tagged M]`
//! (DIR made by `cronusfs init`).

use std::path::PathBuf;
use std::time::Instant;

use cronusfs::meta::{DatasetId, Metastore, ObjectPath};
use cronusfs::pb::cronus::{Configuration, Menu};
use cronusfs::pb::store::{ConfigObjectInfo, MenuObjectInfo};
use cronusfs::storage::RocksStore;
use cronusfs::storage::Valu;

struct Args {
    store: PathBuf,
    jobs: usize,
    per_job: usize,
    threads: usize,
    tagged: usize,
}

fn parse_args() -> Args {
    let (mut store, mut jobs, mut per_job) = (None, 10, 1000);
    let (mut threads, mut tagged) = (1, 0);
    let mut it = std::env::args().skip(1);
    while let Some(a) = it.next() {
        match a.as_str() {
            "--store" => store = it.next().map(PathBuf::from),
            "--jobs" => jobs = it.next().and_then(|v| v.parse().ok()).expect("--jobs J"),
            "--per-job" => per_job = it.next().and_then(|v| v.parse().ok()).expect("--per-job N"),
            "--threads" => threads = it.next().and_then(|v| v.parse().ok()).expect("--threads T"),
            "--tagged" => tagged = it.next().and_then(|v| v.parse().ok()).expect("--tagged M"),
            _ => {} // cargo bench passes --bench.
        }
    }
    Args {
        store: store.expect("--store DIR"),
        jobs,
        per_job,
        threads: threads.max(1),
        tagged,
    }
}

fn main() {
    let args = parse_args();
    let m = Metastore::new(RocksStore::open(&args.store).expect("a store made by cronusfs init"));
    let menu = Menu {
        uuid: uuid::Uuid::new_v4().to_string(),
        ..Default::default()
    };
    let config = Configuration {
        uuid: uuid::Uuid::new_v4().to_string(),
        ..Default::default()
    };
    m.register_menu(&menu, MenuObjectInfo::default()).unwrap();
    m.register_config(&config, ConfigObjectInfo::default())
        .unwrap();
    let ds = m.register_dataset(&menu.uuid, &config.uuid).unwrap();
    m.add_partition(ds, "k").unwrap();
    let started = Instant::now();
    let n = args.jobs * args.per_job;
    // Every `every`-th object (counting across jobs) is tagged.
    let every = match args.tagged {
        0 => usize::MAX,
        t => (n / t).max(1),
    };
    std::thread::scope(|s| {
        for t in 0..args.threads {
            let (m, args) = (&m, &args);
            s.spawn(move || {
                for j in (t..args.jobs).step_by(args.threads) {
                    fill_job(m, ds, j, args.per_job, every);
                }
            });
        }
    });
    let secs = started.elapsed().as_secs_f64();
    println!("dataset {ds}");
    println!(
        "filled {n} objects in {secs:.1} s: {:.0} objects/s",
        n as f64 / secs
    );
}

/// Writes job directory `j` (made now: job numbers follow the order writers ask) of `per_job`
/// objects; tags those whose number across jobs is a multiple of `every`.
fn fill_job(m: &Metastore<RocksStore>, ds: DatasetId, j: usize, per_job: usize, every: usize) {
    let job = m.new_job(ds).unwrap();
    for i in 0..per_job {
        let path = ObjectPath::new(ds, "k", job, &format!("o{i:07}.bin"));
        let bytes = format!("{j}/{i}\n");
        let o = m
            .put_object(&path, &mut bytes.as_bytes(), &mut |_| {})
            .unwrap();
        if (j * per_job + i).is_multiple_of(every) {
            m.set_node_row(&o.id.iden(), "quality", &Valu::Int(10), false)
                .unwrap();
        }
    }
}
