//! Object benchmark: `put_object` and reading back of a 1 GiB Arrow IPC file through the
//! library, next to writing and reading the same bytes as a plain file on the same disk, in one
//! run; throughput of each, their ratio, and each phase's peak resident memory.
//!
//! `cargo bench --bench objects -- [--mib N] [--runs R] [--dir DIR]` (see scripts/bench.sh).

use std::fs::File;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use arrow_array::{ArrayRef, Float64Array, Int64Array, RecordBatch};
use arrow_ipc::writer::FileWriter;
use arrow_schema::{DataType, Field, Schema};
use cronusfs::meta::{Metastore, ObjectPath};
use cronusfs::pb::cronus::{Configuration, Menu};
use cronusfs::pb::store::{ConfigObjectInfo, FileType, MenuObjectInfo};
use cronusfs::storage::RocksStore;

struct Args {
    mib: usize,
    runs: usize,
    dir: PathBuf,
}

fn parse_args() -> Args {
    let mut args = Args {
        mib: 1024,
        runs: 3,
        dir: std::env::temp_dir(),
    };
    let mut it = std::env::args().skip(1);
    while let Some(a) = it.next() {
        match a.as_str() {
            "--mib" => args.mib = it.next().and_then(|v| v.parse().ok()).expect("--mib N"),
            "--runs" => args.runs = it.next().and_then(|v| v.parse().ok()).expect("--runs R"),
            "--dir" => args.dir = it.next().map(PathBuf::from).expect("--dir DIR"),
            _ => {} // cargo bench passes --bench.
        }
    }
    args
}

/// Writes an Arrow IPC file of about `mib` MiB of pseudo-random int64/float64 columns.
fn make_arrow_file(path: &Path, mib: usize) {
    const ROWS: usize = 65_536; // 1 MiB per batch: 2 columns x 8 bytes x 64 Ki rows.
    let schema = Arc::new(Schema::new(vec![
        Field::new("id", DataType::Int64, false),
        Field::new("x", DataType::Float64, false),
    ]));
    let mut w = FileWriter::try_new(File::create(path).unwrap(), &schema).unwrap();
    let mut seed = 0x9E37_79B9_7F4A_7C15u64;
    for b in 0..mib {
        let ids = Int64Array::from_iter_values((0..ROWS).map(|i| (b * ROWS + i) as i64));
        let xs = Float64Array::from_iter_values((0..ROWS).map(|_| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            (seed >> 11) as f64
        }));
        let cols: Vec<ArrayRef> = vec![Arc::new(ids), Arc::new(xs)];
        w.write(&RecordBatch::try_new(schema.clone(), cols).unwrap())
            .unwrap();
    }
    w.finish().unwrap();
}

/// Resets the process's peak resident set size (Linux `clear_refs` 5).
fn reset_peak() {
    let _ = std::fs::write("/proc/self/clear_refs", "5");
}

/// Returns the peak resident set size since the last reset, in MiB.
fn peak_mib() -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let kib = status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok());
    kib.unwrap_or(0.0) / 1024.0
}

/// Runs `f`, returning (seconds, peak MiB during it).
fn timed(f: impl FnOnce()) -> (f64, f64) {
    reset_peak();
    let start = Instant::now();
    f();
    (start.elapsed().as_secs_f64(), peak_mib())
}

fn drain(mut r: impl Read) -> u64 {
    let mut buf = vec![0u8; 1 << 20];
    let mut n = 0;
    loop {
        match r.read(&mut buf).unwrap() {
            0 => return n,
            k => n += k as u64,
        }
    }
}

struct Figures {
    plain_write: (f64, f64),
    put: (f64, f64),
    plain_read: (f64, f64),
    get: (f64, f64),
}

fn one_run(args: &Args, source: &Path, size: u64) -> Figures {
    let dir = tempfile::tempdir_in(&args.dir).unwrap();
    let plain = dir.path().join("plain.arrow");
    let plain_write = timed(|| {
        let mut out = File::create(&plain).unwrap();
        std::io::copy(&mut File::open(source).unwrap(), &mut out).unwrap();
        out.flush().unwrap();
    });
    let m = Metastore::new(RocksStore::create(&dir.path().join("store")).unwrap());
    let (menu, config) = (
        Menu {
            uuid: "m".into(),
            ..Default::default()
        },
        Configuration {
            uuid: "c".into(),
            ..Default::default()
        },
    );
    m.register_menu(&menu, MenuObjectInfo::default()).unwrap();
    m.register_config(&config, ConfigObjectInfo::default())
        .unwrap();
    let ds = m.register_dataset("m", "c").unwrap();
    m.add_partition(ds, "key").unwrap();
    let path = ObjectPath::new(ds, "key", m.new_job(ds).unwrap(), "big.arrow");
    let put = timed(|| {
        let meta = m
            .put_object(&path, &mut File::open(source).unwrap(), &mut |_| {})
            .unwrap();
        assert_eq!((meta.size, meta.file_type), (size, FileType::Arrow));
    });
    let plain_read = timed(|| assert_eq!(drain(File::open(&plain).unwrap()), size));
    let get = timed(|| {
        let meta = m.object(&path).unwrap();
        assert_eq!(drain(m.open(&meta).unwrap()), size);
    });
    Figures {
        plain_write,
        put,
        plain_read,
        get,
    }
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn main() {
    let args = parse_args();
    let source_dir = tempfile::tempdir_in(&args.dir).unwrap();
    let source = source_dir.path().join("source.arrow");
    make_arrow_file(&source, args.mib);
    let size = std::fs::metadata(&source).unwrap().len();
    let mib = size as f64 / 1048576.0;
    println!(
        "object benchmark: Arrow file of {mib:.0} MiB, {} runs, in {}",
        args.runs,
        args.dir.display()
    );
    let runs: Vec<Figures> = (0..args.runs)
        .map(|r| {
            let f = one_run(&args, &source, size);
            let rate = |t: (f64, f64)| mib / t.0;
            println!(
                "  run {r}: plain write {:.0} MiB/s, put {:.0} MiB/s | plain read {:.0} MiB/s, get {:.0} MiB/s",
                rate(f.plain_write), rate(f.put), rate(f.plain_read), rate(f.get)
            );
            f
        })
        .collect();
    let rate =
        |pick: fn(&Figures) -> (f64, f64)| median(runs.iter().map(|f| mib / pick(f).0).collect());
    let peak =
        |pick: fn(&Figures) -> (f64, f64)| runs.iter().map(|f| pick(f).1).fold(0.0, f64::max);
    let (pw, pu, pr, ge) = (
        rate(|f| f.plain_write),
        rate(|f| f.put),
        rate(|f| f.plain_read),
        rate(|f| f.get),
    );
    println!(
        "\nmedian of {} runs     MiB/s   ratio to plain   target   peak RSS (MiB, max of runs)",
        runs.len()
    );
    println!(
        "plain write        {pw:>8.0}                              {:>6.0}",
        peak(|f| f.plain_write)
    );
    println!(
        "put_object         {pu:>8.0}   {:>10.2}x       0.50x   {:>6.0}",
        pu / pw,
        peak(|f| f.put)
    );
    println!(
        "plain read (warm)  {pr:>8.0}                              {:>6.0}",
        peak(|f| f.plain_read)
    );
    println!(
        "get (read back)    {ge:>8.0}   {:>10.2}x       0.70x   {:>6.0}",
        ge / pr,
        peak(|f| f.get)
    );
}
