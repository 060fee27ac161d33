//! Garbage collection of contents: the stored contents and chunks, read as sorted sets, are
//! merged with gc's mark sets (what keeps each content); manifests and chunks nothing keeps are
//! deleted. Every set is a [`SortedRuns`], so the memory stays near its budget whatever the
//! store holds.

use std::collections::HashSet;

use super::{
    CHUNK_PREFIX, CONTENT_PREFIX, ContentId, ContentStore, GcReport, chunk_key, delete_manifest,
    is_chunk_key,
};
use crate::meta::sorted_runs::{Membership, RUN_BYTES, SortedRuns, visit_into};
use crate::meta::{MetaError, Result};

/// Why gc keeps a content.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Keeper {
    /// A version, menu or configuration refers to it now.
    Live,
    /// Only versions of the history kept refer to it.
    History,
    /// Only snapshots older than the history kept show it.
    Snapshot,
}

/// The contents gc must keep, by why, gathered before the sweep: sorted sets of ids, each
/// within a memory budget.
pub struct Marks {
    live: SortedRuns<32>,
    history: SortedRuns<32>,
    snapshots: SortedRuns<32>,
    budget: usize,
}

impl Marks {
    /// Returns empty marks whose sets (and the sweep's) hold at most `budget` bytes each in
    /// memory ([`RUN_BYTES`] is the default); past it they spill sorted runs to disk.
    pub fn new(budget: usize) -> Self {
        Marks {
            live: SortedRuns::new(budget),
            history: SortedRuns::new(budget),
            snapshots: SortedRuns::new(budget),
            budget,
        }
    }

    /// Returns marks that keep exactly `live`, as [`Keeper::Live`].
    pub fn of_live(live: &HashSet<ContentId>) -> Result<Self> {
        let mut marks = Marks::new(RUN_BYTES);
        for id in live {
            marks.keep(Keeper::Live, *id)?;
        }
        Ok(marks)
    }

    /// Records that content `id` is kept, for `why`.
    pub fn keep(&mut self, why: Keeper, id: ContentId) -> Result<()> {
        let set = match why {
            Keeper::Live => &mut self.live,
            Keeper::History => &mut self.history,
            Keeper::Snapshot => &mut self.snapshots,
        };
        Ok(set.push(id.0)?)
    }
}

/// The marks, asked in ascending id order.
struct Keepers {
    live: Membership<32>,
    history: Membership<32>,
    snapshots: Membership<32>,
}

impl Keepers {
    fn of(marks: Marks) -> Result<Self> {
        Ok(Keepers {
            live: Membership::of(marks.live)?,
            history: Membership::of(marks.history)?,
            snapshots: Membership::of(marks.snapshots)?,
        })
    }

    /// Returns why `id` is kept, the first reason in [`Keeper`]'s order, if any.
    fn why(&mut self, id: &ContentId) -> Result<Option<Keeper>> {
        // Every set is asked each id: a membership walks forward only.
        let (live, history, snapshot) = (
            self.live.contains(&id.0)?,
            self.history.contains(&id.0)?,
            self.snapshots.contains(&id.0)?,
        );
        Ok(match (live, history, snapshot) {
            (true, _, _) => Some(Keeper::Live),
            (false, true, _) => Some(Keeper::History),
            (false, false, true) => Some(Keeper::Snapshot),
            (false, false, false) => None,
        })
    }
}

