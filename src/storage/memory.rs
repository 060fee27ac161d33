//! The in-memory engine: one `BTreeMap` per column family behind a lock. The reference engine
//! for tests and a store for throwaway data; it keeps nothing across processes.

use std::collections::BTreeMap;
use std::ops::Bound;
use std::sync::{Mutex, RwLock};

use super::Result;
use super::engine::{Cf, Engine, EngineRead, SerialTxn, Visitor, WriteBatch, is_empty_range};
use super::history::LocalClock;

type Tables = [BTreeMap<Vec<u8>, Vec<u8>>; Cf::ALL.len()];

/// An [`Engine`] held entirely in memory.
#[derive(Debug, Default)]
pub struct MemoryEngine {
    tables: RwLock<Tables>,
    writers: Mutex<()>,
    clock: LocalClock,
}

impl MemoryEngine {
    /// Returns an empty engine.
    pub fn new() -> Self {
        Self::default()
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, Tables> {
        // A panic while holding the lock cannot leave a table half-updated (writes apply to a
        // copy-free map one op at a time, and only after every op was built), so poisoning is
        // safe to ignore.
        self.tables.read().unwrap_or_else(|e| e.into_inner())
    }
}

impl EngineRead for MemoryEngine {
    fn get(&self, cf: Cf, key: &[u8]) -> Result<Option<Vec<u8>>> {
        get_in(&self.read(), cf, key)
    }

    fn scan(
        &self,
        cf: Cf,
        start: &[u8],
        end: Option<&[u8]>,
        visit: &mut Visitor<'_>,
    ) -> Result<()> {
        scan_in(&self.read(), cf, (start, end), visit)
    }
}

fn get_in(tables: &Tables, cf: Cf, key: &[u8]) -> Result<Option<Vec<u8>>> {
    Ok(tables[cf.index()].get(key).cloned())
}

fn scan_in(
    tables: &Tables,
    cf: Cf,
    (start, end): (&[u8], Option<&[u8]>),
    visit: &mut Visitor<'_>,
) -> Result<()> {
    if is_empty_range(start, end) {
        return Ok(());
    }
    let upper = end.map_or(Bound::Unbounded, Bound::Excluded);
    for (k, v) in tables[cf.index()].range::<[u8], _>((Bound::Included(start), upper)) {
        if !visit(k, v)? {
            break;
        }
    }
    Ok(())
}

/// A consistent read of a [`MemoryEngine`]: a copy of its tables (holding their lock instead
/// would deadlock a thread that writes while it keeps a view of the past open).
pub struct MemorySnapshot<'e> {
    tables: Box<Tables>,
    _engine: std::marker::PhantomData<&'e MemoryEngine>,
}

impl EngineRead for MemorySnapshot<'_> {
    fn get(&self, cf: Cf, key: &[u8]) -> Result<Option<Vec<u8>>> {
        get_in(&self.tables, cf, key)
    }

    fn scan(
        &self,
        cf: Cf,
        start: &[u8],
        end: Option<&[u8]>,
        visit: &mut Visitor<'_>,
    ) -> Result<()> {
        scan_in(&self.tables, cf, (start, end), visit)
    }
}

impl Engine for MemoryEngine {
    type Txn<'e> = SerialTxn<'e, Self>;
    type Snapshot<'e> = MemorySnapshot<'e>;

    fn snapshot(&self) -> Result<MemorySnapshot<'_>> {
        Ok(MemorySnapshot {
            tables: Box::new(self.read().clone()),
            _engine: std::marker::PhantomData,
        })
    }

    fn begin(&self) -> Result<Self::Txn<'_>> {
        Ok(SerialTxn::new(self, &self.writers, &self.clock))
    }

    fn settle(&self) -> Result<i64> {
        // Nothing outlives the process: nothing to keep.
        self.clock.settle(|_| Ok(()))
    }

    fn write(&self, batch: WriteBatch) -> Result<()> {
        let mut tables = self.tables.write().unwrap_or_else(|e| e.into_inner());
        for (cf, key, value) in batch.into_ops() {
            let table = &mut tables[cf.index()];
            match value {
                Some(v) => table.insert(key, v),
                None => table.remove(&key),
            };
        }
        Ok(())
    }

    fn sync(&self) -> Result<()> {
        Ok(())
    }
}

/// The row store held in memory.
pub type MemoryStore = super::RowStore<MemoryEngine>;

impl super::RowStore<MemoryEngine> {
    /// Returns an empty in-memory store.
    pub fn new() -> Self {
        super::RowStore::with_engine(MemoryEngine::new()).expect("a new memory engine is empty")
    }
}

impl Default for super::RowStore<MemoryEngine> {
    fn default() -> Self {
        Self::new()
    }
}
