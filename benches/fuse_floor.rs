//! The floor of a FUSE filesystem on this machine (issue 24): a flat directory kept in memory,
//! served by the same fuser crate and thread settings as cronusfs, answering LOOKUP, GETATTR,
//! SETATTR, GETXATTR, SETXATTR (of its one name), LISTXATTR, CREATE, OPEN, WRITE, FLUSH, RELEASE, READ and READDIR and
//! nothing more. `scripts/bench_floor.py` times the same workloads on it, on cronusfs and on
//! a native directory, so every figure is also a multiple of what FUSE itself costs.
//!
//! `cargo bench --bench fuse_floor -- --mount DIR [--threads N]`: mounts at DIR and serves
//! until DIR is unmounted (`fusermount3 -u DIR`). Without `--mount` it does nothing (so that
//! `cargo bench` alone passes over it).

use std::collections::HashMap;
use std::ffi::OsStr;
use std::os::unix::fs::MetadataExt;
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, SystemTime};

use fuser::{
    Errno, FileAttr, FileHandle, FileType, Filesystem, Generation, INodeNo, LockOwner, OpenFlags,
    ReplyAttr, ReplyCreate, ReplyData, ReplyDirectory, ReplyEmpty, ReplyEntry, ReplyOpen,
    ReplyWrite, ReplyXattr, Request, TimeOrNow, WriteFlags,
};

/// How long the kernel may keep names and attributes: cronusfs's default.
const TTL: Duration = Duration::from_secs(1);
/// The one attribute every file has, so `getfattr -n` finds something.
const XATTR: (&str, &[u8]) = ("user.k", b"floor");

/// One file of the flat root directory.
struct File {
    name: String,
    data: Vec<u8>,
    mtime: SystemTime,
}

/// The files, by inode number (2 and up; 1 is the root).
#[derive(Default)]
struct Files {
    by_ino: Vec<File>,
    by_name: HashMap<String, u64>,
}

impl Files {
    fn file(&mut self, ino: INodeNo) -> Option<&mut File> {
        usize::try_from(ino.0)
            .ok()
            .and_then(|i| i.checked_sub(2))
            .and_then(|i| self.by_ino.get_mut(i))
    }
}

struct Floor {
    files: Mutex<Files>,
    started: SystemTime,
    uid: u32,
    gid: u32,
}

impl Floor {
    fn lock(&self) -> MutexGuard<'_, Files> {
        self.files.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn attr(&self, ino: u64, file: Option<&File>) -> FileAttr {
        let (kind, perm, size, mtime) = match file {
            Some(f) => (FileType::RegularFile, 0o644, f.data.len() as u64, f.mtime),
            None => (FileType::Directory, 0o755, 0, self.started),
        };
        FileAttr {
            ino: INodeNo(ino),
            size,
            blocks: size.div_ceil(512),
            atime: mtime,
            mtime,
            ctime: mtime,
            crtime: mtime,
            kind,
            perm,
            nlink: if file.is_some() { 1 } else { 2 },
            uid: self.uid,
            gid: self.gid,
            rdev: 0,
            blksize: 4096,
            flags: 0,
        }
    }
}

impl Filesystem for Floor {
    fn lookup(&self, _req: &Request, parent: INodeNo, name: &OsStr, reply: ReplyEntry) {
        let mut files = self.lock();
        let found = (parent.0 == 1)
            .then(|| name.to_str().and_then(|n| files.by_name.get(n).copied()))
            .flatten();
        match found.and_then(|ino| files.file(INodeNo(ino)).map(|f| (ino, f))) {
            Some((ino, f)) => reply.entry(&TTL, &self.attr(ino, Some(f)), Generation(0)),
            None => reply.error(Errno::ENOENT),
        }
    }

