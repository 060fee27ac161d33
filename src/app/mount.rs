//! `mount`, `umount` and `status`: starting the daemon that serves a store at a mount point
//! (the parent returns once the mount answers), stopping it cleanly, and listing what is
//! mounted where. The daemon records `cronusfs.mount` (pid, mount point) in the store's local
//! directory (the store directory, or this host's directory of a shared store).

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow, bail};
use cronusfs::fs::{FsCore, FsOptions};
use cronusfs::fuse::{self, MountOptions};
use cronusfs::meta::Saying;
use cronusfs::storage::Storage;
use cronusfs::storage::location::{self, Location};

use super::{catalog_of, parse_location};
use crate::cli::MountArgs;

/// How long `mount` waits for the daemon to have the mount ready, and `umount` for it to exit.
const WAIT: Duration = Duration::from_secs(60);
/// The file in the store that names the serving daemon.
const MOUNT_FILE: &str = "cronusfs.mount";

/// Runs `mount`.
pub fn mount(args: MountArgs) -> Result<()> {
    let (Some(store_arg), Some(mountpoint_arg)) = (&args.store, &args.mountpoint) else {
        bail!("give STORE and MOUNTPOINT");
    };
    let store = match parse_location(store_arg)? {
        Location::Dir(dir) => {
            // A directory with no store gets one (SPEC §2); the daemon finds it made.
            if !args.daemon_child && !location::exists(&Location::Dir(dir.clone()))? {
                let holds_files = std::fs::read_dir(&dir).is_ok_and(|mut d| d.next().is_some());
                if holds_files {
                    bail!(
                        "{} holds no store and is not empty: name an empty or new directory, or run `cronusfs init` on one",
                        dir.display()
                    );
                }
                location::create(&Location::Dir(dir.clone()), None)
                    .with_context(|| format!("cannot create a store in {}", dir.display()))?;
                println!("created store {}", dir.display());
            }
            Location::Dir(
                dir.canonicalize()
                    .with_context(|| format!("no store at {}", dir.display()))?,
            )
        }
        shared => shared,
    };

    let mountpoint = resolve_without_entering(mountpoint_arg)
        .with_context(|| format!("no mount point {}", mountpoint_arg.display()))?;
    if let Some(m) = mounts()?.into_iter().find(|m| m.mountpoint == mountpoint) {
        if daemon_pid(&m.source, &m.mountpoint).is_some_and(is_alive) {
            bail!(
                "{} is already a mount point (of {})",
                mountpoint.display(),
                m.source
            );
        }
        bail!(
            "{} is a mount of {} whose daemon is gone: run `fusermount3 -u {}` first",
            mountpoint.display(),
            m.source,
            mountpoint.display()
        );
    }
    if !mountpoint.is_dir() {
        bail!("{} is not a directory", mountpoint.display());
    }
    let local = daemon_dir(&store, &mountpoint);
    if store.is_shared() {
        std::fs::create_dir_all(&local)
            .with_context(|| format!("cannot make {}", local.display()))?;
    }
    if args.foreground || args.daemon_child {
        serve(&args, (&store, &local), &mountpoint)
    } else {
        start_daemon(&args, &store, &mountpoint)
    }
}

/// Returns the absolute, canonical form of `path` without touching `path` itself, only its
/// parent: `path` may be a mount whose daemon died, where any access fails (ENOTCONN).
fn resolve_without_entering(path: &Path) -> std::io::Result<PathBuf> {
    let absolute = std::env::current_dir()?.join(path);
    match (absolute.parent(), absolute.file_name()) {
        (Some(parent), Some(name)) => Ok(parent.canonicalize()?.join(name)),
        _ => absolute.canonicalize(),
    }
}

