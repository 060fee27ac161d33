//! Directories through the core: their times and modes kept in the store (a reopen shows what
//! the mount showed), moved by every change of their entries and by nothing once set after it.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use cronusfs::fs::{Attr, FsCore, Ino, SetAttr};
use cronusfs::meta::{DatasetId, Metastore};
use cronusfs::storage::RocksStore;

use crate::fs_core::{job_dir, write_file};
use crate::fs_links::rocks;

/// Waits a little, then returns directory `dir`'s attributes, asserting its mtime moved past
/// `before` (and its ctime with it) because of `what`.
fn moved(fs: &FsCore<RocksStore>, dir: Ino, before: SystemTime, what: &str) -> SystemTime {
    let attr = fs.getattr(dir).unwrap();
    assert!(attr.mtime > before, "{what}: the mtime did not move");
    assert!(attr.ctime >= attr.mtime, "{what}: ctime before mtime");
    std::thread::sleep(Duration::from_millis(3));
    attr.mtime
}

fn set_mtime(fs: &FsCore<RocksStore>, ino: Ino, t: SystemTime) -> Attr {
    let set = SetAttr {
        mtime: Some(t),
        ..SetAttr::default()
    };
    fs.setattr(ino, None, set).unwrap()
}

/// What a reopen must show again of a directory.
fn kept(a: &Attr) -> (SystemTime, SystemTime, u16) {
    (a.mtime, a.ctime, a.perm)
}

#[test]
fn a_directory_s_times_move_with_its_entries_and_are_kept_in_the_store() {
    let tmp = tempfile::tempdir().unwrap();
    let ds = DatasetId::random();
    let fs = rocks(tmp.path(), true);
    let job = job_dir(&fs, ds, "k", 0);
    let mut t = fs.getattr(job).unwrap().mtime;
    std::thread::sleep(Duration::from_millis(3));
    write_file(&fs, job, "f", b"x");
    t = moved(&fs, job, t, "a new file");
    let sub = fs.mkdir(job, "sub").unwrap().ino;
    t = moved(&fs, job, t, "mkdir");
    let sub_t = fs.getattr(sub).unwrap().mtime;
    fs.rename(job, "f", sub, "f", false).unwrap();
    t = moved(&fs, job, t, "a rename out");
    let sub_t = moved(&fs, sub, sub_t, "a rename in");
    fs.unlink(sub, "f").unwrap();
    moved(&fs, sub, sub_t, "unlink");
    // A file removed before its first commit: the store never had it.
    let (_, opened) = fs.create(job, "brief").unwrap();
    t = moved(&fs, job, t, "create");
    fs.unlink(job, "brief").unwrap();
    fs.release(opened.fh).unwrap();
    t = moved(&fs, job, t, "unlink of an uncommitted file");
    fs.rmdir(job, "sub").unwrap();
    moved(&fs, job, t, "rmdir");

    // `tar -x` and `rsync -a`: a file made before its directory's time is set, and committed
    // at its last close after that, leaves the time set.
    let then = UNIX_EPOCH + Duration::from_secs(981_173_106);
    let (_, late) = fs.create(job, "late").unwrap();
    fs.write(late.fh, 0, b"late").unwrap();
    assert_eq!(set_mtime(&fs, job, then).mtime, then);
    fs.release(late.fh).unwrap();
    assert_eq!(fs.getattr(job).unwrap().mtime, then, "the set time stays");
    let kept_dir = fs.mkdir(job, "kept").unwrap().ino;
    let mode = SetAttr {
        mode: Some(0o700),
        ..SetAttr::default()
    };
    fs.setattr(kept_dir, None, mode).unwrap();
    set_mtime(&fs, kept_dir, then + Duration::from_secs(60));
    set_mtime(&fs, job, then);

    let before = (
        kept(&fs.getattr(job).unwrap()),
        kept(&fs.getattr(kept_dir).unwrap()),
    );
    assert_eq!(before.1.2, 0o700);
    drop(fs);
    let fs = rocks(tmp.path(), false);
    let job = job_dir(&fs, ds, "k", 0);
    let kept_dir = fs.lookup(job, "kept").unwrap().ino;
    let after = (
        kept(&fs.getattr(job).unwrap()),
        kept(&fs.getattr(kept_dir).unwrap()),
    );
    assert_eq!(after, before, "a reopen shows what the mount showed");
}

