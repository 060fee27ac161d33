//! What the hostile pass over issue 20's work found, each checked where a user meets it: the
//! daemons' own `cronusfs:` props set through xattrs (which deleted other users' nodes and
//! stopped gc), a file written after its unlink losing its bytes at the next flush, `put` onto
//! a folder's name, `put -` from a closed standard input, `chmod` of the fixed `partitions/`
//! and `jobs/` directories, and a content cache that is a link to someone else's directory.

use std::os::unix::fs::PermissionsExt;

use cronusfs::meta::Metastore;
use cronusfs::storage::{MemoryStore, PropQuery, Row, RowRead, RowWrite};

use crate::mount::Mounted;
use crate::trust_views::as_nobody;

/// The `DATASET/KEY/JOB` the command line names job directory `job` of `m` by.
fn place_of(m: &Mounted, job: &std::path::Path) -> String {
    let rel = job.strip_prefix(m.mnt.join("datasets")).unwrap();
    let parts: Vec<_> = rel.iter().map(|p| p.to_string_lossy()).collect();
    format!("{}/{}/{}", parts[0], parts[2], parts[4])
}

#[test]
fn the_daemons_own_props_are_no_user_s_to_set() {
    let m = crate::trust_views::shared_mount();
    let job = m.job_dir();
    m.ok(&format!(
        "umask 022; echo rootdata > {0}/root666; chmod 666 {0}/root666; chmod 777 {0}",
        job.display()
    ));
    for name in [
        "user.cronusfs:session:heartbeat",
        "user.cronusfs:session:sweeping",
        "user.cronusfs:session:reading",
    ] {
        let script = format!("setfattr -n {name} -v 5 {}/root666", job.display());
        let (ok, _, said) = as_nobody(&m, &script);
        assert!(
            !ok && said.contains("Operation not permitted"),
            "{name}: {said}"
        );
        let out = m.sh(&script);
        assert!(!out.status.success(), "root set {name}");
    }
    assert_eq!(
        m.ok(&format!("cat {}/root666", job.display())),
        "rootdata\n"
    );
}

/// A heartbeat row on a node that is no session (set by the owner with `rows add`, say) does
/// not make the session sweeper delete that node.
#[test]
fn only_session_nodes_expire() {
    let m = Metastore::new(MemoryStore::new());
    let node = cronusfs::storage::Iden::new("some/node").unwrap();
    m.storage()
        .add_rows(&[
            Row::new(&node, "cronusfs:session:heartbeat", 1i64, 1),
            Row::new(&node, "keep", "me", 1),
        ])
        .unwrap();
    assert!(m.sessions().expire().unwrap().is_empty());
    let kept = m.storage().rows_by_prop(&PropQuery::new("keep")).unwrap();
    assert_eq!(kept.len(), 1);
}

/// A temporary file (created, unlinked, written) keeps its bytes across flushes that a fork
/// or a duplicate descriptor's close sends, until its last close.
#[test]
fn an_unlinked_file_keeps_what_was_written_to_it_until_its_last_close() {
    let m = Mounted::new();
    let job = m.job_dir();
    let script = r#"
import os, subprocess, sys, tempfile
job = sys.argv[1]
data = os.urandom(30000)
with tempfile.TemporaryFile(dir=job) as f:
    f.write(data); f.flush()
    subprocess.run(["true"], check=True)
    os.close(os.dup(f.fileno()))
    f.seek(0)
    assert f.read() == data, "lost at a flush"
    f.write(b"more"); f.flush()
    subprocess.run(["true"], check=True)
    f.seek(0)
    assert f.read() == data + b"more"
assert os.listdir(job) == [], os.listdir(job)
"#;
    m.ok(&format!("python3 -c '{script}' {}", job.display()));
}

#[test]
fn a_put_onto_a_folder_s_name_is_refused() {
    let m = Mounted::new();
    let job = m.job_dir();
    m.ok(&format!("mkdir {}/afolder", job.display()));
    let target = format!("{}/afolder", place_of(&m, &job));
    let out = m.sh(&format!(
        "echo x | $CRONUSFS -s {} put - {target}",
        m.store.display()
    ));
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success() && said.contains("is a folder"),
        "{said}"
    );
    assert_eq!(m.ok(&format!("ls {}", job.display())), "afolder\n");
}

