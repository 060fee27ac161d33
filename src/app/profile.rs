//! `cronusfs profile MOUNTPOINT`: a live table of where a mount's time goes, read from its
//! `.cronusfs/accesslog`: the operations on each path that took longest in all (or were the
//! most frequent, the slowest on average, the slowest once), and each process's share. With
//! `--file`, the same tables for an access log saved earlier.

use std::collections::HashMap;
use std::io::{BufRead, BufReader, IsTerminal, Write};
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::time::Instant;

use anyhow::{Context, Result, bail};

use cronusfs::fs::escaped;

use crate::cli::ProfileOrder;

/// How the tables look: their order, and the rows each shows.
#[derive(Clone, Copy, Debug)]
pub struct ProfileView {
    /// What the rows are sorted by.
    pub order: ProfileOrder,
    /// The rows of each table.
    pub top: usize,
}

/// One line of the access log.
#[derive(Debug, PartialEq)]
struct Request<'a> {
    pid: u32,
    process: &'a str,
    op: &'a str,
    failed: bool,
    seconds: f64,
    path: &'a str,
}

impl<'a> Request<'a> {
    /// Reads a line of the log (`time uid pid process op result bytes seconds path`); `None`
    /// for a comment (`#`) or a line of another shape.
    fn parse(line: &'a str) -> Option<Request<'a>> {
        if line.starts_with('#') {
            return None;
        }
        let mut fields = line.trim_end_matches('\n').splitn(9, ' ');
        let (_time, _uid) = (fields.next()?, fields.next()?);
        let pid = fields.next()?.parse().ok()?;
        let (process, op, result) = (fields.next()?, fields.next()?, fields.next()?);
        let (_bytes, seconds): (_, f64) = (fields.next()?, fields.next()?.parse().ok()?);
        if !(seconds.is_finite() && seconds >= 0.0) {
            return None;
        }
        let path = fields.next()?;
        Some(Request {
            pid,
            process,
            op,
            failed: result != "OK",
            seconds,
            path,
        })
    }
}

/// Requests of one kind: how many, how many failed, and their times.
#[derive(Clone, Debug, Default, PartialEq)]
struct Tally {
    count: u64,
    errors: u64,
    total: f64,
    max: f64,
}

impl Tally {
    fn add(&mut self, r: &Request) {
        self.count += 1;
        self.errors += u64::from(r.failed);
        self.total += r.seconds;
        self.max = self.max.max(r.seconds);
    }

    fn key(&self, order: ProfileOrder) -> f64 {
        match order {
            ProfileOrder::Total => self.total,
            ProfileOrder::Count => self.count as f64,
            ProfileOrder::Mean => self.total / self.count.max(1) as f64,
            ProfileOrder::Max => self.max,
        }
    }
}

/// Every request read so far, by operation and path and by process.
#[derive(Default)]
struct Profile {
    all: Tally,
    by_path: HashMap<(String, String), Tally>,
    by_process: HashMap<(u32, String), (Tally, HashMap<String, u64>)>,
}

impl Profile {
    fn add(&mut self, line: &str) {
        let Some(r) = Request::parse(line) else {
            return;
        };
        self.all.add(&r);
        let key = (r.op.to_string(), r.path.to_string());
        self.by_path.entry(key).or_default().add(&r);
        let (tally, ops) = (self.by_process)
            .entry((r.pid, r.process.to_string()))
            .or_default();
        tally.add(&r);
        *ops.entry(r.op.to_string()).or_default() += 1;
    }

