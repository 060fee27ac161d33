//! Garbage collection of the catalogue's bytes: deleting every content no current version,
//! menu or configuration refers to, and every chunk no remaining content uses, past the gc
//! gate (writes in flight, here and in other processes) and the read holds of open handles.

use std::collections::HashSet;

use super::{Metastore, prop};
use crate::meta::Result;
use crate::meta::content::GcReport;
use crate::storage::{PropQuery, Storage};

impl<S: Storage> Metastore<S> {
    /// Deletes every content that no current object version, menu or configuration refers to,
    /// and every chunk no remaining content uses.
    pub fn gc(&self) -> Result<GcReport> {
        self.gc_with_progress(&mut |_, _| {})
    }

    /// [`Metastore::gc`], calling `progress(done, total)` as contents and chunks are examined.
    pub fn gc_with_progress(&self, progress: &mut dyn FnMut(u64, u64)) -> Result<GcReport> {
        let _exclusive = self.gc_gate.lock_out_writes();
        let _sweep = self.leases().begin_sweep()?;
        let rows = self.store.rows_by_prop(&PropQuery::new(prop::CONTENT))?;
        let live = rows
            .iter()
            .map(|r| r.valu.to_string().parse())
            .collect::<Result<HashSet<_>>>()?;
        let pinned = self.gc_gate.pinned();
        let read_holds = self.read_holds();
        let delete = &mut |id| read_holds.delete_unless_held(id);
        (self.content()).collect_garbage_with(&live, &pinned, delete, progress)
    }
}
