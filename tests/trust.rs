//! What a careless or hostile user tries on day one (issue 9): names that spell a uuid another
//! way, job numbers past the counter's end, two creators of one new name, contents read by id
//! past an object's mode, a store readable by other users.

use std::os::unix::fs::PermissionsExt;

use cronusfs::fs::{CreateFlags, Creator, Ino, Kind, OpenFlags};
use cronusfs::meta::{DatasetId, JobId, MetaError, Metastore, ObjectId};
use cronusfs::storage::RocksStore;

use crate::fs_core::{core, errno, job_dir, read_all, write_file};

#[test]
fn a_uuid_has_one_spelling() {
    let dir = tempfile::tempdir().unwrap();
    let fs = core(dir.path());
    let datasets = fs.lookup(Ino::ROOT, "datasets").unwrap().ino;
    let canonical = "3404d4aa-57c3-4f7e-9b0e-0c1d2e3f4a5b";
    fs.mkdir(datasets, canonical).unwrap();
    for other in [
        "3404D4AA-57C3-4F7E-9B0E-0C1D2E3F4A5B",
        "3404d4aa57c34f7e9b0e0c1d2e3f4a5b",
        "{3404d4aa-57c3-4f7e-9b0e-0c1d2e3f4a5b}",
        "urn:uuid:3404d4aa-57c3-4f7e-9b0e-0c1d2e3f4a5b",
    ] {
        assert_eq!(errno(fs.mkdir(datasets, other)), libc::EINVAL, "{other}");
        assert_eq!(errno(fs.lookup(datasets, other)), libc::ENOENT, "{other}");
        assert!(matches!(
            other.parse::<DatasetId>(),
            Err(MetaError::BadName { .. })
        ));
    }
    let listed: Vec<String> = fs
        .readdir(datasets)
        .unwrap()
        .into_iter()
        .map(|e| e.name)
        .collect();
    assert_eq!(listed, [canonical]);
}

#[test]
fn job_numbers_end_where_the_cronus_counter_does() {
    let dir = tempfile::tempdir().unwrap();
    let fs = core(dir.path());
    let ds = DatasetId::random();
    let job = job_dir(&fs, ds, "k", 0);
    let jobs = fs.lookup(Ino::ROOT, "datasets").unwrap().ino;
    let jobs = [&ds.to_string()[..], "partitions", "k", "jobs"]
        .iter()
        .fold(jobs, |at, name| fs.lookup(at, name).unwrap().ino);
    for refused in ["4294967295", "2147483647", "99999999999"] {
        assert_eq!(errno(fs.mkdir(jobs, refused)), libc::EINVAL, "{refused}");
    }
    fs.mkdir(jobs, "2147483646").unwrap();
    let m = fs.metastore();
    assert!(matches!(m.new_job(ds), Err(MetaError::JobsExhausted(_))));
    assert!(matches!(
        m.open_job(ds, JobId(u32::MAX)),
        Err(MetaError::BadName { .. })
    ));
    // Everything made before is still there and usable.
    write_file(&fs, job, "still", b"fine");
    assert_eq!(m.jobs(ds).unwrap(), [JobId(0), JobId(2147483646)]);
}

fn by(uid: u32, mode: u32) -> Creator {
    Creator {
        uid,
        gid: uid,
        mode,
    }
}

const CREATE_TRUNC: CreateFlags = CreateFlags {
    exclusive: false,
    read: false,
    open: OpenFlags {
        write: true,
        truncate: true,
    },
};

