//! Listing a directory's nodes: the objects and folders directly in a job directory or a
//! folder (one lift of `cronus:dir`), and the rows of many nodes at once, folded into entries
//! as they are read, in batches and on several threads for a big directory.

use super::{Metastore, ObjectPath, dir_key, prop};
use crate::meta::{MetaError, Result};
use crate::storage::{Iden, PropQuery, Storage, Valu, ValuRef};

/// What [`Metastore::map_dir_nodes`] does with each node of a directory: `take` folds each
/// of its rows into an accumulator that starts as `A::default()`, then `finish` makes the
/// node's entry of it (`None` leaves the node out).
pub struct DirNodeFold<'f, A, T> {
    /// Folds one row (prop, value, time) into the node's accumulator.
    pub take: &'f (dyn Fn(&mut A, &str, ValuRef<'_>, i64) + Sync),
    /// Makes the node's entry of its accumulator.
    pub finish: &'f (dyn Fn(A) -> Result<Option<T>> + Sync),
}

/// Where the next page of a directory listed a page at a time starts: after the lift's row
/// of node `iden` at `time`, the last of the page before.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ListingCursor {
    time: i64,
    iden: Iden,
}

/// How many nodes of a directory are read at once (one round trip on a shared store).
const LISTING_BATCH: usize = 256;

/// How many threads read a big directory's batches of nodes at once.
const LISTING_THREADS: usize = 4;

impl<S: Storage> Metastore<S> {
    /// Returns the entry `fold` makes of every object and folder directly in directory `at` (a
    /// job directory when `at.name` is empty, else the folder `at.name`), dropping `None`s:
    /// one lift of `cronus:dir`, then [`Metastore::map_nodes`].
    pub fn map_dir_nodes<A: Default, T: Send>(
        &self,
        at: &ObjectPath,
        fold: &DirNodeFold<'_, A, T>,
    ) -> Result<Vec<T>> {
        Ok(self.map_dir_nodes_page(at, None, usize::MAX, fold)?.0)
    }

    /// [`Metastore::map_dir_nodes`] a page at a time: the entries of at most `limit` members
    /// of directory `at`, in lift order, after the page that ended at `after` (from the
    /// first without); and where the next page starts (`None` after the last). A member
    /// added or removed meanwhile may be listed or not; none is listed twice.
    pub fn map_dir_nodes_page<A: Default, T: Send>(
        &self,
        at: &ObjectPath,
        after: Option<&ListingCursor>,
        limit: usize,
        fold: &DirNodeFold<'_, A, T>,
    ) -> Result<(Vec<T>, Option<ListingCursor>)> {
        let dir = Valu::from(match at.name.as_str() {
            "" => dir_key(at.dataset, &at.partition, at.job),
            _ => at.key(),
        });
        // One member more than the page: whether another page follows is known now.
        let mut lift = PropQuery::new(prop::DIR)
            .valu(&dir)
            .limit(limit.saturating_add(1));
        if let Some(c) = after {
            lift = lift.after(c.time, &c.iden);
        }
        let mut members = self.store.rows_by_prop(&lift)?;
        let more = members.len() > limit;
        members.truncate(limit);
        let next = match members.last() {
            Some(last) if more => Some(ListingCursor {
                time: last.time,
                iden: last.iden.clone(),
            }),
            _ => None,
        };
        let entries = self.map_nodes(members.into_iter().map(|r| r.iden).collect(), fold)?;
        Ok((entries, next))
    }

    /// Returns the entry `fold` makes of each node of `idens`, dropping `None`s, in iden
    /// order: the nodes' rows 256 nodes at a time
    /// ([`crate::storage::RowRead::visit_rows_by_idens`]: nothing is kept but what `fold`
    /// keeps), on up to four threads for more than one batch.
    pub fn map_nodes<A: Default, T: Send>(
        &self,
        mut members: Vec<Iden>,
        fold: &DirNodeFold<'_, A, T>,
    ) -> Result<Vec<T>> {
        // In iden order the nodes' rows are read front to back: neighbours share blocks, and
        // each block is read and decompressed once (in lift order, by time, every node's
        // rows were a block cache miss once the directory outgrew the cache).
        members.sort_unstable();
        let run = |part: &[Iden]| -> Result<Vec<T>> {
            let mut out = Vec::with_capacity(part.len());
            for idens in part.chunks(LISTING_BATCH) {
                let mut seen: Vec<A> = idens.iter().map(|_| A::default()).collect();
                (self.store).visit_rows_by_idens(idens, &mut |i, p, v, t| {
                    (fold.take)(&mut seen[i], p, v, t)
                })?;
                for node in seen {
                    out.extend((fold.finish)(node)?);
                }
            }
            Ok(out)
        };
        // Batches on up to LISTING_THREADS threads (a shared store: as many connections, so the
        // server works on several at once), each thread a contiguous run of batches.
        let batches = members.len().div_ceil(LISTING_BATCH);
        let threads = batches.clamp(1, LISTING_THREADS);
        if threads == 1 {
            return run(&members);
        }
        let part = batches.div_ceil(threads) * LISTING_BATCH;
        let parts: Vec<Result<Vec<T>>> = std::thread::scope(|s| {
            let mut rest = members.chunks(part);
            let first = rest.next().unwrap_or_default();
            let others: Vec<_> = rest.map(|p| s.spawn(move || run(p))).collect();
            let mut done = vec![run(first)];
            for other in others {
                done.push(other.join().unwrap_or_else(|_| {
                    Err(MetaError::Corrupt("a listing thread panicked".into()))
                }));
            }
            done
        });
        let mut out = Vec::with_capacity(members.len());
        for part in parts {
            out.extend(part?);
        }
        Ok(out)
    }
}
