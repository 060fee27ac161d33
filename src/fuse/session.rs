//! The FUSE session of a mount: its options, mounting, the request threads (and the content
//! pool beside them), unmounting on a signal, and the thread that has the kernel forget what
//! other processes changed.

use std::ffi::OsStr;
use std::sync::Arc;
use std::time::Duration;

use fuser::INodeNo;

use super::replies::ATTR_TTL;
use super::{FuseFs, content};
use crate::fs::{FsCore, KernelInval};
use crate::storage::Storage;

/// How a store is mounted.
#[derive(Clone, Debug)]
pub struct MountOptions {
    /// What `mount` shows as the source (the store's path).
    pub source: String,
    /// Mount read-only.
    pub read_only: bool,
    /// Let other users in (`allow_other`), with the kernel checking permissions.
    pub allow_other: bool,
    /// Threads serving requests.
    pub threads: usize,
    /// For a store other processes change too (a shared store): listen for their commits and
    /// drop what the kernel and the core keep of what they changed, at least this often.
    pub watch_changes: Option<Duration>,
    /// How long the kernel may keep attributes and names (one value per process).
    pub attr_ttl: Duration,
    /// Threads of their own for content requests (read, write, flush, fsync, release), for a
    /// store whose content is on another server: the request threads never wait for it, so
    /// a silent content server cannot hold them all. 0: content requests run on the
    /// request threads.
    pub content_threads: usize,
}

/// Returns whether this process mounts as root: with mount(2) itself, not fusermount3.
#[allow(unsafe_code)] // geteuid(2) has no safe wrapper in std.
fn mounts_as_root() -> bool {
    // SAFETY: geteuid only reads this process's effective uid.
    unsafe { libc::geteuid() == 0 }
}

fn config(o: &MountOptions) -> fuser::Config {
    // The source is mount(2)'s own argument when root mounts, but fusermount3 (every other
    // user) splits options at commas: there a source with one (a multi-host PostgreSQL URL) is
    // shown as "cronusfs". Blanks are never shown (mountinfo's fields are split at them).
    let plain =
        !o.source.contains([' ', '\t', '\n']) && (mounts_as_root() || !o.source.contains(','));
    let source = if plain {
        o.source.clone()
    } else {
        "cronusfs".into()
    };
    let mut options = vec![
        fuser::MountOption::FSName(source),
        fuser::MountOption::Subtype("cronusfs".into()),
        fuser::MountOption::NoDev,
        fuser::MountOption::NoSuid,
        fuser::MountOption::DefaultPermissions,
        fuser::MountOption::NoAtime,
    ];
    options.push(if o.read_only {
        fuser::MountOption::RO
    } else {
        fuser::MountOption::RW
    });
    let mut config = fuser::Config::default();
    config.mount_options = options;
    config.acl = if o.allow_other {
        fuser::SessionACL::All
    } else {
        fuser::SessionACL::Owner
    };
    config.n_threads = Some(o.threads.max(1));
    config.clone_fd = true;
    config
}

/// Mounts `core` at `mountpoint`, calls `ready` once the kernel has the mount, and serves
/// requests until the mount goes away: `fusermount3 -u`, `cronusfs umount`, or SIGTERM,
/// SIGINT or SIGHUP to this process (which unmount it, lazily if it is busy). Returns after
/// the kernel's last request, with every handle released and committed.
pub fn serve<S: Storage + 'static>(
    core: Arc<FsCore<S>>,
    mountpoint: &std::path::Path,
    options: &MountOptions,
    ready: impl FnOnce(),
) -> std::io::Result<()> {
    let _ = ATTR_TTL.set(options.attr_ttl);
    let watched = options.watch_changes.map(|every| (core.clone(), every));
    let negatives = core.clone();
    let log = core.access_log().clone();
    if core.has_content_cache() {
        let filler = core.clone();
        std::thread::Builder::new()
            .name("cache-fill".into())
            .spawn(move || filler.fill_content_cache())?;
    }
    let mut fs = FuseFs::new(core);
    let workers = match options.content_threads {
        0 => None,
        n => {
            let (pool, workers) = content::start(n)?;
            fs.content = Some(pool);
            Some(workers)
        }
    };
    let mut session = fuser::Session::new(fs, mountpoint, &config(options))?;
    let mut unmounter = session.unmount_callable();
    let mut signals = signal_hook::iterator::Signals::new([
        signal_hook::consts::SIGTERM,
        signal_hook::consts::SIGINT,
        signal_hook::consts::SIGHUP,
    ])?;
    let handle = signals.handle();
    let target = mountpoint.to_path_buf();
    let watcher = std::thread::spawn(move || {
        if signals.forever().next().is_none() {
            return;
        }
        // Readers of the access log see its end, close it, and do not keep the mount.
        log.close();
        if unmounter.unmount().is_err() {
            // Busy: detach now, finish when the last user lets go.
            let _ = std::process::Command::new("fusermount3")
                .arg("-uz")
                .arg(&target)
                .status();
        }
    });
    forget_negatives(negatives, session.notifier())?;
    if let Some((core, every)) = watched {
        watch_changes(core, session.notifier(), every)?;
    }
    ready();
    // The session drops the filesystem, and with it the content pool's queue, when it ends:
    // the pool then runs what is queued (the last releases) and stops.
    let result = session.run();
    if let Some(workers) = workers {
        workers.join();
    }
    handle.close();
    let _ = watcher.join();
    result
}

/// Starts the thread that has the kernel forget missing names the store may have gained past
/// it, and attributes that changed with another node's (`FsCore::send_negative_invalidations`),
/// until the process ends.
fn forget_negatives<S: Storage + 'static>(
    core: Arc<FsCore<S>>,
    notifier: fuser::Notifier,
) -> std::io::Result<()> {
    std::thread::Builder::new()
        .name("negatives".into())
        .spawn(move || {
            loop {
                core.send_negative_invalidations(Duration::from_secs(3600), &mut |inval| {
                    // ENOENT: the kernel had already let go of it.
                    let sent = match &inval {
                        KernelInval::Entry(dir, name) => {
                            notifier.inval_entry(INodeNo(dir.0), OsStr::new(name))
                        }
                        KernelInval::Attributes(ino) => notifier.inval_inode(INodeNo(ino.0), 0, 0),
                    };
                    tracing::debug!(?inval, ?sent, "kernel invalidation");
                });
            }
        })?;
    Ok(())
}

/// Starts the thread that hears other processes' commits and has the kernel forget what they
/// changed (until the process ends).
fn watch_changes<S: Storage + 'static>(
    core: Arc<FsCore<S>>,
    notifier: fuser::Notifier,
    every: Duration,
) -> std::io::Result<()> {
    core.hear_changes_elsewhere();
    std::thread::Builder::new()
        .name("store-watch".into())
        .spawn(move || {
            loop {
                let invals = core.next_kernel_invalidations(every);
                crate::meters::count(crate::meters::KERNEL_INVALIDATIONS, invals.len() as u64);
                for inval in invals {
                    // ENOENT: the kernel had already let go of it.
                    let _ = match inval {
                        KernelInval::Attributes(ino) => notifier.inval_inode(INodeNo(ino.0), 0, 0),
                        KernelInval::Entry(dir, name) => {
                            notifier.inval_entry(INodeNo(dir.0), OsStr::new(&name))
                        }
                    };
                }
            }
        })?;
    Ok(())
}
