//! The manifest of a content: its chunks as runs of equal chunks, so that a hole (a run of
//! all-zero chunks, never stored) costs one entry however long it is; its encoding (version 1,
//! one entry per chunk, for contents without runs; version 2, one entry per run); and the
//! content id of a content with holes.

use std::sync::OnceLock;

use super::{CHUNK_SIZE, ContentId};
use crate::meta::{MetaError, Result};

const VERSION_CHUNKS: u8 = 1;
const VERSION_RUNS: u8 = 2;
const HEADER: usize = 1 + 8 + 4;
const CHUNK_ENTRY: usize = 32 + 4;
const RUN_ENTRY: usize = 32 + 4 + 8;

/// Returns the hash of a whole chunk of zeros: such chunks are holes, never stored.
pub fn zero_chunk() -> &'static [u8; 32] {
    static ZERO: OnceLock<[u8; 32]> = OnceLock::new();
    ZERO.get_or_init(|| *blake3::hash(&vec![0u8; CHUNK_SIZE]).as_bytes())
}

/// `count` consecutive chunks of `len` bytes, each with hash `hash`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Run {
    /// The chunks' hash ([`zero_chunk`] for a hole).
    pub hash: [u8; 32],
    /// Each chunk's length.
    pub len: u32,
    /// How many chunks.
    pub count: u64,
}

impl Run {
    /// Returns whether the run is a hole (whole chunks of zeros, not stored).
    pub fn is_hole(&self) -> bool {
        self.len as usize == CHUNK_SIZE && self.hash == *zero_chunk()
    }
}

/// Appends `count` chunks (`hash`, `len`) to `runs`, extending the last run when equal.
pub fn push_run(runs: &mut Vec<Run>, hash: [u8; 32], len: u32, count: u64) {
    match runs.last_mut() {
        Some(last) if last.hash == hash && last.len == len => last.count += count,
        _ => runs.push(Run { hash, len, count }),
    }
}

/// The list of chunks of one content.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Manifest {
    /// The content's id.
    pub id: ContentId,
    /// Total size in bytes.
    pub size: u64,
    runs: Vec<Run>,
    /// The index of each run's first chunk.
    starts: Vec<u64>,
}

impl Manifest {
    /// Returns the manifest of a content of `size` bytes made of `runs` (merged where equal);
    /// the runs must add up to `size`, every chunk but the last `CHUNK_SIZE` long.
    pub fn new(id: ContentId, size: u64, runs: Vec<Run>) -> Self {
        let mut merged = Vec::with_capacity(runs.len());
        for r in runs {
            push_run(&mut merged, r.hash, r.len, r.count);
        }
        let mut starts = Vec::with_capacity(merged.len());
        let mut next = 0;
        for r in &merged {
            starts.push(next);
            next += r.count;
        }
        Manifest {
            id,
            size,
            runs: merged,
            starts,
        }
    }

    /// Returns the runs of chunks, in order.
    pub fn runs(&self) -> &[Run] {
        &self.runs
    }

    /// Returns how many chunks the content has (asked on every read: no walk over the runs).
    pub fn chunk_count(&self) -> u64 {
        match (self.starts.last(), self.runs.last()) {
            (Some(start), Some(run)) => start + run.count,
            _ => 0,
        }
    }

    /// Returns the run holding chunk `index`.
    pub fn run_of(&self, index: u64) -> Option<&Run> {
        let i = self
            .starts
            .partition_point(|s| *s <= index)
            .checked_sub(1)?;
        let run = &self.runs[i];
        (index < self.starts[i] + run.count).then_some(run)
    }

    /// Returns whether the content has a hole (and so a [`sparse_id`]).
    pub fn has_holes(&self) -> bool {
        self.runs.iter().any(Run::is_hole)
    }

    /// Returns the chunk holding byte `offset` and the offset inside it, or `None` past the end.
    pub fn locate(&self, offset: u64) -> Option<(u64, usize)> {
        if offset >= self.size {
            return None;
        }
        // Every chunk but the last is CHUNK_SIZE long (checked at decode), so this is direct.
        Some((
            offset / CHUNK_SIZE as u64,
            (offset % CHUNK_SIZE as u64) as usize,
        ))
    }

    /// Returns the stored form: one entry per chunk when no run repeats (what every earlier
    /// build reads), else one entry per run.
    pub fn encode(&self) -> Vec<u8> {
        let per_chunk = self.runs.iter().all(|r| r.count == 1);
        let entry = if per_chunk { CHUNK_ENTRY } else { RUN_ENTRY };
        let mut out = Vec::with_capacity(HEADER + self.runs.len() * entry);
        out.push(if per_chunk {
            VERSION_CHUNKS
        } else {
            VERSION_RUNS
        });
        out.extend_from_slice(&self.size.to_be_bytes());
        out.extend_from_slice(&(self.runs.len() as u32).to_be_bytes());
        for r in &self.runs {
            out.extend_from_slice(&r.hash);
            out.extend_from_slice(&r.len.to_be_bytes());
            if !per_chunk {
                out.extend_from_slice(&r.count.to_be_bytes());
            }
        }
        out
    }

