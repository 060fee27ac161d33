//! Sessions and names across the hosts of a shared store (PostgreSQL + S3, each "host" its own
//! daemon): the session time-to-live is one setting of the store, so a short value in one
//! process's environment expires nobody (not a writer holding a file open across a gc, not a
//! daemon beating at the default pace), and `status` and expiry follow the value
//! `cronusfs session-ttl` records; and a name renamed away on one host is gone on another
//! that lists the directory all the while within 50 ms.

use std::io::Write;
use std::path::Path;
use std::process::Output;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::sleep;
use std::time::{Duration, Instant};

use crate::mount::{Mounted, assert_success};

/// The session lines of `cronusfs status -s STORE`, run with `m`'s environment (its first
/// line says how long the store keeps history).
fn status(m: &Mounted) -> Vec<String> {
    let out = m.on_store(&["status"]);
    assert_success(&out);
    let text = String::from_utf8(out.stdout).unwrap();
    let mut lines = text.lines();
    let history = lines.next().unwrap_or_default();
    assert!(
        history.starts_with("history: kept 30 days (from "),
        "{history}"
    );
    // A daemon's health is on a line of its own under its session's.
    lines
        .filter(|l| !l.starts_with("  health: "))
        .map(str::to_string)
        .collect()
}

/// Waits (at most 20 s) until every session of `m`'s store is held to a time-to-live of
/// `seconds` (as `status` shows it): each takes the store's value at its next heartbeat.
pub fn wait_for_ttl(m: &Mounted, seconds: &str) {
    let want = format!("\tttl {seconds} s");
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let lines = status(m);
        if !lines.is_empty() && lines.iter().all(|l| l.ends_with(&want)) {
            return;
        }
        assert!(Instant::now() < deadline, "never {want:?}: {lines:?}");
        sleep(Duration::from_millis(100));
    }
}

/// Closes `f`, returning what `close` said (a commit that fails at close is an error there).
fn close(f: std::fs::File) -> std::io::Result<()> {
    use std::os::fd::IntoRawFd;
    let fd = f.into_raw_fd();
    // SAFETY: `fd` was just taken from the file and is closed once, here.
    match unsafe { libc::close(fd) } {
        0 => Ok(()),
        _ => Err(std::io::Error::last_os_error()),
    }
}

/// Opens a file in a new job directory of `m` and writes 20 MiB into it (its chunks stored,
/// the daemon's write lease held); returns the file, still open, its path and its bytes.
fn held_open_writer(m: &Mounted) -> (std::fs::File, std::path::PathBuf, Vec<u8>) {
    let path = m.job_dir().join("held.bin");
    let bytes = crate::content::bytes(20 << 20, 21);
    let mut f = std::fs::File::create(&path).unwrap();
    f.write_all(&bytes).unwrap();
    (f, path, bytes)
}

/// Writes its second argument's bytes into a new file at its first argument, says "ready",
/// keeps the file open until its standard input ends, then closes it (a close that fails
/// exits non-zero). A process of its own: one the test forks would flush the file at exec.
const HELD_WRITER: &str = r#"
import os, sys
path, data = sys.argv[1], open(sys.argv[2], "rb").read()
fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
view = memoryview(data)
while view:
    view = view[os.write(fd, view):]
print("ready", flush=True)
sys.stdin.read()
os.close(fd)
print("closed", flush=True)
"#;

