//! Reads of history itself, not of the store at a time: which commits landed between two
//! times (who made each, which nodes it changed) and every version of a node's rows.

use super::engine::{Cf, EngineRead};
use super::history::{Actor, Stamp};
use super::keys;
use super::{Iden, Result, Row};

/// A commit, as history keeps it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Commit {
    /// When it landed.
    pub stamp: Stamp,
    /// Who made it.
    pub actor: Actor,
    /// The tracked nodes (idens) it changed, in byte order.
    pub nodes: Vec<String>,
}

/// A version of a row: the row, the commit that added it and the one that deleted it (none
/// while it lives).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RowVersion {
    /// The row.
    pub row: Row,
    /// The commit that added it ([`Stamp::BEFORE_HISTORY`] for a row from before history).
    pub born: Stamp,
    /// The commit that deleted it, if one did.
    pub died: Option<Stamp>,
}

/// Returns the commits stamped in `(after, upto]` (µs), newest first.
pub(crate) fn commits(engine: &impl EngineRead, after: i64, upto: i64) -> Result<Vec<Commit>> {
    let start = keys::commit_record_key(Stamp::end_of(upto));
    let end = keys::commit_record_key(Stamp::end_of(after));
    let mut out: Vec<Commit> = Vec::new();
    engine.scan(Cf::History, &start, Some(&end), &mut |k, v| {
        let (stamp, iden) = keys::decode_history_key(k)?;
        match iden {
            None => {
                let (actor, nodes) = keys::decode_commit_record(v)?;
                out.push(Commit {
                    stamp,
                    actor,
                    nodes,
                })
            }
            // A store written before records named their nodes has one key per node.
            Some(iden) => match out.last_mut() {
                Some(c) if c.stamp == stamp => c.nodes.push(iden),
                _ => {
                    return Err(super::StorageError::Corruption(format!(
                        "a change of {iden:?} without its commit record"
                    )));
                }
            },
        }
        Ok(true)
    })?;
    Ok(out)
}

/// Returns who made each commit of `stamps`, read in one scan of point spans.
pub(crate) fn commit_actors(
    engine: &impl EngineRead,
    stamps: &[Stamp],
) -> Result<Vec<Option<Actor>>> {
    let spans: Vec<(Vec<u8>, Vec<u8>)> = (stamps.iter())
        .map(|s| {
            let key = keys::commit_record_key(*s);
            let end = [key.as_slice(), &[0]].concat();
            (key, end)
        })
        .collect();
    let mut out = vec![None; stamps.len()];
    engine.scan_spans(Cf::History, &spans, &mut |i, _, v| {
        out[i] = Some(keys::decode_commit_record(v)?.0);
        Ok(())
    })?;
    Ok(out)
}

/// Returns every version of the rows of `iden` that history keeps (dead ones, then live
/// ones), ordered by birth.
pub(crate) fn row_versions(engine: &impl EngineRead, iden: &Iden) -> Result<Vec<RowVersion>> {
    let prefix = keys::iden_prefix(iden);
    let end = keys::prefix_end(&prefix);
    let mut out = Vec::new();
    engine.scan(Cf::PastByIden, &prefix, end.as_deref(), &mut |k, v| {
        let (live, died) = keys::live_of_past(Cf::PastByIden, k)?;
        let born = keys::split_value(v)?.0;
        let row = keys::decode_row(Cf::ByIden, &live, v)?;
        out.push(RowVersion {
            row,
            born,
            died: Some(died),
        });
        Ok(true)
    })?;
    engine.scan(Cf::ByIden, &prefix, end.as_deref(), &mut |k, v| {
        out.push(RowVersion {
            row: keys::decode_row(Cf::ByIden, k, v)?,
            born: keys::split_value(v)?.0,
            died: None,
        });
        Ok(true)
    })?;
    out.sort_by_key(|v| (v.born, v.died.is_none(), v.died));
    Ok(out)
}

