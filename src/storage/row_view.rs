//! The row operations, written once over any engine: a `RowView` reads an engine (or one of its
//! transactions) merged with its own pending writes, and collects writes into an overlay that
//! becomes one atomic batch.

use std::cell::RefCell;
use std::collections::{BTreeMap, HashSet};
use std::ops::Bound;

use super::engine::{Cf, EngineRead, Visitor, is_empty_range};
use super::keys::{self, Span, is_long};
use super::row::{check_blob_key, check_prop, now_millis};
use super::{
    Iden, IntLift, KeysVisitor, NodesVisitor, PropQuery, Result, Row, RowVisitor, RowsVisitor,
    StorageError, Valu,
};

mod check;
mod commit;
mod seen;

type PendingWrites = [BTreeMap<Vec<u8>, Option<Vec<u8>>>; Cf::ALL.len()];

/// Row operations over `engine` (an engine or an engine transaction), with pending writes held
/// in memory until [`RowView::finish`] hands them over as one batch.
pub(crate) struct RowView<R: EngineRead> {
    engine: R,
    pending: RefCell<PendingWrites>,
    /// For a view that commits: the committed rows it read (see [`seen::Seen`]).
    seen: Option<RefCell<seen::Seen>>,
}

impl<R: EngineRead> RowView<R> {
    /// Returns a view of `engine` with nothing pending.
    pub fn new(engine: R) -> Self {
        RowView {
            engine,
            pending: RefCell::new(Default::default()),
            seen: None,
        }
    }

    /// Returns a view of transaction `engine` that will commit: it remembers the committed
    /// rows it reads, so that its commit need not read them again.
    pub fn for_writes(engine: R) -> Self {
        RowView {
            seen: Some(RefCell::default()),
            ..RowView::new(engine)
        }
    }

    fn get(&self, cf: Cf, key: &[u8]) -> Result<Option<Vec<u8>>> {
        if let Some(v) = self.pending.borrow()[cf.index()].get(key) {
            return Ok(v.clone());
        }
        let value = self.engine.get(cf, key)?;
        if let (Cf::ByIden, Some(seen)) = (cf, &self.seen) {
            match &value {
                Some(v) => seen.borrow_mut().saw(key, Some(v)),
                None => seen.borrow_mut().saw_absent(key),
            }
        }
        Ok(value)
    }

    fn put(&self, cf: Cf, key: Vec<u8>, value: Vec<u8>) {
        self.pending.borrow_mut()[cf.index()].insert(key, Some(value));
    }

    fn delete(&self, cf: Cf, key: Vec<u8>) {
        self.pending.borrow_mut()[cf.index()].insert(key, None);
    }

    /// Scans `[start, end)` of `cf`, merging pending changes over committed entries.
    fn scan(
        &self,
        cf: Cf,
        start: &[u8],
        end: Option<&[u8]>,
        visit: &mut Visitor<'_>,
    ) -> Result<()> {
        self.merged_scan(cf, (start, end), false, visit)
    }

