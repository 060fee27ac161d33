//! Commands on a mounted store: the daemon serving a store listens on `cronusfs.sock` in the
//! store's local directory (the store directory, or this host's directory of a shared store;
//! a Unix socket only its owner can open), and a `cronusfs` command run on that store sends
//! its arguments, working directory and (when it reads it) standard input there; the daemon runs
//! the command on its own open catalogue and streams back standard output, errors and the exit
//! status. Protocol: one JSON line `{"args": [...], "cwd": "..."}`, then the raw input; replies
//! are frames of a tag byte (`o` output, `e` error text, `x` exit status) and a u32 length.
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
use cronusfs::storage::Storage;
use cronusfs::storage::location::Location;

use super::{Console, EXIT_FAILURE, EXIT_USAGE};
use crate::cli::{Cli, Command, RowsCommand};

/// The socket's name in the store directory.
pub const SOCKET: &str = "cronusfs.sock";

/// How long, at most, the daemon reads and discards a client's input after answering it.
const DISCARD_INPUT_FOR: Duration = Duration::from_secs(30);

/// The size of the pieces standard input is sent to the daemon in.
const INPUT_PIECE: usize = 1 << 16;

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
    let request = serde_json::json!({"args": args, "cwd": io.cwd}).to_string();
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
/// command reads it) to the daemon. Returns why sending stopped early when the daemon stopped
/// reading (it answered before reading everything, with an error its answer says), `None`
/// when everything was sent.
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
    let mut piece = vec![0u8; INPUT_PIECE];
    loop {
        let len = match input.read(&mut piece) {
            Ok(0) => return Ok(None),
            Ok(len) => len,
            Err(e) if e.kind() == ErrorKind::Interrupted => continue,
            Err(e) => bail!("cannot read standard input: {e}"),
        };
        if let Err(e) = stream.write_all(&piece[..len]) {
            return Ok(Some(e));
        }
    }
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
    let mut head = [0u8; 5];
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
        let mut head = [tag, 0, 0, 0, 0];
        head[1..].copy_from_slice(&(body.len() as u32).to_be_bytes());
        out.write_all(&head)?;
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
    let mut frames = Frames(stream);
    let request = std::str::from_utf8(&line)
        .map_err(|_| anyhow!("the request is not UTF-8"))
        .and_then(parse_request);
    let code = match request {
        Ok((cli, cwd)) => {
            let mut io = Console {
                out: &mut Frames(stream),
                input: &mut reader,
                cwd,
            };
            let command = cli.command;
            let run = || super::run_on(core.metastore(), &mut io, command, Some(cache));
            match core.changed_outside(run) {
                Ok(()) => 0,
                Err(e) => {
                    frames.send(b'e', format!("cronusfs: error: {e:#}\n").as_bytes())?;
                    EXIT_FAILURE
                }
            }
        }
        Err(e) => {
            frames.send(b'e', format!("cronusfs: error: {e:#}\n").as_bytes())?;
            EXIT_USAGE
        }
    };
    frames.send(b'x', &[code])?;
    close_after_answer(stream, &mut reader)
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

fn parse_request(line: &str) -> Result<(Cli, PathBuf)> {
    let request: serde_json::Value = serde_json::from_str(line)?;
    let args: Vec<String> = request["args"]
        .as_array()
        .ok_or_else(|| anyhow!("bad request"))?
        .iter()
        .filter_map(|a| a.as_str().map(str::to_string))
        .collect();
    let cwd = PathBuf::from(request["cwd"].as_str().unwrap_or("/"));
    let cli = Cli::try_parse_from(args)
        .map_err(|e| anyhow!("{}", super::one_line(&e.render().to_string())))?;
    match cli.command {
        Command::Rows(_)
        | Command::Menu(_)
        | Command::Config(_)
        | Command::Dataset(_)
        | Command::Partition(_)
        | Command::Job(_)
        | Command::Put { .. }
        | Command::Get { .. }
        | Command::Ls { .. }
        | Command::Find { .. }
        | Command::Gc { .. }
        | Command::Fsck { .. }
        | Command::ExportCronus { .. } => Ok((cli, cwd)),
        _ => Err(anyhow!("this command cannot run on a mounted store")),
    }
}
