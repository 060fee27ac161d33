//! A job directory of more members than a page is listed a page at a time (issue 27, item 3:
//! `ls -l` of a million objects must not hold a million entries): every entry is read once,
//! in one order a reader may come back to, through the core and through a real mount, with
//! files made while the listing is read.

use std::collections::BTreeSet;

use cronusfs::fs::{Caller, FsCore, FsOptions, Ino};
use cronusfs::meta::{DatasetId, Metastore};
use cronusfs::storage::{MemoryStore, RocksStore, Storage};

use crate::fs_core::{job_dir, options, write_file};
use crate::mount::Mounted;

/// Members a page holds in these tests.
const PAGE: usize = 7;

/// Reads directory `dir` through handle `fh` as the kernel does: from offset 0, each read
/// from where the last one ended, until a read gives nothing. Returns the names in order and
/// the largest window seen; `between` runs after each read.
fn read_through<S: Storage>(
    fs: &FsCore<S>,
    dir: Ino,
    between: &mut dyn FnMut(usize),
) -> (Vec<String>, usize) {
    let fh = fs.opendir(dir).unwrap();
    let (mut names, mut widest, mut offset) = (Vec::new(), 0, 0u64);
    loop {
        let window = fs.readdir_at(dir, fh, offset, &Caller::root()).unwrap();
        assert!(window.start <= offset, "a window holds the offset read");
        widest = widest.max(window.entries.len());
        let from = (offset - window.start) as usize;
        let got: Vec<String> = (window.entries[from.min(window.entries.len())..].iter())
            .map(|e| e.name.clone())
            .collect();
        if got.is_empty() {
            break;
        }
        offset += got.len() as u64;
        names.extend(got);
        between(names.len());
    }
    fs.releasedir(fh);
    (names, widest)
}

fn paged_listing_reads_each_entry_once<S: Storage>(fs: &FsCore<S>) {
    let job = job_dir(fs, DatasetId::random(), "k", 0);
    let mut want = BTreeSet::new();
    for i in 0..40 {
        write_file(fs, job, &format!("o{i:02}"), b"x");
        want.insert(format!("o{i:02}"));
    }
    fs.mkdir(job, "folder").unwrap();
    want.insert("folder".to_string());
    // A file made and not committed yet comes once, with the last page.
    let (_, pending) = fs.create(job, "pending").unwrap();
    want.insert("pending".to_string());
    let (names, widest) = read_through(fs, job, &mut |_| {});
    let once: BTreeSet<String> = names.iter().cloned().collect();
    assert_eq!(names.len(), once.len(), "no entry twice: {names:?}");
    assert_eq!(once, want);
    assert!(
        widest <= PAGE + 1,
        "a window is a page, not the listing: {widest}"
    );
    // A reader that comes back to an earlier offset finds the same entry there.
    let fh = fs.opendir(job).unwrap();
    for offset in [20u64, 3, 35, 0, 41] {
        let window = fs.readdir_at(job, fh, offset, &Caller::root()).unwrap();
        let at = &window.entries[(offset - window.start) as usize];
        assert_eq!(at.name, names[offset as usize], "offset {offset}");
    }
    fs.releasedir(fh);
    // Files made while the listing is read may show or not, but never twice, and every file
    // there from the start shows.
    let (names, _) = read_through(fs, job, &mut |read| {
        if read < 30 {
            write_file(fs, job, &format!("new{read:02}"), b"y");
        }
    });
    let once: BTreeSet<String> = names.iter().cloned().collect();
    assert_eq!(names.len(), once.len(), "no entry twice: {names:?}");
    assert!(want.is_subset(&once), "{:?}", want.difference(&once));
    fs.release(pending.fh).unwrap();
    // A directory of at most a page is listed whole, in one window.
    let small = job_dir(fs, DatasetId::random(), "k", 0);
    for i in 0..PAGE {
        write_file(fs, small, &format!("s{i}"), b"z");
    }
    let fh = fs.opendir(small).unwrap();
    let window = fs.readdir_at(small, fh, 0, &Caller::root()).unwrap();
    assert_eq!((window.entries.len(), window.next.is_none()), (PAGE, true));
    fs.releasedir(fh);
}

fn paged(dir: &std::path::Path) -> FsOptions {
    FsOptions {
        listing_page: PAGE,
        ..options(dir)
    }
}

#[test]
fn a_big_job_directory_is_read_a_page_at_a_time_each_entry_once() {
    let dir = tempfile::tempdir().unwrap();
    let fs = FsCore::new(Metastore::new(MemoryStore::new()), paged(dir.path())).unwrap();
    paged_listing_reads_each_entry_once(&fs);
}

#[test]
fn a_big_job_directory_is_read_a_page_at_a_time_each_entry_once_on_rocksdb() {
    let dir = tempfile::tempdir().unwrap();
    let store = RocksStore::create(&dir.path().join("store")).unwrap();
    let fs = FsCore::new(Metastore::new(store), paged(dir.path())).unwrap();
    paged_listing_reads_each_entry_once(&fs);
}

/// Through a mount listing 64 members a page: `ls -f` (readdir), `ls -l` (readdirplus, every
/// entry's attributes), Python's `os.scandir` and `find` each see all 1,000 files once.
#[test]
fn a_job_directory_of_many_pages_lists_every_entry_once_through_the_mount() {
    let m = Mounted::with_env(&[("CRONUSFS_LISTING_PAGE", "64")]);
    let job = m.job_dir();
    m.ok(&format!(
        "cd {} && for i in $(seq -w 1 1000); do echo $i > f$i; done",
        job.display()
    ));
    let want: BTreeSet<String> = (1..=1000).map(|i| format!("f{i:04}")).collect();
    let lines = |script: &str| -> Vec<String> {
        let out = m.ok(&format!("cd {} && {script}", job.display()));
        out.lines().map(str::to_string).collect()
    };
    for (how, names) in [
        ("ls -f", lines("ls -f | grep -v '^\\.'")),
        ("ls -l", lines("ls -l | tail -n +2 | awk '{print $NF}'")),
        (
            "scandir",
            lines("python3 -c 'import os; [print(e.name) for e in os.scandir(\".\")]'"),
        ),
        ("find", lines("find . -type f -size -2 | cut -c3-")),
    ] {
        let once: BTreeSet<String> = names.iter().cloned().collect();
        assert_eq!(names.len(), once.len(), "{how}: an entry twice");
        assert_eq!(once, want, "{how}");
    }
    // Sizes through readdirplus are the files' own.
    let sizes = lines("ls -l | tail -n +2 | awk '{print $5}' | sort -u");
    assert_eq!(sizes, ["5"]);
    // `telldir` in the fifth page, `seekdir` back to it from the twelfth: the same entry;
    // `rewinddir` lists all again.
    let said = lines(
        "perl -e 'opendir(D, \".\") or die; readdir(D) for 1..300; my $at = telldir(D); \
         my $x = readdir(D); readdir(D) for 1..500; seekdir(D, $at); my $y = readdir(D); \
         rewinddir(D); my $n = 0; $n++ while defined(readdir(D)); print \"$x $y $n\\n\"'",
    );
    let said: Vec<&str> = said[0].split(' ').collect();
    assert_eq!(
        said[0], said[1],
        "seekdir back finds the entry telldir named"
    );
    assert_eq!(said[2], "1002", "every entry and the dots after rewinddir");
}
