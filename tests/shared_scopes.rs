//! Announcements scoped to datasets (PostgreSQL + S3, each "host" its own daemon): another
//! host's commits within one dataset leave what a daemon keeps of the others (its listings
//! are served again without a read of the store), and drop at once what it keeps of that
//! dataset and of the views across datasets.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::thread::sleep;
use std::time::{Duration, Instant};

use crate::metrics::{Scrape, stats_file};
use crate::mount::Mounted;

/// What a daemon asked its PostgreSQL server so far.
fn server_requests(s: &Scrape) -> f64 {
    s.sum(r#"cronusfs_engine_requests_total{engine="postgres""#)
}

fn heard(s: &Scrape) -> f64 {
    s.get("cronusfs_announcements_heard_total")
}

/// The names in directory `dir`, sorted.
fn names(dir: &std::path::Path) -> Vec<String> {
    let mut out: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    out.sort();
    out
}

/// Waits (at most 10 s) until `ready` holds.
fn wait_until(what: &str, ready: impl Fn() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !ready() {
        assert!(Instant::now() < deadline, "never {what}");
        sleep(Duration::from_millis(20));
    }
}

/// Host A lists a job directory of dataset 1 again and again while host B commits files
/// into dataset 2 as fast as it can: A hears B's commits, and serves its listing from what it
/// keeps (a store that announced every commit to everyone dropped it at each one, and A read
/// the directory anew at almost every listing). A file B then writes into dataset 1 shows in
/// A's listing at once, and a tag B sets in dataset 2 in A's query view.
#[test]
fn another_datasets_commits_leave_a_daemons_listings_and_its_own_drop_them() {
    // The fallback time-to-live is long: only announcements drop what A keeps.
    let a = Mounted::shared_with(&[("CRONUSFS_CACHE_TTL_MS", "600000")]);
    let b = a.another_daemon();
    let (job1, job2) = (a.job_dir(), b.job_dir());
    for i in 0..100 {
        std::fs::write(job1.join(format!("f{i:03}")), b"x").unwrap();
    }
    let in_b = |p: &std::path::Path| b.mnt.join(p.strip_prefix(&a.mnt).unwrap());
    let job1_in_b = in_b(&job1);
    wait_until("B sees dataset 1", || job1_in_b.join("f099").exists());
    assert_eq!(names(&job1).len(), 100);
    // What a listing asks of the server when nobody changes anything (the kernel asks the
    // directory's attributes again after each listing, for its access time).
    let quiet = stats_file(&a);
    for _ in 0..50 {
        assert_eq!(names(&job1).len(), 100);
    }
    let quiet_asked = (server_requests(&stats_file(&a)) - server_requests(&quiet)) / 50.0;
    let stop = AtomicBool::new(false);
    let written = AtomicUsize::new(0);
    let (before, after, listings) = std::thread::scope(|s| {
        s.spawn(|| {
            for i in 0.. {
                if stop.load(Ordering::SeqCst) {
                    break;
                }
                std::fs::write(job2.join(format!("g{i}")), b"y").unwrap();
                written.fetch_add(1, Ordering::SeqCst);
            }
        });
        let started = stats_file(&a);
        wait_until("A hears B's commits", || {
            heard(&stats_file(&a)) >= heard(&started) + 20.0
        });
        let before = stats_file(&a);
        let mut listings = 0;
        while heard(&stats_file(&a)) < heard(&before) + 100.0 {
            assert_eq!(names(&job1).len(), 100);
            listings += 1;
            assert!(listings < 100_000, "A never heard 100 more announcements");
        }
        let after = stats_file(&a);
        stop.store(true, Ordering::SeqCst);
        (before, after, listings)
    });
    let asked = server_requests(&after) - server_requests(&before);
    let heard_meanwhile = heard(&after) - heard(&before);
    eprintln!("measured: a listing asks the server {quiet_asked} times on a quiet store");
    eprintln!(
        "measured: {listings} listings of dataset 1 on host A while it heard {heard_meanwhile} \
         commits into dataset 2 ({} written by B): {asked} requests to the server",
        written.load(Ordering::SeqCst)
    );
    assert!(listings >= 5, "only {listings} listings");
    // A's own heartbeats may ask a few more.
    let per_listing = asked / listings as f64;
    assert!(
        per_listing <= quiet_asked + 0.5,
        "a listing of a dataset nobody changed asked the server {per_listing} times while \
         another dataset changed, {quiet_asked} while nothing did"
    );
    let drops = |s: &Scrape| s.get(r#"cronusfs_cache_drops_total{reach="store"}"#);
    assert_eq!(
        drops(&after),
        drops(&before),
        "A dropped everything it kept"
    );

    // B's commit within dataset 1 drops what A keeps of it.
    std::fs::write(job1_in_b.join("from-b"), b"z").unwrap();
    wait_until("A lists B's file in dataset 1", || {
        names(&job1).contains(&"from-b".to_string())
    });

    // A view across datasets follows a tag set in dataset 2.
    let view = a.mnt.join("query/scopedtest=1");
    assert!(names(&view).is_empty());
    let tagged = job2.join("g0");
    let out = b.sh(&format!(
        "setfattr -n user.scopedtest -v 1 {}",
        tagged.display()
    ));
    crate::mount::assert_success(&out);
    wait_until("A's query view shows B's tag", || names(&view).len() == 1);
}

/// The mode of `path`, as `stat` says (`None`: no such path).
fn mode(path: &std::path::Path) -> Option<u32> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path)
        .ok()
        .map(|m| m.permissions().mode() & 0o7777)
}

