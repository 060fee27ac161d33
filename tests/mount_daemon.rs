//! The daemon and the command line around a real mount: one daemon per store and its signals,
//! `mount` making a store in a new directory, the CLI run by the daemon of a mounted store
//! (catalogue commands and `export-cronus`), and the README tour. Every mount is unmounted by
//! a guard even when a test fails, and every command runs under `timeout`.

use std::path::Path;
use std::process::Command;

use crate::mount::{Mounted, Unmount, assert_success, is_mounted};

const BIN: &str = env!("CARGO_BIN_EXE_cronusfs");

#[test]
fn a_mounted_store_is_exported_by_its_daemon() {
    let m = Mounted::new();
    let job = m.job_dir();
    std::fs::write(job.join("t.csv"), "a,b\n1,2\n").unwrap();
    // A relative DIR is the command's, not the daemon's.
    let out = Command::new("timeout")
        .arg("60")
        .arg(BIN)
        .arg("-s")
        .arg(&m.store)
        .args(["export-cronus", "exported", "--name", "live"])
        .current_dir(m.tmp.path())
        .output()
        .unwrap();
    assert_success(&out);
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(said.contains("1 objects"), "{said}");
    let files: Vec<String> = std::fs::read_dir(m.tmp.path().join("exported"))
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    assert!(
        files.iter().any(|f| f.ends_with(".live.cronus.pb")),
        "{files:?}"
    );
    assert!(files.iter().any(|f| f.ends_with(".csv")), "{files:?}");
}

#[test]
fn mount_on_a_directory_without_a_store_makes_one() {
    let tmp = tempfile::tempdir().unwrap();
    let (store, mnt) = (tmp.path().join("new-store"), tmp.path().join("mnt"));
    std::fs::create_dir(&mnt).unwrap();
    let _guard = Unmount(mnt.clone());
    let mount = |store: &Path| {
        Command::new("timeout")
            .arg("60")
            .arg(BIN)
            .arg("mount")
            .arg(store)
            .arg(&mnt)
            .env("XDG_CACHE_HOME", tmp.path().join("cache"))
            .output()
            .unwrap()
    };
    let out = mount(&store);
    assert_success(&out);
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(said.contains("created store"), "{said}");
    let listed: Vec<_> = std::fs::read_dir(&mnt)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    assert!(listed.contains(&"datasets".to_string()), "{listed:?}");
    let out = Command::new(BIN).arg("umount").arg(&mnt).output().unwrap();
    assert_success(&out);
    // A directory that holds other files is not made a store.
    let busy = tmp.path().join("busy");
    std::fs::create_dir(&busy).unwrap();
    std::fs::write(busy.join("thesis.tex"), "mine").unwrap();
    let out = mount(&busy);
    assert!(!out.status.success());
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(said.contains("holds no store and is not empty"), "{said}");
    assert_eq!(
        std::fs::read_dir(&busy).unwrap().count(),
        1,
        "nothing added"
    );
    assert!(!is_mounted(&mnt));
}

