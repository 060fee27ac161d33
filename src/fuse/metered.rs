//! What the adapter records of each request: its count and time by operation, a failure's
//! errno (metrics), the operation and inode a failed request's log line names, and, while
//! someone reads `.cronusfs/accesslog`, the request itself (caller, name, result, bytes,
//! time). A request is entered on the thread that answers it; the errno of its reply and the
//! bytes it moved find it there.

use std::cell::Cell;
use std::ffi::OsStr;
use std::sync::{Arc, OnceLock};
use std::time::{Instant, SystemTime};

use metrics::{Counter, Histogram};

use crate::fs::{Access, AccessLog, Ino, process_name};
use crate::meters;

macro_rules! ops {
    ($($op:ident = $name:literal,)*) => {
        /// A kind of FUSE request.
        #[derive(Clone, Copy, Debug, PartialEq, Eq)]
        pub(super) enum Op { $($op,)* }

        impl Op {
            /// Every operation, in declaration order.
            const ALL: &[Op] = &[$(Op::$op,)*];

            /// The operation's name, as the `op` label shows it.
            pub(super) fn name(self) -> &'static str {
                match self { $(Op::$op => $name,)* }
            }
        }
    };
}

ops! {
    Lookup = "lookup",
    Getattr = "getattr",
    Readlink = "readlink",
    Setattr = "setattr",
    Mkdir = "mkdir",
    Symlink = "symlink",
    Link = "link",
    Mknod = "mknod",
    Unlink = "unlink",
    Rmdir = "rmdir",
    Rename = "rename",
    Open = "open",
    Create = "create",
    Read = "read",
    Write = "write",
    Flush = "flush",
    Release = "release",
    Fsync = "fsync",
    Opendir = "opendir",
    Readdir = "readdir",
    Readdirplus = "readdirplus",
    Releasedir = "releasedir",
    Statfs = "statfs",
    Setxattr = "setxattr",
    Getxattr = "getxattr",
    Listxattr = "listxattr",
    Removexattr = "removexattr",
    Access = "access",
}

/// The handles of every operation, registered at the first request (the recorder is installed
/// before the mount serves any).
struct Meters {
    per_op: Vec<(Counter, Histogram)>,
    read_bytes: Counter,
    written_bytes: Counter,
}

fn meters() -> &'static Meters {
    static METERS: OnceLock<Meters> = OnceLock::new();
    METERS.get_or_init(|| Meters {
        per_op: Op::ALL
            .iter()
            .map(|op| {
                let requests = metrics::counter!(meters::FUSE_REQUESTS, "op" => op.name());
                let seconds = metrics::histogram!(meters::FUSE_SECONDS, "op" => op.name());
                (requests, seconds)
            })
            .collect(),
        read_bytes: metrics::counter!(meters::FUSE_READ_BYTES),
        written_bytes: metrics::counter!(meters::FUSE_WRITTEN_BYTES),
    })
}

thread_local! {
    /// The request this thread is answering: its operation and inode.
    static ANSWERING: Cell<Option<(Op, u64)>> = const { Cell::new(None) };
    /// Whether the request this thread answers counts in the metrics (not one about
    /// `.cronusfs/`, which shows them).
    static METERED: Cell<bool> = const { Cell::new(true) };
    /// The errno the request this thread answers failed with (0: none yet).
    static FAILED: Cell<i32> = const { Cell::new(0) };
    /// The bytes the request this thread answers read or wrote.
    static MOVED: Cell<Option<u64>> = const { Cell::new(None) };
}

/// A request that arrived and is not answered yet.
#[must_use]
pub(super) struct Arrived {
    op: Op,
    ino: u64,
    at: Instant,
    /// What the access log will show of it, while someone reads the log.
    logged: Option<Box<Logged>>,
}

/// What the access log shows of a request besides its operation, inode and time.
struct Logged {
    log: Arc<AccessLog>,
    arrived: SystemTime,
    uid: u32,
    pid: u32,
    /// The caller's name, read now: once answered, it may be gone.
    process: Arc<str>,
    name: Option<Box<str>>,
}

/// A request being answered on this thread; recorded when dropped.
pub(super) struct Answering(Arrived);

