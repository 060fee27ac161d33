//! Path access to the filesystem core (`src/fs/by_path.rs`, what the Python package uses):
//! answers as a mount's, and holds nothing once a call or file is done, so a long-lived
//! process's inodes do not grow with the paths it touched.

use cronusfs::fs::{FsCore, PathReader, PathWriter};
use cronusfs::meta::DatasetId;
use cronusfs::storage::MemoryStore;

use crate::fs_core::{core, errno};

/// Makes dataset `ds` with partition `k` and job 0 through paths; returns the job's path.
fn job_path(fs: &FsCore<MemoryStore>, ds: DatasetId) -> String {
    fs.mkdir_path(&format!("datasets/{ds}")).unwrap();
    fs.mkdir_path(&format!("datasets/{ds}/partitions/k"))
        .unwrap();
    fs.mkdir_path(&format!("datasets/{ds}/partitions/k/jobs/0"))
        .unwrap();
    format!("datasets/{ds}/partitions/k/jobs/0")
}

#[test]
fn path_calls_answer_as_a_mount_and_hold_nothing_after() {
    let dir = tempfile::tempdir().unwrap();
    let fs = core(dir.path());
    let job = job_path(&fs, DatasetId::random());
    for n in 0..50 {
        let mut w = PathWriter::create(&fs, &format!("{job}/f{n}")).unwrap();
        w.write(&vec![n as u8; 3 << 19]).unwrap(); // 1.5 MiB: two chunks
        assert_eq!(w.close().unwrap().size, 3 << 19);
        fs.set_xattr_path(&format!("{job}/f{n}"), "user.n", n.to_string().as_bytes())
            .unwrap();
    }
    assert_eq!(fs.list_path(&job).unwrap().len(), 50);
    let r = PathReader::open(&fs, &format!("{job}/f7")).unwrap();
    assert_eq!(r.read(1 << 20, Some(10)).unwrap(), vec![7u8; 10]);
    assert_eq!(r.read((3 << 19) - 2, None).unwrap(), vec![7u8; 2]);
    r.close().unwrap();
    let xattrs = fs.xattrs_path(&format!("{job}/f9")).unwrap();
    assert!(xattrs.contains(&("user.n".to_string(), b"9".to_vec())));
    fs.rename_path(&format!("{job}/f1"), &format!("{job}/g1"))
        .unwrap();
    fs.remove_path(&format!("{job}/f2")).unwrap();
    assert_eq!(
        fs.census().held_inodes,
        0,
        "every walk gave back what it held"
    );
    assert_eq!(fs.census().open_handles, 0);
    // The mount's errors.
    assert_eq!(errno(fs.stat_path(&format!("{job}/f2"))), libc::ENOENT);
    assert_eq!(errno(fs.stat_path(&format!("{job}/../x"))), libc::EINVAL);
    assert_eq!(errno(PathReader::open(&fs, &job).map(drop)), libc::EISDIR);
    assert_eq!(
        errno(PathWriter::create(&fs, "datasets/x").map(drop)),
        libc::EPERM
    );
    assert_eq!(errno(fs.list_path(&format!("{job}/f3"))), libc::ENOTDIR);
    assert_eq!(fs.census().held_inodes, 0, "failed walks give back too");
}

#[test]
fn a_dropped_writer_commits_and_a_reader_keeps_its_version() {
    let dir = tempfile::tempdir().unwrap();
    let fs = core(dir.path());
    let path = format!("{}/v", job_path(&fs, DatasetId::random()));
    let mut w = PathWriter::create(&fs, &path).unwrap();
    w.write(b"first").unwrap();
    drop(w); // as a process that exits: what it wrote is committed
    let r = PathReader::open(&fs, &path).unwrap();
    let mut w = PathWriter::create(&fs, &path).unwrap();
    w.write(b"unfinished, longer").unwrap();
    // A reader opened during the write reads the committed version, at its size.
    let during = PathReader::open(&fs, &path).unwrap();
    assert_eq!(during.size(), 5);
    assert_eq!(during.read(0, None).unwrap(), b"first");
    w.close().unwrap();
    assert_eq!(r.read(0, None).unwrap(), b"first");
    assert_eq!(
        PathReader::open(&fs, &path).unwrap().read(0, None).unwrap(),
        b"unfinished, longer"
    );
    drop((r, during));
    assert_eq!(fs.census().held_inodes, 0);
    assert_eq!(fs.census().open_handles, 0);
}
