//! A process's session in its store (a daemon's, or a command's on a shared store): recorded
//! when it starts, a heartbeat every sixth of the store's session time-to-live (which also
//! expires the sessions of processes that stopped beating), the write lease tended five times a
//! second while held, removed when it stops. The time-to-live is the store's own (`cronusfs
//! session-ttl`, default 30 s), read again at every heartbeat; `CRONUSFS_GC_WAIT_MS` sets how
//! long gc waits for other hosts' writes (60 s).

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

use anyhow::Result;
use cronusfs::meta::Session;
use cronusfs::meters;

/// What holds the catalogue a session is for: a daemon's filesystem core, or a command's
/// catalogue.
type Holder = Arc<dyn AsRef<super::Catalog> + Send + Sync>;

/// Returns the catalogue `core` holds (`core.as_ref()` would ask the `Arc` itself, which is
/// `AsRef` of the holder, not of its catalogue).
fn catalog(core: &Holder) -> &super::Catalog {
    AsRef::<super::Catalog>::as_ref(&**core)
}

/// How often the write lease is tended (given up when idle, or to a sweep waiting).
const TEND_EVERY: Duration = Duration::from_millis(200);

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
    /// Records the session of this daemon serving `core` at `mountpoint` and starts beating.
    pub fn start(core: Holder, mountpoint: &Path) -> Result<Heartbeat> {
        Heartbeat::start_as(core, &mountpoint.display().to_string())
    }

    /// Records the session of this process, shown as `at` (a mount point, or what a command
    /// does), attaches the catalogue's writes to it and starts beating.
    pub fn start_as(core: Holder, at: &str) -> Result<Heartbeat> {
        let meta = catalog(&core);
        let session = meta.sessions().open(&host_name(), std::process::id(), at)?;
        let ttl = Duration::from_millis(session.ttl_ms as u64);
        meta.leases().attach_session(&session);
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
            .spawn(move || beat_until_stopped(beating, ttl))?;
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

/// Beats every sixth of the store's time-to-live (`ttl` until a beat reads it anew) and tends
/// the write lease, until `stop` is set.
fn beat_until_stopped((core, session, stop): (Holder, Session, Arc<AtomicBool>), ttl: Duration) {
    let mut every = ttl / 6;
    let mut last_beat = std::time::Instant::now();
    loop {
        let meta = catalog(&core);
        std::thread::park_timeout(TEND_EVERY.min(every));
        if stop.load(Ordering::SeqCst) {
            return;
        }
        if let Err(e) = meta.leases().tend() {
            tracing::error!(
                error = %e,
                "could not tend the write lease: commits through this mount fail with EIO \
                 while it is lost; check the store's server"
            );
        }
        if let Err(e) = meta.read_holds().tend() {
            tracing::warn!(error = %e, "could not remove finished read holds (gc keeps their contents meanwhile)");
        }
        if last_beat.elapsed() >= every {
            last_beat = std::time::Instant::now();
            if let Some(ttl) = beat(meta, &session) {
                every = ttl / 6;
            }
        }
    }
}

/// Beats for `session`, logging the sessions it expired; returns the store's time-to-live the
/// session now beats under (`None` when the beat failed).
fn beat(meta: &super::Catalog, session: &Session) -> Option<Duration> {
    match meta.sessions().beat(session) {
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
            Some(beat.ttl)
        }
        Err(e) => {
            meters::count_result(meters::HEARTBEATS, "failed");
            tracing::error!(
                error = %e,
                "heartbeat failed: other hosts expire this mount's session after the store's TTL; \
                 check the store's server"
            );
            None
        }
    }
}

/// How long a daemon of a shared store keeps what it read of the store when it hears of no
/// change, by default: the fallback for a notification missed (a reconnect).
const CACHE_TTL_MS: u64 = 1000;

/// Returns how long a daemon of a shared store keeps what it read of the store when it hears
/// of no change (`CRONUSFS_CACHE_TTL_MS`, default 1 s).
pub fn cache_ttl() -> Duration {
    millis_from_env("CRONUSFS_CACHE_TTL_MS", CACHE_TTL_MS)
}

/// Returns how long the kernel may keep attributes and names (`CRONUSFS_ATTR_TTL_MS`,
/// default 1 s).
pub fn attr_ttl() -> Duration {
    millis_from_env("CRONUSFS_ATTR_TTL_MS", 1000)
}

fn millis_from_env(name: &str, default: u64) -> Duration {
    let ms = std::env::var(name).ok().and_then(|v| v.parse().ok());
    Duration::from_millis(ms.unwrap_or(default))
}