    fn getattr(&self, _req: &Request, ino: INodeNo, _fh: Option<FileHandle>, reply: ReplyAttr) {
        if ino.0 == 1 {
            return reply.attr(&TTL, &self.attr(1, None));
        }
        match self.lock().file(ino) {
            Some(f) => reply.attr(&TTL, &self.attr(ino.0, Some(f))),
            None => reply.error(Errno::ENOENT),
        }
    }

    fn setattr(
        &self,
        _req: &Request,
        ino: INodeNo,
        _mode: Option<u32>,
        _uid: Option<u32>,
        _gid: Option<u32>,
        size: Option<u64>,
        _atime: Option<TimeOrNow>,
        mtime: Option<TimeOrNow>,
        _ctime: Option<SystemTime>,
        _fh: Option<FileHandle>,
        _crtime: Option<SystemTime>,
        _chgtime: Option<SystemTime>,
        _bkuptime: Option<SystemTime>,
        _flags: Option<fuser::BsdFileFlags>,
        reply: ReplyAttr,
    ) {
        let mut files = self.lock();
        let Some(f) = files.file(ino) else {
            return reply.error(Errno::ENOENT);
        };
        if let Some(size) = size {
            f.data.resize(usize::try_from(size).unwrap_or(0), 0);
        }
        if let Some(t) = mtime {
            f.mtime = match t {
                TimeOrNow::SpecificTime(t) => t,
                TimeOrNow::Now => SystemTime::now(),
            };
        }
        reply.attr(&TTL, &self.attr(ino.0, Some(f)));
    }

    fn getxattr(&self, _req: &Request, ino: INodeNo, name: &OsStr, size: u32, reply: ReplyXattr) {
        if ino.0 == 1 || name != XATTR.0 {
            return reply.error(Errno::ENODATA);
        }
        match size {
            0 => reply.size(XATTR.1.len() as u32),
            n if (n as usize) < XATTR.1.len() => reply.error(Errno::ERANGE),
            _ => reply.data(XATTR.1),
        }
    }

    /// Every file has `user.k` already: setting it is accepted and changes nothing.
    fn setxattr(
        &self,
        _req: &Request,
        _ino: INodeNo,
        name: &OsStr,
        _value: &[u8],
        _flags: i32,
        _position: u32,
        reply: ReplyEmpty,
    ) {
        match name == XATTR.0 {
            true => reply.ok(),
            false => reply.error(Errno::ENOTSUP),
        }
    }

    fn listxattr(&self, _req: &Request, _ino: INodeNo, size: u32, reply: ReplyXattr) {
        let list = [XATTR.0.as_bytes(), b"\0"].concat();
        match size {
            0 => reply.size(list.len() as u32),
            n if (n as usize) < list.len() => reply.error(Errno::ERANGE),
            _ => reply.data(&list),
        }
    }

    fn create(
        &self,
        _req: &Request,
        parent: INodeNo,
        name: &OsStr,
        _mode: u32,
        _umask: u32,
        _flags: i32,
        reply: ReplyCreate,
    ) {
        let Some(name) = name.to_str().filter(|_| parent.0 == 1) else {
            return reply.error(Errno::EPERM);
        };
        let mut files = self.lock();
        let ino = match files.by_name.get(name) {
            Some(ino) => *ino,
            None => {
                let ino = files.by_ino.len() as u64 + 2;
                files.by_ino.push(File {
                    name: name.to_string(),
                    data: Vec::new(),
                    mtime: SystemTime::now(),
                });
                files.by_name.insert(name.to_string(), ino);
                ino
            }
        };
        let f = files.file(INodeNo(ino)).map(|f| self.attr(ino, Some(f)));
        let attr = f.unwrap_or_else(|| self.attr(1, None));
        reply.created(
            &TTL,
            &attr,
            Generation(0),
            FileHandle(ino),
            fuser::FopenFlags::empty(),
        );
    }

    fn open(&self, _req: &Request, ino: INodeNo, _flags: OpenFlags, reply: ReplyOpen) {
        reply.opened(FileHandle(ino.0), fuser::FopenFlags::empty());
    }