#[test]
fn the_daemon_is_one_per_store_and_stops_on_sigterm() {
    let m = Mounted::new();
    let status = Command::new(BIN).arg("status").output().unwrap();
    let shown = String::from_utf8_lossy(&status.stdout).into_owned();
    assert!(shown.contains(&m.mnt.display().to_string()), "{shown}");
    let second = m.tmp.path().join("mnt2");
    std::fs::create_dir(&second).unwrap();
    let out = Command::new("timeout")
        .arg("60")
        .arg(BIN)
        .arg("mount")
        .arg(&m.store)
        .arg(&second)
        .output()
        .unwrap();
    assert!(!out.status.success());
    let msg = String::from_utf8_lossy(&out.stderr);
    assert!(
        msg.contains("in use by another process") && msg.lines().count() == 1,
        "{msg}"
    );
    assert!(!is_mounted(&second));
    // SIGTERM: unmounted, committed bytes kept, the daemon gone.
    let ds = uuid::Uuid::new_v4().to_string();
    m.ok(&format!("mkdir $M/datasets/{ds} && mkdir $M/datasets/{ds}/partitions/k && mkdir $M/datasets/{ds}/partitions/k/jobs/0 && echo kept > $M/datasets/{ds}/partitions/k/jobs/0/f"));
    let pid = m.daemon_pid();
    // SAFETY: kill(2) with a pid read from the daemon's record; no memory involved.
    assert_eq!(unsafe { libc::kill(pid, libc::SIGTERM) }, 0);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while Path::new(&format!("/proc/{pid}")).exists() {
        assert!(std::time::Instant::now() < deadline, "daemon still running");
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    assert!(!is_mounted(&m.mnt));
    m.mount();
    assert_eq!(
        m.ok(&format!("cat $M/datasets/{ds}/partitions/k/jobs/0/f")),
        "kept\n"
    );
}

#[test]
fn the_cli_works_on_a_mounted_store_through_the_daemon() {
    let m = Mounted::new();
    let cli = |args: &[&str], input: Option<&[u8]>| {
        let mut child = Command::new("timeout")
            .arg("60")
            .arg(BIN)
            .arg("--store")
            .arg(&m.store)
            .args(args)
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let mut stdin = child.stdin.take().unwrap();
        if let Some(bytes) = input {
            std::io::Write::write_all(&mut stdin, bytes).unwrap();
        }
        drop(stdin);
        child.wait_with_output().unwrap()
    };
    let ok = |args: &[&str], input: Option<&[u8]>| {
        let out = cli(args, input);
        assert!(
            out.status.success(),
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    };
    let ds = ok(
        &[
            "dataset",
            "create",
            "--menu",
            ok(&["menu", "new"], None).trim(),
            "--config",
            ok(&["config", "new"], None).trim(),
        ],
        None,
    );
    let ds = ds.trim();
    ok(&["partition", "add", ds, "k"], None);
    assert_eq!(ok(&["job", "new", ds], None).trim(), "0");
    // A put through the CLI is a file in the mount at once, and the other way round.
    ok(
        &["put", "-", &format!("{ds}/k/0/from-cli.txt")],
        Some(b"typed in\n"),
    );
    let job = format!("$M/datasets/{ds}/partitions/k/jobs/0");
    assert_eq!(m.ok(&format!("cat {job}/from-cli.txt")), "typed in\n");
    // The dataset's menu file holds the Menu message: its uuid and name are in the bytes.
    let menu = m.ok(&format!(
        "getfattr --only-values -n user.cronus.uuid $M/datasets/{ds}/menu"
    ));
    let bytes = m.ok(&format!("cat $M/datasets/{ds}/menu"));
    assert!(
        bytes.contains(&menu) && bytes.contains(&format!("{menu}.menu.dat")),
        "{bytes:?}"
    );
    m.ok(&format!(
        "echo written > {job}/from-mount.txt && setfattr -n user.rank -v 3 {job}/from-mount.txt"
    ));
    assert_eq!(
        ok(&["get", &format!("{ds}/k/0/from-mount.txt")], None),
        "written\n"
    );
    assert_eq!(
        ok(&["rows", "lift", "rank", "--eq", "3", "--count"], None).trim(),
        "1"
    );
    let listing = ok(&["ls", &format!("{ds}/k/0")], None);
    assert!(
        listing.contains("from-cli.txt") && listing.contains("from-mount.txt"),
        "{listing}"
    );
    // Errors keep their one line and exit status.
    let missing = cli(&["get", &format!("{ds}/k/0/absent")], None);
    assert_eq!(missing.status.code(), Some(1));
    let err = String::from_utf8_lossy(&missing.stderr);
    assert!(
        err.starts_with("cronusfs: error: no object") && err.lines().count() == 1,
        "{err}"
    );
    assert_eq!(
        cli(&["dataset", "show", "not-a-uuid"], None).status.code(),
        Some(1)
    );
    assert!(ok(&["fsck"], None).starts_with("clean:"));
}

/// The README's first command: the tour runs to its end, exits 0 and leaves nothing mounted.
#[test]
fn the_readme_tour_runs() {
    let work = tempfile::tempdir().unwrap();
    let bin_dir = Path::new(BIN).parent().unwrap();
    let out = Command::new("timeout")
        .args(["300", "bash", "scripts/demo.sh"])
        .arg(work.path())
        .env("CRONUSFS_BIN_DIR", bin_dir)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .unwrap();
    let shown = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{shown}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // What the commands printed (not the echoed command lines): cat's lines, a system row from
    // getfattr, the unmount, and the CLI's lifts and listing after it.
    for expected in [
        "\na,b\n1,2\n",
        "latest.arrow -> batches.arrow\n",
        "user.cronus.arrow:num_rows=\"10000\"",
        "unmounted ",
        "cronus:arrow:num_rows\t10000",
        "quality\t10",
        "\n1\n",
        "notes.csv\t8\tCSV\t2\t",
        "object\tremoved\t",
        "\nbefore-rm\n",
        "restored 1 objects, removed 1, 0 unchanged\nnotes.csv\n",
    ] {
        assert!(
            shown.contains(expected),
            "{expected} missing from the tour: {shown}"
        );
    }
    assert!(!is_mounted(&work.path().join("mnt")));
}

/// The kernel keeps a missing name in a job directory as missing (here for a minute, the
/// mount's TTL), and forgets that as soon as the daemon runs a command that may make it: a
/// `put` through the CLI right after a failed `stat` is there at once. Folders too.
#[test]
fn a_name_made_past_the_kernel_shows_at_once_though_its_absence_was_kept() {
    let m = Mounted::with_env(&[("CRONUSFS_ATTR_TTL_MS", "60000")]);
    let job = m.job_dir();
    let ds = job.components().rev().nth(4).unwrap().as_os_str();
    let place = format!("{}/k/0", ds.to_str().unwrap());
    std::fs::create_dir(job.join("sub")).unwrap();
    for (name, place) in [
        ("x", format!("{place}/x")),
        ("sub/y", format!("{place}/sub/y")),
    ] {
        for _ in 0..2 {
            let missing = std::fs::metadata(job.join(name)).unwrap_err();
            assert_eq!(missing.raw_os_error(), Some(libc::ENOENT));
        }
        let out = m.on_store(&["put", "-", &place]);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(std::fs::metadata(job.join(name)).is_ok(), "{name} not seen");
    }
    // A name made through the mount needs no forgetting: the kernel made it.
    assert!(std::fs::metadata(job.join("z")).is_err());
    std::fs::write(job.join("z"), b"z").unwrap();
    assert_eq!(std::fs::read(job.join("z")).unwrap(), b"z");
}

/// What a command through the daemon's socket changed reaches a kernel keeping attributes a
/// minute at once: a `put` of a new version shows its size, a new name its directory's time.
#[test]
fn a_command_s_changes_reach_attributes_the_kernel_kept() {
    let m = Mounted::with_env(&[("CRONUSFS_ATTR_TTL_MS", "60000")]);
    let job = m.job_dir();
    let ds = job.components().rev().nth(4).unwrap().as_os_str();
    let place = format!("{}/k/0", ds.to_str().unwrap());
    std::fs::write(job.join("f"), b"12").unwrap();
    let bigger = m.tmp.path().join("bigger");
    std::fs::write(&bigger, b"12345").unwrap();
    for _ in 0..2 {
        assert_eq!(std::fs::metadata(job.join("f")).unwrap().len(), 2);
    }
    let dir_before = std::fs::metadata(&job).unwrap().modified().unwrap();
    std::thread::sleep(std::time::Duration::from_millis(5));
    for args in [
        ["put", bigger.to_str().unwrap(), &format!("{place}/f")],
        ["put", bigger.to_str().unwrap(), &format!("{place}/new")],
    ] {
        let out = m.on_store(&args);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    assert_eq!(
        std::fs::metadata(job.join("f")).unwrap().len(),
        5,
        "the new size"
    );
    let dir_after = std::fs::metadata(&job).unwrap().modified().unwrap();
    assert!(dir_after > dir_before, "the directory's time");
}

/// `umount` finds a shared store's mount whatever cache directory it is run with (the
/// daemon's record is in the daemon's).
#[test]
fn umount_finds_the_mount_whatever_the_cache_directory() {
    let m = Mounted::shared();
    let elsewhere = tempfile::tempdir().unwrap();
    let out = Command::new(BIN)
        .arg("umount")
        .arg(&m.mnt)
        .env("XDG_CACHE_HOME", elsewhere.path())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(!is_mounted(&m.mnt));
}

/// `--log-format json`: every line of the daemon's log is one JSON object with its time,
/// level, pid and mount point; a commit at a last release that fails (the file's job removed
/// through the CLI meanwhile) is one ERROR line naming the inode, the errno and the error.
#[test]
fn the_log_is_one_json_object_per_line_with_its_fields() {
    let m = Mounted::with_options(&["--log-format", "json"]);
    let job = m.job_dir();
    // Created and closed without a write: committed at its release, which nobody waits for.
    let held = std::fs::File::create(job.join("late")).unwrap();
    let removed = m.on_store(&["rows", "del-prop", "cronus:kind", "--eq", "job", "--join"]);
    assert_success(&removed);
    drop(held);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    let failed = loop {
        let log = std::fs::read_to_string(&m.log).unwrap_or_default();
        let lines: Vec<serde_json::Value> = (log.lines())
            .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l:?}")))
            .collect();
        let failed: Vec<_> = (lines.iter())
            .filter(|l| l["level"] == "ERROR" && l["op"] == "release")
            .cloned()
            .collect();
        if !failed.is_empty() || std::time::Instant::now() > deadline {
            let serving = lines.iter().find(|l| l["message"] == "serving");
            let serving = serving.unwrap_or_else(|| panic!("no serving line: {log}"));
            assert_eq!(serving["level"], "INFO");
            assert_eq!(serving["pid"], m.daemon_pid());
            assert_eq!(serving["mount"], m.mnt.display().to_string());
            assert!(serving["time"].as_str().is_some_and(|t| t.ends_with('Z')));
            break failed;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    };
    assert_eq!(failed.len(), 1, "{failed:?}");
    let line = &failed[0];
    assert!(line["ino"].as_u64().is_some() && line["errno"].as_i64().is_some());
    assert!(line["error"].as_str().is_some_and(|e| !e.is_empty()));
    m.umount();
}
