//! The row indexes checked against each other (`fsck`): by a sum of hashes over one scan of
//! each when they agree, entry by entry, a page at a time, to name what differs when not.

use super::RowView;
use crate::storage::engine::{Cf, EngineRead};
use crate::storage::{Result, Row, keys};

/// How many entries of an index `check_indexes` reads at once.
const CHECK_PAGE: usize = 10_000;

/// A page of an index as `check_indexes` reads it: its rows with their stored values, and the
/// key to go on after (`None` at the end, or when the scan stopped).
struct IndexPage {
    rows: Vec<(Row, Vec<u8>)>,
    resume: Option<Vec<u8>>,
}

impl<R: EngineRead> RowView<R> {
    /// Checks that every entry of each row index decodes and that its row is in the other two
    /// indexes with the same value; returns one line per problem. Each index is read a page
    /// of [`CHECK_PAGE`] entries at a time, so the memory does not grow with the store.
    pub fn check_indexes(&self) -> Result<Vec<String>> {
        if self.indexes_sum_alike()? {
            return Ok(Vec::new());
        }
        let mut problems = Vec::new();
        for cf in [Cf::ByIden, Cf::ByPropValu, Cf::ByPropTime] {
            let mut after: Option<Vec<u8>> = None;
            loop {
                let start = (after.as_deref())
                    .map(|a| [a, &[0u8][..]].concat())
                    .unwrap_or_default();
                let page = self.index_page(cf, &start, &mut problems);
                for (row, value) in &page.rows {
                    self.check_entries(cf, row, value, &mut problems);
                }
                match page.resume {
                    Some(last) => after = Some(last),
                    None => break,
                }
            }
        }
        Ok(problems)
    }

    /// Returns whether the three row indexes hold the same rows, by one scan of each (no
    /// point reads): each entry, decoded to its row, adds a 128-bit hash of the row and its
    /// value to its index's sum. Equal sums and counts mean equal rows (a damaged or missing
    /// entry changes its index's sum); anything else (a difference, an entry that does not
    /// decode, a scan that stops, rows changed meanwhile) is for the entry-by-entry check to
    /// name.
    fn indexes_sum_alike(&self) -> Result<bool> {
        let mut sums = Vec::with_capacity(3);
        for cf in [Cf::ByIden, Cf::ByPropValu, Cf::ByPropTime] {
            let (mut sum, mut count, mut sound) = (0u128, 0u64, true);
            let scanned = self.scan(cf, &[], None, &mut |k, v| {
                let Ok(row) = keys::decode_row(cf, k, v) else {
                    sound = false;
                    return Ok(false);
                };
                let mut hasher = blake3::Hasher::new();
                hasher.update(&keys::row_entries(&row).keys[0].1);
                hasher.update(v);
                let hash = hasher.finalize();
                sum = sum.wrapping_add(u128::from_le_bytes(
                    hash.as_bytes()[..16].try_into().expect("16 bytes"),
                ));
                count += 1;
                Ok(true)
            });
            if scanned.is_err() || !sound {
                return Ok(false);
            }
            sums.push((sum, count));
        }
        Ok(sums.windows(2).all(|w| w[0] == w[1]))
    }

    /// Reads up to [`CHECK_PAGE`] entries of index `cf` from key `start`, decoding them (what
    /// does not decode, or a scan that stops, goes to `problems`).
    fn index_page(&self, cf: Cf, start: &[u8], problems: &mut Vec<String>) -> IndexPage {
        let mut page = IndexPage {
            rows: Vec::new(),
            resume: None,
        };
        let (mut seen, mut last) = (0usize, None);
        let scanned = self.scan(cf, start, None, &mut |k, v| {
            match keys::decode_row(cf, k, v) {
                Ok(row) => page.rows.push((row, v.to_vec())),
                Err(e) => problems.push(format!("{}: undecodable entry: {e}", cf.name())),
            }
            seen += 1;
            last = Some(k.to_vec());
            Ok(seen < CHECK_PAGE)
        });
        match scanned {
            Err(e) => {
                let last = (page.rows.last()).map(|(r, _)| format!(" after row {r:?}"));
                problems.push(format!(
                    "{}: the scan stopped{}: {e}",
                    cf.name(),
                    last.unwrap_or_default()
                ));
            }
            Ok(()) if seen >= CHECK_PAGE => page.resume = last,
            Ok(()) => {}
        }
        page
    }

    /// Checks that `row`, read from index `cf` with `value`, is in the other two indexes.
    fn check_entries(&self, cf: Cf, row: &Row, value: &[u8], problems: &mut Vec<String>) {
        let e = keys::row_entries(row);
        for (other, key) in e.keys.iter().filter(|(c, _)| *c != cf) {
            match self.get(*other, key) {
                Ok(v) if v.as_deref() == Some(value) => {}
                // Changed since the scan (a store in use: every write is one batch of all
                // three entries), not damaged.
                Ok(_) if !self.still_there(cf, &e.keys, value) => {}
                Ok(_) => problems.push(format!(
                    "{}: row {row:?} is missing from {}",
                    cf.name(),
                    other.name()
                )),
                Err(e) => problems.push(format!(
                    "{}: row {row:?}: reading {}: {e}",
                    cf.name(),
                    other.name()
                )),
            }
        }
    }

    /// Returns whether the entry of `cf` among `entries` is still stored with `value`.
    fn still_there(&self, cf: Cf, entries: &[(Cf, Vec<u8>); 3], value: &[u8]) -> bool {
        let own = entries.iter().find(|(c, _)| *c == cf);
        own.is_some_and(|(_, key)| self.get(cf, key).is_ok_and(|v| v.as_deref() == Some(value)))
    }
}
