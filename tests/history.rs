//! The catalogue as it was (issue 23): objects overwritten and deleted read back as they were
//! at each time, through the library and the command line (`--at`), and gc keeps what
//! history names.

use std::process::Command;

use cronusfs::meta::{MetaError, Metastore, ObjectPath};
use cronusfs::storage::{RocksStore, Storage, StorageError};

use crate::metastore::{dataset, read_all};

/// Returns the store's settled clock now (µs).
fn now<S: Storage>(m: &Metastore<S>) -> i64 {
    m.storage().history_bounds().unwrap().now
}

fn put<S: Storage>(m: &Metastore<S>, path: &ObjectPath, bytes: &[u8]) {
    m.put_object(path, &mut &bytes[..], &mut |_| {}).unwrap();
}

#[test]
fn overwritten_and_deleted_objects_read_as_they_were() {
    let dir = tempfile::tempdir().unwrap();
    let m = Metastore::new(RocksStore::create(&dir.path().join("store")).unwrap());
    let (ds, _, _) = dataset(&m, &["k"]);
    let job = m.new_job(ds).unwrap();
    let path = ObjectPath::new(ds, "k", job, "table.csv");
    let t0 = now(&m);
    put(&m, &path, b"first version\n");
    let t1 = now(&m);
    put(&m, &path, &b"second version, longer\n".repeat(5000));
    let t2 = now(&m);
    m.delete_object(&path).unwrap();
    let t3 = now(&m);
    assert!(matches!(m.object(&path), Err(MetaError::NoSuchObject(_))));
    assert!(matches!(
        m.at(t0).unwrap().object(&path),
        Err(MetaError::NoSuchObject(_))
    ));
    assert_eq!(read_all(&m.at(t1).unwrap(), &path), b"first version\n");
    let second = b"second version, longer\n".repeat(5000);
    assert_eq!(read_all(&m.at(t2).unwrap(), &path), second);
    let then = m.at(t1).unwrap();
    let meta = then.object(&path).unwrap();
    assert_eq!((meta.version, meta.size), (1, 14));
    assert_eq!(m.at(t2).unwrap().object(&path).unwrap().version, 2);
    assert_eq!(m.at(t1).unwrap().list(ds, "", "").unwrap().len(), 1);
    assert!(m.at(t3).unwrap().list(ds, "", "").unwrap().is_empty());
    // gc keeps both contents: history names them.
    let report = m.gc().unwrap();
    assert_eq!((report.contents, report.history), (0, 2), "{report:?}");
    assert_eq!(read_all(&m.at(t1).unwrap(), &path), b"first version\n");
    assert_eq!(read_all(&m.at(t2).unwrap(), &path), second);
    // The past is read-only, and times outside history are refused, saying which.
    let err = m.at(t1).unwrap().delete_object(&path).unwrap_err();
    assert!(format!("{err}").contains("read-only"), "{err}");
    let future = m.at(now(&m) + 3_600_000_000).err().unwrap();
    assert!(
        matches!(future, MetaError::Storage(StorageError::FutureTime { .. })),
        "{future:?}"
    );
}

fn cronusfs(store: &std::path::Path, args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_cronusfs"))
        .arg("--store")
        .arg(store)
        .args(args)
        .output()
        .unwrap()
}