/// Starts `cronusfs mount --daemon-child` in its own session and waits for its "ready" line.
fn start_daemon(args: &MountArgs, store: &Location, mountpoint: &Path) -> Result<()> {
    let mut cmd = Command::new(std::env::current_exe()?);
    let store_arg = match store {
        Location::Dir(dir) => dir.as_path(),
        // As given: the shown form hides a password the URL may carry.
        Location::Postgres(_) => args.store.as_deref().unwrap_or(Path::new("")),
    };
    cmd.arg("mount")
        .arg(store_arg)
        .arg(mountpoint)
        .arg("--daemon-child");
    cmd.args(["--threads", &args.threads.to_string()]);
    cmd.args(super::logging::child_args());
    cmd.args(["--cache-size", &args.cache_size.to_string()]);
    cmd.args(["--max-inodes", &args.max_inodes.to_string()]);
    if args.read_only {
        cmd.arg("--read-only");
    }
    if args.allow_other {
        cmd.arg("--allow-other");
    }
    if let Some(addr) = args.metrics {
        cmd.arg("--metrics").arg(addr.to_string());
    }
    let log = match &args.log_file {
        Some(f) => {
            cmd.arg("--log-file").arg(f);
            Stdio::from(open_log(f)?)
        }
        None => Stdio::null(),
    };
    std::os::unix::process::CommandExt::process_group(&mut cmd, 0);
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(log)
        .spawn()?;
    let stdout = child.stdout.take().expect("piped");
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut line = String::new();
        let _ = BufReader::new(stdout).read_line(&mut line);
        let _ = tx.send(line);
    });
    match rx.recv_timeout(WAIT) {
        Ok(line) if line.starts_with("ready") => {
            println!(
                "mounted {store} at {} (daemon pid {})",
                mountpoint.display(),
                child.id()
            );
            Ok(())
        }
        Ok(line) => {
            let status = child.wait()?;
            match line.strip_prefix("error: ") {
                Some(msg) => bail!("{}", msg.trim_end()),
                None => bail!("the daemon exited ({status}) before the mount was ready"),
            }
        }
        Err(_) => {
            let _ = child.kill();
            bail!("the mount was not ready within {} s", WAIT.as_secs())
        }
    }
}

fn open_log(path: &Path) -> Result<std::fs::File> {
    std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .with_context(|| format!("cannot open log file {}", path.display()))
}

/// Serves the mount from this process until it is unmounted.
fn serve(args: &MountArgs, (store, local): (&Location, &Path), mountpoint: &Path) -> Result<()> {
    if let (Some(f), false) = (&args.log_file, args.daemon_child) {
        let file = open_log(f)?;
        redirect_stderr(&file);
    }
    super::logging::set_mount(mountpoint);
    // What the mount commits names the mount, not the daemon's own command line.
    cronusfs::storage::set_process_actor(cronusfs::storage::Actor {
        what: format!("mount {}", mountpoint.display()),
        ..cronusfs::storage::Actor::this_process()
    });
    // Before the store opens: its engines' meters register with the recorder.
    let opened =
        super::scrape::install().and_then(|metrics| Ok((metrics, open_core(args, store, local)?)));
    let (metrics, core) = match opened {
        Ok(opened) => opened,
        Err(e) => {
            if args.daemon_child {
                println!("error: {e:#}");
            }
            return Err(e);
        }
    };
    // Asked of the opened store, not of its URL: a new backend answers for itself.
    let shared = core.metastore().storage().is_shared();
    let options = mount_options(args, store, shared);
    let core = std::sync::Arc::new(core);
    // Commands on a store one process owns run in its daemon (which holds the store);
    // commands on a shared store open it themselves, so its daemons have no socket.
    // The metrics endpoint first: an address in use fails the mount before anything is made.
    let served = super::scrape::start(metrics.clone(), args.metrics, core.clone());
    let listened = served.and_then(|()| match shared {
        false => super::remote::listen(local, core.clone()),
        true => Ok(()),
    });
    if let Err(e) = listened {
        if args.daemon_child {
            println!("error: {e:#}");
        }
        return Err(e);
    }
    let record = local.join(MOUNT_FILE);
    let ready = || {
        let _ = std::fs::write(
            &record,
            format!("{}\n{}\n", std::process::id(), mountpoint.display()),
        );
        widen_read_ahead(mountpoint);
        tracing::info!(%store, "serving");
        if args.daemon_child {
            let mut out = std::io::stdout().lock();
            let _ = writeln!(out, "ready");
            let _ = out.flush();
        }
    };
    let weak = std::sync::Arc::downgrade(&core);
    let health = weak.clone();
    core.show_health_from(Box::new(move || super::health::text(&health)));
    let counters = metrics.clone();
    let said = Box::new(move || Saying {
        health: Some(super::health::line(&weak)),
        stats: Some(super::stats::counters_line(&counters.render())),
    });
    let heartbeat =
        match cronusfs::meta::heartbeat::Heartbeat::start(core.clone(), mountpoint, said) {
            Ok(h) => h,
            Err(e) => {
                super::remote::unlisten(local);
                if args.daemon_child {
                    println!("error: cannot record the session: {e:#}");
                }
                return Err(e.into());
            }
        };
    let result = fuse::serve(core, mountpoint, &options, ready);
    heartbeat.stop();
    super::remote::unlisten(local);
    let _ = std::fs::remove_file(&record);
    match result {
        Ok(()) => {
            tracing::info!("unmounted");
            Ok(())
        }
        Err(e) => {
            if args.daemon_child {
                println!("error: cannot mount {}: {e}", mountpoint.display());
            }
            Err(anyhow!("cannot mount {}: {e}", mountpoint.display()))
        }
    }
}

