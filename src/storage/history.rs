//! What history is kept of, and when: commit stamps (`Stamp`), the clock of a store one
//! process owns (`LocalClock`), which rows and blobs are timeless (kept live only), and the
//! bounds of the history a store holds. The layout of history entries is `keys.rs`'.

use std::cell::RefCell;
use std::os::unix::fs::MetadataExt;
use std::sync::{Mutex, MutexGuard, OnceLock};

mod times;
pub use times::{parse_time, show_micros};

use super::engine::{Cf, EngineRead};
use super::{Result, StorageError, keys};

/// The prefix of the idens of daemon sessions: their rows (heartbeats, leases, read holds)
/// are timeless.
pub const SESSION_IDEN_PREFIX: &str = "cronusfs:session:";

/// Blob key prefixes that are timeless: content chunks and manifests (immutable: a key always
/// names the same bytes, and gc decides when they go), daemon settings and Synapse's own.
const TIMELESS_BLOB_PREFIXES: [&str; 4] = ["chunk/", "content/", "cronusfs:", "syn:"];

/// Returns whether the rows of `iden` are timeless: read and written live only, never kept in
/// history (sessions' heartbeats must not flood it).
pub fn is_timeless_iden(iden: &str) -> bool {
    iden.starts_with(SESSION_IDEN_PREFIX)
}

/// Returns whether blob `key` is timeless: no past versions are kept of it, and a read of the
/// store at any time reads its live value.
pub fn is_timeless_blob(key: &str) -> bool {
    TIMELESS_BLOB_PREFIXES.iter().any(|p| key.starts_with(p))
}

/// When a commit landed: microseconds of the store's clock, then a tiebreak between engines
/// that stamp side by side (0 on a store one process owns; a sequence of the server's on a
/// shared one). Every commit that changes tracked data has one, unique, and a read of the
/// store at time `t` sees exactly the commits with `micros <= t`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Stamp {
    /// Microseconds since the epoch, of the store's clock.
    pub micros: i64,
    /// The tiebreak between commits of the same microsecond.
    pub node: u32,
}

impl Stamp {
    /// The stamp of rows that were there before history began (a store made by a version
    /// that kept none).
    pub const BEFORE_HISTORY: Stamp = Stamp { micros: 0, node: 0 };

    /// Returns the first stamp of microsecond `micros`.
    pub fn at(micros: i64) -> Stamp {
        Stamp { micros, node: 0 }
    }

    /// Returns the last stamp of microsecond `micros`: every commit a read at `micros` sees
    /// is at or before it.
    pub fn end_of(micros: i64) -> Stamp {
        Stamp {
            micros,
            node: u32::MAX,
        }
    }
}

/// The bounds of what a store can answer about its past.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HistoryBounds {
    /// When history began (µs): the store's creation, or when a store made by a version that
    /// kept none was first opened by one that does. Times before it are not kept.
    pub since: i64,
    /// The oldest time still readable (µs): gc may have reclaimed what only earlier times
    /// needed (the store's history retention). At least `since`.
    pub floor: i64,
    /// The store's clock now (µs), settled: every commit at or before it is visible, every
    /// later one will be stamped after it.
    pub now: i64,
}

/// Who made a commit, as its record keeps it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Actor {
    /// The host's name.
    pub host: String,
    /// The process id.
    pub pid: i64,
    /// The user id the change was made as.
    pub uid: i64,
    /// What made it: a command line, or a mount point.
    pub what: String,
}

/// The most bytes of a command line an [`Actor`] keeps.
const MAX_WHAT_BYTES: usize = 200;

impl Actor {
    /// Returns this process: its host, pid, user and command line.
    pub fn this_process() -> Actor {
        let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
            .map(|h| h.trim().to_string())
            .unwrap_or_default();
        let mut args: Vec<String> = std::env::args().collect();
        // The program by its name, not where it was run from.
        if let Some(program) = args.first_mut()
            && let Some(name) = std::path::Path::new(program.as_str()).file_name()
        {
            *program = name.to_string_lossy().into_owned();
        }
        Actor {
            host,
            pid: i64::from(std::process::id()),
            // The owner of /proc/self is the process's user.
            uid: std::fs::metadata("/proc/self").map_or(-1, |m| i64::from(m.uid())),
            what: cut_to(args.join(" "), MAX_WHAT_BYTES),
        }
    }
}

