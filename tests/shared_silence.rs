//! A shared store's servers failing or falling silent: an S3 server stopped with SIGSTOP (it
//! accepts and never answers) fails content reads with EIO within S3's request limit while
//! the mount goes on answering listings; an S3 server that is down fails writes and commits no
//! mix; both work again without a remount once the server is back. A PostgreSQL that accepts
//! and never answers fails `init`, a command and `mount` in seconds, with one line naming the
//! server; one restarted under a mount is reconnected to without an error.

use std::path::{Path, PathBuf};

use cronusfs::storage::location::{self, Location};
use cronusfs::storage::{Iden, RowRead, RowWrite, Storage, Valu};
use std::process::Command;
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_cronusfs");

/// How long one S3 request may take (SEMANTICS, "A shared store"): a silent server fails it.
const S3_REQUEST_LIMIT: Duration = Duration::from_secs(5);

/// Readers started at once: more than the mount's request threads (4) and content threads (4).
const READERS: u8 = 6;

#[test]
fn a_stopped_s3_fails_reads_in_seconds_and_never_holds_up_listings() {
    let (s3, m) = mounted_on_private_s3("silent");
    let job = m.job_dir();
    // Written through the mount, never read: no reader has put them in the content cache.
    let files: Vec<(PathBuf, Vec<u8>)> = (0..READERS)
        .map(|i| {
            let (path, bytes) = (
                job.join(format!("f{i}.bin")),
                crate::content::bytes(8 << 20, i),
            );
            std::fs::write(&path, &bytes).unwrap();
            (path, bytes)
        })
        .collect();
    let frozen = s3.freeze();
    let readers: Vec<_> = files
        .iter()
        .map(|(path, _)| {
            let path = path.clone();
            std::thread::spawn(move || {
                let started = Instant::now();
                let read = std::fs::read(&path);
                (read.map(|b| b.len()), started.elapsed())
            })
        })
        .collect();
    // The reads are in the daemon by now, waiting for S3.
    std::thread::sleep(Duration::from_millis(500));
    let listing = Instant::now();
    let listed = m.ok(&format!("ls -l {}", job.display()));
    let took = listing.elapsed();
    eprintln!("measured: ls -l of a job directory took {took:?} with {READERS} reads stuck on S3");
    assert!(
        took < Duration::from_secs(1),
        "a listing waited {took:?} for content reads stuck on a silent S3"
    );
    assert_eq!(listed.matches(".bin").count(), READERS as usize, "{listed}");
    // Six readers, four content threads: the last two wait for a thread, then for S3.
    let bound = 2 * S3_REQUEST_LIMIT + Duration::from_secs(5);
    for (i, reader) in readers.into_iter().enumerate() {
        let (read, took) = reader.join().unwrap();
        eprintln!("measured: reader {i} of a silent S3 got {read:?} after {took:?}");
        let err = read.expect_err("a read of a silent S3 fails");
        assert_eq!(err.raw_os_error(), Some(libc::EIO), "{err}");
        assert!(
            took < bound,
            "reader {i} failed after {took:?} (bound {bound:?})"
        );
    }
    drop(frozen);
    assert_everything_works_again(&m, &job, &files);
    m.umount();
    m.assert_fsck_clean();
}

/// Checks that once S3 runs on, the mount of `m` reads `files` and takes a new file, without
/// a remount.
fn assert_everything_works_again(
    m: &crate::mount::Mounted,
    job: &std::path::Path,
    files: &[(PathBuf, Vec<u8>)],
) {
    let back = Instant::now();
    for (path, bytes) in files {
        loop {
            match std::fs::read(path) {
                Ok(read) => {
                    assert!(read == *bytes, "{} reads back as written", path.display());
                    break;
                }
                Err(e) if back.elapsed() < Duration::from_secs(30) => {
                    assert_eq!(e.raw_os_error(), Some(libc::EIO), "{e}");
                    std::thread::sleep(Duration::from_millis(200));
                }
                Err(e) => panic!("S3 runs on, and {} still fails: {e}", path.display()),
            }
        }
    }
    eprintln!(
        "measured: every file read back {:?} after S3 ran on",
        back.elapsed()
    );
    let new = crate::content::bytes(3 << 20, 99);
    std::fs::write(job.join("new.bin"), &new).unwrap();
    assert!(std::fs::read(job.join("new.bin")).unwrap() == new);
    m.ok(&format!("ls {}/new.bin", job.display()));
}

