//! Runs a parsed command line: opens the store, calls the library, prints results, and turns
//! every error into one line on stderr and an exit status (2 for usage, 1 for the rest).

mod catalog;
mod fsck;
mod health;
mod history;
mod logging;
mod man;
mod message_shape;
mod mount;
mod output;
mod placement;
mod profile;
mod progress;
mod remote;
mod rows;
mod scrape;
mod session;
mod stats;
mod store_sessions;

use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow, bail};
use clap::Parser;

use crate::cli::{Cli, Command};
use cronusfs::meta::Metastore;
use cronusfs::storage::history::show_micros;
use cronusfs::storage::location::{self, Location, OpenStore};
use cronusfs::storage::s3::S3Url;
use cronusfs::storage::{Storage, StorageError};

/// Where a command reads its input, writes its output and resolves relative paths: this
/// process's own stdin, stdout and working directory, or those of a client the mount's daemon
/// runs a command for.
pub struct Console<'a> {
    /// Standard output.
    pub out: &'a mut dyn std::io::Write,
    /// Standard input.
    pub input: &'a mut dyn std::io::Read,
    /// The working directory relative paths are resolved from.
    pub cwd: PathBuf,
}

impl Console<'_> {
    /// Returns `p` resolved against the console's working directory.
    pub fn path(&self, p: &Path) -> PathBuf {
        self.cwd.join(p)
    }
}

/// Exit status for a command that failed at run time.
pub const EXIT_FAILURE: u8 = 1;
/// Exit status for a command line that does not parse.
pub const EXIT_USAGE: u8 = 2;

/// Parses the command line, runs it and returns the exit status.
pub fn main() -> ExitCode {
    // Whatever cronusfs writes (a store's files, above all) is its owner's alone.
    // SAFETY: umask only sets this process's file-creation mask; it cannot fail.
    unsafe {
        libc::umask(0o077);
    }
    let mut cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => return usage_error(e),
    };
    // Read here rather than by clap: clap's usage lines show an argument the environment set
    // as if it had been typed.
    if cli.store.is_none() {
        cli.store = std::env::var_os("CRONUSFS_STORE")
            .filter(|v| !v.is_empty())
            .map(PathBuf::from);
    }
    let default_level = match cli.command {
        Command::Mount(_) => "info",
        _ => "warn",
    };
    if let Err(e) = logging::init(cli.log_level.as_deref(), cli.log_format, default_level) {
        eprintln!("cronusfs: error: {e}");
        return ExitCode::from(EXIT_USAGE);
    }
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) if is_broken_pipe(&e) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("cronusfs: error: {e:#}");
            ExitCode::from(EXIT_FAILURE)
        }
    }
}

/// Prints a clap error: help and version in full, a usage error as one line.
fn usage_error(e: clap::Error) -> ExitCode {
    use clap::error::ErrorKind;
    if matches!(e.kind(), ErrorKind::DisplayHelp | ErrorKind::DisplayVersion) {
        let _ = e.print();
        return ExitCode::SUCCESS;
    }
    if e.kind() == ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand {
        let _ = e.print();
        return ExitCode::from(EXIT_USAGE);
    }
    eprintln!("cronusfs: error: {}", one_line(&e.render().to_string()));
    ExitCode::from(EXIT_USAGE)
}

/// Folds clap's multi-line message into one line: its first paragraph, then its usage line.
pub fn one_line(rendered: &str) -> String {
    let mut paragraphs = rendered.split("\n\n");
    let first = paragraphs.next().unwrap_or("invalid arguments");
    let first = first.strip_prefix("error: ").unwrap_or(first);
    let mut line = first.split_whitespace().collect::<Vec<_>>().join(" ");
    let usage = paragraphs.find_map(|p| p.trim().strip_prefix("Usage: "));
    if let Some(usage) = usage {
        let usage = usage.split_whitespace().collect::<Vec<_>>().join(" ");
        line.push_str(&format!(" (usage: {usage})"));
    }
    line
}

