//! Query views (`query/<term>/<term>/…`) and `cronusfs find`: every term syntax, nesting as
//! AND, objects that read as themselves and refuse changes, links to matching directories,
//! listings that follow changes, and the same nodes as a lift of the row store.

use std::collections::BTreeSet;

use cronusfs::fs::{FsCore, Ino, Kind, OpenFlags, XattrFlags, XattrReply};
use cronusfs::meta::DatasetId;
use cronusfs::storage::{IntLift, MemoryStore, RowRead};

use crate::fs_core::{core, errno, job_dir, names, read_all, write_file};
use crate::mount::Mounted;

const NONE: XattrFlags = XattrFlags {
    create: false,
    replace: false,
};

fn tag(fs: &FsCore<MemoryStore>, ino: Ino, name: &str, value: &str) {
    fs.setxattr(ino, &format!("user.{name}"), value.as_bytes(), NONE)
        .unwrap();
}

/// The names in view `path` (terms separated by `/`).
fn view(fs: &FsCore<MemoryStore>, path: &str) -> BTreeSet<String> {
    let mut dir = fs.lookup(Ino::ROOT, "query").unwrap().ino;
    for term in path.split('/') {
        dir = fs.lookup(dir, term).unwrap().ino;
    }
    names(fs, dir).into_iter().collect()
}

fn set(names: &[&str]) -> BTreeSet<String> {
    names.iter().map(|n| n.to_string()).collect()
}

/// A store with one dataset (partitions k1 and k2, job 0) holding three tagged files and an
/// Arrow file; the dataset, partition k1 and job 0 tagged `quality=10` too. Returns the core,
/// the dataset and the Cronus names of a.txt, b.txt, c.txt and t.arrow.
fn tagged_store(dir: &std::path::Path) -> (FsCore<MemoryStore>, DatasetId, [String; 4]) {
    let fs = core(dir);
    let ds = DatasetId::random();
    let job = job_dir(&fs, ds, "k1", 0);
    job_dir(&fs, ds, "k2", 0);
    let files = [
        ("a.txt", "10", None),
        ("b.txt", "10", Some("red")),
        ("c.txt", "7", None),
    ];
    for (name, quality, team) in files {
        let ino = write_file(&fs, job, name, name.as_bytes());
        tag(&fs, ino, "quality", quality);
        if let Some(team) = team {
            tag(&fs, ino, "team", team);
        }
    }
    write_file(&fs, job, "t.arrow", &crate::arrow_meta::arrow_file(10));
    let datasets = fs.lookup(Ino::ROOT, "datasets").unwrap().ino;
    let d = fs.lookup(datasets, &ds.to_string()).unwrap().ino;
    tag(&fs, d, "quality", "10");
    let parts = fs.lookup(d, "partitions").unwrap().ino;
    tag(&fs, fs.lookup(parts, "k1").unwrap().ino, "quality", "10");
    tag(&fs, job, "quality", "10");
    let meta = fs.metastore();
    let cronus = |n: &str| {
        let objects = meta.list(ds, "", "").unwrap();
        let o = objects.iter().find(|o| o.path.name == n).unwrap();
        o.cronus_name.clone()
    };
    let names = ["a.txt", "b.txt", "c.txt", "t.arrow"].map(cronus);
    (fs, ds, names)
}

#[test]
fn every_term_syntax_lists_what_matches_and_nesting_is_and() {
    let tmp = tempfile::tempdir().unwrap();
    let (fs, ds, [a, b, c, t]) = tagged_store(tmp.path());
    let dirs = [
        ds.to_string(),
        format!("{ds}.part_k1"),
        format!("{ds}.job_0.part_k1"),
        format!("{ds}.job_0.part_k2"),
    ];
    let ten: BTreeSet<String> = [a.clone(), b.clone()].into_iter().chain(dirs).collect();
    assert_eq!(view(&fs, "quality=10"), ten);
    assert_eq!(view(&fs, "quality>=8"), ten);
    assert_eq!(view(&fs, "quality>7"), ten);
    assert_eq!(view(&fs, "quality<8"), set(&[&c]));
    assert_eq!(view(&fs, "quality<=7"), set(&[&c]));
    assert_eq!(view(&fs, "quality=7..10"), set(&[&c]), "LO <= value < HI");
    assert_eq!(view(&fs, "quality=7..11").len(), ten.len() + 1);
    assert_eq!(view(&fs, "team"), set(&[&b]), "has the prop");
    assert_eq!(view(&fs, "team=red"), set(&[&b]), "a string value");
    assert_eq!(view(&fs, "team=blue"), set(&[]));
    assert_eq!(view(&fs, "quality=10/team=red"), set(&[&b]), "AND");
    assert_eq!(view(&fs, "team/quality=7"), set(&[]));
    assert_eq!(view(&fs, "cronus:arrow:num_rows>=40"), set(&[&t]));
    assert_eq!(view(&fs, "cronus:arrow:num_rows>40"), set(&[]));
    assert_eq!(view(&fs, "cronus:type=ARROW"), set(&[&t]));
    assert_eq!(view(&fs, "cronus:type=TEXT"), set(&[]), "no such type row");
    // `quality=010` is the string "010" (the attribute rule), which no row has.
    assert_eq!(view(&fs, "quality=010"), set(&[]));
    // Terms that are not terms are not there.
    let query = fs.lookup(Ino::ROOT, "query").unwrap().ino;
    for bad in ["=10", "quality>=ten", "quality<"] {
        assert_eq!(errno(fs.lookup(query, bad)), libc::ENOENT, "{bad}");
    }
    // `query/` lists a view per prop that has rows (each a `prop` term), no deeper ones.
    let listed = names(&fs, query);
    for prop in ["quality", "team", "cronus:type", "cronus:arrow:num_rows"] {
        assert!(listed.contains(&prop.to_string()), "{prop}: {listed:?}");
    }
    assert!(!listed.iter().any(|p| p.contains('=')), "{listed:?}");
    for entry in fs.readdir(query).unwrap() {
        assert_eq!(entry.attr.kind, Kind::Dir, "{}", entry.name);
    }
    assert!(names(&fs, Ino::ROOT).contains(&"query".to_string()));
}