/// `CRONUSFS_SESSION_TTL_MS=3000 cronusfs gc`, run again and again for 7 s beside a default
/// daemon that a writer process holds a streamed 20 MiB file open on: the variable is nobody's
/// time-to-live, so however old the daemon's last heartbeat (it beats every 5 s) no gc expires
/// its session, none takes the stored chunks, and the writer's close commits every byte. (Such
/// a gc used to expire the daemon's session once its heartbeat was 3 s old, sweep the chunks
/// of the write in progress, and fail the writer's close.)
#[test]
fn a_short_ttl_in_a_gc_s_environment_expires_no_writer() {
    use std::io::{BufRead, BufReader};
    let a = Mounted::shared();
    let path = a.job_dir().join("held.bin");
    let bytes = crate::content::bytes(20 << 20, 21);
    let source = a.tmp.path().join("held.src");
    std::fs::write(&source, &bytes).unwrap();
    let mut writer = std::process::Command::new("timeout")
        .args(["120", "python3", "-c", HELD_WRITER])
        .arg(&path)
        .arg(&source)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut said = BufReader::new(writer.stdout.take().unwrap());
    let mut line = String::new();
    said.read_line(&mut line).unwrap();
    assert_eq!(line.trim(), "ready");
    let started = Instant::now();
    while started.elapsed() < Duration::from_secs(7) {
        // Each gc waits for the write in progress and gives up; none may expire anyone.
        let gc: Output = a
            .cronusfs()
            .env("CRONUSFS_SESSION_TTL_MS", "3000")
            .env("CRONUSFS_GC_WAIT_MS", "300")
            .arg("-s")
            .arg(&a.store)
            .arg("gc")
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&gc.stderr);
        assert!(err.contains("writes in progress"), "gc went ahead: {err}");
    }
    drop(writer.stdin.take());
    line.clear();
    said.read_line(&mut line).unwrap();
    assert!(
        writer.wait().unwrap().success(),
        "the held file's close failed"
    );
    assert_eq!(line.trim(), "closed");
    assert!(std::fs::read(&path).unwrap() == bytes, "held.bin differs");
    // Now that nothing is being written, gc runs through and the file keeps its chunks.
    assert_success(&a.on_store(&["gc"]));
    assert!(
        std::fs::read(&path).unwrap() == bytes,
        "held.bin differs after gc"
    );
    a.assert_fsck_clean();
}

/// A daemon mounted with `CRONUSFS_SESSION_TTL_MS=1000` beside a default one: it beats at the
/// store's pace and never expires the other, whose session stays listed all along and whose
/// write in progress commits.
#[test]
fn a_short_ttl_in_a_daemon_s_environment_expires_no_other_daemon() {
    let a = Mounted::shared();
    let (f, path, bytes) = held_open_writer(&a);
    let tmp = tempfile::tempdir().unwrap();
    let (mnt, log) = (tmp.path().join("mnt"), tmp.path().join("daemon.log"));
    std::fs::create_dir(&mnt).unwrap();
    let mounted = a
        .cronusfs()
        .env("CRONUSFS_SESSION_TTL_MS", "1000")
        .arg("mount")
        .arg(&a.store)
        .arg(&mnt)
        .arg("--log-file")
        .arg(&log)
        .output()
        .unwrap();
    assert_success(&mounted);
    let _unmount = crate::mount::Unmount(mnt.clone());
    let at = format!("\t{}\t", a.mnt.display());
    let watched = Instant::now();
    while watched.elapsed() < Duration::from_secs(8) {
        let sessions = status(&a);
        assert!(
            sessions.iter().any(|l| l.contains(&at)),
            "the default daemon's session was expired after {:?}: {sessions:?}\n{}",
            watched.elapsed(),
            std::fs::read_to_string(&log).unwrap_or_default()
        );
        sleep(Duration::from_millis(200));
    }
    let said = std::fs::read_to_string(&log).unwrap_or_default();
    assert!(!said.contains("expired the session"), "{said}");
    close(f).expect("the held file commits at close");
    assert!(std::fs::read(&path).unwrap() == bytes, "held.bin differs");
    assert_success(&a.cronusfs().arg("umount").arg(&mnt).output().unwrap());
}

/// `cronusfs session-ttl` shows the store's time-to-live (30 s by default) and sets it; every
/// daemon takes the new value at its next heartbeat, `status` shows it, and a daemon killed
/// with SIGKILL is expired by the other once it is that old, not before.
#[test]
fn the_store_s_session_ttl_is_one_setting_that_status_and_expiry_follow() {
    let a = Mounted::shared();
    let b = a.another_daemon();
    let shown = |m: &Mounted| {
        let out = m.on_store(&["session-ttl"]);
        assert_success(&out);
        String::from_utf8(out.stdout).unwrap().trim().to_string()
    };
    assert_eq!(shown(&a), "30 s");
    wait_for_ttl(&a, "30");
    let too_short = a.on_store(&["session-ttl", "0.05"]);
    assert_eq!(too_short.status.code(), Some(1), "{too_short:?}");
    assert!(String::from_utf8_lossy(&too_short.stderr).contains("time-to-live"));
    assert_eq!(a.on_store(&["session-ttl", "soon"]).status.code(), Some(2));
    assert_eq!(shown(&b), "30 s", "a refused value changed the store's");
    let set = b.on_store(&["session-ttl", "2"]);
    assert_success(&set);
    assert!(String::from_utf8_lossy(&set.stdout).contains("was 30 s"));
    assert_eq!(shown(&a), "2 s");
    wait_for_ttl(&a, "2");
    // SAFETY: kill(2) with the daemon's pid; no memory involved.
    assert_eq!(unsafe { libc::kill(b.daemon_pid(), libc::SIGKILL) }, 0);
    let killed = Instant::now();
    let b_at = format!("\t{}\t", b.mnt.display());
    sleep(Duration::from_millis(500));
    let early = status(&a);
    assert!(
        early.iter().any(|l| l.contains(&b_at)),
        "expired before its time-to-live: {early:?}"
    );
    loop {
        let left = status(&a);
        if !left.iter().any(|l| l.contains(&b_at)) {
            assert_eq!(left.len(), 1, "{left:?}");
            assert!(left[0].contains(&format!("\t{}\t", a.mnt.display())));
            eprintln!(
                "measured: a killed daemon's 2 s session was gone {:?} after the kill",
                killed.elapsed()
            );
            break;
        }
        assert!(
            killed.elapsed() < Duration::from_secs(10),
            "never expired: {left:?}"
        );
        sleep(Duration::from_millis(100));
    }
    b.umount();
    a.umount();
}

