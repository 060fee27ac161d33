//! `.cronusfs/accesslog` and `cronusfs profile` on a real mount: the log shows the requests of
//! a known workload (caller, operation, path, result, bytes, duration) and none of its own,
//! answers `#` while the mount is quiet, bounds its readers, ends when the daemon is told to
//! stop; `profile` shows a workload live under `tmux` and sums a saved log.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::time::{Duration, Instant};

use crate::mount::Mounted;

/// The lines of `.cronusfs/accesslog` of `m`, read on a thread of their own (which closes the
/// file once the receiver is gone and the next line or `#` arrives).
fn follow(m: &Mounted) -> Receiver<String> {
    let file = std::fs::File::open(m.mnt.join(".cronusfs/accesslog")).unwrap();
    let (send, lines) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(file).lines() {
            let Ok(line) = line else { return };
            if send.send(line).is_err() {
                return;
            }
        }
    });
    lines
}

/// Takes lines from `lines` until `done` says the ones taken are enough (or 20 s passed).
fn take_until(lines: &Receiver<String>, done: impl Fn(&[String]) -> bool) -> Vec<String> {
    let (mut taken, started) = (Vec::new(), Instant::now());
    while !done(&taken) && started.elapsed() < Duration::from_secs(20) {
        match lines.recv_timeout(Duration::from_millis(200)) {
            Ok(line) => taken.push(line),
            Err(RecvTimeoutError::Timeout) => {}
            Err(RecvTimeoutError::Disconnected) => break,
        }
    }
    taken
}

/// One request's line, split into its fields.
#[derive(Debug)]
struct Line {
    pid: u32,
    op: String,
    result: String,
    bytes: Option<u64>,
    seconds: f64,
    path: String,
}

fn parse(line: &str) -> Option<Line> {
    if line.starts_with('#') {
        return None;
    }
    let f: Vec<&str> = line.splitn(9, ' ').collect();
    assert_eq!(f.len(), 9, "{line}");
    humantime::parse_rfc3339(f[0]).unwrap_or_else(|e| panic!("{line}: {e}"));
    Some(Line {
        pid: f[2].parse().unwrap(),
        op: f[4].into(),
        result: f[5].into(),
        bytes: f[6].parse().ok(),
        seconds: f[7].parse().unwrap(),
        path: f[8].into(),
    })
}

/// The path of `place` in the mount, as the log names it (`/datasets/…`).
fn in_mount(m: &Mounted, place: &Path) -> String {
    format!("/{}", place.strip_prefix(&m.mnt).unwrap().display())
}

#[test]
fn the_access_log_shows_a_known_workload_with_callers_paths_and_durations() {
    let m = Mounted::new();
    let job = m.job_dir();
    let lines = follow(&m);
    let header = take_until(&lines, |t| !t.is_empty());
    assert_eq!(
        header,
        ["# time uid pid process op result bytes seconds path"]
    );
    // SAFETY: gettid only reads this thread's id; the kernel names the thread as the caller.
    let me = unsafe { libc::gettid() } as u32;
    std::fs::write(job.join("a b"), vec![7u8; 10_000]).unwrap();
    assert!(std::fs::metadata(job.join("missing")).is_err());
    let file = in_mount(&m, &job.join("a b"));
    let missing = in_mount(&m, &job.join("missing"));
    // Lines come in the order requests are answered: the flush's reply may reach this thread
    // (and the lookup that follows be answered) before the flush's line is made.
    let flushed = " flush OK - ";
    let taken = take_until(&lines, |t| {
        t.iter().any(|l| l.ends_with(&missing))
            && t.iter().any(|l| l.contains(flushed) && l.ends_with(&file))
    });
    let seen: Vec<Line> = taken.iter().filter_map(|l| parse(l)).collect();
    let find = |op: &str, path: &str| {
        (seen.iter())
            .find(|l| l.op == op && l.path == path)
            .unwrap_or_else(|| panic!("no {op} of {path} in:\n{}", taken.join("\n")))
    };
    let create = find("create", &file);
    assert_eq!((create.pid, create.result.as_str()), (me, "OK"));
    let written: u64 = (seen.iter())
        .filter(|l| l.op == "write" && l.path == file)
        .map(|l| l.bytes.unwrap())
        .sum();
    assert_eq!(written, 10_000, "{}", taken.join("\n"));
    assert_eq!(find("flush", &file).result, "OK");
    let lookup = find("lookup", &missing);
    assert_eq!((lookup.pid, lookup.result.as_str()), (me, "ENOENT"));
    assert!(seen.iter().all(|l| l.seconds >= 0.0 && l.seconds < 60.0));
    // Reading the log is not work of the mount.
    assert!(
        !taken.iter().any(|l| l.contains(".cronusfs")),
        "{}",
        taken.join("\n")
    );
    // A quiet mount answers `#` about once a second.
    let quiet = take_until(&lines, |t| t.iter().filter(|l| *l == "#").count() >= 2);
    assert!(quiet.iter().filter(|l| *l == "#").count() >= 2, "{quiet:?}");
    // The saved log, profiled: one create of the file, by this process.
    let saved = m.tmp.path().join("saved.log");
    std::fs::write(&saved, taken.join("\n") + "\n").unwrap();
    let out = m.ok(&format!(
        "$CRONUSFS profile --file {} --sort count",
        saved.display()
    ));
    let row = (out.lines())
        .find(|l| l.contains(" create ") && l.ends_with(&file))
        .unwrap_or_else(|| panic!("{out}"));
    assert!(row.trim_start().starts_with("1      0 "), "{row}");
    assert!(out.contains(&format!(" {me:<7} ")), "{out}");
}

