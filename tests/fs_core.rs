//! The filesystem core driven without a kernel: every operation of SPEC §4 and its errno,
//! on the in-memory backend and on RocksDB (with a reopen).

use cronusfs::fs::{
    Fh, FsCore, FsError, FsOptions, Ino, Kind, OpenFlags, SetAttr, XattrFlags, XattrReply,
};
use cronusfs::meta::{DatasetId, Metastore};
use cronusfs::storage::{MemoryStore, RocksStore, Storage};

/// `O_RDWR`, and `O_RDWR | O_TRUNC`.
pub(crate) const READ_WRITE: OpenFlags = OpenFlags {
    write: true,
    truncate: false,
};
pub(crate) const TRUNCATE: OpenFlags = OpenFlags {
    write: true,
    truncate: true,
};

pub(crate) fn options(dir: &std::path::Path) -> FsOptions {
    FsOptions {
        read_only: false,
        uid: 1000,
        gid: 1000,
        staging_dir: dir.join("staging"),
        cache_dir: Some(dir.join("cache")),
        cache_limit: 64 << 20,
        max_inodes: 0,
        listing_page: cronusfs::fs::DEFAULT_LISTING_PAGE,
    }
}

pub(crate) fn core(dir: &std::path::Path) -> FsCore<MemoryStore> {
    FsCore::new(Metastore::new(MemoryStore::new()), options(dir)).unwrap()
}

pub(crate) fn errno<T: std::fmt::Debug>(r: Result<T, FsError>) -> i32 {
    r.expect_err("expected an error").errno()
}

/// Makes datasets/<ds>/partitions/<key>/jobs/<job> and returns the job directory's inode.
pub(crate) fn job_dir<S: Storage>(fs: &FsCore<S>, ds: DatasetId, key: &str, job: u32) -> Ino {
    let datasets = fs.lookup(Ino::ROOT, "datasets").unwrap().ino;
    let d = match fs.lookup(datasets, &ds.to_string()) {
        Ok(a) => a.ino,
        Err(_) => fs.mkdir(datasets, &ds.to_string()).unwrap().ino,
    };
    let parts = fs.lookup(d, "partitions").unwrap().ino;
    let p = match fs.lookup(parts, key) {
        Ok(a) => a.ino,
        Err(_) => fs.mkdir(parts, key).unwrap().ino,
    };
    let jobs = fs.lookup(p, "jobs").unwrap().ino;
    match fs.lookup(jobs, &job.to_string()) {
        Ok(a) => a.ino,
        Err(_) => fs.mkdir(jobs, &job.to_string()).unwrap().ino,
    }
}

pub(crate) fn write_file<S: Storage>(fs: &FsCore<S>, dir: Ino, name: &str, bytes: &[u8]) -> Ino {
    let (attr, opened) = fs.create(dir, name).unwrap();
    for (i, piece) in bytes.chunks(100_000).enumerate() {
        assert_eq!(
            fs.write(opened.fh, (i * 100_000) as u64, piece).unwrap(),
            piece.len()
        );
    }
    fs.flush(opened.fh).unwrap();
    fs.release(opened.fh).unwrap();
    attr.ino
}

pub(crate) fn read_all<S: Storage>(fs: &FsCore<S>, ino: Ino) -> Vec<u8> {
    let opened = fs.open(ino, OpenFlags::default()).unwrap();
    let mut out = Vec::new();
    loop {
        let piece = fs.read(opened.fh, out.len() as u64, 128 * 1024).unwrap();
        if piece.is_empty() {
            break;
        }
        out.extend_from_slice(&piece);
    }
    fs.release(opened.fh).unwrap();
    out
}

pub(crate) fn names<S: Storage>(fs: &FsCore<S>, dir: Ino) -> Vec<String> {
    fs.readdir(dir)
        .unwrap()
        .into_iter()
        .map(|e| e.name)
        .collect()
}

/// Pseudo-random bytes (no two 1 MiB chunks alike), from `seed`.
fn pattern(len: usize, seed: u8) -> Vec<u8> {
    crate::content::bytes(len, seed)
}

