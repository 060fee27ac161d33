//! The FUSE adapter: the only module that knows `fuser`. Every request is translated into one
//! call of the filesystem core and its answer (or its errno, from `FsError::errno`) back into
//! a reply; nothing here decides anything about the tree. Content I/O (and the pool that runs
//! it off the request threads for a store whose content is remote) is in `content`; the
//! session (mounting, signals, hearing other hosts' changes) in `session`.

mod callers;
mod content;
mod io_modes;
mod listings;
mod metered;
mod replies;
mod session;

pub use session::{MountOptions, serve};

use std::ffi::OsStr;
use std::sync::Arc;
use std::time::Duration;

use fuser::{
    AccessFlags, BackingId, Errno, FileHandle, Filesystem, FopenFlags, Generation, INodeNo,
    InitFlags, KernelConfig, LockOwner, OpenFlags, RenameFlags, ReplyAttr, ReplyCreate, ReplyData,
    ReplyDirectory, ReplyDirectoryPlus, ReplyEmpty, ReplyEntry, ReplyOpen, ReplyStatfs, ReplyWrite,
    ReplyXattr, Request, TimeOrNow, WriteFlags,
};

use crate::fs::{self, Fh, FsCore, Ino, SetAttr, XattrFlags};
use crate::storage::Storage;
use callers::caller;
use io_modes::{IoModes, OpenMode};
use metered::Op;
use replies::{
    MAX_WRITE, creator, errno, file_attr, fopen, negative_attr, open_flags, refused, reply_attr,
    reply_empty, reply_entry, reply_xattr, time_of, ttl, ttl_of, utf8,
};

/// A mounted filesystem core.
pub struct FuseFs<S: Storage> {
    core: Arc<FsCore<S>>,
    modes: Arc<IoModes<BackingId>>,
    /// Who opened each writable handle: a release, which the kernel sends as nobody's,
    /// commits on its behalf.
    openers: callers::Openers,
    // Where content requests run: `None` on the request thread that got them.
    content: Option<content::ContentPool>,
}

impl<S: Storage> FuseFs<S> {
    /// Wraps `core` for mounting; its content requests run on the request threads.
    pub fn new(core: Arc<FsCore<S>>) -> Self {
        FuseFs {
            core,
            modes: Arc::default(),
            openers: callers::Openers::default(),
            content: None,
        }
    }

    /// Runs content request `job` on the content pool, or here without one.
    fn content_io(&self, job: impl FnOnce() + Send + 'static) {
        match &self.content {
            Some(pool) => pool.run(job),
            None => job(),
        }
    }
}

impl<S: Storage> FuseFs<S> {
    /// Notes the arrival of request `op` from `req`'s caller about inode `ino`.
    fn arrived(&self, op: Op, ino: u64, req: &Request) -> metered::Arrived {
        metered::arrived(op, ino, (req.uid(), req.pid()), self.core.access_log())
    }

    /// Notes request `op` from `req`'s caller about `ino`, answered on this thread.
    fn answering(&self, op: Op, ino: u64, req: &Request) -> metered::Answering {
        self.arrived(op, ino, req).answer_here()
    }

    /// Counts the entry of a node just made as `name` in `parent`, about to be given to the
    /// kernel, as held by it.
    fn held(
        &self,
        (parent, name): (INodeNo, &str),
        made: fs::FsResult<fs::Attr>,
    ) -> fs::FsResult<fs::Attr> {
        if let Ok(attr) = &made {
            self.core.hold(attr.ino, Ino(parent.0), name);
        }
        made
    }

