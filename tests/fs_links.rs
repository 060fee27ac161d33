//! Symbolic links through the core: made in job directories and folders, read, listed,
//! renamed (alone, over files and links, inside a moved folder), removed, owned, and kept by
//! a reopen of a RocksDB store.

use std::time::Duration;

use cronusfs::fs::{FsCore, Ino, Kind, SetAttr};
use cronusfs::meta::{DatasetId, Metastore};
use cronusfs::storage::RocksStore;

use crate::fs_core::{errno, job_dir, options, read_all, write_file};

/// A core over the RocksDB store in `dir`, made new with `create`, else opened.
pub(crate) fn rocks(dir: &std::path::Path, create: bool) -> FsCore<RocksStore> {
    let path = dir.join("store");
    let store = match create {
        true => RocksStore::create(&path),
        false => RocksStore::open(&path),
    };
    FsCore::new(Metastore::new(store.unwrap()), options(dir)).unwrap()
}

/// The names and kinds of directory `dir`'s listing.
fn listed(fs: &FsCore<RocksStore>, dir: Ino) -> Vec<(String, Kind, u64)> {
    (fs.readdir(dir).unwrap().iter())
        .map(|e| (e.name.clone(), e.attr.kind, e.attr.size))
        .collect()
}

#[test]
fn links_are_made_read_listed_owned_and_kept() {
    let tmp = tempfile::tempdir().unwrap();
    let ds = DatasetId::random();
    let fs = rocks(tmp.path(), true);
    let job = job_dir(&fs, ds, "k", 0);
    let sub = fs.mkdir(job, "v3").unwrap().ino;
    write_file(&fs, sub, "data", b"bytes");
    let before = fs.getattr(job).unwrap().mtime;
    std::thread::sleep(Duration::from_millis(3));
    let link = fs.symlink(job, "latest", "v3").unwrap();
    assert_eq!((link.kind, link.size, link.perm), (Kind::Symlink, 2, 0o777));
    assert!(
        fs.getattr(job).unwrap().mtime > before,
        "the directory's time moved"
    );
    assert_eq!(fs.readlink(link.ino).unwrap(), "v3");
    let abs = fs.symlink(sub, "etc", "/etc/passwd").unwrap();
    assert_eq!(
        fs.readlink(abs.ino).unwrap(),
        "/etc/passwd",
        "stored as given"
    );
    assert_eq!(fs.lookup(job, "latest").unwrap().ino, link.ino);
    assert_eq!(
        listed(&fs, job),
        [
            ("latest".into(), Kind::Symlink, 2),
            ("v3".into(), Kind::Dir, 0)
        ]
    );
    let owner = SetAttr {
        uid: Some(7),
        gid: Some(8),
        ..SetAttr::default()
    };
    fs.setattr(link.ino, None, owner).unwrap();
    // Names are taken whatever takes them.
    assert_eq!(errno(fs.symlink(job, "latest", "x")), libc::EEXIST);
    assert_eq!(errno(fs.symlink(job, "v3", "x")), libc::EEXIST);
    assert_eq!(errno(fs.symlink(sub, "data", "x")), libc::EEXIST);
    assert_eq!(errno(fs.mkdir(job, "latest")), libc::EEXIST);
    assert_eq!(errno(fs.create(job, "latest")), libc::EEXIST);
    assert_eq!(errno(fs.rmdir(job, "latest")), libc::ENOTDIR);
    assert_eq!(errno(fs.rmdir(job, "v3")), libc::ENOTEMPTY);
    assert_eq!(errno(fs.symlink(job, "empty", "")), libc::EINVAL);
    let long = "x".repeat(4096);
    assert_eq!(errno(fs.symlink(job, "long", &long)), libc::EINVAL);
    // Not at the levels the catalogue names.
    let jobs = fs.parent_of(job).unwrap();
    assert_eq!(errno(fs.symlink(jobs, "7", "0")), libc::EPERM);
    assert_eq!(errno(fs.symlink(link.ino, "x", "y")), libc::ENOTDIR);
    drop(fs);

    let fs = rocks(tmp.path(), false);
    let job = job_dir(&fs, ds, "k", 0);
    let link = fs.lookup(job, "latest").unwrap();
    assert_eq!((link.kind, link.uid, link.gid), (Kind::Symlink, 7, 8));
    assert_eq!(fs.readlink(link.ino).unwrap(), "v3");
    let sub = fs.lookup(job, "v3").unwrap().ino;
    fs.unlink(sub, "etc").unwrap();
    assert_eq!(errno(fs.lookup(sub, "etc")), libc::ENOENT);
    assert_eq!(listed(&fs, sub), [("data".into(), Kind::File, 5)]);
}

