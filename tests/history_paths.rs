//! The past as paths (issue 23): `at/<T>/` and `snapshots/<name>/` in the filesystem core and
//! through a real mount, on RocksDB and on PostgreSQL + S3: the tree as it was (names, bytes,
//! modes, rows, query views), read-only, with ENOENT for times outside history; snapshots of
//! the store and of one dataset, which gc keeps whatever the retention.

use std::time::Duration;

use cronusfs::fs::{FsCore, Ino, OpenFlags, SetAttr, XattrFlags, XattrReply};
use cronusfs::meta::{DatasetId, MetaError, Metastore};
use cronusfs::storage::history::show_micros;
use cronusfs::storage::{RocksStore, Storage, StorageError};

use crate::fs_core::{errno, job_dir, options, read_all, write_file};

/// Returns the store's settled clock now (µs).
fn now<S: Storage>(fs: &FsCore<S>) -> i64 {
    fs.metastore().storage().history_bounds().unwrap().now
}

/// Walks `names` down from `ino`.
fn walk<S: Storage>(fs: &FsCore<S>, mut ino: Ino, names: &[impl AsRef<str>]) -> Ino {
    for name in names {
        let name = name.as_ref();
        ino = fs
            .lookup(ino, name)
            .unwrap_or_else(|e| panic!("{name}: {e}"))
            .ino;
    }
    ino
}

/// Returns the names in directory `ino`.
fn names<S: Storage>(fs: &FsCore<S>, ino: Ino) -> Vec<String> {
    let mut names: Vec<String> = fs
        .readdir(ino)
        .unwrap()
        .into_iter()
        .map(|e| e.name)
        .collect();
    names.sort();
    names
}

/// Replaces the bytes of file `name` in directory `dir` (`O_TRUNC`, as a shell's `>` does).
fn overwrite<S: Storage>(fs: &FsCore<S>, dir: Ino, name: &str, bytes: &[u8]) {
    let ino = fs.lookup(dir, name).unwrap().ino;
    let truncate = OpenFlags {
        write: true,
        truncate: true,
    };
    let opened = fs.open(ino, truncate).unwrap();
    assert_eq!(fs.write(opened.fh, 0, bytes).unwrap(), bytes.len());
    fs.flush(opened.fh).unwrap();
    fs.release(opened.fh).unwrap();
}

fn xattr<S: Storage>(fs: &FsCore<S>, ino: Ino, name: &str) -> Option<String> {
    match fs.getxattr(ino, name, 65536) {
        Ok(XattrReply::Data(d)) => Some(String::from_utf8(d).unwrap()),
        Ok(XattrReply::Size(_)) => unreachable!("asked for the value"),
        Err(e) if e.errno() == libc::ENODATA => None,
        Err(e) => panic!("{name}: {e}"),
    }
}

/// The path of a job directory from the root, by names.
fn job_path(ds: DatasetId) -> [String; 6] {
    let ds = ds.to_string();
    ["datasets", &ds, "partitions", "k", "jobs", "0"].map(String::from)
}

