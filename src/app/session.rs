//! The daemon's session in its store: recorded when it starts serving, a heartbeat every sixth
//! of the store's session time-to-live (which also expires the sessions of daemons that
//! stopped beating), removed when it stops. `CRONUSFS_SESSION_TTL_MS` sets the time-to-live
//! (default 30 s).

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

use anyhow::Result;
use cronusfs::fs::FsCore;
use cronusfs::meta::Session;
use cronusfs::storage::Storage;

/// How long a session lives without a heartbeat, by default.
const DEFAULT_TTL_MS: i64 = 30_000;

type Core = Arc<FsCore<Box<dyn Storage>>>;

/// A recorded session and the thread beating for it.
pub struct Heartbeat {
    core: Core,
    session: Session,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

/// Returns the live sessions of `m`'s store (a heartbeat within the time-to-live) other than
/// this process's own.
pub fn other_live_sessions(m: &super::Catalog) -> Result<Vec<Session>> {
    let (now, ttl, host) = (cronusfs::storage::now_millis(), ttl_ms(), host_name());
    let mine = |s: &Session| s.pid == std::process::id() && s.host == host;
    Ok(m.sessions()?
        .into_iter()
        .filter(|s| now - s.heartbeat < ttl && !mine(s))
        .collect())
}

/// Returns the session time-to-live in milliseconds.
fn ttl_ms() -> i64 {
    std::env::var("CRONUSFS_SESSION_TTL_MS")
        .ok()
        .and_then(|v| v.parse().ok())
        .filter(|v| *v >= 100)
        .unwrap_or(DEFAULT_TTL_MS)
}

/// Returns this host's name.
fn host_name() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_string())
        .unwrap_or_else(|_| "localhost".to_string())
}

impl Heartbeat {
    /// Records the session of this daemon serving `core` at `mountpoint` and starts beating.
    pub fn start(core: Core, mountpoint: &Path) -> Result<Heartbeat> {
        let meta = core.metastore();
        let session = meta.open_session(
            &host_name(),
            std::process::id(),
            &mountpoint.display().to_string(),
        )?;
        let stop = Arc::new(AtomicBool::new(false));
        let ttl = ttl_ms();
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
        if let Err(e) = self.core.metastore().close_session(&self.session) {
            super::mount::log(&format!("could not remove the session: {e}"));
        }
    }
}

fn beat_until_stopped((core, session, stop): (Core, Session, Arc<AtomicBool>), ttl: i64) {
    let every = Duration::from_millis((ttl / 6) as u64);
    loop {
        std::thread::park_timeout(every);
        if stop.load(Ordering::SeqCst) {
            return;
        }
        match core.metastore().beat(&session, ttl) {
            Ok(expired) => {
                for s in expired {
                    super::mount::log(&format!(
                        "expired the session of {} pid {} at {} (no heartbeat for {} ms)",
                        s.host, s.pid, s.mountpoint, ttl
                    ));
                }
            }
            Err(e) => super::mount::log(&format!("heartbeat failed: {e}")),
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
