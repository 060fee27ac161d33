//! The gc gate: the gc lock, the pins of streams being written, write leases and sweep marks:
//! how `gc` never reclaims a chunk that a writer, in this process or in another (another host
//! of a shared store), has stored and not yet committed.
//!
//! `GcGate` is this process's side of it (a field of the catalogue); [`Leases`]
//! (`meta.leases()`) is what writers, gc and the heartbeat ask of it, reading and writing the
//! rows of the store.
//!
//! A process with a session holds the store's *write lease* (a row on its session node) from
//! before it stores a chunk until every chunk it stored is referenced by a committed version or
//! given up, and a second longer; `gc` records a *sweep mark* (a row on its own session node),
//! waits until no other live session holds a lease, then marks and sweeps, and removes the
//! mark. A lease is recorded in the same serializable transaction that reads the sweep marks,
//! and a sweep mark in one that reads the other marks, so a lease and a sweep are never granted
//! together. Both rows go with their session when it stops or expires. A commit of content
//! reads its lease: a writer whose lease expired (its chunks may be gone) commits nothing.
//! Whether a session is live is decided by the store's clock and time-to-live
//! ([`Session::expired_at`]), never by this process's.

use std::collections::{HashMap, HashSet};
use std::sync::{Condvar, Mutex, MutexGuard, RwLock, RwLockReadGuard, RwLockWriteGuard};
use std::time::{Duration, Instant};

use super::Metastore;
use super::sessions::store_ttl_ms;
use super::{SESSIONS_SCOPE, sessions_change};
use crate::meta::{MetaError, Result, Session};
use crate::storage::retry::transact;
use crate::storage::{Iden, PropQuery, RowRead, Storage, now_millis};

/// Props of the lease and sweep rows (on the session node of the process holding them).
mod prop {
    /// The session may have stored chunks not yet referenced (epoch ms since when).
    pub const WRITING: &str = "cronusfs:session:writing";
    /// The session's gc is marking and sweeping (epoch ms since when).
    pub const SWEEPING: &str = "cronusfs:session:sweeping";
}

/// How long an unused lease is kept (a burst of small files pays for one).
const LEASE_IDLE: Duration = Duration::from_secs(1);
/// How long a new write waits for its own process to give up its lease to a sweep.
const DRAIN_WAIT: Duration = Duration::from_secs(5);
/// How long a new write waits for a sweep in progress before it fails with EBUSY.
const SWEEP_WAIT: Duration = Duration::from_secs(600);
/// How long gc waits by default for other processes' writes in progress.
const DEFAULT_GC_WAIT: Duration = Duration::from_secs(60);
/// How often a waiting writer or gc looks again.
const POLL: Duration = Duration::from_millis(20);

/// The process's session as a holder of leases and sweep marks.
#[derive(Clone)]
struct LeaseOwner {
    session: Iden,
    // The time-to-live the session last beat under: no process expires it sooner.
    ttl_ms: i64,
    gc_wait: Duration,
}

/// What keeps gc from reclaiming chunks not yet referenced, on this process's side: the gc
/// lock, the pins of streams being written, and the store-wide write lease (with the writes
/// using it and the session it is recorded under).
#[derive(Default)]
pub(super) struct GcGate {
    // Puts hold it shared while their chunks are not yet referenced; gc holds it exclusively,
    // so it never reclaims the chunks of a put in flight.
    gc_lock: RwLock<()>,
    // Chunks of streams being written, which gc must not reclaim (with how many streams
    // hold each).
    pins: Mutex<HashMap<[u8; 32], usize>>,
    // The store-wide write lease of this process, when it has a session.
    state: Mutex<LeaseState>,
    changed: Condvar,
}

#[derive(Default)]
struct LeaseState {
    owner: Option<LeaseOwner>,
    held: bool,
    acquiring: bool,
    // A sweep elsewhere waits for this lease: new writes wait for it to be given up.
    draining: bool,
    users: usize,
    last_used: Option<Instant>,
    // When the last heartbeat that reached the store began.
    beat_at: Option<Instant>,
}

impl GcGate {
    fn lock(&self) -> MutexGuard<'_, LeaseState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn lock_pins(&self) -> MutexGuard<'_, HashMap<[u8; 32], usize>> {
        self.pins.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Keeps chunk `hash` of a stream being written from gc (once more).
    pub(super) fn pin(&self, hash: &[u8; 32]) {
        *self.lock_pins().entry(*hash).or_default() += 1;
    }

    /// Gives up one pin of each chunk of `hashes`.
    pub(super) fn unpin<'h>(&self, hashes: impl Iterator<Item = &'h [u8; 32]>) {
        let mut pins = self.lock_pins();
        for h in hashes {
            if let Some(n) = pins.get_mut(h) {
                *n -= 1;
                if *n == 0 {
                    pins.remove(h);
                }
            }
        }
    }