    /// The two tables, `view.top` rows each, sorted by `view.order`.
    fn render(&self, view: ProfileView, seconds: f64) -> String {
        let rate = match seconds >= 1e-3 {
            true => format!("{:.1}/s", self.all.count as f64 / seconds),
            false => "-/s".to_string(),
        };
        let mut out = format!(
            "{} requests in {seconds:.1} s ({rate}), {} failed, {:.3} s in all; by {}\n\n",
            self.all.count,
            self.all.errors,
            self.all.total,
            order_name(view.order),
        );
        out.push_str(&format!(
            "{:>8} {:>6} {:>9} {:>9} {:>9}  {:<11} PATH\n",
            "COUNT", "ERRORS", "TOTAL_S", "MEAN_MS", "MAX_MS", "OP"
        ));
        for ((op, path), t) in sorted(self.by_path.iter(), view) {
            let (op, path) = (escaped(op), escaped(path));
            out.push_str(&format!("{}  {op:<11} {path}\n", columns(t)));
        }
        out.push_str(&format!(
            "\n{:>8} {:>6} {:>9} {:>9} {:>9}  {:<7} {:<15} MOST FREQUENT\n",
            "COUNT", "ERRORS", "TOTAL_S", "MEAN_MS", "MAX_MS", "PID", "PROCESS"
        ));
        let by_process = self.by_process.iter().map(|(k, (t, _))| (k, t));
        for ((pid, process), t) in sorted(by_process, view) {
            let ops = &self.by_process[&(*pid, process.clone())].1;
            let mut ops: Vec<_> = ops.iter().collect();
            ops.sort_by(|a, b| b.1.cmp(a.1).then(a.0.cmp(b.0)));
            let ops: Vec<String> = ops
                .iter()
                .take(3)
                .map(|(op, n)| format!("{} {n}", escaped(op)))
                .collect();
            let process = escaped(process);
            out.push_str(&format!(
                "{}  {pid:<7} {process:<15} {}\n",
                columns(t),
                ops.join(", ")
            ));
        }
        out
    }
}

fn order_name(order: ProfileOrder) -> &'static str {
    match order {
        ProfileOrder::Total => "time in all",
        ProfileOrder::Count => "count",
        ProfileOrder::Mean => "mean time",
        ProfileOrder::Max => "longest",
    }
}

