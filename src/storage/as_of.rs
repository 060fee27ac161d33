//! The store as it was at a past time: `AsOfView` reads an engine's live and past indexes as
//! one set of index entries alive then (so every row operation of `RowView` works on it
//! unchanged), and `AsOfStore` is the read-only [`Storage`] over it.

use std::collections::BTreeMap;
use std::sync::Arc;

use super::engine::{Cf, Engine, EngineRead, SpansVisitor, Visitor, is_empty_range};
use super::history::{HistoryBounds, Stamp, check_time, is_timeless_blob, is_timeless_iden};
use super::keys::{self, prefix_end};
use super::row_view::RowView;
use super::rowstore::{forward_row_read, forward_row_write};
use super::{
    Iden, IntLift, NodesVisitor, PropQuery, Result, Row, RowRead, RowVisitor, RowWrite, Storage,
    StorageError, Transaction, Valu,
};

/// Index entries as they were at a time: the live entries born by then, and the past ones
/// alive then. Row entries keep their live keys; tracked blobs read their version of then.
pub(crate) struct AsOfView<R> {
    engine: R,
    /// The last stamp a read at the view's time sees.
    end: Stamp,
}

/// An entry: its key and value.
type Entry = (Vec<u8>, Vec<u8>);

/// How many live entries a wide scan of the past reads at a time.
const PAGE: usize = 256;

impl<R: EngineRead> AsOfView<R> {
    /// Returns the view of `engine` at `at` (µs).
    pub fn new(engine: R, at: i64) -> Self {
        AsOfView {
            engine,
            end: Stamp::end_of(at),
        }
    }

    /// Returns whether a live or past entry's row was born by the view's time.
    fn born_by_then(&self, value: &[u8]) -> Result<bool> {
        Ok(keys::split_value(value)?.0 <= self.end)
    }

    /// Returns the range of the past index of `cf` that holds the rows of group `g` that
    /// were still alive at the view's time: within a group, past rows sort by death.
    fn past_span(&self, g: &[u8]) -> (Vec<u8>, Option<Vec<u8>>) {
        let after = Stamp::at(self.end.micros.saturating_add(1));
        ([g, &keys::stamp_bytes(after)[..]].concat(), prefix_end(g))
    }

