//! `.cronusfs/accesslog`: one line per request the mount answers, streamed to every open
//! handle of the file while it is open. Requests are queued as they are answered and become
//! lines (with their paths and processes) when a handle reads them; while no handle is open a
//! request costs the mount one atomic load. A read waits up to a second for the next request,
//! then answers `#` alone on a line, so a reader learns that the mount is still there.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant, SystemTime};

use super::Ino;

/// One request answered.
#[derive(Clone, Debug)]
pub struct Access {
    /// When it arrived.
    pub at: SystemTime,
    /// The caller's user id (0 for a request the kernel sends on its own, like a release).
    pub uid: u32,
    /// The caller's process id (0 for a request the kernel sends on its own).
    pub pid: u32,
    /// The operation (`lookup`, `read`, …).
    pub op: &'static str,
    /// The inode the request is about (for a request about a name, its directory).
    pub ino: Ino,
    /// The name a request about a directory's entry names (`lookup`, `create`, `unlink`, …).
    pub name: Option<Box<str>>,
    /// The errno it failed with, or 0.
    pub errno: i32,
    /// The bytes a read returned or a write took.
    pub bytes: Option<u64>,
    /// How long it took to answer.
    pub took: Duration,
    /// The caller's name (`comm`): best read at the request's arrival, while the caller waits
    /// for the answer ([`process_name`]); [`AccessLog::record`] reads it when not given.
    pub process: Option<Arc<str>>,
}

/// The first line every handle reads: the fields of the lines after it.
pub const ACCESS_LOG_HEADER: &str = "# time uid pid process op result bytes seconds path\n";

/// The most handles of the access log open at once (each queues every request).
const MOST_READERS: usize = 8;
/// The most requests queued for one handle; past them, requests are counted and dropped
/// until it reads again (a line then says how many it missed).
const MOST_QUEUED: usize = 1 << 14;
/// How long a read waits for a request before it answers `#`.
const HEARTBEAT: Duration = Duration::from_secs(1);
/// The most requests one read turns into lines (the rest stay queued, counted by the cap).
const MOST_TAKEN: usize = 4096;

/// What one open handle has not read yet.
#[derive(Default)]
struct Reader {
    queued: VecDeque<Access>,
    dropped: u64,
    /// Lines made and not read yet (a read answers at most what it asked for).
    text: Vec<u8>,
}

#[derive(Default)]
struct State {
    /// Set when the mount is going away: every read answers end of file from then on.
    closed: bool,
    readers: HashMap<u64, Reader>,
}

/// The requests each open handle of `.cronusfs/accesslog` has not read yet.
#[derive(Default)]
pub struct AccessLog {
    /// How many handles are open: zero, and a request is not queued at all.
    open: AtomicUsize,
    state: Mutex<State>,
    recorded: Condvar,
}

/// Why a handle of the access log could not be opened.
#[derive(Debug, PartialEq, Eq)]
pub struct TooManyReaders;

impl AccessLog {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Returns whether a handle is open: whether requests should be recorded.
    #[inline]
    pub fn is_read(&self) -> bool {
        self.open.load(Ordering::Relaxed) > 0
    }

    /// Queues `access` for every open handle, with its caller's name (read now: the caller
    /// may be gone by the time the line is read).
    pub fn record(&self, mut access: Access) {
        if access.process.is_none() {
            access.process = Some(process_name(access.pid));
        }
        let mut state = self.lock();
        let mut readers = state.readers.values_mut().peekable();
        while let Some(reader) = readers.next() {
            if reader.queued.len() >= MOST_QUEUED {
                reader.dropped += 1;
            } else if readers.peek().is_some() {
                reader.queued.push_back(access.clone());
            } else {
                reader.queued.push_back(access);
                break;
            }
        }
        drop(state);
        self.recorded.notify_all();
    }

    /// Opens handle `fh`: it reads every request recorded from now on.
    pub(super) fn open(&self, fh: u64) -> Result<(), TooManyReaders> {
        let mut state = self.lock();
        if state.readers.len() >= MOST_READERS {
            return Err(TooManyReaders);
        }
        let reader = Reader {
            text: ACCESS_LOG_HEADER.as_bytes().to_vec(),
            ..Reader::default()
        };
        state.readers.insert(fh, reader);
        self.open.store(state.readers.len(), Ordering::Relaxed);
        Ok(())
    }

    /// Releases handle `fh`; returns whether it was one of the access log's.
    pub(super) fn release(&self, fh: u64) -> bool {
        let mut state = self.lock();
        let was = state.readers.remove(&fh).is_some();
        self.open.store(state.readers.len(), Ordering::Relaxed);
        was
    }

    /// Returns whether `fh` is a handle of the access log (no lock taken while none is open).
    pub(super) fn is_handle(&self, fh: u64) -> bool {
        self.is_read() && self.lock().readers.contains_key(&fh)
    }

    /// Ends every handle's stream: reads answer end of file from now on (the mount is
    /// going away, and a reader must not keep it).
    pub fn close(&self) {
        self.lock().closed = true;
        self.recorded.notify_all();
    }

