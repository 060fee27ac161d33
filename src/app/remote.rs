//! Commands on a mounted store: the daemon serving a store listens on `cronusfs.sock` in the
//! store's local directory (the store directory, or this host's directory of a shared store;
//! a Unix socket only its owner can open), and a `cronusfs` command run on that store sends
//! its arguments, working directory and (when it reads it) standard input there; the daemon runs
//! the command on its own open catalogue and streams back standard output, errors and the exit
//! status. Protocol: one JSON line, then the input; replies are frames of a tag byte (`o`
//! output, `e` error text, `x` exit status), a u32 length (big-endian) and the body. A command
//! that reads standard input sends `{"argv": [...], "cwd": "..."}` and its input as frames too:
//! `i` pieces, then `z` (its end) or `a` and why it could not be read; input that stops before
//! its `z` (a killed or interrupted command) is an error to the command the daemon runs, so a
//! cut `put -` stores nothing. `{"args": [...], "cwd": "..."}` (any other command, and older
//! clients) sends the raw input, if any, up to its shutdown; a daemon older than the frames
//! rejects an `argv` request as a bad request rather than take the frames for the input.
//! The command succeeds only when the daemon's `x` frame says 0: a daemon that answers before
//! reading all the input (an error) reads and discards the rest, for a while, so that its
//! answer is delivered; a command whose input the daemon stopped reading still reads and relays
//! the answer, and fails if there is none.

use std::io::{BufRead, BufReader, ErrorKind, Read, Write};
use std::net::Shutdown;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow, bail};
use clap::Parser;
use cronusfs::fs::FsCore;
use cronusfs::storage::location::Location;
use cronusfs::storage::{Actor, Storage, current_actor, with_actor};

use super::{Console, EXIT_FAILURE, EXIT_USAGE};
use crate::cli::{Cli, Command, RowsCommand};

/// The socket's name in the store directory.
pub const SOCKET: &str = "cronusfs.sock";

/// How long, at most, the daemon reads and discards a client's input after answering it.
const DISCARD_INPUT_FOR: Duration = Duration::from_secs(30);

/// The size of the pieces standard input is sent to the daemon in.
const INPUT_PIECE: usize = 1 << 16;

/// The length of a frame's head: its tag and its body's u32 length.
const FRAME_HEAD: usize = 5;

/// The tag of a frame of a command's standard input: one piece of it.
const INPUT: u8 = b'i';
/// The tag of the frame that ends a command's standard input (its body is empty).
const INPUT_END: u8 = b'z';
/// The tag of the frame that ends a command's standard input the command could not read (its
/// body says why).
const INPUT_ABORT: u8 = b'a';
/// The longest reason an abort frame may give.
const ABORT_TEXT_MAX: usize = 1 << 16;

/// Returns whether a daemon answers on `store`'s socket.
pub fn is_served(store: &Path) -> bool {
    UnixStream::connect(store.join(SOCKET)).is_ok()
}

/// Returns whether `command` reads standard input.
pub fn reads_stdin(command: &Command) -> bool {
    let stdin = |f: &Option<PathBuf>| f.as_ref().is_none_or(|p| p.as_os_str() == "-");
    match command {
        Command::Put { file, .. } => file.as_os_str() == "-",
        Command::Rows(RowsCommand::Import { file, .. }) => stdin(file),
        _ => false,
    }
}

/// Sends this process's command line to the daemon serving `store` (its socket in `local`),
/// with standard input when `stdin`, and relays its answer; exits with the daemon's status
/// when it is not 0. It returns `Ok` only when the daemon said 0. Errors of the connection are
/// returned as text, never as an `io::Error`, so that a broken pipe to the daemon is never
/// taken for a reader of standard output that went away (which ends a command quietly).
pub fn forward(local: &Path, store: &Location, io: &mut Console<'_>, stdin: bool) -> Result<()> {
    let path = local.join(SOCKET);
    let mut stream = UnixStream::connect(&path)
        .map_err(|e| anyhow!("cannot reach the daemon serving {store}: {e}"))?;
    let args: Vec<String> = std::env::args_os()
        .map(|a| a.to_string_lossy().into_owned())
        .collect();
    // A daemon older than framed input has no "argv": it refuses the request, rather than
    // store the frames as if they were the input.
    let key = if stdin { "argv" } else { "args" };
    let request = serde_json::json!({(key): args, "cwd": io.cwd}).to_string();
    let cut = send_request(&mut stream, &request, stdin.then_some(&mut *io.input))?;
    // After a cut the connection may be gone already; the answer, if any, is still readable.
    let _ = stream.shutdown(Shutdown::Write);
    let code = relay_answer(stream, io, store, cut.as_ref())?;
    if code != 0 {
        let _ = io.out.flush();
        std::process::exit(i32::from(code));
    }
    io.out.flush()?;
    Ok(())
}

