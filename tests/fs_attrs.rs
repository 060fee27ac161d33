//! Attributes through the core: what `setattr` answers, an mtime set through a writable
//! handle kept by its commit, and `XATTR_CREATE` raced by several threads.

use cronusfs::fs::{FsCore, FsResult, Ino, SetAttr, XattrFlags, XattrReply};
use cronusfs::meta::DatasetId;
use cronusfs::storage::Storage;

use crate::fs_core::{READ_WRITE, TRUNCATE, core, job_dir, read_all, write_file};

/// An mtime set through a writable handle after its last write is the one the commit keeps
/// (`cp -p`, `rsync`, `tar -x` over an existing file); a write after it moves it on.
#[test]
fn an_mtime_set_after_the_last_write_survives_the_commit() {
    let tmp = tempfile::tempdir().unwrap();
    let fs = core(tmp.path());
    let job = job_dir(&fs, DatasetId::random(), "k", 0);
    let t = std::time::UNIX_EPOCH + std::time::Duration::from_secs(981_173_106);
    let set_t = SetAttr {
        mtime: Some(t),
        ..SetAttr::default()
    };
    let recent = |a: &cronusfs::fs::Attr| {
        a.mtime > std::time::SystemTime::now() - std::time::Duration::from_secs(600)
    };
    // Over an existing file: open(O_TRUNC), write, utimens(fd), close.
    let ino = write_file(&fs, job, "old", b"first");
    let opened = fs.open(ino, TRUNCATE).unwrap();
    fs.write(opened.fh, 0, b"second").unwrap();
    assert_eq!(fs.setattr(ino, Some(opened.fh), set_t).unwrap().mtime, t);
    assert_eq!(fs.getattr(ino).unwrap().mtime, t, "shown before the close");
    fs.release(opened.fh).unwrap();
    assert_eq!(fs.getattr(ino).unwrap().mtime, t, "kept by the commit");
    assert_eq!(read_all(&fs, ino), b"second");
    // A new file: create, utimens, close (touch -d).
    let (attr, new) = fs.create(job, "new").unwrap();
    assert_eq!(fs.setattr(attr.ino, Some(new.fh), set_t).unwrap().mtime, t);
    fs.release(new.fh).unwrap();
    assert_eq!(fs.getattr(attr.ino).unwrap().mtime, t);
    // A write after the set time moves it on, for a new file and an existing one.
    let (attr, later) = fs.create(job, "later").unwrap();
    fs.setattr(attr.ino, Some(later.fh), set_t).unwrap();
    fs.write(later.fh, 0, b"x").unwrap();
    fs.release(later.fh).unwrap();
    assert!(recent(&fs.getattr(attr.ino).unwrap()));
    let opened = fs.open(ino, READ_WRITE).unwrap();
    fs.setattr(ino, Some(opened.fh), set_t).unwrap();
    fs.write(opened.fh, 0, b"S").unwrap();
    fs.release(opened.fh).unwrap();
    assert!(recent(&fs.getattr(ino).unwrap()));
}

/// Races 4 threads creating attribute `name` of `ino` with `XATTR_CREATE`: exactly one
/// succeeds, the others get EEXIST, and the winner's value is the one kept.
fn race_creates<S: Storage>(fs: &FsCore<S>, ino: Ino, name: &str) {
    let create = XattrFlags {
        create: true,
        replace: false,
    };
    let outcomes: Vec<(usize, FsResult<()>)> = std::thread::scope(|s| {
        let racers: Vec<_> = (0..4)
            .map(|i| s.spawn(move || (i, fs.setxattr(ino, name, i.to_string().as_bytes(), create))))
            .collect();
        racers.into_iter().map(|r| r.join().unwrap()).collect()
    });
    let won: Vec<usize> = (outcomes.iter())
        .filter(|(_, r)| r.is_ok())
        .map(|(i, _)| *i)
        .collect();
    assert_eq!(won.len(), 1, "{name}: {outcomes:?}");
    for (_, r) in &outcomes {
        if let Err(e) = r {
            assert_eq!(e.errno(), libc::EEXIST, "{e}");
        }
    }
    let XattrReply::Data(value) = fs.getxattr(ino, name, 64).unwrap() else {
        panic!()
    };
    assert_eq!(
        value,
        won[0].to_string().as_bytes(),
        "the winner's value stays"
    );
}