/// Notes the arrival of request `op` about inode `ino` (its parent for a name's request) from
/// the caller `(uid, pid)`; `log` records it while someone reads it.
pub(super) fn arrived(op: Op, ino: u64, (uid, pid): (u32, u32), log: &Arc<AccessLog>) -> Arrived {
    let logged = log.is_read().then(|| {
        Box::new(Logged {
            log: log.clone(),
            arrived: SystemTime::now(),
            uid,
            pid,
            process: process_name(pid),
            name: None,
        })
    });
    Arrived {
        op,
        ino,
        at: Instant::now(),
        logged,
    }
}

impl Arrived {
    /// Notes the name the request is about (an entry of its directory), for the access log.
    pub(super) fn named(mut self, name: &OsStr) -> Self {
        if let Some(logged) = &mut self.logged {
            logged.name = Some(name.to_string_lossy().into());
        }
        self
    }

    /// Says that this thread answers the request from now on.
    pub(super) fn answer_here(self) -> Answering {
        ANSWERING.set(Some((self.op, self.ino)));
        METERED.set(!Ino(self.ino).is_control());
        FAILED.set(0);
        MOVED.set(None);
        Answering(self)
    }
}

impl Drop for Answering {
    fn drop(&mut self) {
        ANSWERING.set(None);
        if !METERED.replace(true) {
            return;
        }
        let took = self.0.at.elapsed();
        let (requests, seconds) = &meters().per_op[self.0.op as usize];
        requests.increment(1);
        seconds.record(took.as_secs_f64());
        if let Some(logged) = self.0.logged.take() {
            logged.log.record(Access {
                at: logged.arrived,
                uid: logged.uid,
                pid: logged.pid,
                op: self.0.op.name(),
                ino: Ino(self.0.ino),
                name: logged.name,
                errno: FAILED.get(),
                bytes: MOVED.get(),
                took,
                process: Some(logged.process),
            });
        }
    }
}

/// Says that the request this thread answers is about `.cronusfs/` (a lookup of its name):
/// it is not counted.
pub(super) fn not_metered() {
    METERED.set(false);
}

/// Returns the operation and inode of the request this thread answers, if any.
pub(super) fn answered() -> Option<(&'static str, u64)> {
    ANSWERING.get().map(|(op, ino)| (op.name(), ino))
}

/// Counts a failure with errno `n` of the request this thread answers.
pub(super) fn failed(n: i32) {
    FAILED.set(n);
    if !METERED.get() {
        return;
    }
    let op = ANSWERING.get().map_or("none", |(op, _)| op.name());
    metrics::counter!(meters::FUSE_ERRORS, "op" => op, "errno" => meters::errno_name(n))
        .increment(1);
}

/// Counts `n` bytes served to a read.
pub(super) fn read_bytes(n: usize) {
    MOVED.set(Some(n as u64));
    if METERED.get() {
        meters().read_bytes.increment(n as u64);
    }
}

/// Counts `n` bytes written.
pub(super) fn written_bytes(n: usize) {
    MOVED.set(Some(n as u64));
    meters().written_bytes.increment(n as u64);
}

/// Counts an open whose reads the kernel serves (`passthrough`) or the daemon does.
pub(super) fn opened(passthrough: bool) {
    let mode = if passthrough { "passthrough" } else { "daemon" };
    metrics::counter!(meters::FUSE_OPENS, "mode" => mode).increment(1);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn nobody_reads() -> Arc<AccessLog> {
        Arc::new(AccessLog::default())
    }

    #[test]
    fn a_request_is_known_on_its_thread_until_answered() {
        assert_eq!(answered(), None);
        let arrived = arrived(Op::Release, 7, (0, 0), &nobody_reads());
        assert_eq!(answered(), None, "arrival alone does not answer here");
        let answering = arrived.answer_here();
        assert_eq!(answered(), Some(("release", 7)));
        drop(answering);
        assert_eq!(answered(), None);
        assert_eq!(Op::ALL[Op::Access as usize], Op::Access);
    }

    #[test]
    fn requests_about_the_control_files_are_not_metered() {
        let log = nobody_reads();
        let answering = arrived(Op::Read, 10, (0, 0), &log).answer_here();
        assert!(!METERED.get());
        drop(answering);
        assert!(METERED.get(), "the next request counts again");
        let answering = arrived(Op::Read, 16, (0, 0), &log).answer_here();
        assert!(METERED.get());
        drop(answering);
        assert!(Ino(9).is_control() && Ino(10).is_control() && Ino(11).is_control());
        assert!(!Ino(1).is_control() && !Ino(16).is_control());
    }
}