    /// Replies to an open as the I/O modes of the inode's handles allow (`IoModes::open`).
    fn reply_opened(&self, ino: u64, mut opened: fs::Opened, write: bool, reply: ReplyOpen) {
        let (fh, cached) = (opened.fh, opened.cached.take());
        let allowed = self.core.passthrough();
        let (mode, refused) = self
            .modes
            .open((Ino(ino), fh), cached, write, allowed, |f| {
                reply.open_backing(f)
            });
        if let Some(e) = refused {
            self.core.set_passthrough(false);
            tracing::warn!(
                error = %e,
                "the kernel refused passthrough: the daemon serves every read from now on"
            );
        }
        // A read-only handle's close commits nothing: the kernel need not send FLUSH.
        let noflush = match write {
            true => FopenFlags::empty(),
            false => FopenFlags::FOPEN_NOFLUSH,
        };
        metered::opened(matches!(mode, OpenMode::Passthrough { .. }));
        match mode {
            OpenMode::Passthrough { backing, direct_io } => {
                let flags = match direct_io {
                    true => FopenFlags::FOPEN_DIRECT_IO,
                    false => FopenFlags::empty(),
                };
                reply.opened_passthrough(FileHandle(fh.0), flags | noflush, &backing);
            }
            OpenMode::Served => reply.opened(FileHandle(fh.0), fopen(&opened) | noflush),
        }
    }
}