#[test]
fn get_ls_and_find_take_a_time() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("store");
    let (ds, job, path, t1) = {
        let m = Metastore::new(RocksStore::create(&store).unwrap());
        let (ds, _, _) = dataset(&m, &["k"]);
        let job = m.new_job(ds).unwrap();
        let path = ObjectPath::new(ds, "k", job, "a.txt");
        put(&m, &path, b"old\n");
        let t1 = now(&m);
        put(&m, &path, b"new\n");
        (ds, job, path, t1)
    };
    let t1 = cronusfs::storage::history::show_micros(t1);
    let object = format!("{ds}/k/{job}/a.txt");
    let got = cronusfs(&store, &["get", &object, "--at", &t1]);
    assert!(
        got.status.success(),
        "{}",
        String::from_utf8_lossy(&got.stderr)
    );
    assert_eq!(got.stdout, b"old\n");
    assert_eq!(cronusfs(&store, &["get", &object]).stdout, b"new\n");
    let listed = cronusfs(&store, &["ls", &ds.to_string(), "--at", &t1]);
    let listed = String::from_utf8(listed.stdout).unwrap();
    assert!(
        listed.contains("a.txt") && listed.contains("\t1\t"),
        "{listed}"
    );
    let found = cronusfs(&store, &["find", "cronus:version=1", "--at", &t1]);
    let found = String::from_utf8(found.stdout).unwrap();
    assert!(found.contains("a.txt"), "{found}");
    assert!(
        cronusfs(&store, &["find", "cronus:version=1"])
            .stdout
            .is_empty()
    );
    for (bad, says) in [
        ("yesterday", "not a time"),
        ("2999-01-01T00:00:00Z", "in the future"),
        ("2001-01-01T00:00:00Z", "before the store's history began"),
    ] {
        let out = cronusfs(&store, &["get", &object, "--at", bad]);
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success() && err.contains(says), "{bad}: {err}");
        assert_eq!(err.lines().count(), 1, "one line: {err}");
    }
    let _ = path;
}

