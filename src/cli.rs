//! The command line, as clap definitions only: every flag, argument and help text lives here
//! (and from here in the man pages under `man/`).

mod rows;

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};
pub use rows::{LiftArgs, RowsCommand};

/// A content-addressed dataset metastore, mounted as a filesystem.
///
/// A store is a directory holding one RocksDB database, or, for a store several hosts share, a
/// PostgreSQL schema (rows) with its content in PostgreSQL or an S3 bucket. Every catalogued
/// thing is a node: an iden with rows (iden, prop, valu, time) that can be lifted by prop,
/// value, time window and integer range, as in the Synapse Cortex storage layer.
///
/// Long commands (put, get, gc) draw a progress line on stderr when it is a terminal; set
/// CRONUSFS_NO_PROGRESS to turn it off.
#[derive(Debug, Parser)]
#[command(
    name = "cronusfs",
    version,
    propagate_version = true,
    max_term_width = 100
)]
pub struct Cli {
    /// The store: a directory, or a `postgres://` URL for a shared store. Default: the
    /// CRONUSFS_STORE environment variable. (`init`, `mount`, `gc`, `fsck`, `import-cronus` and
    /// `export-cronus` also take it as their first argument.)
    #[arg(short = 's', long, global = true, value_name = "STORE")]
    pub store: Option<PathBuf>,

    /// How long to wait for a store directory another process has open (a command, or a
    /// daemon starting or stopping) before giving up; 0 fails at once.
    #[arg(long, global = true, default_value_t = 60, value_name = "SECONDS")]
    pub wait: u64,

    /// Log lines at LEVEL and above: error, warn, info, debug or trace, or a filter by module
    /// (`cronusfs::fuse=debug,info`). Default: the CRONUSFS_LOG environment variable, else
    /// info for a mount's daemon and warn for a command.
    #[arg(long, global = true, value_name = "LEVEL")]
    pub log_level: Option<String>,