/// Returns how the daemon mounts `store` (`shared` by other processes, or not) as `args` ask.
fn mount_options(args: &MountArgs, store: &Location, shared: bool) -> MountOptions {
    MountOptions {
        source: store.to_string(),
        read_only: args.read_only,
        allow_other: args.allow_other,
        threads: args.threads,
        watch_changes: shared.then(super::session::cache_ttl),
        attr_ttl: super::session::attr_ttl(),
        // A shared store's content is on other servers: its I/O never holds the request
        // threads (a store directory's is local, and served where it is asked).
        content_threads: if shared { args.threads.max(1) } else { 0 },
    }
}

/// Keeps the daemon's heap from growing with the traffic while chunk-sized buffers are reused:
/// a few malloc arenas serve all threads; buffers up to a few chunks (1 MiB reads and writes,
/// RocksDB's blob reads) come from them, so reading does not fault in and zero fresh pages for
/// every chunk; larger ones always come from and go back to the OS, and free memory above
/// the trim threshold is returned; a thread returns the arenas' free pages once a second.
fn bound_heap() {
    // SAFETY: mallopt only sets allocator parameters; called before the serving threads start.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, 4 << 20);
        libc::mallopt(libc::M_TRIM_THRESHOLD, 16 << 20);
        libc::mallopt(libc::M_ARENA_MAX, 2);
    }
    // Free memory inside the arenas (chunk buffers between bursts of reads and writes) goes
    // back to the OS once a second rather than waiting for the top of a heap to free up.
    let trimmer = std::thread::Builder::new().name("heap-trim".into());
    let _ = trimmer.spawn(|| {
        loop {
            std::thread::sleep(std::time::Duration::from_secs(1));
            // SAFETY: malloc_trim only releases free pages of the allocator's own arenas.
            unsafe { libc::malloc_trim(0) };
        }
    });
}

fn open_core(args: &MountArgs, store: &Location, local: &Path) -> Result<FsCore<Box<dyn Storage>>> {
    bound_heap();
    let catalog = catalog_of(location::open(store)?);
    let options = FsOptions {
        read_only: args.read_only,
        // SAFETY: getuid and getgid cannot fail and touch no memory.
        uid: unsafe { libc::getuid() },
        // SAFETY: as above.
        gid: unsafe { libc::getgid() },
        staging_dir: local.join("staging"),
        cache_dir: Some(local.join(cronusfs::fs::CACHE_DIR)),
        cache_limit: args.cache_size,
        max_inodes: args.max_inodes,
        listing_page: super::session::listing_page(),
    };
    Ok(FsCore::new(catalog, options)?)
}