/// Sends the request line and then all of `input` (this process's standard input, when the
/// command reads it) to the daemon, as `i` frames and then the `z` frame that says it ended
/// there. Returns why sending stopped early when the daemon stopped reading (it answered before
/// reading everything, with an error its answer says), `None` when everything was sent. When
/// `input` cannot be read, the daemon is told why (an `a` frame) and that is the error.
fn send_request<R: Read + ?Sized>(
    stream: &mut UnixStream,
    request: &str,
    input: Option<&mut R>,
) -> Result<Option<std::io::Error>> {
    if let Err(e) = stream.write_all(format!("{request}\n").as_bytes()) {
        return Ok(Some(e));
    }
    let Some(input) = input else {
        return Ok(None);
    };
    // Each frame is sent whole from one buffer: its head, then the piece read after it.
    let mut frame = vec![0u8; FRAME_HEAD + INPUT_PIECE];
    loop {
        let len = match input.read(&mut frame[FRAME_HEAD..]) {
            Ok(len) => len,
            Err(e) if e.kind() == ErrorKind::Interrupted => continue,
            Err(e) => {
                let why = format!("cannot read standard input: {e}");
                let mut abort = frame_head(INPUT_ABORT, why.len()).to_vec();
                abort.extend_from_slice(why.as_bytes());
                let _ = stream.write_all(&abort);
                bail!("{why}");
            }
        };
        let tag = if len == 0 { INPUT_END } else { INPUT };
        frame[..FRAME_HEAD].copy_from_slice(&frame_head(tag, len));
        if let Err(e) = stream.write_all(&frame[..FRAME_HEAD + len]) {
            return Ok(Some(e));
        }
        if len == 0 {
            return Ok(None);
        }
    }
}

/// The head of a frame of tag `tag` and a body of `len` bytes (at most `u32::MAX`: every
/// body sent is a piece of at most 1 MiB or a short text).
fn frame_head(tag: u8, len: usize) -> [u8; FRAME_HEAD] {
    let mut head = [tag, 0, 0, 0, 0];
    head[1..].copy_from_slice(&(len as u32).to_be_bytes());
    head
}

/// Reads the daemon's answer on `stream` and relays it (output to `io.out`, error text to
/// stderr) up to its exit status, which it returns. `cut` is why sending standard input
/// stopped early, if it did. A connection that ends before the exit status is an error.
fn relay_answer(
    stream: UnixStream,
    io: &mut Console<'_>,
    store: &Location,
    cut: Option<&std::io::Error>,
) -> Result<u8> {
    let mut reader = BufReader::new(stream);
    loop {
        let (tag, body) = match read_frame(&mut reader) {
            Ok(frame) => frame,
            Err(e) => return Err(no_answer(store, &e, cut)),
        };
        match tag {
            // A reader of standard output that went away ends the command as it does here.
            b'o' => io.out.write_all(&body)?,
            // The exit status, not this text, decides; a closed stderr must not lose it.
            b'e' => {
                let _ = std::io::stderr().write_all(&body);
            }
            b'x' => return Ok(body.first().copied().unwrap_or(EXIT_FAILURE)),
            other => bail!("unexpected frame {other} from the daemon serving {store}"),
        }
    }
}

/// Reads one frame: its tag and its body.
fn read_frame(reader: &mut impl Read) -> std::io::Result<(u8, Vec<u8>)> {
    let mut head = [0u8; FRAME_HEAD];
    reader.read_exact(&mut head)?;
    let len = u32::from_be_bytes([head[1], head[2], head[3], head[4]]) as usize;
    let mut body = vec![0u8; len];
    reader.read_exact(&mut body)?;
    Ok((head[0], body))
}

/// The error of a connection that ended (`e`) before the daemon's exit status; `cut` is why
/// sending standard input stopped early, if it did. Text only (see [`forward`]).
fn no_answer(store: &Location, e: &std::io::Error, cut: Option<&std::io::Error>) -> anyhow::Error {
    let ended = match e.kind() {
        ErrorKind::UnexpectedEof => {
            format!("the daemon serving {store} closed the connection without an exit status")
        }
        _ => format!("cannot read the answer of the daemon serving {store}: {e}"),
    };
    match cut {
        Some(cut) => anyhow!("{ended} (it stopped reading standard input: {cut})"),
        None => anyhow!("{ended}"),
    }
}

/// Frames written to a client: everything written is sent as output frames.
struct Frames<'s>(&'s UnixStream);

impl Frames<'_> {
    fn send(&mut self, tag: u8, body: &[u8]) -> std::io::Result<()> {
        let mut out = self.0;
        out.write_all(&frame_head(tag, body.len()))?;
        out.write_all(body)
    }
}

