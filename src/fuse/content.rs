//! Content I/O of the FUSE adapter: reads, writes, flushes, fsyncs and releases of file
//! handles, and the pool of threads that runs them off the request threads for a store whose
//! content is on another server. A request thread hands such a request (with its reply) to the
//! pool and goes back to the kernel at once, so content calls stuck on a slow or silent
//! server never hold every request thread, and lookups, `getattr` and listings (which need no
//! content) are always served.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::{Receiver, Sender};
use std::sync::{Arc, Mutex};

use fuser::{BackingId, Errno, ReplyData, ReplyEmpty, ReplyWrite};

use super::io_modes::IoModes;
use super::metered;
use super::{errno, refused, reply_empty};
use crate::fs::{Fh, FsCore, Ino};
use crate::storage::Storage;

/// A request taken off a request thread, with everything it needs and its reply.
type Job = Box<dyn FnOnce() + Send + 'static>;

/// Where content requests go: a queue served by the pool's threads.
pub(super) struct ContentPool {
    queue: Sender<Job>,
}

/// The pool's threads; [`Workers::join`] waits until they have run every queued request.
pub(super) struct Workers(Vec<std::thread::JoinHandle<()>>);

/// Starts a pool of `threads` threads. The pool stops once its [`ContentPool`] is dropped
/// and its queue is empty.
pub(super) fn start(threads: usize) -> std::io::Result<(ContentPool, Workers)> {
    let (queue, jobs) = std::sync::mpsc::channel::<Job>();
    let jobs = Arc::new(Mutex::new(jobs));
    let mut workers = Vec::with_capacity(threads);
    for i in 0..threads.max(1) {
        let jobs = jobs.clone();
        let worker = std::thread::Builder::new()
            .name(format!("content-{i}"))
            .spawn(move || work(&jobs))?;
        workers.push(worker);
    }
    Ok((ContentPool { queue }, Workers(workers)))
}

/// Runs queued requests until the queue is closed and empty.
fn work(jobs: &Mutex<Receiver<Job>>) {
    loop {
        // The lock is held only while waiting for the next request, never while running it.
        let next = jobs.lock().unwrap_or_else(|e| e.into_inner()).recv();
        let Ok(job) = next else { return };
        // A request that panics loses its reply (fuser answers EIO when a reply is dropped),
        // not the thread.
        if std::panic::catch_unwind(std::panic::AssertUnwindSafe(job)).is_err() {
            tracing::error!("a content request panicked; it was answered EIO (a bug: report it)");
        }
    }
}

impl ContentPool {
    /// Queues `job` (it runs here if the pool is gone, which happens only while stopping).
    pub(super) fn run(&self, job: impl FnOnce() + Send + 'static) {
        if let Err(std::sync::mpsc::SendError(job)) = self.queue.send(Box::new(job)) {
            job();
        }
    }
}

impl Workers {
    /// Waits for the pool's threads: every request queued before the pool was dropped has
    /// been run and answered (the last releases committed).
    pub(super) fn join(self) {
        for worker in self.0 {
            let _ = worker.join();
        }
    }
}

/// Answers a read of handle `fh`.
pub(super) fn read<S: Storage>(
    core: &FsCore<S>,
    fh: Fh,
    (offset, size): (u64, u32),
    reply: ReplyData,
) {
    match core.read(fh, offset, size) {
        Ok(data) => {
            metered::read_bytes(data.len());
            reply.data(&data)
        }
        Err(e) => reply.error(errno(&e)),
    }
}

/// The most reads of `.cronusfs/accesslog` waiting at once, each on a thread of its own;
/// past them a read answers at once with what its handle has (`#` when nothing).
const MOST_LOG_WAITS: usize = 16;
static LOG_WAITS: AtomicUsize = AtomicUsize::new(0);