    /// How log lines are written: text, or one JSON object per line (time, level, pid, mount,
    /// target, message, then the event's fields).
    #[arg(long, global = true, value_enum, default_value_t = LogFormat::Text, value_name = "FORMAT")]
    pub log_format: LogFormat,

    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// How log lines are written.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    /// `TIME LEVEL cronusfs[PID] MOUNT: MESSAGE key=value …`
    Text,
    /// One JSON object per line.
    Json,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Create a new, empty store: in directory STORE (made if missing; RocksDB), or, for a
    /// store several hosts share, in the PostgreSQL database of a
    /// `postgres://USER@HOST:PORT/DB?schema=NAME` URL (password from PGPASSWORD).
    Init {
        /// The directory or URL to hold the store (default: -s/--store or CRONUSFS_STORE).
        #[arg(value_name = "STORE")]
        path: Option<PathBuf>,
        /// Keep the content (chunks of object bytes) in an S3 bucket:
        /// `s3://BUCKET[/PREFIX]?endpoint=URL&region=NAME`, recorded in the store so that every
        /// host needs only the store's name. Keys from AWS_ACCESS_KEY_ID and
        /// AWS_SECRET_ACCESS_KEY, never stored. Default: content in the store itself.
        #[arg(long, value_name = "URL")]
        content: Option<String>,
        /// How long the store keeps its history (`30d`, `12h`, `0`; default 30 days): see
        /// `history-retention`.
        #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
        history_retention: Option<std::time::Duration>,
    },
    /// Upgrade a store made by an earlier version to this version's format: its history
    /// begins then. A store directory is upgraded when first opened anyway; a shared store
    /// (PostgreSQL) waits for this command, which refuses while a daemon of the store is live.
    Upgrade {
        /// The directory or URL of the store (default: -s/--store or CRONUSFS_STORE).
        #[arg(value_name = "STORE")]
        path: Option<PathBuf>,
    },
    /// Add, lift, change and delete rows (the Synapse storage API).
    #[command(subcommand)]
    Rows(RowsCommand),
    /// Register and list menus (Artemis menu messages).
    #[command(subcommand)]
    Menu(MessageCommand),
    /// Register and list configurations (Artemis configuration messages).
    #[command(subcommand)]
    Config(MessageCommand),
    /// Create, list and show datasets.
    #[command(subcommand)]
    Dataset(DatasetCommand),
    /// Add and list the partitions of a dataset.
    #[command(subcommand)]
    Partition(PartitionCommand),
    /// Open and list the jobs of a dataset.
    #[command(subcommand)]
    Job(JobCommand),
    /// Store FILE as an object, in `cp` order: `put FILE DATASET/KEY/JOB[/NAME]` (NAME: FILE's
    /// name when left out); a new version if the object exists. Prints the object's place,
    /// uuid, Cronus name, size, type and version.
    ///
    /// FILE `-` reads standard input (then NAME is needed), which must not be a terminal. A
    /// NAME with `/` is a path inside the job directory, whose folders must exist (`mkdir` in
    /// the mount).
    Put {
        /// The file to store (`-`: standard input).
        #[arg(value_name = "FILE")]
        file: PathBuf,
        /// Where: the object's path below `datasets/` in the mount, without `partitions/` and
        /// `jobs/`.
        #[arg(value_name = "DATASET/KEY/JOB[/NAME]")]
        target: String,
    },
    /// Write the current content of an object to FILE (or standard output): the object named
    /// `DATASET/KEY/JOB/NAME` or by its uuid.
    Get {
        /// The object: `DATASET/KEY/JOB/NAME`, or its uuid.
        #[arg(value_name = "OBJECT")]
        object: String,
        /// Where to write (absent or `-`: standard output).
        #[arg(short, long, value_name = "FILE")]
        output: Option<PathBuf>,
        /// Read the store as it was at TIME (RFC 3339, `2026-12-06T01:30:00Z`), not as it is.
        #[arg(long, value_name = "TIME")]
        at: Option<String>,
    },
    /// List the objects of a dataset, of one partition, or of one job directory: path, size,
    /// type, version, uuid, Cronus name and content id, tab-separated; and its symbolic links:
    /// path, target length, `SYMLINK`, `-` three times and `-> TARGET`.
    Ls {
        /// What to list: `DATASET`, `DATASET/KEY` or `DATASET/KEY/JOB`.
        #[arg(value_name = "DATASET[/KEY[/JOB]]")]
        place: String,
        /// Read the store as it was at TIME (RFC 3339, `2026-12-06T01:30:00Z`), not as it is.
        #[arg(long, value_name = "TIME")]
        at: Option<String>,
    },
    /// Print the path (from the mount's root) of every node whose rows match all TERMs: the
    /// lifts of the mount's `query/` views.
    ///
    /// A TERM is `PROP` (the node has the prop), `PROP=VALUE` (a canonical decimal is an
    /// integer, anything else a string, as for attributes), `PROP>=N`, `PROP<=N`, `PROP>N`,
    /// `PROP<N`, or `PROP=LO..HI` (LO <= value < HI). Quote terms with < or > for the shell.
    Find {
        /// The terms, all of which a node must match.
        #[arg(required = true, value_name = "TERM")]
        terms: Vec<String>,
        /// Read the store as it was at TIME (RFC 3339, `2026-12-06T01:30:00Z`), not as it is.
        #[arg(long, value_name = "TIME")]
        at: Option<String>,
    },
    /// Import the Python Cronus store in DIR (its `*.cronus.pb` and the files beside it) into
    /// STORE (created if missing), keeping every uuid.
    #[command(override_usage = "cronusfs import-cronus [STORE] DIR")]
    ImportCronus {
        /// The store to import into (left out: -s/--store or CRONUSFS_STORE).
        #[arg(id = "store_positional", value_name = "STORE")]
        store: Option<PathBuf>,
        /// The directory holding the Cronus store.
        #[arg(value_name = "DIR")]
        dir: Option<PathBuf>,
    },
    /// Export STORE into DIR as a Python Cronus store named NAME, readable by
    /// `BaseObjectStore(DIR, "<uuid>.NAME.cronus.pb", store_uuid=…)`.
    #[command(override_usage = "cronusfs export-cronus [OPTIONS] [STORE] DIR")]
    ExportCronus {
        /// The store to export (left out: -s/--store or CRONUSFS_STORE).
        #[arg(id = "store_positional", value_name = "STORE")]
        store: Option<PathBuf>,
        /// The directory to write (made if missing).
        #[arg(value_name = "DIR")]
        dir: Option<PathBuf>,
        /// The Cronus store name.
        #[arg(long, default_value = "cronusfs")]
        name: String,
        /// Export the store as it was at TIME (RFC 3339): the same bytes every time.
        #[arg(long, value_name = "TIME")]
        at: Option<String>,
    },
    /// Delete the content no object refers to any more; print what was freed.
    ///
    /// On a shared store, gc first marks the store as being swept and waits (up to
    /// CRONUSFS_GC_WAIT_MS, default 60 s) until no other daemon or command has a write in
    /// progress; new writes wait until the sweep ends. Exit 1 when writes stay in progress.
    Gc {
        /// The store (default: -s/--store or CRONUSFS_STORE).
        #[arg(id = "store_positional", value_name = "STORE")]
        store: Option<PathBuf>,
    },
    /// Check every object's bytes against its content id, and every node's rows; exit 1 and
    /// list the problems if any. Entries of a store directory's content cache that differ from
    /// their content are removed and named (not problems of the store).
    Fsck {
        /// The store (default: -s/--store or CRONUSFS_STORE).
        #[arg(id = "store_positional", value_name = "STORE")]
        store: Option<PathBuf>,
    },
    /// Mount STORE at MOUNTPOINT and serve it from a daemon; returns once the mount answers.
    ///
    /// The tree: datasets/<uuid>/{menu,config,partitions/<key>/jobs/<n>/<object>}, menus/,
    /// configs/, objects/<content-id>, query/<term>/…. See docs/SEMANTICS.md for what each
    /// operation does.
    #[command(override_usage = "cronusfs mount [OPTIONS] [STORE] MOUNTPOINT")]
    Mount(MountArgs),
    /// Unmount MOUNTPOINT and wait for its daemon to finish committing and exit.
    Umount {
        /// The mount point.
        mountpoint: PathBuf,
    },
    /// Show the cronusfs mounts of this machine, one per line: store, mount point,
    /// read-only or read-write, and the daemon's pid (marked "gone" when the daemon was killed
    /// and the mount is stale: `cronusfs umount` clears it); under each, its health: whether it
    /// hears other hosts' announcements, whether its session beats (its write lease held),
    /// how its content cache is, and its last WARN or ERROR (from MOUNTPOINT/.cronusfs/health,
    /// readable by the mount's owner; a daemon that does not answer within 2 s is said to be
    /// failing). With --store, show instead every session of that store, on every host: host,
    /// pid, mount point, start, last heartbeat and the time-to-live it is held to, by the
    /// store's clock, and under a daemon's what it said of its health at that heartbeat.
    Status,
    /// Show what the mount at MOUNTPOINT is doing, a line per interval: requests per second and
    /// their mean latency, the most frequent kinds, bytes read and written per second, commits,
    /// transactions and retries per second, and the content cache's hit rate (like
    /// `juicefs stats`). It reads MOUNTPOINT/.cronusfs/stats, the mount's metrics in
    /// Prometheus' text format, which scripts can read too. Without MOUNTPOINT, for the shared
    /// store of --store: a line for each daemon of the store, on every host, at each of its
    /// heartbeats (every sixth of the session time-to-live), with its requests per second,
    /// their mean latency, bytes read and written and commits per second since the heartbeat
    /// before, from the counters it says with each.
    Stats {
        /// The mount point (or any path inside the mount); left out: the shared store of
        /// --store.
        mountpoint: Option<PathBuf>,
        /// Seconds between lines (with a store: between readings of its sessions).
        #[arg(long, default_value_t = 1.0, value_name = "SECONDS")]
        interval: f64,
        /// Stop after N lines (with a store: after N readings). Default: until interrupted.
        #[arg(long, value_name = "N")]
        count: Option<u64>,
    },
    /// Show where the time of the mount at MOUNTPOINT goes, as a table redrawn every
    /// interval: the operations on each path that took longest in all (or were the most
    /// frequent, or the slowest: --sort), and each process's share with its most frequent
    /// operations (like `juicefs profile`). It reads MOUNTPOINT/.cronusfs/accesslog, which
    /// streams a line per request while it is open: time, uid, pid, process, operation,
    /// result, bytes, seconds, path. With --file, the tables of such a log saved earlier
    /// (`cat MNT/.cronusfs/accesslog > saved.log`), once.
    Profile {
        /// The mount point (or any path inside the mount); left out with --file.
        #[arg(required_unless_present = "file")]
        mountpoint: Option<PathBuf>,
        /// Profile this saved access log instead of a mount.
        #[arg(long, value_name = "LOG", conflicts_with_all = ["mountpoint", "interval", "count"])]
        file: Option<PathBuf>,
        /// Seconds between tables.
        #[arg(long, default_value_t = 2.0, value_name = "SECONDS")]
        interval: f64,
        /// Stop after N tables (default: until interrupted or the mount goes away).
        #[arg(long, value_name = "N")]
        count: Option<u64>,
        /// What the rows are sorted by.
        #[arg(long, value_enum, default_value_t = ProfileOrder::Total)]
        sort: ProfileOrder,
        /// Rows in each table.
        #[arg(long, default_value_t = 20, value_name = "N")]
        top: usize,
    },
    /// Show the store's session time-to-live, or set it to SECONDS: how long a session (a
    /// daemon's, or a command's that writes on a shared store) lives without a heartbeat before
    /// any other process removes it, and gc may take what it was writing.
    ///
    /// One value for the whole store, recorded in it (default 30 s), by the store's clock (the
    /// database server's for a shared store). Every process beats six times per time-to-live
    /// and takes a new value at its next heartbeat; a session is removed only once it is older
    /// than both the store's value and the one it last beat under.
    SessionTtl {
        /// The new time-to-live in seconds (decimals allowed; 0.1 to 86400). Left out: print
        /// the current one.
        #[arg(value_name = "SECONDS", value_parser = parse_seconds)]
        seconds: Option<std::time::Duration>,
    },
    /// List what changed between two times, one line per node, tab-separated: KIND, CHANGE
    /// (`added`, `removed`, `version`, `renamed` or `rows`), PLACE (an object's, folder's or
    /// link's `DATASET/KEY/JOB/NAME`, a partition's `DATASET/KEY`, another node's iden), UUID
    /// and DETAIL (`v1→v2 CONTENT`, `from OLD-PLACE`, `replaced a folder`, or the props whose
    /// rows changed). Costs what changed, not what exists.
    #[command(override_usage = "cronusfs diff T1 [T2] [PLACE]")]
    Diff {
        /// T1 (RFC 3339), then T2 (default: now) and PLACE (only nodes at or below it, at
        /// either time: `DATASET[/KEY[/JOB[/NAME]]]`).
        #[arg(required = true, num_args = 1..=3, value_name = "ARG")]
        args: Vec<String>,
    },
    /// List every change history keeps of an object, folder or link (`DATASET/KEY/JOB/NAME`,
    /// or an object's uuid) or of any node by its uuid or iden, oldest first, tab-separated: TIME (usable as `--at`), HOST,
    /// PID, UID, WHAT (the command or mount), VERSION, CONTENT and CHANGE.
    Log {
        /// The node: `DATASET/KEY/JOB/NAME` or a uuid.
        #[arg(value_name = "OBJECT|UUID")]
        node: String,
        /// Find the path as it was at TIME (an object deleted or renamed since).
        #[arg(long, value_name = "TIME")]
        at: Option<String>,
    },
    /// Print how long the store keeps its history, or set it: `gc` reclaims what only older
    /// times need, and reads of them (`--at`) are refused from then on.
    HistoryRetention {
        /// The new retention: a number with `s`, `m`, `h` or `d` (`30d`, `12h`, `0`: keep no
        /// more than the present). Left out: print the current one.
        #[arg(value_name = "DURATION", value_parser = parse_duration)]
        duration: Option<std::time::Duration>,
    },
    /// Make an object, job, partition or dataset what it was at --at TIME, as new versions
    /// (nothing is lost: the state before stays in history). An object deleted since comes
    /// back with its uuid and rows; under a job, partition or dataset, objects, links and
    /// folders made since are deleted, and the directories the restored objects need come
    /// back. Prints what it did.
    Restore {
        /// What to restore: `DATASET[/KEY[/JOB[/NAME]]]` (an object's path as it was at
        /// TIME) or an object's uuid.
        #[arg(value_name = "PLACE|UUID")]
        place: String,
        /// The time to go back to (RFC 3339).
        #[arg(long, value_name = "TIME", required = true)]
        at: String,
    },
    /// Make, list and remove snapshots: a time of the store, or of one dataset, kept by name.
    /// A snapshot reads back under `MNT/snapshots/NAME/` as it was then, whatever the history
    /// retention: gc keeps everything it shows until it is removed.
    #[command(subcommand)]
    Snapshot(SnapshotCommand),
    /// Write the man pages of every command into DIR.
    #[command(hide = true)]
    GenMan {
        /// Where to write the pages.
        dir: PathBuf,
    },
}