#[test]
fn creating_a_name_that_another_process_just_made_opens_it() {
    let dir = tempfile::tempdir().unwrap();
    let fs = core(dir.path());
    let job = job_dir(&fs, DatasetId::random(), "k", 0);
    // Two `cp` of one new name: both looked it up before either created it.
    let (first, a) = fs
        .create_as(job, "f", by(1000, 0o644), CREATE_TRUNC)
        .unwrap();
    let (second, b) = fs
        .create_as(job, "f", by(1000, 0o600), CREATE_TRUNC)
        .unwrap();
    assert_eq!(first.ino, second.ino, "the same file");
    assert_eq!(second.perm, 0o644, "the mode of the file as it was made");
    fs.write(a.fh, 0, b"from a").unwrap();
    fs.write(b.fh, 0, b"from b, longer").unwrap();
    for h in [a, b] {
        fs.flush(h.fh).unwrap();
        fs.release(h.fh).unwrap();
    }
    let got = read_all(&fs, first.ino);
    assert!(
        got == b"from a" || got == b"from b, longer",
        "one whole copy"
    );

    // O_EXCL still gets EEXIST; a directory EISDIR; a user the mode shuts out EACCES.
    let excl = CreateFlags {
        exclusive: true,
        ..CREATE_TRUNC
    };
    assert_eq!(
        errno(fs.create_as(job, "f", by(1000, 0o644), excl)),
        libc::EEXIST
    );
    fs.mkdir(job, "sub").unwrap();
    assert_eq!(
        errno(fs.create_as(job, "sub", by(1000, 0o644), CREATE_TRUNC)),
        libc::EISDIR
    );
    assert_eq!(
        errno(fs.create_as(job, "f", by(2000, 0o666), CREATE_TRUNC)),
        libc::EACCES
    );
    let read_only = CreateFlags {
        read: true,
        open: OpenFlags::default(),
        ..CREATE_TRUNC
    };
    let (_, r) = fs.create_as(job, "f", by(2000, 0o666), read_only).unwrap();
    fs.release(r.fh).unwrap();
    assert!(
        read_all(&fs, first.ino) == got,
        "a reader truncates nothing"
    );
}

#[test]
fn contents_by_id_are_the_mount_owners_alone() {
    let dir = tempfile::tempdir().unwrap();
    let fs = core(dir.path());
    let job = job_dir(&fs, DatasetId::random(), "k", 0);
    write_file(
        &fs,
        job,
        "secret",
        b"chmod 000 does not leak through objects/",
    );
    let objects = fs.lookup(Ino::ROOT, "objects").unwrap();
    assert_eq!(
        (objects.kind, objects.perm, objects.uid),
        (Kind::Dir, 0o700, 1000)
    );
    let entries = fs.readdir(objects.ino).unwrap();
    assert_eq!(entries.len(), 1);
    assert_eq!((entries[0].attr.perm, entries[0].attr.uid), (0o400, 1000));
}

fn modes(store: &std::path::Path) -> Vec<(String, u32)> {
    let mut out = vec![(
        ".".to_string(),
        std::fs::metadata(store).unwrap().permissions().mode() & 0o777,
    )];
    for e in std::fs::read_dir(store).unwrap() {
        let e = e.unwrap();
        let mode = e.metadata().unwrap().permissions().mode() & 0o777;
        out.push((e.file_name().to_string_lossy().into_owned(), mode));
    }
    out
}

#[test]
fn a_store_is_private_to_its_owner_whatever_the_umask() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("store");
    // Made by the library under a permissive umask, with a file opened to everyone since.
    let m = Metastore::new(RocksStore::create(&store).unwrap());
    m.create_dataset(DatasetId::random()).unwrap();
    drop(m);
    std::fs::set_permissions(&store, std::fs::Permissions::from_mode(0o755)).unwrap();
    std::fs::set_permissions(
        store.join("CURRENT"),
        std::fs::Permissions::from_mode(0o644),
    )
    .unwrap();
    drop(RocksStore::open(&store).unwrap());
    for (name, mode) in modes(&store) {
        let want = if name == "." { 0o700 } else { 0o600 };
        assert_eq!(mode, want, "{name} after a reopen");
    }

    // The command line under umask 022: every file it makes is private from the start.
    let fresh = dir.path().join("fresh");
    let status = std::process::Command::new("sh")
        .arg("-c")
        .arg("umask 022 && \"$0\" init \"$1\" && \"$0\" --store \"$1\" rows add node p 1")
        .arg(env!("CARGO_BIN_EXE_cronusfs"))
        .arg(&fresh)
        .status()
        .unwrap();
    assert!(status.success());
    for (name, mode) in modes(&fresh) {
        assert_eq!(mode & 0o077, 0, "{name} is {mode:o}");
    }
}