#[test]
fn the_tree_at_a_time_is_the_catalogue_then_and_read_only() {
    let dir = tempfile::tempdir().unwrap();
    let store = RocksStore::create(&dir.path().join("store")).unwrap();
    let fs = FsCore::new(Metastore::new(store), options(dir.path())).unwrap();
    let ds = DatasetId::random();
    let job = job_dir(&fs, ds, "k", 0);
    let a = write_file(&fs, job, "a.txt", b"one\n");
    fs.setxattr(a, "user.q", b"1", XattrFlags::default())
        .unwrap();
    let t1 = now(&fs);
    overwrite(&fs, job, "a.txt", b"two, longer\n");
    fs.setxattr(a, "user.q", b"2", XattrFlags::default())
        .unwrap();
    let chmod = SetAttr {
        mode: Some(0o600),
        ..SetAttr::default()
    };
    fs.setattr(a, None, chmod).unwrap();
    write_file(&fs, job, "b.txt", b"new\n");

    let at = fs.lookup(Ino::ROOT, "at").unwrap().ino;
    let then = fs.lookup(at, &show_micros(t1)).unwrap().ino;
    assert!(
        !names(&fs, Ino::ROOT).contains(&"at".to_string()),
        "never listed"
    );
    assert!(names(&fs, at).is_empty(), "at/ lists nothing");
    // No `objects/`: it would be the content store as it is now.
    assert_eq!(names(&fs, then), ["configs", "datasets", "menus", "query"]);
    assert_eq!(errno(fs.lookup(then, "objects")), libc::ENOENT);
    let path = job_path(ds);
    let past_job = walk(&fs, then, &path);
    assert_eq!(names(&fs, past_job), ["a.txt"]);
    let past_a = fs.lookup(past_job, "a.txt").unwrap();
    assert_eq!((past_a.size, past_a.perm & 0o777), (4, 0o644));
    assert_eq!(read_all(&fs, past_a.ino), b"one\n");
    assert_eq!(xattr(&fs, past_a.ino, "user.q").as_deref(), Some("1"));
    assert_eq!(
        read_all(&fs, a),
        b"two, longer\n",
        "the live tree is today's"
    );
    assert_eq!(errno(fs.lookup(past_job, "b.txt")), libc::ENOENT);
    // A query view at T evaluates the rows as they were then.
    let q1 = walk(&fs, then, &["query", "q=1"]);
    assert_eq!(names(&fs, q1).len(), 1, "a.txt, by its Cronus name");
    let q2 = walk(&fs, then, &["query", "q=2"]);
    assert!(names(&fs, q2).is_empty());
    // Looked up again, one spelling is one tree; another spelling of the time is another.
    assert_eq!(fs.lookup(at, &show_micros(t1)).unwrap().ino, then);
    let spelled = show_micros(t1).replace('Z', "+00:00");
    let again = fs.lookup(at, &spelled).unwrap().ino;
    assert_ne!(again, then);
    let again_a = walk(&fs, again, &path);
    assert_eq!(
        read_all(&fs, fs.lookup(again_a, "a.txt").unwrap().ino),
        b"one\n"
    );
    // `..` of a tree's root is `at/`, whose own is the root.
    assert_eq!(fs.parent_of(then).unwrap(), at);
    assert_eq!(fs.parent_of(at).unwrap(), Ino::ROOT);
    assert_eq!(fs.parent_of(past_job).unwrap(), walk(&fs, then, &path[..5]));

    // Every change is EROFS.
    let erofs = libc::EROFS;
    assert_eq!(errno(fs.create(past_job, "c.txt")), erofs);
    assert_eq!(errno(fs.mkdir(past_job, "sub")), erofs);
    assert_eq!(errno(fs.mkdir(at, "sub")), erofs);
    assert_eq!(errno(fs.unlink(past_job, "a.txt")), erofs);
    assert_eq!(
        errno(fs.setxattr(past_a.ino, "user.q", b"3", XattrFlags::default())),
        erofs
    );
    assert_eq!(errno(fs.removexattr(past_a.ino, "user.q")), erofs);
    let truncate = SetAttr {
        size: Some(0),
        ..SetAttr::default()
    };
    assert_eq!(errno(fs.setattr(past_a.ino, None, truncate)), erofs);
    assert_eq!(
        errno(fs.rename(past_job, "a.txt", past_job, "c.txt", false)),
        erofs
    );
    assert_eq!(
        errno(fs.rename(job, "a.txt", past_job, "a.txt", false)),
        erofs
    );
    assert_eq!(
        errno(fs.rename(past_job, "a.txt", job, "c.txt", false)),
        erofs
    );
    let write = OpenFlags {
        write: true,
        truncate: false,
    };
    assert_eq!(errno(fs.open(past_a.ino, write)), erofs);
    let truncate_only = OpenFlags {
        write: false,
        truncate: true,
    };
    assert_eq!(errno(fs.open(past_a.ino, truncate_only)), erofs);
    assert_eq!(errno(fs.mknod(past_job)), erofs);
    assert_eq!(errno(fs.mknod(at)), erofs);
    assert_eq!(errno(fs.mknod(job)), libc::EPERM);
    assert_eq!(read_all(&fs, a), b"two, longer\n", "nothing changed");

    // Not a time, in the future, before history began: ENOENT.
    for name in ["yesterday", "2999-01-01T00:00:00Z", "2001-01-01T00:00:00Z"] {
        assert_eq!(errno(fs.lookup(at, name)), libc::ENOENT, "{name}");
    }
    let snapshots = fs.lookup(Ino::ROOT, "snapshots").unwrap().ino;
    assert_eq!(errno(fs.lookup(snapshots, "none")), libc::ENOENT);
}

