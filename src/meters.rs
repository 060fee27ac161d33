//! Every metric the daemon records: its name, kind, labels and meaning (the one list that
//! docs/METRICS.md shows, kept current by a test), and the handles the layers record through.
//! Recording goes through the `metrics` facade, so no layer knows who collects: with no recorder
//! installed (a command, a unit test) every handle is a no-op; a mount installs the Prometheus
//! one (`cronusfs mount --metrics`) before it opens the store.

use std::time::Instant;

use metrics::{Counter, Histogram};

/// What a metric is, in Prometheus' terms.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// Only goes up (`_total`).
    Counter,
    /// A value now.
    Gauge,
    /// Observations counted into buckets (`_seconds`).
    Histogram,
}

/// One metric: its name, kind, labels and what it says.
#[derive(Clone, Copy, Debug)]
pub struct Metric {
    /// The name, `cronusfs_` first, the unit (`_seconds`, `_bytes`) and `_total` last.
    pub name: &'static str,
    /// Counter, gauge or histogram.
    pub kind: Kind,
    /// The names of its labels.
    pub labels: &'static [&'static str],
    /// What it counts or shows.
    pub help: &'static str,
}

macro_rules! metrics_table {
    ($($id:ident = $name:literal, $kind:ident, [$($label:literal),*], $help:literal;)*) => {
        $(
            #[doc = $help]
            pub const $id: &str = $name;
        )*
        /// Every metric, in the order docs/METRICS.md lists them.
        pub const ALL: &[Metric] = &[$(Metric {
            name: $name,
            kind: Kind::$kind,
            labels: &[$($label),*],
            help: $help,
        }),*];
    };
}

metrics_table! {
    FUSE_REQUESTS = "cronusfs_fuse_requests_total", Counter, ["op"],
        "Requests the kernel sent, by operation (lookup, getattr, read, …).";
    FUSE_ERRORS = "cronusfs_fuse_request_errors_total", Counter, ["op", "errno"],
        "Requests answered with an error, by operation and errno name (ENOENT, EIO, …); a lookup of a name that does not exist counts as ENOENT.";
    FUSE_SECONDS = "cronusfs_fuse_request_duration_seconds", Histogram, ["op"],
        "Time from a request's arrival to its reply, queueing for the content pool included.";
    FUSE_READ_BYTES = "cronusfs_fuse_read_bytes_total", Counter, [],
        "Bytes the daemon served to reads (reads the kernel serves itself by passthrough are not here).";
    FUSE_WRITTEN_BYTES = "cronusfs_fuse_written_bytes_total", Counter, [],
        "Bytes written through the mount.";
    FUSE_OPENS = "cronusfs_fuse_opens_total", Counter, ["mode"],
        "Files opened, by who serves their reads: `passthrough` (the kernel, from the content cache) or `daemon`.";
    COMMITS = "cronusfs_commits_total", Counter, ["result"],
        "New versions of objects written through the mount, at close or fsync: `committed` or `failed`.";
    OPEN_HANDLES = "cronusfs_open_handles", Gauge, [],
        "Files and directories the mount has open now.";
    INODES = "cronusfs_inodes", Gauge, [],
        "Inodes the mount remembers (what the kernel may still ask about).";
    INODES_HELD = "cronusfs_inodes_held", Gauge, [],
        "Inodes the kernel holds entries of and has not forgotten (its lookup counts); `--max-inodes` bounds them.";
    INODE_BUDGET_ROUNDS = "cronusfs_inode_budget_rounds_total", Counter, [],
        "Times the kernel held more inodes than `--max-inodes` and was told to forget the files and links used longest ago.";
    CACHE_HITS = "cronusfs_content_cache_hits_total", Counter, [],
        "Opens of a content the local content cache held.";
    CACHE_MISSES = "cronusfs_content_cache_misses_total", Counter, [],
        "Opens of a content worth caching that the cache did not hold.";
    CACHE_FILLED_BYTES = "cronusfs_content_cache_filled_bytes_total", Counter, [],
        "Bytes written into the content cache.";
    CACHE_BYTES = "cronusfs_content_cache_bytes", Gauge, [],
        "Bytes the content cache holds now.";
    CACHE_ENTRIES = "cronusfs_content_cache_entries", Gauge, [],
        "Contents the content cache holds now.";
    TRANSACTIONS = "cronusfs_transactions_total", Counter, ["result"],
        "Transactions run to their end: `committed`, `failed` (an error other than a conflict) or `contended` (gave up after conflicting every attempt).";
    TRANSACTION_SECONDS = "cronusfs_transaction_duration_seconds", Histogram, [],
        "Time a transaction took, from its first attempt to its end, retries included.";
    TRANSACTION_CONFLICTS = "cronusfs_transaction_conflicts_total", Counter, [],
        "Attempts that conflicted with another writer (a shared store).";
    TRANSACTION_RETRIES = "cronusfs_transaction_retries_total", Counter, [],
        "Attempts run again after a conflict.";
    ENGINE_REQUESTS = "cronusfs_engine_requests_total", Counter, ["engine", "op"],
        "Requests to the row engine (`rocksdb`, `postgres`), by operation.";
    ENGINE_ERRORS = "cronusfs_engine_request_errors_total", Counter, ["engine", "op"],
        "Requests to the row engine that failed (a conflict included).";
    ENGINE_SECONDS = "cronusfs_engine_request_duration_seconds", Histogram, ["engine", "op"],
        "Time a request to the row engine took (a scan's includes what its caller did with each row).";
    S3_REQUESTS = "cronusfs_s3_requests_total", Counter, ["op"],
        "Requests to the S3 content store, by operation (`get`, `put`, `head`, `delete`, `list`).";
    S3_ERRORS = "cronusfs_s3_request_errors_total", Counter, ["op"],
        "Requests to the S3 content store that failed after the client's own retries.";
    S3_SECONDS = "cronusfs_s3_request_duration_seconds", Histogram, ["op"],
        "Time a request to the S3 content store took, the client's retries included.";
    ANNOUNCEMENTS_SENT = "cronusfs_announcements_sent_total", Counter, [],
        "Commits announced to the other hosts of a shared store.";
    ANNOUNCEMENTS_HEARD = "cronusfs_announcements_heard_total", Counter, [],
        "Other hosts' commits this mount heard of.";
    KERNEL_INVALIDATIONS = "cronusfs_kernel_invalidations_total", Counter, [],
        "Entries and attributes the kernel was told to forget after other hosts' commits.";
    ANNOUNCEMENT_ROUNDS = "cronusfs_announcement_rounds_total", Counter, [],
        "Times this mount acted on other hosts' announcements (those heard within 10 ms of the last round are taken together).";
    KEPT_ANSWERS = "cronusfs_kept_answers_total", Counter, ["kind", "result"],
        "Answers the daemon looked for among what it keeps of the store (`kind`: `listing`, `attributes` of directories and messages, `xattrs` of nodes, `object_rows` of a store this process owns), `hit` or `miss`.";
    CACHE_DROPS = "cronusfs_cache_drops_total", Counter, ["reach"],
        "Times this mount dropped the listings and rows it kept of a shared store: of one dataset (`dataset`: another host committed within it) or of everything (`store`: a commit that named no dataset, a lost announcement, or the fallback time-to-live).";
    HEARTBEATS = "cronusfs_session_heartbeats_total", Counter, ["result"],
        "Renewals of this mount's session in the store (`ok` or `failed`); a store's gc keeps what a live session reads.";
    SESSIONS_EXPIRED = "cronusfs_sessions_expired_total", Counter, [],
        "Sessions of other mounts this mount expired because their heartbeats stopped (their leases went with them).";
    GC_SWEEPS = "cronusfs_gc_sweeps_total", Counter, [],
        "Garbage collections this process ran.";
    GC_FREED_BYTES = "cronusfs_gc_freed_bytes_total", Counter, [],
        "Bytes of content garbage collection freed.";
    RESIDENT_BYTES = "cronusfs_resident_memory_bytes", Gauge, [],
        "The daemon's resident memory.";
    START_TIME = "cronusfs_start_time_seconds", Gauge, [],
        "When the daemon started, in seconds since the Unix epoch.";
}

