//! A full disk, as a careless user meets it: a store on a small filesystem of its own (tmpfs)
//! filled by `cp` until it refuses. The writer gets ENOSPC, everything written before reads
//! back intact, `rm`, `setfattr` and `gc` work while it is full and give the space back while
//! mounted, and writes succeed again without a remount.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::mount::Mounted;

/// A tmpfs of `size` mounted at a fresh directory; unmounted (lazily if need be) when dropped.
struct SmallDisk {
    dir: PathBuf,
    _parent: tempfile::TempDir,
}

impl SmallDisk {
    fn new(size: &str) -> Self {
        let parent = tempfile::tempdir().unwrap();
        let dir = parent.path().join("disk");
        std::fs::create_dir(&dir).unwrap();
        let out = Command::new("mount")
            .args([
                "-t",
                "tmpfs",
                "-o",
                &format!("size={size},mode=0700"),
                "tmpfs",
            ])
            .arg(&dir)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "this test mounts a tmpfs (root): {}",
            String::from_utf8_lossy(&out.stderr)
        );
        SmallDisk {
            dir,
            _parent: parent,
        }
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.dir).status();
    }
}

/// Returns the bytes of the store's blob files (where content chunks live).
fn blob_bytes(store: &Path) -> u64 {
    std::fs::read_dir(store)
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.path().extension().is_some_and(|x| x == "blob"))
        .filter_map(|e| e.metadata().ok())
        .map(|m| m.len())
        .sum()
}

fn cp(from: &Path, to: &Path) -> Result<(), String> {
    let out = Command::new("timeout")
        .arg("60")
        .arg("cp")
        .arg(from)
        .arg(to)
        .output()
        .unwrap();
    match out.status.success() {
        true => Ok(()),
        false => Err(String::from_utf8_lossy(&out.stderr).into_owned()),
    }
}

#[test]
fn a_full_disk_gets_enospc_and_the_mount_recovers_by_itself() {
    let disk = SmallDisk::new("240m");
    // Declared after the disk: unmounted before it.
    let m = Mounted::with_store_in(Some(&disk.dir), &[]);
    let job = m.job_dir();
    let sources: Vec<PathBuf> = (0..20u8)
        .map(|i| {
            let p = m.tmp.path().join(format!("src{i}"));
            std::fs::write(&p, crate::content::bytes(10 << 20, i)).unwrap();
            p
        })
        .collect();
    let mut stored = 0;
    let refusal = loop {
        match cp(&sources[stored], &job.join(format!("f{stored}"))) {
            Ok(()) => stored += 1,
            Err(e) => break e,
        }
        assert!(stored < sources.len(), "240 MB never filled");
    };
    assert!(refusal.contains("No space left on device"), "{refusal}");
    assert!(stored >= 3, "only {stored} files fitted");
    for (i, source) in sources.iter().enumerate().take(stored) {
        assert!(
            std::fs::read(job.join(format!("f{i}"))).unwrap() == std::fs::read(source).unwrap(),
            "f{i} reads back intact"
        );
    }
    // The refused file holds what was written before the refusal, as on a local disk (a
    // prefix of the source), or is gone if nothing of it could be committed.
    let failed = job.join(format!("f{stored}"));
    std::thread::sleep(std::time::Duration::from_millis(200)); // Its release.
    if let Ok(got) = std::fs::read(&failed) {
        let want = std::fs::read(&sources[stored]).unwrap();
        assert!(
            want.starts_with(&got),
            "the refused file holds {} bytes that are no prefix of what was written",
            got.len()
        );
    }

    // Full, the store still takes deletes, rows and gc, and gives the space back mounted.
    let before = blob_bytes(&m.store);
    m.ok(&format!(
        "rm {0}/f0 {0}/f1 && setfattr -n user.kept -v 1 {0}/f2",
        job.display()
    ));
    // No history kept past the present: gc frees what was removed at once.
    crate::mount::assert_success(&m.on_store(&["history-retention", "0"]));
    let gc = Command::new("timeout")
        .arg("120")
        .arg(env!("CARGO_BIN_EXE_cronusfs"))
        .arg("--store")
        .arg(&m.store)
        .arg("gc")
        .output()
        .unwrap();
    crate::mount::assert_success(&gc);
    // The blob files the removed objects filled are gone (the disk's free space itself is a
    // poor measure: RocksDB preallocates its logs).
    // RocksDB deletes the emptied files just after the compaction that empties them.
    let mut after = blob_bytes(&m.store);
    for _ in 0..200 {
        if after + (15 << 20) < before {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
        after = blob_bytes(&m.store);
    }
    assert!(
        after + (15 << 20) < before,
        "gc while mounted freed {} bytes of blob files",
        before.saturating_sub(after)
    );
    cp(&sources[stored], &failed).expect("writes succeed again, no remount");
    assert!(std::fs::read(&failed).unwrap() == std::fs::read(&sources[stored]).unwrap());
    m.umount();
    m.assert_fsck_clean();
}