/// Calls `visit` with each row of `prop` in the past indexes (dead rows history keeps) that
/// died after `died_after` (µs), in no order, until it says stop.
pub(crate) fn visit_past_rows_by_prop(
    engine: &impl EngineRead,
    prop: &str,
    died_after: i64,
    visit: &mut super::RowsVisitor<'_>,
) -> Result<()> {
    super::row::check_prop(prop)?;
    let prefix = keys::prop_prefix(prop, None);
    let end = keys::prefix_end(&prefix);
    engine.scan(Cf::PastByPropTime, &prefix, end.as_deref(), &mut |k, v| {
        let (live, died) = keys::live_of_past(Cf::PastByPropTime, k)?;
        match died > Stamp::end_of(died_after) {
            true => visit(keys::decode_row(Cf::ByPropTime, &live, v)?),
            false => Ok(true),
        }
    })
}

/// How many entries of the past indexes `check_past_indexes` reads at once.
const CHECK_PAGE: usize = 10_000;

/// Checks the three past indexes against each other: every `past_by_iden` entry decodes, was
/// born before it died, and is in the other two with the same value; the three hold as many
/// entries. Returns one line per problem (read `engine` as one snapshot).
pub(crate) fn check_past_indexes(engine: &impl EngineRead) -> Result<Vec<String>> {
    let mut problems = Vec::new();
    let mut counts = [0u64; 3];
    let mut start = Vec::new();
    loop {
        // A page read first: an engine may not take point reads while it scans (one
        // connection); a page at a time, the memory does not grow with the history.
        let mut entries = Vec::new();
        engine.scan(Cf::PastByIden, &start, None, &mut |k, v| {
            entries.push((k.to_vec(), v.to_vec()));
            Ok(entries.len() < CHECK_PAGE)
        })?;
        counts[0] += entries.len() as u64;
        let next = (entries.len() >= CHECK_PAGE)
            .then(|| {
                entries
                    .last()
                    .map(|(k, _)| [k.as_slice(), &[0u8][..]].concat())
            })
            .flatten();
        for (k, v) in entries {
            match check_past_entry(engine, &k, &v) {
                Ok(None) => {}
                Ok(Some(problem)) => problems.push(problem),
                Err(e) => problems.push(format!("past_by_iden: undecodable entry: {e}")),
            }
        }
        match next {
            Some(key) => start = key,
            None => break,
        }
    }
    for (i, cf) in [(1, Cf::PastByPropValu), (2, Cf::PastByPropTime)] {
        engine.scan_keys(cf, &[], None, &mut |_, _| {
            counts[i] += 1;
            Ok(true)
        })?;
    }
    if counts[1..].iter().any(|n| *n != counts[0]) {
        problems.push(format!(
            "the past indexes hold {} / {} / {} entries (by iden / prop value / prop time)",
            counts[0], counts[1], counts[2]
        ));
    }
    Ok(problems)
}

/// Checks one `past_by_iden` entry; returns what is wrong with it, if anything.
fn check_past_entry(engine: &impl EngineRead, key: &[u8], value: &[u8]) -> Result<Option<String>> {
    let (live, died) = keys::live_of_past(Cf::PastByIden, key)?;
    let born = keys::split_value(value)?.0;
    let row = keys::decode_row(Cf::ByIden, &live, value)?;
    if born >= died {
        return Ok(Some(format!(
            "past_by_iden: {row:?} died before it was born"
        )));
    }
    for (cf, sibling) in keys::sibling_keys(&live)? {
        let Some(past_cf) = keys::past_cf(cf).filter(|c| *c != Cf::PastByIden) else {
            continue;
        };
        let found = engine.get(past_cf, &keys::past_key(cf, &sibling, died)?)?;
        if found.as_deref() != Some(value) {
            return Ok(Some(format!("{}: missing {row:?}", past_cf.name())));
        }
    }
    Ok(None)
}
