//! `cronusfs stats MOUNTPOINT`: what a mount is doing, a line per interval, from the metrics it
//! shows in `.cronusfs/stats` (Prometheus' text format): requests per second and their mean
//! latency, the most frequent kinds, bytes read and written, commits, transactions and
//! retries, and the content cache's hit rate. `cronusfs stats -s STORE`: the same few numbers
//! for every daemon of a shared store, from the counters each says with its heartbeats.

use std::collections::HashMap;
use std::io::Write;
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow, bail};
use cronusfs::meta::Session;
use cronusfs::storage::Storage;

use super::Catalog;

/// One reading of the metrics: each sample's value, by name and labels as written.
#[derive(Default)]
struct Sample(HashMap<String, f64>);

impl Sample {
    fn parse(text: &str) -> Sample {
        let values = text
            .lines()
            .filter(|l| !l.starts_with('#'))
            .filter_map(|l| l.rsplit_once(' '))
            .filter_map(|(key, v)| Some((key.to_string(), v.parse().ok()?)))
            .collect();
        Sample(values)
    }

    fn get(&self, key: &str) -> f64 {
        self.0.get(key).copied().unwrap_or(0.0)
    }

    /// The sum of every labelled sample of metric `name`.
    fn sum(&self, name: &str) -> f64 {
        (self.0.iter())
            .filter(|(k, _)| {
                k.strip_prefix(name)
                    .is_some_and(|rest| rest.starts_with('{'))
            })
            .fold(0.0, |sum, (_, v)| sum + v)
    }

    /// Each operation's request count (`cronusfs_fuse_requests_total{op="…"}`).
    fn requests_by_op(&self) -> HashMap<String, f64> {
        let prefix = "cronusfs_fuse_requests_total{op=\"";
        (self.0.iter())
            .filter_map(|(k, v)| Some((k.strip_prefix(prefix)?.strip_suffix("\"}")?, *v)))
            .map(|(op, v)| (op.to_string(), v))
            .collect()
    }
}

/// The pause `--interval SECONDS` asks for: from 0.05 s to a day.
pub(super) fn interval_of(seconds: f64) -> Result<Duration> {
    match seconds.is_finite() && (0.05..=86_400.0).contains(&seconds) {
        true => Ok(Duration::from_secs_f64(seconds)),
        false => bail!("--interval must be from 0.05 to 86400 seconds"),
    }
}

/// Returns the `.cronusfs/stats` file of the mount `path` is in (the mount point or below).
fn stats_file(path: &Path) -> Result<PathBuf> {
    Ok(super::profile::control_dir(path)?.join("stats"))
}

/// Runs `stats`: a line every `interval` seconds, `count` of them (default: until killed).
pub fn watch(path: &Path, interval: f64, count: Option<u64>) -> Result<()> {
    let pause = interval_of(interval)?;
    let found = stats_file(path)?;
    // Read through the open directory (its /proc/self/fd link): no path walk from the mount's
    // root, so no request of the mount's own directories shows in what is watched.
    let dir = std::fs::File::open(found.parent().unwrap_or(&found))
        .with_context(|| format!("cannot open {}", found.display()))?;
    let file = PathBuf::from(format!("/proc/self/fd/{}/stats", dir.as_raw_fd()));
    let read = || -> Result<Sample> {
        let text = std::fs::read_to_string(&file).map_err(|e| match e.raw_os_error() {
            Some(libc::ENOTCONN | libc::ENOENT) => {
                anyhow!("{} is gone (unmounted?)", found.display())
            }
            _ => anyhow!("cannot read {}: {e}", found.display()),
        })?;
        Ok(Sample::parse(&text))
    };
    let mut out = std::io::stdout().lock();
    let (mut last, mut at) = (read()?, Instant::now());
    let mut shown = 0u64;
    while count.is_none_or(|n| shown < n) {
        std::thread::sleep(pause);
        let now = read()?;
        let seconds = at.elapsed().as_secs_f64();
        if shown.is_multiple_of(20) {
            writeln!(out, "{HEADER}")?;
        }
        writeln!(out, "{}", line(&last, &now, seconds))?;
        out.flush()?;
        (last, at) = (now, Instant::now());
        shown += 1;
    }
    Ok(())
}

const HEADER: &str = "    time   ops/s  lat_ms  top operations /s                      \
     read/s  write/s  commit/s   txn/s retry/s  cache";