/// The arguments of `mount`.
#[derive(Debug, Args)]
pub struct MountArgs {
    /// The store to serve (left out: -s/--store or CRONUSFS_STORE). A directory that holds no
    /// store gets a new one.
    #[arg(id = "store_positional", value_name = "STORE")]
    pub store: Option<PathBuf>,
    /// Where to mount it (an existing, empty directory).
    #[arg(value_name = "MOUNTPOINT")]
    pub mountpoint: Option<PathBuf>,
    /// Serve from this process instead of a daemon; SIGINT or SIGTERM unmounts.
    #[arg(long, short = 'f')]
    pub foreground: bool,
    /// Refuse every change (EROFS).
    #[arg(long)]
    pub read_only: bool,
    /// Let other users in (the kernel checks permissions; needs user_allow_other in
    /// /etc/fuse.conf unless run as root).
    #[arg(long)]
    pub allow_other: bool,
    /// Append the daemon's log to FILE (default: nowhere for a daemon, stderr in the
    /// foreground).
    #[arg(long, value_name = "FILE")]
    pub log_file: Option<PathBuf>,
    /// Threads serving requests.
    #[arg(long, default_value_t = 4, value_name = "N")]
    pub threads: usize,
    /// The most bytes of whole contents kept as local files (`cache/` in the store directory)
    /// for readers the kernel serves without the daemon (FUSE passthrough, as root); a number
    /// with K, M, G or T (powers of 1024); 0 keeps none.
    #[arg(long, default_value = "8G", value_name = "SIZE", value_parser = parse_size)]
    pub cache_size: u64,
    /// The most files and directories the kernel may keep looked up: past it, the daemon has
    /// it forget the files and links used longest ago that nothing has open, so that the
    /// daemon's memory does not grow with the store; 0 sets no bound.
    #[arg(long, default_value_t = cronusfs::fs::DEFAULT_MAX_INODES, value_name = "N")]
    pub max_inodes: usize,
    /// Serve Prometheus metrics at http://ADDR/metrics (for example 127.0.0.1:9567): request
    /// counts, errors and latency by operation, transactions, engine and S3 requests, the
    /// content cache, memory; the list is in docs/METRICS.md.
    #[arg(long, value_name = "ADDR")]
    pub metrics: Option<std::net::SocketAddr>,
    /// Internal: set in the daemon process the parent starts.
    #[arg(long, hide = true)]
    pub daemon_child: bool,
}