#[test]
fn the_access_log_bounds_its_readers_and_ends_when_the_daemon_stops() {
    let m = Mounted::new();
    let log = m.mnt.join(".cronusfs/accesslog");
    let open: Vec<_> = (0..8).map(|_| std::fs::File::open(&log).unwrap()).collect();
    let refused = std::fs::File::open(&log).unwrap_err();
    assert_eq!(refused.raw_os_error(), Some(libc::EBUSY));
    drop(open);
    let listed = m.ok("ls $M/.cronusfs");
    assert_eq!(listed, "accesslog\nhealth\nstats\n");
    let out = m.sh("echo x > $M/.cronusfs/accesslog");
    assert!(String::from_utf8_lossy(&out.stderr).contains("Read-only file system"));
    // Every user's paths and processes are in it: the mount owner's alone.
    let mode = std::fs::metadata(&log).unwrap().permissions();
    assert_eq!(
        std::os::unix::fs::PermissionsExt::mode(&mode) & 0o777,
        0o400
    );
    // A reader does not keep the mount: told to stop, the daemon ends the log, then exits.
    let mut cat = std::process::Command::new("cat")
        .arg(&log)
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(300));
    let daemon = m.daemon_pid();
    // SAFETY: kill only sends a signal to the daemon this test started.
    assert_eq!(unsafe { libc::kill(daemon, libc::SIGTERM) }, 0);
    let started = Instant::now();
    while cat.try_wait().unwrap().is_none() && started.elapsed() < Duration::from_secs(15) {
        std::thread::sleep(Duration::from_millis(50));
    }
    let ended = cat.try_wait().unwrap();
    if ended.is_none() {
        let _ = cat.kill();
    }
    assert!(
        ended.is_some_and(|s| s.success()),
        "cat did not end: {ended:?}"
    );
    while crate::mount::is_mounted(&m.mnt) && started.elapsed() < Duration::from_secs(15) {
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(
        !crate::mount::is_mounted(&m.mnt),
        "the mount is still there"
    );
}

#[test]
fn another_user_reads_the_stats_but_not_the_access_log_or_the_health() {
    let m = crate::trust_views::shared_mount();
    let (ok, stats, _) = crate::trust_views::as_nobody(&m, "head -c 20 $M/.cronusfs/stats");
    assert!(ok && stats.starts_with("# "), "{stats}");
    for file in ["accesslog", "health"] {
        let (ok, _, said) = crate::trust_views::as_nobody(&m, &format!("cat $M/.cronusfs/{file}"));
        assert!(!ok && said.contains("Permission denied"), "{file}: {said}");
    }
    // Another user holding every handle of `stats` they may have keeps the owner out of
    // nothing: the bound is per user.
    let hold = "import os, sys, time\n\
                fds = [os.open(os.environ['M'] + '/.cronusfs/stats', 0) for _ in range(256)]\n\
                print('held', flush=True)\n\
                time.sleep(30)";
    let mut holder = std::process::Command::new("runuser")
        .args(["-u", "nobody", "--", "python3", "-c", hold])
        .env("M", &m.mnt)
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut said = String::new();
    let out = holder.stdout.take().unwrap();
    BufReader::new(out).read_line(&mut said).unwrap();
    assert_eq!(said, "held\n");
    let (ok, _, refused) = crate::trust_views::as_nobody(&m, "cat $M/.cronusfs/stats");
    let owners = std::fs::read_to_string(m.mnt.join(".cronusfs/stats"));
    let _ = holder.kill();
    let _ = holder.wait();
    assert!(
        !ok && refused.contains("Device or resource busy"),
        "{refused}"
    );
    assert!(owners.is_ok_and(|t| t.starts_with("# ")));
}