/// Datasets and partitions keep a set time too; a dataset's moves when a partition comes or
/// goes (its `partitions/` directory shows the dataset's rows).
#[test]
fn datasets_and_partitions_keep_their_times() {
    let tmp = tempfile::tempdir().unwrap();
    let fs = rocks(tmp.path(), true);
    let ds = DatasetId::random();
    job_dir(&fs, ds, "k", 0);
    let datasets = fs.lookup(Ino::ROOT, "datasets").unwrap().ino;
    let dataset = fs.lookup(datasets, &ds.to_string()).unwrap().ino;
    let partitions = fs.lookup(dataset, "partitions").unwrap().ino;
    let partition = fs.lookup(partitions, "k").unwrap().ino;
    let then = UNIX_EPOCH + Duration::from_secs(981_173_106);
    for dir in [dataset, partition] {
        assert_eq!(set_mtime(&fs, dir, then).mtime, then);
        assert_eq!(fs.getattr(dir).unwrap().mtime, then);
    }
    std::thread::sleep(Duration::from_millis(3));
    fs.mkdir(partitions, "k2").unwrap();
    moved(&fs, partitions, then, "a new partition");
    moved(&fs, dataset, then, "a new partition");
}

/// `at/<T>` shows a directory with the time it had at T: its entries' changes and the time
/// set on it are history's too.
#[test]
fn the_past_shows_a_directory_s_time_then() {
    use cronusfs::storage::Storage;
    use cronusfs::storage::history::show_micros;
    let tmp = tempfile::tempdir().unwrap();
    let ds = DatasetId::random();
    let fs = rocks(tmp.path(), true);
    let job = job_dir(&fs, ds, "k", 0);
    write_file(&fs, job, "first", b"1");
    let then = fs.getattr(job).unwrap();
    std::thread::sleep(Duration::from_millis(3));
    let t = fs.metastore().storage().history_bounds().unwrap().now;
    write_file(&fs, job, "second", b"2");
    assert!(fs.getattr(job).unwrap().mtime > then.mtime);
    let at = fs.lookup(Ino::ROOT, "at").unwrap().ino;
    let mut past = fs.lookup(at, &show_micros(t)).unwrap().ino;
    for name in ["datasets", &ds.to_string(), "partitions", "k", "jobs", "0"] {
        past = fs.lookup(past, name).unwrap().ino;
    }
    assert_eq!(fs.getattr(past).unwrap().mtime, then.mtime);
}

/// A change of entries right after a time was set on the directory (within its millisecond)
/// comes after it: the store orders the two, not the clock.
#[test]
fn a_change_right_after_a_set_time_moves_the_directory_on() {
    let tmp = tempfile::tempdir().unwrap();
    let fs = rocks(tmp.path(), true);
    let job = job_dir(&fs, DatasetId::random(), "k", 0);
    let sub = fs.mkdir(job, "sub").unwrap().ino;
    let then = UNIX_EPOCH + Duration::from_secs(981_173_106);
    for i in 0..50 {
        set_mtime(&fs, sub, then);
        let name = format!("d{i}");
        fs.mkdir(sub, &name).unwrap();
        assert_ne!(fs.getattr(sub).unwrap().mtime, then, "mkdir {i}");
        set_mtime(&fs, sub, then);
        fs.rmdir(sub, &name).unwrap();
        assert_ne!(fs.getattr(sub).unwrap().mtime, then, "rmdir {i}");
    }
}