/// The `menu` and `config` subcommands.
#[derive(Debug, Subcommand)]
pub enum MessageCommand {
    /// Register a new, empty message with a fresh uuid and NAME (default `<uuid>.<kind>.dat`);
    /// print its uuid.
    New {
        /// The message's name.
        #[arg(long)]
        name: Option<String>,
    },
    /// Register the serialised protobuf message in FILE (its uuid and name come from it). A
    /// file that holds the other kind of message is refused when the bytes tell (a Menu has
    /// graphs, a Configuration tools, algos, sampler or input); one with only a name and a
    /// uuid reads as either.
    Add {
        /// The file holding the message.
        file: PathBuf,
    },
    /// List the registered messages: uuid and name.
    Ls,
    /// Write the registered message UUID, serialised as it was registered, to FILE (or
    /// standard output): what a job reads back at its start.
    Get {
        /// The message's uuid.
        uuid: String,
        /// Where to write (absent or `-`: standard output).
        #[arg(short, long, value_name = "FILE")]
        output: Option<PathBuf>,
    },
}

/// The `dataset` subcommands.
#[derive(Debug, Subcommand)]
pub enum DatasetCommand {
    /// Create a dataset made with a registered menu and configuration; print its uuid.
    Create {
        /// The menu's uuid.
        #[arg(long)]
        menu: String,
        /// The configuration's uuid.
        #[arg(long)]
        config: String,
    },
    /// List the datasets' uuids.
    Ls,
    /// Show a dataset: menu, configuration, partitions, jobs (`-` for the menu and
    /// configuration of a dataset made without them, as `mkdir` on a mount does).
    Show {
        /// The dataset's uuid.
        dataset: String,
    },
}

