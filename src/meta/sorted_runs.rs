//! Sets of fixed-size records too many to hold (content ids, chunk hashes of a store of
//! millions): kept in sorted runs, spilled to unnamed temporary files past a byte budget, and
//! read back merged, in order and without repeats. They are gc's and fsck's mark sets: the
//! memory of either stays near its budget whatever the store holds.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::fs::File;
use std::io::{self, BufReader, BufWriter, Read, Seek, SeekFrom, Write};

use crate::meta::Result;
use crate::storage::Result as StorageResult;

/// The memory one set holds before it spills a run to disk: 16 MiB (half a million ids).
pub const RUN_BYTES: usize = 16 << 20;

/// The read buffer of each spilled run while the runs are merged.
const READ_BUFFER: usize = 64 << 10;

/// A set of `N`-byte records being gathered: records in memory up to a budget, then sorted
/// runs on disk.
pub struct SortedRuns<const N: usize> {
    buffer: Vec<[u8; N]>,
    per_run: usize,
    /// Each spilled run and how many records it holds.
    runs: Vec<(File, u64)>,
    pushed: u64,
}

impl<const N: usize> SortedRuns<N> {
    /// Returns an empty set that holds at most `budget` bytes of records in memory.
    pub fn new(budget: usize) -> Self {
        SortedRuns {
            buffer: Vec::new(),
            per_run: (budget / N).max(1),
            runs: Vec::new(),
            pushed: 0,
        }
    }

    /// Adds `record` (again, if it is there already); may write a run to disk.
    pub fn push(&mut self, record: [u8; N]) -> io::Result<()> {
        self.buffer.push(record);
        self.pushed += 1;
        if self.buffer.len() >= self.per_run {
            self.spill()?;
        }
        Ok(())
    }

    /// How many records were pushed, repeats included.
    pub fn pushed(&self) -> u64 {
        self.pushed
    }

    /// How many runs were written to disk so far.
    pub fn spilled_runs(&self) -> usize {
        self.runs.len()
    }

    fn spill(&mut self) -> io::Result<()> {
        self.buffer.sort_unstable();
        self.buffer.dedup();
        let mut file = tempfile::tempfile()?;
        let mut out = BufWriter::with_capacity(READ_BUFFER, &mut file);
        for record in &self.buffer {
            out.write_all(record)?;
        }
        out.flush()?;
        drop(out);
        file.seek(SeekFrom::Start(0))?;
        self.runs.push((file, self.buffer.len() as u64));
        self.buffer.clear();
        Ok(())
    }

    /// Returns the records in ascending byte order, each once.
    pub fn into_sorted(mut self) -> io::Result<Sorted<N>> {
        self.buffer.sort_unstable();
        self.buffer.dedup();
        let mut sources: Vec<Source<N>> = (self.runs.into_iter())
            .map(|(f, left)| Source::Run(BufReader::with_capacity(READ_BUFFER, f), left))
            .collect();
        sources.push(Source::Memory(self.buffer.into_iter()));
        let mut heads = BinaryHeap::with_capacity(sources.len());
        for (i, source) in sources.iter_mut().enumerate() {
            if let Some(record) = source.next()? {
                heads.push(Reverse((record, i)));
            }
        }
        Ok(Sorted {
            sources,
            heads,
            last: None,
        })
    }
}

/// Where merged records come from: a run on disk (with how many records are left in it) or
/// the records left in memory.
enum Source<const N: usize> {
    Run(BufReader<File>, u64),
    Memory(std::vec::IntoIter<[u8; N]>),
}

impl<const N: usize> Source<N> {
    /// The next record. A run that ends before the records written to it is an error, never
    /// a shorter set: gc deletes what its marks lack.
    fn next(&mut self) -> io::Result<Option<[u8; N]>> {
        match self {
            Source::Memory(records) => Ok(records.next()),
            Source::Run(_, 0) => Ok(None),
            Source::Run(reader, left) => {
                let mut record = [0u8; N];
                reader.read_exact(&mut record)?;
                *left -= 1;
                Ok(Some(record))
            }
        }
    }
}

/// The records of a [`SortedRuns`], merged: ascending, each once.
pub struct Sorted<const N: usize> {
    sources: Vec<Source<N>>,
    heads: BinaryHeap<Reverse<([u8; N], usize)>>,
    last: Option<[u8; N]>,
}

impl<const N: usize> Iterator for Sorted<N> {
    type Item = io::Result<[u8; N]>;

