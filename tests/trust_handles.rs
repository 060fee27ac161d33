//! What open handles are promised while others change the store under them (issue 20): gc
//! keeps every content an open handle reads, on one host and across hosts of a shared
//! store; `close` fails only when nothing was committed; `fstat` of a handle whose file was
//! replaced by a rename; a content cache removed while mounted is made again.

use crate::mount::Mounted;

/// Writes two 5 MiB files, opens a reader on each and reads its first MiB, rewrites one and
/// unlinks the other, runs `gc` (`$GC`), then reads both readers to their end: each must read
/// the bytes it opened. Prints gc's answer before and after the readers close.
const GC_UNDER_READERS: &str = r#"
import os, subprocess, sys
job, gc = sys.argv[1], sys.argv[2:]
MIB = 1 << 20
old = {n: os.urandom(5 * MIB) for n in ("rewritten", "unlinked")}
for name, data in old.items():
    with open(f"{job}/{name}", "wb") as f:
        f.write(data)
fds = {n: os.open(f"{job}/{n}", os.O_RDONLY) for n in old}
for name, fd in fds.items():
    assert os.pread(fd, MIB, 0) == old[name][:MIB], name
with open(f"{job}/rewritten", "wb") as f:
    f.write(os.urandom(5 * MIB))
os.unlink(f"{job}/unlinked")
print(subprocess.run(gc, check=True, capture_output=True, text=True).stdout.strip())
for name, fd in fds.items():
    got = b"".join(os.pread(fd, MIB, off) for off in range(MIB, 5 * MIB, MIB))
    assert got == old[name][MIB:], f"{name}: the reader lost its version"
    assert os.fstat(fd).st_size == 5 * MIB, name
    os.close(fd)
"#;

/// Runs [`GC_UNDER_READERS`] on `job` of `reader`'s mount with `gc` run by `gc_host`; returns
/// what gc said while the readers were open.
fn gc_under_readers(reader: &Mounted, gc_host: &Mounted, job: &std::path::Path) -> String {
    let script = reader.tmp.path().join("gc_under_readers.py");
    std::fs::write(&script, GC_UNDER_READERS).unwrap();
    let mut gc = gc_host.cronusfs();
    gc.arg("-s").arg(&gc_host.store).arg("gc");
    let argv: Vec<String> = std::iter::once(gc.get_program())
        .chain(gc.get_args())
        .map(|a| a.to_string_lossy().into_owned())
        .collect();
    let quoted: Vec<String> = argv.iter().map(|a| format!("'{a}'")).collect();
    reader.ok(&format!(
        "python3 {} {} {}",
        script.display(),
        job.display(),
        quoted.join(" ")
    ))
}