#[test]
fn a_view_s_objects_read_as_themselves_and_change_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let (fs, ds, [a, ..]) = tagged_store(tmp.path());
    let query = fs.lookup(Ino::ROOT, "query").unwrap().ino;
    let dir = fs.lookup(query, "quality=10").unwrap().ino;
    let entry = fs.lookup(dir, &a).unwrap();
    assert_eq!(entry.kind, Kind::File);
    assert_eq!(read_all(&fs, entry.ino), b"a.txt");
    let quality = fs.getxattr(entry.ino, "user.quality", 100).unwrap();
    assert_eq!(quality, XattrReply::Data(b"10".to_vec()));
    let job = job_dir(&fs, ds, "k1", 0);
    let original = fs.lookup(job, "a.txt").unwrap();
    assert_eq!(entry.size, original.size);
    assert_eq!(
        entry.perm,
        original.perm & !0o222,
        "the object's mode, read-only"
    );
    assert_eq!(entry.mtime, original.mtime);

    let write = OpenFlags {
        write: true,
        truncate: false,
    };
    assert_eq!(errno(fs.open(entry.ino, write)), libc::EROFS);
    assert_eq!(
        errno(fs.setxattr(entry.ino, "user.x", b"1", NONE)),
        libc::EROFS
    );
    assert_eq!(
        errno(fs.removexattr(entry.ino, "user.quality")),
        libc::EROFS
    );
    assert_eq!(errno(fs.unlink(dir, &a)), libc::EROFS);
    assert_eq!(errno(fs.create(dir, "new.txt")), libc::EROFS);
    assert_eq!(errno(fs.mkdir(dir, "d")), libc::EROFS);
    assert_eq!(errno(fs.mkdir(query, "d=1")), libc::EROFS);
    assert_eq!(
        errno(fs.rename(dir, &a, job, "moved.txt", false)),
        libc::EROFS
    );
    assert_eq!(errno(fs.rename(job, "a.txt", dir, "x", false)), libc::EROFS);
    assert_eq!(
        read_all(&fs, original.ino),
        b"a.txt",
        "the object is untouched"
    );
}

#[test]
fn matching_directories_are_links_to_their_place() {
    let tmp = tempfile::tempdir().unwrap();
    let (fs, ds, _) = tagged_store(tmp.path());
    let query = fs.lookup(Ino::ROOT, "query").unwrap().ino;
    let dir = fs.lookup(query, "quality=10").unwrap().ino;
    let link = |dir: Ino, name: &str| {
        let attr = fs.lookup(dir, name).unwrap();
        assert_eq!(attr.kind, Kind::Symlink, "{name}");
        fs.readlink(attr.ino).unwrap()
    };
    assert_eq!(link(dir, &ds.to_string()), format!("../../datasets/{ds}"));
    assert_eq!(
        link(dir, &format!("{ds}.part_k1")),
        format!("../../datasets/{ds}/partitions/k1")
    );
    // A job is under every partition of its dataset.
    for key in ["k1", "k2"] {
        assert_eq!(
            link(dir, &format!("{ds}.job_0.part_{key}")),
            format!("../../datasets/{ds}/partitions/{key}/jobs/0")
        );
    }
    let nested = fs.lookup(dir, "quality").unwrap().ino;
    assert_eq!(
        link(nested, &ds.to_string()),
        format!("../../../datasets/{ds}"),
        "one more level up from a nested view"
    );
    assert_eq!(fs.parent_of(nested).unwrap(), dir);
    assert_eq!(fs.parent_of(dir).unwrap(), query);
    assert_eq!(fs.parent_of(query).unwrap(), Ino::ROOT);
}