#[test]
fn diff_and_log_say_what_changed_and_who() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("store");
    let (ds, job, t0) = {
        let m = Metastore::new(RocksStore::create(&store).unwrap());
        let (ds, _, _) = dataset(&m, &["k"]);
        let job = m.new_job(ds).unwrap();
        put(&m, &ObjectPath::new(ds, "k", job, "b.txt"), b"b\n");
        (ds, job, now(&m))
    };
    let file = dir.path().join("in.txt");
    let place = |name: &str| format!("{ds}/k/{job}/{name}");
    for (bytes, name) in [("one\n", "a.txt"), ("two\n", "a.txt"), ("c\n", "c.txt")] {
        std::fs::write(&file, bytes).unwrap();
        let out = cronusfs(&store, &["put", file.to_str().unwrap(), &place(name)]);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let t1 = {
        let m = Metastore::new(RocksStore::open(&store).unwrap());
        m.delete_object(&ObjectPath::new(ds, "k", job, "b.txt"))
            .unwrap();
        now(&m)
    };
    let (t0, t1) = (
        cronusfs::storage::history::show_micros(t0),
        cronusfs::storage::history::show_micros(t1),
    );
    let out = cronusfs(&store, &["diff", &t0, &t1]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let lines: Vec<Vec<String>> = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| l.split('\t').map(str::to_string).collect())
        .collect();
    let kinds: Vec<(&str, &str, &str)> = (lines.iter())
        .map(|l| (l[0].as_str(), l[1].as_str(), l[2].as_str()))
        .collect();
    let (a, b, c) = (place("a.txt"), place("b.txt"), place("c.txt"));
    assert!(kinds.contains(&("object", "added", &a)), "{kinds:?}");
    assert!(kinds.contains(&("object", "removed", &b)), "{kinds:?}");
    assert!(kinds.contains(&("object", "added", &c)), "{kinds:?}");
    assert!(
        lines.iter().all(|l| l.len() == 5),
        "five columns: {lines:?}"
    );
    // Only what is under a place.
    let only = cronusfs(&store, &["diff", &t0, &t1, &b]);
    let only = String::from_utf8(only.stdout).unwrap();
    assert_eq!(only.lines().count(), 1, "{only}");
    // The log of a.txt: created by a put, then a new version, with who and which content.
    let out = cronusfs(&store, &["log", &a]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let log = String::from_utf8(out.stdout).unwrap();
    let log: Vec<Vec<&str>> = log.lines().map(|l| l.split('\t').collect()).collect();
    assert_eq!(log.len(), 2, "{log:?}");
    assert_eq!((log[0][5], log[0][7]), ("1", "created"), "{log:?}");
    assert_eq!((log[1][5], log[1][7]), ("2", "version"), "{log:?}");
    let what = log[1][4];
    assert!(
        what.starts_with("cronusfs ") && what.contains(" put "),
        "who: {log:?}"
    );
    assert_ne!(log[0][6], log[1][6], "each version's content");
    // Each time a log prints reads back as --at.
    let got = cronusfs(&store, &["get", &a, "--at", log[0][0]]);
    assert_eq!(got.stdout, b"one\n");
    // A deleted object's log, found by its path as it was.
    let out = cronusfs(&store, &["log", &b, "--at", &t0]);
    let log = String::from_utf8(out.stdout).unwrap();
    assert!(log.lines().last().unwrap().ends_with("\tdeleted"), "{log}");
}

/// Returns job directory `job` of mount `m` as the command line names it: `DATASET/KEY/JOB`.
fn place_of(m: &crate::mount::Mounted, job: &std::path::Path) -> String {
    let rel = job.strip_prefix(m.mnt.join("datasets")).unwrap();
    (rel.to_str().unwrap())
        .replace("/partitions/", "/")
        .replace("/jobs/", "/")
}

#[test]
fn a_mount_s_commits_name_the_mount_and_commands_through_it_name_their_client() {
    let m = crate::mount::Mounted::new();
    let job = m.job_dir();
    // Each write by a process that says its pid: the commit at its close names it.
    let writer = |text: &str| -> String {
        let said = m.ok(&format!(
            "python3 -c 'import os; print(os.getpid()); open(\"{}/a.txt\", \"w\").write(\"{text}\")'",
            job.display()
        ));
        said.trim().to_string()
    };
    let (first, second) = (writer("one"), writer("two"));
    let rel = place_of(&m, &job);
    let src = m.tmp.path().join("three.txt");
    std::fs::write(&src, "three").unwrap();
    let put = m.on_store(&["put", src.to_str().unwrap(), &format!("{rel}/a.txt")]);
    crate::mount::assert_success(&put);
    let out = m.on_store(&["log", &format!("{rel}/a.txt")]);
    crate::mount::assert_success(&out);
    let log = String::from_utf8(out.stdout).unwrap();
    let lines: Vec<Vec<&str>> = log.lines().map(|l| l.split('\t').collect()).collect();
    assert_eq!(lines.len(), 3, "{log}");
    let mount = format!("mount {}", m.mnt.display());
    assert_eq!(
        (lines[0][4], lines[1][4]),
        (mount.as_str(), mount.as_str()),
        "{log}"
    );
    assert_eq!(
        (lines[0][2], lines[1][2]),
        (first.as_str(), second.as_str()),
        "the writing processes, not the daemon: {log}"
    );
    assert_eq!((lines[0][3], lines[1][3]), ("0", "0"), "their user: {log}");
    assert!(lines[2][4].contains(" put "), "the client's command: {log}");
    assert_ne!(
        lines[2][2],
        m.daemon_pid().to_string(),
        "the client's pid: {log}"
    );
    assert_eq!(lines[2][5], "3");
}

/// Returns every file of `dir` with its bytes, by name.
fn files_of(dir: &std::path::Path) -> std::collections::BTreeMap<String, Vec<u8>> {
    (std::fs::read_dir(dir).unwrap())
        .map(|e| e.unwrap().path())
        .map(|p| {
            (
                p.file_name().unwrap().to_string_lossy().into_owned(),
                std::fs::read(&p).unwrap(),
            )
        })
        .collect()
}

#[test]
fn an_export_at_a_time_is_the_same_bytes_every_time() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("store");
    let (m, path) = {
        let m = Metastore::new(RocksStore::create(&store).unwrap());
        let (ds, _, _) = dataset(&m, &["k"]);
        let job = m.new_job(ds).unwrap();
        (m, ObjectPath::new(ds, "k", job, "t.csv"))
    };
    put(&m, &path, b"a,b\n1,2\n");
    let t = now(&m);
    drop(m);
    let at = cronusfs::storage::history::show_micros(t);
    let out = dir.path().join("out");
    let export = || {
        let o = cronusfs(
            &store,
            &["export-cronus", out.to_str().unwrap(), "--at", &at],
        );
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        files_of(&out)
    };
    let first = export();
    assert!(
        first.keys().any(|n| n.ends_with(".cronus.pb")),
        "{:?}",
        first.keys()
    );
    // The store changes after T, and a daemon's session comes and goes: not in an export at T.
    {
        let m = Metastore::new(RocksStore::open(&store).unwrap());
        put(&m, &path, b"a,b\n3,4\n");
        m.sessions().open("h", 1, "/mnt").unwrap();
    }
    assert_eq!(export(), first, "the same files, the same bytes");
    let live = cronusfs(
        &store,
        &["export-cronus", dir.path().join("live").to_str().unwrap()],
    );
    assert!(live.status.success());
    assert_ne!(files_of(&dir.path().join("live")).len(), 0);
}