    fn read(
        &self,
        _req: &Request,
        ino: INodeNo,
        _fh: FileHandle,
        offset: u64,
        size: u32,
        _flags: OpenFlags,
        _lock: Option<LockOwner>,
        reply: ReplyData,
    ) {
        let mut files = self.lock();
        let Some(f) = files.file(ino) else {
            return reply.error(Errno::ENOENT);
        };
        let start = usize::try_from(offset)
            .unwrap_or(usize::MAX)
            .min(f.data.len());
        let end = start.saturating_add(size as usize).min(f.data.len());
        reply.data(&f.data[start..end]);
    }

    fn write(
        &self,
        _req: &Request,
        ino: INodeNo,
        _fh: FileHandle,
        offset: u64,
        data: &[u8],
        _wf: WriteFlags,
        _flags: OpenFlags,
        _lock: Option<LockOwner>,
        reply: ReplyWrite,
    ) {
        let mut files = self.lock();
        let Some(f) = files.file(ino) else {
            return reply.error(Errno::ENOENT);
        };
        let start = usize::try_from(offset).unwrap_or(0);
        if f.data.len() < start + data.len() {
            f.data.resize(start + data.len(), 0);
        }
        f.data[start..start + data.len()].copy_from_slice(data);
        f.mtime = SystemTime::now();
        reply.written(data.len() as u32);
    }

    fn flush(
        &self,
        _req: &Request,
        _ino: INodeNo,
        _fh: FileHandle,
        _lock: LockOwner,
        reply: ReplyEmpty,
    ) {
        reply.ok();
    }

    fn release(
        &self,
        _req: &Request,
        _ino: INodeNo,
        _fh: FileHandle,
        _flags: OpenFlags,
        _lock: Option<LockOwner>,
        _flush: bool,
        reply: ReplyEmpty,
    ) {
        reply.ok();
    }

    fn readdir(
        &self,
        _req: &Request,
        ino: INodeNo,
        _fh: FileHandle,
        offset: u64,
        mut reply: ReplyDirectory,
    ) {
        if ino.0 != 1 {
            return reply.error(Errno::ENOTDIR);
        }
        let files = self.lock();
        let entries = (files.by_ino.iter().enumerate())
            .map(|(i, f)| (i as u64 + 2, FileType::RegularFile, f.name.as_str()));
        let all = [
            (1, FileType::Directory, "."),
            (1, FileType::Directory, ".."),
        ]
        .into_iter()
        .chain(entries);
        for (next, (ino, kind, name)) in all.enumerate().skip(offset as usize) {
            if reply.add(INodeNo(ino), next as u64 + 1, kind, name) {
                break;
            }
        }
        reply.ok();
    }
}

fn main() {
    let mut args = std::env::args().skip(1);
    let (mut mount, mut threads) = (None, 4);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--mount" => mount = args.next(),
            "--threads" => threads = args.next().and_then(|t| t.parse().ok()).unwrap_or(4),
            _ => {} // cargo bench passes --bench.
        }
    }
    let Some(mount) = mount else {
        return;
    };
    // Files belong to whoever owns the mount point (the benchmark's user).
    let (uid, gid) = match std::fs::metadata(&mount) {
        Ok(m) => (m.uid(), m.gid()),
        Err(e) => {
            eprintln!("fuse_floor: cannot mount at {mount}: {e}");
            std::process::exit(1);
        }
    };
    let floor = Floor {
        files: Mutex::default(),
        started: SystemTime::now(),
        uid,
        gid,
    };
    let mut config = fuser::Config::default();
    config.mount_options = vec![
        fuser::MountOption::FSName("floor".into()),
        fuser::MountOption::NoAtime,
        fuser::MountOption::RW,
    ];
    config.n_threads = Some(threads);
    config.clone_fd = true;
    if let Err(e) = fuser::mount(floor, &mount, &config) {
        eprintln!("fuse_floor: cannot mount at {mount}: {e}");
        std::process::exit(1);
    }
}