#[test]
fn a_listed_view_follows_every_change() {
    let tmp = tempfile::tempdir().unwrap();
    let (fs, ds, [a, b, c, _]) = tagged_store(tmp.path());
    assert_eq!(view(&fs, "quality=10/team"), set(&[&b]));
    let job = job_dir(&fs, ds, "k1", 0);
    let c_ino = fs.lookup(job, "c.txt").unwrap().ino;
    tag(&fs, c_ino, "team", "blue");
    tag(&fs, c_ino, "quality", "10");
    assert_eq!(view(&fs, "quality=10/team"), set(&[&b, &c]));
    fs.unlink(job, "b.txt").unwrap();
    assert_eq!(view(&fs, "quality=10/team"), set(&[&c]));
    let a_ino = fs.lookup(job, "a.txt").unwrap().ino;
    fs.removexattr(a_ino, "user.quality").unwrap();
    assert!(!view(&fs, "quality=10").contains(&a));
}

#[test]
fn a_view_and_a_lift_give_the_same_nodes() {
    let tmp = tempfile::tempdir().unwrap();
    let (fs, ds, _) = tagged_store(tmp.path());
    let lifted: BTreeSet<String> = (fs.metastore().storage())
        .rows_by_int("quality", IntLift::Ge(8), None)
        .unwrap()
        .into_iter()
        .map(|r| r.iden.as_str().to_string())
        .collect();
    // The view's names, mapped back to the idens they stand for.
    let viewed: BTreeSet<String> = view(&fs, "quality>=8")
        .into_iter()
        .map(|name| {
            let part = format!("{ds}.part_");
            let job = format!("{ds}.job_");
            if let Some(key) = name.strip_prefix(&part) {
                format!("{ds}/partitions/{key}")
            } else if let Some(rest) = name.strip_prefix(&job) {
                let (j, rest) = rest.split_once('.').unwrap();
                if rest.starts_with("part_") && rest.matches('.').count() == 0 {
                    format!("{ds}/jobs/{j}")
                } else {
                    rest.split('.').nth(1).unwrap().to_string() // The object's uuid.
                }
            } else {
                name
            }
        })
        .collect();
    assert_eq!(viewed, lifted);
}

/// The views through a real mount: `ls -l`, `cat`, `getfattr`, links followed by `cd`/`ls`,
/// changes refused with EROFS, `cronusfs find` printing the places of the same nodes, and
/// `cronusfs rows lift` lifting the same nodes.
#[test]
fn views_through_the_mount_and_find_on_the_command_line() {
    let m = Mounted::new();
    let job = m.job_dir();
    let ds = job.parent().unwrap().parent().unwrap().parent().unwrap();
    let ds = ds
        .parent()
        .unwrap()
        .file_name()
        .unwrap()
        .to_string_lossy()
        .into_owned();
    let j = job.display();
    m.ok(&format!(
        "cd {j} && printf 'one' > a.txt && printf 'two' > b.txt && printf 'three' > c.txt
         setfattr -n user.quality -v 10 a.txt b.txt && setfattr -n user.quality -v 7 c.txt
         setfattr -n user.team -v red b.txt && setfattr -n user.quality -v 10 $M/datasets/{ds}"
    ));
    let listed = m.ok("ls -1 \"$M/query/quality=10\" | sort");
    // Plain text is typed NONE: the Cronus names end in `.none`.
    let objects: Vec<&str> = listed.lines().filter(|l| l.ends_with(".none")).collect();
    assert_eq!(objects.len(), 2, "{listed}");
    assert!(listed.lines().any(|l| l == ds), "{listed}");
    let long = m.ok("ls -l \"$M/query/quality=10\"");
    assert!(long.lines().any(|l| l.starts_with("lrwxrwxrwx")), "{long}");
    assert!(long.lines().any(|l| l.starts_with("-r--r--r--")), "{long}");
    let read = m.ok("cat \"$M\"/query/quality=10/team=red/*.none");
    assert_eq!(read, "two");
    let team = m.ok("getfattr --only-values -n user.team \"$M\"/query/team/*.none");
    assert_eq!(team, "red");
    let through = m.ok(&format!(
        "ls \"$M/query/quality=10/{ds}/partitions/k/jobs/0\" | sort | tr '\\n' ' '"
    ));
    assert_eq!(through, "a.txt b.txt c.txt ");
    let refused = m.sh("touch \"$M\"/query/quality=10/*.none");
    assert!(!refused.status.success());
    let said = String::from_utf8_lossy(&refused.stderr);
    assert!(said.contains("Read-only file system"), "{said}");
    let refused = m.sh("setfattr -n user.x -v 1 \"$M\"/query/quality=10/*.none");
    assert!(String::from_utf8_lossy(&refused.stderr).contains("Read-only file system"));
    let found = m.ok("find \"$M/query/quality=10/team=red\" -type f | wc -l");
    assert_eq!(found.trim(), "1");

    // `cronusfs find` through the daemon: the places of the view's nodes.
    let out = m.on_store(&["find", "quality>=8"]);
    crate::mount::assert_success(&out);
    let printed = String::from_utf8(out.stdout).unwrap();
    let expected = format!(
        "datasets/{ds}\ndatasets/{ds}/partitions/k/jobs/0/a.txt\ndatasets/{ds}/partitions/k/jobs/0/b.txt\n"
    );
    assert_eq!(printed, expected);
    for place in printed.lines() {
        assert!(m.mnt.join(place).exists(), "{place}");
    }
    // `cronusfs rows lift` finds the same nodes: the view's objects by their uuids (the
    // fourth part of a Cronus name) and the dataset by its own.
    let lift = m.on_store(&["rows", "lift", "quality", "--ge", "8", "--format", "tsv"]);
    crate::mount::assert_success(&lift);
    let lifted: BTreeSet<String> = String::from_utf8(lift.stdout)
        .unwrap()
        .lines()
        .map(|l| l.split('\t').next().unwrap().to_string())
        .collect();
    let viewed: BTreeSet<String> = m
        .ok("ls -1 \"$M/query/quality>=8\"")
        .lines()
        .map(|name| match name.split('.').nth(3) {
            Some(uuid) => uuid.to_string(),
            None => name.to_string(),
        })
        .collect();
    assert_eq!(viewed, lifted);
    let bad = m.on_store(&["find", "quality>=ten"]);
    assert!(!bad.status.success());
    let said = String::from_utf8_lossy(&bad.stderr);
    assert_eq!(said.lines().count(), 1, "{said}");
    assert!(said.contains("query term"), "{said}");
    m.assert_fsck_clean();
}