/// Runs gc on `m`'s store until it has freed the two contents the readers held (their holds
/// are given up at close, and on a shared store by the next heartbeat; the two releases may
/// land in different runs, so the runs' counts add up); returns the runs' answers.
fn gc_frees_them_after_close(m: &Mounted) -> String {
    let started = std::time::Instant::now();
    let (mut freed, mut said) = (0, String::new());
    loop {
        let out = m.on_store(&["gc"]);
        crate::mount::assert_success(&out);
        let answer = String::from_utf8_lossy(&out.stdout).to_string();
        freed += freed_contents(&answer);
        said.push_str(&answer);
        if freed >= 2 {
            assert_eq!(freed, 2, "gc freed more than the readers held: {said}");
            return said;
        }
        assert!(
            started.elapsed() < std::time::Duration::from_secs(20),
            "gc never freed the closed readers' contents: {said}"
        );
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
}

/// The N of gc's "freed N contents".
fn freed_contents(answer: &str) -> usize {
    let after = answer
        .split("freed ")
        .nth(1)
        .unwrap_or_else(|| panic!("{answer}"));
    let n = after.split(' ').next().unwrap_or_default();
    n.parse().unwrap_or_else(|_| panic!("{answer}"))
}

#[test]
fn gc_keeps_what_open_readers_read() {
    let m = Mounted::with_options(&["--cache-size", "0"]);
    crate::mount::assert_success(&m.on_store(&["history-retention", "0"]));
    let job = m.job_dir();
    let said = gc_under_readers(&m, &m, &job);
    assert!(said.contains("freed 0 contents"), "{said}");
    assert!(said.contains("kept 2 contents open files read"), "{said}");
    gc_frees_them_after_close(&m);
    m.assert_fsck_clean();
}

#[test]
fn gc_on_one_host_keeps_what_a_reader_on_another_reads() {
    let reader = Mounted::shared();
    crate::mount::assert_success(&reader.on_store(&["history-retention", "0"]));
    let other = reader.another_daemon();
    let job = reader.job_dir();
    // gc runs in a process of its own beside both daemons: a third host.
    let said = gc_under_readers(&reader, &other, &job);
    assert!(said.contains("freed 0 contents"), "{said}");
    gc_frees_them_after_close(&other);
}

/// Item 3: with a small cache, a writer opened beside a passthrough reader, whose cache
/// entry is evicted before the writer closes: the close succeeds, and the version is there.
const CLOSE_AFTER_EVICTION: &str = r#"
import os, sys, time
job, cache = sys.argv[1], sys.argv[2]
MIB = 1 << 20
def entry(path):
    cid = os.getxattr(path, "user.cronus.content").decode()
    return os.path.join(cache, cid[:2], cid[2:])
def wait(cond, what):
    t = time.time()
    while not cond():
        assert time.time() - t < 20, what
        time.sleep(0.02)
for round in range(6):
    paths = {n: f"{job}/{n}{round}.bin" for n in "xyz"}
    for p in paths.values():
        with open(p, "wb") as f:
            f.write(os.urandom(3 * MIB))
    x = paths["x"]
    open(x, "rb").read()
    wait(lambda: os.path.exists(entry(x)), "x never cached")
    x_entry = entry(x)
    r = os.open(x, os.O_RDONLY)
    w = os.open(x, os.O_WRONLY)
    os.pwrite(w, b"NEW", 0)
    for n in "yz":
        open(paths[n], "rb").read()
        wait(lambda: os.path.exists(entry(paths[n])), f"{n} never cached")
    wait(lambda: not os.path.exists(x_entry), "x's entry was never evicted")
    os.close(w)  # raised EIO before: the eviction's unlink was taken for a mapped write
    os.close(r)
    with open(x, "rb") as f:
        assert f.read(3) == b"NEW"
    assert os.getxattr(x, "user.cronus.version") == b"2"
"#;

#[test]
fn close_succeeds_when_the_cache_drops_a_reader_s_entry_meanwhile() {
    let m = Mounted::with_options(&["--cache-size", "8M"]);
    let job = m.job_dir();
    let script = m.tmp.path().join("close_after_eviction.py");
    std::fs::write(&script, CLOSE_AFTER_EVICTION).unwrap();
    m.ok(&format!(
        "python3 {} {} {}",
        script.display(),
        job.display(),
        m.store.join("cache").display()
    ));
}

/// Item 5: a handle whose file another file replaced by a rename still reads and `fstat`s
/// its file (link count 0), as after an unlink.
#[test]
fn fstat_of_a_file_replaced_by_a_rename_shows_it_unlinked() {
    let m = Mounted::new();
    let job = m.job_dir();
    let script = r#"
import os, sys
job = sys.argv[1]
for n, data in (("r1", b"first file"), ("r2", b"second one")):
    with open(f"{job}/{n}", "wb") as f:
        f.write(data)
fd = os.open(f"{job}/r1", os.O_RDONLY)
os.rename(f"{job}/r2", f"{job}/r1")
assert os.pread(fd, 10, 0) == b"first file"
st = os.fstat(fd)
assert (st.st_size, st.st_nlink) == (10, 0), st
assert open(f"{job}/r1", "rb").read() == b"second one"
os.close(fd)
"#;
    m.ok(&format!("python3 -c '{script}' {}", job.display()));
}

/// Item 8: `rm -rf STORE/cache` while mounted: reads stay right, and the cache is made again
/// for the next contents read.
#[test]
fn a_cache_removed_while_mounted_is_made_again() {
    let m = Mounted::new();
    let job = m.job_dir();
    let cache = m.store.join("cache");
    m.ok(&format!(
        "head -c 3M /dev/urandom > $T/a; cp $T/a {0}/a; cat {0}/a > /dev/null",
        job.display()
    ));
    let has_entries = |dir: &std::path::Path| {
        walk_files(dir)
            .iter()
            .any(|p| !p.starts_with(dir.join("tmp")))
    };
    wait_for(|| has_entries(&cache), "the first entry");
    std::fs::remove_dir_all(&cache).unwrap();
    m.ok(&format!(
        "cmp $T/a {0}/a; head -c 2M /dev/urandom > $T/b; cp $T/b {0}/b; cmp $T/b {0}/b",
        job.display()
    ));
    wait_for(|| has_entries(&cache), "an entry after the removal");
    m.ok(&format!("cmp $T/b {0}/b; cmp $T/a {0}/a", job.display()));
    let log = std::fs::read_to_string(&m.log).unwrap_or_default();
    assert!(!log.contains("could not keep content"), "{log}");
}

pub fn walk_files(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let Ok(read) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for e in read.flatten() {
        let p = e.path();
        if p.is_dir() {
            out.extend(walk_files(&p));
        } else {
            out.push(p);
        }
    }
    out
}

pub fn wait_for(cond: impl Fn() -> bool, what: &str) {
    let started = std::time::Instant::now();
    while !cond() {
        assert!(
            started.elapsed() < std::time::Duration::from_secs(20),
            "{what} never came"
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
}
