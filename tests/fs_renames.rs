//! Renames and lookups through the filesystem core: objects and folders moved within and
//! across job directories, and lookups that must see renames made past the mount.

use cronusfs::fs::{Ino, XattrFlags, XattrReply};
use cronusfs::meta::DatasetId;

use crate::fs_core::{core, errno, job_dir, names, read_all, write_file};

#[test]
fn rename_moves_replaces_and_stays_in_its_dataset() {
    let tmp = tempfile::tempdir().unwrap();
    let fs = core(tmp.path());
    let ds = DatasetId::random();
    let (a, b) = (job_dir(&fs, ds, "k1", 0), job_dir(&fs, ds, "k2", 1));
    let ino = write_file(&fs, a, "x", b"one");
    write_file(&fs, b, "y", b"two");
    fs.rename(a, "x", b, "y", true).expect_err("noreplace");
    assert_eq!(errno(fs.rename(a, "x", b, "y", true)), libc::EEXIST);
    fs.rename(a, "x", b, "y", false).unwrap();
    assert!(names(&fs, a).is_empty());
    assert_eq!(names(&fs, b), ["y"]);
    let moved = fs.lookup(b, "y").unwrap();
    assert_eq!(moved.ino, ino, "a renamed file keeps its inode");
    assert_eq!(read_all(&fs, ino), b"one");
    let meta = fs.metastore();
    let obj = &meta.list(ds, "", "").unwrap()[0];
    assert_eq!((obj.path.partition.as_str(), obj.path.job.0), ("k2", 1));
    assert!(obj.cronus_name.starts_with(&format!("{ds}.job_1.part_k2.")));
    let other = job_dir(&fs, DatasetId::random(), "k", 0);
    assert_eq!(errno(fs.rename(b, "y", other, "y", false)), libc::EXDEV);
    assert_eq!(errno(fs.rename(b, "missing", a, "z", false)), libc::ENOENT);
    // A file created and not committed yet moves too (rsync's temp file).
    let (_, opened) = fs.create(a, ".tmp.abc").unwrap();
    fs.write(opened.fh, 0, b"three").unwrap();
    fs.rename(a, ".tmp.abc", b, "y", false).unwrap();
    fs.release(opened.fh).unwrap();
    let y = fs.lookup(b, "y").unwrap().ino;
    assert_eq!(read_all(&fs, y), b"three");
    assert_eq!(names(&fs, a), Vec::<String>::new());
}