/// Fails when standard input cannot be read (closed, or open for writing only): Rust's
/// standard library reads such an input as empty, which would store an empty object.
fn check_stdin_readable() -> Result<()> {
    // SAFETY: F_GETFL on descriptor 0 only reads its flags; no memory is involved.
    let flags = unsafe { libc::fcntl(0, libc::F_GETFL) };
    if flags < 0 {
        bail!("standard input is closed: nothing to read for `-`");
    }
    if flags & libc::O_ACCMODE == libc::O_WRONLY {
        bail!("standard input is open for writing only: nothing to read for `-`");
    }
    // A closed standard input is opened on /dev/null, for reading and writing, by Rust's
    // runtime before `main`; a `< /dev/null` of the shell's is for reading only.
    if flags & libc::O_ACCMODE == libc::O_RDWR && is_dev_null("/proc/self/fd/0") {
        bail!("standard input is closed: nothing to read for `-`");
    }
    Ok(())
}

/// Returns whether `path` is the null device.
fn is_dev_null(path: &str) -> bool {
    use std::os::unix::fs::{FileTypeExt, MetadataExt};
    let (Ok(it), Ok(null)) = (std::fs::metadata(path), std::fs::metadata("/dev/null")) else {
        return false;
    };
    it.file_type().is_char_device() && it.rdev() == null.rdev()
}

