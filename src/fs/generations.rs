//! `Generations`: counters that move when what the core keeps may have gone stale, one for
//! the whole store and one per dataset, so that another host's commit within one dataset
//! drops only what was read of that dataset (and of the views that span datasets).
//!
//! What a node's answers depend on is its [`Reach`]: a node inside a dataset's tree reads
//! that dataset only; the root, `/datasets`, the query views and the other views read across
//! datasets. The value a reach sees is the sum of the counters it depends on: every counter
//! only grows, so the sum moves whenever any of them does.

use std::collections::HashMap;
use std::sync::RwLock;
use std::sync::atomic::{AtomicU64, Ordering};

use crate::meta::DatasetId;

/// What the answers about a node depend on.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Reach {
    /// One dataset's rows only.
    Dataset(DatasetId),
    /// Rows of any dataset, or of none.
    Everywhere,
}

/// The counters.
#[derive(Default)]
pub struct Generations {
    /// Moves at every change that may touch anything.
    everything: AtomicU64,
    /// Moves with every dataset's counter (what a node that reads across datasets depends on).
    any_dataset: AtomicU64,
    datasets: RwLock<HashMap<DatasetId, u64>>,
}

impl Generations {
    /// Returns the value what `reach` depends on has now.
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
        everything.wrapping_add(mine)
    }

    /// Returns the counter of changes that may touch anything (it moves with them alone).
    pub fn everything(&self) -> u64 {
        self.everything.load(Ordering::SeqCst)
    }

    /// Says that anything may have changed.
    pub fn bump(&self) {
        self.everything.fetch_add(1, Ordering::SeqCst);
    }

    /// Says that something within dataset `ds` may have changed.
    pub fn bump_within(&self, ds: DatasetId) {
        let mut datasets = self.datasets.write().unwrap_or_else(|e| e.into_inner());
        *datasets.entry(ds).or_default() += 1;
        drop(datasets);
        self.any_dataset.fetch_add(1, Ordering::SeqCst);
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
        assert_eq!(g.everything(), 1);
    }
}