impl<S: Storage + 'static> Filesystem for FuseFs<S> {
    fn init(&mut self, _req: &Request, config: &mut KernelConfig) -> std::io::Result<()> {
        let _ = config.set_max_write(MAX_WRITE);
        let _ = config.set_max_readahead(MAX_WRITE);
        let _ = config.set_max_background(64);
        let wanted = InitFlags::FUSE_DO_READDIRPLUS
            | InitFlags::FUSE_READDIRPLUS_AUTO
            | InitFlags::FUSE_PARALLEL_DIROPS
            | InitFlags::FUSE_ASYNC_READ
            | InitFlags::FUSE_BIG_WRITES
            | InitFlags::FUSE_MAX_PAGES
            // The mount is nosuid and setuid bits mean nothing here: taking over "kill
            // privileges on write" spares a security.capability lookup before every write.
            | InitFlags::FUSE_HANDLE_KILLPRIV_V2
            // `O_TRUNC` comes with the open: one request, not an open and a SETATTR.
            | InitFlags::FUSE_ATOMIC_O_TRUNC
            // Writers bypass the page cache (FOPEN_DIRECT_IO); mmap of their files stays allowed.
            | InitFlags::FUSE_DIRECT_IO_ALLOW_MMAP;
        let _ = config.add_capabilities(wanted & config.capabilities());
        // Readers of cached contents are served by the kernel when it can (CAP_SYS_ADMIN).
        let granted = self.core.has_content_cache()
            && config.capabilities().contains(InitFlags::FUSE_PASSTHROUGH)
            && config.add_capabilities(InitFlags::FUSE_PASSTHROUGH).is_ok()
            && config.set_max_stack_depth(1).is_ok();
        self.core.set_passthrough(granted);
        Ok(())
    }

    fn lookup(&self, req: &Request, parent: INodeNo, name: &OsStr, reply: ReplyEntry) {
        let _answering = self
            .arrived(Op::Lookup, parent.0, req)
            .named(name)
            .answer_here();
        let Ok(name) = utf8(name) else {
            return reply.error(refused(Errno::ENOENT));
        };
        if parent.0 == Ino::ROOT.0 && name == fs::CONTROL_DIR {
            metered::not_metered();
        }
        // An answer read before another host's change is never kept past its announcement.
        let since = self.core.epoch(Ino(parent.0));
        let found = self.core.lookup_held(Ino(parent.0), name, &caller(req));
        let gate = self.core.reply_gate(since);
        match found {
            Ok(a) => {
                let ttl = gate.ttl(ttl_of(&self.core, a.ino));
                reply.entry(&ttl, &file_attr(&a), Generation(0));
            }
            // Inode 0: "no such name", which the kernel keeps for the TTL given.
            Err(e) if e.errno() == libc::ENOENT => {
                match gate.ttl(self.core.negative_ttl(Ino(parent.0), name, ttl())) {
                    Duration::ZERO => reply.error(refused(Errno::ENOENT)),
                    ttl => {
                        metered::failed(libc::ENOENT);
                        reply.entry(&ttl, &negative_attr(), Generation(0))
                    }
                }
            }
            Err(e) => reply.error(errno(&e)),
        }
    }

    // `batch_forget` comes here too, once per inode (fuser's default).
    fn forget(&self, _req: &Request, ino: INodeNo, nlookup: u64) {
        self.core.forget(Ino(ino.0), nlookup);
    }

    fn getattr(&self, req: &Request, ino: INodeNo, _fh: Option<FileHandle>, reply: ReplyAttr) {
        let _answering = self.answering(Op::Getattr, ino.0, req);
        match self.core.getattr(Ino(ino.0)) {
            Ok(a) => reply.attr(&ttl_of(&self.core, a.ino), &file_attr(&a)),
            Err(e) => reply.error(errno(&e)),
        }
    }

    fn readlink(&self, req: &Request, ino: INodeNo, reply: ReplyData) {
        let _answering = self.answering(Op::Readlink, ino.0, req);
        match self.core.readlink(Ino(ino.0)) {
            Ok(target) => reply.data(target.as_bytes()),
            Err(e) => reply.error(errno(&e)),
        }
    }

    fn setattr(
        &self,
        req: &Request,
        ino: INodeNo,
        mode: Option<u32>,
        uid: Option<u32>,
        gid: Option<u32>,
        size: Option<u64>,
        _atime: Option<TimeOrNow>,
        mtime: Option<TimeOrNow>,
        _ctime: Option<std::time::SystemTime>,
        fh: Option<FileHandle>,
        _crtime: Option<std::time::SystemTime>,
        _chgtime: Option<std::time::SystemTime>,
        _bkuptime: Option<std::time::SystemTime>,
        _flags: Option<fuser::BsdFileFlags>,
        reply: ReplyAttr,
    ) {
        let _answering = self.answering(Op::Setattr, ino.0, req);
        let set = SetAttr {
            size,
            mode,
            uid,
            gid,
            mtime: mtime.map(time_of),
        };
        let fh = fh.map(|f| Fh(f.0));
        let done = caller(req).on_behalf(|| self.core.setattr(Ino(ino.0), fh, set));
        reply_attr(done, reply);
    }

    fn mkdir(
        &self,
        req: &Request,
        parent: INodeNo,
        name: &OsStr,
        mode: u32,
        _umask: u32,
        reply: ReplyEntry,
    ) {
        let _answering = self
            .arrived(Op::Mkdir, parent.0, req)
            .named(name)
            .answer_here();
        match utf8(name) {
            Ok(name) => reply_entry(
                self.held(
                    (parent, name),
                    caller(req)
                        .on_behalf(|| self.core.mkdir_as(Ino(parent.0), name, creator(req, mode))),
                ),
                reply,
            ),
            Err(e) => reply.error(refused(e)),
        }
    }

    fn symlink(
        &self,
        req: &Request,
        parent: INodeNo,
        link_name: &OsStr,
        target: &std::path::Path,
        reply: ReplyEntry,
    ) {
        let _answering = self
            .arrived(Op::Symlink, parent.0, req)
            .named(link_name)
            .answer_here();
        let (name, target) = match (utf8(link_name), utf8(target.as_os_str())) {
            (Ok(name), Ok(target)) => (name, target),
            (Err(e), _) | (_, Err(e)) => return reply.error(refused(e)),
        };
        let by = creator(req, 0o777);
        reply_entry(
            self.held(
                (parent, name),
                caller(req).on_behalf(|| self.core.symlink_as(Ino(parent.0), name, target, by)),
            ),
            reply,
        );
    }

    fn link(
        &self,
        req: &Request,
        _ino: INodeNo,
        newparent: INodeNo,
        newname: &OsStr,
        reply: ReplyEntry,
    ) {
        let _answering = self
            .arrived(Op::Link, newparent.0, req)
            .named(newname)
            .answer_here();
        // An object has one place (its Cronus name says where): no second name.
        reply_entry(self.core.mknod(Ino(newparent.0)), reply);
    }

    fn mknod(
        &self,
        req: &Request,
        parent: INodeNo,
        name: &OsStr,
        _mode: u32,
        _umask: u32,
        _rdev: u32,
        reply: ReplyEntry,
    ) {
        let _answering = self
            .arrived(Op::Mknod, parent.0, req)
            .named(name)
            .answer_here();
        // Regular files come through `create`; device nodes, FIFOs and sockets are not objects.
        reply_entry(self.core.mknod(Ino(parent.0)), reply);
    }

    fn unlink(&self, req: &Request, parent: INodeNo, name: &OsStr, reply: ReplyEmpty) {
        let _answering = self
            .arrived(Op::Unlink, parent.0, req)
            .named(name)
            .answer_here();
        match utf8(name) {
            Ok(name) => reply_empty(
                caller(req).on_behalf(|| self.core.unlink(Ino(parent.0), name)),
                reply,
            ),
            Err(_) => reply.error(refused(Errno::ENOENT)),
        }
    }

    fn rmdir(&self, req: &Request, parent: INodeNo, name: &OsStr, reply: ReplyEmpty) {
        let _answering = self
            .arrived(Op::Rmdir, parent.0, req)
            .named(name)
            .answer_here();
        match utf8(name) {
            Ok(name) => reply_empty(
                caller(req).on_behalf(|| self.core.rmdir(Ino(parent.0), name)),
                reply,
            ),
            Err(_) => reply.error(refused(Errno::ENOENT)),
        }
    }

    fn rename(
        &self,
        req: &Request,
        parent: INodeNo,
        name: &OsStr,
        newparent: INodeNo,
        newname: &OsStr,
        flags: RenameFlags,
        reply: ReplyEmpty,
    ) {
        let _answering = self
            .arrived(Op::Rename, parent.0, req)
            .named(name)
            .answer_here();
        if flags.contains(RenameFlags::RENAME_EXCHANGE)
            || flags.contains(RenameFlags::RENAME_WHITEOUT)
        {
            return reply.error(refused(Errno::EINVAL));
        }
        let noreplace = flags.contains(RenameFlags::RENAME_NOREPLACE);
        match (utf8(name), utf8(newname)) {
            (Ok(a), Ok(b)) => reply_empty(
                caller(req).on_behalf(|| {
                    (self.core).rename(Ino(parent.0), a, Ino(newparent.0), b, noreplace)
                }),
                reply,
            ),
            _ => reply.error(refused(Errno::EINVAL)),
        }
    }

    fn open(&self, req: &Request, ino: INodeNo, flags: OpenFlags, reply: ReplyOpen) {
        let _answering = self.answering(Op::Open, ino.0, req);
        let flags = open_flags(flags);
        match caller(req).on_behalf(|| self.core.open(Ino(ino.0), flags)) {
            Ok(o) => {
                if flags.write {
                    self.openers.opened(o.fh.0, req);
                }
                self.reply_opened(ino.0, o, flags.write, reply)
            }
            Err(e) => reply.error(errno(&e)),
        }
    }

    fn create(
        &self,
        req: &Request,
        parent: INodeNo,
        name: &OsStr,
        mode: u32,
        _umask: u32,
        flags: i32,
        reply: ReplyCreate,
    ) {
        let _answering = self
            .arrived(Op::Create, parent.0, req)
            .named(name)
            .answer_here();
        let name = match utf8(name) {
            Ok(n) => n,
            Err(e) => return reply.error(refused(e)),
        };
        let access = flags & libc::O_ACCMODE;
        let flags = fs::CreateFlags {
            exclusive: flags & libc::O_EXCL != 0,
            read: access != libc::O_WRONLY,
            open: fs::OpenFlags {
                write: access != libc::O_RDONLY,
                truncate: flags & libc::O_TRUNC != 0,
            },
        };
        let made = caller(req)
            .on_behalf(|| (self.core).create_as(Ino(parent.0), name, creator(req, mode), flags));
        match made {
            Ok((attr, opened)) => {
                self.openers.opened(opened.fh.0, req);
                let (fh, flags) = (FileHandle(opened.fh.0), fopen(&opened));
                self.modes.served(attr.ino, opened.fh);
                self.core.hold(attr.ino, Ino(parent.0), name);
                metered::opened(false);
                reply.created(&ttl(), &file_attr(&attr), Generation(0), fh, flags);
            }
            Err(e) => reply.error(errno(&e)),
        }
    }

    fn read(
        &self,
        req: &Request,
        _ino: INodeNo,
        fh: FileHandle,
        offset: u64,
        size: u32,
        _flags: OpenFlags,
        _lock: Option<LockOwner>,
        reply: ReplyData,
    ) {
        if self.core.is_access_log_handle(Fh(fh.0)) {
            return content::read_access_log(&self.core, Fh(fh.0), size, reply);
        }
        let arrived = self.arrived(Op::Read, _ino.0, req);
        let core = self.core.clone();
        self.content_io(move || {
            let _answering = arrived.answer_here();
            content::read(&core, Fh(fh.0), (offset, size), reply)
        });
    }

    fn write(
        &self,
        req: &Request,
        ino: INodeNo,
        fh: FileHandle,
        offset: u64,
        data: &[u8],
        _wf: WriteFlags,
        flags: OpenFlags,
        _lock: Option<LockOwner>,
        reply: ReplyWrite,
    ) {
        let arrived = self.arrived(Op::Write, ino.0, req);
        let (core, fh) = (self.core.clone(), Fh(fh.0));
        // Linux appends through an O_APPEND descriptor whatever offset `pwrite` names.
        let at = (offset, flags.0 & libc::O_APPEND != 0);
        match &self.content {
            Some(pool) => {
                let data = data.to_vec();
                pool.run(move || {
                    let _answering = arrived.answer_here();
                    content::write(&core, (ino.0, fh), at, &data, reply)
                });
            }
            None => {
                let _answering = arrived.answer_here();
                content::write(&core, (ino.0, fh), at, data, reply)
            }
        }
    }

    fn flush(
        &self,
        req: &Request,
        _ino: INodeNo,
        fh: FileHandle,
        _lock: LockOwner,
        reply: ReplyEmpty,
    ) {
        let arrived = self.arrived(Op::Flush, _ino.0, req);
        let (core, modes, by) = (self.core.clone(), self.modes.clone(), caller(req));
        self.content_io(move || {
            let _answering = arrived.answer_here();
            by.on_behalf(|| content::flush(&core, &modes, Fh(fh.0), reply))
        });
    }

    fn release(
        &self,
        req: &Request,
        ino: INodeNo,
        fh: FileHandle,
        _flags: OpenFlags,
        _lock: Option<LockOwner>,
        _flush: bool,
        reply: ReplyEmpty,
    ) {
        let arrived = self.arrived(Op::Release, ino.0, req);
        let by = self.openers.released(fh.0, req);
        let (core, modes) = (self.core.clone(), self.modes.clone());
        self.content_io(move || {
            let _answering = arrived.answer_here();
            by.on_behalf(|| content::release(&core, &modes, (ino.0, Fh(fh.0)), reply))
        });
    }

    fn fsync(
        &self,
        req: &Request,
        _ino: INodeNo,
        fh: FileHandle,
        _datasync: bool,
        reply: ReplyEmpty,
    ) {
        let arrived = self.arrived(Op::Fsync, _ino.0, req);
        let (core, by) = (self.core.clone(), caller(req));
        self.content_io(move || {
            let _answering = arrived.answer_here();
            by.on_behalf(|| content::fsync(&core, Fh(fh.0), reply))
        });
    }

    fn opendir(&self, req: &Request, ino: INodeNo, _flags: OpenFlags, reply: ReplyOpen) {
        let _answering = self.answering(Op::Opendir, ino.0, req);
        match self.core.opendir(Ino(ino.0)) {
            Ok(fh) => reply.opened(FileHandle(fh.0), FopenFlags::empty()),
            Err(e) => reply.error(errno(&e)),
        }
    }

    fn readdir(
        &self,
        req: &Request,
        ino: INodeNo,
        fh: FileHandle,
        offset: u64,
        reply: ReplyDirectory,
    ) {
        let _answering = self.answering(Op::Readdir, ino.0, req);
        self.reply_listing(req, (ino, fh), offset, reply);
    }

    fn readdirplus(
        &self,
        req: &Request,
        ino: INodeNo,
        fh: FileHandle,
        offset: u64,
        reply: ReplyDirectoryPlus,
    ) {
        let _answering = self.answering(Op::Readdirplus, ino.0, req);
        self.reply_listing_plus(req, (ino, fh), offset, reply);
    }

    fn releasedir(
        &self,
        req: &Request,
        _ino: INodeNo,
        fh: FileHandle,
        _flags: OpenFlags,
        reply: ReplyEmpty,
    ) {
        let _answering = self.answering(Op::Releasedir, _ino.0, req);
        self.core.releasedir(Fh(fh.0));
        reply.ok();
    }

    fn statfs(&self, req: &Request, _ino: INodeNo, reply: ReplyStatfs) {
        let _answering = self.answering(Op::Statfs, _ino.0, req);
        match self.core.statfs() {
            Ok(s) => reply.statfs(
                s.f_blocks,
                s.f_bfree,
                s.f_bavail,
                s.f_files,
                s.f_ffree,
                s.f_bsize as u32,
                255,
                s.f_frsize as u32,
            ),
            Err(e) => reply.error(errno(&e)),
        }
    }

    fn setxattr(
        &self,
        req: &Request,
        ino: INodeNo,
        name: &OsStr,
        value: &[u8],
        flags: i32,
        _position: u32,
        reply: ReplyEmpty,
    ) {
        let _answering = self.answering(Op::Setxattr, ino.0, req);
        let flags = XattrFlags {
            create: flags & libc::XATTR_CREATE != 0,
            replace: flags & libc::XATTR_REPLACE != 0,
        };
        match utf8(name) {
            Ok(name) => reply_empty(
                caller(req).on_behalf(|| self.core.setxattr(Ino(ino.0), name, value, flags)),
                reply,
            ),
            Err(_) => reply.error(refused(Errno::ENOTSUP)),
        }
    }

    fn getxattr(&self, req: &Request, ino: INodeNo, name: &OsStr, size: u32, reply: ReplyXattr) {
        let _answering = self.answering(Op::Getxattr, ino.0, req);
        match utf8(name) {
            Ok(name) => reply_xattr(self.core.getxattr(Ino(ino.0), name, size), reply),
            Err(_) => reply.error(refused(Errno::ENOTSUP)),
        }
    }

    fn listxattr(&self, req: &Request, ino: INodeNo, size: u32, reply: ReplyXattr) {
        let _answering = self.answering(Op::Listxattr, ino.0, req);
        reply_xattr(self.core.listxattr(Ino(ino.0), size), reply);
    }

    fn removexattr(&self, req: &Request, ino: INodeNo, name: &OsStr, reply: ReplyEmpty) {
        let _answering = self.answering(Op::Removexattr, ino.0, req);
        match utf8(name) {
            Ok(name) => reply_empty(
                caller(req).on_behalf(|| self.core.removexattr(Ino(ino.0), name)),
                reply,
            ),
            Err(_) => reply.error(refused(Errno::ENOTSUP)),
        }
    }

    fn access(&self, req: &Request, ino: INodeNo, _mask: AccessFlags, reply: ReplyEmpty) {
        let _answering = self.answering(Op::Access, ino.0, req);
        // The kernel checks permissions itself (default_permissions); this only says the node
        // exists.
        reply_empty(self.core.getattr(Ino(ino.0)).map(|_| ()), reply);
    }
}