fn is_broken_pipe(e: &anyhow::Error) -> bool {
    e.chain()
        .filter_map(|c| c.downcast_ref::<std::io::Error>())
        .any(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
}

fn run(cli: Cli) -> Result<()> {
    if let Command::Put { file, .. } = &cli.command
        && file.as_os_str() == "-"
        && std::io::stdin().is_terminal()
    {
        bail!("standard input is a terminal: give put a FILE, or pipe the bytes into `put -`");
    }
    if remote::reads_stdin(&cli.command) {
        check_stdin_readable()?;
    }
    let (stdout, stdin) = (std::io::stdout(), std::io::stdin());
    let (mut out, mut input) = (stdout.lock(), stdin.lock());
    let mut io = Console {
        out: &mut out,
        input: &mut input,
        cwd: std::env::current_dir()?,
    };
    match cli.command {
        Command::Init {
            path,
            content,
            history_retention,
        } => init(
            &store_path(path.as_deref().or(cli.store.as_deref()))?,
            content.as_deref(),
            history_retention,
        ),
        Command::Upgrade { path } => {
            upgrade(&store_path(path.as_deref().or(cli.store.as_deref()))?)
        }
        Command::ImportCronus { store, dir } => {
            let (store, dir) = store_and(store, dir, cli.store.as_deref(), "DIR")?;
            let location = parse_location(&store)?;
            let store = location::create(&location, None)?;
            with_session(catalog_of(store), "import-cronus", |m| {
                catalog::import(m, &mut io, &dir)
            })
        }
        Command::ExportCronus {
            store,
            dir,
            name,
            at,
        } => {
            let (store, dir) = store_and(store, dir, cli.store.as_deref(), "DIR")?;
            let store = parse_location(&store)?;
            // A mounted store is exported by its daemon (a consistent view of what it serves).
            match open_waiting(&store, Duration::from_secs(cli.wait))? {
                OpenedStore::Here(opened) => {
                    catalog::export(&catalog_of(opened), &mut io, &dir, (&name, at.as_deref()))
                }
                OpenedStore::Served(local) => remote::forward(&local, &store, &mut io, false),
            }
        }
        Command::GenMan { dir } => man::write_all(&dir),
        Command::Mount(mut args) => {
            let (store, mountpoint) = store_and(
                args.store,
                args.mountpoint,
                cli.store.as_deref(),
                "MOUNTPOINT",
            )?;
            (args.store, args.mountpoint) = (Some(store), Some(mountpoint));
            mount::mount(args)
        }
        Command::Umount { mountpoint } => mount::umount(&mountpoint),
        Command::Status if cli.store.is_none() => mount::status(),
        Command::Stats {
            mountpoint: Some(mountpoint),
            interval,
            count,
        } => stats::watch(&mountpoint, interval, count),
        Command::Stats {
            mountpoint: None,
            interval,
            count,
        } => {
            let store = parse_location(&store_path(cli.store.as_deref())?)?;
            if let Location::Dir(dir) = &store {
                if !dir.join(cronusfs::storage::rocks::LOCK_FILE).is_file() {
                    bail!("no store at {}", dir.display());
                }
                bail!(
                    "{} is a store directory, served by one daemon: give its mount point \
                     (cronusfs stats MOUNTPOINT)",
                    dir.display()
                );
            }
            stats::watch_store(&catalog_of(location::open(&store)?), interval, count)
        }
        Command::Profile {
            mountpoint,
            file,
            interval,
            count,
            sort,
            top,
        } => {
            let view = profile::ProfileView { order: sort, top };
            match (file, mountpoint) {
                (Some(log), _) => profile::saved(&log, view),
                (None, Some(mountpoint)) => profile::watch(&mountpoint, interval, count, view),
                (None, None) => bail!("give a MOUNTPOINT or --file LOG"),
            }
        }
        other => {
            let named = match &other {
                Command::Gc { store } | Command::Fsck { store } => store.as_deref(),
                _ => None,
            };
            let store = parse_location(&store_path(named.or(cli.store.as_deref()))?)?;
            // A store directory is held by its daemon: the command runs there. A shared store
            // is opened here, beside any daemons.
            let opened = match open_waiting(&store, Duration::from_secs(cli.wait))? {
                OpenedStore::Here(opened) => opened,
                OpenedStore::Served(dir) => {
                    let stdin = remote::reads_stdin(&other);
                    return remote::forward(&dir, &store, &mut io, stdin);
                }
            };
            let catalog = catalog_of(opened);
            let cache = match &store {
                Location::Dir(dir) => Some(dir.join(cronusfs::fs::CACHE_DIR)),
                Location::Postgres(_) => None, // Each mount point's, on its own host.
            };
            let cache = cache.as_deref();
            match placement::stores_content(&other) {
                Some(what) => with_session(catalog, what, |m| run_on(m, &mut io, other, cache)),
                None => run_on(&catalog, &mut io, other, cache),
            }
        }
    }
}

/// A store opened by [`open_waiting`]: here, or served by a daemon (the command goes there).
enum OpenedStore {
    Here(OpenStore),
    Served(PathBuf),
}

/// Opens `store`, waiting up to `limit` while another process has its directory open (saying
/// so on stderr after a second), and turning to the daemon if one starts serving it meanwhile.
fn open_waiting(store: &Location, limit: Duration) -> Result<OpenedStore> {
    let started = Instant::now();
    let mut said = false;
    loop {
        if let Location::Dir(dir) = store
            && remote::is_served(dir)
        {
            return Ok(OpenedStore::Served(dir.clone()));
        }
        match location::open(store) {
            Err(StorageError::Locked { .. }) if started.elapsed() < limit => {
                if !said && started.elapsed() >= Duration::from_secs(1) {
                    eprintln!(
                        "cronusfs: {store} is in use by another process; waiting (at most {} s, --wait)",
                        limit.as_secs()
                    );
                    said = true;
                }
                std::thread::sleep(Duration::from_millis(50));
            }
            Err(e @ StorageError::Locked { .. }) if !limit.is_zero() => {
                return Err(anyhow!("{e} (waited {} s)", limit.as_secs()));
            }
            other => return Ok(OpenedStore::Here(other?)),
        }
    }
}

/// Runs `run` on `catalog`, with a session of this command (shown as `(cronusfs WHAT)` by
/// `status`) when the store is shared.
fn with_session(
    catalog: Catalog,
    what: &str,
    run: impl FnOnce(&Catalog) -> Result<()>,
) -> Result<()> {
    if !catalog.storage().is_shared() {
        return run(&catalog);
    }
    let catalog = std::sync::Arc::new(catalog);
    let heartbeat = cronusfs::meta::heartbeat::Heartbeat::start_as(
        catalog.clone(),
        &format!("(cronusfs {what})"),
    )?;
    let result = run(&catalog);
    heartbeat.stop();
    result
}

/// Runs a command that works on an open catalogue (`rows` and the catalogue commands), here or
/// in the daemon serving the store.
/// `cache` is the content cache of the store's daemon (checked by `fsck`).
pub fn run_on(
    m: &Catalog,
    io: &mut Console<'_>,
    command: Command,
    cache: Option<&Path>,
) -> Result<()> {
    match command {
        Command::Rows(cmd) => rows::run(m.storage(), io, cmd),
        other => catalog::run(m, io, other, cache),
    }
}

/// The catalogue every command works on, whatever backend holds it.
pub type Catalog = cronusfs::meta::heartbeat::Catalog;

fn init(arg: &Path, content: Option<&str>, retention: Option<Duration>) -> Result<()> {
    let store = parse_location(arg)?;
    if location::exists(&store)? {
        return Err(anyhow!("{store} is already a store"));
    }
    let content = content.map(S3Url::parse).transpose()?;
    let made = location::create(&store, content.as_ref())
        .with_context(|| format!("cannot create a store in {store}"))?;
    if let Some(retention) = retention {
        catalog_of(made).set_history_retention(retention)?;
    }
    match content {
        Some(c) => println!("created store {store} (content in {c})"),
        None => println!("created store {store}"),
    }
    Ok(())
}

/// Runs `upgrade`: the store's format becomes this version's once no daemon uses it.
fn upgrade(arg: &Path) -> Result<()> {
    let location = parse_location(arg)?;
    let (store, version) = location::open_to_upgrade(&location)?;
    if version == cronusfs::storage::keys::FORMAT_VERSION {
        let since = store.history_bounds()?.since;
        println!(
            "{location} is up to date (history since {})",
            show_micros(since)
        );
        return Ok(());
    }
    let meta = Metastore::new(store);
    let (now, ttl) = (
        meta.storage().server_time()?,
        meta.sessions().ttl()?.as_millis() as i64,
    );
    let live: Vec<String> = (meta.sessions().list()?.into_iter())
        .filter(|s| !s.expired_at(now, ttl))
        .map(|s| format!("{} pid {} ({})", s.host, s.pid, s.mountpoint))
        .collect();
    if !live.is_empty() {
        bail!(
            "daemons of the earlier version use {location}: stop them first: {}",
            live.join(", ")
        );
    }
    let since = location::upgrade(&location)?;
    println!(
        "upgraded {location}: it keeps history from {}",
        show_micros(since)
    );
    Ok(())
}

/// Returns the catalogue of an open store, its chunks wherever they are.
pub fn catalog_of(store: OpenStore) -> Catalog {
    Metastore::of_store(store)
}

/// Reads a store argument: a directory or a `postgres://` URL.
pub fn parse_location(arg: &Path) -> Result<Location> {
    Ok(Location::parse(arg)?)
}

/// Returns this host's directory of cronusfs's local files of shared stores:
/// `$XDG_CACHE_HOME/cronusfs` (default `~/.cache/cronusfs`).
pub fn cache_root() -> PathBuf {
    let cache = std::env::var_os("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")))
        .unwrap_or_else(|| PathBuf::from("/var/tmp"));
    cache.join("cronusfs")
}

/// Returns the store and the other path of a command taking `[STORE] OTHER`: both as given,
/// or, when only one is, that one as OTHER and the store from `--store` / `CRONUSFS_STORE`.
fn store_and(
    first: Option<PathBuf>,
    second: Option<PathBuf>,
    global: Option<&Path>,
    other: &str,
) -> Result<(PathBuf, PathBuf)> {
    match (first, second) {
        (Some(store), Some(path)) => Ok((store, path)),
        (Some(path), None) => Ok((store_path(global)?, path)),
        (None, _) => bail!("no {other} given"),
    }
}

/// Returns the store named by `--store` / `CRONUSFS_STORE`.
fn store_path(store: Option<&Path>) -> Result<PathBuf> {
    store
        .map(Path::to_path_buf)
        .ok_or_else(|| anyhow!("no store given: pass --store STORE or set CRONUSFS_STORE"))
}
