//! Trusting a command's exit status when the daemon of a mounted store runs it (issue 20):
//! `producer | cronusfs put - … && rm source` never removes the source of a failed put. A
//! forwarded command exits 0 only when the daemon said 0; an error the daemon answers before
//! reading standard input reaches the command whole (its one line and status, as unmounted),
//! and a daemon that gives no answer is a one-line failure. A command that reads standard
//! input sends it framed to an end mark, so that a `put -` killed or unable to read its input
//! stores nothing. Stand-in daemons on a bare socket check the client alone; real mounts check
//! both sides.

use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::net::UnixListener;
use std::path::Path;
use std::process::{Child, ChildStdin, Command, Output, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::mount::{Mounted, assert_success};

const BIN: &str = env!("CARGO_BIN_EXE_cronusfs");

/// The error line a stand-in daemon answers with.
const STAND_IN_ERROR: &[u8] = b"cronusfs: error: the stand-in daemon refuses this put\n";

/// Runs `command` with `input` on its standard input, written by another thread as a producer
/// in a pipeline writes it (its writes fail once the command stops reading; it shrugs that off).
fn run_with_input(mut command: Command, input: Arc<[u8]>) -> Output {
    let mut child = command
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let producer = std::thread::spawn(move || {
        let _ = stdin.write_all(&input);
    });
    let out = child.wait_with_output().unwrap();
    producer.join().unwrap();
    out
}

/// Runs `cronusfs -s STORE put - TARGET` on `m`'s store with `input` piped in.
fn put_from_stdin(m: &Mounted, target: &str, input: Arc<[u8]>) -> Output {
    let mut command = m.cronusfs();
    command.arg("-s").arg(&m.store).args(["put", "-", target]);
    run_with_input(command, input)
}

/// The dataset uuid of a job directory `$M/datasets/DS/partitions/KEY/jobs/JOB`.
fn dataset_of(job: &Path) -> String {
    let dataset = job.ancestors().nth(4).and_then(Path::file_name).unwrap();
    dataset.to_str().unwrap().to_string()
}

/// `len` bytes that are not all alike (so that a shifted or cut copy does not compare equal).
fn patterned_bytes(len: usize) -> Vec<u8> {
    (0..len as u64)
        .map(|i| (i.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 56) as u8)
        .collect()
}

/// The one line a failed command said on stderr, checked to be one line with exit status 1.
fn one_line_failure(out: &Output, what: &str) -> String {
    let said = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(out.status.code(), Some(1), "{what}: {said}");
    assert_eq!(said.lines().count(), 1, "{what}: {said}");
    assert!(said.starts_with("cronusfs: error: "), "{what}: {said}");
    said
}

#[test]
fn a_put_from_stdin_the_daemon_refuses_fails_as_it_does_unmounted() {
    let m = Mounted::new();
    let ds = dataset_of(&m.job_dir());
    let target = format!("{ds}/typo-key/0/data.bin");
    let large: Arc<[u8]> = vec![0u8; 50 << 20].into();
    let small: Arc<[u8]> = Arc::from(&b"a,b\n1,2\n"[..]);
    let mut said_mounted = Vec::new();
    for (what, input) in [("50 MiB", &large), ("8 bytes", &small)] {
        for round in 1..=10 {
            let out = put_from_stdin(&m, &target, input.clone());
            let what = format!("{what} of stdin, round {round}");
            let said = one_line_failure(&out, &what);
            assert!(
                said.contains("has no partition \"typo-key\""),
                "{what}: {said}"
            );
            assert!(out.stdout.is_empty(), "{what}");
            said_mounted.push(said);
        }
    }
    // The pipeline of the issue: the source of a failed put is kept.
    m.ok(&format!(
        r#"for i in 1 2 3; do
             head -c 50M /dev/zero > "$T/source"
             cat "$T/source" | "$CRONUSFS" -s {store} put - {target} 2>/dev/null && rm "$T/source"
             test -f "$T/source"
           done"#,
        store = m.store.display()
    ));
    // Nothing was stored: no partition was made, no object is listed.
    let partitions: Vec<String> =
        std::fs::read_dir(m.mnt.join(format!("datasets/{ds}/partitions")))
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
    assert_eq!(partitions, ["k"]);
    let listing = m.on_store(&["ls", &ds]);
    assert_success(&listing);
    assert!(
        !String::from_utf8_lossy(&listing.stdout).contains("data.bin"),
        "{}",
        String::from_utf8_lossy(&listing.stdout)
    );
    let log = std::fs::read_to_string(&m.log).unwrap_or_default();
    assert!(!log.contains("panicked"), "{log}");
    // Unmounted, the same command says the same line with the same status.
    m.umount();
    let unmounted = put_from_stdin(&m, &target, small.clone());
    let said = one_line_failure(&unmounted, "unmounted");
    assert!(
        said_mounted.iter().all(|s| *s == said),
        "unmounted: {said}mounted: {said_mounted:?}"
    );
}

#[test]
fn a_put_from_stdin_through_the_daemon_stores_exactly_the_bytes() {
    let m = Mounted::new();
    let job = m.job_dir();
    let ds = dataset_of(&job);
    let object = format!("{ds}/k/0/data.bin");
    let bytes: Arc<[u8]> = patterned_bytes(50 << 20).into();
    let out = put_from_stdin(&m, &object, bytes.clone());
    assert_success(&out);
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(said.contains("/k/0/data.bin\t"), "{said}");
    assert!(said.split('\t').any(|f| f == "52428800"), "{said}");
    let got = m.on_store(&["get", &object]);
    assert_success(&got);
    assert!(
        got.stdout[..] == bytes[..],
        "get returned {} bytes, not the {} put",
        got.stdout.len(),
        bytes.len()
    );
    let read = std::fs::read(job.join("data.bin")).unwrap();
    assert!(
        read[..] == bytes[..],
        "the mount shows {} bytes",
        read.len()
    );
}

/// How a stand-in daemon treats the one request it gets.
#[derive(Clone, Copy, Debug)]
enum StandIn {
    /// Answers an error and exit status 1 at once and closes, its input unread (as a daemon
    /// did before it learnt to read the rest: the connection is reset under the sender).
    AnswersBeforeReading,
    /// Reads all the input, then closes without an answer.
    ReadsAndVanishes,
    /// Closes without an answer, its input unread.
    Vanishes,
}

/// Serves `dir/cronusfs.sock` as the daemon of a store directory `dir`, for connections that
/// send nothing (the command's check that a daemon answers) and one request, treated as
/// `how` says.
fn stand_in_daemon(dir: &Path, how: StandIn) {
    let listener = UnixListener::bind(dir.join("cronusfs.sock")).unwrap();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(stream) = stream else { return };
            let mut reader = BufReader::new(&stream);
            let mut line = Vec::new();
            if reader.read_until(b'\n', &mut line).unwrap_or(0) == 0 {
                continue;
            }
            match how {
                StandIn::AnswersBeforeReading => {
                    let mut answer = frame(b'e', STAND_IN_ERROR);
                    answer.extend(frame(b'x', &[1]));
                    let _ = (&stream).write_all(&answer);
                }
                StandIn::ReadsAndVanishes => {
                    let _ = std::io::copy(&mut reader, &mut std::io::sink());
                }
                StandIn::Vanishes => {}
            }
            return;
        }
    });
}