#[test]
fn gc_past_a_time_a_reader_holds_makes_its_next_read_refused_not_wrong() {
    let dir = tempfile::tempdir().unwrap();
    let m = Metastore::new(RocksStore::create(&dir.path().join("store")).unwrap());
    let (ds, _, _) = dataset(&m, &["k"]);
    let job = m.new_job(ds).unwrap();
    let path = ObjectPath::new(ds, "k", job, "x.csv");
    put(&m, &path, b"old\n");
    let t1 = now(&m);
    put(&m, &path, b"new\n");
    // A reader of T1 is in the middle of its work when an operator drops all history.
    let then = m.at(t1).unwrap();
    assert_eq!(then.object(&path).unwrap().version, 1);
    m.set_history_retention(std::time::Duration::ZERO).unwrap();
    let report = m.gc().unwrap();
    assert_eq!((report.contents, report.history), (1, 0), "{report:?}");
    // Its next read says the time is gone, rather than answering with what gc left.
    let err = then.object(&path).unwrap_err();
    assert!(
        matches!(err, MetaError::Storage(StorageError::PastRetention { .. })),
        "{err:?}"
    );
    assert!(matches!(
        m.at(t1).err().unwrap(),
        MetaError::Storage(StorageError::PastRetention { .. })
    ));
    assert_eq!(read_all(&m, &path), b"new\n", "the present is whole");
    assert_eq!(m.storage().check_indexes().unwrap(), Vec::<String>::new());
}

#[test]
fn init_sets_the_history_retention() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("store");
    let made = Command::new(env!("CARGO_BIN_EXE_cronusfs"))
        .args([
            "init",
            store.to_str().unwrap(),
            "--history-retention",
            "12h",
        ])
        .output()
        .unwrap();
    assert!(made.status.success());
    let said = cronusfs(&store, &["history-retention"]);
    assert_eq!(String::from_utf8(said.stdout).unwrap(), "12 hours\n");
    let bad = dir.path().join("bad");
    let refused = Command::new(env!("CARGO_BIN_EXE_cronusfs"))
        .args(["init", bad.to_str().unwrap(), "--history-retention", "5x"])
        .output()
        .unwrap();
    assert!(!refused.status.success() && !bad.exists(), "nothing made");
}

#[test]
fn a_shell_s_overwrites_leave_one_version_each_and_a_create_names_its_maker() {
    let m = crate::mount::Mounted::new();
    let job = m.job_dir();
    // Bash's builtin echo: each `>` opens with O_TRUNC while the last one's release may be
    // on its way; no empty version may land between them.
    m.ok(&format!(
        "for i in $(seq 1 60); do echo w$i > {}/h; done",
        job.display()
    ));
    let rel = place_of(&m, &job);
    let out = m.on_store(&["log", &format!("{rel}/h")]);
    crate::mount::assert_success(&out);
    let log = String::from_utf8(out.stdout).unwrap();
    let empty = cronusfs::meta::ContentId::of(b"").to_string();
    assert!(!log.contains(&empty), "an empty version: {log}");
    assert_eq!(log.lines().count(), 60, "{log}");
    // A file only created (committed at its release, which the kernel sends as nobody's)
    // names the process that made it.
    let said = m.ok(&format!(
        "python3 -c 'import os; print(os.getpid()); os.close(os.open(\"{}/made\", os.O_CREAT | os.O_WRONLY))'",
        job.display()
    ));
    let out = m.on_store(&["log", &format!("{rel}/made")]);
    let log = String::from_utf8(out.stdout).unwrap();
    let first: Vec<&str> = log.lines().next().unwrap().split('\t').collect();
    assert_eq!(first[2], said.trim(), "{log}");
}

