//! A shared store on a PostgreSQL primary with a synchronous standby, named by a multi-host URL
//! (`target_session_attrs=read-write`), as an operator deploys it: four daemons write in a loop,
//! the primary is killed (SIGKILL) and the standby promoted. Every file whose `close` returned
//! reads back byte-exact through every daemon, the mounts write again within 10 s of the
//! promotion (the time is printed), the four sessions hold, a gc run beside the writers
//! reclaims nothing in use, and `fsck` is clean. Its content on SeaweedFS keeping two copies on three volume servers: one
//! server killed mid-workload, writes go on and nothing is lost.

use std::os::fd::IntoRawFd;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use crate::mount::{Mounted, assert_success};

/// Writes `bytes` to a new file at `path` and closes it; returns whether every call, the
/// `close` (the commit) included, succeeded.
fn write_and_close(path: &Path, bytes: &[u8]) -> bool {
    use std::io::Write;
    let Ok(mut file) = std::fs::File::create(path) else {
        return false;
    };
    if file.write_all(bytes).is_err() {
        return false;
    }
    let fd = file.into_raw_fd();
    // SAFETY: `fd` was just taken from the file and is closed once, here.
    unsafe { libc::close(fd) == 0 }
}

/// Writes files into `job` every 20 ms until `stop`; returns those whose `close` returned.
fn keep_writing(host: usize, job: PathBuf, stop: Arc<AtomicBool>) -> Written {
    let (mut closed, mut last) = (Vec::new(), None);
    let mut n = 0;
    while !stop.load(Ordering::SeqCst) {
        let path = job.join(format!("f{n:04}"));
        let bytes = format!("host {host} file {n}\n")
            .repeat(50 + n % 200)
            .into_bytes();
        if write_and_close(&path, &bytes) {
            closed.push((path, bytes));
            last = Some(Instant::now());
        }
        n += 1;
        std::thread::sleep(Duration::from_millis(20));
    }
    (closed, last)
}

/// The files a writer's `close` returned for, with their bytes, and when the last did.
type Written = (Vec<(PathBuf, Vec<u8>)>, Option<Instant>);

/// The place of `path` (under `from`'s mount point) under `to`'s.
fn moved(path: &Path, from: &Mounted, to: &Mounted) -> PathBuf {
    to.mnt.join(path.strip_prefix(&from.mnt).unwrap())
}