#[test]
fn the_tree_is_made_with_mkdir_and_listed() {
    let tmp = tempfile::tempdir().unwrap();
    let fs = core(tmp.path());
    assert_eq!(
        names(&fs, Ino::ROOT),
        ["datasets", "menus", "configs", "objects", "query"]
    );
    let ds = DatasetId::random();
    let job = job_dir(&fs, ds, "key1", 0);
    job_dir(&fs, ds, "key2", 3);
    let datasets = fs.lookup(Ino::ROOT, "datasets").unwrap().ino;
    assert_eq!(names(&fs, datasets), [ds.to_string()]);
    let d = fs.lookup(datasets, &ds.to_string()).unwrap().ino;
    assert_eq!(
        names(&fs, d),
        ["partitions"],
        "no menu/config for a dataset made by mkdir"
    );
    let parts = fs.lookup(d, "partitions").unwrap().ino;
    assert_eq!(names(&fs, parts), ["key1", "key2"]);
    // Jobs are dataset-wide: both show under every partition.
    let k2 = fs.lookup(parts, "key2").unwrap().ino;
    let jobs2 = fs.lookup(k2, "jobs").unwrap().ino;
    assert_eq!(names(&fs, jobs2), ["0", "3"]);
    assert_eq!(fs.getattr(job).unwrap().kind, Kind::Dir);
    assert_eq!(
        fs.parent_of(job).unwrap(),
        fs.lookup(fs.lookup(parts, "key1").unwrap().ino, "jobs")
            .unwrap()
            .ino
    );
    // `new_job` continues after the highest job opened by number.
    assert_eq!(fs.metastore().new_job(ds).unwrap().0, 4);
}

#[test]
fn invalid_names_and_wrong_places_get_their_errno() {
    let tmp = tempfile::tempdir().unwrap();
    let fs = core(tmp.path());
    let datasets = fs.lookup(Ino::ROOT, "datasets").unwrap().ino;
    assert_eq!(errno(fs.mkdir(datasets, "not-a-uuid")), libc::EINVAL);
    assert_eq!(errno(fs.mkdir(Ino::ROOT, "extra")), libc::EPERM);
    assert_eq!(errno(fs.mkdir(Ino::ROOT, "datasets")), libc::EEXIST);
    assert_eq!(errno(fs.create(Ino::ROOT, "file")), libc::EPERM);
    assert_eq!(errno(fs.create(datasets, "file")), libc::EPERM);
    let ds = DatasetId::random();
    let job = job_dir(&fs, ds, "k", 0);
    let d = fs.lookup(datasets, &ds.to_string()).unwrap().ino;
    assert_eq!(errno(fs.mkdir(datasets, &ds.to_string())), libc::EEXIST);
    let parts = fs.lookup(d, "partitions").unwrap().ino;
    let jobs = fs
        .lookup(fs.lookup(parts, "k").unwrap().ino, "jobs")
        .unwrap()
        .ino;
    for bad in ["01", "-1", "x", "+2", "4294967296"] {
        assert_eq!(errno(fs.mkdir(jobs, bad)), libc::EINVAL, "{bad}");
    }
    assert_eq!(errno(fs.mkdir(parts, "k")), libc::EEXIST);
    assert_eq!(errno(fs.mkdir(parts, &"x".repeat(256))), libc::ENAMETOOLONG);
    let menus = fs.lookup(Ino::ROOT, "menus").unwrap().ino;
    assert_eq!(errno(fs.mkdir(menus, "sub")), libc::EPERM);
    assert_eq!(errno(fs.create(job, &"y".repeat(256))), libc::ENAMETOOLONG);
    assert_eq!(errno(fs.lookup(job, "missing")), libc::ENOENT);
    assert_eq!(errno(fs.lookup(datasets, "not-a-uuid")), libc::ENOENT);
    // Removing what holds something.
    write_file(&fs, job, "a", b"x");
    assert_eq!(errno(fs.rmdir(jobs, "0")), libc::ENOTEMPTY);
    assert_eq!(errno(fs.rmdir(parts, "k")), libc::ENOTEMPTY);
    assert_eq!(errno(fs.rmdir(datasets, &ds.to_string())), libc::ENOTEMPTY);
    assert_eq!(errno(fs.rmdir(d, "partitions")), libc::EPERM);
    assert_eq!(errno(fs.unlink(jobs, "0")), libc::EISDIR);
    assert_eq!(errno(fs.rmdir(job, "a")), libc::ENOTDIR);
    // Emptied, they go.
    fs.unlink(job, "a").unwrap();
    fs.rmdir(jobs, "0").unwrap();
    fs.rmdir(parts, "k").unwrap();
    fs.rmdir(datasets, &ds.to_string()).unwrap();
    assert!(names(&fs, datasets).is_empty());
}