/// A store with two datasets, a snapshot of the whole store and one of the first dataset,
/// then versions and retention 0 for gc: what the snapshots show stays, byte-exact, what only
/// the window kept goes.
fn snapshots_keep_what_they_show<S: Storage>(fs: &FsCore<S>) {
    let m = fs.metastore();
    let (ds1, ds2) = (DatasetId::random(), DatasetId::random());
    let (job1, job2) = (job_dir(fs, ds1, "k", 0), job_dir(fs, ds2, "k", 0));
    let first = crate::content::bytes(3 << 20, 1);
    let a = write_file(fs, job1, "a.bin", &first);
    write_file(fs, job2, "b.txt", b"other dataset\n");
    let whole = m.create_snapshot("whole", None, None).unwrap();
    m.create_snapshot("one", None, Some(ds1)).unwrap();
    assert!(matches!(
        m.create_snapshot("one", None, None),
        Err(MetaError::SnapshotExists(_))
    ));
    assert!(matches!(
        m.create_snapshot("later", Some(now(fs) + 3_600_000_000), None),
        Err(MetaError::Storage(StorageError::FutureTime { .. }))
    ));
    assert!(matches!(
        m.create_snapshot("nods", None, Some(DatasetId::random())),
        Err(MetaError::NoSuchDataset(_))
    ));
    overwrite(fs, job1, "a.bin", b"second\n");
    let t2 = now(fs);
    overwrite(fs, job1, "a.bin", b"third\n");
    m.set_history_retention(Duration::ZERO).unwrap();
    // Mark sets of two ids each: the dataset's snapshot is marked through sorted runs on disk.
    let report = m.gc_within(64, &mut |_, _| {}).unwrap();
    assert_eq!((report.snapshots, report.contents), (1, 1), "{report:?}");

    let snaps = fs.lookup(Ino::ROOT, "snapshots").unwrap().ino;
    assert_eq!(names(fs, snaps), ["one", "whole"]);
    // A snapshot's rows are the daemons' own: no view of them in `query/`.
    let query = fs.lookup(Ino::ROOT, "query").unwrap().ino;
    let views = names(fs, query);
    assert!(
        views.iter().all(|v| !v.starts_with("cronusfs:")),
        "{views:?}"
    );
    let root = fs.lookup(snaps, "whole").unwrap().ino;
    let path = job_path(ds1);
    let past_job = walk(fs, root, &path);
    assert_eq!(
        read_all(fs, fs.lookup(past_job, "a.bin").unwrap().ino),
        first
    );
    assert_eq!(names(fs, walk(fs, root, &["datasets"])).len(), 2);
    // The snapshot of one dataset shows that dataset only, and no contents by id.
    let one = fs.lookup(snaps, "one").unwrap().ino;
    assert_eq!(names(fs, one), ["configs", "datasets", "menus", "query"]);
    assert_eq!(names(fs, walk(fs, one, &["datasets"])), [ds1.to_string()]);
    assert_eq!(
        errno(fs.lookup(walk(fs, one, &["datasets"]), &ds2.to_string())),
        libc::ENOENT
    );
    let q = walk(fs, one, &["query", "cronus:kind=object"]);
    assert_eq!(
        names(fs, q).len(),
        1,
        "the view shows the dataset's object only"
    );
    // The window kept nothing: the second version's time is refused.
    let at = fs.lookup(Ino::ROOT, "at").unwrap().ino;
    assert_eq!(errno(fs.lookup(at, &show_micros(t2))), libc::ENOENT);
    assert_eq!(read_all(fs, a), b"third\n");
    assert!(m.storage().check_indexes().unwrap().is_empty());
    // Removed, its contents go at the next gc, and its tree answers ENOENT (after the second
    // a tree trusts its snapshot for).
    assert_eq!(m.remove_snapshot("whole").unwrap(), whole);
    std::thread::sleep(Duration::from_millis(1100));
    assert_eq!(errno(fs.getattr(past_job)), libc::ENOENT);
    assert!(matches!(
        m.remove_snapshot("whole"),
        Err(MetaError::NoSuchSnapshot(_))
    ));
    assert_eq!(
        m.gc().unwrap().snapshots,
        1,
        "the dataset's snapshot keeps it"
    );
    m.remove_snapshot("one").unwrap();
    let report = m.gc().unwrap();
    assert_eq!((report.snapshots, report.contents), (0, 1), "{report:?}");
    assert_eq!(names(fs, snaps), Vec::<String>::new());
}