#[test]
fn a_promoted_standby_takes_over_and_nothing_whose_close_returned_is_lost() {
    let primary = crate::services::private_postgres();
    let standby = primary.standby();
    let url = format!(
        "postgres://postgres@127.0.0.1:{},127.0.0.1:{}/postgres\
         ?schema=failover&target_session_attrs=read-write",
        primary.port, standby.port
    );
    let first = Mounted::shared_at(url, &[]);
    let mut hosts = vec![first];
    for _ in 0..3 {
        let another = hosts[0].another_daemon();
        hosts.push(another);
    }
    let stop = Arc::new(AtomicBool::new(false));
    let writers: Vec<_> = (hosts.iter().enumerate())
        .map(|(i, m)| {
            let (job, stop) = (m.job_dir(), stop.clone());
            std::thread::spawn(move || keep_writing(i, job, stop))
        })
        .collect();
    let probe = hosts[0].job_dir();
    std::thread::sleep(Duration::from_secs(2));
    primary.kill();
    std::thread::sleep(Duration::from_millis(500));
    standby.promote();
    let promoted = Instant::now();
    // The first write through a mount that returns after the promotion.
    let mut tries = 0;
    while !write_and_close(&probe.join(format!("probe{tries}")), b"after") {
        tries += 1;
        assert!(
            promoted.elapsed() < Duration::from_secs(10),
            "no write returned within 10 s of the promotion"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    eprintln!(
        "measured: the first write after the promotion returned {:.2} s after it ({tries} refused)",
        promoted.elapsed().as_secs_f64()
    );
    // gc on the promoted server while the four write: it waits for their leases, then takes
    // nothing any of them stored.
    let started = Instant::now();
    let gc = hosts[0].on_store(&["gc"]);
    assert_success(&gc);
    eprintln!(
        "measured: gc beside four writers after the failover took {:.2} s",
        started.elapsed().as_secs_f64()
    );
    std::thread::sleep(Duration::from_secs(1));
    stop.store(true, Ordering::SeqCst);
    let written: Vec<Written> = writers.into_iter().map(|w| w.join().unwrap()).collect();
    // Every host went on writing after the failover (how many it wrote depends on the load).
    for (i, (files, last)) in written.iter().enumerate() {
        assert!(
            last.is_some_and(|t| t > promoted),
            "host {i} closed {} files, none after the promotion",
            files.len()
        );
    }
    let closed: Vec<Vec<(PathBuf, Vec<u8>)>> = written.into_iter().map(|(f, _)| f).collect();
    // Every file whose close returned, on every host, byte for byte.
    let check_all = |when: &str| {
        for (i, files) in closed.iter().enumerate() {
            for (path, bytes) in files {
                for reader in &hosts {
                    let there = moved(path, &hosts[i], reader);
                    let read = std::fs::read(&there);
                    assert!(
                        read.as_ref().is_ok_and(|r| r == bytes),
                        "{when}: {} through {}: {:?}",
                        path.display(),
                        reader.mnt.display(),
                        read.map(|r| r.len())
                    );
                }
            }
        }
    };
    check_all("after the failover and a gc");
    let out = hosts[0].on_store(&["status"]);
    assert_success(&out);
    let sessions = String::from_utf8_lossy(&out.stdout);
    let mounts = sessions.lines().filter(|l| l.contains("\tpid ")).count();
    assert_eq!(mounts, 4, "{sessions}");
    for m in &hosts {
        m.umount();
    }
    hosts[0].assert_fsck_clean();
}

#[test]
fn a_killed_s3_volume_server_loses_nothing_and_writes_go_on() {
    let s3 = crate::services::replicated_seaweed();
    let content = s3.content_url("replicated");
    let a = Mounted::shared_on(crate::services::pg_store_url(), content, &[]);
    let b = a.another_daemon();
    let job = a.job_dir();
    let (stop, writing) = (Arc::new(AtomicBool::new(false)), job.clone());
    let stopped = stop.clone();
    let writer = std::thread::spawn(move || {
        let mut closed = Vec::new();
        let mut n = 0usize;
        while !stopped.load(Ordering::SeqCst) {
            // 0.2 to 1.4 MB: one or two chunks, on volumes all over the cluster.
            let bytes: Vec<u8> = (0..200_000 + (n % 5) * 300_000)
                .map(|i| (i * 31 + n * 7) as u8)
                .collect();
            let path = writing.join(format!("f{n:04}"));
            let ok = write_and_close(&path, &bytes);
            closed.push((path.clone(), bytes.clone(), ok, Instant::now()));
            n += 1;
            std::thread::sleep(Duration::from_millis(50));
        }
        closed
    });
    std::thread::sleep(Duration::from_secs(2));
    s3.kill_volume_server(1);
    let killed = Instant::now();
    std::thread::sleep(Duration::from_secs(4));
    stop.store(true, Ordering::SeqCst);
    let closed = writer.join().unwrap();
    let failed = closed.iter().filter(|(_, _, ok, _)| !ok).count();
    eprintln!(
        "measured: {} closes, {failed} failed, with a volume server killed {:.1} s before the end",
        closed.len(),
        killed.elapsed().as_secs_f64()
    );
    assert_eq!(
        failed, 0,
        "a write failed with one volume server of three gone"
    );
    // Writes went on after the kill (how many depends on the load).
    let after = closed.iter().filter(|(.., at)| *at > killed).count();
    assert!(after > 0, "{} closes, none after the kill", closed.len());
    // Read by the writer's daemon and by another, which has none of it cached: from S3.
    for (path, bytes, ..) in &closed {
        for reader in [&a, &b] {
            let read = std::fs::read(moved(path, &a, reader)).unwrap();
            assert!(
                &read == bytes,
                "{} through {}",
                path.display(),
                reader.mnt.display()
            );
        }
    }
    a.umount();
    b.umount();
    a.assert_fsck_clean();
}