#[test]
fn files_are_written_read_versioned_and_visible_under_objects() {
    let tmp = tempfile::tempdir().unwrap();
    let fs = core(tmp.path());
    let job = job_dir(&fs, DatasetId::random(), "k", 0);
    let first = pattern(3 << 20, 1);
    let ino = write_file(&fs, job, "data.bin", &first);
    assert_eq!(fs.getattr(ino).unwrap().size, first.len() as u64);
    assert!(read_all(&fs, ino) == first);
    // Random writes and a read through the writing handle before it commits.
    let opened = fs.open(ino, READ_WRITE).unwrap();
    fs.write(opened.fh, 10, b"XYZ").unwrap();
    fs.write(opened.fh, (3 << 20) + 5, b"tail").unwrap();
    assert_eq!(
        fs.read(opened.fh, 8, 6).unwrap().to_vec(),
        [first[8], first[9], b'X', b'Y', b'Z', first[13]]
    );
    assert_eq!(
        fs.getattr(ino).unwrap().size,
        (3 << 20) + 9,
        "stat sees the writer's size"
    );
    fs.flush(opened.fh).unwrap();
    fs.release(opened.fh).unwrap();
    let mut second = first.clone();
    second[10..13].copy_from_slice(b"XYZ");
    second.extend_from_slice(&[0; 5]);
    second.extend_from_slice(b"tail");
    assert!(read_all(&fs, ino) == second);
    let meta = fs.metastore();
    assert_eq!(
        fs.lookup(job, "data.bin").unwrap().ino,
        ino,
        "a new version keeps the inode"
    );
    let obj = meta
        .list(meta.datasets().unwrap()[0], "", "")
        .unwrap()
        .remove(0);
    assert_eq!(obj.version, 2);
    // Both contents are under objects/ until gc.
    let objects = fs.lookup(Ino::ROOT, "objects").unwrap().ino;
    let ids = names(&fs, objects);
    assert_eq!(ids.len(), 2);
    let old = ids.iter().find(|i| **i != obj.content.to_string()).unwrap();
    let old_ino = fs.lookup(objects, old).unwrap().ino;
    assert!(read_all(&fs, old_ino) == first);
    assert_eq!(errno(fs.open(old_ino, READ_WRITE)), libc::EPERM);
    // Kept for history while the store's retention lasts; freed by a gc under none.
    assert_eq!(meta.gc().unwrap().history, 1);
    assert_eq!(names(&fs, objects).len(), 2);
    meta.set_history_retention(std::time::Duration::ZERO)
        .unwrap();
    meta.gc().unwrap();
    assert_eq!(names(&fs, objects), [obj.content.to_string()]);
}

#[test]
fn truncate_by_path_and_by_handle() {
    let tmp = tempfile::tempdir().unwrap();
    let fs = core(tmp.path());
    let job = job_dir(&fs, DatasetId::random(), "k", 0);
    let ino = write_file(&fs, job, "t", b"hello world");
    let set = SetAttr {
        size: Some(5),
        ..SetAttr::default()
    };
    assert_eq!(fs.setattr(ino, None, set).unwrap().size, 5);
    assert_eq!(read_all(&fs, ino), b"hello");
    let opened = fs.open(ino, TRUNCATE).unwrap();
    assert_eq!(fs.getattr(ino).unwrap().size, 0);
    let grow = SetAttr {
        size: Some(3),
        ..SetAttr::default()
    };
    fs.setattr(ino, Some(opened.fh), grow).unwrap();
    fs.release(opened.fh).unwrap();
    assert_eq!(read_all(&fs, ino), [0, 0, 0]);
}

