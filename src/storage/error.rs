//! The row store's typed error: every way a storage call can fail, with the engine's error kind
//! kept rather than collapsed into I/O.

use std::path::PathBuf;

/// What kind of failure the storage engine reported (RocksDB's status codes, kept one to one so
/// callers can map them to the right errno).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EngineErrorKind {
    /// The engine could not find something it expected.
    NotFound,
    /// The engine's files are corrupt.
    Corruption,
    /// The operation is not supported by the engine.
    NotSupported,
    /// The engine rejected an argument.
    InvalidArgument,
    /// An I/O error in the engine.
    Io,
    /// The engine is busy (lock contention).
    Busy,
    /// The operation timed out.
    TimedOut,
    /// The operation was aborted.
    Aborted,
    /// A transient failure; the same call may succeed later.
    TryAgain,
    /// The engine is shutting down.
    ShutdownInProgress,
    /// The operation was incomplete.
    Incomplete,
    /// The disk (or quota) holding the engine's files is full.
    NoSpace,
    /// Any other engine failure.
    Other,
}

/// Error of a row-store operation.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StorageError {
    /// A prop is empty, too long, or otherwise not storable.
    #[error("invalid prop {prop:?}: {reason}")]
    BadProp {
        /// The prop as given (cut to 64 bytes).
        prop: String,
        /// Why it was refused.
        reason: &'static str,
    },
    /// An iden is empty or too long.
    #[error("invalid iden {iden:?}: {reason}")]
    BadIden {
        /// The iden as given (cut to 64 bytes).
        iden: String,
        /// Why it was refused.
        reason: &'static str,
    },
    /// A blob key is empty or too long.
    #[error("invalid blob key {key:?}: {reason}")]
    BadBlobKey {
        /// The key as given (cut to 64 bytes).
        key: String,
        /// Why it was refused.
        reason: &'static str,
    },
    /// A value does not fit the operation (wrong type, equal old and new value, …).
    #[error("invalid value: {0}")]
    BadValu(String),
    /// A lift name that is not one of the known lifts.
    #[error("no such lift {0:?} (known: eq, ge, le, gt, lt, range, in)")]
    NoSuchLift(String),
    /// A blob key that does not exist.
    #[error("no such blob key {0:?}")]
    NoSuchBlob(String),
    /// A store URL that does not parse or names what cronusfs cannot use.
    #[error("invalid store URL {url}: {reason}")]
    BadUrl {
        /// The URL as given, without its password.
        url: String,
        /// Why it was refused.
        reason: String,
    },
    /// The store directory does not hold a store.
    #[error("no store at {}: run `cronusfs init {}` first", path.display(), path.display())]
    NoStore {
        /// The directory that was opened.
        path: PathBuf,
    },
    /// The store path names something other than a directory (a plain file).
    #[error("{} is not a store: it is a file, and a store is a directory", path.display())]
    NotAStore {
        /// The path given.
        path: PathBuf,
    },
    /// Another process (or another handle in this one) has the store open.
    #[error("store {} is in use by another process", path.display())]
    Locked {
        /// The store directory.
        path: PathBuf,
    },
    /// The store was written by a format this build does not read.
    #[error(
        "store format version {found} is not supported (this build reads version {supported}){}",
        if *found < *supported { ": run `cronusfs upgrade STORE` once no daemon uses it" } else { "" }
    )]
    FormatVersion {
        /// The version found in the store.
        found: u32,
        /// The version this build reads and writes.
        supported: u32,
    },
    /// The store's filesystem has too little room left for a write: refused before the engine
    /// runs out in the middle of its own work.
    #[error(
        "no space left for the store in {}: {free} bytes free, {needed} needed",
        path.display()
    )]
    NoSpace {
        /// The store directory.
        path: PathBuf,
        /// Bytes free for the store's owner.
        free: u64,
        /// Bytes the write needs, with the room kept for the engine's flushes.
        needed: u64,
    },
    /// A read of the store at a time older than the history it keeps.
    #[error("{} is older than the history the store keeps (from {}): gc reclaimed it", crate::storage::history::show_micros(*at), crate::storage::history::show_micros(*floor))]
    PastRetention {
        /// The time asked for (µs since the epoch).
        at: i64,
        /// The oldest time kept (µs since the epoch).
        floor: i64,
    },

    /// A change to the store as it was at a past time: the past is read-only.
    #[error("the store as it was at a past time is read-only")]
    ReadOnly,

    /// A read of the store at a time its clock has not reached.
    #[error("{} is in the future (the store's clock reads {})", crate::storage::history::show_micros(*at), crate::storage::history::show_micros(*now))]
    FutureTime {
        /// The time asked for (µs since the epoch).
        at: i64,
        /// The store's clock (µs since the epoch).
        now: i64,
    },

    /// A read of the store at a time before its history began.
    #[error("{} is before the store's history began ({})", crate::storage::history::show_micros(*at), crate::storage::history::show_micros(*since))]
    BeforeHistory {
        /// The time asked for (µs since the epoch).
        at: i64,
        /// When history began (µs since the epoch).
        since: i64,
    },

    /// Stored bytes that do not decode: a bug or a damaged store.
    #[error("corrupt store: {0}")]
    Corruption(String),
    /// An operating-system I/O error outside the engine.
    #[error(transparent)]
    Io(#[from] std::io::Error),
    /// An error reported by the storage engine.
    #[error("storage engine error ({kind:?}): {message}")]
    Engine {
        /// The engine's error class.
        kind: EngineErrorKind,
        /// The engine's message.
        message: String,
    },
    /// Another writer changed what a transaction read before it committed (engines shared by
    /// several processes or hosts); nothing of the transaction was applied, and running it
    /// again is safe. The store's own callers retry it ([`crate::storage::retry`]).
    #[error("another writer changed what this transaction read: {0}")]
    Conflict(String),
    /// A transaction conflicted with other writers at every one of its attempts.
    #[error("gave up after {attempts} attempts: other writers kept changing what this change read")]
    Contended {
        /// How many times the transaction ran.
        attempts: u32,
    },
    /// The database server is unreachable or went away (a shared store).
    #[error("store server unreachable: {0}")]
    Unreachable(String),
    /// The S3 server refused the keys (a wrong secret, an unknown key id, no permission).
    #[error("S3 refused the keys for bucket {bucket} at {server} ({code})")]
    S3Refused {
        /// The bucket asked for.
        bucket: String,
        /// The S3 server (its endpoint).
        server: String,
        /// S3's error code (`SignatureDoesNotMatch`, `InvalidAccessKeyId`, …) or HTTP status.
        code: String,
    },
    /// The S3 server has no such bucket.
    #[error("no bucket {bucket} at {server}")]
    NoBucket {
        /// The bucket asked for.
        bucket: String,
        /// The S3 server (its endpoint).
        server: String,
    },
    /// A content location that belongs to another store, or is inside or around another
    /// store's (each store's owner marker in the bucket says whose it is).
    #[error(
        "content location {content} {clash} of {owner}: a content location belongs to one \
         store, and none may be inside another's"
    )]
    ContentOwned {
        /// This store's content location.
        content: String,
        /// How the two meet: `is the content location`, `is inside s3://…, the content
        /// location`, `holds s3://…, the content location`, …
        clash: String,
        /// The other store: `store URL (id ID)`, URL without password.
        owner: String,
    },
    /// `gc` did not sweep: its chunks were not found to be this store's alone.
    #[error("gc deleted nothing: {0}")]
    SweepRefused(Box<StorageError>),
    /// A failure injected by [`crate::storage::faulty::FaultyEngine`] (tests only).
    #[error("injected fault at engine operation {0}")]
    InjectedFault(u64),
}

/// Cuts `s` to at most 64 bytes (on a char boundary) for use in an error message.
pub(crate) fn clip(s: &str) -> String {
    let mut end = s.len().min(64);
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    s[..end].to_string()
}