/// Sets its flag when dropped (also when a test panics), so that a thread looping until the
/// flag is set ends and its scope can be left.
struct StopOnDrop<'a>(&'a AtomicBool);

impl Drop for StopOnDrop<'_> {
    fn drop(&mut self) {
        self.0.store(true, Ordering::SeqCst);
    }
}

/// Returns the names in directory `dir` (empty when it cannot be read).
fn names(dir: &Path) -> Vec<String> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    entries
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .collect()
}

/// Renames on one host while another lists the directory in a loop: after each of 100
/// renames, the old name is gone on the other host (`stat` fails) within 50 ms, although its
/// kernel may keep names and its daemon listings for a minute (only the announcement can do
/// it). Names the other host's kernel learnt from a listing are forgotten too, and a listing
/// read before the announcement and answered after it is not kept.
#[test]
fn a_name_renamed_away_is_gone_on_a_listing_host_within_milliseconds() {
    let (a, b) = Mounted::shared_pair_kept_a_minute();
    let job = a.job_dir();
    let in_b = b.mnt.join(job.strip_prefix(&a.mnt).unwrap());
    std::fs::write(job.join("n0"), b"x").unwrap();
    let stop = AtomicBool::new(false);
    let (mut took, mut slow) = (Vec::new(), None);
    std::thread::scope(|s| {
        s.spawn(|| {
            while !stop.load(Ordering::SeqCst) {
                names(&in_b);
            }
        });
        let _stop = StopOnDrop(&stop);
        for i in 0..100 {
            let (old, new) = (format!("n{i}"), format!("n{}", i + 1));
            let shown = Instant::now();
            while !names(&in_b).contains(&old) {
                if shown.elapsed() > Duration::from_secs(20) {
                    slow = Some(format!("{old} never showed in B's listing"));
                    break;
                }
                sleep(Duration::from_millis(1));
            }
            if slow.is_some() || std::fs::metadata(in_b.join(&old)).is_err() {
                slow = slow
                    .take()
                    .or(Some(format!("{old} listed in B but not found")));
                break;
            }
            std::fs::rename(job.join(&old), job.join(&new)).unwrap();
            let moved = Instant::now();
            while std::fs::metadata(in_b.join(&old)).is_ok()
                && moved.elapsed() < Duration::from_secs(2)
            {
                sleep(Duration::from_millis(1));
            }
            took.push(moved.elapsed());
            // The stale name lived a whole second before (the kernel's entry time); with the
            // whole suite on two cores, a round's announcement has taken up to ~60 ms to be
            // scheduled: a round may not pass 250 ms, and the median must stay under 50 ms.
            if moved.elapsed() > Duration::from_millis(250) {
                slow = Some(format!(
                    "round {i}: {old} still there {:?} after the rename",
                    moved.elapsed()
                ));
                break;
            }
        }
    });
    assert!(slow.is_none(), "{}", slow.unwrap_or_default());
    took.sort();
    let (median, max) = (took[took.len() / 2], took[took.len() - 1]);
    eprintln!(
        "measured: a renamed-away name gone on the listing host after median {median:?}, max {max:?}"
    );
    assert!(median < Duration::from_millis(50), "median {median:?}");
    assert!(std::fs::metadata(in_b.join("n100")).is_ok());
}
