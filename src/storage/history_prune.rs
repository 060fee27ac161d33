//! Pruning history below the floor: what no time still answered for needs. A row version that
//! died at or before the floor goes, unless a pinned time (a snapshot's) saw it alive; a
//! tracked blob keeps its newest version at or before the floor and at or before each pin
//! (a deletion only while an older version stays for a pin);
//! commit records at or before the floor go. Every engine, in batches of [`PAGE`] deletes.

use super::engine::{Cf, Engine, EngineTxn, WriteBatch};
use super::history::Stamp;
use super::{Result, keys};

/// Adds the deletes of one entry (key, value) to a batch; returns whether it did.
type PruneEntry<'a> = dyn FnMut(&[u8], &[u8], &mut WriteBatch) -> Result<bool> + 'a;

/// The most deletes one batch commits.
const PAGE: usize = 4096;

/// What a prune deleted.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Pruned {
    /// Row versions (each three index entries).
    pub rows: u64,
    /// Versions of tracked blobs.
    pub blob_versions: u64,
    /// Commit records.
    pub commits: u64,
}

/// Deletes from `engine`'s history what no time at or after `floor` (µs), and no time of
/// `pins`, needs.
pub(crate) fn prune<E: Engine>(engine: &E, floor: i64, pins: &[i64]) -> Result<Pruned> {
    let last = Stamp::end_of(floor);
    Ok(Pruned {
        rows: paged(engine, Cf::PastByIden, Vec::new(), &mut |k, v, batch| {
            let (live, died) = keys::live_of_past(Cf::PastByIden, k)?;
            let born = keys::split_value(v)?.0;
            if died > last || seen_by_a_pin(born, died, pins) {
                return Ok(false);
            }
            for (cf, key) in keys::sibling_keys(&live)? {
                let past_cf = keys::past_cf(cf).expect("a live row index");
                batch.delete(past_cf, keys::past_key(cf, &key, died)?);
            }
            Ok(true)
        })?,
        blob_versions: prune_blob_versions(engine, last, pins)?,
        // Newest first: what is at or before the floor begins at its key.
        commits: paged(
            engine,
            Cf::History,
            keys::commit_record_key(last),
            &mut |k, _, batch| {
                let (stamp, _) = keys::decode_history_key(k)?;
                if stamp > last {
                    return Ok(false);
                }
                batch.delete(Cf::History, k.to_vec());
                Ok(true)
            },
        )?,
    })
}

/// Returns whether a row alive over `[born, died)` was alive at one of `pins`.
fn seen_by_a_pin(born: Stamp, died: Stamp, pins: &[i64]) -> bool {
    pins.iter()
        .any(|&p| born <= Stamp::end_of(p) && Stamp::end_of(p) < died)
}

/// Deletes the versions of tracked blobs that no time at or after `last`, and no pin, reads:
/// each blob keeps its newest version at or before `last` and at or before each pin.
fn prune_blob_versions<E: Engine>(engine: &E, last: Stamp, pins: &[i64]) -> Result<u64> {
    // Versions come newest first within a blob: the state carries the blob seen last and the
    // times (the floor, then the pins, newest first) whose version is still to be found.
    let mut times: Vec<Stamp> = pins.iter().map(|&p| Stamp::end_of(p)).collect();
    times.push(last);
    times.sort_unstable_by(|a, b| b.cmp(a));
    let mut blob = String::new();
    let mut wanted: Vec<Stamp> = Vec::new();
    paged(engine, Cf::BlobHistory, Vec::new(), &mut |k, v, batch| {
        let (name, stamp, bytes) = keys::decode_blob_version(k, v)?;
        if name != blob {
            blob = name;
            wanted = times.clone();
        }
        if stamp > last {
            return Ok(false); // Newer than the floor: every later time may read it.
        }
        // The newest version at or before a time still wanted answers for that time.
        let answers = wanted.iter().any(|t| stamp <= *t);
        wanted.retain(|t| stamp > *t);
        // A deletion that no older time needs looked past (every older version goes too)
        // answers as no version at all: it goes.
        if answers && (bytes.is_some() || !wanted.is_empty()) {
            return Ok(false);
        }
        batch.delete(Cf::BlobHistory, k.to_vec());
        Ok(true)
    })
}

/// Scans `cf` in key order from `from` to its end, letting `prune` add deletes of each entry
/// to a batch (returning whether it did); commits every [`PAGE`] deletes. Returns how many
/// entries went.
fn paged<E: Engine>(
    engine: &E,
    cf: Cf,
    mut from: Vec<u8>,
    prune: &mut PruneEntry<'_>,
) -> Result<u64> {
    let mut total = 0;
    loop {
        let mut batch = WriteBatch::new();
        let (mut found, mut last_key) = (0, None);
        engine.scan(cf, &from, None, &mut |k, v| {
            if prune(k, v, &mut batch)? {
                found += 1;
            }
            last_key = Some(k.to_vec());
            Ok(found < PAGE)
        })?;
        if !batch.is_empty() {
            engine.begin()?.commit(batch)?;
        }
        total += found as u64;
        match last_key {
            // Stopped at a full page: go on after the last key seen.
            Some(k) if found >= PAGE => from = [k.as_slice(), &[0]].concat(),
            _ => return Ok(total),
        }
    }
}