/// The `partition` subcommands.
#[derive(Debug, Subcommand)]
pub enum PartitionCommand {
    /// Add partitions KEY… to DATASET.
    Add {
        /// The dataset's uuid.
        dataset: String,
        /// The partition keys (1–255 bytes, no `/`).
        #[arg(required = true)]
        keys: Vec<String>,
    },
    /// List the partition keys of DATASET.
    Ls {
        /// The dataset's uuid.
        dataset: String,
    },
}

/// The `snapshot` subcommands.
#[derive(Debug, Subcommand)]
pub enum SnapshotCommand {
    /// Make snapshot NAME of the store (or of DATASET only) as it is now, or as it was at
    /// --at TIME (which history must still keep). Prints its name and time.
    Create {
        /// The snapshot's name (1–255 bytes, no `/`): `MNT/snapshots/NAME/`.
        name: String,
        /// Keep only this dataset (with its menu and configuration).
        #[arg(value_name = "DATASET")]
        dataset: Option<String>,
        /// The time to keep (RFC 3339; default: now).
        #[arg(long, value_name = "TIME")]
        at: Option<String>,
    },
    /// List the snapshots, tab-separated: NAME, TIME (usable as `--at`), DATASET (`-`: the
    /// whole store) and when it was made.
    Ls,
    /// Remove snapshot NAME: what only it kept goes at the next gc.
    Rm {
        /// The snapshot's name.
        name: String,
    },
}