    /// Returns the group of live range `[start, end)` of `cf` when the range lies in one.
    fn one_group<'k>(cf: Cf, start: &'k [u8], end: Option<&[u8]>) -> Option<&'k [u8]> {
        let g = &start[..keys::group_len(cf, start)?];
        let group_end = prefix_end(g);
        end.is_some_and(|e| e.starts_with(g) || group_end.as_deref() == Some(e))
            .then_some(g)
    }

    /// Visits the entries of group `g` of `cf` in live range `[lo, hi)` alive at the view's
    /// time, in key order; returns whether the visitor wants more.
    fn scan_group(
        &self,
        cf: Cf,
        g: &[u8],
        (lo, hi): (&[u8], Option<&[u8]>),
        visit: &mut Visitor<'_>,
    ) -> Result<bool> {
        let past_cf = keys::past_cf(cf).expect("a live row index");
        let (lower, upper) = self.past_span(g);
        let mut past = Vec::new();
        self.engine
            .scan(past_cf, &lower, upper.as_deref(), &mut |k, v| {
                let (live, died) = keys::live_of_past(past_cf, k)?;
                let inside = live.as_slice() >= lo && hi.is_none_or(|e| live.as_slice() < e);
                if inside && died > self.end && self.born_by_then(v)? {
                    past.push((live, v.to_vec()));
                }
                Ok(true)
            })?;
        past.sort();
        let mut past = past.into_iter().peekable();
        let mut go_on = true;
        self.engine.scan(cf, lo, hi, &mut |k, v| {
            while let Some((pk, pv)) = past.next_if(|(pk, _)| pk.as_slice() < k) {
                go_on = visit(&pk, &pv)?;
                if !go_on {
                    return Ok(false);
                }
            }
            if self.born_by_then(v)? {
                go_on = visit(k, v)?;
            }
            Ok(go_on)
        })?;
        for (pk, pv) in past {
            if !go_on {
                break;
            }
            go_on = visit(&pk, &pv)?;
        }
        Ok(go_on)
    }

    /// Adds to `buf` the past entries of `cf` alive at the view's time whose live keys lie in
    /// `[lo, hi)`, read from past keys in `[from, to)` (whole groups).
    fn past_between(
        &self,
        cf: Cf,
        (from, to): (&[u8], Option<&[u8]>),
        (lo, hi): (&[u8], Option<&[u8]>),
        buf: &mut Vec<Entry>,
    ) -> Result<()> {
        let past_cf = keys::past_cf(cf).expect("a live row index");
        self.engine.scan(past_cf, from, to, &mut |k, v| {
            let (live, died) = keys::live_of_past(past_cf, k)?;
            let inside = live.as_slice() >= lo && hi.is_none_or(|e| live.as_slice() < e);
            if inside && died > self.end && self.born_by_then(v)? {
                buf.push((live, v.to_vec()));
            }
            Ok(true)
        })
    }

    /// Scans live range `[start, end)` of row index `cf` as it was at the view's time. A
    /// range within one group is two scans; a wider one goes a page of live entries at a
    /// time, each merged with the past entries of the groups it reached (read once, in one
    /// scan per page), so a scan the visitor stops early (a limit, a skip scan) costs the
    /// pages it read, and a full scan two round trips per page.
    fn scan_rows(
        &self,
        cf: Cf,
        start: &[u8],
        end: Option<&[u8]>,
        visit: &mut Visitor<'_>,
    ) -> Result<()> {
        if let Some(g) = Self::one_group(cf, start, end) {
            return self.scan_group(cf, g, (start, end), visit).map(drop);
        }
        let group_of = |k: &[u8]| keys::group_len(cf, k).map_or(k.to_vec(), |n| k[..n].to_vec());
        // Past keys of the start's and the end's groups may sort before the start or after
        // the end: the past is read by whole groups.
        let past_end = end.map(|e| match keys::group_len(cf, e) {
            Some(n) => prefix_end(&e[..n]),
            None => Some(e.to_vec()),
        });
        let past_end = past_end.unwrap_or(None);
        let mut covered = group_of(start);
        let (mut cursor, mut buf): (Vec<u8>, Vec<Entry>) = (start.to_vec(), Vec::new());
        loop {
            let mut page: Vec<Entry> = Vec::with_capacity(PAGE);
            self.engine.scan(cf, &cursor, end, &mut |k, v| {
                page.push((k.to_vec(), v.to_vec()));
                Ok(page.len() < PAGE)
            })?;
            let done = page.len() < PAGE;
            // The past of every group up to the page's last one (or to the end).
            let reach = match (done, page.last()) {
                (false, Some((k, _))) => prefix_end(&group_of(k)),
                _ => past_end.clone(),
            };
            self.past_between(cf, (&covered, reach.as_deref()), (start, end), &mut buf)?;
            buf.sort();
            let mut past = std::mem::take(&mut buf).into_iter().peekable();
            for (k, v) in &page {
                while let Some((pk, pv)) = past.next_if(|(pk, _)| pk < k) {
                    if !visit(&pk, &pv)? {
                        return Ok(());
                    }
                }
                if self.born_by_then(v)? && !visit(k, v)? {
                    return Ok(());
                }
            }
            buf = past.collect();
            match (done, reach, page.last()) {
                (false, Some(r), Some((k, _))) => {
                    covered = r;
                    cursor = [k.as_slice(), &[0]].concat();
                }
                _ => break,
            }
        }
        for (pk, pv) in buf {
            if !visit(&pk, &pv)? {
                break;
            }
        }
        Ok(())
    }

    /// Returns tracked blob `name`'s bytes at the view's time.
    fn blob_then(&self, name: &str) -> Result<Option<Vec<u8>>> {
        let prefix = keys::blob_history_prefix(name);
        let from = keys::blob_version_key(name, self.end);
        let mut found = None;
        self.engine.scan(
            Cf::BlobHistory,
            &from,
            prefix_end(&prefix).as_deref(),
            &mut |k, v| {
                found = keys::decode_blob_version(k, v)?.2.map(<[u8]>::to_vec);
                Ok(false)
            },
        )?;
        Ok(found)
    }

    /// Scans blob range `[start, end)` as it was: timeless blobs live, tracked ones as then.
    /// With `keys_only`, live values are left out (a listing of chunks reads no chunk).
    fn scan_blobs(
        &self,
        (start, end): (&[u8], Option<&[u8]>),
        keys_only: bool,
        visit: &mut Visitor<'_>,
    ) -> Result<()> {
        let mut then: BTreeMap<Vec<u8>, Vec<u8>> = BTreeMap::new();
        let mut keep = |k: &[u8], v: &[u8]| {
            if is_timeless_blob(&keys::decode_blob_key(k)?) {
                let v = if keys_only { Vec::new() } else { v.to_vec() };
                then.insert(k.to_vec(), v);
            }
            Ok(true)
        };
        match keys_only {
            true => self.engine.scan_keys(Cf::Blobs, start, end, &mut keep)?,
            false => self.engine.scan(Cf::Blobs, start, end, &mut keep)?,
        }
        let lower =
            std::str::from_utf8(start).map_or_else(|_| Vec::new(), keys::blob_history_name_prefix);
        let upper = end
            .and_then(|e| std::str::from_utf8(e).ok())
            .map(keys::blob_history_name_prefix);
        let mut last: Option<String> = None;
        self.engine
            .scan(Cf::BlobHistory, &lower, upper.as_deref(), &mut |k, v| {
                let (name, stamp, bytes) = keys::decode_blob_version(k, v)?;
                let key = keys::blob_key(&name);
                let inside = key.as_slice() >= start && end.is_none_or(|e| key.as_slice() < e);
                // Newest first: the first version at or before then is the blob's then.
                if inside && stamp <= self.end && last.as_deref() != Some(&name) {
                    if let Some(b) = bytes {
                        then.insert(key, b.to_vec());
                    }
                    last = Some(name);
                }
                Ok(true)
            })?;
        for (k, v) in then {
            if !visit(&k, &v)? {
                break;
            }
        }
        Ok(())
    }
}