/// With a minute of time-to-live everywhere (only announcements can do it): a `chmod` of a
/// job, partition and dataset directory on host B reaches host A's kernel, while a process
/// keeps its working directory in that job directory on A (its `getcwd` still answers); a
/// partition and a dataset B removes are gone on A.
#[test]
fn another_hosts_change_of_a_directory_reaches_this_kernel() {
    let (a, b) = Mounted::shared_pair_kept_a_minute();
    let job = a.job_dir();
    let partition = job.parent().unwrap().parent().unwrap().to_path_buf();
    let dataset = partition.parent().unwrap().parent().unwrap().to_path_buf();
    let in_b = |p: &std::path::Path| b.mnt.join(p.strip_prefix(&a.mnt).unwrap());
    wait_until("B sees the job directory", || in_b(&job).exists());
    let dirs = [(&job, 0o750), (&partition, 0o700), (&dataset, 0o751)];
    for (dir, _) in dirs {
        assert_eq!(mode(dir), Some(0o755), "{}", dir.display());
    }
    let cwd = std::process::Command::new("sh")
        .arg("-c")
        .arg("cd \"$0\" && sleep 2 && pwd -P")
        .arg(&job)
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    sleep(Duration::from_millis(300));
    for (dir, new) in dirs {
        std::fs::set_permissions(in_b(dir), std::os::unix::fs::PermissionsExt::from_mode(new))
            .unwrap();
        wait_until(&format!("A sees mode {new:o} of {}", dir.display()), || {
            mode(dir) == Some(new)
        });
    }
    let out = cwd.wait_with_output().unwrap();
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        job.to_str().unwrap(),
        "the working directory in the job directory went"
    );
    let other = dataset.join("partitions/other");
    std::fs::create_dir(&other).unwrap();
    let ds2 = a.job_dir();
    let dataset2 = ds2.ancestors().nth(4).unwrap().to_path_buf();
    wait_until("B sees both", || {
        in_b(&other).exists() && in_b(&ds2).exists()
    });
    std::fs::remove_dir(in_b(&other)).unwrap();
    wait_until("A loses the partition B removed", || !other.exists());
    std::fs::remove_dir(in_b(&ds2)).unwrap();
    std::fs::remove_dir(in_b(&dataset2.join("partitions/k"))).unwrap();
    std::fs::remove_dir(in_b(&dataset2)).unwrap();
    wait_until("A loses the dataset B removed", || !dataset2.exists());
}

/// On one host (a store directory), this mount's own writes into one dataset leave what it
/// keeps of another: listings of an unchanged job directory are served again while a writer
/// commits files next door (each write and commit dropped every listing before).
#[test]
fn this_mounts_writes_in_one_dataset_leave_its_listings_of_another() {
    let m = Mounted::new();
    let (job1, job2) = (m.job_dir(), m.job_dir());
    for i in 0..100 {
        std::fs::write(job1.join(format!("f{i:03}")), b"x").unwrap();
    }
    assert_eq!(names(&job1).len(), 100);
    let before = stats_file(&m);
    let done = AtomicBool::new(false);
    let listings = std::thread::scope(|s| {
        s.spawn(|| {
            for i in 0..300 {
                std::fs::write(job2.join(format!("g{i}")), vec![7u8; 4096]).unwrap();
            }
            done.store(true, Ordering::SeqCst);
        });
        let mut listings = 0;
        while !done.load(Ordering::SeqCst) || listings < 20 {
            assert_eq!(names(&job1).len(), 100);
            listings += 1;
        }
        listings
    });
    let after = stats_file(&m);
    let moved = |key: &str| after.get(key) - before.get(key);
    let kept = |kind: &str, result: &str| {
        moved(&format!(
            r#"cronusfs_kept_answers_total{{kind="{kind}",result="{result}"}}"#
        ))
    };
    let (hit, missed) = (kept("listing", "hit"), kept("listing", "miss"));
    let (attr_hit, attr_missed) = (kept("attributes", "hit"), kept("attributes", "miss"));
    eprintln!(
        "measured: {listings} listings while 300 files were written next door: {hit} kept, \
         {missed} read anew; directories' attributes {attr_hit} kept, {attr_missed} read anew"
    );
    assert!(
        hit >= listings as f64 - 2.0,
        "{hit} of {listings} listings kept"
    );
    assert!(missed <= 2.0, "{missed} listings read anew");
    // Three a listing (the directory, `.` and `..`) are kept; the writer's own directory's
    // are read anew after each of its files.
    assert!(
        attr_hit >= 2.0 * listings as f64,
        "directories' attributes: {attr_hit} kept, {attr_missed} read anew for {listings} listings"
    );
}
