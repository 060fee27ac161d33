//! `Generations`: counters that move when what the core keeps may have gone stale, one for
//! the whole store and one per dataset, so that another host's commit within one dataset
//! drops only what was read of that dataset (and of the views that span datasets).
//!
//! What a node's answers depend on is its [`Reach`]: a node inside a dataset's tree reads
//! that dataset only; the root, `/datasets`, the query views and the other views read across
//! datasets. The value a reach sees is the number of the last bump that touched it (bumps are
//! numbered by one sequence), so it moves whenever one does, and values taken for two reaches
//! are equal only if no bump touched either since. `InProgress` says which reaches a change
//! through the core is changing right now.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, RwLock};

use crate::meta::DatasetId;

/// What the answers about a node depend on.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Reach {
    /// One dataset's rows only.
    Dataset(DatasetId),
    /// Rows of any dataset, or of none.
    Everywhere,
}

/// The counters: each bump takes the next number of one sequence, and records it as the last
/// bump of everything, or of a dataset (and of any dataset).
#[derive(Default)]
pub struct Generations {
    sequence: AtomicU64,
    /// The last bump that may have touched anything.
    everything: AtomicU64,
    /// The last bump of any dataset (what a node that reads across datasets depends on).
    any_dataset: AtomicU64,
    /// The last bump of each dataset.
    datasets: RwLock<HashMap<DatasetId, u64>>,
}

impl Generations {
    /// Returns the value what `reach` depends on has now: the number of the last bump that
    /// touched it. Two values are equal only when no bump touched their reach in between,
    /// whatever reaches they were taken for (a node whose reach becomes known keeps what it
    /// kept).
    pub fn now(&self, reach: Reach) -> u64 {
        let everything = self.everything.load(Ordering::SeqCst);
        let mine = match reach {
            Reach::Everywhere => self.any_dataset.load(Ordering::SeqCst),
            Reach::Dataset(ds) => (self.datasets.read())
                .unwrap_or_else(|e| e.into_inner())
                .get(&ds)
                .copied()
                .unwrap_or(0),
        };
        everything.max(mine)
    }

    /// Says that anything may have changed.
    pub fn bump(&self) {
        let n = self.sequence.fetch_add(1, Ordering::SeqCst) + 1;
        self.everything.fetch_max(n, Ordering::SeqCst);
    }

    /// Says that something within dataset `ds` may have changed.
    pub fn bump_within(&self, ds: DatasetId) {
        let mut datasets = self.datasets.write().unwrap_or_else(|e| e.into_inner());
        let n = self.sequence.fetch_add(1, Ordering::SeqCst) + 1;
        datasets.insert(ds, n);
        drop(datasets);
        self.any_dataset.fetch_max(n, Ordering::SeqCst);
    }
}

/// The changes through the core in progress, by what they change.
#[derive(Default)]
pub struct InProgress(Mutex<HashMap<Reach, usize>>);

impl InProgress {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<Reach, usize>> {
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Says that a change of what `reach` covers began.
    pub fn begin(&self, reach: Reach) {
        *self.lock().entry(reach).or_default() += 1;
    }

    /// Says that a change [`InProgress::begin`] announced ended.
    pub fn end(&self, reach: Reach) {
        let mut changing = self.lock();
        if let Some(n) = changing.get_mut(&reach) {
            *n -= 1;
            if *n == 0 {
                changing.remove(&reach);
            }
        }
    }

    /// Returns whether a change that may touch what `reach` reads is in progress.
    pub fn touches(&self, reach: Reach) -> bool {
        let changing = self.lock();
        match reach {
            Reach::Everywhere => !changing.is_empty(),
            Reach::Dataset(_) => {
                changing.contains_key(&Reach::Everywhere) || changing.contains_key(&reach)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_dataset_moves_itself_and_what_spans_datasets_but_no_other_dataset() {
        let g = Generations::default();
        let (a, b) = (DatasetId::random(), DatasetId::random());
        let seen = |g: &Generations| {
            [Reach::Dataset(a), Reach::Dataset(b), Reach::Everywhere].map(|r| g.now(r))
        };
        let before = seen(&g);
        g.bump_within(a);
        let after = seen(&g);
        assert_ne!(after[0], before[0], "a moved");
        assert_eq!(after[1], before[1], "b kept");
        assert_ne!(after[2], before[2], "views across datasets moved");
        g.bump();
        let last = seen(&g);
        assert!((0..3).all(|i| last[i] != after[i]), "{last:?} {after:?}");
    }

    #[test]
    fn a_change_in_progress_touches_its_dataset_and_what_spans_datasets() {
        let changing = InProgress::default();
        let (a, b) = (
            Reach::Dataset(DatasetId::random()),
            Reach::Dataset(DatasetId::random()),
        );
        changing.begin(a);
        changing.begin(a);
        assert!(changing.touches(a) && changing.touches(Reach::Everywhere));
        assert!(!changing.touches(b));
        changing.end(a);
        assert!(changing.touches(a), "one of two still in progress");
        changing.end(a);
        assert!(!changing.touches(a) && !changing.touches(Reach::Everywhere));
        changing.begin(Reach::Everywhere);
        assert!(changing.touches(b));
    }

    #[test]
    fn values_of_two_reaches_are_equal_only_if_neither_moved_since() {
        let g = Generations::default();
        let (a, b) = (DatasetId::random(), DatasetId::random());
        g.bump();
        let across = g.now(Reach::Everywhere);
        // Nothing moved: a node whose reach became dataset a keeps its value.
        assert_eq!(g.now(Reach::Dataset(a)), across);
        g.bump_within(b);
        // b moved: what spans datasets did, a did not (and no value of a equals the new one).
        assert_ne!(g.now(Reach::Everywhere), across);
        assert_eq!(g.now(Reach::Dataset(a)), across);
        g.bump_within(a);
        let taken = g.now(Reach::Everywhere);
        assert_eq!(g.now(Reach::Dataset(a)), taken);
        g.bump_within(b);
        assert_ne!(g.now(Reach::Everywhere), taken);
        assert_eq!(g.now(Reach::Dataset(a)), taken, "b's bump leaves a");
    }
}