#[test]
fn writers_share_one_working_copy_and_readers_keep_their_version() {
    let tmp = tempfile::tempdir().unwrap();
    let fs = core(tmp.path());
    let job = job_dir(&fs, DatasetId::random(), "k", 0);
    let ino = write_file(&fs, job, "f", &[b'.'; 10]);
    let reader = fs.open(ino, OpenFlags::default()).unwrap();
    let w1 = fs.open(ino, READ_WRITE).unwrap();
    let w2 = fs.open(ino, READ_WRITE).unwrap();
    assert!(w1.direct_io && w2.direct_io && reader.direct_io);
    fs.write(w1.fh, 0, b"AAAA").unwrap();
    fs.write(w2.fh, 2, b"BBBB").unwrap();
    // Both writers see the one copy, as on a local disk; the reader its version.
    assert_eq!(&*fs.read(w1.fh, 0, 64).unwrap(), b"AABBBB....");
    assert_eq!(&*fs.read(w2.fh, 0, 64).unwrap(), b"AABBBB....");
    assert_eq!(&*fs.read(reader.fh, 0, 64).unwrap(), b"..........");
    fs.flush(w1.fh).unwrap();
    assert_eq!(
        read_all(&fs, ino),
        b"AABBBB....",
        "a close commits the copy as it is"
    );
    fs.write(w2.fh, 9, b"!").unwrap();
    fs.release(w1.fh).unwrap();
    fs.release(w2.fh).unwrap();
    assert_eq!(read_all(&fs, ino), b"AABBBB...!");
    assert_eq!(
        &*fs.read(reader.fh, 0, 64).unwrap(),
        b"..........",
        "a reader keeps the version it opened"
    );
    let late = fs.open(ino, OpenFlags::default()).unwrap();
    assert_eq!(&*fs.read(late.fh, 0, 64).unwrap(), b"AABBBB...!");
    assert!(
        late.direct_io && !late.keep_cache,
        "no page cache shared between versions"
    );
    fs.release(reader.fh).unwrap();
    fs.release(late.fh).unwrap();
}

#[test]
fn unlinked_while_open_commits_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let fs = core(tmp.path());
    let job = job_dir(&fs, DatasetId::random(), "k", 0);
    let (attr, opened) = fs.create(job, "gone").unwrap();
    fs.write(opened.fh, 0, b"bytes").unwrap();
    assert_eq!(
        names(&fs, job),
        ["gone"],
        "a created file is visible before its commit"
    );
    fs.unlink(job, "gone").unwrap();
    // Still there for its handle: fstat shows it with no link, reads see the bytes.
    let orphan = fs.getattr(attr.ino).unwrap();
    assert_eq!((orphan.nlink, orphan.size), (0, 5));
    assert_eq!(&*fs.read(opened.fh, 0, 10).unwrap(), b"bytes");
    fs.release(opened.fh).unwrap();
    assert_eq!(errno(fs.getattr(attr.ino)), libc::ENOENT);
    assert!(names(&fs, job).is_empty());
    assert_eq!(errno(fs.release(Fh(opened.fh.0))), libc::EBADF);
}