impl Write for Frames<'_> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        for piece in buf.chunks(1 << 20) {
            self.send(b'o', piece)?;
        }
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Listens on the socket in `store` (the store's local directory; owner-only) and runs every
/// client's command against `core`'s catalogue, each on its own thread, until the process ends.
pub fn listen(store: &Path, core: Arc<FsCore<Box<dyn Storage>>>) -> Result<()> {
    let path = store.join(SOCKET);
    let _ = std::fs::remove_file(&path);
    let listener = UnixListener::bind(&path)
        .with_context(|| format!("cannot listen on {}", path.display()))?;
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600))?;
    let cache = store.join(cronusfs::fs::CACHE_DIR);
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            let (core, cache) = (core.clone(), cache.clone());
            std::thread::spawn(move || {
                let _ = answer(&stream, &core, &cache);
            });
        }
    });
    Ok(())
}

/// Removes `store`'s socket.
pub fn unlisten(store: &Path) {
    let _ = std::fs::remove_file(store.join(SOCKET));
}

/// Runs one command for a client; `cache` is this daemon's content cache.
fn answer(
    stream: &UnixStream,
    core: &FsCore<Box<dyn Storage>>,
    cache: &Path,
) -> std::io::Result<()> {
    let mut reader = BufReader::new(stream);
    let mut line = Vec::new();
    reader.read_until(b'\n', &mut line)?;
    let request = std::str::from_utf8(&line)
        .map_err(|_| anyhow!("the request is not UTF-8"))
        .and_then(parse_request);
    let code = match request {
        Ok(request) => run_request(stream, &mut reader, request, core, cache)?,
        Err(e) => {
            Frames(stream).send(b'e', format!("cronusfs: error: {e:#}\n").as_bytes())?;
            EXIT_USAGE
        }
    };
    Frames(stream).send(b'x', &[code])?;
    close_after_answer(stream, &mut reader)
}

/// Runs `request`'s command, its standard input read from `reader` (the connection after the
/// request line), and sends its output and error; returns its exit status.
fn run_request(
    stream: &UnixStream,
    reader: &mut BufReader<&UnixStream>,
    request: Request,
    core: &FsCore<Box<dyn Storage>>,
    cache: &Path,
) -> std::io::Result<u8> {
    let mut input = ClientInput::new(reader, request.framed);
    let mut io = Console {
        out: &mut Frames(stream),
        input: &mut input,
        cwd: request.cwd,
    };
    let command = request.cli.command;
    let gc = matches!(command, Command::Gc { .. });
    let run = || super::run_on(core.metastore(), &mut io, command, Some(cache));
    // The commits the command makes name the client, not the daemon.
    let (pid, uid) = peer(stream).unwrap_or((-1, -1));
    let client = Actor {
        pid,
        uid,
        what: request.what,
        ..current_actor()
    };
    match with_actor(client, || core.run_external_change(run)) {
        Ok(()) => {
            if gc {
                // The cache's copies of what gc freed are disk nobody can read any more.
                core.forget_freed_contents();
            }
            Ok(0)
        }
        Err(e) => {
            Frames(stream).send(b'e', format!("cronusfs: error: {e:#}\n").as_bytes())?;
            Ok(EXIT_FAILURE)
        }
    }
}

/// Returns the pid and uid of the process at the other end of `stream`.
#[allow(unsafe_code)] // SO_PEERCRED has no safe wrapper in stable std.
fn peer(stream: &UnixStream) -> Option<(i64, i64)> {
    use std::os::fd::AsRawFd;
    let mut cred = libc::ucred {
        pid: 0,
        uid: 0,
        gid: 0,
    };
    let mut len = std::mem::size_of::<libc::ucred>() as libc::socklen_t;
    // SAFETY: `cred` and `len` are valid for writes of their sizes and the socket is open.
    let rc = unsafe {
        libc::getsockopt(
            stream.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_PEERCRED,
            (&mut cred as *mut libc::ucred).cast(),
            &mut len,
        )
    };
    (rc == 0).then(|| (i64::from(cred.pid), i64::from(cred.uid)))
}

/// A client's standard input as the command the daemon runs for it reads it: the raw bytes
/// up to the client's shutdown (an `args` request), or the bytes of its `i` frames up to its
/// `z` frame (an `argv` request). Framed input that stops before its `z` is an error, not its
/// end (the client was killed or interrupted), and so is an `a` frame (the client could not
/// read its input: the frame says why), so that a command cut short fails rather than take
/// part of its input for all of it. An error, once met, is met again by every later read.
struct ClientInput<R> {
    from: R,
    framed: bool,
    /// How much of the current `i` frame is still to be read.
    left: usize,
    /// Whether the `z` frame was read.
    ended: bool,
    /// The error met, if any: its kind and text.
    broken: Option<(ErrorKind, String)>,
}