/// Of several creates of one attribute at once, one wins: on a committed object (checked in
/// the write's transaction) and on a file not committed yet (checked under the lock of its
/// kept rows).
#[test]
fn racing_xattr_creates_of_one_name_let_one_win() {
    let tmp = tempfile::tempdir().unwrap();
    let fs = core(tmp.path());
    let job = job_dir(&fs, DatasetId::random(), "k", 0);
    let ino = write_file(&fs, job, "t", b"x");
    let (pending, opened) = fs.create(job, "p").unwrap();
    for round in 0..20 {
        race_creates(&fs, ino, &format!("user.once{round}"));
        race_creates(&fs, pending.ino, &format!("user.early{round}"));
    }
    fs.release(opened.fh).unwrap();
    let XattrReply::Data(value) = fs.getxattr(pending.ino, "user.early7", 64).unwrap() else {
        panic!()
    };
    assert_eq!(value.len(), 1, "kept by the first commit");
}

#[test]
fn setattr_answers_what_getattr_then_says() {
    let tmp = tempfile::tempdir().unwrap();
    let fs = core(tmp.path());
    let job = job_dir(&fs, DatasetId::random(), "k", 0);
    let ino = write_file(&fs, job, "t", b"hello world");
    let at = |s| std::time::UNIX_EPOCH + std::time::Duration::from_secs(s);
    let changes = [
        SetAttr {
            mtime: Some(at(1_000_000)),
            ..SetAttr::default()
        },
        SetAttr {
            mode: Some(0o600),
            mtime: Some(at(2_000_000)),
            ..SetAttr::default()
        },
        SetAttr {
            mode: Some(0o600),
            uid: Some(1234),
            gid: Some(99),
            ..SetAttr::default()
        },
    ];
    for set in changes {
        let answered = fs.setattr(ino, None, set).unwrap();
        assert_eq!(answered, fs.getattr(ino).unwrap(), "{set:?}");
        if let Some(t) = set.mtime {
            assert_eq!(answered.mtime, t);
        }
    }
    let last = fs.getattr(ino).unwrap();
    assert_eq!(
        (last.perm, last.uid, last.gid, last.size),
        (0o600, 1234, 99, 11)
    );
    assert_eq!(last.mtime, at(2_000_000));
}

/// A time before 1970 is kept as given (`touch -d @-86400`), on a file and a directory.
#[test]
fn times_before_1970_are_kept() {
    let tmp = tempfile::tempdir().unwrap();
    let fs = core(tmp.path());
    let job = job_dir(&fs, DatasetId::random(), "k", 0);
    let file = write_file(&fs, job, "old", b"x");
    let then = std::time::UNIX_EPOCH - std::time::Duration::from_secs(86_400);
    for ino in [file, job] {
        let set = SetAttr {
            mtime: Some(then),
            ..SetAttr::default()
        };
        assert_eq!(fs.setattr(ino, None, set).unwrap().mtime, then);
        assert_eq!(fs.getattr(ino).unwrap().mtime, then);
    }
}

/// A writer's truncate shows in `stat` and in its directory's listing (`readdirplus` gives the
/// kernel that size too) for as long as its handle is open, while other
/// handles' releases commit and retire the copy around it. Two races made `stat` (and so the
/// kernel's i_size, from a lookup) show the committed size instead: a commit forgot the
/// copy's size before the rows cache moved past the rows read before the commit (this test
/// failed 8 runs of 8 with it), and a release that retired a copy forgot the size of the
/// fresh copy a writable open made meanwhile (seen only with a pause injected there). Then
/// an `O_APPEND` write landed past a hole (CI, seed 134 of
/// `mount_writers::random_handle_schedules_match_a_local_disk`). A listing looked at the
/// copy's size after reading the rows, so a commit between the two showed the old size (1 run
/// in 3 failed with the listing read that way).
#[test]
fn a_fresh_copy_s_size_outlives_the_release_that_retired_the_last() {
    let tmp = tempfile::tempdir().unwrap();
    let fs = core(tmp.path());
    let job = job_dir(&fs, DatasetId::random(), "k", 0);
    let ino = write_file(&fs, job, "f", b"first");
    let rounds = 5_000;
    std::thread::scope(|s| {
        // Opens and releases a writable handle that writes nothing: each last release
        // retires the copy.
        s.spawn(|| {
            for _ in 0..rounds {
                let opened = fs.open(ino, READ_WRITE).unwrap();
                fs.release(opened.fh).unwrap();
            }
        });
        for round in 0..rounds {
            let opened = fs.open(ino, READ_WRITE).unwrap();
            // The committed size is 5 ("first"), or 1000 or 1001 (a round's commit).
            let size = 1000 + round % 2;
            let set = SetAttr {
                size: Some(size),
                ..SetAttr::default()
            };
            fs.setattr(ino, Some(opened.fh), set).unwrap();
            let shown = fs.getattr(ino).unwrap().size;
            let listed = fs.readdir(job).unwrap().into_iter().find(|e| e.name == "f");
            fs.release(opened.fh).unwrap();
            assert_eq!(
                shown, size,
                "stat of a file truncated through an open handle"
            );
            assert_eq!(listed.unwrap().attr.size, size, "its directory's listing");
        }
    });
}