    /// Reads the stored form of the manifest of `id`.
    pub fn decode(id: ContentId, bytes: &[u8]) -> Result<Self> {
        let bad = || MetaError::Corrupt(format!("manifest of {id} does not decode"));
        let (head, body) = bytes.split_at_checked(HEADER).ok_or_else(bad)?;
        let entry = match head[0] {
            VERSION_CHUNKS => CHUNK_ENTRY,
            VERSION_RUNS => RUN_ENTRY,
            _ => return Err(bad()),
        };
        let size = u64::from_be_bytes(head[1..9].try_into().map_err(|_| bad())?);
        let count = u32::from_be_bytes(head[9..13].try_into().map_err(|_| bad())?) as usize;
        if body.len() != count.checked_mul(entry).ok_or_else(bad)? {
            return Err(bad());
        }
        let runs: Vec<Run> = body
            .chunks_exact(entry)
            .map(|e| Run {
                hash: e[..32].try_into().expect("32 bytes"),
                len: u32::from_be_bytes(e[32..36].try_into().expect("4 bytes")),
                count: match entry {
                    RUN_ENTRY => u64::from_be_bytes(e[36..].try_into().expect("8 bytes")),
                    _ => 1,
                },
            })
            .collect();
        // Checked before the runs are merged: with every chunk at least a byte long and the
        // bytes adding up to `size`, no count can overflow afterwards.
        if !well_formed(size, &runs) {
            return Err(bad());
        }
        Ok(Manifest::new(id, size, runs))
    }
}

/// Checks that `runs` add up to `size` bytes, every chunk but the last whole and none empty.
fn well_formed(size: u64, runs: &[Run]) -> bool {
    let Some((last, init)) = runs.split_last() else {
        return size == 0;
    };
    let whole = |r: &Run| r.len as usize == CHUNK_SIZE;
    let total = runs.iter().try_fold(0u64, |sum, r| {
        u64::from(r.len)
            .checked_mul(r.count)
            .and_then(|n| sum.checked_add(n))
    });
    init.iter().all(whole)
        && (last.count <= 1 || whole(last))
        && runs.iter().all(|r| r.count > 0 && r.len > 0)
        && total == Some(size)
}

/// Returns the id of a content with holes: a hash of its size and runs, so that committing a
/// huge sparse file costs its written bytes, not its size (the BLAKE3 of all its bytes would
/// hash every zero). A function of the bytes alone: the same bytes always get the same id.
pub fn sparse_id(size: u64, runs: &[Run]) -> ContentId {
    let mut h = blake3::Hasher::new_derive_key("cronusfs 2026-12 sparse content id v1");
    h.update(&size.to_be_bytes());
    let mut merged = Vec::with_capacity(runs.len());
    for r in runs {
        push_run(&mut merged, r.hash, r.len, r.count);
    }
    for r in &merged {
        h.update(&r.hash);
        h.update(&r.len.to_be_bytes());
        h.update(&r.count.to_be_bytes());
    }
    ContentId(*h.finalize().as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id() -> ContentId {
        ContentId([7; 32])
    }

    #[test]
    fn runs_merge_locate_and_round_trip() {
        let chunk = CHUNK_SIZE as u32;
        let runs = vec![
            Run {
                hash: [1; 32],
                len: chunk,
                count: 1,
            },
            Run {
                hash: *zero_chunk(),
                len: chunk,
                count: 1 << 20,
            },
            Run {
                hash: *zero_chunk(),
                len: chunk,
                count: 3,
            },
            Run {
                hash: [2; 32],
                len: 10,
                count: 1,
            },
        ];
        let size = (1 + (1 << 20) + 3) * CHUNK_SIZE as u64 + 10;
        let m = Manifest::new(id(), size, runs);
        assert_eq!(m.runs().len(), 3, "equal neighbours merge");
        assert!(m.has_holes());
        assert_eq!(m.chunk_count(), (1 << 20) + 5);
        assert!(m.run_of(0).is_some_and(|r| r.hash == [1; 32]));
        assert!(m.run_of(12345).is_some_and(Run::is_hole));
        assert!(m.run_of(m.chunk_count() - 1).is_some_and(|r| r.len == 10));
        assert!(m.run_of(m.chunk_count()).is_none());
        let bytes = m.encode();
        assert_eq!(bytes[0], VERSION_RUNS);
        assert!(bytes.len() < 200, "a terabyte hole is one entry");
        assert_eq!(Manifest::decode(id(), &bytes).unwrap(), m);
    }

    /// Inputs AFL++ found (`fuzz/`, target `manifest`): counts whose sums overflowed while
    /// the runs were merged, before they were checked.
    #[test]
    fn crafted_counts_are_errors_not_overflows() {
        for hex in [
            "02000000007fff00050000000200000000000000000000001718191a1b1c1d1e1f000000050000000000000000000000807f00000000000102f70102031505060708090a0b0c0d0e0f101112130415167ffd191a1b1c1d1e1f00000005ff00000000000001",
            "02010101010131011a00000002000000000000000000000000000000000000000000000000000000000000000000100000ff010101010101010000000000000000000000000000000000000000000000000000000000000000001000000101090101010100",
            "020000000000300005000000020000000000000000000000000000000000000000000000000000000000000000001000002000000000000000000000000000000000000000000000000000000000000000000000000000000000fa0000fa00200000000001",
        ] {
            let bytes: Vec<u8> = (0..hex.len())
                .step_by(2)
                .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).unwrap())
                .collect();
            assert!(Manifest::decode(id(), &bytes).is_err(), "{hex}");
        }
    }

    #[test]
    fn contents_without_runs_keep_the_first_format() {
        let m = Manifest::new(
            id(),
            CHUNK_SIZE as u64 + 3,
            vec![
                Run {
                    hash: [1; 32],
                    len: CHUNK_SIZE as u32,
                    count: 1,
                },
                Run {
                    hash: [2; 32],
                    len: 3,
                    count: 1,
                },
            ],
        );
        let bytes = m.encode();
        assert_eq!(
            (bytes[0], bytes.len()),
            (VERSION_CHUNKS, HEADER + 2 * CHUNK_ENTRY)
        );
        assert_eq!(Manifest::decode(id(), &bytes).unwrap(), m);
        for bad in [&bytes[..5], &bytes[..bytes.len() - 1]] {
            assert!(Manifest::decode(id(), bad).is_err());
        }
    }
}