/// Returns `s` cut to at most `max` bytes, at a character boundary.
fn cut_to(mut s: String, max: usize) -> String {
    if s.len() > max {
        let mut end = max;
        while !s.is_char_boundary(end) {
            end -= 1;
        }
        s.truncate(end);
    }
    s
}

static PROCESS_ACTOR: OnceLock<Mutex<Actor>> = OnceLock::new();

thread_local! {
    static THREAD_ACTOR: RefCell<Option<Actor>> = const { RefCell::new(None) };
    /// The process and user this thread's commits name instead of the actor's own (a
    /// mount's request), without copying the actor per request.
    static THREAD_CALLER: std::cell::Cell<Option<(i64, i64)>> = const { std::cell::Cell::new(None) };
}

fn process_actor() -> &'static Mutex<Actor> {
    PROCESS_ACTOR.get_or_init(|| Mutex::new(Actor::this_process()))
}

/// Sets who this process's commits name (a daemon: what it mounts), unless a thread says
/// otherwise with [`with_actor`].
pub fn set_process_actor(actor: Actor) {
    *process_actor().lock().unwrap_or_else(|e| e.into_inner()) = Actor {
        what: cut_to(actor.what, MAX_WHAT_BYTES),
        ..actor
    };
}

/// Runs `f` with the commits this thread makes naming `actor` (a request made for another
/// process or user).
pub fn with_actor<T>(actor: Actor, f: impl FnOnce() -> T) -> T {
    let before = THREAD_ACTOR.with(|a| a.borrow_mut().replace(actor));
    let out = f();
    THREAD_ACTOR.with(|a| *a.borrow_mut() = before);
    out
}

/// Runs `f` with the commits this thread makes naming process `pid` of user `uid` (a
/// request a mount serves for them), with the rest of who this thread's actor is.
pub fn with_caller<T>(pid: i64, uid: i64, f: impl FnOnce() -> T) -> T {
    let before = THREAD_CALLER.with(|c| c.replace(Some((pid, uid))));
    let out = f();
    THREAD_CALLER.with(|c| c.set(before));
    out
}

/// Returns who the commits of this thread name now.
pub fn current_actor() -> Actor {
    let actor = THREAD_ACTOR
        .with(|a| a.borrow().clone())
        .unwrap_or_else(|| {
            process_actor()
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .clone()
        });
    match THREAD_CALLER.with(std::cell::Cell::get) {
        Some((pid, uid)) => Actor { pid, uid, ..actor },
        None => actor,
    }
}

/// Returns this host's clock in microseconds since the epoch.
pub fn now_micros() -> i64 {
    let since_epoch = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    i64::try_from(since_epoch.as_micros()).unwrap_or(i64::MAX)
}

/// The commit clock of a store one process owns (RocksDB, memory): stamps strictly increase,
/// and no commit is stamped at or before a time a reader settled.
#[derive(Debug, Default)]
pub struct LocalClock {
    state: Mutex<ClockState>,
}

#[derive(Debug, Default)]
struct ClockState {
    /// The newest stamp given out.
    last: i64,
    /// The newest settled time: every later commit is stamped after it.
    horizon: i64,
}

/// A commit in progress: holds the clock from its stamp until the batch is written, so that a
/// reader settling meanwhile waits for it to be visible.
pub struct CommitSection<'c> {
    _state: MutexGuard<'c, ClockState>,
    stamp: Stamp,
}

impl CommitSection<'_> {
    /// Returns the commit's stamp.
    pub fn stamp(&self) -> Stamp {
        self.stamp
    }
}

impl LocalClock {
    /// Returns a clock whose first stamp is after `last` (µs: the newest stamp the store
    /// holds, or when its history began).
    pub fn starting_after(last: i64) -> Self {
        LocalClock {
            state: Mutex::new(ClockState {
                last,
                horizon: last,
            }),
        }
    }

