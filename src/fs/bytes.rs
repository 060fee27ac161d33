//! The bytes a read returns, shared with the chunk they come from when they can be.

use std::sync::Arc;

/// The bytes a read returns: a range of a chunk the handle keeps (not copied), or bytes of
/// their own (a read across chunks, or from a staging file).
#[derive(Clone, Debug)]
pub enum ReadBytes {
    /// Bytes of their own.
    Owned(Vec<u8>),
    /// A range of a shared chunk.
    Shared(Arc<Vec<u8>>, std::ops::Range<usize>),
}

impl std::ops::Deref for ReadBytes {
    type Target = [u8];

    fn deref(&self) -> &[u8] {
        match self {
            ReadBytes::Owned(bytes) => bytes,
            ReadBytes::Shared(chunk, range) => &chunk[range.clone()],
        }
    }
}