/// Returns whether `cf` is a live row index.
fn is_row_index(cf: Cf) -> bool {
    keys::past_cf(cf).is_some()
}

impl<R: EngineRead> EngineRead for AsOfView<R> {
    fn get(&self, cf: Cf, key: &[u8]) -> Result<Option<Vec<u8>>> {
        if cf == Cf::Blobs {
            let name = keys::decode_blob_key(key)?;
            return match is_timeless_blob(&name) {
                true => self.engine.get(cf, key),
                false => self.blob_then(&name),
            };
        }
        if !is_row_index(cf) {
            return self.engine.get(cf, key);
        }
        let mut found = None;
        let end = [key, &[0]].concat();
        self.scan_rows(cf, key, Some(&end), &mut |_, v| {
            found = Some(v.to_vec());
            Ok(false)
        })?;
        Ok(found)
    }

    fn scan(
        &self,
        cf: Cf,
        start: &[u8],
        end: Option<&[u8]>,
        visit: &mut Visitor<'_>,
    ) -> Result<()> {
        if is_empty_range(start, end) {
            return Ok(());
        }
        match cf {
            Cf::Blobs => self.scan_blobs((start, end), false, visit),
            cf if is_row_index(cf) => self.scan_rows(cf, start, end, visit),
            cf => self.engine.scan(cf, start, end, visit),
        }
    }

    fn scan_keys(
        &self,
        cf: Cf,
        start: &[u8],
        end: Option<&[u8]>,
        visit: &mut Visitor<'_>,
    ) -> Result<()> {
        match cf {
            Cf::Blobs if !is_empty_range(start, end) => self.scan_blobs((start, end), true, visit),
            // Row entries' values say when they were born: the view needs them.
            _ => self.scan(cf, start, end, visit),
        }
    }

    fn scan_spans(
        &self,
        cf: Cf,
        spans: &[(Vec<u8>, Vec<u8>)],
        visit: &mut SpansVisitor<'_>,
    ) -> Result<()> {
        if cf != Cf::ByIden {
            for (i, (start, end)) in spans.iter().enumerate() {
                self.scan(cf, start, Some(end), &mut |k, v| {
                    visit(i, k, v).map(|()| true)
                })?;
            }
            return Ok(());
        }
        // Many nodes at once: one read of their live rows and one of their past rows.
        let past_spans: Vec<_> = (spans.iter())
            .map(|(s, e)| {
                let g = Self::one_group(cf, s, Some(e)).unwrap_or(s);
                let (lower, upper) = self.past_span(g);
                (lower, upper.unwrap_or_else(|| e.clone()))
            })
            .collect();
        let mut past: Vec<Vec<Entry>> = vec![Vec::new(); spans.len()];
        self.engine
            .scan_spans(Cf::PastByIden, &past_spans, &mut |i, k, v| {
                let (live, died) = keys::live_of_past(Cf::PastByIden, k)?;
                let (start, end) = &spans[i];
                if live >= *start && live < *end && died > self.end && self.born_by_then(v)? {
                    past[i].push((live, v.to_vec()));
                }
                Ok(())
            })?;
        // A node nothing happened to since (most) is passed on as read; one with past rows is
        // held until its span ends and merged with them. Spans stay in the order given.
        let (mut next, mut held) = (0, Vec::new());
        self.engine.scan_spans(cf, spans, &mut |i, k, v| {
            deliver_until(i, (&mut next, &mut held), &mut past, visit)?;
            match (self.born_by_then(v)?, past[i].is_empty()) {
                (false, _) => Ok(()),
                (true, true) => visit(i, k, v),
                (true, false) => {
                    held.push((k.to_vec(), v.to_vec()));
                    Ok(())
                }
            }
        })?;
        deliver_until(spans.len(), (&mut next, &mut held), &mut past, visit)
    }
}