#[test]
fn profile_shows_a_workload_live_in_a_terminal() {
    let m = Mounted::new();
    let job = m.job_dir();
    let command = format!(
        "{} profile {} --interval 0.5 --sort count",
        env!("CARGO_BIN_EXE_cronusfs"),
        job.display()
    );
    let tmux = crate::metrics::tmux;
    let in_tmux = crate::metrics::in_tmux("profile", &command, 40);
    let session = &in_tmux.0;
    let hot = in_mount(&m, &job.join("hot"));
    // SAFETY: gettid only reads this thread's id.
    let me = unsafe { libc::gettid() } as u32;
    let started = Instant::now();
    let screen = loop {
        for _ in 0..20 {
            std::fs::write(job.join("hot"), b"again").unwrap();
        }
        let shown = tmux(&["capture-pane", "-p", "-t", session]).stdout;
        let shown = String::from_utf8_lossy(&shown).to_string();
        let rows = shown.lines().filter(|l| l.ends_with(&hot)).count();
        if rows >= 3 || started.elapsed() > Duration::from_secs(20) {
            break shown;
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    assert!(
        screen.contains("COUNT") && screen.contains("MOST FREQUENT"),
        "{screen}"
    );
    let row = (screen.lines())
        .find(|l| l.contains(" open ") && l.ends_with(&hot))
        .unwrap_or_else(|| panic!("no row shows the opens of {hot}:\n{screen}"));
    let count: u64 = row.split_whitespace().next().unwrap().parse().unwrap();
    assert!(count >= 20, "{row}");
    // This test's thread shows in the table of processes, with what a rewrite asks for (an
    // open, a write and a flush each, and the kernel's getxattr) among its most frequent.
    let mine = (screen.lines())
        .find(|l| l.contains(&format!(" {me:<7} ")))
        .unwrap_or_else(|| panic!("no row of process {me}:\n{screen}"));
    let mine_count: u64 = mine.split_whitespace().next().unwrap().parse().unwrap();
    assert!(mine_count >= 3 * count, "{mine}");
    assert!(
        ["open ", "write ", "flush "]
            .iter()
            .any(|op| mine.contains(op)),
        "{mine}"
    );
}

#[test]
fn a_shell_loop_reads_every_line_whole_and_lines_are_safe_on_a_terminal() {
    let m = Mounted::new();
    let job = m.job_dir();
    let at = in_mount(&m, &job);
    // `read` seeks back to the end of each line it took: the log is a stream, so the shell
    // reads it byte by byte instead of losing what it read past.
    let mut shell = std::process::Command::new("bash")
        .args(["-c", "while read -r l; do echo \"$l\"; done < \"$1\"", "-"])
        .arg(m.mnt.join(".cronusfs/accesslog"))
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(shell.stdout.take().unwrap()).lines();
    assert_eq!(
        lines.next().unwrap().unwrap(),
        "# time uid pid process op result bytes seconds path"
    );
    for i in 0..300 {
        assert!(std::fs::metadata(job.join(format!("missing-{i}"))).is_err());
    }
    // A name with a terminal's escapes, and a process renamed by `exec` (its name then).
    let odd = "x\u{1b}]0;pwn\u{7}\u{1b}[2J\ry";
    assert!(std::fs::metadata(job.join(odd)).is_err());
    // `exec` replaces the shell: stat's failure is its exit status.
    let exec = m.sh(&format!("cd {}; exec stat after-exec", job.display()));
    assert!(!exec.status.success());
    let mut seen = Vec::new();
    for line in lines.map_while(Result::ok) {
        let done = line.ends_with("/after-exec");
        seen.push(line);
        if done {
            break;
        }
    }
    let _ = shell.kill();
    let _ = shell.wait();
    for i in 0..300 {
        let whole = " lookup ENOENT - ";
        let path = format!("{at}/missing-{i}");
        assert!(
            seen.iter().any(|l| l.contains(whole) && l.ends_with(&path)),
            "no whole line for missing-{i}"
        );
    }
    let escaped = format!("{at}/x\\x1b]0;pwn\\x07\\x1b[2J\\x0dy");
    assert!(seen.iter().any(|l| l.ends_with(&escaped)), "{seen:?}");
    assert!(
        seen.iter()
            .all(|l| !l.contains('\u{1b}') && !l.contains('\r'))
    );
    let exec = seen.iter().find(|l| l.ends_with("/after-exec")).unwrap();
    assert_eq!(exec.split(' ').nth(3), Some("stat"), "{exec}");
    // Intervals are bounded: a day at most, a one-line error past it.
    for command in ["stats", "profile"] {
        let out = m.sh(&format!(
            "$CRONUSFS {command} $M --interval 1e300 --count 1"
        ));
        let said = String::from_utf8_lossy(&out.stderr);
        assert_eq!(
            said.trim(),
            "cronusfs: error: --interval must be from 0.05 to 86400 seconds"
        );
    }
}