/// The `view.top` entries with the largest key, largest first (ties by name).
fn sorted<'a, K: Ord + 'a>(
    entries: impl Iterator<Item = (K, &'a Tally)>,
    view: ProfileView,
) -> Vec<(K, &'a Tally)> {
    let mut rows: Vec<_> = entries.collect();
    rows.sort_by(|a, b| (b.1.key(view.order).total_cmp(&a.1.key(view.order))).then(a.0.cmp(&b.0)));
    rows.truncate(view.top);
    rows
}

/// The count, errors, total seconds, mean and longest milliseconds of `t`.
fn columns(t: &Tally) -> String {
    format!(
        "{:>8} {:>6} {:>9.3} {:>9.3} {:>9.3}",
        t.count,
        t.errors,
        t.total,
        t.total / t.count.max(1) as f64 * 1e3,
        t.max * 1e3
    )
}

/// Returns the `.cronusfs/` directory of the mount `path` is in (the mount point or below).
pub(super) fn control_dir(path: &Path) -> Result<PathBuf> {
    let path = path
        .canonicalize()
        .with_context(|| format!("no such path {}", path.display()))?;
    for dir in path.ancestors() {
        let control = dir.join(cronusfs::fs::CONTROL_DIR);
        if control.join("stats").is_file() {
            return Ok(control);
        }
    }
    bail!("{} is not in a cronusfs mount", path.display())
}

/// Runs `profile --file LOG`: the tables of a saved access log, once.
pub fn saved(log: &Path, view: ProfileView) -> Result<()> {
    let file =
        std::fs::File::open(log).with_context(|| format!("cannot open {}", log.display()))?;
    let mut profile = Profile::default();
    let (mut first, mut last) = (None, None);
    for line in BufReader::new(file).split(b'\n') {
        let line = line.with_context(|| format!("cannot read {}", log.display()))?;
        // Not ours to refuse: a line that is not text is skipped as any line of another shape.
        let line = String::from_utf8_lossy(&line);
        if !line.starts_with('#') {
            let time = line
                .split(' ')
                .next()
                .and_then(|t| humantime::parse_rfc3339(t).ok());
            first = first.or(time);
            last = time.or(last);
        }
        profile.add(&line);
    }
    let span = match (first, last) {
        (Some(a), Some(b)) => b.duration_since(a).unwrap_or_default().as_secs_f64(),
        _ => 0.0,
    };
    print!("{}", profile.render(view, span));
    Ok(())
}

/// Runs `profile MOUNTPOINT`: the tables every `interval` seconds, `count` times (default:
/// until interrupted or the mount goes away).
pub fn watch(path: &Path, interval: f64, count: Option<u64>, view: ProfileView) -> Result<()> {
    let pause = super::stats::interval_of(interval)?;
    let control = control_dir(path)?;
    // Read through the open directory: no path walk from the mount's root shows in the log.
    let dir = std::fs::File::open(&control)
        .with_context(|| format!("cannot open {}", control.display()))?;
    let log = PathBuf::from(format!("/proc/self/fd/{}/accesslog", dir.as_raw_fd()));
    let file = std::fs::File::open(&log)
        .with_context(|| format!("cannot open {}/accesslog", control.display()))?;
    let lines = read_lines(file)?;
    let terminal = std::io::stdout().is_terminal();
    let (mut profile, started) = (Profile::default(), Instant::now());
    let mut shown = 0u64;
    let mut ended = false;
    while count.is_none_or(|n| shown < n) && !ended {
        let due = Instant::now() + pause;
        ended = take_until(&lines, &mut profile, due);
        let table = profile.render(view, started.elapsed().as_secs_f64());
        let mut out = std::io::stdout().lock();
        match terminal {
            // Home and clear: the table stays in place, as `top`'s does.
            true => write!(out, "\x1b[H\x1b[2J{table}")?,
            false => writeln!(out, "{table}")?,
        }
        out.flush()?;
        shown += 1;
    }
    if ended {
        eprintln!("cronusfs: the access log ended: the mount is going away");
    }
    Ok(())
}

/// Reads the lines of `file` on a thread of its own.
fn read_lines(file: std::fs::File) -> Result<Receiver<String>> {
    let (send, lines) = std::sync::mpsc::channel();
    std::thread::Builder::new()
        .name("accesslog".into())
        .spawn(move || {
            for line in BufReader::new(file).lines() {
                let Ok(line) = line else { return };
                if send.send(line).is_err() {
                    return;
                }
            }
        })?;
    Ok(lines)
}

/// Adds the lines read until `due` to `profile`; returns whether the log ended.
fn take_until(lines: &Receiver<String>, profile: &mut Profile, due: Instant) -> bool {
    loop {
        let left = due.saturating_duration_since(Instant::now());
        match lines.recv_timeout(left) {
            Ok(line) => profile.add(&line),
            Err(RecvTimeoutError::Timeout) => return false,
            Err(RecvTimeoutError::Disconnected) => return true,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LOG: &str = "# time uid pid process op result bytes seconds path\n\
        2026-12-07T10:00:00.000000Z 0 41 cat read OK 4096 0.002000 /datasets/d/x y\n\
        2026-12-07T10:00:00.500000Z 0 41 cat read OK 4096 0.004000 /datasets/d/x y\n\
        2026-12-07T10:00:01.000000Z 0 42 ls lookup ENOENT - 0.000500 /datasets/d/nope\n\
        #\n\
        2026-12-07T10:00:02.000000Z 0 42 ls getattr OK - 0.000100 /datasets/d\n";

    fn profile() -> Profile {
        let mut p = Profile::default();
        LOG.lines().for_each(|l| p.add(l));
        p
    }

    #[test]
    fn a_line_is_read_with_a_path_that_has_spaces_and_comments_are_skipped() {
        let r = Request::parse(LOG.lines().nth(1).unwrap()).unwrap();
        assert_eq!(
            (r.pid, r.process, r.op, r.path),
            (41, "cat", "read", "/datasets/d/x y")
        );
        assert!(!r.failed && (r.seconds - 0.002).abs() < 1e-12);
        assert!(Request::parse("#").is_none() && Request::parse("garbage").is_none());
    }

    #[test]
    fn the_tables_sum_by_path_and_process_in_the_order_asked() {
        let p = profile();
        assert_eq!(p.all.count, 4);
        let read = &p.by_path[&("read".to_string(), "/datasets/d/x y".to_string())];
        assert_eq!((read.count, read.errors), (2, 0));
        assert!((read.total - 0.006).abs() < 1e-12 && (read.max - 0.004).abs() < 1e-12);
        let ls = &p.by_process[&(42, "ls".to_string())];
        assert_eq!((ls.0.count, ls.0.errors), (2, 1));
        let view = ProfileView {
            order: ProfileOrder::Total,
            top: 2,
        };
        let text = p.render(view, 2.0);
        let rows: Vec<&str> = text.lines().collect();
        assert!(
            rows[0].starts_with("4 requests in 2.0 s (2.0/s), 1 failed"),
            "{text}"
        );
        assert!(rows[3].ends_with("read        /datasets/d/x y"), "{text}");
        assert!(
            rows[3].contains("       2      0     0.006     3.000     4.000"),
            "{text}"
        );
        assert!(rows[4].ends_with("lookup      /datasets/d/nope"), "{text}");
        assert_eq!(rows.len(), 9, "two rows a table: {text}");
        assert!(rows[7].contains("41      cat             read 2"), "{text}");
        let by_count = p.render(
            ProfileView {
                order: ProfileOrder::Count,
                top: 1,
            },
            2.0,
        );
        assert!(
            by_count
                .lines()
                .nth(3)
                .unwrap()
                .ends_with("/datasets/d/x y")
        );
        let by_mean = p.render(
            ProfileView {
                order: ProfileOrder::Mean,
                top: 5,
            },
            2.0,
        );
        assert!(
            by_mean
                .lines()
                .nth(5)
                .unwrap()
                .ends_with("getattr     /datasets/d")
        );
    }
}