/// Passes on the entries of every span before `upto` not passed on yet, from `*next`: the
/// live entries `held` of span `*next` merged with its past ones, then the past entries of
/// the spans after it (their live entries, if any, were passed on as read).
fn deliver_until(
    upto: usize,
    (next, held): (&mut usize, &mut Vec<Entry>),
    past: &mut [Vec<Entry>],
    visit: &mut SpansVisitor<'_>,
) -> Result<()> {
    while *next < upto {
        let mut entries = std::mem::take(held);
        entries.append(&mut past[*next]);
        entries.sort();
        for (k, v) in entries {
            visit(*next, &k, &v)?;
        }
        *next += 1;
    }
    Ok(())
}

/// The read-only store as it was at a time.
pub(crate) struct AsOfStore<E: Engine> {
    engine: Arc<E>,
    at: i64,
    since: i64,
    /// Whether its caller keeps the time readable (a snapshot): reads ignore the floor.
    kept: bool,
}

impl<E: Engine> AsOfStore<E> {
    /// Returns the store over `engine` as it was at `at` (µs), its history begun at `since`.
    pub fn new(engine: Arc<E>, at: i64, since: i64) -> Self {
        AsOfStore {
            engine,
            at,
            since,
            kept: false,
        }
    }

    /// Makes the store one of a time its caller keeps readable (see [`Storage::as_of_kept`]).
    pub fn kept(self) -> Self {
        AsOfStore { kept: true, ..self }
    }

    /// Returns the last stamp the view sees.
    fn end(&self) -> Stamp {
        Stamp::end_of(self.at)
    }

    /// Checks, before an answer, that gc has not reclaimed the time the view reads since it
    /// was made (a read of the past may not outlive its retention).
    fn check_floor(&self) -> Result<()> {
        if self.kept {
            return Ok(());
        }
        let floor = super::history::history_floor(&*self.engine)?.unwrap_or(self.since);
        match self.at < floor {
            true => Err(StorageError::PastRetention { at: self.at, floor }),
            false => Ok(()),
        }
    }

    /// Returns a view of the store then, over a snapshot of the engine: a row that dies
    /// between the view's scan of the past and its scan of the live rows is in one of them.
    fn view(&self) -> Result<RowView<AsOfView<E::Snapshot<'_>>>> {
        self.check_floor()?;
        Ok(RowView::new(AsOfView::new(
            self.engine.snapshot()?,
            self.at,
        )))
    }
}

/// A transaction on the past: it reads as the store was, and writes nothing.
pub(crate) struct AsOfTxn<'s, E: Engine + 's> {
    view: RowView<AsOfView<E::Snapshot<'s>>>,
}

/// Refuses a write to the past.
fn read_only<S, T, V>(_: &S, _: impl Fn(&V) -> Result<T>) -> Result<T> {
    Err(StorageError::ReadOnly)
}

/// Refuses a write to the past, for a type of view `V` the caller names.
fn refuse<E: Engine, T>(
    store: &AsOfStore<E>,
    op: impl for<'v> Fn(&RowView<AsOfView<E::Snapshot<'v>>>) -> Result<T>,
) -> Result<T> {
    read_only(store, op)
}

/// [`refuse`] inside a transaction on the past.
fn refuse_in_txn<'s, E: Engine, T>(
    txn: &AsOfTxn<'s, E>,
    op: impl Fn(&RowView<AsOfView<E::Snapshot<'s>>>) -> Result<T>,
) -> Result<T> {
    read_only(txn, op)
}