#[test]
fn xattrs_are_rows() {
    let tmp = tempfile::tempdir().unwrap();
    let fs = core(tmp.path());
    let ds = DatasetId::random();
    let job = job_dir(&fs, ds, "k", 0);
    let ino = write_file(&fs, job, "f.csv", b"a,b\n1,2\n");
    let get = |name: &str| match fs.getxattr(ino, name, 65536).unwrap() {
        XattrReply::Data(d) => String::from_utf8(d).unwrap(),
        XattrReply::Size(_) => panic!("data expected"),
    };
    assert_eq!(get("user.cronus.size"), "8");
    assert_eq!(get("user.cronus.type"), "CSV");
    let none = XattrFlags::default();
    fs.setxattr(ino, "user.quality", b"10", none).unwrap();
    fs.setxattr(ino, "user.owner", b"team a", none).unwrap();
    assert_eq!(get("user.quality"), "10");
    // An integer row, as a lift sees it.
    let meta = fs.metastore();
    let obj = &meta.list(ds, "", "").unwrap()[0];
    let rows = meta.node_rows(&obj.id.iden()).unwrap();
    let q = rows.iter().find(|r| r.prop == "quality").unwrap();
    assert_eq!(q.valu, cronusfs::storage::Valu::Int(10));
    // Probe, exact fit, too small, missing.
    assert_eq!(
        fs.getxattr(ino, "user.owner", 0).unwrap(),
        XattrReply::Size(6)
    );
    assert_eq!(errno(fs.getxattr(ino, "user.owner", 3)), libc::ERANGE);
    assert_eq!(errno(fs.getxattr(ino, "user.nope", 10)), libc::ENODATA);
    assert_eq!(
        errno(fs.getxattr(ino, "security.capability", 10)),
        libc::ENODATA
    );
    assert_eq!(errno(fs.getxattr(ino, "trusted.x", 10)), libc::ENOTSUP);
    assert_eq!(
        errno(fs.setxattr(ino, "trusted.x", b"1", none)),
        libc::ENOTSUP
    );
    // System rows are read-only.
    assert_eq!(
        errno(fs.setxattr(ino, "user.cronus.size", b"1", none)),
        libc::EPERM
    );
    assert_eq!(errno(fs.removexattr(ino, "user.cronus.size")), libc::EPERM);
    assert_eq!(
        errno(fs.setxattr(ino, "user.big", &vec![b'v'; 65537], none)),
        libc::E2BIG
    );
    let create = XattrFlags {
        create: true,
        replace: false,
    };
    let replace = XattrFlags {
        create: false,
        replace: true,
    };
    assert_eq!(
        errno(fs.setxattr(ino, "user.quality", b"1", create)),
        libc::EEXIST
    );
    assert_eq!(
        errno(fs.setxattr(ino, "user.fresh", b"1", replace)),
        libc::ENODATA
    );
    // The list holds both kinds, NUL-terminated.
    let XattrReply::Data(list) = fs.listxattr(ino, 65536).unwrap() else {
        panic!()
    };
    let list = String::from_utf8(list).unwrap();
    assert!(
        list.contains("user.quality\0") && list.contains("user.cronus.content\0"),
        "{list}"
    );
    assert_eq!(
        fs.listxattr(ino, 0).unwrap(),
        XattrReply::Size(list.len() as u32)
    );
    fs.removexattr(ino, "user.quality").unwrap();
    assert_eq!(errno(fs.removexattr(ino, "user.quality")), libc::ENODATA);
    // Datasets, partitions and jobs have rows too.
    let datasets = fs.lookup(Ino::ROOT, "datasets").unwrap().ino;
    let d = fs.lookup(datasets, &ds.to_string()).unwrap().ino;
    fs.setxattr(d, "user.project", b"census", none).unwrap();
    fs.setxattr(job, "user.worker", b"w1", none).unwrap();
    assert_eq!(
        fs.getxattr(job, "user.cronus.kind", 100).unwrap(),
        XattrReply::Data(b"job".to_vec())
    );
    // A row set outside the mount (the daemon runs CLI commands this way) shows up as an
    // attribute, also right after the node's attributes were read and cached.
    assert_eq!(get("user.owner"), "team a");
    fs.run_external_change(|| meta.set_node_row(&obj.id.iden(), "from_cli", &"yes".into(), false))
        .unwrap();
    assert_eq!(get("user.from_cli"), "yes");
}

#[test]
fn attributes_of_a_pending_file_land_with_its_first_commit() {
    let tmp = tempfile::tempdir().unwrap();
    let fs = core(tmp.path());
    let job = job_dir(&fs, DatasetId::random(), "k", 0);
    let (attr, opened) = fs.create(job, "p").unwrap();
    let t = std::time::UNIX_EPOCH + std::time::Duration::from_secs(1_000_000);
    let set = SetAttr {
        mode: Some(0o600),
        mtime: Some(t),
        uid: Some(7),
        ..SetAttr::default()
    };
    // The write first: one after the set mtime would move it on, as on a local disk.
    fs.write(opened.fh, 0, b"data").unwrap();
    fs.setattr(attr.ino, Some(opened.fh), set).unwrap();
    fs.setxattr(attr.ino, "user.tag", b"early", XattrFlags::default())
        .unwrap();
    fs.release(opened.fh).unwrap();
    let a = fs.getattr(attr.ino).unwrap();
    assert_eq!(
        (a.perm, a.uid, a.gid, a.size, a.mtime),
        (0o600, 7, 1000, 4, t)
    );
    assert_eq!(
        fs.getxattr(attr.ino, "user.tag", 100).unwrap(),
        XattrReply::Data(b"early".to_vec())
    );
}