/// Answers a read of access log handle `fh` from a thread of its own: the read waits up to a
/// second for the next request, and must hold no request thread meanwhile.
pub(super) fn read_access_log<S: Storage + 'static>(
    core: &Arc<FsCore<S>>,
    fh: Fh,
    size: u32,
    reply: ReplyData,
) {
    let answer = |lines: Option<Vec<u8>>, reply: ReplyData| match lines {
        Some(lines) => reply.data(&lines),
        None => reply.error(Errno::EBADF),
    };
    if LOG_WAITS.fetch_add(1, Ordering::SeqCst) >= MOST_LOG_WAITS {
        LOG_WAITS.fetch_sub(1, Ordering::SeqCst);
        return answer(core.read_access_log(fh, size, false), reply);
    }
    let core = core.clone();
    let waiting = std::thread::Builder::new()
        .name("accesslog".into())
        .spawn(move || {
            answer(core.read_access_log(fh, size, true), reply);
            LOG_WAITS.fetch_sub(1, Ordering::SeqCst);
        });
    if let Err(e) = waiting {
        // The reply went with the closure: fuser answers EIO for it.
        LOG_WAITS.fetch_sub(1, Ordering::SeqCst);
        tracing::warn!(error = %e, "cannot start a thread to read the access log");
    }
}

/// Answers a write to handle `fh` of inode `ino`: at `offset`, or, for a descriptor opened
/// with `O_APPEND` (`append`), at the end of the file when the daemon runs it; the kernel then
/// forgets the size it kept if the bytes landed elsewhere than it thought.
pub(super) fn write<S: Storage>(
    core: &FsCore<S>,
    (ino, fh): (u64, Fh),
    (offset, append): (u64, bool),
    data: &[u8],
    reply: ReplyWrite,
) {
    let written = match append {
        true => core.append(fh, data).inspect(|(_, at)| {
            if *at != offset {
                core.forget_attributes(Ino(ino));
            }
        }),
        false => core.write(fh, offset, data).map(|n| (n, offset)),
    };
    match written {
        Ok((n, _)) => {
            metered::written_bytes(n);
            reply.written(n as u32)
        }
        Err(e) => reply.error(errno(&e)),
    }
}

/// Returns whether a shared writable mapping of handle `fh` wrote the cache file backing
/// its inode (the object's bytes are not there); that entry is then dropped.
fn spoiled_cache_entry<S: Storage>(core: &FsCore<S>, modes: &IoModes<BackingId>, fh: Fh) -> bool {
    let spoiled = modes.mapped_writes(fh);
    if let Some(content) = spoiled {
        core.forget_cached(content);
    }
    spoiled.is_some()
}

/// Answers a flush (a `close`) of handle `fh`: commits what it wrote.
pub(super) fn flush<S: Storage>(
    core: &FsCore<S>,
    modes: &IoModes<BackingId>,
    fh: Fh,
    reply: ReplyEmpty,
) {
    let flushed = core.flush(fh);
    if spoiled_cache_entry(core, modes, fh) {
        return reply.error(refused(Errno::EIO));
    }
    if let Err(e) = &flushed {
        // Many programs never look at what `close` returns (a shell's `>`): say it here too.
        tracing::error!(
            op = "flush",
            fh = fh.0,
            errno = e.errno(),
            error = %e,
            "the commit at a close failed: the writes since the last commit are not in the store"
        );
    }
    reply_empty(flushed, reply);
}

/// Answers an fsync of handle `fh`.
pub(super) fn fsync<S: Storage>(core: &FsCore<S>, fh: Fh, reply: ReplyEmpty) {
    reply_empty(core.fsync(fh), reply);
}

/// Answers the release of handle `fh` of inode `ino` (its last close): commits what it has
/// not committed yet, and says so in the log when that fails, since nobody waits for it.
pub(super) fn release<S: Storage>(
    core: &FsCore<S>,
    modes: &IoModes<BackingId>,
    (ino, fh): (u64, Fh),
    reply: ReplyEmpty,
) {
    let released = core.release(fh);
    if spoiled_cache_entry(core, modes, fh) {
        tracing::warn!(
            op = "release",
            ino,
            "a shared writable mapping wrote its reader's cached version, not the object: \
             not committed, and that cache entry dropped"
        );
    }
    modes.released(fh);
    if let Err(e) = &released {
        tracing::error!(
            op = "release",
            ino,
            errno = e.errno(),
            error = %e,
            "the commit at the last close failed: its writes are lost (nobody waits for this \
             commit, so no program was told)"
        );
    }
    reply_empty(released, reply);
}