/// The `job` subcommands.
#[derive(Debug, Subcommand)]
pub enum JobCommand {
    /// Open the next job of DATASET; print its number.
    New {
        /// The dataset's uuid.
        dataset: String,
    },
    /// List the job numbers of DATASET.
    Ls {
        /// The dataset's uuid.
        dataset: String,
    },
}

/// What the table is sorted by.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum ProfileOrder {
    /// The time taken in all.
    Total,
    /// The number of requests.
    Count,
    /// The mean time of one.
    Mean,
    /// The longest one.
    Max,
}

/// How rows are printed.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, ValueEnum)]
pub enum Format {
    /// Aligned columns with a header; long values are cut; times in local ISO-8601.
    #[default]
    Table,
    /// One JSON object per row: {"iden","prop","valu","time"}; integers stay numbers, times
    /// epoch milliseconds.
    Jsonl,
    /// Tab-separated iden, prop, valu, time (epoch milliseconds); tab, newline, CR and
    /// backslash escaped.
    Tsv,
}

/// Output options shared by the commands that print rows.
#[derive(Debug, Args)]
pub struct OutputArgs {
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Table)]
    pub format: Format,
}

/// A value given on the command line.
#[derive(Debug, Args)]
pub struct ValueArgs {
    /// Store VALUE as a string even when it is a canonical decimal integer.
    #[arg(long = "str")]
    pub force_str: bool,
}

/// Parses a number of seconds (decimals allowed) into a duration, to the millisecond.
fn parse_seconds(text: &str) -> Result<std::time::Duration, String> {
    let secs: f64 = text
        .trim()
        .parse()
        .map_err(|_| format!("not a number of seconds: {text:?}"))?;
    if !secs.is_finite() || !(0.0..=1e9).contains(&secs) {
        return Err(format!("not a number of seconds: {text:?}"));
    }
    Ok(std::time::Duration::from_millis(
        (secs * 1000.0).round() as u64
    ))
}

/// Parses a duration: whole digits with `s`, `m`, `h` or `d` (`0` alone needs none).
fn parse_duration(text: &str) -> Result<std::time::Duration, String> {
    let bad = || format!("not a duration (like 30d, 12h, 90m, 3600s): {text:?}");
    let text = text.trim();
    if text == "0" {
        return Ok(std::time::Duration::ZERO);
    }
    let (digits, unit) = text.split_at(text.len().saturating_sub(1));
    let scale = match unit {
        "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86_400,
        _ => return Err(bad()),
    };
    let n: u64 = digits.parse().map_err(|_| bad())?;
    n.checked_mul(scale)
        .map(std::time::Duration::from_secs)
        .ok_or_else(bad)
}

/// Parses a size in bytes: digits with an optional K, M, G or T (powers of 1024).
fn parse_size(text: &str) -> Result<u64, String> {
    let text = text.trim();
    let (digits, shift) = match text.char_indices().last() {
        Some((at, unit)) if unit.is_ascii_alphabetic() => {
            let shift = match unit.to_ascii_uppercase() {
                'K' => 10,
                'M' => 20,
                'G' => 30,
                'T' => 40,
                _ => return Err(format!("unknown unit {unit:?} (K, M, G or T)")),
            };
            (&text[..at], shift)
        }
        _ => (text, 0),
    };
    let n: u64 = digits
        .parse()
        .map_err(|_| format!("not a size: {text:?} (a number with K, M, G or T)"))?;
    n.checked_shl(shift)
        .filter(|v| v >> shift == n)
        .ok_or_else(|| format!("too large: {text}"))
}