#[test]
fn read_only_refuses_changes_with_erofs() {
    let tmp = tempfile::tempdir().unwrap();
    let meta = Metastore::new(MemoryStore::new());
    let ds = DatasetId::random();
    meta.create_dataset(ds).unwrap();
    let mut o = options(tmp.path());
    o.read_only = true;
    let fs = FsCore::new(meta, o).unwrap();
    let datasets = fs.lookup(Ino::ROOT, "datasets").unwrap().ino;
    assert_eq!(
        errno(fs.mkdir(datasets, &DatasetId::random().to_string())),
        libc::EROFS
    );
    let d = fs.lookup(datasets, &ds.to_string()).unwrap();
    assert_eq!(d.perm, 0o555);
    assert_eq!(
        errno(fs.setxattr(d.ino, "user.x", b"1", XattrFlags::default())),
        libc::EROFS
    );
}

#[test]
fn everything_survives_a_reopen_on_rocksdb() {
    let tmp = tempfile::tempdir().unwrap();
    let store = tmp.path().join("store");
    let ds = DatasetId::random();
    let bytes = pattern(2_500_000, 9);
    {
        let fs = FsCore::new(
            Metastore::new(RocksStore::create(&store).unwrap()),
            options(tmp.path()),
        )
        .unwrap();
        let job = job_dir(&fs, ds, "k", 0);
        write_file(&fs, job, "big", &bytes);
        let ino = fs.lookup(job, "big").unwrap().ino;
        fs.setxattr(ino, "user.n", b"5", XattrFlags::default())
            .unwrap();
    }
    let fs = FsCore::new(
        Metastore::new(RocksStore::open(&store).unwrap()),
        options(tmp.path()),
    )
    .unwrap();
    let job = job_dir(&fs, ds, "k", 0);
    let ino = fs.lookup(job, "big").unwrap().ino;
    assert!(read_all(&fs, ino) == bytes);
    assert_eq!(
        fs.getxattr(ino, "user.n", 10).unwrap(),
        XattrReply::Data(b"5".to_vec())
    );
}

#[test]
fn folders_inside_a_job_directory_hold_objects() {
    let tmp = tempfile::tempdir().unwrap();
    let fs = core(tmp.path());
    let ds = DatasetId::random();
    let job = job_dir(&fs, ds, "k", 0);
    let sub = fs.mkdir(job, "sub").unwrap();
    assert_eq!(sub.kind, Kind::Dir);
    assert_eq!(errno(fs.mkdir(job, "sub")), libc::EEXIST);
    let deeper = fs.mkdir(sub.ino, "deeper").unwrap().ino;
    let f = write_file(&fs, deeper, "f.txt", b"nested");
    write_file(&fs, job, "top", b"t");
    assert_eq!(names(&fs, job), ["sub", "top"]);
    assert_eq!(names(&fs, sub.ino), ["deeper"]);
    assert_eq!(names(&fs, deeper), ["f.txt"]);
    assert_eq!(fs.parent_of(deeper).unwrap(), sub.ino);
    assert_eq!(read_all(&fs, f), b"nested");
    let obj = &fs.metastore().list(ds, "", "").unwrap();
    assert!(obj.iter().any(|o| o.path.name == "sub/deeper/f.txt"));
    assert_eq!(errno(fs.rmdir(job, "sub")), libc::ENOTEMPTY);
    assert_eq!(errno(fs.create(job, "sub")), libc::EEXIST);
    // Objects move in and out of folders.
    fs.rename(deeper, "f.txt", job, "f.txt", false).unwrap();
    fs.rename(job, "top", sub.ino, "top", false).unwrap();
    assert_eq!(names(&fs, deeper), Vec::<String>::new());
    assert_eq!(names(&fs, sub.ino), ["deeper", "top"]);
    fs.rmdir(sub.ino, "deeper").unwrap();
    fs.unlink(sub.ino, "top").unwrap();
    fs.rmdir(job, "sub").unwrap();
    assert_eq!(names(&fs, job), ["f.txt"]);
    // A job with a folder is not empty.
    fs.mkdir(job, "keep").unwrap();
    fs.unlink(job, "f.txt").unwrap();
    let jobs = fs.parent_of(job).unwrap();
    assert_eq!(errno(fs.rmdir(jobs, "0")), libc::ENOTEMPTY);
}

