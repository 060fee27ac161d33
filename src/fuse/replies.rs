//! Translations between the filesystem core's types and `fuser`'s: attributes, file types,
//! errnos, open flags, the replies that carry a result or its errno, and how long the kernel
//! may keep what it is told.

use std::ffi::OsStr;
use std::time::Duration;

use fuser::{
    Errno, FileAttr, FileType, FopenFlags, Generation, INodeNo, OpenAccMode, OpenFlags, ReplyAttr,
    ReplyEmpty, ReplyEntry, ReplyXattr, Request, TimeOrNow,
};

use crate::fs::{self, Attr, Creator, FsCore, FsError, Ino, Kind, XattrReply};
use crate::storage::Storage;

use super::metered;

/// How long the kernel may trust attributes and names it was given. Changes made through
/// the mount update the kernel's copy at once; this bounds how long a change made another way
/// (the CLI talking to the daemon) can go unseen.
pub(super) static ATTR_TTL: std::sync::OnceLock<Duration> = std::sync::OnceLock::new();

/// How long the kernel may keep attributes and names it was given (the mount's option; 1 s
/// unless set).
pub(super) fn ttl() -> Duration {
    *ATTR_TTL.get_or_init(|| Duration::from_secs(1))
}
/// How long the kernel may keep names and attributes of a tree of the past.
const PAST_TTL: Duration = Duration::from_secs(3600);
/// Largest write request asked of the kernel.
pub(super) const MAX_WRITE: u32 = 1 << 20;

pub(super) fn file_attr(a: &Attr) -> FileAttr {
    FileAttr {
        ino: INodeNo(a.ino.0),
        size: a.size,
        blocks: a.size.div_ceil(512),
        atime: a.mtime,
        mtime: a.mtime,
        ctime: a.ctime,
        crtime: a.crtime,
        kind: kind(a.kind),
        perm: a.perm,
        nlink: a.nlink,
        uid: a.uid,
        gid: a.gid,
        rdev: 0,
        blksize: MAX_WRITE,
        flags: 0,
    }
}

/// The attributes of a negative entry: inode 0, the rest unread by the kernel.
pub(super) fn negative_attr() -> FileAttr {
    let epoch = std::time::UNIX_EPOCH;
    FileAttr {
        ino: INodeNo(0),
        size: 0,
        blocks: 0,
        atime: epoch,
        mtime: epoch,
        ctime: epoch,
        crtime: epoch,
        kind: FileType::RegularFile,
        perm: 0,
        nlink: 0,
        uid: 0,
        gid: 0,
        rdev: 0,
        blksize: 0,
        flags: 0,
    }
}

/// The errno answering `e`, counted and logged with the request this thread answers: a fault
/// of the daemon or its store (EIO, ENOSPC) at WARN, an answer a program expects (ENOENT,
/// EEXIST, …) at DEBUG.
pub(super) fn errno(e: &FsError) -> Errno {
    let n = e.errno();
    let (op, ino) = metered::answered().unzip();
    match n {
        libc::EIO | libc::ENOSPC => {
            tracing::warn!(op, ino, errno = n, error = %e, "a request failed")
        }
        _ => tracing::debug!(op, ino, errno = n, error = %e, "a request failed"),
    }
    refused(Errno::from_i32(n))
}

/// Returns `e`, counted as the failure of the request this thread answers.
pub(super) fn refused(e: Errno) -> Errno {
    metered::failed(e.code());
    e
}

/// Returns a name the core can take: UTF-8 (other names are EINVAL).
pub(super) fn utf8(name: &OsStr) -> Result<&str, Errno> {
    name.to_str().ok_or(Errno::EINVAL)
}

pub(super) fn time_of(t: TimeOrNow) -> std::time::SystemTime {
    match t {
        TimeOrNow::SpecificTime(t) => t,
        TimeOrNow::Now => std::time::SystemTime::now(),
    }
}

pub(super) fn open_flags(flags: OpenFlags) -> fs::OpenFlags {
    fs::OpenFlags {
        write: !matches!(flags.acc_mode(), OpenAccMode::O_RDONLY),
        truncate: flags.0 & libc::O_TRUNC != 0,
    }
}

pub(super) fn fopen(opened: &fs::Opened) -> FopenFlags {
    let mut flags = FopenFlags::empty();
    if opened.keep_cache {
        flags |= FopenFlags::FOPEN_KEEP_CACHE;
    }
    if opened.direct_io {
        flags |= FopenFlags::FOPEN_DIRECT_IO;
    }
    if opened.stream {
        flags |= FopenFlags::FOPEN_STREAM | FopenFlags::FOPEN_NONSEEKABLE;
    }
    flags
}

pub(super) fn reply_xattr(result: Result<XattrReply, FsError>, reply: ReplyXattr) {
    match result {
        Ok(XattrReply::Size(n)) => reply.size(n),
        Ok(XattrReply::Data(d)) => reply.data(&d),
        Err(e) => reply.error(errno(&e)),
    }
}

pub(super) fn reply_empty(result: Result<(), FsError>, reply: ReplyEmpty) {
    match result {
        Ok(()) => reply.ok(),
        Err(e) => reply.error(errno(&e)),
    }
}

/// Who asks to make a node, with the mode it asks for (the kernel has applied the umask).
pub(super) fn creator(req: &Request, mode: u32) -> Creator {
    Creator {
        uid: req.uid(),
        gid: req.gid(),
        mode: mode & 0o7777,
    }
}

pub(super) fn reply_attr(result: Result<Attr, FsError>, reply: ReplyAttr) {
    match result {
        Ok(a) => reply.attr(&ttl(), &file_attr(&a)),
        Err(e) => reply.error(errno(&e)),
    }
}

pub(super) fn reply_entry(result: Result<Attr, FsError>, reply: ReplyEntry) {
    match result {
        Ok(a) => reply.entry(&ttl(), &file_attr(&a), Generation(0)),
        Err(e) => reply.error(errno(&e)),
    }
}

/// How long the kernel may keep what the core answered about `ino`: nothing of what depends
/// on who asked (the query views), lest another caller be shown it; an hour of what never
/// changes (the trees of the past).
pub(super) fn ttl_of<S: Storage>(core: &FsCore<S>, ino: Ino) -> Duration {
    if core.answers_per_caller(ino) {
        Duration::ZERO
    } else if core.never_changes(ino) {
        PAST_TTL
    } else {
        ttl()
    }
}

pub(super) fn kind(k: Kind) -> FileType {
    match k {
        Kind::Dir => FileType::Directory,
        Kind::File => FileType::RegularFile,
        Kind::Symlink => FileType::Symlink,
    }
}
