//! Sessions: every daemon serving a store records itself in the store (host, pid, mount point,
//! start, heartbeat) as a node of rows, beats while it runs, and removes itself when it stops;
//! a session whose heartbeat is older than the store's session time-to-live is expired by any
//! other. On a shared store this is how every host sees who else has it mounted.
//!
//! The time-to-live is one value per store, recorded in the store (a blob; 30 s when none is)
//! and changed by [`Sessions::set_ttl`]; every session also records the one it last
//! beat under, and is expired only once its heartbeat is older than both. Heartbeats and expiry
//! are timed by the store's clock ([`Storage::server_time`]: the database server's for a shared
//! store), never by the clock of the process that expires.
//!
//! [`Sessions`] (`meta.sessions()`) records, beats, expires, lists and removes sessions;
//! the write lease this process's writes hold under its session is [`crate::meta::Leases`].

use std::time::{Duration, Instant};

use super::{MetaError, Metastore, Result};
use super::{SESSIONS_SCOPE, sessions_change};
use crate::storage::retry::transact;
use crate::storage::{Iden, IntLift, Row, RowRead, Storage, Valu};

/// Props of a session node.
mod prop {
    pub const KIND: &str = "cronusfs:session:kind";
    pub const HOST: &str = "cronusfs:session:host";
    pub const PID: &str = "cronusfs:session:pid";
    pub const MOUNT: &str = "cronusfs:session:mount";
    pub const STARTED: &str = "cronusfs:session:started";
    pub const HEARTBEAT: &str = "cronusfs:session:heartbeat";
    /// The time-to-live (ms) the session last beat under.
    pub const TTL: &str = "cronusfs:session:ttl";
    /// What the daemon said of its health at its last heartbeat.
    pub const HEALTH: &str = "cronusfs:session:health";
    /// The daemon's counters (requests, bytes, commits) at its last heartbeat.
    pub const STATS: &str = "cronusfs:session:stats";
}

/// How every session node's iden begins (`cronusfs:session:<uuid>`).
const SESSION_PREFIX: &str = "cronusfs:session:";

/// The blob holding the store's session time-to-live: milliseconds, an 8-byte big-endian i64.
pub const SESSION_TTL_BLOB: &str = "cronusfs:session-ttl";
/// The session time-to-live of a store that records none.
pub const DEFAULT_SESSION_TTL: Duration = Duration::from_secs(30);
/// The shortest session time-to-live a store takes.
pub const MIN_SESSION_TTL: Duration = Duration::from_millis(100);
/// The longest session time-to-live a store takes (a day).
pub const MAX_SESSION_TTL: Duration = Duration::from_secs(86_400);

/// One daemon's record in the store.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Session {
    /// The session's iden (`cronusfs:session:<uuid>`).
    pub id: Iden,
    /// The host the daemon runs on.
    pub host: String,
    /// The daemon's process id on that host.
    pub pid: u32,
    /// Where it has the store mounted.
    pub mountpoint: String,
    /// When it started, epoch ms by the store's clock.
    pub started: i64,
    /// Its last heartbeat, epoch ms by the store's clock.
    pub heartbeat: i64,
    /// The store's time-to-live (ms) when it last beat, which it beats within; 0 when it
    /// recorded none (a session of an older cronusfs).
    pub ttl_ms: i64,
    /// What the daemon said of its health at its last heartbeat (`None` for a command's
    /// session, or a daemon of an older cronusfs).
    pub health: Option<String>,
    /// The daemon's counters at its last heartbeat (`None` as for `health`).
    pub stats: Option<String>,
}

/// What a daemon says of itself with each heartbeat, for other hosts to read.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Saying {
    /// Its health, on one line.
    pub health: Option<String>,
    /// Its counters, on one line.
    pub stats: Option<String>,
}

/// What a heartbeat did.
#[derive(Clone, Debug)]
pub struct Beat {
    /// The store's session time-to-live the session now beats under.
    pub ttl: Duration,
    /// The sessions of other processes it expired.
    pub expired: Vec<Session>,
}

impl Session {
    /// Reads session `id` through `r`; `None` when it is not recorded.
    pub(crate) fn read<R: RowRead + ?Sized>(r: &R, id: &Iden) -> Result<Option<Session>> {
        Ok(Session::from_rows(id.clone(), &r.rows_by_id(id)?))
    }