#[test]
fn snapshots_keep_what_they_show_on_rocksdb() {
    let dir = tempfile::tempdir().unwrap();
    let store = RocksStore::create(&dir.path().join("store")).unwrap();
    let fs = FsCore::new(Metastore::new(store), options(dir.path())).unwrap();
    snapshots_keep_what_they_show(&fs);
}

#[test]
fn snapshots_keep_what_they_show_on_postgres_and_s3() {
    let dir = tempfile::tempdir().unwrap();
    let (_url, open) = crate::shared_store::pg_s3_store();
    let fs = FsCore::new(open(), options(dir.path())).unwrap();
    snapshots_keep_what_they_show(&fs);
}

/// A core over a new RocksDB store in `dir` with one file; the time after it, and `at/`.
fn one_file(dir: &std::path::Path) -> (FsCore<RocksStore>, i64, Ino) {
    let store = RocksStore::create(&dir.join("store")).unwrap();
    let fs = FsCore::new(Metastore::new(store), options(dir)).unwrap();
    let job = job_dir(&fs, DatasetId::random(), "k", 0);
    write_file(&fs, job, "a.txt", b"one\n");
    let t = now(&fs);
    let at = fs.lookup(Ino::ROOT, "at").unwrap().ino;
    (fs, t, at)
}

/// The slot of a tree of the past that number `ino` belongs to (see `fs/past.rs`).
fn slot(ino: Ino) -> u64 {
    (ino.0 & !(1 << 63)) >> 32
}

#[test]
fn trees_of_the_past_are_numbered_apart_and_dropped_only_when_idle() {
    let dir = tempfile::tempdir().unwrap();
    let (fs, t, at) = one_file(dir.path());
    let first = fs.lookup(at, &show_micros(t)).unwrap().ino;
    // Lookups that fail (a time in the future) use no slot: a hostile caller cannot run the
    // numbers out, or make two trees share them.
    for i in 0..2000 {
        let future = show_micros(now(&fs) + 3_600_000_000 + i);
        assert_eq!(errno(fs.lookup(at, &future)), libc::ENOENT);
    }
    let second = fs.lookup(at, &show_micros(t - 1)).unwrap().ino;
    assert_eq!((slot(first), slot(second)), (1, 2));
    // A directory open (not yet read) keeps its tree while 1,100 others are made and dropped.
    let datasets = fs.lookup(first, "datasets").unwrap().ino;
    let fh = fs.opendir(datasets).unwrap();
    for i in 2..1100 {
        fs.lookup(at, &show_micros(t - i)).unwrap();
    }
    let listed = fs
        .readdir_at(datasets, fh, 0, &cronusfs::fs::Caller::root())
        .unwrap();
    assert_eq!(listed.entries.len(), 1);
    fs.releasedir(fh);
    // An idle tree was dropped: its numbers answer ENOENT; its name makes it again.
    assert_eq!(errno(fs.getattr(second)), libc::ENOENT);
    assert!(fs.lookup(at, &show_micros(t - 1)).is_ok());
    // A snapshot's name cannot hold what breaks `snapshot ls` lines.
    assert!(matches!(
        fs.metastore().create_snapshot("a\tb", None, None),
        Err(MetaError::BadName { .. })
    ));
}

