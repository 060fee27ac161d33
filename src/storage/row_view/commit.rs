//! How a view's pending writes become one batch that keeps history: rows that really change
//! are stamped, rows that die move to the past indexes, tracked blobs keep their versions,
//! and the commit leaves a record of who made it and which nodes it changed.

use std::collections::{BTreeMap, HashMap};

use super::RowView;
use super::seen::Known;
use crate::storage::Result;
use crate::storage::engine::{Cf, EngineRead, StampAt, WriteBatch};
use crate::storage::history::{Stamp, current_actor, is_timeless_blob, is_timeless_iden};
use crate::storage::keys::{self, STAMP_LEN, TAGGED_STAMP_OFFSET};

/// A placeholder stamp: its 12 bytes are overwritten when the engine stamps the commit.
const UNSTAMPED: Stamp = Stamp::BEFORE_HISTORY;

/// The slot of a tagged live value's stamp.
const VALUE_SLOT: StampAt = StampAt::Value(TAGGED_STAMP_OFFSET);

impl<R: EngineRead> RowView<R> {
    /// Ends the view: returns what it read from and its pending changes as one batch, with
    /// the history they leave.
    pub fn finish(self) -> Result<(R, WriteBatch)> {
        let mut pending = self.pending.take();
        let rows = std::mem::take(&mut pending[Cf::ByIden.index()]);
        let blobs = std::mem::take(&mut pending[Cf::Blobs.index()]);
        let committed = self.committed_values(&rows)?;
        let mut batch = WriteBatch::new();
        let mut changed = Vec::new();
        for (key, op) in rows {
            let iden = keys::iden_of_key(&key)?;
            let tracked = !is_timeless_iden(&iden);
            let wrote = match tracked {
                true => write_tracked_row(&mut batch, &key, op, committed.get(&key))?,
                false => write_untracked_row(&mut batch, &key, op)?,
            };
            if wrote && changed.last().is_none_or(|(last, _)| *last != iden) {
                changed.push((iden, tracked));
            }
        }
        let mut history = changed.iter().any(|(_, tracked)| *tracked);
        for (name, op) in blobs {
            let name = keys::decode_blob_key(&name)?;
            history |= write_blob(&mut batch, &name, op);
        }
        // A view writes rows and blobs only: the other two row indexes kept in step with
        // `ByIden` were remade from it above.
        if history {
            write_commit_record(&mut batch, &changed);
        }
        for (iden, _) in changed {
            batch.note_changed(iden);
        }
        Ok((self.engine, batch))
    }

    /// Returns the committed `ByIden` values of the tracked keys among `rows`: those the
    /// view read, and point reads of the others (a store across a network answers them all in
    /// one round trip).
    fn committed_values(
        &self,
        rows: &BTreeMap<Vec<u8>, Option<Vec<u8>>>,
    ) -> Result<HashMap<Vec<u8>, Vec<u8>>> {
        let seen = self.seen.as_ref().map(|s| {
            s.borrow_mut().sort();
            s.borrow()
        });
        let mut committed = HashMap::new();
        let mut unknown = Vec::new();
        for key in rows.keys() {
            if keys::iden_of_key(key).is_ok_and(|i| is_timeless_iden(&i)) {
                continue;
            }
            match seen.as_ref().map_or(Known::Unknown, |s| s.known(key)) {
                Known::Stored(value) => {
                    committed.insert(key.clone(), value.to_vec());
                }
                Known::Absent => {}
                Known::Unknown => unknown.push(key.clone()),
            }
        }
        if !unknown.is_empty() {
            let values = self.engine.multi_get(Cf::ByIden, &unknown)?;
            for (key, value) in unknown.into_iter().zip(values) {
                if let Some(value) = value {
                    committed.insert(key, value);
                }
            }
        }
        Ok(committed)
    }
}

/// Writes the change of a tracked row: a new row is stamped with its birth, a row that dies
/// moves to the past indexes with its birth and death; adding a stored row or deleting an
/// absent one changes nothing. Returns whether anything was written.
fn write_tracked_row(
    batch: &mut WriteBatch,
    key: &[u8],
    op: Option<Vec<u8>>,
    committed: Option<&Vec<u8>>,
) -> Result<bool> {
    let siblings = keys::sibling_keys(key)?;
    match (op, committed) {
        (Some(_), Some(_)) | (None, None) => return Ok(false),
        (Some(text), None) => {
            let value = keys::tag_value(UNSTAMPED, &text);
            for (cf, k) in siblings {
                batch.put_stamped(cf, k, value.clone(), VALUE_SLOT);
            }
        }
        (None, Some(old)) => {
            for (cf, k) in siblings {
                let past_cf = keys::past_cf(cf).expect("a live row index");
                let past = keys::past_key(cf, &k, UNSTAMPED)?;
                let offset = keys::past_key_stamp_offset(cf, &past)?;
                batch.delete(cf, k);
                batch.put_stamped(past_cf, past, old.clone(), StampAt::Key(offset));
            }
        }
    }
    Ok(true)
}

/// Writes the change of a timeless row (a session's) as it is: no history.
fn write_untracked_row(batch: &mut WriteBatch, key: &[u8], op: Option<Vec<u8>>) -> Result<bool> {
    for (cf, k) in keys::sibling_keys(key)? {
        match &op {
            Some(v) => batch.put(cf, k, v.clone()),
            None => batch.delete(cf, k),
        }
    }
    Ok(true)
}

/// Writes a blob's change, and its new version when the blob is tracked; returns whether it
/// is (the commit then keeps history).
fn write_blob(batch: &mut WriteBatch, name: &str, op: Option<Vec<u8>>) -> bool {
    let tracked = !is_timeless_blob(name);
    if tracked {
        let key = keys::blob_version_key(name, UNSTAMPED);
        let offset = key.len() - STAMP_LEN;
        let value = keys::blob_version_value(op.as_deref());
        batch.put_stamped(Cf::BlobHistory, key, value, StampAt::KeyInverted(offset));
    }
    match op {
        Some(v) => batch.put(Cf::Blobs, keys::blob_key(name), v),
        None => batch.delete(Cf::Blobs, keys::blob_key(name)),
    }
    tracked
}

/// Writes the commit's record: who made it, and the tracked nodes it changed (one entry).
fn write_commit_record(batch: &mut WriteBatch, changed: &[(String, bool)]) {
    let mut record = keys::encode_commit_record(&current_actor());
    for (iden, _) in changed.iter().filter(|(_, tracked)| *tracked) {
        keys::add_changed_node(&mut record, iden);
    }
    batch.put_stamped(
        Cf::History,
        keys::commit_record_key(UNSTAMPED),
        record,
        StampAt::KeyInverted(0),
    );
}