/// The line for the change from `a` to `b`, `seconds` apart.
fn line(a: &Sample, b: &Sample, seconds: f64) -> String {
    let rate = |key: &str| (b.get(key) - a.get(key)).max(0.0) / seconds;
    let (ops_a, ops_b) = (a.requests_by_op(), b.requests_by_op());
    let mut by_op: Vec<(String, f64)> = (ops_b.iter())
        .map(|(op, n)| (op.clone(), (n - ops_a.get(op).unwrap_or(&0.0)) / seconds))
        .filter(|(_, r)| *r > 0.0)
        .collect();
    by_op.sort_by(|x, y| y.1.total_cmp(&x.1).then(x.0.cmp(&y.0)));
    let ops = by_op.iter().fold(0.0, |sum, (_, r)| sum + r);
    let seconds_spent = b.sum("cronusfs_fuse_request_duration_seconds_sum")
        - a.sum("cronusfs_fuse_request_duration_seconds_sum");
    let latency = match ops > 0.0 {
        true => format!("{:.3}", seconds_spent / (ops * seconds) * 1e3),
        false => "-".to_string(),
    };
    let top: Vec<String> = (by_op.iter().take(3))
        .map(|(op, r)| format!("{op} {}", human(*r)))
        .collect();
    let (hits, misses) = (
        rate("cronusfs_content_cache_hits_total"),
        rate("cronusfs_content_cache_misses_total"),
    );
    let cache = match hits + misses > 0.0 {
        true => format!("{:.0}%", 100.0 * hits / (hits + misses)),
        false => "-".to_string(),
    };
    let commits =
        (b.sum("cronusfs_commits_total") - a.sum("cronusfs_commits_total")).max(0.0) / seconds;
    let txns = (b.sum("cronusfs_transactions_total") - a.sum("cronusfs_transactions_total"))
        .max(0.0)
        / seconds;
    format!(
        "{} {:>7} {:>7}  {:<38} {:>8} {:>8} {:>9} {:>7} {:>7} {:>6}",
        clock(),
        human(ops),
        latency,
        top.join(", "),
        bytes(rate("cronusfs_fuse_read_bytes_total")),
        bytes(rate("cronusfs_fuse_written_bytes_total")),
        human(commits),
        human(txns),
        human(rate("cronusfs_transaction_retries_total")),
        cache,
    )
}

/// The counters a daemon says with each heartbeat, from its metrics' text: requests, the
/// seconds they took, bytes read and written, commits (`requests=N seconds=S read=N
/// written=N commits=N`).
pub fn counters_line(metrics: &str) -> String {
    let s = Sample::parse(metrics);
    format!(
        "requests={} seconds={:.6} read={} written={} commits={}",
        s.sum("cronusfs_fuse_requests_total"),
        s.sum("cronusfs_fuse_request_duration_seconds_sum"),
        s.get("cronusfs_fuse_read_bytes_total"),
        s.get("cronusfs_fuse_written_bytes_total"),
        s.sum("cronusfs_commits_total"),
    )
}

/// A daemon's counters at one heartbeat (store time, ms).
#[derive(Clone, Copy, Debug, Default, PartialEq)]
struct Counters {
    at: i64,
    requests: f64,
    seconds: f64,
    read: f64,
    written: f64,
    commits: f64,
}

impl Counters {
    /// Reads what [`counters_line`] made, said at store time `at`.
    fn parse(line: &str, at: i64) -> Option<Counters> {
        let mut c = Counters {
            at,
            ..Counters::default()
        };
        for pair in line.split(' ') {
            let (key, value) = pair.split_once('=')?;
            let value: f64 = value.parse().ok()?;
            match key {
                "requests" => c.requests = value,
                "seconds" => c.seconds = value,
                "read" => c.read = value,
                "written" => c.written = value,
                "commits" => c.commits = value,
                _ => {}
            }
        }
        Some(c)
    }
}

const STORE_HEADER: &str = "    time  host             pid      mount point                        \
     ops/s  lat_ms   read/s  write/s  commit/s";

/// The line of a daemon whose counters went from `a` to `b`.
fn store_line(s: &Session, a: &Counters, b: &Counters) -> String {
    let seconds = ((b.at - a.at) as f64 / 1000.0).max(1e-3);
    let ops = (b.requests - a.requests).max(0.0);
    let latency = match ops > 0.0 {
        true => format!("{:.3}", (b.seconds - a.seconds) / ops * 1e3),
        false => "-".to_string(),
    };
    let at = humantime::format_rfc3339_seconds(
        std::time::UNIX_EPOCH + Duration::from_millis(b.at.max(0) as u64),
    )
    .to_string();
    format!(
        "{} {:<16} {:<8} {:<34} {:>7} {:>7} {:>8} {:>8} {:>9}",
        at.get(11..19).unwrap_or(""),
        s.host,
        s.pid,
        s.mountpoint,
        human(ops / seconds),
        latency,
        bytes((b.read - a.read).max(0.0) / seconds),
        bytes((b.written - a.written).max(0.0) / seconds),
        human((b.commits - a.commits).max(0.0) / seconds),
    )
}

