//! What `status` says of a mount's health: the text of `.cronusfs/health` a daemon makes (its
//! announcements' connection, session and write lease, content cache, last WARN or ERROR), the
//! one line it says with each heartbeat for other hosts (`status -s STORE`), and the reading of
//! a local mount's health by `status`, which never waits long on a mount that does not answer.

use std::path::Path;
use std::sync::Weak;
use std::sync::mpsc::Receiver;
use std::time::{Duration, Instant};

use cronusfs::fs::{CacheHealth, FsCore};
use cronusfs::health::{self, Condition};
use cronusfs::storage::Storage;

/// How long `status` waits for a mount's health.
const READ_LIMIT: Duration = Duration::from_secs(2);
/// The longest line a heartbeat says (a row of the store).
const MOST_LINE_CHARS: usize = 400;

/// The parts of a daemon's health, each as `(name, state, detail)`; state `ok`, `off` or
/// `FAILING`.
fn parts<S: Storage>(core: &FsCore<S>) -> Vec<(&'static str, &'static str, String)> {
    let now = health::now();
    let condition = |c: Option<Condition>, none: &str| match c {
        Some(c) => (if c.ok { "ok" } else { "FAILING" }, c.show_detail()),
        None => ("off", none.to_string()),
    };
    let shared = core.metastore().storage().is_shared();
    let (a_state, a_detail) = match shared {
        true => condition(now.announcements, "not listening yet"),
        false => (
            "off",
            "not needed: the store is this host's alone".to_string(),
        ),
    };
    let (l_state, l_detail) = condition(now.leases, "no heartbeat yet");
    let (c_state, c_detail) = match core.content_cache_health() {
        CacheHealth::Ok(d) => ("ok", d),
        CacheHealth::Off(d) => ("off", d),
        CacheHealth::Failing(d) => ("FAILING", d),
    };
    vec![
        ("announcements", a_state, a_detail),
        ("leases", l_state, l_detail),
        ("content cache", c_state, c_detail),
    ]
}

/// The last WARN or ERROR, or `none`.
fn last_error() -> String {
    health::now()
        .last_problem
        .map_or("none".to_string(), |p| p.show())
}

/// The text of `.cronusfs/health`: a line per part, `NAME: STATE: DETAIL`, then the last error.
pub fn text<S: Storage>(core: &Weak<FsCore<S>>) -> String {
    let Some(core) = core.upgrade() else {
        return "the mount is stopping\n".into();
    };
    let mut out = String::new();
    for (name, state, detail) in parts(&core) {
        out.push_str(&format!("{name}: {state}: {detail}\n"));
    }
    out.push_str(&format!("last error: {}\n", last_error()));
    out
}

/// The line a heartbeat says: each part's state (with the detail of one failing), then the last
/// error; at most [`MOST_LINE_CHARS`] characters.
pub fn line<S: Storage>(core: &Weak<FsCore<S>>) -> String {
    let Some(core) = core.upgrade() else {
        return "stopping".into();
    };
    let mut said: Vec<String> = (parts(&core).into_iter())
        .map(|(name, state, detail)| match state {
            "FAILING" => format!("{name} FAILING ({detail})"),
            _ => format!("{name} {state}"),
        })
        .collect();
    said.push(format!("last error: {}", last_error()));
    let line = said.join("; ");
    match line.char_indices().nth(MOST_LINE_CHARS) {
        Some((cut, _)) => format!("{}…", &line[..cut]),
        None => line,
    }
}

/// A reading of a mount's health under way (see [`reading`]).
pub struct Reading(Option<Receiver<std::io::Result<String>>>);

/// Starts reading the health of the mount at `mountpoint` (its `.cronusfs/health`) on a thread
/// of its own: `status` starts every mount's at once, so mounts that do not answer cost it
/// [`READ_LIMIT`] once, not once each.
pub fn reading(mountpoint: &Path) -> Reading {
    let file = mountpoint.join(cronusfs::fs::CONTROL_DIR).join("health");
    let (send, read) = std::sync::mpsc::channel();
    // A thread stuck on a mount that never answers ends with this process.
    let started = std::thread::Builder::new()
        .name("health".into())
        .spawn(move || {
            let _ = send.send(std::fs::read_to_string(&file));
        });
    Reading(started.ok().map(|_| read))
}

/// The deadline of readings started now.
pub fn deadline() -> Instant {
    Instant::now() + READ_LIMIT
}

impl Reading {
    /// The health read, waiting until `deadline` at most: a mount whose daemon does not answer
    /// by then is said to be so.
    pub fn answer(self, deadline: Instant) -> String {
        let Some(read) = self.0 else {
            return "unknown: cannot start a thread to read it\n".into();
        };
        match read.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
            Ok(Ok(text)) => text,
            Ok(Err(e)) if e.kind() == std::io::ErrorKind::PermissionDenied => {
                "unknown: only the mount's owner may read its health\n".into()
            }
            Ok(Err(e)) => format!("unknown: cannot read it ({e})\n"),
            Err(_) => format!(
                "FAILING: the daemon did not answer within {} s\n",
                READ_LIMIT.as_secs()
            ),
        }
    }
}
