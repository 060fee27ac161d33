//! Commands on a mounted store: the daemon serving a store listens on `cronusfs.sock` in the
//! store's local directory (the store directory, or this host's directory of a shared store;
//! a Unix socket only its owner can open), and a `cronusfs` command run on that store sends
//! its arguments, working directory and (when it reads it) standard input there; the daemon runs
//! the command on its own open catalogue and streams back standard output, errors and the exit
//! status. Protocol: one JSON line `{"args": [...], "cwd": "..."}`, then the raw input; replies
//! are frames of a tag byte (`o` output, `e` error text, `x` exit status) and a u32 length.

use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{Context, Result, anyhow};
use clap::Parser;
use cronusfs::fs::FsCore;
use cronusfs::storage::Storage;
use cronusfs::storage::location::Location;

use super::{Console, EXIT_FAILURE, EXIT_USAGE};
use crate::cli::{Cli, Command, RowsCommand};

/// The socket's name in the store directory.
pub const SOCKET: &str = "cronusfs.sock";

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
/// when it is not 0.
pub fn forward(local: &Path, store: &Location, io: &mut Console<'_>, stdin: bool) -> Result<()> {
    let path = local.join(SOCKET);
    let mut stream = UnixStream::connect(&path)
        .with_context(|| format!("cannot reach the daemon serving {store}"))?;
    let args: Vec<String> = std::env::args_os()
        .map(|a| a.to_string_lossy().into_owned())
        .collect();
    let request = serde_json::json!({"args": args, "cwd": io.cwd});
    writeln!(stream, "{request}")?;
    if stdin {
        std::io::copy(&mut io.input, &mut stream)?;
    }
    stream.shutdown(std::net::Shutdown::Write)?;
    let mut reader = BufReader::new(stream);
    loop {
        let mut head = [0u8; 5];
        reader
            .read_exact(&mut head)
            .context("the daemon closed the connection")?;
        let len = u32::from_be_bytes(head[1..].try_into().expect("4 bytes")) as usize;
        let mut body = vec![0u8; len];
        reader.read_exact(&mut body)?;
        match head[0] {
            b'o' => io.out.write_all(&body)?,
            b'e' => std::io::stderr().write_all(&body)?,
            b'x' => {
                io.out.flush()?;
                let code = body.first().copied().unwrap_or(EXIT_FAILURE);
                if code != 0 {
                    std::process::exit(i32::from(code));
                }
                return Ok(());
            }
            other => return Err(anyhow!("unexpected frame {other} from the daemon")),
        }
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

/// Listens on the socket in `store` (the store's local directory) (owner-only) and runs every client's command against `core`'s
/// catalogue, each on its own thread, until the process ends.
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
    frames.send(b'x', &[code])
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