    /// Returns the chunks pinned now.
    pub(super) fn pinned(&self) -> HashSet<[u8; 32]> {
        self.lock_pins().keys().copied().collect()
    }

    /// Keeps every write of this process from storing chunks while the guard lives (gc holds
    /// it while it marks and sweeps).
    pub(super) fn lock_out_writes(&self) -> RwLockWriteGuard<'_, ()> {
        self.gc_lock.write().unwrap_or_else(|e| e.into_inner())
    }

    /// Returns the session this process's leases and holds are recorded under, if any.
    pub(super) fn session(&self) -> Option<Iden> {
        self.lock().owner.as_ref().map(|o| o.session.clone())
    }

    fn lease_unused(&self, st: &LeaseState) -> bool {
        st.users == 0 && self.lock_pins().is_empty()
    }
}

/// Keeps `gc` (here and, with a session, in every process of the store) from reclaiming
/// chunks while alive.
pub(crate) struct WriteHold<'m> {
    _local: RwLockReadGuard<'m, ()>,
    gate: Option<&'m GcGate>,
}

impl Drop for WriteHold<'_> {
    fn drop(&mut self) {
        if let Some(gate) = self.gate {
            let mut st = gate.lock();
            st.users -= 1;
            st.last_used = Some(Instant::now());
        }
    }
}

/// A sweep mark of this process's gc, removed when dropped.
pub(super) struct Sweep<'m, S: Storage> {
    meta: &'m Metastore<S>,
    session: Iden,
}

impl<S: Storage> Drop for Sweep<'_, S> {
    fn drop(&mut self) {
        // Left behind on failure, the mark goes with the session (the process is stopping or
        // its heartbeat removes nothing else): writers wait at most until it expires.
        let _ = sessions_change(self.meta.storage(), |txn| {
            Ok(txn.del_rows_by_id_prop(&self.session, prop::SWEEPING, None)?)
        });
    }
}

/// The write lease and sweep marks of a catalogue (`meta.leases()`): holding gc off while a
/// write stores chunks, giving the lease up when idle, checking it at a commit, and the sweep
/// mark gc records.
pub struct Leases<'m, S: Storage> {
    pub(super) meta: &'m Metastore<S>,
}

impl<'m, S: Storage> Leases<'m, S> {
    /// Makes this process's writes hold the store's write lease under `session` (which must
    /// keep beating within the time-to-live it was recorded under, and then within the one
    /// each [`crate::meta::Sessions::beat`] returns), so that gc in any process of the store
    /// waits for them.
    pub fn attach_session(&self, session: &Session) {
        let mut st = self.meta.gc_gate.lock();
        st.owner = Some(LeaseOwner {
            session: session.id.clone(),
            ttl_ms: session.ttl_ms,
            gc_wait: st.owner.as_ref().map_or(DEFAULT_GC_WAIT, |o| o.gc_wait),
        });
        st.held = false;
        st.beat_at = Some(Instant::now());
    }

    /// Records that a heartbeat of `session` begun at `at` reached the store, under the
    /// time-to-live `ttl_ms`.
    pub(crate) fn note_beat(&self, session: &Iden, at: Instant, ttl_ms: i64) {
        let mut guard = self.meta.gc_gate.lock();
        let st = &mut *guard;
        if let Some(owner) = st.owner.as_mut().filter(|o| o.session == *session) {
            owner.ttl_ms = ttl_ms;
            st.beat_at = Some(at);
        }
    }

    /// Ends what [`Leases::attach_session`] began when `session` is this process's (its
    /// rows, the lease with them, are being removed).
    pub(crate) fn detach_session(&self, session: &Iden) {
        let gate = &self.meta.gc_gate;
        let mut st = gate.lock();
        if st.owner.as_ref().is_none_or(|o| o.session != *session) {
            return;
        }
        st.owner = None;
        st.held = false;
        gate.changed.notify_all();
    }

    /// Sets how long gc waits for other processes' writes in progress before it gives up with
    /// [`MetaError::Busy`] (default 60 s); takes effect with a session.
    pub fn set_gc_wait(&self, wait: Duration) {
        if let Some(owner) = self.meta.gc_gate.lock().owner.as_mut() {
            owner.gc_wait = wait;
        }
    }