#[test]
fn folders_rename_with_everything_in_them() {
    let tmp = tempfile::tempdir().unwrap();
    let fs = core(tmp.path());
    let ds = DatasetId::random();
    let (job, other_job) = (job_dir(&fs, ds, "k", 0), job_dir(&fs, ds, "k2", 1));
    let a = fs.mkdir(job, "a").unwrap().ino;
    let b = fs.mkdir(a, "b").unwrap().ino;
    let x = write_file(&fs, a, "x", b"ex");
    let y = write_file(&fs, b, "y", b"why");
    fs.setxattr(b, "user.tag", b"kept", XattrFlags::default())
        .unwrap();
    // A file created in the folder and not committed yet moves with it.
    let (_, pending) = fs.create(b, "p").unwrap();
    fs.write(pending.fh, 0, b"pending").unwrap();
    // Refusals first: into itself, onto a file, onto a folder with entries, out of the dataset.
    assert_eq!(errno(fs.rename(job, "a", b, "inside", false)), libc::EINVAL);
    write_file(&fs, job, "file", b"f");
    assert_eq!(
        errno(fs.rename(job, "a", job, "file", false)),
        libc::ENOTDIR
    );
    let full = fs.mkdir(job, "full").unwrap().ino;
    write_file(&fs, full, "z", b"z");
    assert_eq!(
        errno(fs.rename(job, "a", job, "full", false)),
        libc::ENOTEMPTY
    );
    let elsewhere = job_dir(&fs, DatasetId::random(), "k", 0);
    assert_eq!(
        errno(fs.rename(job, "a", elsewhere, "a", false)),
        libc::EXDEV
    );
    let replaced = fs.mkdir(job, "empty").unwrap().ino;
    assert_eq!(errno(fs.rename(job, "a", job, "empty", true)), libc::EEXIST);
    // An empty folder is replaced; everything keeps its inode, bytes and rows.
    fs.rename(job, "a", job, "empty", false).unwrap();
    assert_eq!(names(&fs, job), ["empty", "file", "full"]);
    assert_eq!(
        fs.lookup(job, "empty").unwrap().ino,
        a,
        "the folder keeps its inode"
    );
    assert_eq!(
        errno(fs.getattr(replaced)),
        libc::ENOENT,
        "the replaced folder is gone"
    );
    assert_eq!(names(&fs, a), ["b", "x"]);
    assert_eq!(names(&fs, b), ["p", "y"]);
    assert_eq!(fs.lookup(b, "y").unwrap().ino, y);
    assert_eq!(
        (read_all(&fs, x), read_all(&fs, y)),
        (b"ex".to_vec(), b"why".to_vec())
    );
    assert!(matches!(fs.getxattr(b, "user.tag", 64), Ok(XattrReply::Data(v)) if v == b"kept"));
    fs.release(pending.fh).unwrap();
    assert_eq!(read_all(&fs, fs.lookup(b, "p").unwrap().ino), b"pending");
    // Across job directories of the dataset: the objects' rows follow.
    fs.rename(job, "empty", other_job, "moved", false).unwrap();
    assert_eq!(names(&fs, other_job), ["moved"]);
    assert_eq!(fs.parent_of(b).unwrap(), a);
    assert_eq!(fs.parent_of(a).unwrap(), other_job);
    let objects = fs.metastore().list(ds, "", "").unwrap();
    let y_meta = objects
        .iter()
        .find(|o| o.path.name == "moved/b/y")
        .expect("y moved");
    assert_eq!(
        (y_meta.path.partition.as_str(), y_meta.path.job.0),
        ("k2", 1)
    );
    assert!(
        y_meta
            .cronus_name
            .starts_with(&format!("{ds}.job_1.part_k2."))
    );
    assert!(!objects.iter().any(|o| o.path.name.starts_with("a/")));
    fs.unlink(b, "y").unwrap();
    fs.unlink(b, "p").unwrap();
    fs.rmdir(a, "b").unwrap();
    fs.unlink(a, "x").unwrap();
    fs.rmdir(other_job, "moved").unwrap();
    assert!(names(&fs, other_job).is_empty());
}

/// A lookup the kernel repeats reads the object it saw at the name by id, but only while its
/// rows still say it is there: a rename, delete or replacement made past this mount (another
/// host, the CLI) is seen at once.
#[test]
fn a_repeated_lookup_sees_changes_made_past_the_mount() {
    use cronusfs::meta::{JobId, ObjectPath};
    let tmp = tempfile::tempdir().unwrap();
    let fs = core(tmp.path());
    let ds = DatasetId::random();
    let job = job_dir(&fs, ds, "k", 0);
    let ino = write_file(&fs, job, "a", b"one");
    assert_eq!(fs.lookup(job, "a").unwrap().ino, ino);
    let meta = fs.metastore();
    let (a, b) = (
        ObjectPath::new(ds, "k", JobId(0), "a"),
        ObjectPath::new(ds, "k", JobId(0), "b"),
    );
    // As the daemon runs a command a client sends over its socket (`cronusfs mv`, `put`,
    // `rm` on a mounted store directory): the only way past the mount to a store one
    // process owns.
    fs.run_external_change(|| meta.rename_object(&a, &b))
        .unwrap();
    assert_eq!(errno(fs.lookup(job, "a")), libc::ENOENT, "moved away");
    assert_eq!(fs.lookup(job, "b").unwrap().ino, ino);
    fs.run_external_change(|| meta.put_object(&a, &mut &b"newcomer"[..], &mut |_| {}))
        .unwrap();
    let newcomer = fs.lookup(job, "a").unwrap();
    assert_ne!(newcomer.ino, ino, "another object at the old name");
    assert_eq!(newcomer.size, 8);
    fs.run_external_change(|| meta.delete_object(&b)).unwrap();
    assert_eq!(errno(fs.lookup(job, "b")), libc::ENOENT, "deleted");
}