/// Returns the port of a TCP listener on 127.0.0.1 that accepts connections and never
/// answers nor closes them: a hung server.
fn silent_listener() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for stream in listener.incoming() {
            held.push(stream);
        }
    });
    port
}

#[test]
fn a_silent_postgres_fails_commands_and_mount_in_seconds_naming_it() {
    let port = silent_listener();
    let url = format!("postgres://postgres@127.0.0.1:{port}/postgres?schema=silent");
    let url = url.as_str();
    let tmp = tempfile::tempdir().unwrap();
    let mnt = tmp.path().join("mnt");
    std::fs::create_dir(&mnt).unwrap();
    let mnt = mnt.to_str().unwrap();
    let said = format!("PostgreSQL at 127.0.0.1:{port} did not answer");
    let commands: [&[&str]; 3] = [
        &["init", url],
        &["-s", url, "dataset", "ls"],
        &["mount", url, mnt],
    ];
    for args in commands {
        let started = Instant::now();
        // Killed at 40 s: before the fix, `init` and `ls` waited for ever, `mount` 60 s.
        let out = Command::new("timeout")
            .arg("40")
            .arg(BIN)
            .args(args)
            .env("XDG_CACHE_HOME", tmp.path().join("cache"))
            .output()
            .unwrap();
        let took = started.elapsed();
        let err = String::from_utf8_lossy(&out.stderr);
        eprintln!("measured: cronusfs {args:?} failed after {took:?}: {err}");
        assert!(!out.status.success(), "{args:?} succeeded");
        assert!(
            took < Duration::from_secs(20),
            "{args:?} took {took:?}: {err}"
        );
        assert!(err.contains(&said), "{args:?} names the server: {err}");
        assert_eq!(
            err.trim_end().lines().count(),
            1,
            "{args:?}: one line: {err}"
        );
    }
    assert!(
        !crate::mount::is_mounted(std::path::Path::new(mnt)),
        "nothing mounted"
    );
}

/// Mounts a new shared store whose content is under `prefix` of an S3 server of the test's
/// own (which the test may stop); returns the server and the mount.
fn mounted_on_private_s3(prefix: &str) -> (crate::services::Seaweed, crate::mount::Mounted) {
    let s3 = crate::services::private_seaweed();
    crate::services::use_s3_env();
    let content = format!(
        "s3://{}/{prefix}?endpoint={}&region=us-east-1",
        s3.bucket, s3.endpoint
    );
    let m = crate::mount::Mounted::shared_on(crate::services::pg_store_url(), content, &[]);
    (s3, m)
}

#[test]
fn a_restarted_postgres_server_is_reconnected_to_without_errors() {
    let pg = crate::services::private_postgres();
    let url = |schema: &str| {
        format!(
            "postgres://postgres@127.0.0.1:{}/postgres?schema={schema}",
            pg.port
        )
    };
    let location = Location::parse(Path::new(&url("lib"))).unwrap();
    let store = location::create(&location, None).unwrap().rows;
    let iden = Iden::new("n").unwrap();
    store
        .set_rows_by_id_prop(&iden, "v", &Valu::Int(0))
        .unwrap();
    // Several pooled connections, all open when the server restarts.
    std::thread::scope(|s| {
        for _ in 0..4 {
            s.spawn(|| (0..50).for_each(|_| drop(store.rows_by_id(&iden).unwrap())));
        }
    });
    let m = crate::mount::Mounted::shared_at(url("mount"), &[]);
    let job = m.job_dir();
    std::fs::write(job.join("before.txt"), b"before the restart").unwrap();
    pg.restart();
    // Every call after the restart works, on the library's store and through the mount.
    let first = std::time::Instant::now();
    store.rows_by_id(&iden).unwrap();
    eprintln!(
        "measured: the first call after a PostgreSQL restart took {:?} (reconnecting)",
        first.elapsed()
    );
    for n in 1..=20 {
        store
            .set_rows_by_id_prop(&iden, "v", &Valu::Int(n))
            .unwrap();
        assert_eq!(counter_of(&*store, &iden), n);
    }
    let first = std::time::Instant::now();
    assert_eq!(
        std::fs::read(job.join("before.txt")).unwrap(),
        b"before the restart"
    );
    eprintln!(
        "measured: the first read through the mount after the restart took {:?}",
        first.elapsed()
    );
    std::fs::write(job.join("after.txt"), b"after the restart").unwrap();
    assert_eq!(
        std::fs::read(job.join("after.txt")).unwrap(),
        b"after the restart"
    );
    m.umount();
    m.assert_fsck_clean();
}