    fn lock(&self) -> MutexGuard<'_, ClockState> {
        // Two integers, each written whole: a panic elsewhere cannot leave them torn.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Starts a commit: its stamp is after every earlier stamp, every settled time and this
    /// host's clock now, or its clock's last reading should the clock step back.
    pub fn begin_commit(&self) -> CommitSection<'_> {
        let mut state = self.lock();
        let micros = now_micros()
            .max(state.last.saturating_add(1))
            .max(state.horizon.saturating_add(1));
        state.last = micros;
        CommitSection {
            _state: state,
            stamp: Stamp::at(micros),
        }
    }

    /// Settles the clock's now: every commit stamped so far is visible once this returns (it
    /// waits for a commit in progress), and every later one is stamped after the returned time.
    /// A new horizon is handed to `persist` before it counts, so that a clock that restarts
    /// after it (`starting_after`) never stamps at or before a time already read.
    pub fn settle(&self, persist: impl FnOnce(i64) -> Result<()>) -> Result<i64> {
        let mut state = self.lock();
        let now = now_micros().max(state.last).max(state.horizon);
        if now > state.horizon {
            persist(now)?;
            state.horizon = now;
        }
        Ok(now)
    }
}

/// Returns the newest commit stamp `engine` holds (µs), or when its history began or the
/// newest time a reader settled if later: where its clock starts.
pub(crate) fn newest_commit(engine: &impl EngineRead) -> Result<i64> {
    let since = history_since(engine)?.unwrap_or(0);
    let mut newest = since.max(meta_micros(engine, keys::META_HISTORY_HORIZON)?.unwrap_or(0));
    // `History` keys begin with `D(stamp)`: the first is the newest commit.
    engine.scan(Cf::History, &[], None, &mut |k, _| {
        newest = newest.max(keys::decode_history_key(k)?.0.micros);
        Ok(false)
    })?;
    Ok(newest)
}

/// Returns the oldest time the store's history still answers for (µs), if gc ever set one.
pub(crate) fn history_floor(engine: &impl EngineRead) -> Result<Option<i64>> {
    meta_micros(engine, keys::META_HISTORY_FLOOR)
}

/// Returns when the store's history began (µs), if the store records it (format 2).
pub(crate) fn history_since(engine: &impl EngineRead) -> Result<Option<i64>> {
    meta_micros(engine, keys::META_HISTORY_SINCE)
}

/// Returns the time (µs, 8 bytes big-endian) meta key `key` holds, if any.
fn meta_micros(engine: &impl EngineRead, key: &[u8]) -> Result<Option<i64>> {
    let Some(raw) = engine.get(Cf::Meta, key)? else {
        return Ok(None);
    };
    <[u8; 8]>::try_from(raw.as_slice())
        .map(|b| Some(i64::from_be_bytes(b)))
        .map_err(|_| {
            let name = String::from_utf8_lossy(key);
            StorageError::Corruption(format!("{name} is not 8 bytes"))
        })
}

/// [`check_time`] for a time its caller keeps whatever the floor (a snapshot's).
pub(crate) fn check_kept_time(at: i64, bounds: HistoryBounds) -> Result<()> {
    check_time(
        at,
        HistoryBounds {
            floor: at,
            ..bounds
        },
    )
}

/// Checks that a read at `at` (µs) can be answered by a store whose history began at `since`
/// and whose settled clock reads `now`.
pub fn check_time(at: i64, bounds: HistoryBounds) -> Result<()> {
    if at > bounds.now {
        return Err(StorageError::FutureTime {
            at,
            now: bounds.now,
        });
    }
    if at < bounds.since {
        return Err(StorageError::BeforeHistory {
            at,
            since: bounds.since,
        });
    }
    if at < bounds.floor {
        return Err(StorageError::PastRetention {
            at,
            floor: bounds.floor,
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stamps_increase_and_pass_every_settled_time() {
        let clock = LocalClock::starting_after(now_micros() + 5_000_000);
        let a = clock.begin_commit().stamp();
        let settled = clock.settle(|_| Ok(())).unwrap();
        let b = clock.begin_commit().stamp();
        assert!(
            a.micros <= settled && settled < b.micros,
            "{a:?} {settled} {b:?}"
        );
        assert!(a.micros > now_micros(), "after the store's newest stamp");
    }

    #[test]
    fn timeless_names() {
        assert!(is_timeless_iden("cronusfs:session:1234"));
        assert!(!is_timeless_iden("cronusfs:snapshot:x"));
        assert!(is_timeless_blob("chunk/ab") && is_timeless_blob("content/ab"));
        assert!(is_timeless_blob("cronusfs:session-ttl") && is_timeless_blob("syn:core:created"));
        assert!(!is_timeless_blob("info/0b0b"));
    }
}