impl<R: Read> ClientInput<R> {
    fn new(from: R, framed: bool) -> Self {
        Self {
            from,
            framed,
            left: 0,
            ended: false,
            broken: None,
        }
    }

    /// Reads the next frame's head (and an `a` frame's reason), or fails as the input does.
    fn next_frame(&mut self) -> std::io::Result<()> {
        let mut head = [0u8; FRAME_HEAD];
        if let Err(e) = self.from.read_exact(&mut head) {
            return Err(match e.kind() {
                ErrorKind::UnexpectedEof => cut_off(),
                _ => e,
            });
        }
        let len = u32::from_be_bytes([head[1], head[2], head[3], head[4]]) as usize;
        match head[0] {
            INPUT => self.left = len,
            INPUT_END if len == 0 => self.ended = true,
            INPUT_ABORT if len <= ABORT_TEXT_MAX => {
                let mut why = vec![0u8; len];
                self.from.read_exact(&mut why)?;
                return Err(std::io::Error::other(
                    String::from_utf8_lossy(&why).into_owned(),
                ));
            }
            tag => {
                let what = format!("a bad frame (tag {tag}, {len} bytes) in standard input");
                return Err(std::io::Error::new(ErrorKind::InvalidData, what));
            }
        }
        Ok(())
    }

    /// Reads framed input into `buf` (not empty).
    fn read_framed(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        while self.left == 0 {
            if self.ended {
                return Ok(0);
            }
            self.next_frame()?;
        }
        let want = buf.len().min(self.left);
        let n = self.from.read(&mut buf[..want])?;
        if n == 0 {
            return Err(cut_off());
        }
        self.left -= n;
        Ok(n)
    }
}

/// The error of framed input that stopped before its `z` frame.
fn cut_off() -> std::io::Error {
    std::io::Error::new(
        ErrorKind::UnexpectedEof,
        "the command's standard input stopped before its end (the command was killed or \
         interrupted)",
    )
}

impl<R: Read> Read for ClientInput<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        if let Some((kind, text)) = &self.broken {
            return Err(std::io::Error::new(*kind, text.clone()));
        }
        if !self.framed {
            return self.from.read(buf);
        }
        if buf.is_empty() {
            return Ok(0);
        }
        let read = self.read_framed(buf);
        if let Err(e) = &read
            && e.kind() != ErrorKind::Interrupted
        {
            self.broken = Some((e.kind(), e.to_string()));
        }
        read
    }
}

/// Ends a client's connection once its answer is sent: shuts the daemon's side for writing (the
/// client reads the answer to its end), then reads and discards whatever input the client still
/// sends (a command that failed before reading it all) until the client ends it, so that the
/// client can finish sending and then read the answer, rather than have its writes fail and
/// the connection reset. For at most [`DISCARD_INPUT_FOR`], so that no client holds a thread.
fn close_after_answer(stream: &UnixStream, unread: &mut impl Read) -> std::io::Result<()> {
    stream.shutdown(Shutdown::Write)?;
    let until = Instant::now() + DISCARD_INPUT_FOR;
    let mut piece = vec![0u8; INPUT_PIECE];
    loop {
        let left = until.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Ok(());
        }
        stream.set_read_timeout(Some(left))?;
        match unread.read(&mut piece) {
            Ok(0) => return Ok(()),
            Ok(_) => {}
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
}

/// A client's request: its command line, working directory and whether its standard input
/// comes framed.
struct Request {
    cli: Cli,
    cwd: PathBuf,
    framed: bool,
    /// The client's command line, for the commits the command makes.
    what: String,
}

/// Parses a request line: `argv` (framed input) or `args` (raw input), and `cwd`.
fn parse_request(line: &str) -> Result<Request> {
    let request: serde_json::Value = serde_json::from_str(line)?;
    let framed = request.get("argv").is_some();
    let args: Vec<String> = request[if framed { "argv" } else { "args" }]
        .as_array()
        .ok_or_else(|| anyhow!("bad request"))?
        .iter()
        .filter_map(|a| a.as_str().map(str::to_string))
        .collect();
    let cwd = PathBuf::from(request["cwd"].as_str().unwrap_or("/"));
    let what = args.join(" ");
    let cli = Cli::try_parse_from(args)
        .map_err(|e| anyhow!("{}", super::one_line(&e.render().to_string())))?;
    if !super::placement::runs_in_daemon(&cli.command) {
        return Err(anyhow!("this command cannot run on a mounted store"));
    }
    Ok(Request {
        cli,
        cwd,
        framed,
        what,
    })
}
