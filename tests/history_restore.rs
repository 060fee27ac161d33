//! `restore` (issue 23): an object deleted since comes back with its uuid and rows; a job,
//! partition or dataset is made what it was, as new versions, with nothing lost; through the
//! library and the command line on a mounted store.

use cronusfs::meta::{MetaError, Metastore, ObjectPath, RestorePlace, RestoreReport};
use cronusfs::storage::{RocksStore, Storage, Valu};

use crate::metastore::{dataset, read_all};

fn now<S: Storage>(m: &Metastore<S>) -> i64 {
    m.storage().history_bounds().unwrap().now
}

fn put<S: Storage>(m: &Metastore<S>, path: &ObjectPath, bytes: &[u8]) {
    m.put_object(path, &mut &bytes[..], &mut |_| {}).unwrap();
}

fn rocks() -> (tempfile::TempDir, Metastore<RocksStore>) {
    let dir = tempfile::tempdir().unwrap();
    let m = Metastore::new(RocksStore::create(&dir.path().join("store")).unwrap());
    (dir, m)
}

/// The user row `quality` of object `path`.
fn quality<S: Storage>(m: &Metastore<S>, path: &ObjectPath) -> Option<String> {
    let id = m.object(path).unwrap().id;
    let rows = m.node_rows(&id.iden()).unwrap();
    rows.into_iter()
        .find(|r| r.prop == "quality")
        .map(|r| r.valu.to_string())
}

#[test]
fn a_deleted_object_comes_back_with_its_uuid_and_rows() {
    let (_dir, m) = rocks();
    let (ds, _, _) = dataset(&m, &["k"]);
    let job = m.new_job(ds).unwrap();
    let path = ObjectPath::new(ds, "k", job, "a.csv");
    put(&m, &path, b"a,b\n1,2\n");
    let id = m.object(&path).unwrap().id;
    m.set_node_row(&id.iden(), "quality", &Valu::from("good"), false)
        .unwrap();
    let t1 = now(&m);
    m.delete_object(&path).unwrap();
    let gone = now(&m);
    let report = m.restore_object(id, t1).unwrap();
    assert_eq!(
        report,
        RestoreReport {
            restored: 1,
            ..RestoreReport::default()
        }
    );
    let back = m.object(&path).unwrap();
    assert_eq!((back.id, back.version), (id, 2), "its uuid, a new version");
    assert_eq!(read_all(&m, &path), b"a,b\n1,2\n");
    assert_eq!(quality(&m, &path).as_deref(), Some("good"));
    // Nothing lost: before the restore, it was deleted; restored again, it is unchanged.
    assert!(m.at(gone).unwrap().object_id_at(&path).unwrap().is_none());
    assert_eq!(m.restore_object(id, t1).unwrap().unchanged, 1);
    // An object another made at its path since is not replaced by a restore of one object.
    let t2 = now(&m);
    m.delete_object(&path).unwrap();
    put(&m, &path, b"someone else's\n");
    assert!(matches!(
        m.restore_object(id, t2),
        Err(MetaError::ObjectExists(_))
    ));
    assert_eq!(read_all(&m, &path), b"someone else's\n");
    let before = m.storage().history_bounds().unwrap().since - 1;
    assert!(m.restore_object(id, before).is_err(), "before history");
}

#[test]
fn a_job_and_a_dataset_are_made_what_they_were() {
    let (_dir, m) = rocks();
    let (ds, _, _) = dataset(&m, &["k", "k2"]);
    let job = m.new_job(ds).unwrap();
    let (a, b, c) = (
        ObjectPath::new(ds, "k", job, "a.txt"),
        ObjectPath::new(ds, "k", job, "b.txt"),
        ObjectPath::new(ds, "k", job, "c.txt"),
    );
    let other = ObjectPath::new(ds, "k2", job, "d.txt");
    let job2 = m.new_job(ds).unwrap();
    let (moved, moved_to) = (
        ObjectPath::new(ds, "k", job2, "m.txt"),
        ObjectPath::new(ds, "k", job, "m.txt"),
    );
    put(&m, &a, b"a one\n");
    put(&m, &b, b"b one\n");
    put(&m, &other, b"d one\n");
    put(&m, &moved, b"moved in\n");
    let t1 = now(&m);
    m.rename_object(&moved, &moved_to).unwrap();
    put(&m, &a, b"a two\n");
    m.delete_object(&b).unwrap();
    put(&m, &c, b"c new\n");
    m.delete_object(&other).unwrap();
    m.remove_partition(ds, "k2").unwrap();
    let place = RestorePlace {
        dataset: ds,
        partition: Some("k".into()),
        job: Some(job),
    };
    let report = m.restore_place(&place, t1).unwrap();
    assert_eq!((report.restored, report.removed), (3, 1), "{report:?}");
    // Moved into the job since: back where it was, not deleted.
    assert_eq!(read_all(&m, &moved), b"moved in\n");
    assert!(matches!(
        m.object(&moved_to),
        Err(MetaError::NoSuchObject(_))
    ));
    assert_eq!(read_all(&m, &a), b"a one\n");
    assert_eq!(
        m.object(&a).unwrap().version,
        3,
        "v1, v2, then v1's bytes as v3"
    );
    assert_eq!(read_all(&m, &b), b"b one\n");
    assert!(matches!(m.object(&c), Err(MetaError::NoSuchObject(_))));
    assert!(!m.partitions(ds).unwrap().contains(&"k2".to_string()));
    // A partition or job that did not exist then has nothing to go back to.
    let missing = RestorePlace {
        dataset: ds,
        partition: Some("nokey".into()),
        job: None,
    };
    assert!(matches!(
        m.restore_place(&missing, t1),
        Err(MetaError::NoSuchPartition { .. })
    ));
    let later_job = m.new_job(ds).unwrap();
    let later = RestorePlace {
        dataset: ds,
        partition: Some("k".into()),
        job: Some(later_job),
    };
    assert!(matches!(
        m.restore_place(&later, t1),
        Err(MetaError::NoSuchJob { .. })
    ));
    // The whole dataset: the partition removed since comes back with its object.
    let whole = RestorePlace {
        dataset: ds,
        partition: None,
        job: None,
    };
    let report = m.restore_place(&whole, t1).unwrap();
    assert_eq!((report.restored, report.unchanged), (1, 3), "{report:?}");
    assert!(m.partitions(ds).unwrap().contains(&"k2".to_string()));
    assert_eq!(read_all(&m, &other), b"d one\n");
    assert!(m.storage().check_indexes().unwrap().is_empty());
}