    /// Returns the time-to-live (ms) that applies to the session under the store's
    /// `store_ttl`: the longer of that and the one it last beat under.
    pub fn ttl_under(&self, store_ttl: i64) -> i64 {
        store_ttl.max(self.ttl_ms)
    }

    /// Returns whether, at store time `now`, the session's heartbeat is older than the
    /// time-to-live that applies to it under the store's `store_ttl` (both ms).
    pub fn expired_at(&self, now: i64, store_ttl: i64) -> bool {
        now - self.heartbeat > self.ttl_under(store_ttl)
    }

    fn from_rows(id: Iden, rows: &[Row]) -> Option<Session> {
        if !id.as_str().starts_with(SESSION_PREFIX) {
            return None;
        }
        let text = |p: &str| {
            rows.iter()
                .find(|r| r.prop == p)
                .and_then(|r| match &r.valu {
                    Valu::Str(s) => Some(s.clone()),
                    Valu::Int(_) => None,
                })
        };
        let int = |p: &str| rows.iter().find(|r| r.prop == p)?.valu.as_int();
        Some(Session {
            host: text(prop::HOST)?,
            pid: u32::try_from(int(prop::PID)?).ok()?,
            mountpoint: text(prop::MOUNT)?,
            started: int(prop::STARTED)?,
            heartbeat: int(prop::HEARTBEAT)?,
            ttl_ms: int(prop::TTL).unwrap_or(0),
            health: text(prop::HEALTH),
            stats: text(prop::STATS),
            id,
        })
    }
}

/// Returns the store's session time-to-live in ms, as `r` reads it.
pub(crate) fn store_ttl_ms<R: RowRead + ?Sized>(r: &R) -> Result<i64> {
    let Some(raw) = r.blob_get(SESSION_TTL_BLOB)? else {
        return Ok(DEFAULT_SESSION_TTL.as_millis() as i64);
    };
    let ms = <[u8; 8]>::try_from(raw.as_slice())
        .map(i64::from_be_bytes)
        .map_err(|_| MetaError::Corrupt("the session time-to-live is not 8 bytes".into()))?;
    Ok(ms.max(MIN_SESSION_TTL.as_millis() as i64))
}

/// The sessions recorded in a catalogue's store (`meta.sessions()`).
pub struct Sessions<'m, S: Storage> {
    pub(super) meta: &'m Metastore<S>,
}