    fn next(&mut self) -> Option<Self::Item> {
        while let Some(Reverse((record, i))) = self.heads.pop() {
            match self.sources[i].next() {
                Ok(Some(next)) => self.heads.push(Reverse((next, i))),
                Ok(None) => {}
                Err(e) => return Some(Err(e)),
            }
            if self.last != Some(record) {
                self.last = Some(record);
                return Some(Ok(record));
            }
        }
        None
    }
}

/// Asks whether records are in a sorted set, for records asked in ascending order: one walk
/// of the set, whatever its size.
pub struct Membership<const N: usize> {
    sorted: Sorted<N>,
    head: Option<[u8; N]>,
}

impl<const N: usize> Membership<N> {
    /// Returns the membership test of `set`'s records.
    pub fn of(set: SortedRuns<N>) -> io::Result<Self> {
        let mut sorted = set.into_sorted()?;
        let head = sorted.next().transpose()?;
        Ok(Membership { sorted, head })
    }

    /// Returns whether `record` is in the set. Each record asked must not be below the one
    /// asked before (a lower one may be answered `false` though present).
    pub fn contains(&mut self, record: &[u8; N]) -> io::Result<bool> {
        while let Some(head) = self.head {
            if head >= *record {
                return Ok(head == *record);
            }
            self.head = self.sorted.next().transpose()?;
        }
        Ok(false)
    }
}

/// Runs `visit_all` (a store's visit of a whole index) with `each` as its visitor. The first
/// error of `each` (a bad entry, a full disk) stops the visit and is returned.
pub fn visit_into<T>(
    visit_all: impl FnOnce(&mut dyn FnMut(T) -> StorageResult<bool>) -> StorageResult<()>,
    mut each: impl FnMut(T) -> Result<()>,
) -> Result<()> {
    let mut failed = None;
    visit_all(&mut |item| match each(item) {
        Ok(()) => Ok(true),
        Err(e) => {
            failed = Some(e);
            Ok(false)
        }
    })?;
    failed.map_or(Ok(()), Err)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeSet;

    fn record(n: u32) -> [u8; 4] {
        n.wrapping_mul(2_654_435_761).to_be_bytes()
    }

    #[test]
    fn records_come_back_sorted_and_once_whatever_was_spilled() {
        for budget in [4, 12, 40, 4_000, RUN_BYTES] {
            let mut set = SortedRuns::<4>::new(budget);
            let mut model = BTreeSet::new();
            for n in 0..1_000u32 {
                // Repeats within a run and across runs.
                let r = record(n % 700);
                set.push(r).unwrap();
                model.insert(r);
            }
            assert_eq!(set.pushed(), 1_000);
            let spilled = set.spilled_runs();
            let back: Vec<[u8; 4]> = set.into_sorted().unwrap().map(Result::unwrap).collect();
            assert_eq!(
                back,
                model.into_iter().collect::<Vec<_>>(),
                "budget {budget}"
            );
            assert!(
                budget >= 4_000 || spilled > 10,
                "budget {budget}: {spilled} runs"
            );
        }
    }

    #[test]
    fn membership_answers_ascending_questions_for_present_and_absent_records() {
        let mut set = SortedRuns::<4>::new(8);
        let present: BTreeSet<[u8; 4]> = (0..300).map(|n| record(n * 3)).collect();
        for r in &present {
            set.push(*r).unwrap();
        }
        let mut members = Membership::of(set).unwrap();
        let mut asked: Vec<[u8; 4]> = (0..900).map(record).collect();
        asked.sort();
        for r in asked {
            assert_eq!(members.contains(&r).unwrap(), present.contains(&r), "{r:?}");
        }
        assert!(!members.contains(&[0xff; 4]).unwrap());
    }

    #[test]
    fn a_run_cut_short_is_an_error_not_a_smaller_set() {
        let mut set = SortedRuns::<4>::new(8);
        for n in 0..10 {
            set.push(record(n)).unwrap();
        }
        let (file, _) = &set.runs[0];
        file.set_len(6).unwrap();
        let merged: Vec<io::Result<[u8; 4]>> = set.into_sorted().unwrap().collect();
        assert!(merged.iter().any(|r| r.is_err()), "{merged:?}");
    }

    #[test]
    fn an_empty_set_has_nothing() {
        let set = SortedRuns::<32>::new(RUN_BYTES);
        assert_eq!(set.into_sorted().unwrap().count(), 0);
        let mut members = Membership::of(SortedRuns::<32>::new(64)).unwrap();
        assert!(!members.contains(&[0; 32]).unwrap());
    }
}