#[test]
fn fsck_goes_on_past_damaged_files_and_names_the_objects() {
    use std::os::unix::fs::FileExt;
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("store");
    let m = Metastore::new(RocksStore::create(&store).unwrap());
    let ds = DatasetId::random();
    m.create_dataset(ds).unwrap();
    m.add_partition(ds, "k").unwrap();
    m.open_job(ds, JobId(0)).unwrap();
    for i in 0..3u8 {
        // Past 8 MiB, a content's chunks are flushed to a blob file of their own.
        let bytes = crate::content::bytes(10 << 20, i);
        let path = cronusfs::meta::ObjectPath::new(ds, "k", JobId(0), &format!("o{i}"));
        m.put_object(&path, &mut bytes.as_slice(), &mut |_| {})
            .unwrap();
    }
    drop(m);
    let mut blobs: Vec<_> = std::fs::read_dir(&store)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "blob"))
        .collect();
    blobs.sort();
    assert!(blobs.len() >= 2, "{blobs:?}");
    for blob in [&blobs[0], &blobs[blobs.len() - 1]] {
        let f = std::fs::OpenOptions::new().write(true).open(blob).unwrap();
        let len = f.metadata().unwrap().len();
        f.write_all_at(&[0x5a; 64], len / 2).unwrap();
    }
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_cronusfs"))
        .arg("--store")
        .arg(&store)
        .arg("fsck")
        .output()
        .unwrap();
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
    );
    assert_eq!(out.status.code(), Some(1), "{stdout}{stderr}");
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    let damaged: std::collections::BTreeSet<&str> = stdout
        .lines()
        .filter(|l| l.starts_with("object ") && l.contains("is damaged"))
        .map(|l| l.split_whitespace().nth(1).unwrap())
        .collect();
    assert!(
        damaged.len() >= 2,
        "two damaged objects, each named: {stdout}"
    );
}

#[test]
fn holes_cost_nothing() {
    use cronusfs::fs::SetAttr;
    use cronusfs::meta::{ContentId, content::sparse_id};
    const TIB: u64 = 1 << 40;
    let dir = tempfile::tempdir().unwrap();
    let fs = core(dir.path());
    let job = job_dir(&fs, DatasetId::random(), "k", 0);
    // `dd bs=1 count=1 seek=10G`: one byte written, ten GiB of hole before it.
    let (attr, opened) = fs
        .create_as(job, "s", by(1000, 0o644), CREATE_TRUNC)
        .unwrap();
    fs.write(opened.fh, 10 << 30, b"x").unwrap();
    fs.flush(opened.fh).unwrap();
    fs.release(opened.fh).unwrap();
    let m = fs.metastore();
    let id = id_of(&fs, attr.ino);
    let meta = m.object_by_id(id).unwrap();
    assert_eq!(meta.size, (10 << 30) + 1);
    let manifest = m.content().manifest(meta.content).unwrap();
    assert!(
        manifest.has_holes() && manifest.runs().len() == 2,
        "{manifest:?}"
    );
    assert_eq!(meta.content, sparse_id(manifest.size, manifest.runs()));
    assert_ne!(meta.content, ContentId::of(b"x"));
    let r = fs.open(attr.ino, OpenFlags::default()).unwrap();
    assert_eq!(&*fs.read(r.fh, 10 << 30, 10).unwrap(), b"x");
    assert_eq!(&*fs.read(r.fh, 5 << 30, 4).unwrap(), &[0; 4]);
    fs.release(r.fh).unwrap();
    // `truncate -s 1T`, then a write at its start: the copy keeps the holes.
    let grow = SetAttr {
        size: Some(TIB),
        ..SetAttr::default()
    };
    fs.setattr(attr.ino, None, grow).unwrap();
    let w = fs.open(attr.ino, READ_WRITE).unwrap();
    fs.write(w.fh, 0, b"head").unwrap();
    fs.release(w.fh).unwrap();
    let meta = m.object_by_id(id).unwrap();
    assert_eq!(meta.size, TIB);
    assert!(m.content().verify(meta.content).unwrap().is_empty());
    assert_eq!(read_at(&fs, attr.ino, 0, 4), b"head");
    assert_eq!(read_at(&fs, attr.ino, 10 << 30, 1), b"x");
    assert_eq!(read_at(&fs, attr.ino, TIB - 2, 8), [0, 0]);
    // The same bytes written densely (`dd if=/dev/zero` of real zeros) get the same id.
    let dense = write_file(
        &fs,
        job,
        "dense",
        &[vec![0u8; 3 << 20], b"x".to_vec()].concat(),
    );
    let sparse = {
        let (a, o) = fs
            .create_as(job, "sparse", by(1000, 0o644), CREATE_TRUNC)
            .unwrap();
        fs.write(o.fh, 3 << 20, b"x").unwrap();
        fs.release(o.fh).unwrap();
        a.ino
    };
    assert_eq!(content_of(&fs, dense), content_of(&fs, sparse));
}

