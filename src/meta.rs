//! The Cronus metastore over the row store: the catalogue (`metastore`), content-addressed
//! object bytes (`content`), name rules and file-type sniffing, and the typed errors of this
//! layer. Knows the `Storage` traits, never an engine.

pub mod content;
pub mod cronus_io;
pub mod filetype;
pub mod heartbeat;
mod metastore;
pub mod name_rules;
pub mod query;
pub mod rowjson;
pub mod sorted_runs;
pub mod table_meta;

use crate::storage::StorageError;
use crate::storage::retry::ConflictError;

pub use content::{ChunkStream, ContentId, ContentStore, GcReport, Manifest, Marks};
pub use metastore::{
    Beat, DEFAULT_HISTORY_RETENTION, DEFAULT_SESSION_TTL, HISTORY_RETENTION_BLOB,
    MAX_HISTORY_RETENTION, MAX_SESSION_TTL, MIN_SESSION_TTL, SESSION_TTL_BLOB, SESSIONS_SCOPE,
    Saying, Session, Sessions,
};
pub use metastore::{
    ChangeKind, DatasetId, DirNodeFold, Entered, Entry, FolderTimes, HeldManifest, JobId, Leases,
    ListingCursor, LogEntry, MAX_TARGET_BYTES, Metastore, NodeChange, ObjectId, ObjectMeta,
    ObjectPath, Placed, ReadHolds, RestorePlace, RestoreReport, SetOrder, Snapshot, VersionDetails,
    entry_kind, history_version, prop,
};
pub use query::{Condition, Match, MatchRows, Term};

/// Error of a metastore operation.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum MetaError {
    /// The row store failed.
    #[error(transparent)]
    Storage(#[from] StorageError),
    /// Reading the bytes to store (or writing bytes read) failed.
    #[error(transparent)]
    Io(#[from] std::io::Error),
    /// Reading or writing a named file failed.
    #[error("{}: {error}", path.display())]
    File {
        /// The file.
        path: std::path::PathBuf,
        /// What went wrong.
        error: std::io::Error,
    },
    /// No content is stored under this id.
    #[error("no content {0}")]
    NoSuchContent(ContentId),
    /// Text that should be a content id is not 64 hex digits.
    #[error("invalid content id {0:?}: expected 64 hex digits")]
    BadContentId(String),
    /// No dataset has this uuid.
    #[error("no dataset {0}")]
    NoSuchDataset(String),
    /// The dataset has no partition with this key.
    #[error("dataset {dataset} has no partition {key:?}")]
    NoSuchPartition {
        /// The dataset.
        dataset: String,
        /// The partition key.
        key: String,
    },
    /// The dataset already has a partition with this key.
    #[error("dataset {dataset} already has a partition {key:?}")]
    PartitionExists {
        /// The dataset.
        dataset: String,
        /// The partition key.
        key: String,
    },
    /// The dataset has not opened this job.
    #[error("dataset {dataset} has no job {job}")]
    NoSuchJob {
        /// The dataset.
        dataset: String,
        /// The job number.
        job: u32,
    },
    /// No object at this path or with this uuid.
    #[error("no object {0}")]
    NoSuchObject(String),
    /// An import found an object already at this path.
    #[error("an object already exists at {0}")]
    ObjectExists(String),
    /// A put names a folder: an object cannot take a folder's name.
    #[error("{0} is a folder")]
    FolderExists(String),
    /// A folder was asked for where a symbolic link is.
    #[error("{0} is a symbolic link, not a folder")]
    NotAFolder(String),
    /// No menu registered with this uuid.
    #[error("no menu {0}")]
    NoSuchMenu(String),
    /// No configuration registered with this uuid.
    #[error("no configuration {0}")]
    NoSuchConfig(String),
    /// The dataset has opened this job already.
    #[error("dataset {dataset} already has a job {job}")]
    JobExists {
        /// The dataset.
        dataset: String,
        /// The job number.
        job: u32,
    },
    /// The dataset's job counter is at its end ([`JobId::MAX`] is open already).
    #[error("dataset {0} has no job numbers left (the last one, 2147483646, is open)")]
    JobsExhausted(String),
    /// A dataset, partition or job that still holds something cannot be removed.
    #[error("{0} is not empty")]
    NotEmpty(String),
    /// A row of the catalogue's own (`cronus:…`), which users cannot set or delete.
    #[error("{0} is a row of the catalogue and read-only")]
    SystemProp(String),
    /// Objects move only within their dataset.
    #[error("cannot move an object to another dataset ({0})")]
    CrossDataset(String),
    /// A path inside a job directory whose folder does not exist.
    #[error(
        "no folder {0}: a name with / is a path inside the job directory, whose folders are made first (mkdir in the mount)"
    )]
    NoSuchFolder(String),
    /// No snapshot of this name.
    #[error("no snapshot {0}")]
    NoSuchSnapshot(String),
    /// A snapshot of this name exists already.
    #[error("a snapshot {0} exists already")]
    SnapshotExists(String),
    /// Something with this uuid is registered already.
    #[error("uuid {0} is already registered")]
    DuplicateUuid(String),
    /// A name that cannot be used (empty, too long, with `/` or NUL, …).
    #[error("invalid {what} {name:?}: {reason}")]
    BadName {
        /// What the name is for ("partition key", "object name", …).
        what: &'static str,
        /// The name (cut to 64 characters).
        name: String,
        /// Why it was refused.
        reason: &'static str,
    },
    /// This process's write lease on a shared store expired (its session missed heartbeats
    /// for the store's time-to-live), so gc elsewhere may have reclaimed what it stored: the
    /// write was not committed.
    #[error(
        "this process's session on the store expired while it wrote (no heartbeat within the session time-to-live): the write was not committed"
    )]
    LeaseLost,
    /// A store setting outside what it may be (the session time-to-live).
    #[error("invalid setting: {0}")]
    BadSetting(String),
    /// Another process holds what this operation needs (a gc sweeping, writes in progress)
    /// for longer than it waits.
    #[error("store busy: {0}")]
    Busy(String),
    /// Stored metadata or bytes that do not decode or do not match their hash.
    #[error("corrupt metastore: {0}")]
    Corrupt(String),
}

impl MetaError {
    /// Returns the error of an I/O operation on file `path`.
    pub fn file(path: &std::path::Path, error: std::io::Error) -> Self {
        MetaError::File {
            path: path.to_path_buf(),
            error,
        }
    }
}

/// Result of a metastore operation.
pub type Result<T, E = MetaError> = std::result::Result<T, E>;

impl ConflictError for MetaError {
    fn is_conflict(&self) -> bool {
        matches!(self, MetaError::Storage(e) if e.is_conflict())
    }
    fn contended(attempts: u32) -> Self {
        MetaError::Storage(StorageError::contended(attempts))
    }
    fn is_contended(&self) -> bool {
        matches!(self, MetaError::Storage(e) if e.is_contended())
    }
}