    /// [`RowView::scan`] with `keys_only`: committed entries may come with empty values.
    fn merged_scan(
        &self,
        cf: Cf,
        (start, end): (&[u8], Option<&[u8]>),
        keys_only: bool,
        visit: &mut Visitor<'_>,
    ) -> Result<()> {
        let seen = self.seen.as_ref().filter(|_| cf == Cf::ByIden);
        let engine_scan = |visit: &mut Visitor<'_>| {
            let Some(seen) = seen else {
                return match keys_only {
                    true => self.engine.scan_keys(cf, start, end, visit),
                    false => self.engine.scan(cf, start, end, visit),
                };
            };
            // Remembered for the commit: each committed row read, and the span if read whole.
            let mut whole = true;
            let mut remember = |k: &[u8], v: &[u8]| {
                seen.borrow_mut().saw(k, (!keys_only).then_some(v));
                let go_on = visit(k, v)?;
                whole &= go_on;
                Ok(go_on)
            };
            match keys_only {
                true => self.engine.scan_keys(cf, start, end, &mut remember)?,
                false => self.engine.scan(cf, start, end, &mut remember)?,
            }
            if whole {
                seen.borrow_mut().read_whole(start, end);
            }
            Ok(())
        };
        if is_empty_range(start, end) {
            return Ok(());
        }
        let pending = self.pending.borrow();
        let upper = end.map_or(Bound::Unbounded, Bound::Excluded);
        let mut mine = pending[cf.index()]
            .range::<[u8], _>((Bound::Included(start), upper))
            .peekable();
        if mine.peek().is_none() {
            return engine_scan(visit);
        }
        let mut stopped = false;
        engine_scan(&mut |k, v| {
            while let Some((pk, pv)) = mine.next_if(|(pk, _)| pk.as_slice() <= k) {
                let shadowed = pk.as_slice() == k;
                if let Some(pv) = pv
                    && !visit(pk, pv)?
                {
                    stopped = true;
                    return Ok(false);
                }
                if shadowed {
                    return Ok(true);
                }
            }
            let go_on = visit(k, v)?;
            stopped = !go_on;
            Ok(go_on)
        })?;
        if !stopped {
            for (pk, pv) in mine {
                if let Some(pv) = pv
                    && !visit(pk, pv)?
                {
                    break;
                }
            }
        }
        Ok(())
    }

    /// Decodes the rows of `cf` in `[start, end)` that `keep` accepts, at most `limit`.
    fn collect_rows(
        &self,
        cf: Cf,
        (start, end): Span,
        limit: Option<usize>,
        keep: &dyn Fn(&Row) -> bool,
    ) -> Result<Vec<Row>> {
        let mut out = Vec::new();
        if limit == Some(0) {
            return Ok(out);
        }
        self.scan(cf, &start, end.as_deref(), &mut |k, v| {
            let row = keys::decode_row(cf, k, v)?;
            if keep(&row) {
                out.push(row);
            }
            Ok(limit.is_none_or(|l| out.len() < l))
        })?;
        Ok(out)
    }

    /// Counts the entries of `cf` in `[start, end)`, at most `limit`.
    fn count(&self, cf: Cf, (start, end): Span, limit: Option<usize>) -> Result<usize> {
        let mut n = 0;
        if limit == Some(0) {
            return Ok(0);
        }
        self.scan(cf, &start, end.as_deref(), &mut |_, _| {
            n += 1;
            Ok(limit.is_none_or(|l| n < l))
        })?;
        Ok(n)
    }

    pub fn rows_by_id(&self, iden: &Iden) -> Result<Vec<Row>> {
        let prefix = keys::iden_prefix(iden);
        let span = (prefix.clone(), keys::prefix_end(&prefix));
        self.collect_rows(Cf::ByIden, span, None, &|_| true)
    }

    pub fn props(&self) -> Result<Vec<String>> {
        let mut out = Vec::new();
        let mut start = Vec::new();
        loop {
            let mut found = None;
            self.scan(Cf::ByPropTime, &start, None, &mut |k, v| {
                found = Some(keys::decode_row(Cf::ByPropTime, k, v)?.prop);
                Ok(false)
            })?;
            let Some(prop) = found else {
                out.sort(); // The index's order is its encoding's; callers get byte order.
                return Ok(out);
            };
            // Past every key of this prop: the next scan starts at the next prop.
            let next = keys::prefix_end(&keys::prop_prefix(&prop, None));
            out.push(prop);
            match next {
                Some(next) => start = next,
                None => {
                    out.sort();
                    return Ok(out);
                }
            }
        }
    }

    pub fn visit_rows_by_id(&self, iden: &Iden, visit: &mut RowVisitor<'_>) -> Result<()> {
        let prefix = keys::iden_prefix(iden);
        let end = keys::prefix_end(&prefix);
        self.scan(Cf::ByIden, &prefix, end.as_deref(), &mut |k, v| {
            keys::visit_iden_row(&k[prefix.len()..], v, visit)?;
            Ok(true)
        })
    }

    pub fn visit_rows_by_idens(&self, idens: &[Iden], visit: &mut NodesVisitor<'_>) -> Result<()> {
        let spans: Option<Vec<_>> = (idens.iter())
            .map(|iden| {
                let prefix = keys::iden_prefix(iden);
                let end = keys::prefix_end(&prefix)?;
                Some((prefix, end))
            })
            .collect();
        let pending = !self.pending.borrow()[Cf::ByIden.index()].is_empty();
        match spans {
            // Nothing of the transaction's own to merge: the engine reads them all at once.
            Some(spans) if !pending => {
                self.engine.scan_spans(Cf::ByIden, &spans, &mut |i, k, v| {
                    keys::visit_iden_row(&k[spans[i].0.len()..], v, &mut |p, valu, t| {
                        visit(i, p, valu, t)
                    })
                })
            }
            _ => {
                for (i, iden) in idens.iter().enumerate() {
                    self.visit_rows_by_id(iden, &mut |p, v, t| visit(i, p, v, t))?;
                }
                Ok(())
            }
        }
    }

    pub fn rows_by_id_prop(
        &self,
        iden: &Iden,
        prop: &str,
        valu: Option<&Valu>,
    ) -> Result<Vec<Row>> {
        check_prop(prop)?;
        let prefix = keys::iden_prop_prefix(iden, prop, valu);
        let span = (prefix.clone(), keys::prefix_end(&prefix));
        self.collect_rows(Cf::ByIden, span, None, &|r| {
            valu.is_none_or(|v| &r.valu == v)
        })
    }

    /// Returns the index and key range that answer `q`.
    fn prop_span(q: &PropQuery<'_>) -> Result<(Cf, Span)> {
        check_prop(q.prop)?;
        let cf = if q.valu.is_some() {
            Cf::ByPropValu
        } else {
            Cf::ByPropTime
        };
        let prefix = keys::prop_prefix(q.prop, q.valu);
        let (mut start, end) = keys::time_span(&prefix, q.mintime, q.maxtime);
        if let Some((time, iden)) = q.after {
            // Past every key of the node at that time.
            match keys::past_node_at(&prefix, time, iden) {
                Some(past) => start = start.max(past),
                // No key lies past them (all 0xFF): an empty span, not an unbounded one.
                None => return Ok((cf, (start.clone(), Some(start)))),
            }
        }
        Ok((cf, (start, end)))
    }

    pub fn rows_by_prop(&self, q: &PropQuery<'_>) -> Result<Vec<Row>> {
        let (cf, span) = Self::prop_span(q)?;
        match q.valu {
            // A hashed long string's prefix can (in theory) hold other strings with the same
            // hash: every hit is checked against the stored text, so the limit counts true hits.
            Some(v @ Valu::Str(s)) if is_long(s) => {
                self.collect_rows(cf, span, q.limit, &|r| &r.valu == v)
            }
            _ => self.collect_rows(cf, span, q.limit, &|_| true),
        }
    }

    pub fn visit_rows_by_prop(&self, q: &PropQuery<'_>, visit: &mut RowsVisitor<'_>) -> Result<()> {
        let (cf, (start, end)) = Self::prop_span(q)?;
        let long = q.valu.filter(|v| matches!(v, Valu::Str(s) if is_long(s)));
        let mut left = q.limit.unwrap_or(usize::MAX);
        if left == 0 {
            return Ok(());
        }
        self.scan(cf, &start, end.as_deref(), &mut |k, v| {
            let row = keys::decode_row(cf, k, v)?;
            // A hashed long string's prefix may hold other strings with the same hash.
            if long.is_some_and(|l| &row.valu != l) {
                return Ok(true);
            }
            left -= 1;
            Ok(visit(row)? && left > 0)
        })
    }

    pub fn size_by_prop(&self, q: &PropQuery<'_>) -> Result<usize> {
        match q.valu {
            Some(Valu::Str(s)) if is_long(s) => Ok(self.rows_by_prop(q)?.len()),
            _ => {
                let (cf, span) = Self::prop_span(q)?;
                self.count(cf, span, q.limit)
            }
        }
    }

    /// Returns the whole nodes of the distinct idens of `driving`, in first-seen order.
    fn join(&self, driving: Vec<Row>) -> Result<Vec<Row>> {
        let mut seen = HashSet::new();
        let mut out = Vec::new();
        for row in driving {
            if seen.insert(row.iden.clone()) {
                out.extend(self.rows_by_id(&row.iden)?);
            }
        }
        Ok(out)
    }

    pub fn join_by_prop(&self, q: &PropQuery<'_>) -> Result<Vec<Row>> {
        let driving = self.rows_by_prop(q)?;
        self.join(driving)
    }

    pub fn rows_by_int(&self, prop: &str, lift: IntLift, limit: Option<usize>) -> Result<Vec<Row>> {
        check_prop(prop)?;
        let Some((lo, hi)) = lift.bounds() else {
            return Ok(Vec::new());
        };
        self.collect_rows(Cf::ByPropValu, keys::int_span(prop, lo, hi), limit, &|_| {
            true
        })
    }

    pub fn size_by_int(&self, prop: &str, lift: IntLift, limit: Option<usize>) -> Result<usize> {
        check_prop(prop)?;
        let Some((lo, hi)) = lift.bounds() else {
            return Ok(0);
        };
        self.count(Cf::ByPropValu, keys::int_span(prop, lo, hi), limit)
    }

    pub fn joins_by_int(
        &self,
        prop: &str,
        lift: IntLift,
        limit: Option<usize>,
    ) -> Result<Vec<Row>> {
        let driving = self.rows_by_int(prop, lift, limit)?;
        self.join(driving)
    }

    pub fn joins_by_in(
        &self,
        prop: &str,
        valus: &[Valu],
        limit: Option<usize>,
    ) -> Result<Vec<Row>> {
        check_prop(prop)?;
        let mut seen = HashSet::new();
        let mut out = Vec::new();
        let full = |seen: &HashSet<Iden>| limit.is_some_and(|l| seen.len() >= l);
        for valu in valus {
            if full(&seen) {
                break;
            }
            // Not limited to the nodes still wanted: rows of nodes already joined (by an
            // earlier value) would use up such a limit and hide new ones.
            for row in self.rows_by_prop(&PropQuery::new(prop).valu(valu))? {
                if full(&seen) {
                    break;
                }
                if seen.insert(row.iden.clone()) {
                    out.extend(self.rows_by_id(&row.iden)?);
                }
            }
        }
        Ok(out)
    }

    pub fn blob_get(&self, key: &str) -> Result<Option<Vec<u8>>> {
        check_blob_key(key)?;
        self.get(Cf::Blobs, &keys::blob_key(key))
    }

    pub fn blob_has(&self, key: &str) -> Result<bool> {
        Ok(self.blob_get(key)?.is_some())
    }

    pub fn blob_keys_with_prefix(&self, prefix: &str) -> Result<Vec<String>> {
        let mut out = Vec::new();
        let start = keys::blob_key(prefix);
        let end = keys::prefix_end(&start);
        self.merged_scan(Cf::Blobs, (&start, end.as_deref()), true, &mut |k, _| {
            out.push(keys::decode_blob_key(k)?);
            Ok(true)
        })?;
        Ok(out)
    }

    pub fn visit_blob_keys_with_prefix(
        &self,
        prefix: &str,
        visit: &mut KeysVisitor<'_>,
    ) -> Result<()> {
        let start = keys::blob_key(prefix);
        let end = keys::prefix_end(&start);
        self.merged_scan(Cf::Blobs, (&start, end.as_deref()), true, &mut |k, _| {
            visit(keys::decode_blob_key(k)?)
        })
    }

    /// Returns the blobs whose keys start with `prefix`, with their values, in key order.
    pub fn blobs_with_prefix(&self, prefix: &str) -> Result<Vec<(String, Vec<u8>)>> {
        let mut out = Vec::new();
        let start = keys::blob_key(prefix);
        let end = keys::prefix_end(&start);
        self.merged_scan(Cf::Blobs, (&start, end.as_deref()), false, &mut |k, v| {
            out.push((keys::decode_blob_key(k)?, v.to_vec()));
            Ok(true)
        })?;
        Ok(out)
    }

    // ---- writes -------------------------------------------------------------------------

    /// Adds `rows` after validating all of them (a refused row means nothing is added).
    pub fn add_rows(&self, rows: &[Row]) -> Result<()> {
        for row in rows {
            check_prop(&row.prop)?;
        }
        for row in rows {
            let e = keys::row_entries(row);
            for (cf, key) in e.keys {
                self.put(cf, key, e.value.clone());
            }
        }
        Ok(())
    }

    /// Deletes rows a caller names (validated as [`RowView::add_rows`] validates them).
    pub fn del_given_rows(&self, rows: &[Row]) -> Result<()> {
        for row in rows {
            check_prop(&row.prop)?;
        }
        self.del_rows(rows);
        Ok(())
    }

    fn del_rows(&self, rows: &[Row]) -> usize {
        for row in rows {
            for (cf, key) in keys::row_entries(row).keys {
                self.delete(cf, key);
            }
        }
        rows.len()
    }

    /// Replaces each of `rows` by what `change` makes of it; returns how many were replaced.
    fn replace_rows(&self, rows: &[Row], change: impl Fn(&Row) -> Row) -> Result<usize> {
        let changed: Vec<Row> = rows.iter().map(change).collect();
        self.del_rows(rows);
        self.add_rows(&changed)?;
        Ok(rows.len())
    }

    pub fn del_rows_by_id(&self, iden: &Iden) -> Result<usize> {
        let rows = self.rows_by_id(iden)?;
        Ok(self.del_rows(&rows))
    }

    pub fn del_rows_by_prop(&self, q: &PropQuery<'_>) -> Result<usize> {
        let rows = self.rows_by_prop(&PropQuery { limit: None, ..*q })?;
        Ok(self.del_rows(&rows))
    }

    pub fn del_rows_by_id_prop(
        &self,
        iden: &Iden,
        prop: &str,
        valu: Option<&Valu>,
    ) -> Result<usize> {
        let rows = self.rows_by_id_prop(iden, prop, valu)?;
        Ok(self.del_rows(&rows))
    }

    pub fn del_join_by_prop(&self, q: &PropQuery<'_>) -> Result<usize> {
        let rows = self.join_by_prop(&PropQuery { limit: None, ..*q })?;
        Ok(self.del_rows(&rows))
    }

    pub fn set_rows_by_id_prop(&self, iden: &Iden, prop: &str, valu: &Valu) -> Result<()> {
        self.del_rows_by_id_prop(iden, prop, None)?;
        self.add_rows(&[Row {
            iden: iden.clone(),
            prop: prop.to_string(),
            valu: valu.clone(),
            time: now_millis(),
        }])
    }

    pub fn update_property(&self, oldprop: &str, newprop: &str) -> Result<usize> {
        check_prop(oldprop)?;
        check_prop(newprop)?;
        if oldprop == newprop {
            return Err(StorageError::BadProp {
                prop: newprop.to_string(),
                reason: "same as the old prop",
            });
        }
        let rows = self.rows_by_prop(&PropQuery::new(oldprop))?;
        self.replace_rows(&rows, |r| Row {
            prop: newprop.to_string(),
            ..r.clone()
        })
    }

    pub fn update_property_valu(&self, prop: &str, oldval: &Valu, newval: &Valu) -> Result<usize> {
        check_prop(prop)?;
        if oldval.type_name() != newval.type_name() {
            return Err(StorageError::BadValu(format!(
                "cannot replace a {} value by a {} value",
                oldval.type_name(),
                newval.type_name()
            )));
        }
        if oldval == newval {
            return Err(StorageError::BadValu(
                "old and new value are equal".to_string(),
            ));
        }
        let rows = self.rows_by_prop(&PropQuery::new(prop).valu(oldval))?;
        self.replace_rows(&rows, |r| Row {
            valu: newval.clone(),
            ..r.clone()
        })
    }

    pub fn blob_set(&self, key: &str, valu: &[u8]) -> Result<()> {
        check_blob_key(key)?;
        self.put(Cf::Blobs, keys::blob_key(key), valu.to_vec());
        Ok(())
    }

    pub fn blob_del(&self, key: &str) -> Result<Vec<u8>> {
        let old = self
            .blob_get(key)?
            .ok_or_else(|| StorageError::NoSuchBlob(key.to_string()))?;
        self.delete(Cf::Blobs, keys::blob_key(key));
        Ok(old)
    }

    /// Returns up to `chunk` rows of the whole store in `ByIden` order, starting after key
    /// `after`, and the key to resume from (`None` when the store is exhausted).
    pub fn backup_chunk(
        &self,
        after: Option<&[u8]>,
        chunk: usize,
    ) -> Result<(Vec<Row>, Option<Vec<u8>>)> {
        let start = after.map(|a| [a, &[0u8][..]].concat()).unwrap_or_default();
        let mut rows = Vec::new();
        let mut last = None;
        let chunk = chunk.max(1);
        self.scan(Cf::ByIden, &start, None, &mut |k, v| {
            rows.push(keys::decode_row(Cf::ByIden, k, v)?);
            last = Some(k.to_vec());
            Ok(rows.len() < chunk)
        })?;
        let resume = if rows.len() < chunk { None } else { last };
        Ok((rows, resume))
    }
}