/// One frame of a daemon's answer: tag, u32 length, body.
fn frame(tag: u8, body: &[u8]) -> Vec<u8> {
    let mut framed = vec![tag];
    framed.extend((body.len() as u32).to_be_bytes());
    framed.extend_from_slice(body);
    framed
}

#[test]
fn a_forwarded_command_exits_0_only_when_the_daemon_says_so() {
    let large: Arc<[u8]> = vec![7u8; 50 << 20].into();
    let small: Arc<[u8]> = Arc::from(&b"a,b\n1,2\n"[..]);
    let all = [
        StandIn::AnswersBeforeReading,
        StandIn::ReadsAndVanishes,
        StandIn::Vanishes,
    ];
    for how in all {
        for (size, input) in [("50 MiB", &large), ("8 bytes", &small)] {
            for round in 1..=5 {
                let dir = tempfile::tempdir().unwrap();
                stand_in_daemon(dir.path(), how);
                let mut command = Command::new("timeout");
                command.args(["60", BIN]).arg("-s").arg(dir.path());
                command.args(["put", "-", "ds/typo-key/0/data.bin"]);
                let out = run_with_input(command, input.clone());
                let what = format!("{how:?}, {size} of stdin, round {round}");
                let said = one_line_failure(&out, &what);
                match how {
                    StandIn::AnswersBeforeReading => {
                        assert_eq!(said.as_bytes(), STAND_IN_ERROR, "{what}")
                    }
                    _ => assert!(said.contains("the daemon serving"), "{what}: {said}"),
                }
            }
        }
    }
}