#[test]
fn a_create_after_a_lookup_looks_again_when_anything_changed_in_between() {
    let tmp = tempfile::tempdir().unwrap();
    let fs = core(tmp.path());
    let job = job_dir(&fs, DatasetId::random(), "k", 0);
    // The kernel's order for open(O_CREAT): a lookup that finds the name free, then create.
    assert_eq!(errno(fs.lookup(job, "x")), libc::ENOENT);
    let (_, opened) = fs.create(job, "x").unwrap();
    fs.release(opened.fh).unwrap();
    // The name is taken between the lookup and the create: the create finds it.
    assert_eq!(errno(fs.lookup(job, "y")), libc::ENOENT);
    fs.mkdir(job, "y").unwrap();
    assert_eq!(errno(fs.create(job, "y")), libc::EEXIST);
    assert_eq!(errno(fs.lookup(job, "z")), libc::ENOENT);
    let (_, w) = fs.create(job, "w").unwrap();
    assert_eq!(errno(fs.create(job, "w")), libc::EEXIST);
    fs.release(w.fh).unwrap();
}

/// A file committed at release (created, never written) is found by every lookup made while
/// the release commits it: it stops being pending only once its commit is in the store.
#[test]
fn a_file_being_committed_at_release_is_never_missing() {
    let tmp = tempfile::tempdir().unwrap();
    let fs = core(tmp.path());
    let job = job_dir(&fs, DatasetId::random(), "k", 0);
    for n in 0..300 {
        let name = format!("f{n}");
        let (_, opened) = fs.create(job, &name).unwrap();
        std::thread::scope(|s| {
            let releasing = s.spawn(|| fs.release(opened.fh).unwrap());
            while !releasing.is_finished() {
                fs.lookup(job, &name).unwrap();
            }
        });
        fs.lookup(job, &name).unwrap();
    }
}

/// A file created and closed is committed at its release, which reaches the daemon a moment
/// after `close` returns: a directory holding only such a file is not empty meanwhile
/// (`rmdir` once removed a folder, or a job directory, whose only file was still pending).
#[test]
fn a_directory_whose_file_is_not_committed_yet_is_not_empty() {
    let dir = tempfile::tempdir().unwrap();
    let fs = core(dir.path());
    let ds = DatasetId::random();
    let job = job_dir(&fs, ds, "k", 0);
    let folder = fs.mkdir(job, "sub").unwrap().ino;
    let (_, in_folder) = fs.create(folder, "f").unwrap();
    fs.flush(in_folder.fh).unwrap(); // close: created only, nothing committed yet
    assert_eq!(errno(fs.rmdir(job, "sub")), libc::ENOTEMPTY);
    fs.release(in_folder.fh).unwrap();
    fs.unlink(folder, "f").unwrap();
    fs.rmdir(job, "sub").unwrap();
    // The same for a job directory.
    let (_, in_job) = fs.create(job, "g").unwrap();
    fs.flush(in_job.fh).unwrap();
    let datasets = fs.lookup(Ino::ROOT, "datasets").unwrap().ino;
    let d = fs.lookup(datasets, &ds.to_string()).unwrap().ino;
    let parts = fs.lookup(d, "partitions").unwrap().ino;
    let p = fs.lookup(parts, "k").unwrap().ino;
    let jobs = fs.lookup(p, "jobs").unwrap().ino;
    assert_eq!(errno(fs.rmdir(jobs, "0")), libc::ENOTEMPTY);
    fs.release(in_job.fh).unwrap();
    fs.unlink(job, "g").unwrap();
    fs.rmdir(jobs, "0").unwrap();
}