#[test]
fn names_too_long_for_a_file_name_are_shortened_or_left_out() {
    let tmp = tempfile::tempdir().unwrap();
    let fs = core(tmp.path());
    let ds = DatasetId::random();
    let key = "k".repeat(240);
    let job = job_dir(&fs, ds, &key, 0);
    let ino = write_file(&fs, job, "f.csv", b"a,b\n1,2\n");
    tag(&fs, ino, "long", "1");
    let datasets = fs.lookup(Ino::ROOT, "datasets").unwrap().ino;
    let d = fs.lookup(datasets, &ds.to_string()).unwrap().ino;
    let parts = fs.lookup(d, "partitions").unwrap().ino;
    tag(&fs, fs.lookup(parts, &key).unwrap().ino, "long", "1");
    let objects = fs.metastore().list(ds, "", "").unwrap();
    assert!(objects[0].cronus_name.len() > 255);
    // The object by uuid and extension; the partition's link (`<ds>.part_<key>`, 282 bytes)
    // left out.
    let short = format!("{}.csv", objects[0].id);
    assert_eq!(view(&fs, "long=1"), set(&[&short]));
    let query = fs.lookup(Ino::ROOT, "query").unwrap().ino;
    let dir = fs.lookup(query, "long=1").unwrap().ino;
    let entry = fs.lookup(dir, &short).unwrap();
    assert_eq!(read_all(&fs, entry.ino), b"a,b\n1,2\n");
}

/// On a store several hosts share (PostgreSQL rows, S3 content), a view on one host lists
/// what another host tagged, and reads its bytes.
#[test]
fn a_view_on_one_host_lists_what_another_host_tagged() {
    let a = Mounted::shared();
    let b = a.another_daemon();
    let job = a.job_dir();
    std::fs::write(job.join("tagged.csv"), "a,b\n1,2\n").unwrap();
    a.ok(&format!(
        "setfattr -n user.shared -v yes {}",
        job.join("tagged.csv").display()
    ));
    let view = b.mnt.join("query/shared=yes");
    let started = std::time::Instant::now();
    let listed = loop {
        let listed: Vec<String> = std::fs::read_dir(&view)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        if !listed.is_empty() || started.elapsed() > std::time::Duration::from_secs(10) {
            break listed;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    };
    assert_eq!(listed.len(), 1, "{listed:?}");
    assert!(listed[0].ends_with(".csv"), "{listed:?}");
    assert_eq!(std::fs::read(view.join(&listed[0])).unwrap(), b"a,b\n1,2\n");
    let props: Vec<String> = std::fs::read_dir(b.mnt.join("query"))
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    assert!(props.contains(&"shared".to_string()), "{props:?}");
}
