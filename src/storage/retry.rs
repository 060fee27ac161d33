//! Running a transaction again when it conflicted with another writer: bounded attempts with
//! randomised exponential backoff, then [`StorageError::Contended`].

use std::time::{Duration, Instant};

use super::{Result, Storage, StorageError, Transaction};
use crate::meters;

/// How many times a transaction runs, at most, before its caller gets
/// [`StorageError::Contended`]: the whole retry policy of the store, in one place.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Attempts(pub u32);

/// Any change: 50 attempts (JuiceFS's bound).
pub const CHANGE: Attempts = Attempts(50);

/// The commit of a new version, whose bytes are already stored (giving up would lose them to
/// the next gc and make the writer store them again): 200 attempts.
pub const VERSION_COMMIT: Attempts = Attempts(200);

/// How many times any change runs ([`CHANGE`]).
pub const MAX_ATTEMPTS: u32 = CHANGE.0;

/// An error that can say whether it is a transaction conflict, and stand for giving up.
pub trait ConflictError: Sized {
    /// Returns whether the failed attempt may succeed if run again (a conflict).
    fn is_conflict(&self) -> bool;
    /// Returns the error for a transaction that conflicted `attempts` times.
    fn contended(attempts: u32) -> Self;
    /// Returns whether this is that error: the transaction gave up.
    fn is_contended(&self) -> bool;
}

impl ConflictError for StorageError {
    fn is_conflict(&self) -> bool {
        matches!(self, StorageError::Conflict(_))
    }
    fn contended(attempts: u32) -> Self {
        StorageError::Contended { attempts }
    }
    fn is_contended(&self) -> bool {
        matches!(self, StorageError::Contended { .. })
    }
}

/// Runs `attempt` until it returns anything but a conflict, at most [`CHANGE`] times,
/// sleeping a random, growing pause (up to 64 ms) between attempts.
pub fn retry<T, E: ConflictError>(attempt: impl FnMut() -> Result<T, E>) -> Result<T, E> {
    retry_up_to(CHANGE, attempt)
}

/// [`retry`], at most `limit` times.
pub fn retry_up_to<T, E: ConflictError>(
    limit: Attempts,
    mut attempt: impl FnMut() -> Result<T, E>,
) -> Result<T, E> {
    let started = Instant::now();
    let mut pause_ceiling_us: u64 = 500;
    for _ in 1..limit.0 {
        match attempt() {
            Err(e) if e.is_conflict() => {
                meters::count(meters::TRANSACTION_CONFLICTS, 1);
                meters::count(meters::TRANSACTION_RETRIES, 1);
                std::thread::sleep(Duration::from_micros(jitter(pause_ceiling_us)));
                pause_ceiling_us = (pause_ceiling_us * 2).min(64_000);
            }
            done => return ended(started, done),
        }
    }
    let done = match attempt() {
        Err(e) if e.is_conflict() => {
            meters::count(meters::TRANSACTION_CONFLICTS, 1);
            Err(E::contended(limit.0))
        }
        done => done,
    };
    ended(started, done)
}

/// Records a transaction that began at `started` and ended with `done`.
fn ended<T, E: ConflictError>(started: Instant, done: Result<T, E>) -> Result<T, E> {
    let result = match &done {
        Ok(_) => "committed",
        Err(e) if e.is_contended() => "contended",
        Err(_) => "failed",
    };
    meters::count_result(meters::TRANSACTIONS, result);
    metrics::histogram!(meters::TRANSACTION_SECONDS).record(started.elapsed().as_secs_f64());
    done
}

/// Runs `change` in a transaction of `store` and commits it, all again from the start when
/// the transaction conflicted with another writer, at most [`CHANGE`] times (see [`retry`]).
/// `change` must have no effect outside the transaction, since it may run several times.
pub fn transact<S, T, E>(
    store: &S,
    change: impl FnMut(&dyn Transaction) -> Result<T, E>,
) -> Result<T, E>
where
    S: Storage + ?Sized,
    E: ConflictError + From<StorageError>,
{
    transact_up_to(CHANGE, store, change)
}

/// [`transact`], at most `limit` times.
pub fn transact_up_to<S, T, E>(
    limit: Attempts,
    store: &S,
    mut change: impl FnMut(&dyn Transaction) -> Result<T, E>,
) -> Result<T, E>
where
    S: Storage + ?Sized,
    E: ConflictError + From<StorageError>,
{
    retry_up_to(limit, || {
        let txn = store.begin()?;
        let out = change(&*txn)?;
        txn.commit()?;
        Ok(out)
    })
}

/// Returns a pseudo-random number of microseconds in `[ceiling / 2, ceiling)`, so writers that
/// conflicted together do not retry together.
fn jitter(ceiling: u64) -> u64 {
    use std::hash::{BuildHasher, RandomState};
    let noise = RandomState::new().hash_one(std::time::Instant::now());
    ceiling / 2 + noise % (ceiling / 2).max(1)
}