/// A plain file given as a store: one line saying it is no store, for `-s FILE` and for
/// `init FILE`, and the file is left as it was.
#[test]
fn a_plain_file_is_not_a_store() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("notes.txt");
    std::fs::write(&file, b"my notes\n").unwrap();
    let runs = [
        Command::new(BIN)
            .arg("-s")
            .arg(&file)
            .args(["dataset", "ls"])
            .output()
            .unwrap(),
        Command::new(BIN).arg("init").arg(&file).output().unwrap(),
    ];
    for out in runs {
        assert!(!out.status.success());
        let said = String::from_utf8_lossy(&out.stderr);
        assert_eq!(said.lines().count(), 1, "{said}");
        assert!(said.contains("is not a store: it is a file"), "{said}");
        assert!(!said.contains("init") || !said.contains("first"), "{said}");
    }
    assert_eq!(std::fs::read(&file).unwrap(), b"my notes\n");
}

/// Starts `cronusfs -s STORE put - TARGET` on `m`'s store (the command itself, so that killing
/// it kills the command) and writes `len` bytes into its standard input, which stays open;
/// returns the command and its standard input once they are written (the command read them
/// all but the last pipeful, and sent them on).
fn put_with_input_left_open(m: &Mounted, target: &str, len: usize) -> (Child, ChildStdin) {
    let mut child = Command::new(BIN)
        .arg("-s")
        .arg(&m.store)
        .args(["put", "-", target])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let (wrote, written) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let result = stdin.write_all(&patterned_bytes(len));
        let _ = wrote.send((result, stdin));
    });
    match written.recv_timeout(Duration::from_secs(60)) {
        Ok((Ok(()), stdin)) => (child, stdin),
        other => {
            let _ = child.kill();
            let _ = child.wait();
            panic!(
                "the command did not read its input: {:?}",
                other.map(|(r, _)| r)
            );
        }
    }
}

/// Asserts that the object `DS/k/0/NAME` shows, for `within`, neither in the job directory
/// `job` of `m`'s mount nor in the daemon's `ls` (a daemon that took a cut input for all of
/// it stores the object at once).
fn never_shows(m: &Mounted, job: &Path, name: &str, within: Duration) {
    let until = Instant::now() + within;
    loop {
        let listing = m.on_store(&["ls", &format!("{}/k/0", dataset_of(job))]);
        assert_success(&listing);
        let listed = String::from_utf8_lossy(&listing.stdout);
        assert!(!listed.contains(name), "{name} was stored: {listed}");
        assert!(!job.join(name).exists(), "{name} was stored");
        if Instant::now() >= until {
            return;
        }
        std::thread::sleep(Duration::from_millis(250));
    }
}

/// A `put -` killed while it sends its standard input to the daemon stores nothing, as the
/// same command killed on an unmounted store stores nothing: the daemon does not take the end
/// of the connection for the end of the input. The daemon goes on serving.
#[test]
fn a_put_whose_command_is_killed_mid_input_stores_nothing() {
    let m = Mounted::new();
    let job = m.job_dir();
    let ds = dataset_of(&job);
    let target = format!("{ds}/k/0/cut.bin");
    for _ in 0..3 {
        let (mut child, stdin) = put_with_input_left_open(&m, &target, 4 << 20);
        child.kill().unwrap();
        child.wait().unwrap();
        drop(stdin);
        never_shows(&m, &job, "cut.bin", Duration::from_secs(3));
    }
    let bytes: Arc<[u8]> = patterned_bytes(3 << 20).into();
    let out = put_from_stdin(&m, &format!("{ds}/k/0/after.bin"), bytes.clone());
    assert_success(&out);
    let got = m.on_store(&["get", &format!("{ds}/k/0/after.bin")]);
    assert_success(&got);
    assert!(
        got.stdout[..] == bytes[..],
        "get: {} bytes",
        got.stdout.len()
    );
    never_shows(&m, &job, "cut.bin", Duration::ZERO);
    let log = std::fs::read_to_string(&m.log).unwrap_or_default();
    assert!(!log.contains("panicked"), "{log}");
}