/// Runs `stats -s STORE`: reads the store's sessions every `interval` seconds, `count` times
/// (default: until killed), and prints a line for each daemon whose counters a new heartbeat
/// brought: its rates since the heartbeat before.
pub fn watch_store(m: &Catalog, interval: f64, count: Option<u64>) -> Result<()> {
    let pause = interval_of(interval)?;
    if !m.storage().is_shared() {
        bail!("a store directory has one daemon: cronusfs stats MOUNTPOINT shows it");
    }
    let mut last: HashMap<String, Counters> = HashMap::new();
    let (mut out, mut readings, mut shown) = (std::io::stdout().lock(), 0u64, 0u64);
    while count.is_none_or(|n| readings < n) {
        for s in m.sessions().list()? {
            let Some(now) = (s.stats.as_deref()).and_then(|l| Counters::parse(l, s.heartbeat))
            else {
                continue; // A command's session, or a daemon of an older cronusfs.
            };
            let before = last.insert(s.id.as_str().to_string(), now);
            if let Some(before) = before.filter(|b| b.at < now.at) {
                if shown.is_multiple_of(20) {
                    writeln!(out, "{STORE_HEADER}")?;
                }
                writeln!(out, "{}", store_line(&s, &before, &now))?;
                shown += 1;
            }
        }
        out.flush()?;
        readings += 1;
        if count.is_none_or(|n| readings < n) {
            std::thread::sleep(pause);
        }
    }
    Ok(())
}

/// The time of day, UTC, as `HH:MM:SS`.
fn clock() -> String {
    let now = humantime::format_rfc3339_seconds(std::time::SystemTime::now()).to_string();
    now.get(11..19).unwrap_or("").to_string()
}

/// A rate shown in 4 or 5 characters: `950`, `12.5K`, `3.1M`.
fn human(n: f64) -> String {
    match n {
        n if n < 10.0 => format!("{n:.1}"),
        n if n < 10_000.0 => format!("{n:.0}"),
        n if n < 10_000_000.0 => format!("{:.1}K", n / 1e3),
        n => format!("{:.1}M", n / 1e6),
    }
}

/// Bytes per second in powers of 1024: `512B`, `3.2M`.
fn bytes(n: f64) -> String {
    let units = ["B", "K", "M", "G", "T"];
    let mut value = n;
    let mut unit = 0;
    while value >= 1024.0 && unit < units.len() - 1 {
        value /= 1024.0;
        unit += 1;
    }
    match unit {
        0 => format!("{value:.0}B"),
        _ => format!("{value:.1}{}", units[unit]),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_line_shows_rates_between_two_readings() {
        let a = Sample::parse(
            "# HELP x\ncronusfs_fuse_requests_total{op=\"create\"} 10\n\
             cronusfs_fuse_requests_total{op=\"lookup\"} 5\n\
             cronusfs_fuse_request_duration_seconds_sum{op=\"create\"} 0.001\n\
             cronusfs_fuse_written_bytes_total 0\n\
             cronusfs_commits_total{result=\"committed\"} 1\n",
        );
        let b = Sample::parse(
            "cronusfs_fuse_requests_total{op=\"create\"} 30\n\
             cronusfs_fuse_requests_total{op=\"lookup\"} 45\n\
             cronusfs_fuse_request_duration_seconds_sum{op=\"create\"} 0.011\n\
             cronusfs_fuse_written_bytes_total 2097152\n\
             cronusfs_commits_total{result=\"committed\"} 21\n\
             cronusfs_content_cache_hits_total 3\n\
             cronusfs_content_cache_misses_total 1\n",
        );
        let shown = line(&a, &b, 2.0);
        assert!(shown.contains("lookup 20, create 10 "), "{shown}");
        // 60 requests over 2 s took 10 ms in all: 1/6 ms each.
        assert!(shown.contains("      30   0.167 "), "{shown}");
        assert!(shown.contains(" 1.0M        10 "), "{shown}");
        assert!(shown.ends_with("75%"), "{shown}");
        assert_eq!(human(12_500.0), "12.5K");
        assert_eq!(bytes(512.0), "512B");
    }
}
