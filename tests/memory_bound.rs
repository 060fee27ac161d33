//! The daemon's memory follows what the kernel holds, not how big the store is (issue 27,
//! item 3): the kernel's forgets are heard, and past `--max-inodes` the daemon has the kernel
//! forget the entries of files used longest ago, so that a `find` that stats every object of
//! a store far bigger than the bound holds no more than it, and the daemon's table of
//! numbers near it.

use std::path::Path;
use std::time::Duration;

use cronusfs::fs::{Caller, FsCore, FsOptions, Ino, KernelInval};
use cronusfs::meta::{DatasetId, Metastore, ObjectPath};
use cronusfs::storage::{MemoryStore, RocksStore};

use crate::fs_core::{job_dir, options, write_file};
use crate::metastore::dataset;
use crate::mount::Mounted;

/// Job directories, and objects in each.
const JOBS: usize = 100;
const PER_JOB: usize = 2_000;

/// The bound the test mounts with: a tenth of the objects.
const MAX_INODES: usize = 20_000;

/// Fills the store at `store` (made, not mounted) with [`JOBS`] job directories of
/// [`PER_JOB`] one-byte objects.
fn fill(store: &Path) {
    let m = Metastore::new(RocksStore::open(store).unwrap());
    let (ds, _, _) = dataset(&m, &["k"]);
    for _ in 0..JOBS {
        let job = m.new_job(ds).unwrap();
        for i in 0..PER_JOB {
            let path = ObjectPath::new(ds, "k", job, &format!("o{i}.bin"));
            m.put_object(&path, &mut &b"x"[..], &mut |_| {}).unwrap();
        }
    }
}

/// The value of gauge `name` in the `.cronusfs/stats` of the mount at `mnt`.
fn gauge_at(mnt: &Path, name: &str) -> f64 {
    let stats = std::fs::read_to_string(mnt.join(".cronusfs/stats")).unwrap();
    let line = (stats.lines())
        .find(|l| l.split(' ').next() == Some(name))
        .unwrap_or_else(|| panic!("no {name} in the stats:\n{stats}"));
    line.rsplit(' ').next().unwrap().parse().unwrap()
}

/// The value of gauge `name` in the mount's `.cronusfs/stats`.
fn gauge(m: &Mounted, name: &str) -> f64 {
    gauge_at(&m.mnt, name)
}

/// Runs `work` while sampling gauge `name` every 100 ms; returns the largest value seen.
fn peak_while(m: &Mounted, name: &str, work: impl FnOnce()) -> f64 {
    let done = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let (mnt, stop, name) = (m.mnt.clone(), done.clone(), name.to_string());
    let sampler = std::thread::spawn(move || {
        let mut peak = 0f64;
        while !stop.load(std::sync::atomic::Ordering::SeqCst) {
            peak = peak.max(gauge_at(&mnt, &name));
            std::thread::sleep(Duration::from_millis(100));
        }
        peak
    });
    work();
    done.store(true, std::sync::atomic::Ordering::SeqCst);
    sampler.join().unwrap()
}

