//! The Cronus metastore over the row store: content-addressed object bytes (`content`), and the
//! typed errors of this layer. Knows the `Storage` traits, never an engine.

pub mod content;

use crate::storage::StorageError;

pub use content::{ContentId, ContentStore, GcReport, Manifest};

/// Error of a metastore operation.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum MetaError {
    /// The row store failed.
    #[error(transparent)]
    Storage(#[from] StorageError),
    /// Reading the bytes to store (or writing bytes read) failed.
    #[error("I/O error: {0}")]
    Io(#[from] std::io::Error),
    /// No content is stored under this id.
    #[error("no content {0}")]
    NoSuchContent(ContentId),
    /// Text that should be a content id is not 64 hex digits.
    #[error("invalid content id {0:?}: expected 64 hex digits")]
    BadContentId(String),
    /// Stored metadata or bytes that do not decode or do not match their hash.
    #[error("corrupt metastore: {0}")]
    Corrupt(String),
}

/// Result of a metastore operation.
pub type Result<T, E = MetaError> = std::result::Result<T, E>;
