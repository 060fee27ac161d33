//! Sessions: every daemon serving a store records itself in the store (host, pid, mount point,
//! start, heartbeat) as a node of rows, beats while it runs, and removes itself when it stops;
//! a session whose heartbeat is older than the store's time-to-live is expired by any other.
//! On a shared store this is how every host sees who else has it mounted.

use super::{Metastore, Result};
use crate::storage::retry::transact;
use crate::storage::{Iden, IntLift, Row, RowRead, Storage, Valu, now_millis};

/// Props of a session node.
mod prop {
    pub const KIND: &str = "cronusfs:session:kind";
    pub const HOST: &str = "cronusfs:session:host";
    pub const PID: &str = "cronusfs:session:pid";
    pub const MOUNT: &str = "cronusfs:session:mount";
    pub const STARTED: &str = "cronusfs:session:started";
    pub const HEARTBEAT: &str = "cronusfs:session:heartbeat";
}

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
    /// When it started, epoch ms.
    pub started: i64,
    /// Its last heartbeat, epoch ms.
    pub heartbeat: i64,
}

impl Session {
    /// Reads session `id` through `r`; `None` when it is not recorded.
    pub(crate) fn read<R: RowRead + ?Sized>(r: &R, id: &Iden) -> Result<Option<Session>> {
        Ok(Session::from_rows(id.clone(), &r.rows_by_id(id)?))
    }

    fn from_rows(id: Iden, rows: &[Row]) -> Option<Session> {
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
            id,
        })
    }
}

impl<S: Storage> Metastore<S> {
    /// Records a new session of a daemon on `host` (process `pid`) serving at `mountpoint`.
    pub fn open_session(&self, host: &str, pid: u32, mountpoint: &str) -> Result<Session> {
        let now = now_millis();
        let session = Session {
            id: Iden::new(format!("cronusfs:session:{}", uuid::Uuid::new_v4()))?,
            host: host.to_string(),
            pid,
            mountpoint: mountpoint.to_string(),
            started: now,
            heartbeat: now,
        };
        self.storage().add_rows(&session_rows(&session))?;
        Ok(session)
    }

    /// Records a heartbeat of `session` (re-recording it if another daemon expired it
    /// meanwhile), then expires every session whose heartbeat is older than `ttl_ms`; returns
    /// the sessions expired.
    pub fn beat(&self, session: &Session, ttl_ms: i64) -> Result<Vec<Session>> {
        let (now, began) = (now_millis(), std::time::Instant::now());
        transact(self.storage(), |txn| {
            if txn
                .rows_by_id_prop(&session.id, prop::KIND, None)?
                .is_empty()
            {
                let again = Session {
                    heartbeat: now,
                    ..session.clone()
                };
                txn.add_rows(&session_rows(&again))?;
            } else {
                txn.set_rows_by_id_prop(&session.id, prop::HEARTBEAT, &Valu::Int(now))?;
            }
            Ok::<_, crate::meta::MetaError>(())
        })?;
        self.note_beat(&session.id, began);
        self.expire_sessions(now - ttl_ms)
    }

    /// Removes every session whose last heartbeat is before `cutoff` (epoch ms); returns them.
    pub fn expire_sessions(&self, cutoff: i64) -> Result<Vec<Session>> {
        transact(self.storage(), |txn| {
            let stale = txn.rows_by_int(prop::HEARTBEAT, IntLift::Lt(cutoff), None)?;
            let mut gone = Vec::new();
            for row in stale {
                let rows = txn.rows_by_id(&row.iden)?;
                if let Some(s) = Session::from_rows(row.iden.clone(), &rows) {
                    gone.push(s);
                }
                txn.del_rows_by_id(&row.iden)?;
            }
            Ok::<_, crate::meta::MetaError>(gone)
        })
    }

    /// Removes `session` (its daemon is stopping).
    pub fn close_session(&self, session: &Session) -> Result<()> {
        self.detach_session(&session.id);
        self.storage().del_rows_by_id(&session.id)?;
        Ok(())
    }

    /// Returns every recorded session, oldest first.
    pub fn sessions(&self) -> Result<Vec<Session>> {
        let kinds = self
            .storage()
            .rows_by_prop(&crate::storage::PropQuery::new(prop::KIND))?;
        let mut out = Vec::new();
        for row in kinds {
            out.extend(Session::read(self.storage(), &row.iden)?);
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
    ]
}
