//! The content cache and FUSE passthrough on a real mount: readers of a cached content are
//! served by the kernel from the cache file (shown by changing that file behind the daemon's
//! back, which only the kernel's direct reads can see), a reader keeps its version while
//! others write and read the next, the cache keeps to its size by dropping the least recently
//! used, it survives remounts, and `--cache-size 0` turns it off.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::mount::Mounted;

/// Returns the directory of the daemon's content cache (in the store directory, or for a
/// shared store in the mount point's directory under the cache root).
fn cache_of(m: &Mounted) -> PathBuf {
    m.record().parent().unwrap().join("cache")
}

/// Returns the cache entries of the mount's daemon (`cache/ab/cdef…`).
fn entries(m: &Mounted) -> Vec<PathBuf> {
    let mut found = Vec::new();
    let Ok(dirs) = std::fs::read_dir(cache_of(m)) else {
        return found;
    };
    for dir in dirs.flatten() {
        if dir.file_name().len() != 2 {
            continue;
        }
        for entry in std::fs::read_dir(dir.path()).unwrap().flatten() {
            found.push(entry.path());
        }
    }
    found.sort();
    found
}

/// Returns the cache entry holding exactly the bytes of `file`, waiting up to 20 s for the
/// daemon to make it.
fn entry_of(m: &Mounted, file: &Path) -> PathBuf {
    let want = std::fs::read(file).unwrap();
    let started = Instant::now();
    loop {
        let hit = entries(m)
            .into_iter()
            .find(|e| std::fs::read(e).is_ok_and(|b| b == want));
        if let Some(hit) = hit {
            return hit;
        }
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "no cache entry for {}: {:?}",
            file.display(),
            entries(m)
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Writes `len` random bytes to `$T/name` and copies them to `name` in a job directory of
/// the mount; returns the two paths.
fn put(m: &Mounted, job: &Path, name: &str, len: usize) -> (PathBuf, PathBuf) {
    let local = m.tmp.path().join(name);
    // Distinct bytes for every file of every test: a counter's BLAKE3 stream.
    static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let seed = NEXT.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    let mut hasher = blake3::Hasher::new();
    hasher.update(format!("{name} {seed} {:?}", m.tmp.path()).as_bytes());
    let mut bytes = vec![0u8; len];
    hasher.finalize_xof().fill(&mut bytes);
    std::fs::write(&local, bytes).unwrap();
    let mounted = job.join(name);
    m.ok(&format!("cp {} {}", local.display(), mounted.display()));
    (local, mounted)
}

/// Overwrites the first bytes of `path` with `XXXX`.
fn tamper(path: &Path) {
    use std::os::unix::fs::FileExt;
    let file = std::fs::OpenOptions::new().write(true).open(path).unwrap();
    file.write_all_at(b"XXXX", 0).unwrap();
}

#[test]
fn a_cached_content_is_read_by_the_kernel_from_its_cache_file() {
    use std::os::unix::fs::PermissionsExt;
    let m = Mounted::new();
    let job = m.job_dir();
    let (local, mounted) = put(&m, &job, "a.bin", 3 << 20);
    // The first reader is served by the daemon and asks for the entry.
    m.ok(&format!("cmp {} {}", local.display(), mounted.display()));
    let entry = entry_of(&m, &local);
    let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&entry), 0o600);
    assert_eq!(mode(entry.parent().unwrap()), 0o700);
    assert_eq!(mode(&cache_of(&m)), 0o700);
    m.ok(&format!("cmp {} {}", local.display(), mounted.display()));
    // Bytes changed in the cache file reach the next reader: the kernel reads that file.
    tamper(&entry);
    let read = std::fs::read(&mounted).unwrap();
    assert_eq!(&read[..4], b"XXXX");
    assert_eq!(read.len(), 3 << 20);
    // A content of less than 1 MiB is read through the daemon and never cached: read before
    // another one is, it would have been filled first (one thread fills in asking order).
    let (small, small_at) = put(&m, &job, "small.bin", (1 << 20) - 1);
    let (after, after_at) = put(&m, &job, "after.bin", 2 << 20);
    for (local, mounted) in [(&small, &small_at), (&after, &after_at)] {
        m.ok(&format!("cmp {} {}", local.display(), mounted.display()));
    }
    entry_of(&m, &after);
    let small = std::fs::read(small).unwrap();
    assert!(
        entries(&m)
            .iter()
            .all(|e| std::fs::read(e).unwrap() != small)
    );
}