/// The kernel's read-ahead for the mount, in KiB: FUSE starts at 128 KiB; sixteen 1 MiB chunks
/// ahead keeps the request threads busy fetching chunks in parallel (4 MiB gave ~10% less).
const READ_AHEAD_KIB: u32 = 16384;

/// Raises the read-ahead of the mount's backing device (root only; best effort). The device
/// is found in mountinfo, never by touching the mount, which is not served yet.
fn widen_read_ahead(mountpoint: &Path) {
    let Ok(info) = std::fs::read_to_string("/proc/self/mountinfo") else {
        return;
    };
    let want = mountpoint.display().to_string().replace(' ', "\\040");
    let device = info.lines().rev().find_map(|l| {
        let fields: Vec<&str> = l.split(' ').collect();
        (fields.get(4) == Some(&want.as_str())).then(|| fields.get(2).map(|d| d.to_string()))?
    });
    if let Some(device) = device {
        let knob = format!("/sys/class/bdi/{device}/read_ahead_kb");
        if std::fs::write(&knob, READ_AHEAD_KIB.to_string()).is_err() {
            tracing::warn!(knob = %knob, "could not raise the read-ahead: large reads stay slower");
        }
    }
}

/// Points stderr (where the log goes) at `file`.
fn redirect_stderr(file: &std::fs::File) {
    use std::os::fd::AsRawFd;
    // SAFETY: dup2 on two valid descriptors; stderr is replaced atomically.
    unsafe {
        libc::dup2(file.as_raw_fd(), libc::STDERR_FILENO);
    }
}

/// One cronusfs mount of this machine.
struct MountEntry {
    source: String,
    mountpoint: PathBuf,
    read_only: bool,
}

/// Returns the cronusfs mounts listed in /proc/self/mountinfo.
fn mounts() -> Result<Vec<MountEntry>> {
    let text = std::fs::read_to_string("/proc/self/mountinfo")?;
    Ok(text
        .lines()
        .filter_map(|line| {
            let (left, right) = line.split_once(" - ")?;
            let mut r = right.split(' ');
            let (fstype, source) = (r.next()?, r.next()?);
            let fields: Vec<&str> = left.split(' ').collect();
            let mountpoint = PathBuf::from(unescape(fields.get(4)?));
            // Mounted by root, the kernel shows plain "fuse"; the daemon's record tells ours
            // apart, or the source: a store directory (its lock file) or a shared store's URL
            // (the record is under the daemon's XDG_CACHE_HOME, which may not be ours).
            // "cronusfs" stands for a source fusermount3 could not take (see fuse::serve).
            let ours = fstype == "fuse.cronusfs"
                || (fstype == "fuse"
                    && (source == "cronusfs"
                        || record_of(&unescape(source), &mountpoint).is_some_and(|r| r.exists())
                        || is_store_source(&unescape(source))));
            if !ours {
                return None;
            }
            Some(MountEntry {
                source: unescape(source),
                mountpoint,
                read_only: fields.get(5)?.split(',').any(|o| o == "ro"),
            })
        })
        .collect())
}

/// Returns whether a mount's source names a cronusfs store: a directory holding a store's
/// lock file, or a PostgreSQL URL.
fn is_store_source(source: &str) -> bool {
    source.starts_with("postgres://")
        || source.starts_with("postgresql://")
        || Path::new(source)
            .join(cronusfs::storage::rocks::LOCK_FILE)
            .is_file()
}