const READ_WRITE: OpenFlags = OpenFlags {
    write: true,
    truncate: false,
};

fn id_of(fs: &cronusfs::fs::FsCore<cronusfs::storage::MemoryStore>, ino: Ino) -> ObjectId {
    xattr(fs, ino, "user.cronus.uuid").parse().unwrap()
}

fn xattr(
    fs: &cronusfs::fs::FsCore<cronusfs::storage::MemoryStore>,
    ino: Ino,
    name: &str,
) -> String {
    match fs.getxattr(ino, name, 4096).unwrap() {
        cronusfs::fs::XattrReply::Data(d) => String::from_utf8(d.to_vec()).unwrap(),
        other => panic!("{other:?}"),
    }
}

fn read_at(
    fs: &cronusfs::fs::FsCore<cronusfs::storage::MemoryStore>,
    ino: Ino,
    offset: u64,
    len: u32,
) -> Vec<u8> {
    let r = fs.open(ino, OpenFlags::default()).unwrap();
    let out = fs.read(r.fh, offset, len).unwrap().to_vec();
    fs.release(r.fh).unwrap();
    out
}

fn content_of(fs: &cronusfs::fs::FsCore<cronusfs::storage::MemoryStore>, ino: Ino) -> String {
    xattr(fs, ino, "user.cronus.content")
}

#[test]
fn a_pending_file_that_becomes_a_version_of_another_lands_its_rows_and_leaves_no_ghost() {
    use cronusfs::fs::SetAttr;
    let dir = tempfile::tempdir().unwrap();
    let fs = core(dir.path());
    let ds = DatasetId::random();
    let job = job_dir(&fs, ds, "k", 0);
    let (attr, o) = fs
        .create_as(job, "f", by(1000, 0o644), CREATE_TRUNC)
        .unwrap();
    let chmod = SetAttr {
        mode: Some(0o600),
        ..SetAttr::default()
    };
    fs.setattr(attr.ino, None, chmod).unwrap();
    fs.write(o.fh, 0, b"from the mount").unwrap();
    // Meanwhile the command line puts an object at the same path.
    let path = cronusfs::meta::ObjectPath::new(ds, "k", JobId(0), "f");
    let other = fs
        .metastore()
        .put_object(&path, &mut &b"from the cli"[..], &mut |_| {})
        .unwrap();
    fs.flush(o.fh).unwrap();
    fs.release(o.fh).unwrap();
    let names: Vec<String> = fs
        .readdir(job)
        .unwrap()
        .into_iter()
        .map(|e| e.name)
        .collect();
    assert_eq!(names, ["f"], "one entry, no pending ghost");
    let now = fs.lookup(job, "f").unwrap();
    assert_eq!(
        id_of(&fs, now.ino),
        other.id,
        "a new version of the other object"
    );
    assert_eq!(now.perm, 0o600, "the chmod made before the commit landed");
    assert_eq!(read_at(&fs, now.ino, 0, 64), b"from the mount");
}