/// The bucket bounds of every latency histogram, in seconds: 10 µs to 10 s.
pub const LATENCY_BUCKETS: &[f64] = &[
    0.000_01, 0.000_025, 0.000_05, 0.000_1, 0.000_25, 0.000_5, 0.001, 0.002_5, 0.005, 0.01, 0.025,
    0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

/// Gives the recorder every metric's meaning (the `# HELP` lines).
pub fn describe() {
    for m in ALL {
        match m.kind {
            Kind::Counter => metrics::describe_counter!(m.name, m.help),
            Kind::Gauge => metrics::describe_gauge!(m.name, m.help),
            Kind::Histogram => metrics::describe_histogram!(m.name, m.help),
        }
    }
}

/// The count, errors and latency of one kind of request to a server or engine, registered
/// once so that recording one costs two atomic adds and a clock read.
#[derive(Clone)]
pub struct RequestMeter {
    count: Counter,
    errors: Counter,
    seconds: Histogram,
}

impl RequestMeter {
    /// The meter of operation `op` of row engine `engine`.
    pub fn engine(engine: &'static str, op: &'static str) -> Self {
        let labels = [("engine", engine), ("op", op)];
        RequestMeter {
            count: metrics::counter!(ENGINE_REQUESTS, &labels),
            errors: metrics::counter!(ENGINE_ERRORS, &labels),
            seconds: metrics::histogram!(ENGINE_SECONDS, &labels),
        }
    }

    /// The meter of S3 operation `op`.
    pub fn s3(op: &'static str) -> Self {
        RequestMeter {
            count: metrics::counter!(S3_REQUESTS, "op" => op),
            errors: metrics::counter!(S3_ERRORS, "op" => op),
            seconds: metrics::histogram!(S3_SECONDS, "op" => op),
        }
    }

    /// Runs request `f`, counting it, its failure and its time.
    pub fn time<T, E>(&self, f: impl FnOnce() -> Result<T, E>) -> Result<T, E> {
        let started = Instant::now();
        let done = f();
        self.record(started, done.is_err());
        done
    }

    /// Counts a request that began at `started` and ended now, `failed` or not.
    pub fn record(&self, started: Instant, failed: bool) {
        self.seconds.record(started.elapsed().as_secs_f64());
        self.count.increment(1);
        if failed {
            self.errors.increment(1);
        }
    }
}

/// The meters of a row engine's requests, by operation.
#[derive(Clone)]
pub struct EngineMeters {
    /// Reads of one key.
    pub get: RequestMeter,
    /// Ordered scans of a range (or of several, in one round trip).
    pub scan: RequestMeter,
    /// Starts of a transaction or a snapshot that cost a request (a server's).
    pub begin: RequestMeter,
    /// Atomic writes of a batch: a transaction's commit or a write of its own.
    pub write: RequestMeter,
    /// Flushes of the write-ahead log.
    pub sync: RequestMeter,
}

impl EngineMeters {
    /// The meters of row engine `engine` (`rocksdb`, `postgres`).
    pub fn new(engine: &'static str) -> Self {
        EngineMeters {
            get: RequestMeter::engine(engine, "get"),
            scan: RequestMeter::engine(engine, "scan"),
            begin: RequestMeter::engine(engine, "begin"),
            write: RequestMeter::engine(engine, "write"),
            sync: RequestMeter::engine(engine, "sync"),
        }
    }
}

/// Counts one event of counter `name` (one that has no labels).
pub fn count(name: &'static str, n: u64) {
    metrics::counter!(name).increment(n);
}

/// Counts one event of counter `name` whose one label `label` is `value`.
pub fn count_labelled(name: &'static str, label: &'static str, value: &'static str) {
    metrics::counter!(name, label => value).increment(1);
}

/// Counts one look among the answers the daemon keeps, of `kind`, found (`hit`) or not.
pub fn count_kept(kind: &'static str, hit: bool) {
    let result = if hit { "hit" } else { "miss" };
    metrics::counter!(KEPT_ANSWERS, "kind" => kind, "result" => result).increment(1);
}

/// Counts one event of counter `name` whose `result` label is `result`.
pub fn count_result(name: &'static str, result: &'static str) {
    metrics::counter!(name, "result" => result).increment(1);
}

/// Sets gauge `name` (one that has no labels) to `value`.
pub fn set_gauge(name: &'static str, value: f64) {
    metrics::gauge!(name).set(value);
}

/// Returns the symbolic name of errno `n` (`ENOENT`), or its number for one this store never
/// answers.
pub fn errno_name(n: i32) -> std::borrow::Cow<'static, str> {
    let name = match n {
        libc::EPERM => "EPERM",
        libc::ENOENT => "ENOENT",
        libc::EIO => "EIO",
        libc::ENXIO => "ENXIO",
        libc::EBADF => "EBADF",
        libc::EAGAIN => "EAGAIN",
        libc::ENOMEM => "ENOMEM",
        libc::EACCES => "EACCES",
        libc::EBUSY => "EBUSY",
        libc::EEXIST => "EEXIST",
        libc::EXDEV => "EXDEV",
        libc::ENOTDIR => "ENOTDIR",
        libc::EISDIR => "EISDIR",
        libc::EINVAL => "EINVAL",
        libc::EFBIG => "EFBIG",
        libc::ENOSPC => "ENOSPC",
        libc::EROFS => "EROFS",
        libc::EMLINK => "EMLINK",
        libc::ERANGE => "ERANGE",
        libc::ENAMETOOLONG => "ENAMETOOLONG",
        libc::ENOSYS => "ENOSYS",
        libc::ENOTEMPTY => "ENOTEMPTY",
        libc::ELOOP => "ELOOP",
        libc::ENODATA => "ENODATA",
        libc::ENOTSUP => "ENOTSUP",
        libc::ETIMEDOUT => "ETIMEDOUT",
        libc::ESTALE => "ESTALE",
        libc::EDQUOT => "EDQUOT",
        libc::EINTR => "EINTR",
        libc::ECONNREFUSED => "ECONNREFUSED",
        n => return n.to_string().into(),
    };
    name.into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_follow_the_prometheus_conventions() {
        let mut seen = std::collections::HashSet::new();
        for m in ALL {
            assert!(seen.insert(m.name), "{} twice", m.name);
            assert!(m.name.starts_with("cronusfs_"), "{}", m.name);
            let total = m.name.ends_with("_total");
            assert_eq!(total, m.kind == Kind::Counter, "{}", m.name);
            if m.kind == Kind::Histogram {
                assert!(m.name.ends_with("_seconds"), "{}", m.name);
            }
            assert!(!m.help.is_empty() && m.help.ends_with('.'), "{}", m.name);
        }
    }

    #[test]
    fn errnos_are_named() {
        assert_eq!(errno_name(libc::ENOENT), "ENOENT");
        assert_eq!(errno_name(libc::ENOTSUP), "ENOTSUP");
        assert_eq!(errno_name(9999), "9999");
    }
}