#[test]
fn a_cached_listing_never_outlives_a_change() {
    let tmp = tempfile::tempdir().unwrap();
    let fs = core(tmp.path());
    let job = job_dir(&fs, DatasetId::random(), "k", 0);
    let list = |fs: &FsCore<MemoryStore>| {
        let fh = fs.opendir(job).unwrap();
        let entries = fs
            .readdir_at(job, fh, 0, &cronusfs::fs::Caller::root())
            .unwrap()
            .entries;
        fs.releasedir(fh);
        entries
            .iter()
            .map(|e| (e.name.clone(), e.attr.size))
            .collect::<Vec<_>>()
    };
    assert!(list(&fs).is_empty());
    write_file(&fs, job, "a", b"12345");
    assert_eq!(list(&fs), [("a".to_string(), 5)]);
    assert_eq!(list(&fs), [("a".to_string(), 5)], "served again");
    let a = fs.lookup(job, "a").unwrap().ino;
    let opened = fs.open(a, READ_WRITE).unwrap();
    fs.write(opened.fh, 5, b"678").unwrap();
    assert_eq!(
        list(&fs),
        [("a".to_string(), 8)],
        "an uncommitted write shows"
    );
    fs.release(opened.fh).unwrap();
    fs.rename(job, "a", job, "b", false).unwrap();
    assert_eq!(list(&fs), [("b".to_string(), 8)]);
    fs.unlink(job, "b").unwrap();
    assert!(list(&fs).is_empty());
}

#[test]
fn streamed_writes_survive_a_gc_before_their_commit() {
    let tmp = tempfile::tempdir().unwrap();
    let fs = core(tmp.path());
    let job = job_dir(&fs, DatasetId::random(), "k", 0);
    let bytes = pattern((5 << 20) + 123, 4);
    let (attr, opened) = fs.create(job, "streamed").unwrap();
    for piece in bytes.chunks(128 * 1024) {
        let at = fs.getattr(attr.ino).unwrap().size;
        fs.write(opened.fh, at, piece).unwrap();
    }
    // Five full chunks are stored and referenced by nothing yet: gc must leave them.
    let report = fs.metastore().gc().unwrap();
    assert_eq!(report.chunks, 0, "{report:?}");
    fs.release(opened.fh).unwrap();
    assert!(read_all(&fs, attr.ino) == bytes);
    assert!(
        fs.metastore()
            .content()
            .verify(
                fs.metastore()
                    .list(fs.metastore().datasets().unwrap()[0], "", "")
                    .unwrap()[0]
                    .content
            )
            .unwrap()
            .is_empty()
    );
    // An abandoned stream's chunks are garbage again.
    let (_, opened) = fs.create(job, "abandoned").unwrap();
    fs.write(opened.fh, 0, &pattern(3 << 20, 9)).unwrap();
    fs.unlink(job, "abandoned").unwrap();
    fs.release(opened.fh).unwrap();
    let report = fs.metastore().gc().unwrap();
    assert_eq!(report.chunks, 3, "{report:?}");
}

#[test]
fn made_nodes_belong_to_their_maker() {
    use cronusfs::fs::Creator;
    use cronusfs::meta::{JobId, ObjectPath};
    let tmp = tempfile::tempdir().unwrap();
    let fs = core(tmp.path());
    let ds = DatasetId::random();
    let job = job_dir(&fs, ds, "k", 0);
    let by = Creator {
        uid: 7,
        gid: 8,
        mode: 0o600,
    };
    let flags = cronusfs::fs::CreateFlags {
        exclusive: true,
        read: false,
        open: TRUNCATE,
    };
    let (attr, opened) = fs.create_as(job, "mine", by, flags).unwrap();
    assert_eq!((attr.uid, attr.gid, attr.perm), (7, 8, 0o600));
    fs.release(opened.fh).unwrap();
    let kept = fs.getattr(attr.ino).unwrap();
    assert_eq!((kept.uid, kept.gid, kept.perm), (7, 8, 0o600));
    // A maker who is the mount's owner, asking for the default mode, writes no rows.
    let plain = Creator {
        uid: 1000,
        gid: 1000,
        mode: 0o755,
    };
    let sub = fs.mkdir_as(job, "sub", plain).unwrap();
    assert_eq!((sub.uid, sub.perm), (1000, 0o755));
    let iden = Metastore::<MemoryStore>::folder_iden(&ObjectPath::new(ds, "k", JobId(0), "sub"));
    let rows = fs.metastore().node_rows(&iden.unwrap()).unwrap();
    assert!(
        rows.iter()
            .all(|r| !["cronus:mode", "cronus:uid", "cronus:gid"].contains(&r.prop.as_str()))
    );
}
