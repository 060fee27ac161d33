//! `FaultyEngine<E>`: a wrapper engine that fails its Nth operation with an injected error,
//! or its next commits with conflicts, for tests that prove no partial write is ever visible
//! and that contended changes are retried.

use std::sync::atomic::{AtomicU64, Ordering};

use super::engine::{
    Cf, Engine, EngineRead, EngineTxn, SpansVisitor, Visitor, WriteBatch, forward_engine_read,
};
use super::{Result, StorageError};

/// An engine that counts every call (get, scan, begin, commit, write, sync…), its
/// transactions' included, and fails the ones chosen.
#[derive(Debug)]
pub struct FaultyEngine<E: Engine> {
    inner: E,
    ops: AtomicU64,
    fail_from: AtomicU64,
    fail_until: AtomicU64,
    conflicts_left: AtomicU64,
    open_txns: AtomicU64,
    most_open_txns: AtomicU64,
}

impl<E: Engine> FaultyEngine<E> {
    /// Wraps `inner`, failing nothing.
    pub fn new(inner: E) -> Self {
        FaultyEngine {
            inner,
            ops: AtomicU64::new(0),
            fail_from: AtomicU64::new(u64::MAX),
            fail_until: AtomicU64::new(u64::MAX),
            conflicts_left: AtomicU64::new(0),
            open_txns: AtomicU64::new(0),
            most_open_txns: AtomicU64::new(0),
        }
    }

    /// Returns the most transactions that were open at once so far.
    pub fn most_open_txns(&self) -> u64 {
        self.most_open_txns.load(Ordering::SeqCst)
    }

    /// Makes the next `n` transaction commits fail with [`StorageError::Conflict`], as
    /// commits of other hosts to a shared store would (the transaction applies nothing).
    pub fn conflict_commits(&self, n: u64) {
        self.conflicts_left.store(n, Ordering::SeqCst);
    }

    /// Returns whether a commit is to fail with a conflict (counting it down).
    fn conflicts(&self) -> bool {
        (self.conflicts_left)
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
            .is_ok()
    }

    /// Makes operation number `n` (counted from 0 since the wrapper was made) fail, and only it.
    pub fn fail_op(&self, n: u64) {
        self.fail_from.store(n, Ordering::SeqCst);
        self.fail_until.store(n + 1, Ordering::SeqCst);
    }

    /// Makes every operation from number `n` on fail (a dead disk).
    pub fn fail_from(&self, n: u64) {
        self.fail_from.store(n, Ordering::SeqCst);
        self.fail_until.store(u64::MAX, Ordering::SeqCst);
    }

    /// Stops injecting failures.
    pub fn heal(&self) {
        self.fail_from.store(u64::MAX, Ordering::SeqCst);
    }

    /// Returns how many operations were attempted so far.
    pub fn ops(&self) -> u64 {
        self.ops.load(Ordering::SeqCst)
    }

    /// Returns the wrapped engine.
    pub fn inner(&self) -> &E {
        &self.inner
    }

    fn tick(&self) -> Result<()> {
        let n = self.ops.fetch_add(1, Ordering::SeqCst);
        let from = self.fail_from.load(Ordering::SeqCst);
        let until = self.fail_until.load(Ordering::SeqCst);
        if (from..until).contains(&n) {
            Err(StorageError::InjectedFault(n))
        } else {
            Ok(())
        }
    }
}

impl<E: Engine> EngineRead for FaultyEngine<E> {
    forward_engine_read!(self => self.inner, before: self.tick()?);
}

impl<E: Engine> Engine for FaultyEngine<E> {
    type Txn<'e>
        = FaultyTxn<'e, E>
    where
        E: 'e;

    type Snapshot<'e>
        = FaultyRead<'e, E::Snapshot<'e>, E>
    where
        E: 'e;

    fn snapshot(&self) -> Result<Self::Snapshot<'_>> {
        self.tick()?;
        Ok(FaultyRead {
            faulty: self,
            inner: self.inner.snapshot()?,
        })
    }

    fn begin(&self) -> Result<Self::Txn<'_>> {
        self.tick()?;
        let open = OpenTxn::new(self);
        Ok(FaultyTxn {
            faulty: self,
            inner: self.inner.begin()?,
            _open: open,
        })
    }

    fn write(&self, batch: WriteBatch) -> Result<()> {
        self.tick()?;
        self.inner.write(batch)
    }

    fn sync(&self) -> Result<()> {
        self.tick()?;
        self.inner.sync()
    }

    fn write_unlogged(&self, batch: WriteBatch) -> Result<()> {
        self.tick()?;
        self.inner.write_unlogged(batch)
    }

    fn flush(&self, cf: Cf) -> Result<()> {
        self.tick()?;
        self.inner.flush(cf)
    }

    fn reclaim(&self, cf: Cf) -> Result<()> {
        self.tick()?;
        self.inner.reclaim(cf)
    }

    fn wait_for_change(
        &self,
        timeout: std::time::Duration,
    ) -> Result<super::engine::ChangesElsewhere> {
        self.inner.wait_for_change(timeout)
    }

    fn server_time(&self) -> Result<i64> {
        self.inner.server_time()
    }

    fn is_shared(&self) -> bool {
        self.inner.is_shared()
    }

    fn settle(&self) -> Result<i64> {
        self.tick()?;
        self.inner.settle()
    }
}

/// A snapshot of a [`FaultyEngine`]: its reads count as operations.
pub struct FaultyRead<'e, R, E: Engine + 'e> {
    faulty: &'e FaultyEngine<E>,
    inner: R,
}

impl<R: EngineRead, E: Engine> EngineRead for FaultyRead<'_, R, E> {
    forward_engine_read!(self => self.inner, before: self.faulty.tick()?);
}

/// A transaction of a [`FaultyEngine`]: its reads and its commit count as operations.
pub struct FaultyTxn<'e, E: Engine + 'e> {
    faulty: &'e FaultyEngine<E>,
    inner: E::Txn<'e>,
    _open: OpenTxn<'e>,
}

/// Counts a transaction as open from its begin until it is committed or dropped.
struct OpenTxn<'e> {
    open: &'e AtomicU64,
}

impl<'e> OpenTxn<'e> {
    fn new<E: Engine>(faulty: &'e FaultyEngine<E>) -> Self {
        let now = faulty.open_txns.fetch_add(1, Ordering::SeqCst) + 1;
        faulty.most_open_txns.fetch_max(now, Ordering::SeqCst);
        OpenTxn {
            open: &faulty.open_txns,
        }
    }
}

impl Drop for OpenTxn<'_> {
    fn drop(&mut self) {
        self.open.fetch_sub(1, Ordering::SeqCst);
    }
}

impl<E: Engine> EngineRead for FaultyTxn<'_, E> {
    forward_engine_read!(self => self.inner, before: self.faulty.tick()?);
}

impl<E: Engine> EngineTxn for FaultyTxn<'_, E> {
    fn commit(self, batch: WriteBatch) -> Result<()> {
        self.faulty.tick()?;
        if self.faulty.conflicts() {
            // Dropped uncommitted: the inner transaction ends with no effect.
            return Err(StorageError::Conflict("injected".into()));
        }
        self.inner.commit(batch)
    }
}