#[test]
fn diff_and_log_lines_stay_one_record_whatever_the_names() {
    let m = crate::mount::Mounted::new();
    let job = m.job_dir();
    m.ok(&format!("echo x > '{}/a\tb'", job.display()));
    let t = cronusfs::storage::history::show_micros(cronusfs::storage::history::now_micros());
    m.ok(&format!(
        "mv '{0}/a\tb' \"{0}/c\"$'\\n'\"d\"",
        job.display()
    ));
    let out = m.on_store(&["diff", &t]);
    crate::mount::assert_success(&out);
    let diff = String::from_utf8(out.stdout).unwrap();
    assert_eq!(diff.lines().count(), 1, "{diff}");
    assert_eq!(
        diff.lines().next().unwrap().split('\t').count(),
        5,
        "{diff}"
    );
    let id = diff.split('\t').nth(3).unwrap().to_string();
    let out = m.on_store(&["log", &id]);
    let log = String::from_utf8(out.stdout).unwrap();
    assert_eq!(log.lines().count(), 2, "{log}");
    assert!(log.lines().all(|l| l.split('\t').count() == 8), "{log}");
}

#[test]
fn diff_and_log_name_folders_and_links_by_their_place() {
    let m = crate::mount::Mounted::new();
    let job = m.job_dir();
    let rel = place_of(&m, &job);
    let t = cronusfs::storage::history::show_micros(cronusfs::storage::history::now_micros());
    m.ok(&format!(
        "cd {}; mkdir sub; ln -s sub latest",
        job.display()
    ));
    let diff = String::from_utf8(m.on_store(&["diff", &t]).stdout).unwrap();
    assert!(
        diff.contains(&format!("folder\tadded\t{rel}/sub\t")),
        "{diff}"
    );
    assert!(
        diff.contains(&format!("symlink\tadded\t{rel}/latest\t")),
        "{diff}"
    );
    let out = m.on_store(&["log", &format!("{rel}/latest")]);
    crate::mount::assert_success(&out);
    assert_eq!(String::from_utf8(out.stdout).unwrap().lines().count(), 1);
    // A folder replaced by a link of its name: one place, another kind of node.
    let t = cronusfs::storage::history::show_micros(cronusfs::storage::history::now_micros());
    m.ok(&format!(
        "cd {}; rmdir sub; ln -s elsewhere sub",
        job.display()
    ));
    let diff = String::from_utf8(m.on_store(&["diff", &t]).stdout).unwrap();
    assert!(
        diff.contains(&format!("symlink\tadded\t{rel}/sub\t"))
            && diff.contains("replaced a folder"),
        "{diff}"
    );
    // A partition's place is its dataset and key: a diff of that place lists it.
    let t = cronusfs::storage::history::show_micros(cronusfs::storage::history::now_micros());
    let partition = job.parent().unwrap().parent().unwrap();
    m.ok(&format!("touch -d 2001-02-03 {}", partition.display()));
    let key = rel.rsplit_once('/').unwrap().0;
    let diff = String::from_utf8(m.on_store(&["diff", &t, key]).stdout).unwrap();
    assert!(
        diff.contains(&format!("partition\trows\t{key}\t")),
        "{diff}"
    );
    // `log` takes the iden diff printed for it.
    let iden = diff.split('\t').nth(3).unwrap();
    let out = m.on_store(&["log", iden]);
    crate::mount::assert_success(&out);
}