#[test]
fn the_cache_is_kept_across_mounts_and_off_with_size_zero() {
    let m = Mounted::new();
    let job = m.job_dir();
    let (local, mounted) = put(&m, &job, "a.bin", 1 << 20);
    m.ok(&format!("cmp {} {}", local.display(), mounted.display()));
    let entry = entry_of(&m, &local);
    m.umount();
    tamper(&entry);
    m.mount();
    assert_eq!(&std::fs::read(&mounted).unwrap()[..4], b"XXXX");
    m.umount();
    // Mounted with no cache: the daemon reads the store, and no entry is made.
    std::fs::remove_dir_all(cache_of(&m)).unwrap();
    let out = m
        .cronusfs()
        .arg("mount")
        .arg(&m.store)
        .arg(&m.mnt)
        .args(["--cache-size", "0"])
        .output()
        .unwrap();
    crate::mount::assert_success(&out);
    m.ok(&format!("cmp {} {}", local.display(), mounted.display()));
    m.ok(&format!("cmp {} {}", local.display(), mounted.display()));
    // No cache at all: its directory is not even made (a cache's is, at the mount).
    assert!(!cache_of(&m).exists());
}

#[test]
fn the_cache_keeps_to_its_size_by_dropping_the_least_recently_used() {
    let m = Mounted::with_options(&["--cache-size", "5M"]);
    let job = m.job_dir();
    let files: Vec<_> = ["a", "b", "c"]
        .iter()
        .map(|n| put(&m, &job, n, 2 << 20))
        .collect();
    let read = |i: usize| {
        let (local, mounted) = &files[i];
        m.ok(&format!("cmp {} {}", local.display(), mounted.display()));
        entry_of(&m, local)
    };
    let a = read(0);
    let b = read(1);
    read(0); // a is now used more recently than b.
    let c = read(2);
    let held = entries(&m);
    assert_eq!(held.len(), 2, "{held:?}");
    assert!(held.contains(&a) && held.contains(&c) && !held.contains(&b));
    let total: u64 = held
        .iter()
        .map(|e| std::fs::metadata(e).unwrap().len())
        .sum();
    assert!(total <= 5 << 20);
    // A bad size is refused with a one-line message.
    let out = m
        .cronusfs()
        .args(["mount", "x", "y", "--cache-size", "5Q"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("unknown unit"));
}

/// A reader of a cached content keeps reading (and mapping) the version it opened while a
/// writer commits the next one; readers opened meanwhile read the new one; a mapping made
/// by a reader the daemon serves does not stop the next reader from opening.
#[test]
fn readers_keep_their_version_while_others_write_and_read_the_next() {
    let m = Mounted::new();
    let job = m.job_dir();
    let (v1, mounted) = put(&m, &job, "f.bin", 2 << 20);
    m.ok(&format!("cmp {} {}", v1.display(), mounted.display()));
    entry_of(&m, &v1);
    let script = m.tmp.path().join("readers.py");
    std::fs::write(&script, READERS).unwrap();
    m.ok(&format!(
        "python3 {} {} {} {}",
        script.display(),
        mounted.display(),
        v1.display(),
        job.join("g.bin").display()
    ));
    m.assert_fsck_clean();
}

const READERS: &str = r#"
import mmap, os, sys, time
path, v1_path, other = sys.argv[1:4]
v1 = open(v1_path, "rb").read()
v2 = os.urandom(len(v1) + 12345)
r = open(path, "rb")                         # the kernel reads the cache file
assert r.read(10) == v1[:10]
with open(path, "r+b") as w:                 # a writer meanwhile, through the daemon
    w.write(v2)
r2 = open(path, "rb")                        # a reader of the new version
assert r2.read() == v2, "new reader"
assert r.read() == v1[10:], "old reader"
# Its mapping maps the version it opened too (fstat gives the new version's size: map the
# old one's length).
m = mmap.mmap(r.fileno(), len(v1), prot=mmap.PROT_READ)
assert m[:] == v1, "old reader's mapping"
m.close(); r.close(); r2.close()
with open(path, "rb") as r3:
    assert r3.read() == v2
# A content not cached yet: its first reader is served by the daemon and maps it; the next
# readers open (and read) while that mapping lasts, whether the entry was made meanwhile or not.
with open(other, "wb") as w:
    w.write(v1)
a = open(other, "rb")
ma = mmap.mmap(a.fileno(), 0, prot=mmap.PROT_READ)
assert ma[:] == v1
time.sleep(1)
with open(other, "rb") as b:
    assert b.read() == v1
with open(other, "ab") as w:
    w.write(b"tail")
with open(other, "rb") as b:
    assert b.read() == v1 + b"tail"
ma.close(); a.close()
with open(other, "rb") as b:
    assert b.read() == v1 + b"tail"
"#;

/// The kernel maps a file opened for writing while a passthrough reader has it open through
/// the reader's cache file: the writes of a shared writable mapping land there, not in the
/// object. Its close says so (EIO), the entry is dropped, and every later reader reads the
/// object's true bytes.
#[test]
fn a_writable_mapping_beside_a_passthrough_reader_fails_its_close_and_spoils_nothing() {
    let m = Mounted::new();
    let job = m.job_dir();
    let (v1, mounted) = put(&m, &job, "f.bin", 2 << 20);
    m.ok(&format!("cmp {} {}", v1.display(), mounted.display()));
    let entry = entry_of(&m, &v1);
    let script = m.tmp.path().join("mapped.py");
    std::fs::write(&script, MAPPED).unwrap();
    let out = m.ok(&format!(
        "python3 {} {}",
        script.display(),
        mounted.display()
    ));
    assert_eq!(out.trim(), "close: EIO");
    m.ok(&format!("cmp {} {}", v1.display(), mounted.display()));
    // The reader just closed has the entry made again, from the store: the true bytes, and
    // nothing holds the mapping's.
    assert_eq!(entry_of(&m, &v1), entry);
    assert!(
        entries(&m)
            .iter()
            .all(|e| !std::fs::read(e).unwrap().starts_with(b"ZZZZ"))
    );
}

const MAPPED: &str = r#"
import errno, mmap, sys
path = sys.argv[1]
r = open(path, "rb")
r.read(1)
w = open(path, "r+b")
m = mmap.mmap(w.fileno(), 0)
m[0:4] = b"ZZZZ"
m.flush()
m.close()
try:
    w.close()
    print("close: ok")
except OSError as e:
    print("close:", errno.errorcode[e.errno])
r.close()
"#;

/// The same cache serves a shared store: content read from S3 once is then read by the kernel
/// from the mount point's local cache.
#[test]
fn a_shared_store_s_contents_are_cached_and_read_by_the_kernel_too() {
    let m = Mounted::shared();
    let job = m.job_dir();
    let (local, mounted) = put(&m, &job, "s3.bin", 3 << 20);
    m.ok(&format!("cmp {} {}", local.display(), mounted.display()));
    let entry = entry_of(&m, &local);
    assert!(!entry.starts_with(m.tmp.path().join("mnt")));
    tamper(&entry);
    assert_eq!(&std::fs::read(&mounted).unwrap()[..4], b"XXXX");
}

/// `fsck` checks the cache too, mounted (in the daemon) or not: an entry whose bytes are not
/// its content is removed and named, and readers get the object's true bytes again.
#[test]
fn fsck_removes_a_damaged_cache_entry() {
    let m = Mounted::new();
    let job = m.job_dir();
    let (local, mounted) = put(&m, &job, "f.bin", 2 << 20);
    let fsck = || {
        let out = m.fsck();
        crate::mount::assert_success(&out);
        String::from_utf8(out.stdout).unwrap()
    };
    for mounted_now in [true, false] {
        m.ok(&format!("cmp {} {}", local.display(), mounted.display()));
        let entry = entry_of(&m, &local);
        let said = fsck();
        assert!(said.contains("1 cache entries sound"), "{said}");
        tamper(&entry);
        if !mounted_now {
            m.umount();
        }
        let said = fsck();
        let id = entry
            .parent()
            .unwrap()
            .file_name()
            .unwrap()
            .to_string_lossy()
            .to_string()
            + &entry.file_name().unwrap().to_string_lossy();
        assert!(
            said.contains(&format!("cache entry {id}: its bytes differ; removed")),
            "{said}"
        );
        assert!(said.contains("clean:"), "{said}");
        assert!(!entry.exists());
        if !mounted_now {
            m.mount();
        }
        m.ok(&format!("cmp {} {}", local.display(), mounted.display()));
    }
}

/// A cache that cannot be made (here a file where its directory would go) leaves the mount
/// working, every read served by the daemon, and says why in the log.
#[test]
fn a_mount_without_room_for_its_cache_still_serves_every_read() {
    let m = Mounted::new();
    let job = m.job_dir();
    let (local, mounted) = put(&m, &job, "f.bin", 2 << 20);
    m.umount();
    std::fs::remove_dir_all(cache_of(&m)).unwrap();
    std::fs::write(cache_of(&m), b"not a directory").unwrap();
    m.mount();
    for _ in 0..2 {
        m.ok(&format!("cmp {} {}", local.display(), mounted.display()));
    }
    let log = std::fs::read_to_string(&m.log).unwrap();
    assert!(log.contains("no content cache in"), "{log}");
}