#[test]
fn restore_through_a_mount_undoes_an_rm() {
    let m = crate::mount::Mounted::new();
    let job = m.job_dir();
    m.ok(&format!(
        "printf 'kept\\n' > {0}/a.txt; setfattr -n user.quality -v good {0}/a.txt",
        job.display()
    ));
    std::thread::sleep(std::time::Duration::from_millis(20));
    let t = cronusfs::storage::history::show_micros(cronusfs::storage::history::now_micros());
    std::thread::sleep(std::time::Duration::from_millis(20));
    m.ok(&format!(
        "rm {0}/a.txt; printf 'new\\n' > {0}/b.txt",
        job.display()
    ));
    let place = job.strip_prefix(m.mnt.join("datasets")).unwrap();
    let place = place
        .to_str()
        .unwrap()
        .replace("/partitions/", "/")
        .replace("/jobs/", "/");
    // Read back at T through the mount, then restored.
    let then = m.ok(&format!(
        "cat $M/at/{t}/datasets/{}/a.txt",
        job.strip_prefix(m.mnt.join("datasets")).unwrap().display()
    ));
    assert_eq!(then, "kept\n");
    let out = m.on_store(&["restore", &place, "--at", &t]);
    crate::mount::assert_success(&out);
    let said = String::from_utf8(out.stdout).unwrap();
    assert_eq!(said, "restored 1 objects, removed 1, 0 unchanged\n");
    let ls = m.ok(&format!(
        "sleep 1.1; ls {0}; cat {0}/a.txt; getfattr --only-values -n user.quality {0}/a.txt",
        job.display()
    ));
    assert_eq!(ls, "a.txt\nkept\ngood");
    m.assert_fsck_clean();
}

#[test]
fn a_restore_never_puts_a_file_and_a_folder_at_one_name() {
    let (_dir, m) = rocks();
    let (ds, _, _) = dataset(&m, &["k"]);
    let job = m.new_job(ds).unwrap();
    let (folder, inside) = (
        ObjectPath::new(ds, "k", job, "f"),
        ObjectPath::new(ds, "k", job, "f/one"),
    );
    m.make_folder(&folder).unwrap();
    put(&m, &inside, b"one\n");
    let t1 = now(&m);
    m.delete_object(&inside).unwrap();
    m.remove_folder(&folder).unwrap();
    put(&m, &folder, b"a file now\n");
    // The folder `f/one` needs would come back where the file `f` is.
    let id = m.at(t1).unwrap().object_id_at(&inside).unwrap().unwrap();
    assert!(matches!(
        m.restore_object(id, t1),
        Err(MetaError::ObjectExists(_))
    ));
    // A file restored where a folder is now.
    let file = ObjectPath::new(ds, "k", job, "z");
    put(&m, &file, b"zz\n");
    let t2 = now(&m);
    let zid = m.object(&file).unwrap().id;
    m.delete_object(&file).unwrap();
    m.make_folder(&file).unwrap();
    assert!(matches!(
        m.restore_object(zid, t2),
        Err(MetaError::FolderExists(_))
    ));
    assert_eq!(read_all(&m, &folder), b"a file now\n", "nothing changed");
    assert!(m.has_folder(&file).unwrap());
}