/// A `put -` whose standard input cannot be read (a directory) fails and stores nothing, as
/// it does unmounted: the daemon is told, rather than left to take what it got for the input.
#[test]
fn a_put_whose_standard_input_cannot_be_read_stores_nothing() {
    let m = Mounted::new();
    let job = m.job_dir();
    let ds = dataset_of(&job);
    let dir = tempfile::tempdir().unwrap();
    let out = m
        .cronusfs()
        .arg("-s")
        .arg(&m.store)
        .args(["put", "-", &format!("{ds}/k/0/unread.bin")])
        .stdin(std::fs::File::open(dir.path()).unwrap())
        .output()
        .unwrap();
    let said = one_line_failure(&out, "stdin a directory");
    assert!(said.contains("standard input"), "{said}");
    never_shows(&m, &job, "unread.bin", Duration::from_secs(2));
}

/// What a recording stand-in daemon got: the request line and the frames after it, each its
/// tag and body, up to the first that is not an `i` frame or the connection's end.
type Recorded = (serde_json::Value, Vec<(u8, Vec<u8>)>);

/// Serves `dir/cronusfs.sock` as the daemon of a store directory `dir`, for connections that
/// send nothing and one request, whose request line and input frames it records; it answers
/// exit status 0 once the input ended.
fn recording_daemon(dir: &Path) -> std::sync::mpsc::Receiver<Recorded> {
    let listener = UnixListener::bind(dir.join("cronusfs.sock")).unwrap();
    let (record, recorded) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(stream) = stream else { return };
            let mut reader = BufReader::new(&stream);
            let mut line = String::new();
            if reader.read_line(&mut line).unwrap_or(0) == 0 {
                continue;
            }
            let request = serde_json::from_str(&line).unwrap_or(serde_json::Value::Null);
            let mut frames = Vec::new();
            let mut head = [0u8; 5];
            while reader.read_exact(&mut head).is_ok() {
                let len = u32::from_be_bytes([head[1], head[2], head[3], head[4]]) as usize;
                let mut body = vec![0u8; len];
                if reader.read_exact(&mut body).is_err() {
                    break;
                }
                frames.push((head[0], body));
                if head[0] != b'i' {
                    break;
                }
            }
            let _ = (&stream).write_all(&frame(b'x', &[0]));
            let _ = record.send((request, frames));
            return;
        }
    });
    recorded
}

/// A command that reads standard input sends it framed, under `argv` (which a daemon older
/// than the frames refuses, rather than store them): pieces of at most 64 KiB that make up the
/// input exactly, then an end frame; or, when it cannot read its input, an abort frame saying
/// why instead of the end frame, and it fails.
#[test]
fn a_forwarded_command_sends_its_input_framed_to_its_end() {
    let input = patterned_bytes((1 << 20) + 12345);
    for unreadable in [false, true] {
        let dir = tempfile::tempdir().unwrap();
        let recorded = recording_daemon(dir.path());
        let mut command = Command::new("timeout");
        command.args(["60", BIN]).arg("-s").arg(dir.path());
        command.args(["put", "-", "ds/k/0/data.bin"]);
        let out = if unreadable {
            let stdin = std::fs::File::open(dir.path()).unwrap();
            command.stdin(stdin).output().unwrap()
        } else {
            run_with_input(command, input.clone().into())
        };
        let (request, frames) = recorded.recv_timeout(Duration::from_secs(60)).unwrap();
        assert!(request.get("args").is_none(), "{request}");
        assert_eq!(request["argv"][1], "-s", "{request}");
        let (last, pieces) = frames.split_last().expect("no frames");
        assert!(
            pieces
                .iter()
                .all(|(tag, body)| *tag == b'i' && body.len() <= 1 << 16)
        );
        if unreadable {
            let said = one_line_failure(&out, "stdin a directory");
            assert_eq!(last.0, b'a', "{said}");
            assert!(String::from_utf8_lossy(&last.1).contains("standard input"));
        } else {
            assert_success(&out);
            assert_eq!(*last, (b'z', Vec::new()));
            let sent: Vec<u8> = pieces.iter().flat_map(|(_, b)| b.iter().copied()).collect();
            assert!(
                sent == input,
                "{} bytes sent, not {}",
                sent.len(),
                input.len()
            );
        }
    }
}
