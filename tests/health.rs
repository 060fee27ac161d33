//! Health in `status`: a local mount says its announcements are not needed, its session beats,
//! how its content cache is, and its last error (a commit failed at a release); on a shared
//! store every host's heartbeat says its health to `status -s STORE`, and a lost announcements
//! connection shows there as the last error of each host while each hears again.

use std::time::{Duration, Instant};

use crate::mount::{Mounted, assert_success};

/// The lines `cronusfs status` prints under the mount of `m`.
fn local_health(m: &Mounted) -> Vec<String> {
    // With the mount's environment: a shared store's daemon records its pid in its cache.
    let out = m.cronusfs().arg("status").output().unwrap();
    assert_success(&out);
    let text = String::from_utf8(out.stdout).unwrap();
    let at = format!("\t{}\t", m.mnt.display());
    let mut lines = text.lines().skip_while(|l| !l.contains(&at));
    assert!(
        lines.next().is_some(),
        "{} not shown:\n{text}",
        m.mnt.display()
    );
    (lines.take_while(|l| l.starts_with("  ")))
        .map(|l| l.trim_start().to_string())
        .collect()
}

/// Waits (20 s at most) until `ready` holds of what `look` returns; returns the last look.
fn wait_for<T: std::fmt::Debug>(look: impl Fn() -> T, ready: impl Fn(&T) -> bool) -> T {
    let started = Instant::now();
    loop {
        let seen = look();
        if ready(&seen) || started.elapsed() > Duration::from_secs(20) {
            return seen;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn status_says_a_local_mount_s_health_and_its_last_error() {
    let m = Mounted::new();
    let health = wait_for(
        || local_health(&m),
        |h| h.iter().any(|l| l.starts_with("leases: ok")),
    );
    assert_eq!(health.len(), 4, "{health:?}");
    assert_eq!(
        health[0],
        "announcements: off: not needed: the store is this host's alone"
    );
    assert!(
        health[1].starts_with("leases: ok: the session beats every 5.0 s (time-to-live 30.0 s)"),
        "{health:?}"
    );
    assert!(
        health[2].starts_with("content cache: ") && !health[2].contains("FAILING"),
        "{health:?}"
    );
    assert_eq!(health[3], "last error: none");
    // Only the mount's owner reads it: its last error may name paths.
    let mode = std::fs::metadata(m.mnt.join(".cronusfs/health")).unwrap();
    assert_eq!(
        std::os::unix::fs::PermissionsExt::mode(&mode.permissions()) & 0o777,
        0o400
    );
    // A commit at a release that fails (the job removed meanwhile) is the last error.
    let job = m.job_dir();
    let held = std::fs::File::create(job.join("late")).unwrap();
    let removed = m.on_store(&["rows", "del-prop", "cronus:kind", "--eq", "job", "--join"]);
    assert_success(&removed);
    drop(held);
    let health = wait_for(
        || local_health(&m),
        |h| h.iter().any(|l| l.contains(" ERROR ")),
    );
    let last = health.last().unwrap();
    assert!(
        last.starts_with("last error: 20") && last.contains("Z ERROR "),
        "{health:?}"
    );
    assert!(last.contains("op=\"release\""), "{last}");
}

/// The health lines of every session `status -s STORE` shows for `m`'s store.
fn store_health(m: &Mounted) -> Vec<String> {
    let out = m.on_store(&["status"]);
    assert_success(&out);
    let text = String::from_utf8(out.stdout).unwrap();
    (text.lines())
        .filter_map(|l| l.strip_prefix("  health: "))
        .map(str::to_string)
        .collect()
}

/// Ends every PostgreSQL connection of server `pg` that waits for announcements (`LISTEN`).
fn cut_listeners(pg: &crate::services::Postgres) {
    let cut = pg.sql(
        "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity \
         WHERE query LIKE 'LISTEN%' AND pid <> pg_backend_pid()",
    );
    assert_eq!(cut.trim(), "2", "one listener per daemon");
}

#[test]
fn every_host_says_its_health_and_a_lost_announcements_connection_shows() {
    let pg = crate::services::private_postgres();
    let url = format!(
        "postgres://postgres@127.0.0.1:{}/postgres?schema=health",
        pg.port
    );
    let a = Mounted::shared_at(url, &[]);
    assert_success(&a.on_store(&["session-ttl", "1.2"]));
    let b = a.another_daemon();
    let well = "announcements ok; leases ok; content cache ";
    let health = wait_for(
        || store_health(&a),
        |h| h.len() == 2 && h.iter().all(|l| l.starts_with(well)),
    );
    assert_eq!(health.len(), 2, "{health:?}");
    for line in &health {
        assert!(
            line.starts_with(well) && line.ends_with("; last error: none"),
            "{health:?}"
        );
    }
    cut_listeners(&pg);
    // Each host logs the loss once, reconnects, and says both at its next heartbeat.
    let lost = "WARN the announcements connection is lost (";
    let health = wait_for(
        || store_health(&a),
        |h| h.len() == 2 && h.iter().all(|l| l.starts_with(well) && l.contains(lost)),
    );
    assert!(
        health.len() == 2 && health.iter().all(|l| l.contains(lost)),
        "{health:?}"
    );
    for m in [&a, &b] {
        let here = local_health(m);
        assert!(
            here[0].starts_with("announcements: ok: hearing other hosts' commits (since 20"),
            "{here:?}"
        );
        let log = std::fs::read_to_string(&m.log).unwrap();
        assert_eq!(
            log.matches("the announcements connection is lost").count(),
            1,
            "{log}"
        );
        assert!(
            log.contains("the announcements connection is back"),
            "{log}"
        );
    }
    // Still one store: what a writes, b reads.
    let job = a.job_dir();
    std::fs::write(job.join("after"), b"heard").unwrap();
    let there = b.mnt.join(job.strip_prefix(&a.mnt).unwrap()).join("after");
    assert_eq!(std::fs::read(there).unwrap(), b"heard");
}

#[test]
fn stats_of_a_shared_store_shows_every_host_at_its_heartbeats() {
    let a = Mounted::shared();
    assert_success(&a.on_store(&["session-ttl", "0.6"]));
    let b = a.another_daemon();
    crate::shared_sessions::wait_for_ttl(&a, "0.6");
    let job = a.job_dir();
    let writing = std::thread::spawn(move || {
        for i in 0..150 {
            std::fs::write(job.join(format!("f{i}")), b"counted").unwrap();
            std::thread::sleep(Duration::from_millis(10));
        }
    });
    let out = a.on_store(&["stats", "--interval", "0.3", "--count", "10"]);
    writing.join().unwrap();
    assert_success(&out);
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(text.starts_with("    time  host "), "{text}");
    let rows = |m: &Mounted| -> Vec<Vec<String>> {
        let at = m.mnt.display().to_string();
        (text.lines())
            .filter(|l| l.split_whitespace().nth(3) == Some(at.as_str()))
            .map(|l| l.split_whitespace().map(str::to_string).collect())
            .collect()
    };
    let (of_a, of_b) = (rows(&a), rows(&b));
    assert!(!of_a.is_empty() && !of_b.is_empty(), "{text}");
    // Columns: time, host, pid, mount point, ops/s, lat_ms, read/s, write/s, commit/s.
    let pid = |m: &Mounted| m.daemon_pid().to_string();
    assert!(of_a.iter().all(|r| r[2] == pid(&a)) && of_b.iter().all(|r| r[2] == pid(&b)));
    let commits = |r: &Vec<String>| r[8].parse::<f64>().unwrap_or(0.0);
    assert!(of_a.iter().any(|r| commits(r) > 0.0), "{text}");
    assert!(
        of_b.iter().all(|r| commits(r) == 0.0),
        "b commits nothing: {text}"
    );
    // A store directory has one daemon: its mount point is where its stats are.
    let local = Mounted::new();
    let out = local.on_store(&["stats", "--count", "1"]);
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success() && said.contains("give its mount point"),
        "{said}"
    );
}

/// Resumes a process stopped with SIGSTOP when dropped (also when the test fails).
struct Resume(i32);

impl Drop for Resume {
    fn drop(&mut self) {
        // SAFETY: kill only sends a signal, to the daemon this test started.
        unsafe { libc::kill(self.0, libc::SIGCONT) };
    }
}

/// A daemon that does not answer (stopped) is said to be failing, and `status` still returns.
#[test]
fn status_says_a_daemon_that_does_not_answer_is_failing() {
    let m = Mounted::new();
    let pid = m.daemon_pid();
    // SAFETY: as in `Resume`.
    assert_eq!(unsafe { libc::kill(pid, libc::SIGSTOP) }, 0);
    let resume = Resume(pid);
    let health = local_health(&m);
    drop(resume);
    assert_eq!(
        health,
        ["FAILING: the daemon did not answer within 2 s"],
        "{health:?}"
    );
    let health = wait_for(|| local_health(&m), |h| h.len() == 4);
    assert!(health[1].starts_with("leases: ok"), "{health:?}");
}