impl<S: Storage> Sessions<'_, S> {
    fn store(&self) -> &S {
        self.meta.storage()
    }

    /// Returns the store's session time-to-live ([`DEFAULT_SESSION_TTL`] when none is
    /// recorded).
    pub fn ttl(&self) -> Result<Duration> {
        Ok(Duration::from_millis(store_ttl_ms(self.store())? as u64))
    }

    /// Records `ttl` as the store's session time-to-live and returns the one it replaces.
    /// Every process takes it at its next heartbeat; a session is not expired before the
    /// time-to-live it last beat under has passed either.
    pub fn set_ttl(&self, ttl: Duration) -> Result<Duration> {
        if !(MIN_SESSION_TTL..=MAX_SESSION_TTL).contains(&ttl) {
            return Err(MetaError::BadSetting(format!(
                "session time-to-live {} ms is out of range ({} ms to {} s)",
                ttl.as_millis(),
                MIN_SESSION_TTL.as_millis(),
                MAX_SESSION_TTL.as_secs()
            )));
        }
        let ms = ttl.as_millis() as i64;
        let old = transact(self.store(), |txn| {
            txn.announce_within(SESSIONS_SCOPE);
            let old = store_ttl_ms(txn)?;
            txn.blob_set(SESSION_TTL_BLOB, &ms.to_be_bytes())?;
            Ok::<_, MetaError>(old)
        })?;
        Ok(Duration::from_millis(old as u64))
    }

    /// Records a new session of a daemon on `host` (process `pid`) serving at `mountpoint`,
    /// under the store's time-to-live.
    pub fn open(&self, host: &str, pid: u32, mountpoint: &str) -> Result<Session> {
        let now = self.store().server_time()?;
        let session = Session {
            id: Iden::new(format!("{SESSION_PREFIX}{}", uuid::Uuid::new_v4()))?,
            host: host.to_string(),
            pid,
            mountpoint: mountpoint.to_string(),
            started: now,
            heartbeat: now,
            ttl_ms: store_ttl_ms(self.store())?,
            health: None,
            stats: None,
        };
        sessions_change(self.store(), |txn| {
            Ok(txn.add_rows(&session_rows(&session))?)
        })?;
        Ok(session)
    }

    /// Records a heartbeat of `session` at the store's time, under the store's time-to-live
    /// (re-recording the session if another process expired it meanwhile), then expires every
    /// session whose heartbeat is older than its time-to-live.
    pub fn beat(&self, session: &Session) -> Result<Beat> {
        self.beat_saying(session, &Saying::default())
    }

    /// [`Sessions::beat`], recording what the daemon says of itself too (its health and
    /// counters), for every other host to read (`status -s STORE`, `stats -s STORE`).
    pub fn beat_saying(&self, session: &Session, said: &Saying) -> Result<Beat> {
        let began = Instant::now();
        let now = self.store().server_time()?;
        let ttl = transact(self.store(), |txn| {
            txn.announce_within(SESSIONS_SCOPE);
            let ttl = store_ttl_ms(txn)?;
            if txn
                .rows_by_id_prop(&session.id, prop::KIND, None)?
                .is_empty()
            {
                let again = Session {
                    heartbeat: now,
                    ttl_ms: ttl,
                    ..session.clone()
                };
                txn.add_rows(&session_rows(&again))?;
            } else {
                txn.set_rows_by_id_prop(&session.id, prop::HEARTBEAT, &Valu::Int(now))?;
                txn.set_rows_by_id_prop(&session.id, prop::TTL, &Valu::Int(ttl))?;
            }
            for (prop, text) in [(prop::HEALTH, &said.health), (prop::STATS, &said.stats)] {
                if let Some(text) = text {
                    txn.set_rows_by_id_prop(&session.id, prop, &Valu::Str(text.clone()))?;
                }
            }
            Ok::<_, MetaError>(ttl)
        })?;
        self.meta.leases().note_beat(&session.id, began, ttl);
        Ok(Beat {
            ttl: Duration::from_millis(ttl as u64),
            expired: self.expire()?,
        })
    }

    /// Removes every session whose last heartbeat, by the store's clock, is older than the
    /// store's time-to-live and than the one it last beat under; returns them.
    pub fn expire(&self) -> Result<Vec<Session>> {
        let now = self.store().server_time()?;
        transact(self.store(), |txn| {
            txn.announce_within(SESSIONS_SCOPE);
            let store_ttl = store_ttl_ms(txn)?;
            let stale = txn.rows_by_int(prop::HEARTBEAT, IntLift::Lt(now - store_ttl), None)?;
            let mut gone = Vec::new();
            for row in stale {
                let rows = txn.rows_by_id(&row.iden)?;
                // Only a session node goes: a heartbeat row anywhere else (which no user can
                // set: `cronusfs:` props are the daemons' own) is not a session's.
                let Some(session) = Session::from_rows(row.iden.clone(), &rows) else {
                    continue;
                };
                if !session.expired_at(now, store_ttl) {
                    continue; // It beat under a longer time-to-live, not over yet.
                }
                gone.push(session);
                txn.del_rows_by_id(&row.iden)?;
            }
            Ok::<_, MetaError>(gone)
        })
    }

    /// Removes `session` (its daemon is stopping).
    pub fn close(&self, session: &Session) -> Result<()> {
        self.meta.leases().detach_session(&session.id);
        sessions_change(self.store(), |txn| Ok(txn.del_rows_by_id(&session.id)?))?;
        Ok(())
    }

    /// Returns every recorded session, oldest first.
    pub fn list(&self) -> Result<Vec<Session>> {
        let kinds = (self.store()).rows_by_prop(&crate::storage::PropQuery::new(prop::KIND))?;
        let mut out = Vec::new();
        for row in kinds {
            out.extend(Session::read(self.store(), &row.iden)?);
        }
        out.sort_by_key(|s| (s.started, s.id.as_str().to_string()));
        Ok(out)
    }
}

fn session_rows(s: &Session) -> Vec<Row> {
    let t = s.heartbeat;
    vec![
        Row::new(&s.id, prop::KIND, "session", s.started),
        Row::new(&s.id, prop::HOST, s.host.as_str(), s.started),
        Row::new(&s.id, prop::PID, i64::from(s.pid), s.started),
        Row::new(&s.id, prop::MOUNT, s.mountpoint.as_str(), s.started),
        Row::new(&s.id, prop::STARTED, s.started, s.started),
        Row::new(&s.id, prop::HEARTBEAT, t, t),
        Row::new(&s.id, prop::TTL, s.ttl_ms, t),
    ]
}