#[test]
fn a_put_from_a_closed_or_write_only_standard_input_stores_nothing() {
    let m = Mounted::new();
    let job = m.job_dir();
    let place = place_of(&m, &job);
    let store = m.store.display();
    for (redirect, said) in [("<&-", "closed"), ("0>$T/wo", "writing only")] {
        let out = m.sh(&format!(
            "$CRONUSFS -s {store} put - {place}/imp {redirect}"
        ));
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            !out.status.success() && err.contains(said),
            "{redirect}: {err}"
        );
    }
    assert_eq!(m.ok(&format!("ls {}", job.display())), "");
}

#[test]
fn the_fixed_directories_take_no_chmod() {
    let m = Mounted::new();
    let job = m.job_dir();
    let ds = job.ancestors().nth(4).unwrap();
    let partition = job.ancestors().nth(2).unwrap();
    for fixed in [ds.join("partitions"), partition.join("jobs")] {
        let out = m.sh(&format!("chmod 700 {}", fixed.display()));
        assert!(!out.status.success(), "{}", fixed.display());
    }
    let mode = |p: &std::path::Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!((mode(ds), mode(partition)), (0o755, 0o755));
}

/// A store whose `cache` is a link to a directory elsewhere (anyone's): the daemon keeps no
/// cache there, says why, and serves every read from the store.
#[test]
fn a_cache_that_is_a_link_is_not_used() {
    let elsewhere = tempfile::tempdir().unwrap();
    let m = Mounted::new();
    m.umount();
    let cache = m.store.join("cache");
    std::fs::remove_dir_all(&cache).unwrap();
    std::os::unix::fs::symlink(elsewhere.path(), &cache).unwrap();
    m.mount();
    let job = m.job_dir();
    m.ok(&format!(
        "head -c 2M /dev/urandom > $T/a; cp $T/a {0}/a; cmp $T/a {0}/a; cmp $T/a {0}/a",
        job.display()
    ));
    std::thread::sleep(std::time::Duration::from_millis(500));
    assert_eq!(std::fs::read_dir(elsewhere.path()).unwrap().count(), 0);
    let log = std::fs::read_to_string(&m.log).unwrap_or_default();
    assert!(log.contains("no content cache"), "{log}");
}

/// `fsck` of a mounted store while files are written, tagged and removed through the mount
/// names no damage: an index entry that changed after fsck's scan is not a missing one.
#[test]
fn fsck_of_a_store_in_use_finds_no_false_damage() {
    let m = Mounted::new();
    let job = m.job_dir();
    // Rows enough that a scan takes a while, so the churn changes some behind it.
    m.ok(&format!(
        "cd {}; for i in $(seq 400); do echo $i > g$i; done; setfattr -n user.k -v 1 g*",
        job.display()
    ));
    let churn = format!(
        "for i in $(seq 600); do f={0}/f$((i % 25)); echo $i > $f; \
         setfattr -n user.t -v $i $f; rm -f {0}/f$(((i + 9) % 25)); done",
        job.display()
    );
    let mut writer = std::process::Command::new("timeout")
        .args(["120", "bash", "-c", &churn])
        .spawn()
        .unwrap();
    let mut checks = 0;
    while writer.try_wait().unwrap().is_none() && checks < 8 {
        let out = m.fsck();
        let said = String::from_utf8_lossy(&out.stdout);
        assert!(out.status.success() && said.contains("clean:"), "{said}");
        checks += 1;
    }
    assert!(writer.wait().unwrap().success());
    assert!(checks > 0);
    m.assert_fsck_clean();
}

/// `gc` of a mounted store directory drops the cache entries of the contents it freed: the
/// disk they took comes back with the store's.
#[test]
fn gc_drops_the_cache_entries_of_what_it_freed() {
    let m = Mounted::new();
    crate::mount::assert_success(&m.on_store(&["history-retention", "0"]));
    let job = m.job_dir();
    m.ok(&format!(
        "head -c 3M /dev/urandom > {0}/a; cat {0}/a > /dev/null",
        job.display()
    ));
    let cache = m.store.join("cache");
    let entries = || {
        let files = crate::trust_handles::walk_files(&cache);
        files
            .iter()
            .filter(|p| !p.starts_with(cache.join("tmp")))
            .count()
    };
    crate::trust_handles::wait_for(|| entries() > 0, "the cache entry");
    m.ok(&format!("rm {}/a", job.display()));
    let gc = m.on_store(&["gc"]);
    crate::mount::assert_success(&gc);
    assert!(String::from_utf8_lossy(&gc.stdout).contains("freed 1 contents"));
    assert_eq!(
        entries(),
        0,
        "the freed content's cache entry is still there"
    );
}
