//! The filesystem core's error type and the one place every error becomes an errno: an
//! exhaustive `match` over it, over the metastore's errors and over the storage's (no catch-all
//! arm, so a new error variant does not compile until it has an errno). The table is in
//! `docs/SEMANTICS.md`.

use crate::meta::MetaError;
use crate::storage::{EngineErrorKind, StorageError};

/// Why a filesystem operation failed.
#[derive(Debug, thiserror::Error)]
pub enum FsError {
    /// The metastore refused or failed.
    #[error(transparent)]
    Meta(#[from] MetaError),
    /// No such entry.
    #[error("no such file or directory")]
    NotFound,
    /// The name exists already.
    #[error("file exists")]
    Exists,
    /// A name that is not valid at this level of the tree.
    #[error("invalid name: {0}")]
    InvalidName(String),
    /// An argument the operation does not take (rename flags, offsets, …).
    #[error("invalid argument: {0}")]
    InvalidArgument(&'static str),
    /// The node's permission bits do not allow the caller what it asked.
    #[error("permission denied")]
    AccessDenied,
    /// Nothing of this kind can be made or changed here.
    #[error("operation not permitted here")]
    NotPermitted,
    /// A directory where a file was expected.
    #[error("is a directory")]
    IsDir,
    /// A file where a directory was expected.
    #[error("not a directory")]
    NotDir,
    /// The mount is read-only.
    #[error("read-only filesystem")]
    ReadOnly,
    /// The extended attribute does not exist.
    #[error("no such attribute")]
    NoAttribute,
    /// The caller's buffer is too small for the answer.
    #[error("buffer too small")]
    Range,
    /// An extended attribute namespace other than `user.`.
    #[error("attribute namespace not supported")]
    NotSupported,
    /// A name over 255 bytes.
    #[error("name too long")]
    NameTooLong,
    /// An attribute value over 64 KiB.
    #[error("value too large")]
    TooBig,
    /// No room for what was asked (a node's list of attribute names at its 64 KiB limit).
    #[error("no space left: {0}")]
    NoSpace(&'static str),
    /// A file handle the kernel did not get from us, or a directory handle used as a file.
    #[error("bad file handle")]
    BadHandle,
    /// The staging file of a write failed.
    #[error(transparent)]
    Io(#[from] std::io::Error),
}

impl From<StorageError> for FsError {
    fn from(e: StorageError) -> Self {
        FsError::Meta(MetaError::Storage(e))
    }
}

/// Result of a filesystem operation.
pub type FsResult<T> = Result<T, FsError>;

impl FsError {
    /// Returns the errno the kernel is told.
    pub fn errno(&self) -> i32 {
        match self {
            FsError::Meta(e) => meta_errno(e),
            FsError::NotFound => libc::ENOENT,
            FsError::Exists => libc::EEXIST,
            FsError::InvalidName(_) | FsError::InvalidArgument(_) => libc::EINVAL,
            FsError::NotPermitted => libc::EPERM,
            FsError::AccessDenied => libc::EACCES,
            FsError::IsDir => libc::EISDIR,
            FsError::NotDir => libc::ENOTDIR,
            FsError::ReadOnly => libc::EROFS,
            FsError::NoAttribute => libc::ENODATA,
            FsError::Range => libc::ERANGE,
            FsError::NotSupported => libc::ENOTSUP,
            FsError::NameTooLong => libc::ENAMETOOLONG,
            FsError::TooBig => libc::E2BIG,
            FsError::NoSpace(_) => libc::ENOSPC,
            FsError::BadHandle => libc::EBADF,
            FsError::Io(e) => io_errno(e),
        }
    }
}

fn meta_errno(e: &MetaError) -> i32 {
    match e {
        MetaError::Storage(s) => storage_errno(s),
        MetaError::Io(io) | MetaError::File { error: io, .. } => io_errno(io),
        MetaError::NoSuchContent(_)
        | MetaError::NoSuchDataset(_)
        | MetaError::NoSuchPartition { .. }
        | MetaError::NoSuchJob { .. }
        | MetaError::NoSuchObject(_)
        | MetaError::NoSuchFolder(_)
        | MetaError::NoSuchMenu(_)
        | MetaError::NoSuchConfig(_)
        | MetaError::NoSuchSnapshot(_) => libc::ENOENT,
        MetaError::BadContentId(_) | MetaError::BadName { .. } | MetaError::BadSetting(_) => {
            libc::EINVAL
        }
        MetaError::PartitionExists { .. }
        | MetaError::JobExists { .. }
        | MetaError::ObjectExists(_)
        | MetaError::DuplicateUuid(_)
        | MetaError::SnapshotExists(_) => libc::EEXIST,
        MetaError::NotEmpty(_) => libc::ENOTEMPTY,
        MetaError::FolderExists(_) => libc::EISDIR,
        MetaError::NotAFolder(_) => libc::ENOTDIR,
        MetaError::JobsExhausted(_) => libc::ENOSPC,
        MetaError::SystemProp(_) => libc::EPERM,
        MetaError::CrossDataset(_) => libc::EXDEV,
        MetaError::Corrupt(_) | MetaError::LeaseLost => libc::EIO,
        MetaError::Busy(_) => libc::EBUSY,
    }
}

fn storage_errno(e: &StorageError) -> i32 {
    match e {
        StorageError::BadProp { .. }
        | StorageError::BadIden { .. }
        | StorageError::BadBlobKey { .. }
        | StorageError::BadValu(_)
        | StorageError::NoSuchLift(_)
        | StorageError::BadUrl { .. } => libc::EINVAL,
        StorageError::NoSuchBlob(_)
        | StorageError::NoStore { .. }
        | StorageError::FutureTime { .. }
        | StorageError::BeforeHistory { .. }
        | StorageError::PastRetention { .. } => libc::ENOENT,
        StorageError::ReadOnly => libc::EROFS,
        StorageError::NotAStore { .. } => libc::ENOTDIR,
        StorageError::ContentOwned { .. } => libc::EPERM,
        StorageError::SweepRefused(inner) => storage_errno(inner),
        StorageError::Locked { .. }
        | StorageError::Conflict(_)
        | StorageError::Contended { .. } => libc::EBUSY,
        StorageError::NoSpace { .. }
        | StorageError::Engine {
            kind: EngineErrorKind::NoSpace,
            ..
        } => libc::ENOSPC,
        StorageError::FormatVersion { .. }
        | StorageError::Corruption(_)
        | StorageError::Engine { .. }
        | StorageError::Unreachable(_)
        | StorageError::S3Refused { .. }
        | StorageError::NoBucket { .. }
        | StorageError::InjectedFault(_) => libc::EIO,
        StorageError::Io(io) => io_errno(io),
    }
}

/// The OS error of `e` (ENOSPC, EDQUOT, …), or EIO when it has none.
fn io_errno(e: &std::io::Error) -> i32 {
    e.raw_os_error().unwrap_or(libc::EIO)
}