impl ContentStore<'_> {
    /// Returns the ids of every stored content as a sorted set, gathered by one paged scan of
    /// the manifests (never all held at once).
    pub fn sorted_ids(&self, budget: usize) -> Result<SortedRuns<32>> {
        let mut ids = SortedRuns::new(budget);
        visit_into(
            |visit| {
                self.store
                    .visit_blob_keys_with_prefix(CONTENT_PREFIX, visit)
            },
            |key: String| {
                let id: ContentId = key[CONTENT_PREFIX.len()..].parse()?;
                Ok(ids.push(id.0)?)
            },
        )?;
        Ok(ids)
    }

    /// Returns the hashes of every stored chunk as a sorted set (keys that do not name a
    /// chunk, deeper under `chunk/`, are left out).
    fn sorted_chunks(&self, budget: usize) -> Result<SortedRuns<32>> {
        let mut hashes = SortedRuns::new(budget);
        visit_into(
            |visit| self.chunks.visit_chunk_keys(CHUNK_PREFIX, visit),
            |key: String| {
                if !is_chunk_key(&key) {
                    return Ok(());
                }
                let hash = blake3::Hash::from_hex(&key[CHUNK_PREFIX.len()..])
                    .map_err(|_| MetaError::Corrupt(format!("chunk key {key}")))?;
                Ok(hashes.push(*hash.as_bytes())?)
            },
        )?;
        Ok(hashes)
    }

    /// Deletes every content not in `live`, then every chunk no remaining content uses and not
    /// in `pinned` (chunks of writes in progress); `progress(done, total)` counts the contents
    /// and chunks examined. First checks that the chunks are this store's alone
    /// ([`crate::storage::ChunkStore::check_sweep`]: an S3 location's owner marker), deleting
    /// nothing otherwise; only keys that name a chunk (`chunk/` and 64 hex digits) are ever
    /// deleted, never what lies deeper under `chunk/`.
    pub fn collect_garbage(
        &self,
        live: &HashSet<ContentId>,
        pinned: &HashSet<[u8; 32]>,
        progress: &mut dyn FnMut(u64, u64),
    ) -> Result<GcReport> {
        let delete = &mut |id| delete_manifest(self.store, id).map(|()| true);
        self.sweep(Marks::of_live(live)?, pinned, delete, progress)
    }

    /// [`ContentStore::collect_garbage`] by `marks`, where `delete` deletes each content no
    /// mark keeps (its manifest), or returns `false` to keep it (a content an open handle
    /// reads).
    pub fn sweep(
        &self,
        marks: Marks,
        pinned: &HashSet<[u8; 32]>,
        delete: &mut dyn FnMut(ContentId) -> Result<bool>,
        progress: &mut dyn FnMut(u64, u64),
    ) -> Result<GcReport> {
        self.chunks.check_sweep()?;
        let budget = marks.budget;
        let ids = self.sorted_ids(budget)?;
        let stored = self.sorted_chunks(budget)?;
        let total = ids.pushed() + stored.pushed();
        let mut used = SortedRuns::new(budget);
        for hash in pinned {
            used.push(*hash)?;
        }
        let mut report = GcReport::default();
        let mut keepers = Keepers::of(marks)?;
        let mut done = 0u64;
        for id in ids.into_sorted()? {
            let id = ContentId(id?);
            if self.keep_or_delete(id, &mut keepers, delete, &mut report)? {
                let manifest = self.manifest(id)?;
                for run in manifest.runs().iter().filter(|r| !r.is_hole()) {
                    used.push(run.hash)?;
                }
            }
            done += 1;
            progress(done, total);
        }
        let mut used = Membership::of(used)?;
        for hash in stored.into_sorted()? {
            let hash = hash?;
            if !used.contains(&hash)? {
                report.bytes += self.chunks.chunk_del(&chunk_key(&hash))?;
                report.chunks += 1;
            }
            done += 1;
            progress(done, total);
        }
        if report.chunks > 0 {
            // The space comes back now, while mounted, not at some later compaction.
            self.chunks.reclaim_chunk_space()?;
        }
        Ok(report)
    }

    /// Keeps content `id` (returns true) if a mark keeps it or `delete` refuses, counting
    /// why in `report`; otherwise it is deleted.
    fn keep_or_delete(
        &self,
        id: ContentId,
        keepers: &mut Keepers,
        delete: &mut dyn FnMut(ContentId) -> Result<bool>,
        report: &mut GcReport,
    ) -> Result<bool> {
        let counter = match keepers.why(&id)? {
            Some(Keeper::Live) => return Ok(true),
            Some(Keeper::History) => &mut report.history,
            Some(Keeper::Snapshot) => &mut report.snapshots,
            None if !delete(id)? => &mut report.held,
            None => {
                report.contents += 1;
                return Ok(false);
            }
        };
        *counter += 1;
        Ok(true)
    }
}