forward_row_read!(AsOfStore<E>, self => self.view()?);
forward_row_read!(AsOfTxn<'_, E>, self => self.view);
forward_row_write!(AsOfStore<E>, refuse);
forward_row_write!(AsOfTxn<'_, E>, refuse_in_txn);

impl<E: Engine> Transaction for AsOfTxn<'_, E> {
    fn commit(self: Box<Self>) -> Result<()> {
        Ok(())
    }

    fn announce_within(&self, _: &str) {}
}

impl<E: Engine + 'static> Storage for AsOfStore<E> {
    fn begin(&self) -> Result<Box<dyn Transaction + '_>> {
        Ok(Box::new(AsOfTxn::<E> { view: self.view()? }))
    }

    fn backup_rows(&self, chunk_rows: usize) -> Box<dyn Iterator<Item = Result<Vec<Row>>> + '_> {
        // Timeless nodes (sessions) are the present, not the past: left out, so that a
        // backup of one time is the same whenever it is made.
        super::rowstore::backup_chunks(
            move |after| self.view()?.backup_chunk(after, chunk_rows),
            |r| !is_timeless_iden(r.iden.as_str()),
        )
    }

    fn check_indexes(&self) -> Result<Vec<String>> {
        self.view()?.check_indexes()
    }

    fn sync(&self) -> Result<()> {
        Ok(())
    }

    fn blob_set_unlogged(&self, _key: &str, _valu: &[u8]) -> Result<()> {
        Err(StorageError::ReadOnly)
    }

    fn persist_blobs(&self) -> Result<()> {
        Ok(())
    }

    fn reclaim_blob_space(&self) -> Result<()> {
        Ok(())
    }

    fn wait_for_change(&self, timeout: std::time::Duration) -> Result<super::ChangesElsewhere> {
        // The past never changes.
        std::thread::sleep(timeout);
        Ok(super::ChangesElsewhere::Nothing)
    }

    fn server_time(&self) -> Result<i64> {
        self.engine.server_time()
    }

    fn is_shared(&self) -> bool {
        self.engine.is_shared()
    }

    fn history_bounds(&self) -> Result<HistoryBounds> {
        Ok(HistoryBounds {
            since: self.since,
            floor: super::history::history_floor(&*self.engine)?.unwrap_or(self.since),
            now: self.at,
        })
    }

    fn commits(&self, after: i64, upto: i64) -> Result<Vec<super::Commit>> {
        super::history_reads::commits(&self.engine.snapshot()?, after, upto.min(self.at))
    }

    fn row_versions(&self, iden: &Iden) -> Result<Vec<super::RowVersion>> {
        let end = self.end();
        let versions = super::history_reads::row_versions(&self.engine.snapshot()?, iden)?;
        Ok((versions.into_iter())
            .filter(|v| v.born <= end)
            .map(|v| super::RowVersion {
                died: v.died.filter(|d| *d <= end),
                ..v
            })
            .collect())
    }

    fn commit_actors(&self, stamps: &[Stamp]) -> Result<Vec<Option<super::Actor>>> {
        let mut actors = super::history_reads::commit_actors(&*self.engine, stamps)?;
        for (actor, stamp) in actors.iter_mut().zip(stamps) {
            if *stamp > self.end() {
                *actor = None;
            }
        }
        Ok(actors)
    }

    fn visit_past_rows_by_prop(
        &self,
        prop: &str,
        died_after: i64,
        visit: &mut super::RowsVisitor<'_>,
    ) -> Result<()> {
        // What history keeps, whatever time the view reads.
        super::history_reads::visit_past_rows_by_prop(&*self.engine, prop, died_after, visit)
    }

    fn raise_history_floor(&self, _floor: i64) -> Result<i64> {
        Err(StorageError::ReadOnly)
    }

    fn as_of(&self, at: i64) -> Result<Box<dyn Storage>> {
        check_time(at, self.history_bounds()?)?;
        Ok(Box::new(AsOfStore::new(
            Arc::clone(&self.engine),
            at,
            self.since,
        )))
    }

    fn check_readable(&self) -> Result<()> {
        self.check_floor()
    }

    fn prune_history(&self, _floor: i64, _pins: &[i64]) -> Result<super::Pruned> {
        Err(StorageError::ReadOnly)
    }

    fn as_of_kept(&self, at: i64) -> Result<Box<dyn Storage>> {
        super::history::check_kept_time(at, self.history_bounds()?)?;
        Ok(Box::new(
            AsOfStore::new(Arc::clone(&self.engine), at, self.since).kept(),
        ))
    }
}
