//! `mount --metrics`: a real mount scraped over HTTP while a known workload runs, its counters
//! moving by what the workload did (creates, bytes written and read, commits, lookups of
//! missing names, content cache hits, conflicts injected through the faulty engine), a shared
//! store's PostgreSQL, S3 and announcement counters, the metrics page listing every metric, and
//! an address already in use refusing the mount.

use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::time::{Duration, Instant};

use crate::mount::Mounted;

/// One scrape: every sample, by its name and labels as written (`name{a="b"}`).
pub struct Scrape(HashMap<String, f64>);

impl Scrape {
    /// Reads Prometheus text: every sample line, each value a number.
    fn parse(text: &str) -> Scrape {
        let samples = text
            .lines()
            .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
            .map(|l| {
                let (key, value) = l.rsplit_once(' ').unwrap();
                (key.to_string(), value.parse::<f64>().unwrap())
            })
            .collect();
        Scrape(samples)
    }

    pub fn get(&self, key: &str) -> f64 {
        self.0.get(key).copied().unwrap_or(0.0)
    }

    /// Returns the sum of the samples whose name and labels begin with `prefix`.
    pub fn sum(&self, prefix: &str) -> f64 {
        (self.0.iter())
            .filter(|(k, _)| k.starts_with(prefix))
            .map(|(_, v)| v)
            .sum()
    }
}

/// Returns where the daemon of `m` serves its metrics, from its log.
fn metrics_addr(m: &Mounted) -> String {
    let log = std::fs::read_to_string(&m.log).unwrap();
    let at = log
        .find("http://")
        .expect("the log names the metrics address");
    let rest = &log[at + "http://".len()..];
    rest[..rest.find("/metrics").unwrap()].to_string()
}

/// Sends `request` to `addr` and returns the whole answer.
fn http(addr: &str, request: &str) -> String {
    let mut stream = TcpStream::connect(addr).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    stream.write_all(request.as_bytes()).unwrap();
    let mut answer = String::new();
    stream.read_to_string(&mut answer).unwrap();
    answer
}

/// Scrapes the metrics of `m`'s daemon.
fn scrape(m: &Mounted) -> Scrape {
    let answer = http(&metrics_addr(m), "GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n");
    let (head, body) = answer.split_once("\r\n\r\n").unwrap();
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    assert!(head.contains("text/plain; version=0.0.4"), "{head}");
    Scrape::parse(body)
}