/// Waits (at most 10 s: the gauges move once a second) until gauge `name` is at most `most`;
/// returns its last value.
fn settles_at_most(m: &Mounted, name: &str, most: f64) -> f64 {
    let started = std::time::Instant::now();
    loop {
        let value = gauge(m, name);
        if value <= most || started.elapsed() > std::time::Duration::from_secs(10) {
            return value;
        }
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
}

#[test]
fn find_over_a_store_ten_times_the_bound_leaves_the_kernel_and_the_daemon_within_it() {
    let bound = MAX_INODES.to_string();
    let m = Mounted::filled(&["--max-inodes", &bound], &fill);
    let resident = CwdInJob::start(&m);
    // `-size` needs every object's attributes: each is looked up or listed with them.
    let mut found = String::new();
    let peak = peak_while(&m, "cronusfs_inodes_held", || {
        found = m.ok("find $M/datasets -name 'o*.bin' -size -2 | wc -l");
    });
    assert_eq!(found.trim(), (JOBS * PER_JOB).to_string());
    // Over the bound only by what a round's 100 ms let `find` look up (and its gauge's second).
    assert!(
        peak <= 1.5 * MAX_INODES as f64,
        "the kernel held {peak} inodes"
    );
    let held = settles_at_most(&m, "cronusfs_inodes_held", MAX_INODES as f64);
    assert!(
        held <= MAX_INODES as f64,
        "the kernel still holds {held} inodes"
    );
    assert!(gauge(&m, "cronusfs_inode_budget_rounds_total") >= 1.0);
    // Numbers the kernel forgot go a sweep period later (4,096 numbers given out since, or a
    // quarter of the table): the table stays within twice what the kernel holds, not the store.
    let numbered = gauge(&m, "cronusfs_inodes");
    let most = (2 * MAX_INODES + 2 * 4_096) as f64;
    assert!(numbered <= most, "{numbered} numbers kept");
    // Everything reads again, looked up anew where the kernel forgot it.
    let again = m.ok("find $M/datasets -name 'o*.bin' -size -2 | wc -l");
    assert_eq!(again.trim(), found.trim());
    // The kernel was never told to forget a directory: a working directory stays whole.
    resident.still_there();
    let rss = gauge(&m, "cronusfs_resident_memory_bytes") / f64::from(1 << 20);
    println!("peak {peak}, held {held}, numbered {numbered}, resident {rss:.0} MiB");
}

/// Enters job directory 0 and reads a file there, waits for a flag file, then prints its
/// working directory (`getcwd`) and reads another file by a relative path.
const CWD_IN_JOB: &str = r#"
import os, sys, time
os.chdir(sys.argv[1])
assert open("o0.bin").read() == "x"
print("in", flush=True)
deadline = time.time() + 600
while not os.path.exists(sys.argv[2]) and time.time() < deadline:
    time.sleep(0.05)
print(os.getcwd())
print(open("o1.bin").read())
"#;

/// A process whose working directory is a job directory while rounds of forgetting pass.
struct CwdInJob {
    child: Option<std::process::Child>,
    job: std::path::PathBuf,
    flag: std::path::PathBuf,
}

impl CwdInJob {
    fn start(m: &Mounted) -> Self {
        let datasets = std::fs::read_dir(m.mnt.join("datasets")).unwrap();
        let ds = datasets.map(|e| e.unwrap().path()).next().unwrap();
        let job = ds.join("partitions/k/jobs/0");
        let flag = m.tmp.path().join("cwd-go");
        let mut child = std::process::Command::new("python3")
            .args(["-c", CWD_IN_JOB])
            .arg(&job)
            .arg(&flag)
            .stdout(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let mut line = String::new();
        let out = child.stdout.as_mut().unwrap();
        std::io::BufRead::read_line(&mut std::io::BufReader::new(out), &mut line).unwrap();
        assert_eq!(line, "in\n");
        CwdInJob {
            child: Some(child),
            job,
            flag,
        }
    }

    fn still_there(mut self) {
        std::fs::write(&self.flag, b"").unwrap();
        let child = self.child.take().unwrap();
        let out = child.wait_with_output().unwrap();
        let said = String::from_utf8_lossy(&out.stdout);
        assert!(out.status.success(), "{said}");
        assert_eq!(said.trim(), format!("{}\nx", self.job.display()));
    }
}

impl Drop for CwdInJob {
    fn drop(&mut self) {
        if let Some(child) = &mut self.child {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// The policy without a mount: entries given to the kernel are counted with their names,
/// forgets lower the count, and past the bound the least used entries of files are the ones
/// the kernel is told to forget, never a directory (some process may have it as its working
/// directory).
#[test]
fn past_the_bound_the_kernel_is_told_to_forget_the_least_used_files() {
    let dir = tempfile::tempdir().unwrap();
    let options = FsOptions {
        max_inodes: 6,
        ..options(dir.path())
    };
    let fs = FsCore::new(Metastore::new(MemoryStore::new()), options).unwrap();
    let ds = DatasetId::random();
    let jobs: Vec<Ino> = (0..4).map(|j| job_dir(&fs, ds, "k", j)).collect();
    let jobs_dir = fs.parent_of(jobs[0]).unwrap();
    let caller = Caller::root();
    let mut held = Vec::new();
    for (j, &job) in jobs.iter().enumerate() {
        // As `find` walks: the job directory, then each file in it.
        let job_attr = fs.lookup_held(jobs_dir, &j.to_string(), &caller).unwrap();
        held.push(job_attr.ino);
        for name in ["a", "b"] {
            write_file(&fs, job, name, b"x");
            held.push(fs.lookup_held(job, name, &caller).unwrap().ino);
        }
    }
    assert_eq!(fs.census().held_inodes, 12);
    let mut sent = Vec::new();
    fs.send_negative_invalidations(Duration::from_secs(5), &mut |inval| {
        // Changes queue attributes to forget too (a new job moves its dataset's rows).
        if let KernelInval::Entry(..) = inval {
            sent.push(inval);
        }
    });
    // The bound was passed at job 2's lookup, 7 held: back to 3 needs 4 forgotten, and only
    // the four files qualify, oldest first (a slow run may have begun another round since).
    let entry = |job: usize, name: &str| KernelInval::Entry(jobs[job], name.into());
    let first = [entry(0, "a"), entry(0, "b"), entry(1, "a"), entry(1, "b")];
    assert_eq!(sent.get(..4), Some(&first[..]), "{sent:?}");
    assert!(
        sent.iter()
            .all(|s| !matches!(s, KernelInval::Entry(d, _) if *d == jobs_dir))
    );
    // The kernel forgets job 0's files (and, given job 3 twice, forgets it once).
    for &ino in &held[1..3] {
        fs.forget(ino, 1);
    }
    assert!(fs.hold(held[9], jobs_dir, "3"));
    fs.forget(held[9], 1);
    assert_eq!(fs.census().held_inodes, 10);
    // A forgotten number still answers for a while: a lookup answered meanwhile keeps it.
    assert_eq!(fs.lookup_held(jobs[0], "a", &caller).unwrap().ino, held[1]);
    assert_eq!(fs.census().held_inodes, 11);
}