/// A listing shows each folder with the time `getattr` gives it (its entries' last change,
/// or the time set on it), in the mount that made them and after a reopen: read one by one for
/// a few folders and in one scan for many.
#[test]
fn a_listing_shows_each_folder_s_time_as_stat_does() {
    let tmp = tempfile::tempdir().unwrap();
    let ds = DatasetId::random();
    let fs = rocks(tmp.path(), true);
    let job = job_dir(&fs, ds, "k", 0);
    let then = UNIX_EPOCH + Duration::from_secs(981_173_106);
    let many = fs.mkdir(job, "many").unwrap().ino;
    for (parent, count) in [(job, 3), (many, 12)] {
        let folders: Vec<Ino> = (0..count)
            .map(|i| fs.mkdir(parent, &format!("f{i}")).unwrap().ino)
            .collect();
        std::thread::sleep(Duration::from_millis(3));
        for (i, folder) in folders.into_iter().enumerate() {
            // Even ones: a time set, then an entry made (which shows); odd: the other way.
            if i % 2 == 0 {
                set_mtime(&fs, folder, then);
            }
            write_file(&fs, folder, "x", b"x");
            if i % 2 == 1 {
                set_mtime(&fs, folder, then);
            }
        }
    }
    let same_as_stat = |fs: &FsCore<RocksStore>, dir: Ino| {
        for entry in fs.readdir(dir).unwrap() {
            let stat = fs.getattr(entry.attr.ino).unwrap();
            assert_eq!(kept(&entry.attr), kept(&stat), "{}", entry.name);
        }
    };
    same_as_stat(&fs, job);
    same_as_stat(&fs, many);
    drop(fs);
    let fs = rocks(tmp.path(), false);
    let job = job_dir(&fs, ds, "k", 0);
    same_as_stat(&fs, job);
    let many = fs.lookup(job, "many").unwrap().ino;
    same_as_stat(&fs, many);
    // A file made right after the set (within its millisecond) moved the time on for good;
    // a time set after the last file stays.
    for (i, entry) in fs.readdir(many).unwrap().iter().enumerate() {
        let n: usize = entry.name[1..].parse().unwrap();
        assert_eq!(entry.attr.mtime == then, n % 2 == 1, "{} ({i})", entry.name);
    }
}

/// A time set on a directory elsewhere (another host, a command) while a file made through the
/// mount was not committed yet: once that file commits, the mount shows what the store says,
/// as a remount and every other host do.
#[test]
fn a_time_set_elsewhere_shows_once_the_pending_file_commits() {
    use cronusfs::meta::{JobId, ObjectPath};
    use cronusfs::storage::{Valu, now_millis};
    let tmp = tempfile::tempdir().unwrap();
    let fs = rocks(tmp.path(), true);
    let ds = DatasetId::random();
    let job = job_dir(&fs, ds, "k", 0);
    let d = fs.mkdir(job, "d").unwrap();
    std::thread::sleep(Duration::from_millis(3));
    let (_, opened) = fs.create(d.ino, "f").unwrap();
    fs.write(opened.fh, 0, b"f").unwrap();
    assert!(
        fs.getattr(d.ino).unwrap().mtime > d.mtime,
        "the file shows at once"
    );
    std::thread::sleep(Duration::from_millis(3));
    // Elsewhere: the directory's time set, after the file entered it.
    let then = UNIX_EPOCH + Duration::from_secs(981_173_106);
    let m = fs.metastore();
    let iden = Metastore::<RocksStore>::folder_iden(&ObjectPath::new(ds, "k", JobId(0), "d"));
    let rows = [("cronus:mtime", Valu::Int(981_173_106_000), now_millis())];
    m.set_node_rows_read_back(&iden.unwrap(), &rows, true, &mut |_| true)
        .unwrap();
    fs.release(opened.fh).unwrap();
    assert_eq!(fs.getattr(d.ino).unwrap().mtime, then);
}