    /// Reads up to `size` bytes of handle `fh`'s lines; with `wait`, waits up to a second for
    /// a request (then `#`). `path_of` names the place of a request. Requests become lines only
    /// while the handle has fewer than `size` bytes of lines made, at most [`MOST_TAKEN`] at a
    /// time: a reader of small reads leaves the rest queued (and counted past the cap). `None`
    /// when `fh` is not a handle of the access log.
    pub(super) fn read(
        &self,
        fh: u64,
        size: u32,
        wait: bool,
        path_of: impl Fn(Ino, Option<&str>) -> String,
    ) -> Option<Vec<u8>> {
        let (accesses, dropped) = match self.wait_for_lines(fh, size as usize, wait)? {
            Waited::Lines(accesses, dropped) => (accesses, dropped),
            Waited::Nothing => return Some(b"#\n".to_vec()),
            Waited::Closed => return Some(Vec::new()),
        };
        let mut text = String::new();
        if dropped > 0 {
            text.push_str(&format!(
                "# {dropped} requests not shown: this reader fell behind\n"
            ));
        }
        for access in &accesses {
            let path = path_of(access.ino, access.name.as_deref());
            text.push_str(&line(access, &path));
        }
        let mut state = self.lock();
        let reader = state.readers.get_mut(&fh)?;
        reader.text.extend_from_slice(text.as_bytes());
        let n = reader.text.len().min(size as usize);
        Some(reader.text.drain(..n).collect())
    }

    /// Waits (with `wait`, up to [`HEARTBEAT`]) for something for handle `fh` to read, and
    /// takes the requests to turn into lines: none while it has `size` bytes of lines made.
    fn wait_for_lines(&self, fh: u64, size: usize, wait: bool) -> Option<Waited> {
        let deadline = Instant::now() + HEARTBEAT;
        let mut state = self.lock();
        loop {
            let closed = state.closed;
            let reader = state.readers.get_mut(&fh)?;
            if reader.text.len() >= size {
                return Some(Waited::Lines(VecDeque::new(), 0));
            }
            if !reader.text.is_empty() || !reader.queued.is_empty() || reader.dropped > 0 {
                let n = reader.queued.len().min(MOST_TAKEN);
                let accesses = reader.queued.drain(..n).collect();
                return Some(Waited::Lines(accesses, std::mem::take(&mut reader.dropped)));
            }
            if closed {
                return Some(Waited::Closed);
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() || !wait {
                return Some(Waited::Nothing);
            }
            state = (self.recorded.wait_timeout(state, left))
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
    }
}

enum Waited {
    Lines(VecDeque<Access>, u64),
    Nothing,
    Closed,
}

/// The line of `access`, about `path`.
fn line(access: &Access, path: &str) -> String {
    let result = match access.errno {
        0 => "OK".into(),
        n => crate::meters::errno_name(n),
    };
    let bytes = access.bytes.map_or("-".to_string(), |n| n.to_string());
    format!(
        "{} {} {} {} {} {result} {bytes} {:.6} {}\n",
        humantime::format_rfc3339_micros(access.at),
        access.uid,
        access.pid,
        access.process.as_deref().unwrap_or("?"),
        access.op,
        access.took.as_secs_f64(),
        escaped(path),
    )
}

/// `text` on one line and harmless on a terminal: a backslash as `\\`, a newline as `\n`,
/// every other control character (ESC, CR, tab, C1 codes…) as `\xNN` or `\u{NNNN}`. Any user
/// who reaches the mount names the paths and processes the owner reads.
pub fn escaped(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            c if (c as u32) < 0x20 || c as u32 == 0x7f => {
                out.push_str(&format!("\\x{:02x}", c as u32))
            }
            c if c.is_control() => out.push_str(&format!("\\u{{{:04x}}}", c as u32)),
            c => out.push(c),
        }
    }
    out
}

