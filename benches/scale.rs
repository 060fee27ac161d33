//! Fills a store for the scale benchmark (`scripts/bench_scale.py`): one dataset, partition
//! `k`, `--jobs J` job directories of `--per-job N` small objects each, written through the
//! library (a mount would take an hour for a million), with the rate printed.
//!
//! `cargo bench --bench scale -- --store DIR --jobs J --per-job N` (DIR made by `cronusfs init`).

use std::path::PathBuf;
use std::time::Instant;

use cronusfs::meta::{Metastore, ObjectPath};
use cronusfs::pb::cronus::{Configuration, Menu};
use cronusfs::pb::store::{ConfigObjectInfo, MenuObjectInfo};
use cronusfs::storage::RocksStore;

struct Args {
    store: PathBuf,
    jobs: usize,
    per_job: usize,
}

fn parse_args() -> Args {
    let (mut store, mut jobs, mut per_job) = (None, 10, 1000);
    let mut it = std::env::args().skip(1);
    while let Some(a) = it.next() {
        match a.as_str() {
            "--store" => store = it.next().map(PathBuf::from),
            "--jobs" => jobs = it.next().and_then(|v| v.parse().ok()).expect("--jobs J"),
            "--per-job" => per_job = it.next().and_then(|v| v.parse().ok()).expect("--per-job N"),
            _ => {} // cargo bench passes --bench.
        }
    }
    Args {
        store: store.expect("--store DIR"),
        jobs,
        per_job,
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
    for j in 0..args.jobs {
        let job = m.new_job(ds).unwrap();
        for i in 0..args.per_job {
            let path = ObjectPath::new(ds, "k", job, &format!("o{i:07}.bin"));
            let bytes = format!("{j}/{i}\n");
            m.put_object(&path, &mut bytes.as_bytes(), &mut |_| {})
                .unwrap();
        }
    }
    let n = args.jobs * args.per_job;
    let secs = started.elapsed().as_secs_f64();
    println!("dataset {ds}");
    println!(
        "filled {n} objects in {secs:.1} s: {:.0} objects/s",
        n as f64 / secs
    );
}
