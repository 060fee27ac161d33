//! Read holds: how `gc` never deletes a content that an open handle reads, in this process or
//! (through rows on the session node) in any process of a shared store.
//!
//! A handle takes a [`ContentHold`] before it reads a content's manifest. In this process the
//! hold is a count; with a session (a shared store), the first hold of a content also records
//! a row `cronusfs:session:reading = <content id>` on the session node, in a transaction that
//! reads the content's manifest. `gc` deletes a manifest only when no count and no such row
//! holds it, checking the count under the lock that takes holds, and the rows in the
//! transaction that deletes the manifest: a hold and a deletion are never both granted (the
//! serializable transactions of a shared store conflict, and the loser runs again). A handle
//! that finds its content gone opens the object's current version instead. Rows of contents
//! nobody holds any more are removed by the session's heartbeat, and go with the session when
//! it stops or expires.
//!
//! `HoldCounts` is this process's count of holds (a field of the catalogue); [`ReadHolds`]
//! (`meta.read_holds()`) takes, records, tends and checks them.

use std::collections::HashMap;
use std::ops::Deref;
use std::sync::{Arc, Mutex, MutexGuard};

use super::Metastore;
use super::{SESSIONS_SCOPE, sessions_change};
use crate::meta::content::{delete_manifest, has_manifest};
use crate::meta::{ContentId, Manifest, MetaError, Result};
use crate::storage::retry::transact;
use crate::storage::{Iden, PropQuery, Row, Storage, Valu, now_millis};

/// The prop of a read hold's row (on the session node of the process holding it).
const READING: &str = "cronusfs:session:reading";

/// What this process holds of one content.
#[derive(Default)]
struct Held {
    /// Open holds.
    count: usize,
    /// The session whose row records the hold, if one does.
    recorded: Option<Iden>,
}

/// The contents this process's handles read, with how many holds each.
#[derive(Default)]
pub(super) struct HoldCounts {
    held: Mutex<HashMap<ContentId, Held>>,
}

impl HoldCounts {
    fn lock(&self) -> MutexGuard<'_, HashMap<ContentId, Held>> {
        self.held.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Counts one more hold of `id`; returns whether a row must record it under `session`.
    fn add(&self, id: ContentId, session: Option<&Iden>) -> bool {
        let mut held = self.lock();
        let h = held.entry(id).or_default();
        h.count += 1;
        session.is_some_and(|s| h.recorded.as_ref() != Some(s))
    }

    /// Counts one hold of `id` fewer.
    fn remove(&self, id: ContentId) {
        let mut held = self.lock();
        if let Some(h) = held.get_mut(&id) {
            h.count = h.count.saturating_sub(1);
            if h.count == 0 && h.recorded.is_none() {
                held.remove(&id);
            }
        }
    }

    fn mark_recorded(&self, id: ContentId, session: &Iden) {
        if let Some(h) = self.lock().get_mut(&id) {
            h.recorded = Some(session.clone());
        }
    }
}

/// Keeps `gc` from deleting one content while alive.
pub struct ContentHold {
    holds: Arc<HoldCounts>,
    id: ContentId,
}

impl Drop for ContentHold {
    fn drop(&mut self) {
        self.holds.remove(self.id);
    }
}

/// A content's manifest, read under a hold: its chunks stay while this lives.
pub struct HeldManifest {
    manifest: Manifest,
    _hold: Option<ContentHold>,
}

impl Deref for HeldManifest {
    type Target = Manifest;

    fn deref(&self) -> &Manifest {
        &self.manifest
    }
}

/// The read holds of a catalogue (`meta.read_holds()`): what keeps gc from deleting the
/// contents open handles read.
pub struct ReadHolds<'m, S: Storage> {
    pub(super) meta: &'m Metastore<S>,
}

impl<S: Storage> ReadHolds<'_, S> {
    /// Holds content `id` against `gc` and returns its manifest;
    /// [`MetaError::NoSuchContent`] when `gc` deleted it before the hold was taken.
    pub fn hold(&self, id: ContentId) -> Result<HeldManifest> {
        let (meta, counts) = (self.meta, &self.meta.hold_counts);
        // Only a store other processes use may have a gc elsewhere: a row tells them.
        let shared = meta.storage().is_shared();
        let session = shared.then(|| meta.gc_gate.session()).flatten();
        let record = counts.add(id, session.as_ref());
        let hold = ContentHold {
            holds: counts.clone(),
            id,
        };
        if let (true, Some(session)) = (record, &session) {
            let row = Row::new(session, READING, Valu::from(id.to_string()), now_millis());
            transact(meta.storage(), |txn| {
                txn.announce_within(SESSIONS_SCOPE);
                txn.add_rows(std::slice::from_ref(&row))?;
                // Read in the same transaction as the row is written: a gc elsewhere that
                // deletes the manifest conflicts with it.
                match has_manifest(txn, id)? {
                    true => Ok(()),
                    false => Err(MetaError::NoSuchContent(id)),
                }
            })?;
            counts.mark_recorded(id, session);
        }
        let manifest = meta.content().manifest(id)?;
        Ok(HeldManifest {
            manifest,
            _hold: Some(hold),
        })
    }

    /// Holds the content of `manifest`, which a commit of this process has just made the
    /// current version of an object; should the hold fail to be recorded (a shared store's
    /// server away), the manifest is returned unheld, as it was before holds existed.
    pub fn hold_committed(&self, manifest: Manifest) -> HeldManifest {
        self.hold(manifest.id).unwrap_or(HeldManifest {
            manifest,
            _hold: None,
        })
    }

    /// Deletes content `id`'s manifest unless a handle holds it, here or (by a row) in any
    /// process of the store; returns whether it deleted it.
    pub(super) fn delete_unless_held(&self, id: ContentId) -> Result<bool> {
        let store = self.meta.storage();
        // Under the lock that takes holds: a hold taken after this sees the manifest gone.
        let held = self.meta.hold_counts.lock();
        if held.get(&id).is_some_and(|h| h.count > 0) {
            return Ok(false);
        }
        if !store.is_shared() {
            delete_manifest(store, id)?;
            return Ok(true);
        }
        let valu = Valu::from(id.to_string());
        transact(store, |txn| {
            txn.announce_within(SESSIONS_SCOPE);
            let query = PropQuery::new(READING).valu(&valu);
            if !txn.rows_by_prop(&query)?.is_empty() {
                return Ok(false);
            }
            delete_manifest(txn, id)?;
            Ok::<_, MetaError>(true)
        })
    }

    /// Removes the rows of holds no handle uses any more (the session's heartbeat calls this).
    pub fn tend(&self) -> Result<()> {
        let mut held = self.meta.hold_counts.lock();
        let unused: Vec<(ContentId, Iden)> = held
            .iter()
            .filter(|(_, h)| h.count == 0)
            .filter_map(|(id, h)| Some((*id, h.recorded.clone()?)))
            .collect();
        // The lock stays held: a hold taken meanwhile must find its row either there or gone.
        for (id, session) in unused {
            let valu = Valu::from(id.to_string());
            sessions_change(self.meta.storage(), |txn| {
                Ok(txn.del_rows_by_id_prop(&session, READING, Some(&valu))?)
            })?;
            held.remove(&id);
        }
        Ok(())
    }

    /// Returns how many contents this process's handles hold now.
    pub fn count(&self) -> usize {
        (self.meta.hold_counts)
            .lock()
            .values()
            .filter(|h| h.count > 0)
            .count()
    }
}