/// An append lands at the end of the working copy as it is when it runs, whatever offset the
/// kernel computed from the size it last saw: after another handle truncated the file, the
/// next append starts at 0, not past a hole.
#[test]
fn an_append_lands_at_the_copy_s_end_whatever_offset_was_seen() {
    let tmp = tempfile::tempdir().unwrap();
    let fs = core(tmp.path());
    let job = job_dir(&fs, DatasetId::random(), "k", 0);
    let ino = write_file(&fs, job, "log", b"0123456789");
    let appender = fs.open(ino, READ_WRITE).unwrap();
    let truncater = fs.open(ino, TRUNCATE).unwrap();
    // The kernel would say offset 10 (the size it saw before the truncate).
    assert_eq!(fs.append(appender.fh, b"abc").unwrap(), (3, 0));
    assert_eq!(fs.append(appender.fh, b"de").unwrap(), (2, 3));
    fs.release(truncater.fh).unwrap();
    fs.flush(appender.fh).unwrap();
    fs.release(appender.fh).unwrap();
    assert_eq!(read_all(&fs, ino), b"abcde");
}

/// `user.cronus.history` lists an object's versions oldest first by number (version 10 after
/// 9, not after 1).
#[test]
fn the_history_attribute_lists_versions_in_order() {
    let tmp = tempfile::tempdir().unwrap();
    let fs = core(tmp.path());
    let job = job_dir(&fs, DatasetId::random(), "k", 0);
    let ino = write_file(&fs, job, "f", b"v1");
    for v in 2..=12 {
        let opened = fs.open(ino, TRUNCATE).unwrap();
        fs.write(opened.fh, 0, format!("v{v}").as_bytes()).unwrap();
        fs.flush(opened.fh).unwrap();
        fs.release(opened.fh).unwrap();
    }
    let Ok(XattrReply::Data(value)) = fs.getxattr(ino, "user.cronus.history", 1 << 16) else {
        panic!("no history");
    };
    let versions: Vec<i64> = (String::from_utf8(value).unwrap().lines())
        .map(|l| l.split_once(':').unwrap().0.parse().unwrap())
        .collect();
    assert_eq!(versions, (1..=12).collect::<Vec<i64>>());
}

/// A view's entry of an object open for writing shows what its handle wrote (size), as the
/// object's own place does, in a lookup and in the view's listing.
#[test]
fn a_view_entry_shows_what_an_open_handle_wrote() {
    let tmp = tempfile::tempdir().unwrap();
    let fs = core(tmp.path());
    let job = job_dir(&fs, DatasetId::random(), "k", 0);
    let ino = write_file(&fs, job, "f", b"committed");
    let plain = XattrFlags {
        create: false,
        replace: false,
    };
    fs.setxattr(ino, "user.tag", b"x", plain).unwrap();
    let query = fs.lookup(Ino::ROOT, "query").unwrap().ino;
    let view = fs.lookup(query, "tag=x").unwrap().ino;
    // The view names the object by its Cronus name.
    let listed = fs.readdir(view).unwrap();
    let [entry] = listed.as_slice() else {
        panic!("{listed:?}");
    };
    assert_eq!(entry.attr.size, 9);
    let name = entry.name.clone();
    let opened = fs.open(ino, READ_WRITE).unwrap();
    fs.write(opened.fh, 0, &[7u8; 1000]).unwrap();
    assert_eq!(fs.getattr(ino).unwrap().size, 1000);
    assert_eq!(fs.lookup(view, &name).unwrap().size, 1000);
    let listed = fs.readdir(view).unwrap();
    assert_eq!(listed[0].attr.size, 1000);
    fs.flush(opened.fh).unwrap();
    fs.release(opened.fh).unwrap();
    assert_eq!(fs.lookup(view, &name).unwrap().size, 1000);
}
