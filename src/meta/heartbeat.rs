//! A process's session in its store (a daemon's, a command's or a Python program's on a
//! shared store): recorded when it starts, a heartbeat every sixth of the store's session time-to-live (which also
//! expires the sessions of processes that stopped beating), the write lease tended five times a
//! second while held, removed when it stops. The time-to-live is the store's own (`cronusfs
//! session-ttl`, default 30 s), read again at every heartbeat; `CRONUSFS_GC_WAIT_MS` sets how
//! long gc waits for other hosts' writes (60 s).

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

use super::{Metastore, Result, Saying, Session};
use crate::health::{self, Part};
use crate::meters;
use crate::storage::Storage;

/// The catalogue a session is for, whatever backend holds it.
pub type Catalog = Metastore<Box<dyn Storage>>;

/// What holds the catalogue a session is for: a daemon's filesystem core, or a command's
/// catalogue.
pub type Holder = Arc<dyn AsRef<Catalog> + Send + Sync>;

/// Returns the catalogue `core` holds (`core.as_ref()` would ask the `Arc` itself, which is
/// `AsRef` of the holder, not of its catalogue).
fn catalog(core: &Holder) -> &Catalog {
    AsRef::<Catalog>::as_ref(&**core)
}

/// How often the write lease is tended (given up when idle, or to a sweep waiting).
const TEND_EVERY: Duration = Duration::from_millis(200);

/// What a daemon says of itself at each heartbeat (its health and counters, for other hosts
/// to read).
pub type SaySource = Box<dyn Fn() -> Saying + Send>;

/// A recorded session and the thread beating for it.
pub struct Heartbeat {
    core: Holder,
    session: Session,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

/// Returns this host's name.
fn host_name() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_string())
        .unwrap_or_else(|_| "localhost".to_string())
}

impl Heartbeat {
    /// Records the session of this daemon serving `core` at `mountpoint` and starts beating,
    /// saying what `say` makes with each beat.
    pub fn start(core: Holder, mountpoint: &Path, say: SaySource) -> Result<Heartbeat> {
        Heartbeat::started(core, &mountpoint.display().to_string(), Some(say))
    }

    /// Records the session of this process, shown as `at` (what a command does), attaches the
    /// catalogue's writes to it and starts beating.
    pub fn start_as(core: Holder, at: &str) -> Result<Heartbeat> {
        Heartbeat::started(core, at, None)
    }

    fn started(core: Holder, at: &str, say: Option<SaySource>) -> Result<Heartbeat> {
        let meta = catalog(&core);
        let session = meta.sessions().open(&host_name(), std::process::id(), at)?;
        let ttl = Duration::from_millis(session.ttl_ms as u64);
        meta.leases().attach_session(&session);
        if say.is_some() {
            // Recording the session is its first beat.
            health::set(Part::Leases, true, beating(ttl));
        }
        if let Some(wait) = std::env::var("CRONUSFS_GC_WAIT_MS")
            .ok()
            .and_then(|v| v.parse().ok())
        {
            meta.leases().set_gc_wait(Duration::from_millis(wait));
        }
        let stop = Arc::new(AtomicBool::new(false));
        let beating = (core.clone(), session.clone(), stop.clone());
        let thread = std::thread::Builder::new()
            .name("heartbeat".into())
            .spawn(move || beat_until_stopped(beating, ttl, say))?;
        Ok(Heartbeat {
            core,
            session,
            stop,
            thread: Some(thread),
        })
    }

    /// Stops beating and removes the session.
    pub fn stop(mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(thread) = self.thread.take() {
            thread.thread().unpark();
            let _ = thread.join();
        }
        if let Err(e) = catalog(&self.core).sessions().close(&self.session) {
            tracing::warn!(
                error = %e,
                "could not remove this mount's session: it expires after the store's TTL \
                 (`cronusfs status -s STORE` lists it until then)"
            );
        }
    }
}

/// Beats every sixth of the store's time-to-live (`ttl` until a beat reads it anew), saying
/// what `say` makes, and tends the write lease, until `stop` is set.
fn beat_until_stopped(
    (core, session, stop): (Holder, Session, Arc<AtomicBool>),
    ttl: Duration,
    say: Option<SaySource>,
) {
    let mut every = ttl / 6;
    let mut last_beat = std::time::Instant::now();
    // What went wrong with the lease since the last beat.
    let mut trouble: Option<String> = None;
    loop {
        let meta = catalog(&core);
        std::thread::park_timeout(TEND_EVERY.min(every));
        if stop.load(Ordering::SeqCst) {
            return;
        }
        if let Err(e) = meta.leases().tend() {
            let detail = format!(
                "cannot tend the write lease ({e}): commits through this mount fail with EIO \
                 while it is lost; check the store's server"
            );
            if health::set(Part::Leases, false, &detail) != Some(false) {
                tracing::error!("{detail}");
            }
            trouble = Some(detail);
        }
        if let Err(e) = meta.read_holds().tend() {
            tracing::warn!(error = %e, "could not remove finished read holds (gc keeps their contents meanwhile)");
        }
        if last_beat.elapsed() >= every {
            last_beat = std::time::Instant::now();
            let said = say.as_ref().map(|say| say()).unwrap_or_default();
            if let Some(ttl) = beat(meta, &session, &said, trouble.take()) {
                every = ttl / 6;
            }
        }
    }
}

/// What a session that beats under time-to-live `ttl` is doing.
fn beating(ttl: Duration) -> String {
    format!(
        "the session beats every {:.1} s (time-to-live {:.1} s)",
        (ttl / 6).as_secs_f64(),
        ttl.as_secs_f64()
    )
}

/// Beats for `session` saying `said`, logging the sessions it expired, and records the
/// lease's health (failing with `trouble` if tending it failed since the last beat); returns
/// the store's time-to-live the session now beats under (`None` when the beat failed).
fn beat(
    meta: &Catalog,
    session: &Session,
    said: &Saying,
    trouble: Option<String>,
) -> Option<Duration> {
    match meta.sessions().beat_saying(session, said) {
        Ok(beat) => {
            meters::count_result(meters::HEARTBEATS, "ok");
            meters::count(meters::SESSIONS_EXPIRED, beat.expired.len() as u64);
            let store_ttl = beat.ttl.as_millis() as i64;
            for s in beat.expired {
                tracing::warn!(
                    host = %s.host,
                    pid = s.pid,
                    mountpoint = %s.mountpoint,
                    silent_ms = s.ttl_under(store_ttl),
                    "expired the session of another mount (no heartbeat): its leases are gone"
                );
            }
            let well = beating(beat.ttl);
            let was = match trouble {
                Some(detail) => health::set(Part::Leases, false, detail),
                None => health::set(Part::Leases, true, well),
            };
            if was == Some(false) && health::now().leases.is_some_and(|c| c.ok) {
                tracing::info!("the session's heartbeat and write lease are well again");
            }
            Some(beat.ttl)
        }
        Err(e) => {
            meters::count_result(meters::HEARTBEATS, "failed");
            let detail = format!(
                "heartbeat failed ({e}): other hosts expire this mount's session after the \
                 store's time-to-live, and its commits then fail with EIO; check the store's \
                 server"
            );
            if health::set(Part::Leases, false, &detail) != Some(false) {
                tracing::error!("{detail}");
            }
            None
        }
    }
}