#[test]
fn a_dataset_restores_by_its_bare_uuid_from_the_command_line() {
    let (dir, m) = rocks();
    let (ds, _, _) = dataset(&m, &["k"]);
    let job = m.new_job(ds).unwrap();
    let path = ObjectPath::new(ds, "k", job, "a.txt");
    put(&m, &path, b"kept\n");
    let t = now(&m);
    m.delete_object(&path).unwrap();
    drop(m);
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_cronusfs"))
        .arg("--store")
        .arg(dir.path().join("store"))
        .args(["restore", &ds.to_string(), "--at"])
        .arg(cronusfs::storage::history::show_micros(t))
        .output()
        .unwrap();
    crate::mount::assert_success(&out);
    assert_eq!(
        String::from_utf8(out.stdout).unwrap(),
        "restored 1 objects, removed 0, 0 unchanged\n"
    );
}

/// A place restored makes its links what they were too (links made since go, links deleted
/// since come back), and a link standing where a restored folder or file goes is replaced;
/// restoring one object under a link is refused.
#[test]
fn a_restore_puts_links_back_and_replaces_links_in_its_way() {
    use cronusfs::meta::Placed;
    let (_dir, m) = rocks();
    let (ds, _, _) = dataset(&m, &["k"]);
    let job = m.new_job(ds).unwrap();
    let at = |name: &str| ObjectPath::new(ds, "k", job, name);
    m.make_folder(&at("sub")).unwrap();
    put(&m, &at("sub/g"), b"g");
    put(&m, &at("f"), b"f");
    m.make_link(&at("old"), "f").unwrap();
    m.make_folder(&at("c")).unwrap();
    m.make_link(&at("c/l"), "z").unwrap();
    let g = m.object(&at("sub/g")).unwrap().id;
    let t1 = now(&m);
    m.remove_link(&at("c/l")).unwrap();
    m.remove_folder(&at("c")).unwrap();
    // A folder and a file replaced by links; a link removed, another made.
    m.delete_object(&at("sub/g")).unwrap();
    m.remove_folder(&at("sub")).unwrap();
    m.make_link(&at("sub"), "/tmp").unwrap();
    m.delete_object(&at("f")).unwrap();
    m.make_link(&at("f"), "/etc/hostname").unwrap();
    m.remove_link(&at("old")).unwrap();
    m.make_link(&at("new"), "f").unwrap();
    let e = m.restore_object(g, t1).unwrap_err();
    assert!(matches!(e, MetaError::ObjectExists(_)), "{e}");
    let place = RestorePlace {
        dataset: ds,
        partition: Some("k".into()),
        job: Some(job),
    };
    let job_iden = Metastore::<RocksStore>::job_iden(ds, job);
    let before = m.entries_changed_at(&job_iden).unwrap().unwrap();
    std::thread::sleep(std::time::Duration::from_millis(3));
    m.restore_place(&place, t1).unwrap();
    assert!(
        m.entries_changed_at(&job_iden).unwrap().unwrap() > before,
        "the restore changed the job directory's entries: its time moved"
    );
    assert_eq!(
        m.placed_at(&at("c")).unwrap(),
        Some(Placed::Folder),
        "a link's folder"
    );
    assert_eq!(
        m.placed_at(&at("c/l")).unwrap(),
        Some(Placed::Link("z".into()))
    );
    assert_eq!(m.placed_at(&at("sub")).unwrap(), Some(Placed::Folder));
    assert_eq!(read_all(&m, &at("sub/g")), b"g");
    assert_eq!(read_all(&m, &at("f")), b"f");
    assert_eq!(m.placed_at(&at("f")).unwrap(), None);
    assert_eq!(
        m.placed_at(&at("old")).unwrap(),
        Some(Placed::Link("f".into()))
    );
    assert_eq!(m.placed_at(&at("new")).unwrap(), None);
    let again = m.restore_place(&place, t1).unwrap();
    assert_eq!((again.restored, again.removed), (0, 0), "{again:?}");
}

/// A place restored loses the folders made in it since (the name a folder was renamed to
/// included), deepest first, and gets back those it had, with what was in them.
#[test]
fn a_restored_job_loses_the_folders_made_since() {
    let (_dir, m) = rocks();
    let (ds, _, _) = dataset(&m, &["k"]);
    let job = m.new_job(ds).unwrap();
    let at = |name: &str| ObjectPath::new(ds, "k", job, name);
    m.make_folder(&at("sub")).unwrap();
    put(&m, &at("sub/a"), b"a\n");
    let t1 = now(&m);
    m.rename_folder(&at("sub"), &at("sub2")).unwrap();
    m.make_folder(&at("made")).unwrap();
    m.make_folder(&at("made/deeper")).unwrap();
    m.make_folder(&at("sub2/inner")).unwrap();
    let place = RestorePlace {
        dataset: ds,
        partition: Some("k".into()),
        job: Some(job),
    };
    let report = m.restore_place(&place, t1).unwrap();
    // sub2, sub2/inner, made and made/deeper.
    assert_eq!(report.removed, 4, "{report:?}");
    assert!(m.has_folder(&at("sub")).unwrap());
    assert_eq!(read_all(&m, &at("sub/a")), b"a\n");
    for gone in ["sub2", "sub2/inner", "made", "made/deeper"] {
        assert!(!m.has_folder(&at(gone)).unwrap(), "{gone} is still there");
    }
}