#[test]
fn links_rename_alone_over_files_and_with_their_folder() {
    let tmp = tempfile::tempdir().unwrap();
    let fs = rocks(tmp.path(), true);
    let job = job_dir(&fs, DatasetId::random(), "k", 0);
    let link = fs.symlink(job, "a", "target-a").unwrap().ino;
    fs.rename(job, "a", job, "b", false).unwrap();
    assert_eq!(errno(fs.lookup(job, "a")), libc::ENOENT);
    assert_eq!(
        fs.lookup(job, "b").unwrap().ino,
        link,
        "the link keeps its inode"
    );
    assert_eq!(fs.readlink(link).unwrap(), "target-a");
    // Over a file, and a file over a link: the name is replaced.
    let file = write_file(&fs, job, "f", b"file");
    fs.rename(job, "b", job, "f", false).unwrap();
    assert_eq!(fs.lookup(job, "f").unwrap().kind, Kind::Symlink);
    assert_eq!(errno(fs.getattr(file)), libc::ENOENT);
    let other = write_file(&fs, job, "g", b"gee");
    fs.rename(job, "g", job, "f", false).unwrap();
    assert_eq!(fs.lookup(job, "f").unwrap().ino, other);
    assert_eq!(read_all(&fs, other), b"gee");
    // Over a link, and not over a folder, or with noreplace.
    fs.symlink(job, "l1", "one").unwrap();
    fs.symlink(job, "l2", "two").unwrap();
    assert_eq!(errno(fs.rename(job, "l1", job, "l2", true)), libc::EEXIST);
    fs.rename(job, "l1", job, "l2", false).unwrap();
    let l2 = fs.lookup(job, "l2").unwrap().ino;
    assert_eq!(fs.readlink(l2).unwrap(), "one");
    let dir = fs.mkdir(job, "dir").unwrap().ino;
    assert_eq!(errno(fs.rename(job, "l2", job, "dir", false)), libc::EISDIR);
    assert_eq!(
        errno(fs.rename(job, "dir", job, "l2", false)),
        libc::ENOTDIR
    );
    // A folder moves with the links in it, which keep their inodes.
    fs.rename(job, "l2", dir, "inner", false).unwrap();
    fs.rename(job, "dir", job, "moved", false).unwrap();
    let moved = fs.lookup(job, "moved").unwrap().ino;
    assert_eq!(fs.lookup(moved, "inner").unwrap().ino, l2);
    assert_eq!(fs.readlink(l2).unwrap(), "one");
    assert_eq!(listed(&fs, moved), [("inner".into(), Kind::Symlink, 3)]);
}

/// A query view lists links as it lists folders (a link to their place, which leads on to
/// the target); an export to the Cronus layout and an import back keep them (in the rows'
/// sidecar: the Cronus message has no place for a link).
#[test]
fn links_show_in_views_and_survive_an_export_and_import() {
    use cronusfs::meta::cronus_io::{export_cronus, import_cronus};
    use cronusfs::meta::{JobId, ObjectPath, Placed};
    let tmp = tempfile::tempdir().unwrap();
    let ds = DatasetId::random();
    let fs = rocks(tmp.path(), true);
    let job = job_dir(&fs, ds, "k", 0);
    write_file(&fs, job, "v3", b"third");
    fs.symlink(job, "latest", "v3").unwrap();
    let query = fs.lookup(Ino::ROOT, "query").unwrap().ino;
    let view = fs.lookup(query, "cronus:kind=symlink").unwrap().ino;
    let entries = fs.readdir(view).unwrap();
    assert_eq!(entries.len(), 1, "{entries:?}");
    let (name, kind) = (&entries[0].name, entries[0].attr.kind);
    assert_eq!((name.ends_with(".latest"), kind), (true, Kind::Symlink));
    let place = fs.readlink(entries[0].attr.ino).unwrap();
    assert!(
        place.ends_with(&format!("{ds}/partitions/k/jobs/0/latest")),
        "{place}"
    );

    let exported = tmp.path().join("exported");
    export_cronus(fs.metastore(), &exported, "s").unwrap();
    let copy = Metastore::new(RocksStore::create(&tmp.path().join("copy")).unwrap());
    import_cronus(&copy, &exported).unwrap();
    let at = ObjectPath::new(ds, "k", JobId(0), "latest");
    assert_eq!(
        copy.placed_at(&at).unwrap(),
        Some(Placed::Link("v3".into()))
    );
}