fn counter_of(s: &dyn Storage, iden: &Iden) -> i64 {
    s.rows_by_id_prop(iden, "v", None).unwrap()[0]
        .valu
        .as_int()
        .unwrap()
}

/// S3 unreachable while mounted: a write fails (EIO) and commits nothing; the object written
/// before keeps its version; once S3 is back, everything works again without a remount.
#[test]
fn an_unreachable_s3_fails_writes_and_commits_nothing() {
    let (s3, m) = mounted_on_private_s3("down");
    let job = m.job_dir();
    let old = crate::content::bytes(3 << 20, 1);
    write_and_close(&job.join("old.bin"), &old).unwrap();
    s3.stop();
    let new = crate::content::bytes(3 << 20, 2);
    let failing = std::time::Instant::now();
    let err = write_and_close(&job.join("new.bin"), &new).unwrap_err();
    assert_eq!(err.raw_os_error(), Some(libc::EIO), "{err}");
    eprintln!(
        "measured: a 3 MiB write with S3 down failed (EIO) after {:?}",
        failing.elapsed()
    );
    let err = write_and_close(&job.join("old.bin"), &new).unwrap_err();
    assert_eq!(err.raw_os_error(), Some(libc::EIO), "{err}");
    s3.start();
    // SeaweedFS answers before its volumes are back: reads fail (EIO) until they are.
    let back = std::time::Instant::now();
    let read_old = loop {
        match std::fs::read(job.join("old.bin")) {
            Ok(bytes) => {
                eprintln!(
                    "measured: reads worked again {:?} after S3 was restarted",
                    back.elapsed()
                );
                break bytes;
            }
            Err(e) if back.elapsed() < std::time::Duration::from_secs(60) => {
                assert_eq!(e.raw_os_error(), Some(libc::EIO), "{e}");
                std::thread::sleep(std::time::Duration::from_millis(500));
            }
            Err(e) => panic!("S3 never came back: {e}"),
        }
    };
    // Never a mix: the old version, or (the release after the failed close tried once more,
    // and S3 was back by then) what the writer's successful write() calls gave, which is the
    // new bytes or a prefix of them (the write that failed with EIO and those after it are
    // not in it), as on a local disk that fails in the middle of a `cp`.
    assert!(
        read_old == old || (!read_old.is_empty() && new.starts_with(&read_old)),
        "old.bin is the old version or a prefix of the new one ({} bytes)",
        read_old.len()
    );
    match std::fs::read(job.join("new.bin")) {
        Ok(bytes) => assert!(
            new.starts_with(&bytes),
            "new.bin a prefix of its bytes or absent"
        ),
        Err(e) => assert_eq!(e.kind(), std::io::ErrorKind::NotFound),
    }
    std::fs::write(job.join("new.bin"), &new).unwrap();
    assert!(std::fs::read(job.join("new.bin")).unwrap() == new);
    m.umount();
    m.assert_fsck_clean();
}

/// Writes `bytes` to a new or truncated file and closes it, returning the error of the close
/// too (dropping a `File` ignores it).
fn write_and_close(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::fd::IntoRawFd;
    let mut f = std::fs::File::create(path)?;
    f.write_all(bytes)?;
    let fd = f.into_raw_fd();
    // SAFETY: `fd` was just taken from the file and is closed once, here.
    match unsafe { libc::close(fd) } {
        0 => Ok(()),
        _ => Err(std::io::Error::last_os_error()),
    }
}