/// Scrapes until `ready` holds (gauges move once a second), at most 20 s.
fn scrape_until(m: &Mounted, ready: impl Fn(&Scrape) -> bool) -> Scrape {
    let started = Instant::now();
    loop {
        let s = scrape(m);
        if ready(&s) || started.elapsed() > Duration::from_secs(20) {
            return s;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

fn mount_with_metrics(env: &[(&str, &str)]) -> Mounted {
    Mounted::with_options_and_env(&["--metrics", "127.0.0.1:0"], env)
}

#[test]
fn a_scrape_shows_what_a_workload_did() {
    let m = mount_with_metrics(&[("CRONUSFS_INJECT_CONFLICTS", "3")]);
    let job = m.job_dir();
    let before = scrape(&m);
    let sizes: Vec<usize> = (0..10).map(|i| 100 + 37 * i).collect();
    for (i, size) in sizes.iter().enumerate() {
        std::fs::write(job.join(format!("f{i}.txt")), vec![b'x'; *size]).unwrap();
    }
    for i in 0..sizes.len() {
        std::fs::read(job.join(format!("f{i}.txt"))).unwrap();
    }
    assert!(std::fs::metadata(job.join("missing")).is_err());
    let after = scrape_until(&m, |s| s.get("cronusfs_inodes") >= 10.0);
    let moved = |key: &str| after.get(key) - before.get(key);
    let written: usize = sizes.iter().sum();
    assert_eq!(moved(r#"cronusfs_fuse_requests_total{op="create"}"#), 10.0);
    assert_eq!(
        moved(r#"cronusfs_fuse_request_duration_seconds_count{op="create"}"#),
        10.0
    );
    assert!(moved(r#"cronusfs_fuse_request_duration_seconds_sum{op="create"}"#) > 0.0);
    assert_eq!(moved("cronusfs_fuse_written_bytes_total"), written as f64);
    assert!(moved("cronusfs_fuse_read_bytes_total") >= written as f64);
    assert_eq!(moved(r#"cronusfs_commits_total{result="committed"}"#), 10.0);
    assert!(moved(r#"cronusfs_fuse_request_errors_total{op="lookup",errno="ENOENT"}"#) >= 11.0);
    assert!(moved(r#"cronusfs_engine_requests_total{engine="rocksdb",op="write"}"#) >= 10.0);
    assert!(moved(r#"cronusfs_transactions_total{result="committed"}"#) >= 10.0);
    // The three conflicts injected at the first commits were each retried, and nothing gave up.
    assert_eq!(after.get("cronusfs_transaction_conflicts_total"), 3.0);
    assert_eq!(after.get("cronusfs_transaction_retries_total"), 3.0);
    assert_eq!(
        after.get(r#"cronusfs_transactions_total{result="contended"}"#),
        0.0
    );
    assert!(after.get("cronusfs_resident_memory_bytes") > 1e6);
    assert!(after.get("cronusfs_start_time_seconds") > 1.7e9);
    // A content worth caching: the first reader misses, the next is served by the kernel.
    let big = job.join("big.bin");
    std::fs::write(&big, vec![7u8; 2 << 20]).unwrap();
    std::fs::read(&big).unwrap();
    let filled = scrape_until(&m, |s| s.get("cronusfs_content_cache_entries") >= 1.0);
    assert!(filled.get("cronusfs_content_cache_bytes") >= (2 << 20) as f64);
    assert!(filled.get("cronusfs_content_cache_filled_bytes_total") >= (2 << 20) as f64);
    assert!(filled.get("cronusfs_content_cache_misses_total") >= 1.0);
    std::fs::read(&big).unwrap();
    let hit = scrape(&m);
    assert_eq!(
        hit.get("cronusfs_content_cache_hits_total")
            - filled.get("cronusfs_content_cache_hits_total"),
        1.0
    );
    assert!(hit.get(r#"cronusfs_fuse_opens_total{mode="passthrough"}"#) >= 1.0);
}

#[test]
fn the_endpoint_answers_only_its_path_and_a_taken_address_refuses_the_mount() {
    let m = mount_with_metrics(&[]);
    let addr = metrics_addr(&m);
    let answer = http(&addr, "GET /other HTTP/1.1\r\n\r\n");
    assert!(answer.starts_with("HTTP/1.1 404"), "{answer}");
    let answer = http(&addr, "POST /metrics HTTP/1.1\r\n\r\n");
    assert!(answer.starts_with("HTTP/1.1 405"), "{answer}");
    // A client that connects and says nothing holds only its own thread.
    let _silent = TcpStream::connect(&addr).unwrap();
    assert!(scrape(&m).get("cronusfs_start_time_seconds") > 1.7e9);
    let tmp = tempfile::tempdir().unwrap();
    let mnt = tmp.path().join("mnt");
    std::fs::create_dir(&mnt).unwrap();
    let _guard = crate::mount::Unmount(mnt.clone());
    let out = std::process::Command::new("timeout")
        .arg("60")
        .arg(env!("CARGO_BIN_EXE_cronusfs"))
        .arg("mount")
        .arg(tmp.path().join("store"))
        .arg(&mnt)
        .args(["--metrics", &addr])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(
        said.contains(&format!("cannot serve metrics on {addr}")),
        "{said}"
    );
    assert_eq!(said.trim_end().lines().count(), 1, "{said}");
    assert!(!crate::mount::is_mounted(&mnt));
}

#[test]
fn a_shared_store_counts_its_server_requests_and_announcements() {
    let a = Mounted::shared_with_options(&["--metrics", "127.0.0.1:0"]);
    let b = a.another_daemon();
    let job = a.job_dir();
    let job_of_b = b.mnt.join(job.strip_prefix(&a.mnt).unwrap());
    let started = Instant::now();
    // b's kernel knows the directory, so a's file is something it must be told of.
    while std::fs::read_dir(&job_of_b).is_err() {
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "b never saw the job"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    std::fs::write(job.join("data.bin"), vec![1u8; 300_000]).unwrap();
    let seen_by_b = job_of_b.join("data.bin");
    while std::fs::metadata(&seen_by_b).map(|m| m.len()).ok() != Some(300_000) {
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "b never saw the file"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    std::fs::read(&seen_by_b).unwrap();
    let sa = scrape(&a);
    assert!(sa.get(r#"cronusfs_s3_requests_total{op="put"}"#) >= 1.0);
    assert_eq!(sa.get(r#"cronusfs_s3_request_errors_total{op="put"}"#), 0.0);
    assert!(sa.get(r#"cronusfs_engine_requests_total{engine="postgres",op="write"}"#) >= 1.0);
    assert!(
        sa.get(r#"cronusfs_engine_request_duration_seconds_count{engine="postgres",op="begin"}"#)
            >= 1.0
    );
    assert!(sa.get("cronusfs_announcements_sent_total") >= 1.0);
    let sb = scrape_until(&b, |s| s.get("cronusfs_kernel_invalidations_total") >= 1.0);
    assert!(sb.get("cronusfs_announcements_heard_total") >= 1.0);
    assert!(sb.get("cronusfs_kernel_invalidations_total") >= 1.0);
    assert!(sb.get(r#"cronusfs_s3_requests_total{op="get"}"#) >= 1.0);
    // The session beats every sixth of the store's 30 s time-to-live.
    let beating = r#"cronusfs_session_heartbeats_total{result="ok"}"#;
    assert!(scrape_until(&a, |s| s.get(beating) >= 1.0).get(beating) >= 1.0);
}

#[test]
fn the_metrics_page_lists_every_metric() {
    let page =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/METRICS.md"))
            .unwrap();
    for metric in cronusfs::meters::ALL {
        let row = page
            .lines()
            .find(|l| l.starts_with(&format!("| `{}`", metric.name)))
            .unwrap_or_else(|| panic!("docs/METRICS.md has no row for {}", metric.name));
        for label in metric.labels {
            assert!(row.contains(&format!("`{label}`")), "{row}: label {label}");
        }
    }
    let rows = page
        .lines()
        .filter(|l| l.starts_with("| `cronusfs_"))
        .count();
    assert_eq!(
        rows,
        cronusfs::meters::ALL.len(),
        "a row for a metric that is gone"
    );
}

/// Reads `.cronusfs/stats` of `m` and parses it.
pub fn stats_file(m: &Mounted) -> Scrape {
    let text = std::fs::read_to_string(m.mnt.join(".cronusfs/stats")).unwrap();
    assert!(
        text.contains("# TYPE cronusfs_fuse_requests_total counter"),
        "{text}"
    );
    Scrape::parse(&text)
}

#[test]
fn the_control_file_shows_the_metrics_and_is_hidden_and_read_only() {
    let m = Mounted::new();
    let job = m.job_dir();
    let before = stats_file(&m);
    for i in 0..5 {
        std::fs::write(job.join(format!("s{i}")), b"abc").unwrap();
    }
    let after = stats_file(&m);
    let creates = r#"cronusfs_fuse_requests_total{op="create"}"#;
    assert_eq!(after.get(creates) - before.get(creates), 5.0);
    // Reading the stats is not work of the mount: two readings in a row show no reads.
    let reads = r#"cronusfs_fuse_requests_total{op="read"}"#;
    assert_eq!(stats_file(&m).get(reads), stats_file(&m).get(reads));
    assert_eq!(
        stats_file(&m).get("cronusfs_fuse_read_bytes_total"),
        after.get("cronusfs_fuse_read_bytes_total")
    );
    // Looked up, never listed; nothing in it can be changed.
    let listed = m.ok("ls -a $M");
    assert!(!listed.contains(".cronusfs"), "{listed}");
    assert_eq!(m.ok("ls $M/.cronusfs"), "accesslog\nhealth\nstats\n");
    for refused in [
        "echo x > $M/.cronusfs/stats",
        "touch $M/.cronusfs/new",
        "mkdir $M/.cronusfs/d",
        "rm $M/.cronusfs/stats",
        "setfattr -n user.a -v b $M/.cronusfs/stats",
    ] {
        let out = m.sh(refused);
        let said = String::from_utf8_lossy(&out.stderr);
        assert!(
            !out.status.success() && said.contains("Read-only file system"),
            "{refused}: {said}"
        );
    }
    // Handles are bounded (each holds its bytes): the 257th open at once is EBUSY.
    let open: Vec<_> = (0..256)
        .map(|_| std::fs::File::open(m.mnt.join(".cronusfs/stats")).unwrap())
        .collect();
    let refused = std::fs::File::open(m.mnt.join(".cronusfs/stats")).unwrap_err();
    assert_eq!(refused.raw_os_error(), Some(libc::EBUSY));
    drop(open);
    std::fs::File::open(m.mnt.join(".cronusfs/stats")).unwrap();
    // Only the live tree has it.
    let now = m.ok("date -u +%Y-%m-%dT%H:%M:%SZ");
    let out = m.sh(&format!("ls $M/at/{}/.cronusfs", now.trim()));
    assert!(!out.status.success());
}

#[test]
fn stats_shows_a_workload_live_in_a_terminal() {
    let m = Mounted::new();
    let job = m.job_dir();
    let command = format!(
        "{} stats {} --interval 0.5",
        env!("CARGO_BIN_EXE_cronusfs"),
        job.display()
    );
    let shown_in = in_tmux("stats", &command, 30);
    let session = &shown_in.0;
    let started = Instant::now();
    let mut i = 0;
    let screen = loop {
        for _ in 0..20 {
            std::fs::write(job.join(format!("w{i}")), vec![b'y'; 4096]).unwrap();
            i += 1;
        }
        let shown = String::from_utf8_lossy(&tmux(&["capture-pane", "-p", "-t", session]).stdout)
            .to_string();
        let busy = shown
            .lines()
            .any(|l| l.contains("create ") && l.contains("K "));
        if busy || started.elapsed() > Duration::from_secs(20) {
            break shown;
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    assert!(
        screen.contains("ops/s") && screen.contains("commit/s"),
        "{screen}"
    );
    let row = screen
        .lines()
        .find(|l| l.contains("create "))
        .unwrap_or_else(|| panic!("no line shows creates:\n{screen}"));
    // Columns: time, ops/s, latency, top operations …, read/s, write/s, commit/s, ….
    let commits: f64 = row
        .split_whitespace()
        .rev()
        .nth(3)
        .unwrap()
        .parse()
        .unwrap();
    assert!(commits > 0.0, "{row}");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_cronusfs"))
        .args(["stats", "/tmp", "--count", "1"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let said = String::from_utf8_lossy(&out.stderr);
    assert_eq!(
        said.trim(),
        "cronusfs: error: /tmp is not in a cronusfs mount"
    );
}

/// Runs `tmux` with `args` (30 s at most).
pub fn tmux(args: &[&str]) -> std::process::Output {
    std::process::Command::new("timeout")
        .arg("30")
        .arg("tmux")
        .args(args)
        .output()
        .unwrap()
}

/// Runs `command` in a new detached tmux session of 200 columns and `rows` rows, named after
/// `what` and this process; the session is killed when the guard returned is dropped.
pub fn in_tmux(what: &str, command: &str, rows: u32) -> KillTmux {
    let session = format!("cronusfs-{what}-{}", std::process::id());
    let guard = KillTmux(session.clone());
    let rows = rows.to_string();
    let out = tmux(&[
        "new-session",
        "-d",
        "-s",
        &session,
        "-x",
        "200",
        "-y",
        &rows,
        command,
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    guard
}

/// Kills a tmux session when dropped.
pub struct KillTmux(pub String);

impl Drop for KillTmux {
    fn drop(&mut self) {
        let _ = std::process::Command::new("tmux")
            .args(["kill-session", "-t", &self.0])
            .output();
    }
}