    /// Returns a hold against gc for a write that has stored nothing yet: when a sweep
    /// elsewhere waits for this process's lease, it waits (a while) for the lease to be given
    /// up to the sweep, and for the sweep to end.
    pub(crate) fn hold_off_gc_for_new_write(&self) -> Result<WriteHold<'m>> {
        self.hold_off_gc(DRAIN_WAIT)
    }

    /// Returns a hold against gc for a write that continues a stream whose chunks are pinned
    /// (the lease cannot be given up meanwhile): it uses the lease held without waiting for
    /// it to be given up to a sweep.
    pub(crate) fn hold_off_gc_for_continued_write(&self) -> Result<WriteHold<'m>> {
        self.hold_off_gc(Duration::ZERO)
    }

    /// Returns a hold against gc, waiting at most `drain_wait` for this process's lease to be
    /// given up to a sweep that waits for it ([`DRAIN_WAIT`] for a new write, none for a
    /// continued one), and for a sweep in progress when the lease has to be taken.
    fn hold_off_gc(&self, drain_wait: Duration) -> Result<WriteHold<'m>> {
        let gate: &'m GcGate = &self.meta.gc_gate;
        let local = gate.gc_lock.read().unwrap_or_else(|e| e.into_inner());
        let mut st = gate.lock();
        let waiting_since = Instant::now();
        loop {
            let Some(owner) = st.owner.clone() else {
                return Ok(WriteHold {
                    _local: local,
                    gate: None,
                });
            };
            let drain = st.draining && waiting_since.elapsed() < drain_wait;
            if st.held && !drain {
                st.users += 1;
                return Ok(WriteHold {
                    _local: local,
                    gate: Some(gate),
                });
            }
            if st.held || st.acquiring {
                st = (gate.changed.wait_timeout(st, POLL))
                    .unwrap_or_else(|e| e.into_inner())
                    .0;
                continue;
            }
            st.acquiring = true;
            drop(st);
            let acquired = self.acquire_lease(&owner);
            st = gate.lock();
            st.acquiring = false;
            st.held = acquired.is_ok();
            gate.changed.notify_all();
            acquired?;
        }
    }

    /// Records the lease, waiting while another live session sweeps.
    fn acquire_lease(&self, owner: &LeaseOwner) -> Result<()> {
        let started = Instant::now();
        let store = self.meta.storage();
        loop {
            let now = store.server_time()?;
            let sweeper = transact(store, |txn| {
                txn.announce_within(SESSIONS_SCOPE);
                require_live(txn, owner)?;
                if let Some(s) = live_marks(txn, prop::SWEEPING, owner, now)?
                    .into_iter()
                    .next()
                {
                    return Ok(Some(s));
                }
                txn.set_rows_by_id_prop(&owner.session, prop::WRITING, &now_millis().into())?;
                Ok::<_, MetaError>(None)
            })?;
            match sweeper {
                None => return Ok(()),
                Some(s) if started.elapsed() >= SWEEP_WAIT => {
                    return Err(MetaError::Busy(format!(
                        "gc has been sweeping the store for {} s ({})",
                        started.elapsed().as_secs(),
                        describe(&s)
                    )));
                }
                Some(_) => std::thread::sleep(POLL),
            }
        }
    }

    /// Fails with [`MetaError::LeaseLost`] when this process has a session and its lease is
    /// not in the store as `txn` reads it (a commit of content checks this).
    ///
    /// While the session's last heartbeat is younger than half the time-to-live it beat under,
    /// no other process can have expired it (the heartbeat is the store's time when it began,
    /// and expiry waits for the whole time-to-live by the store's clock; half leaves room for
    /// clocks that tick at slightly different rates), so the lease is there and is not read
    /// again: a commit costs no extra round trip.
    pub(crate) fn check_held_in(&self, txn: &dyn RowRead) -> Result<()> {
        let owner = {
            let st = self.meta.gc_gate.lock();
            let Some(owner) = st.owner.clone() else {
                return Ok(());
            };
            let safe = Duration::from_millis(owner.ttl_ms as u64 / 2);
            if st.held && st.beat_at.is_some_and(|t| t.elapsed() < safe) {
                return Ok(());
            }
            owner
        };
        if txn
            .rows_by_id_prop(&owner.session, prop::WRITING, None)?
            .is_empty()
        {
            // The next write records a new lease; this one's chunks may have been reclaimed.
            self.meta.gc_gate.lock().held = false;
            return Err(MetaError::LeaseLost);
        }
        Ok(())
    }

    /// Gives up the lease when no write uses it and it has been idle a second (at once when
    /// a sweep waits for it); notices sweeps waiting. The session's heartbeat calls this
    /// several times a second while a lease is held.
    pub fn tend(&self) -> Result<()> {
        let gate = &self.meta.gc_gate;
        let mut st = gate.lock();
        let Some(owner) = st.owner.clone() else {
            return Ok(());
        };
        if !st.held || st.acquiring {
            return Ok(());
        }
        let idle = st.last_used.is_none_or(|t| t.elapsed() >= LEASE_IDLE);
        if gate.lease_unused(&st) && (idle || st.draining) {
            return self.release_lease(&mut st, &owner);
        }
        drop(st);
        let store = self.meta.storage();
        let now = store.server_time()?;
        let sweeping = !live_marks(store, prop::SWEEPING, &owner, now)?.is_empty();
        let mut st = gate.lock();
        if st.draining != sweeping {
            st.draining = sweeping;
            gate.changed.notify_all();
        }
        if sweeping && st.held && !st.acquiring && gate.lease_unused(&st) {
            return self.release_lease(&mut st, &owner);
        }
        Ok(())
    }

    /// Returns whether this process holds the store's write lease.
    pub fn is_held(&self) -> bool {
        self.meta.gc_gate.lock().held
    }

    fn release_lease(&self, st: &mut LeaseState, owner: &LeaseOwner) -> Result<()> {
        sessions_change(self.meta.storage(), |txn| {
            Ok(txn.del_rows_by_id_prop(&owner.session, prop::WRITING, None)?)
        })?;
        st.held = false;
        st.draining = false;
        self.meta.gc_gate.changed.notify_all();
        Ok(())
    }

    /// Records this process's sweep mark and waits until no other live session holds a write
    /// lease; `None` without a session (no other process can write).
    pub(super) fn begin_sweep(&self) -> Result<Option<Sweep<'m, S>>> {
        let meta: &'m Metastore<S> = self.meta;
        let Some(owner) = meta.gc_gate.lock().owner.clone() else {
            return Ok(None);
        };
        let store = meta.storage();
        let now = store.server_time()?;
        transact(store, |txn| {
            txn.announce_within(SESSIONS_SCOPE);
            require_live(txn, &owner)?;
            if let Some(s) = live_marks(txn, prop::SWEEPING, &owner, now)?.first() {
                return Err(MetaError::Busy(format!("gc is running: {}", describe(s))));
            }
            txn.set_rows_by_id_prop(&owner.session, prop::SWEEPING, &now_millis().into())?;
            Ok(())
        })?;
        let sweep = Sweep {
            meta,
            session: owner.session.clone(),
        };
        let started = Instant::now();
        loop {
            // A lease of a session that stopped beating is not waited for: the session is
            // expired first, so that its writer, if it comes back, finds its lease gone.
            meta.sessions().expire()?;
            if (store.rows_by_id_prop(&owner.session, prop::SWEEPING, None)?).is_empty() {
                return Err(MetaError::LeaseLost); // this very session was expired
            }
            let now = store.server_time()?;
            let writers = live_marks(store, prop::WRITING, &owner, now)?;
            let Some(w) = writers.first() else {
                return Ok(Some(sweep));
            };
            if started.elapsed() >= owner.gc_wait {
                return Err(MetaError::Busy(format!(
                    "writes in progress for {} s: {}{}",
                    started.elapsed().as_secs(),
                    describe(w),
                    if writers.len() > 1 { ", …" } else { "" }
                )));
            }
            std::thread::sleep(POLL);
        }
    }
}

/// Returns the sessions other than `owner`'s with a row of `mark` that are live at store time
/// `now` (not yet past their time-to-live).
fn live_marks<R: RowRead + ?Sized>(
    r: &R,
    mark: &str,
    owner: &LeaseOwner,
    now: i64,
) -> Result<Vec<Session>> {
    let store_ttl = store_ttl_ms(r)?;
    let mut out = Vec::new();
    for row in r.rows_by_prop(&PropQuery::new(mark))? {
        if row.iden == owner.session {
            continue;
        }
        if let Some(s) = Session::read(r, &row.iden)?
            && !s.expired_at(now, store_ttl)
        {
            out.push(s);
        }
    }
    Ok(out)
}

/// Fails with [`MetaError::LeaseLost`] when `owner`'s session is not recorded (it was expired).
fn require_live<R: RowRead + ?Sized>(r: &R, owner: &LeaseOwner) -> Result<()> {
    match Session::read(r, &owner.session)? {
        Some(_) => Ok(()),
        None => Err(MetaError::LeaseLost),
    }
}

fn describe(s: &Session) -> String {
    format!("{} pid {} at {}", s.host, s.pid, s.mountpoint)
}
