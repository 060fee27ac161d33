//! The reads a PostgreSQL connection runs: a key, a range paged by round trips growing up to
//! a bound, several ranges in one round trip.

use super::PgConn;
use crate::storage::Result;
use crate::storage::engine::{Cf, SpansVisitor, Visitor, is_empty_range};

/// Rows fetched by the first round trip of a scan; each further page doubles, up to
/// [`MAX_PAGE`] (most scans are one node's few rows, a few are whole indexes).
const FIRST_PAGE: i64 = 64;
const MAX_PAGE: i64 = 4096;
/// Pages of values of the blob side store are kept short: its values are up to a chunk each.
const MAX_BLOB_PAGE: i64 = 8;

/// Runs a paged scan of `cf` on `conn`: each round trip fetches the next page after the last
/// key seen, until the range ends or `visit` stops.
pub(super) fn scan_on(
    conn: &mut PgConn,
    cf: Cf,
    (start, end): (&[u8], Option<&[u8]>),
    keys_only: bool,
    (visit, acted): (&mut Visitor<'_>, &mut bool),
) -> Result<()> {
    if is_empty_range(start, end) {
        return Ok(());
    }
    let s = &conn.statements;
    let statement = match (keys_only, end.is_some()) {
        (false, true) => &s.range[cf.index()],
        (false, false) => &s.from[cf.index()],
        (true, true) => &s.keys_range[cf.index()],
        (true, false) => &s.keys_from[cf.index()],
    };
    let max_page = if cf == Cf::Blobs && !keys_only {
        MAX_BLOB_PAGE
    } else {
        MAX_PAGE
    };
    let mut page = FIRST_PAGE.min(max_page);
    let mut from = start.to_vec();
    loop {
        let rows = match end {
            Some(end) => conn.client.query(statement, &[&from, &page, &end]),
            None => conn.client.query(statement, &[&from, &page]),
        }?;
        for row in &rows {
            let key: &[u8] = row.get(0);
            let value: &[u8] = if keys_only { &[] } else { row.get(1) };
            *acted = true;
            if !visit(key, value)? {
                return Ok(());
            }
        }
        if (rows.len() as i64) < page {
            return Ok(());
        }
        let last: &[u8] = rows.last().expect("a full page").get(0);
        from = [last, &[0u8][..]].concat();
        page = (page * 2).min(max_page);
    }
}

/// Runs a scan of several ranges of `cf` on `conn` in one round trip (no paging: callers
/// bound how many ranges, each a node's rows, they ask for at once).
pub(super) fn spans_on(
    conn: &mut PgConn,
    cf: Cf,
    spans: &[(Vec<u8>, Vec<u8>)],
    (visit, acted): (&mut SpansVisitor<'_>, &mut bool),
) -> Result<()> {
    if spans.is_empty() {
        return Ok(());
    }
    let lo: Vec<&[u8]> = spans.iter().map(|(lo, _)| lo.as_slice()).collect();
    let hi: Vec<&[u8]> = spans.iter().map(|(_, hi)| hi.as_slice()).collect();
    let rows = conn
        .client
        .query(&conn.statements.spans[cf.index()], &[&lo, &hi])?;
    // SQL promises no order without ORDER BY: put them in range, then key order (they
    // mostly come so already, which the sort finds in one pass).
    let mut entries: Vec<(i64, &[u8], &[u8])> = rows
        .iter()
        .map(|r| (r.get(0), r.get(1), r.get(2)))
        .collect();
    entries.sort_by(|a, b| (a.0, a.1).cmp(&(b.0, b.1)));
    for (i, k, v) in entries {
        *acted = true;
        visit((i - 1) as usize, k, v)?;
    }
    Ok(())
}

pub(super) fn get_on(conn: &mut PgConn, cf: Cf, key: &[u8]) -> Result<Option<Vec<u8>>> {
    let row = conn
        .client
        .query_opt(&conn.statements.get[cf.index()], &[&key])?;
    Ok(row.map(|r| r.get::<_, Vec<u8>>(0)))
}