/// Folders and links none could have made (a crafted sidecar writes rows as they are) are
/// what `fsck` names, and an import that would leave one behind is refused whole.
#[test]
fn links_no_one_could_make_are_found_and_not_imported() {
    use cronusfs::meta::cronus_io::{export_cronus, import_cronus};
    use cronusfs::meta::{JobId, ObjectPath};
    use cronusfs::storage::{Row, RowWrite};
    let tmp = tempfile::tempdir().unwrap();
    let ds = DatasetId::random();
    let fs = rocks(tmp.path(), true);
    let job = job_dir(&fs, ds, "k", 0);
    write_file(&fs, job, "f", b"file");
    fs.symlink(job, "ok", "f").unwrap();
    let full = fs.mkdir(job, "full").unwrap().ino;
    write_file(&fs, full, "in", b"inside");
    let m = fs.metastore();
    assert_eq!(
        m.placed_problems(m.storage()).unwrap(),
        Vec::<String>::new()
    );
    let exported = tmp.path().join("exported");
    export_cronus(m, &exported, "s").unwrap();

    // A link named like an object, one with a NUL in its target, one in a missing folder.
    let link = |name: &str, target: &str| {
        let at = ObjectPath::new(ds, "k", JobId(0), name);
        let iden = Metastore::<RocksStore>::folder_iden(&at).unwrap();
        let dir = match name.rsplit_once('/') {
            Some((up, _)) => format!("{ds}/k/0/{up}"),
            None => format!("{ds}/k/0"),
        };
        let row = |p: &str, v: &str| Row::new(&iden, p, v, 1);
        vec![
            row("cronus:kind", "symlink"),
            row("cronus:uuid", iden.as_str()),
            row("cronus:object", name),
            row("cronus:dir", &dir),
            row("cronus:target", target),
        ]
    };
    let mut two_targets = link("two", "x");
    two_targets.push(Row::new(&two_targets[0].iden, "cronus:target", "y", 1));
    let bad = [
        link("f", "x"),
        link("nul", "a\0b"),
        link("gone/l", "x"),
        link("..", "x"),
        two_targets,
        link("full", "x"), // A folder's node given a link's rows.
        (link("weird", "x").into_iter())
            .map(|r| match r.prop.as_str() {
                "cronus:kind" => Row::new(&r.iden, "cronus:kind", "weird", 1),
                _ => r,
            })
            .collect(),
    ];
    let store = m.storage();
    for rows in &bad {
        store.add_rows(rows).unwrap();
    }
    let problems = m.placed_problems(store).unwrap();
    assert_eq!(problems.len(), 7, "{problems:?}");
    for rows in &bad {
        store.del_rows(rows).unwrap();
    }
    assert_eq!(m.placed_problems(store).unwrap(), Vec::<String>::new());

    // The same link in a sidecar: the import is refused, and nothing of it is kept.
    let sidecar = std::fs::read_dir(&exported)
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.to_string_lossy().ends_with(".rows.jsonl"))
        .unwrap();
    let mut text = std::fs::read_to_string(&sidecar).unwrap();
    for row in &bad[1] {
        text.push_str(&cronusfs::meta::rowjson::to_json_line(row));
        text.push('\n');
    }
    std::fs::write(&sidecar, text).unwrap();
    let copy = Metastore::new(RocksStore::create(&tmp.path().join("copy")).unwrap());
    let e = import_cronus(&copy, &exported).unwrap_err().to_string();
    assert!(e.contains("nul"), "{e}");
    assert!(copy.datasets().unwrap().is_empty(), "nothing imported");
}