#[test]
fn a_tree_whose_time_gc_dropped_answers_enoent() {
    let dir = tempfile::tempdir().unwrap();
    let (fs, t, at) = one_file(dir.path());
    let then = fs.lookup(at, &show_micros(t)).unwrap().ino;
    let datasets = fs.lookup(then, "datasets").unwrap().ino;
    fs.metastore()
        .set_history_retention(Duration::ZERO)
        .unwrap();
    fs.metastore().gc().unwrap();
    // Not an empty directory: ENOENT before anything is listed.
    assert_eq!(errno(fs.getattr(then)), libc::ENOENT);
    assert_eq!(errno(fs.opendir(datasets)), libc::ENOENT);
    assert_eq!(errno(fs.lookup(at, &show_micros(t))), libc::ENOENT);
}

/// gc prunes what no kept time reads: a version dead before the floor goes, one a snapshot
/// saw stays, and so do the commit records only after the floor.
fn gc_prunes_what_no_kept_time_reads<S: Storage>(m: &Metastore<S>) {
    use cronusfs::meta::ObjectPath;
    use cronusfs::storage::Valu;
    let (ds, _, _) = crate::metastore::dataset(m, &["k"]);
    let job = m.new_job(ds).unwrap();
    let path = ObjectPath::new(ds, "k", job, "a.txt");
    let put = |bytes: &[u8]| m.put_object(&path, &mut &bytes[..], &mut |_| {}).unwrap();
    let v1 = put(b"one\n").content;
    let snap = m.create_snapshot("s", None, None).unwrap();
    let v2 = put(b"two\n").content;
    let v3 = put(b"three\n").content;
    let id = m.object(&path).unwrap().id;
    let contents = || -> Vec<String> {
        let versions = m.storage().row_versions(&id.iden()).unwrap();
        (versions.into_iter())
            .filter(|v| v.row.prop == "cronus:content")
            .map(|v| v.row.valu.to_string())
            .collect()
    };
    assert_eq!(contents(), [v1, v2, v3].map(|c| c.to_string()));
    m.set_history_retention(Duration::ZERO).unwrap();
    let report = m.gc().unwrap();
    assert!(report.pruned > 0, "{report:?}");
    assert_eq!(
        contents(),
        [v1, v3].map(|c| c.to_string()),
        "v2 went, v1 a snapshot saw"
    );
    assert_eq!((report.contents, report.snapshots), (1, 1), "{report:?}");
    let then = m.snapshot_view(&snap).unwrap();
    assert_eq!(crate::metastore::read_all(&then, &path), b"one\n");
    assert_eq!(crate::metastore::read_all(m, &path), b"three\n");
    let floor = m.storage().history_bounds().unwrap().floor;
    assert!(m.storage().commits(0, floor).unwrap().is_empty());
    assert!(m.storage().check_indexes().unwrap().is_empty());
    // Another gc finds nothing more to prune; the live rows are whole.
    assert_eq!(m.gc().unwrap().pruned, 0);
    let rows = m.node_rows(&id.iden()).unwrap();
    assert!(
        rows.iter()
            .any(|r| r.prop == "cronus:version" && r.valu == Valu::Int(3))
    );
}

#[test]
fn gc_prunes_what_no_kept_time_reads_on_rocksdb() {
    let dir = tempfile::tempdir().unwrap();
    let store = RocksStore::create(&dir.path().join("store")).unwrap();
    gc_prunes_what_no_kept_time_reads(&Metastore::new(store));
}

#[test]
fn gc_prunes_what_no_kept_time_reads_on_postgres_and_s3() {
    let (_url, open) = crate::shared_store::pg_s3_store();
    gc_prunes_what_no_kept_time_reads(&open());
}