/// The name of process `pid` (its `comm`): `-` for the kernel's own requests, `?` for one
/// gone. Read at each request: an `exec` or a `prctl` renames a process at any time.
pub fn process_name(pid: u32) -> Arc<str> {
    if pid == 0 {
        return "-".into();
    }
    match std::fs::read(format!("/proc/{pid}/comm")) {
        Ok(comm) if comm.len() > 1 => {
            let comm = String::from_utf8_lossy(comm.strip_suffix(b"\n").unwrap_or(&comm));
            escaped(&comm.replace(' ', "_")).into()
        }
        _ => "?".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn access(op: &'static str, ino: u64) -> Access {
        Access {
            at: SystemTime::UNIX_EPOCH + Duration::from_micros(1_500_000),
            uid: 1000,
            pid: std::process::id(),
            op,
            ino: Ino(ino),
            name: None,
            errno: 0,
            bytes: None,
            took: Duration::from_micros(42),
            process: None,
        }
    }

    fn path_of(ino: Ino, name: Option<&str>) -> String {
        format!("/n{}/{}", ino.0, name.unwrap_or(""))
    }

    #[test]
    fn a_handle_reads_the_header_then_each_request_recorded_while_it_is_open() {
        let log = AccessLog::default();
        log.record(access("getattr", 1));
        assert!(!log.is_read(), "nobody reads");
        log.open(100).unwrap();
        assert!(log.is_read());
        let header = log.read(100, 4096, true, path_of).unwrap();
        assert_eq!(header, ACCESS_LOG_HEADER.as_bytes());
        let mut lookup = access("lookup", 7);
        (lookup.name, lookup.errno) = (Some("a b".into()), libc::ENOENT);
        log.record(lookup);
        let mut read = access("read", 9);
        read.bytes = Some(131072);
        log.record(read);
        let text = String::from_utf8(log.read(100, 4096, true, path_of).unwrap()).unwrap();
        let me = std::fs::read_to_string("/proc/self/comm").unwrap();
        let me = me.trim_end().replace(char::is_whitespace, "_");
        let pid = std::process::id();
        assert_eq!(
            text,
            format!(
                "1970-01-01T00:00:01.500000Z 1000 {pid} {me} lookup ENOENT - 0.000042 /n7/a b\n\
                 1970-01-01T00:00:01.500000Z 1000 {pid} {me} read OK 131072 0.000042 /n9/\n"
            )
        );
        assert!(log.release(100) && !log.release(100));
        assert!(!log.is_read());
        assert_eq!(
            log.read(100, 4096, true, path_of),
            None,
            "not a handle any more"
        );
    }

    #[test]
    fn a_read_answers_at_most_its_size_and_keeps_the_rest() {
        let log = AccessLog::default();
        log.open(1).unwrap();
        log.read(1, 4096, true, path_of).unwrap();
        log.record(access("getattr", 1));
        let first = log.read(1, 10, true, path_of).unwrap();
        assert_eq!(first, b"1970-01-01");
        let rest = String::from_utf8(log.read(1, 4096, true, path_of).unwrap()).unwrap();
        assert!(rest.starts_with("T00:00:01.500000Z ") && rest.ends_with(" /n1/\n"));
    }

    #[test]
    fn a_quiet_log_answers_a_heartbeat_and_a_closed_one_the_end() {
        let log = AccessLog::default();
        log.open(1).unwrap();
        log.read(1, 4096, true, path_of).unwrap();
        let started = Instant::now();
        assert_eq!(log.read(1, 4096, true, path_of).unwrap(), b"#\n");
        assert!(started.elapsed() >= HEARTBEAT);
        log.close();
        assert_eq!(log.read(1, 4096, true, path_of).unwrap(), b"");
    }

    #[test]
    fn a_reader_that_falls_behind_is_told_how_many_it_missed() {
        let log = AccessLog::default();
        log.open(1).unwrap();
        log.read(1, 4096, true, path_of).unwrap();
        for _ in 0..MOST_QUEUED + 5 {
            log.record(access("getattr", 1));
        }
        let told = "# 5 requests not shown: this reader fell behind\n";
        let text =
            String::from_utf8(log.read(1, told.len() as u32, true, path_of).unwrap()).unwrap();
        assert_eq!(text, told);
    }

    #[test]
    fn small_reads_leave_requests_queued_and_lines_are_safe_on_a_terminal() {
        let log = AccessLog::default();
        log.open(1).unwrap();
        log.read(1, 4096, true, path_of).unwrap();
        for _ in 0..MOST_TAKEN + 100 {
            log.record(access("getattr", 1));
        }
        for _ in 0..3 {
            assert_eq!(log.read(1, 1, true, path_of).unwrap().len(), 1);
        }
        assert_eq!(
            log.lock().readers[&1].queued.len(),
            100,
            "one batch taken, once"
        );
        let mut odd = access("lookup", 1);
        odd.name = Some("a\x1b]0;pwn\x07\rb\\c\n\u{85}".into());
        let line = line(&odd, &path_of(odd.ino, odd.name.as_deref()));
        assert!(
            line.ends_with(" /n1/a\\x1b]0;pwn\\x07\\x0db\\\\c\\n\\u{0085}\n"),
            "{line}"
        );
        assert_eq!(line.matches('\n').count(), 1);
        let log = AccessLog::default();
        log.open(2).unwrap();
        let started = Instant::now();
        log.read(2, 4096, false, path_of).unwrap();
        assert_eq!(
            log.read(2, 4096, false, path_of).unwrap(),
            b"#\n",
            "no wait"
        );
        assert!(started.elapsed() < HEARTBEAT);
    }

    #[test]
    fn every_handle_reads_every_request_and_handles_are_bounded() {
        let log = AccessLog::default();
        for fh in 0..MOST_READERS as u64 {
            log.open(fh).unwrap();
            log.read(fh, 4096, true, path_of).unwrap();
        }
        assert_eq!(log.open(99), Err(TooManyReaders));
        log.record(access("statfs", 1));
        for fh in 0..MOST_READERS as u64 {
            let text = String::from_utf8(log.read(fh, 4096, true, path_of).unwrap()).unwrap();
            assert!(text.contains(" statfs OK - "), "{text}");
        }
    }
}
