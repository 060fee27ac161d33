//! Silent servers under a shared store: an S3 server stopped with SIGSTOP (it accepts and
//! never answers) fails content reads with EIO within S3's request limit while the mount goes
//! on answering listings, and everything works again once it runs on, without a remount; a
//! PostgreSQL that accepts and never answers fails `init`, a command and `mount` in seconds,
//! with one line naming the server.

use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_cronusfs");

/// How long one S3 request may take (SEMANTICS, "A shared store"): a silent server fails it.
const S3_REQUEST_LIMIT: Duration = Duration::from_secs(5);

/// Readers started at once: more than the mount's request threads (4) and content threads (4).
const READERS: u8 = 6;

#[test]
fn a_stopped_s3_fails_reads_in_seconds_and_never_holds_up_listings() {
    let s3 = crate::services::private_seaweed();
    crate::services::use_s3_env();
    let content = format!(
        "s3://{}/silent?endpoint={}&region=us-east-1",
        s3.bucket, s3.endpoint
    );
    let m = crate::mount::Mounted::shared_on(crate::services::pg_store_url(), content, &[]);
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