/// Undoes mountinfo's octal escapes (`\040` for a space, …).
fn unescape(s: &str) -> String {
    let mut out = Vec::new();
    let b = s.as_bytes();
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\'
            && let Some(Ok(v)) = s.get(i + 1..i + 4).map(|o| u8::from_str_radix(o, 8))
        {
            out.push(v);
            i += 4;
            continue;
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Returns the directory of the daemon serving `store` at `mountpoint`: the store directory,
/// or for a shared store one per mount point in this host's directory of the store (several
/// daemons of one shared store may run on one host).
fn daemon_dir(store: &Location, mountpoint: &Path) -> PathBuf {
    store.daemon_dir(&super::cache_root(), mountpoint)
}

/// Returns where the daemon serving the store a mount shows as `source` at `mountpoint`
/// keeps its record.
fn record_of(source: &str, mountpoint: &Path) -> Option<PathBuf> {
    let store = parse_location(Path::new(source)).ok()?;
    Some(daemon_dir(&store, mountpoint).join(MOUNT_FILE))
}

/// Returns the pid recorded by the daemon serving the mount of `source` at `mountpoint`.
fn daemon_pid(source: &str, mountpoint: &Path) -> Option<u32> {
    let text = std::fs::read_to_string(record_of(source, mountpoint)?).ok()?;
    text.lines().next()?.parse().ok()
}

/// Runs `umount`.
pub fn umount(mountpoint: &Path) -> Result<()> {
    let target = resolve_without_entering(mountpoint)?;
    let entry = mounts()?
        .into_iter()
        .find(|m| m.mountpoint == target)
        .ok_or_else(|| anyhow!("{} is not a cronusfs mount", mountpoint.display()))?;
    let pid = daemon_pid(&entry.source, &entry.mountpoint);
    let out = Command::new("fusermount3")
        .arg("-u")
        .arg(&target)
        .output()
        .context("cannot run fusermount3 (install the fuse3 package)")?;
    if !out.status.success() {
        let why = String::from_utf8_lossy(&out.stderr);
        let hint = match why.contains("busy") {
            // A shell inside it, an open file, a reader of .cronusfs/accesslog…
            true => {
                " (a process uses it: `fuser -vm MOUNTPOINT` names them; SIGTERM to the \
                      daemon unmounts it once they let go)"
            }
            false => "",
        };
        bail!("cannot unmount {}: {}{hint}", target.display(), why.trim());
    }
    let deadline = Instant::now() + WAIT;
    if let Some(pid) = pid {
        while is_alive(pid) {
            if Instant::now() > deadline {
                bail!(
                    "unmounted, but daemon {pid} has not exited after {} s",
                    WAIT.as_secs()
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
    // The store is free for the next `mount` only once nothing holds its lock.
    let lock = Path::new(&entry.source).join(cronusfs::storage::rocks::LOCK_FILE);
    if let Ok(file) = std::fs::File::open(&lock) {
        while file.try_lock().is_err() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
        }
    }
    println!("unmounted {}", target.display());
    Ok(())
}

/// Returns whether process `pid` runs (exists and is not a zombie).
fn is_alive(pid: u32) -> bool {
    Path::new(&format!("/proc/{pid}")).exists() && !is_zombie(pid)
}

fn is_zombie(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|s| s.rsplit_once(") ").map(|(_, r)| r.starts_with('Z')))
        .unwrap_or(true)
}

/// Runs `status`.
pub fn status() -> Result<()> {
    let mounts = mounts()?;
    if mounts.is_empty() {
        println!("no cronusfs mounts");
    }
    // Every live mount's health is asked for at once: those that do not answer cost 2 s in all.
    let asked: Vec<_> = (mounts.iter())
        .map(|m| {
            let recorded = daemon_pid(&m.source, &m.mountpoint);
            let alive = recorded.is_some_and(is_alive);
            (
                recorded,
                alive.then(|| super::health::reading(&m.mountpoint)),
            )
        })
        .collect();
    let deadline = super::health::deadline();
    for (m, (recorded, health)) in mounts.iter().zip(asked) {
        let pid = match (recorded, &health) {
            (Some(p), Some(_)) => p.to_string(),
            (Some(p), None) => format!("{p} (gone: cronusfs umount to clean up)"),
            (None, _) => "-".to_string(),
        };
        let mode = if m.read_only {
            "read-only"
        } else {
            "read-write"
        };
        println!(
            "{}\t{}\t{mode}\tpid {pid}",
            m.source,
            m.mountpoint.display()
        );
        if let Some(health) = health {
            for line in health.answer(deadline).lines() {
                println!("  {line}");
            }
        }
    }
    Ok(())
}
