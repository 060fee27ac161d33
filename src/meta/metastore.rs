//! `Metastore<S>`: the Cronus catalogue over a row store. Menus, configurations, datasets,
//! partitions, jobs and objects are nodes (an iden with `cronus:*` rows, plus the Cronus
//! `CronusObject` message kept as blob `info/<uuid>`); object bytes are content-addressed.
//! Every call commits before it returns; there is no separate save step.
//!
//! This file owns the catalogue's vocabulary (props, ids, paths, what an object is) and the
//! `Metastore` itself: the store, where chunks live, and the parts with state of their own,
//! each in its own file with its own type. The catalogue's operations are split by what they
//! act on:
//!
//! - `tree.rs`: datasets, partitions and jobs;
//! - `folders.rs`: folders inside job directories; `links.rs`: symbolic links there; `dir_times.rs`: their times and job
//!   directories', moved by the changes of their entries;
//! - `objects.rs`: looking objects up, listing, deleting and renaming them;
//! - `versions.rs`: putting bytes (new objects and new versions), imports of objects;
//! - `messages.rs`: registered menus and configurations;
//! - `listing.rs`: a directory's nodes folded into entries; `find.rs`: queries by metadata;
//! - `node_rows.rs`: any node's rows by iden; `table_rows.rs`: Arrow and Parquet rows;
//! - `gc.rs`: garbage collection, past [`Leases`] (`leases.rs`: the gc gate, the write lease
//!   and sweep marks, with `../sessions.rs`: [`crate::meta::Sessions`]) and [`ReadHolds`]
//!   (`read_holds.rs`: contents open handles read).

mod cronus_stores;
mod dir_times;
mod entries;
mod find;
mod folders;
mod gc;
mod history;
mod leases;
mod links;
mod listing;
mod messages;
mod node_rows;
mod objects;
mod read_holds;
mod restore;
mod sessions;
mod snapshots;
mod table_rows;
mod tree;
mod versions;

pub use dir_times::FolderTimes;
pub use entries::{ENTRY_JOB, Entry, entry_kind};
pub use gc::{DEFAULT_HISTORY_RETENTION, HISTORY_RETENTION_BLOB, MAX_HISTORY_RETENTION};
pub use history::{ChangeKind, LogEntry, NodeChange};
pub use leases::Leases;
pub use links::{MAX_TARGET_BYTES, Placed};
pub use listing::{DirNodeFold, ListingCursor};
pub(crate) use messages::RegisteredMessage;
pub use read_holds::{HeldManifest, ReadHolds};
pub use restore::{RestorePlace, RestoreReport};
pub use sessions::{
    Beat, DEFAULT_SESSION_TTL, MAX_SESSION_TTL, MIN_SESSION_TTL, SESSION_TTL_BLOB, Saying, Session,
    Sessions,
};
pub use snapshots::Snapshot;
pub use versions::{Entered, SetOrder, VersionDetails, history_version};

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;
use std::sync::{Arc, Mutex};

use prost::Message;
use uuid::Uuid;

use super::content::{ContentId, ContentStore};
use super::table_meta::TableMeta;
use super::{MetaError, Result};
use crate::pb::store::{CronusObject, FileType};
use crate::storage::retry::transact;
use crate::storage::{ChunkStore, RecentChunkCache};
use crate::storage::{Iden, Row, RowRead, RowWrite, Storage, Valu};

/// The props of the catalogue's own rows (read-only to users).
pub mod prop {
    /// Node kind: `menu`, `config`, `dataset`, `partition`, `job` or `object`.
    pub const KIND: &str = "cronus:kind";
    /// The node's uuid (for partitions and jobs, their path-like iden).
    pub const UUID: &str = "cronus:uuid";
    /// The Cronus name (`<uuid>.dataset`, `<ds>.job_<n>.part_<key>.<uuid>.<ext>`, …).
    pub const NAME: &str = "cronus:name";
    /// Creation time, epoch ms.
    pub const CREATED: &str = "cronus:created";
    /// Last content change, epoch ms.
    pub const MODIFIED: &str = "cronus:modified";
    /// The dataset an object belongs to.
    pub const DATASET: &str = "cronus:dataset";
    /// The dataset a partition belongs to (lifted to list a dataset's partitions).
    pub const PARTITION_OF: &str = "cronus:partition_of";
    /// The dataset a job belongs to (lifted to list a dataset's jobs).
    pub const JOB_OF: &str = "cronus:job_of";
    /// A dataset's menu and configuration uuids.
    pub const MENU: &str = "cronus:menu";
    /// A dataset's configuration uuid.
    pub const CONFIG: &str = "cronus:config";
    /// A dataset's next job number.
    pub const JOB_IDX: &str = "cronus:job_idx";
    /// Partition key (of a partition or an object).
    pub const PARTITION: &str = "cronus:partition";
    /// Job number (of a job or an object).
    pub const JOB: &str = "cronus:job";
    /// An object's name in its job directory.
    pub const OBJECT: &str = "cronus:object";
    /// `<dataset>/<key>/<job>/<name>`: the object's path, for lookups.
    pub const PATH: &str = "cronus:path";
    /// `<dataset>/<key>/<job>`: the object's directory, for listings.
    pub const DIR: &str = "cronus:dir";
    /// Content id (64 hex) of the current version.
    pub const CONTENT: &str = "cronus:content";
    /// Size in bytes of the current version.
    pub const SIZE: &str = "cronus:size";
    /// Cronus `FileType` name of the current version (`ARROW`, `CSV`, …).
    pub const TYPE: &str = "cronus:type";
    /// Version number of the current content (1 for the first).
    pub const VERSION: &str = "cronus:version";
    /// One row per version ever committed: `<version>:<content id>`.
    pub const HISTORY: &str = "cronus:history";
    /// Permission bits set through the mount (`chmod`), when not the default.
    pub const MODE: &str = "cronus:mode";
    /// Owner set through the mount (`chown`), when not the mount's owner.
    pub const UID: &str = "cronus:uid";
    /// Group set through the mount (`chown`), when not the mount's group.
    pub const GID: &str = "cronus:gid";
    /// Modification time set through the mount (`touch -d`, `tar`, `rsync -t`), epoch ms; a
    /// new version clears it.
    pub const MTIME: &str = "cronus:mtime";
    /// A symbolic link's target, as given.
    pub const TARGET: &str = "cronus:target";
    /// Prefix of every Arrow row; a new version replaces all of them.
    pub const ARROW_PREFIX: &str = "cronus:arrow:";
    /// Arrow: number of columns.
    pub const ARROW_COLUMNS: &str = "cronus:arrow:num_columns";
    /// Arrow: number of rows.
    pub const ARROW_ROWS: &str = "cronus:arrow:num_rows";
    /// Arrow: number of record batches.
    pub const ARROW_BATCHES: &str = "cronus:arrow:num_batches";
    /// Arrow: the schema as JSON, `[{"name","type","nullable"}, …]`.
    pub const ARROW_SCHEMA: &str = "cronus:arrow:schema";
    /// Arrow: prefix of one row per field, `cronus:arrow:field:<name>` = type.
    pub const ARROW_FIELD: &str = "cronus:arrow:field:";
    /// Arrow: prefix of one row per custom metadata key, `cronus:arrow:meta:<key>` = value.
    pub const ARROW_META: &str = "cronus:arrow:meta:";
    /// Prefix of every Parquet row; a new version replaces all of them.
    pub const PARQUET_PREFIX: &str = "cronus:parquet:";
    /// Parquet: number of columns (top-level fields).
    pub const PARQUET_COLUMNS: &str = "cronus:parquet:num_columns";
    /// Parquet: number of rows.
    pub const PARQUET_ROWS: &str = "cronus:parquet:num_rows";
    /// Parquet: number of row groups.
    pub const PARQUET_ROW_GROUPS: &str = "cronus:parquet:num_row_groups";
    /// Parquet: the schema as JSON, `[{"name","type","nullable"}, …]` (Arrow types).
    pub const PARQUET_SCHEMA: &str = "cronus:parquet:schema";
    /// Parquet: prefix of one row per field, `cronus:parquet:field:<name>` = Arrow type.
    pub const PARQUET_FIELD: &str = "cronus:parquet:field:";
    /// Parquet: prefix of one row per footer key-value pair, `cronus:parquet:meta:<key>`.
    pub const PARQUET_META: &str = "cronus:parquet:meta:";
    /// Parquet: the writer named in the footer (`created_by`).
    pub const PARQUET_CREATED_BY: &str = "cronus:parquet:created_by";
}

/// A dataset's uuid.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct DatasetId(Uuid);

/// An object's uuid.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ObjectId(Uuid);

/// A job number: the dataset-wide counter, from 0.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct JobId(pub u32);

macro_rules! uuid_newtype {
    ($ty:ident, $what:literal) => {
        impl fmt::Display for $ty {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                self.0.hyphenated().fmt(f)
            }
        }
        impl FromStr for $ty {
            type Err = MetaError;
            fn from_str(s: &str) -> Result<Self> {
                let bad = |reason| MetaError::BadName {
                    what: $what,
                    name: s.chars().take(64).collect(),
                    reason,
                };
                let uuid = Uuid::try_parse(s).map_err(|_| bad("not a uuid"))?;
                // One spelling per uuid: upper case, braces, `urn:uuid:` or no dashes would
                // name the same node twice.
                if uuid.hyphenated().to_string() != s {
                    return Err(bad("not a canonical uuid (lower-case hex, hyphenated)"));
                }
                Ok($ty(uuid))
            }
        }
        impl $ty {
            /// Returns a new random uuid4.
            pub fn random() -> Self {
                $ty(Uuid::new_v4())
            }
            /// Returns the iden holding the node's rows.
            pub fn iden(self) -> Iden {
                Iden::new(self.to_string()).expect("a uuid is a valid iden")
            }
        }
    };
}
uuid_newtype!(DatasetId, "dataset uuid");
uuid_newtype!(ObjectId, "object uuid");

impl JobId {
    /// The highest job number: a dataset's job counter is the Cronus `job_idx`, an `int32`,
    /// and must hold the number after it.
    pub const MAX: JobId = JobId(i32::MAX as u32 - 1);

    /// Returns the job `name` spells canonically (`0`, `17`; not `01`, `+1`, `-1`), if it is
    /// at most [`JobId::MAX`].
    pub fn parse_canonical(name: &str) -> Option<JobId> {
        let n: u32 = name.parse().ok()?;
        (n.to_string() == name && n <= JobId::MAX.0).then_some(JobId(n))
    }

    /// Checks that `self` is at most [`JobId::MAX`].
    pub fn check(self) -> Result<JobId> {
        if self > JobId::MAX {
            return Err(MetaError::BadName {
                what: "job number",
                name: self.to_string(),
                reason: "job numbers end at 2147483646 (Cronus keeps the counter in an int32)",
            });
        }
        Ok(self)
    }
}

impl fmt::Display for JobId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// Where an object lives: dataset, partition key, job, name.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct ObjectPath {
    /// The dataset.
    pub dataset: DatasetId,
    /// The partition key.
    pub partition: String,
    /// The job.
    pub job: JobId,
    /// The object's name in the job directory.
    pub name: String,
}

impl ObjectPath {
    /// Returns the path of `name` in job `job` of partition `partition` of `dataset`.
    pub fn new(dataset: DatasetId, partition: &str, job: JobId, name: &str) -> Self {
        ObjectPath {
            dataset,
            partition: partition.to_string(),
            job,
            name: name.to_string(),
        }
    }
    /// `<dataset>/<key>/<job>[/<folder>]`: the directory the object is listed in.
    fn dir(&self) -> String {
        let job = dir_key(self.dataset, &self.partition, self.job);
        match self.name.rsplit_once('/') {
            Some((folder, _)) => format!("{job}/{folder}"),
            None => job,
        }
    }
    /// `<dataset>/<key>/<job>/<name>`: the object's place, as its `cronus:path` row says.
    pub fn key(&self) -> String {
        format!(
            "{}/{}",
            dir_key(self.dataset, &self.partition, self.job),
            self.name
        )
    }
}

impl fmt::Display for ObjectPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}/partitions/{}/jobs/{}/{}",
            self.dataset, self.partition, self.job, self.name
        )
    }
}

fn dir_key(dataset: DatasetId, partition: &str, job: JobId) -> String {
    format!("{dataset}/{partition}/{job}")
}

/// What the catalogue knows of one object (its current version).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ObjectMeta {
    /// The object's uuid.
    pub id: ObjectId,
    /// Where it lives.
    pub path: ObjectPath,
    /// Its Cronus name, `<dataset>.job_<n>.part_<key>.<uuid>.<ext>`.
    pub cronus_name: String,
    /// Content id of the current version.
    pub content: ContentId,
    /// Size of the current version in bytes.
    pub size: u64,
    /// Type detected from the bytes.
    pub file_type: FileType,
    /// Version number (1 for the first).
    pub version: i64,
    /// Creation time, epoch ms.
    pub created: i64,
    /// Last content change, epoch ms.
    pub modified: i64,
    /// What the content says of itself when it is an Arrow IPC file or stream or a Parquet
    /// file.
    pub table: Option<TableMeta>,
}

/// The Cronus catalogue over store `S`.
pub struct Metastore<S: Storage> {
    store: S,
    // Where chunks live when not in the store's own blob side store (an S3 bucket); shared
    // with the catalogue as it was at a past time (`Metastore::at`).
    chunks: Option<Arc<dyn ChunkStore>>,
    // What keeps gc from reclaiming chunks not yet referenced: the gc lock, the pins of
    // streams being written, this process's write lease and the session it is recorded under.
    gc_gate: leases::GcGate,
    // The contents this process's handles read, which gc keeps.
    hold_counts: Arc<read_holds::HoldCounts>,
    // Held while a new version commits (this process's commits never conflict each other).
    commit_gate: Mutex<()>,
}

fn info_key(uuid: &str) -> String {
    format!("info/{uuid}")
}

/// The scope the commits of sessions, write leases, read holds and sweep marks are announced
/// within: nothing a mount shows (see [`crate::storage::Transaction::announce_within`]).
pub const SESSIONS_SCOPE: &str = "cronusfs:sessions";

/// Runs `change` on `store` in a transaction of its own announced within [`SESSIONS_SCOPE`]
/// (see [`transact`]).
pub(super) fn sessions_change<S: Storage + ?Sized, T>(
    store: &S,
    mut change: impl FnMut(&dyn RowWrite) -> Result<T>,
) -> Result<T> {
    transact(store, |txn| {
        txn.announce_within(SESSIONS_SCOPE);
        change(txn)
    })
}

/// The first value of each prop of a node's rows.
struct NodeProps<'r>(BTreeMap<&'r str, &'r Valu>);

impl<'r> NodeProps<'r> {
    fn new(rows: &'r [Row]) -> Self {
        let mut map = BTreeMap::new();
        for r in rows {
            map.entry(r.prop.as_str()).or_insert(&r.valu);
        }
        NodeProps(map)
    }
    fn kind(&self) -> Option<&str> {
        self.str(prop::KIND).ok()
    }
    fn str(&self, p: &str) -> Result<&'r str> {
        match self.0.get(p) {
            Some(Valu::Str(s)) => Ok(s),
            _ => Err(MetaError::Corrupt(format!("node lacks string row {p}"))),
        }
    }
    fn int(&self, p: &str) -> Result<i64> {
        match self.0.get(p) {
            Some(Valu::Int(i)) => Ok(*i),
            _ => Err(MetaError::Corrupt(format!("node lacks integer row {p}"))),
        }
    }
}

fn rows_of(iden: &Iden, time: i64, props: &[(&str, Valu)]) -> Vec<Row> {
    props
        .iter()
        .map(|(p, v)| Row {
            iden: iden.clone(),
            prop: p.to_string(),
            valu: v.clone(),
            time,
        })
        .collect()
}

/// The catalogue holds itself: what holds one (a filesystem core, or the catalogue a command
/// works on) is `AsRef<Metastore<S>>`.
impl<S: Storage> AsRef<Metastore<S>> for Metastore<S> {
    fn as_ref(&self) -> &Metastore<S> {
        self
    }
}

impl Metastore<Box<dyn Storage>> {
    /// Returns the catalogue of an open store, its chunks wherever the store keeps them.
    pub fn of_store(store: crate::storage::location::OpenStore) -> Self {
        match store.chunks {
            Some(chunks) => Metastore::with_chunks(store.rows, chunks),
            None => Metastore::new(store.rows),
        }
    }
}

impl<S: Storage> Metastore<S> {
    /// Returns the catalogue kept in `store`.
    pub fn new(store: S) -> Self {
        Metastore {
            store,
            chunks: None,
            gc_gate: leases::GcGate::default(),
            hold_counts: Default::default(),
            commit_gate: Mutex::new(()),
        }
    }

    /// Returns the catalogue kept in `store`, with the chunks of its contents in `chunks`
    /// (an S3 bucket) rather than in the store itself; the chunks this process stored last
    /// are kept in memory too ([`RecentChunkCache`]), so that typing a content just written
    /// does not fetch it back.
    pub fn with_chunks(store: S, chunks: Box<dyn ChunkStore>) -> Self {
        Metastore {
            chunks: Some(Arc::new(RecentChunkCache::new(chunks))),
            ..Metastore::new(store)
        }
    }

    /// Returns the catalogue as it was at `at` (µs of the store clock): read-only, every
    /// lookup, listing, query and content read answering as then (contents are read from the
    /// same chunks, which gc keeps while history names them).
    pub fn at(&self, at: i64) -> Result<Metastore<Box<dyn Storage>>> {
        self.past_view(self.store.as_of(at)?)
    }

    /// Returns the catalogue over `store`, a read-only view of this one's store at a time.
    fn past_view(&self, store: Box<dyn Storage>) -> Result<Metastore<Box<dyn Storage>>> {
        Ok(Metastore {
            store,
            chunks: self.chunks.clone(),
            gc_gate: leases::GcGate::default(),
            hold_counts: Arc::clone(&self.hold_counts),
            commit_gate: Mutex::new(()),
        })
    }

    /// Returns the row store under the catalogue.
    pub fn storage(&self) -> &S {
        &self.store
    }

    /// Returns the content store of the catalogue's bytes.
    pub fn content(&self) -> ContentStore<'_> {
        match &self.chunks {
            Some(chunks) => ContentStore::with_chunks(&self.store, &**chunks),
            None => ContentStore::new(&self.store),
        }
    }

    /// Returns the write lease and sweep marks of this process: what keeps gc, here and in
    /// every process of a shared store, from reclaiming chunks not yet committed.
    pub fn leases(&self) -> Leases<'_, S> {
        Leases { meta: self }
    }

    /// Returns the sessions recorded in the store.
    pub fn sessions(&self) -> Sessions<'_, S> {
        Sessions { meta: self }
    }

    /// Returns the read holds of this process's handles: what keeps gc from deleting the
    /// contents they read.
    pub fn read_holds(&self) -> ReadHolds<'_, S> {
        ReadHolds { meta: self }
    }

    /// Runs `change` in a transaction of its own and commits it if `change` succeeds; all
    /// again when another writer changed what it read (a shared store), so `change` must act
    /// on the transaction only.
    fn in_txn<T>(&self, mut change: impl FnMut(&dyn RowWrite) -> Result<T>) -> Result<T> {
        transact(&self.store, |txn| change(txn))
    }

    /// [`Metastore::in_txn`] for a change within dataset `ds` alone: other processes of a
    /// shared store keep what they read of other datasets when it commits.
    fn in_dataset_txn<T>(
        &self,
        ds: DatasetId,
        mut change: impl FnMut(&dyn RowWrite) -> Result<T>,
    ) -> Result<T> {
        let scope = ds.to_string();
        transact(&self.store, |txn| {
            txn.announce_within(&scope);
            change(txn)
        })
    }

    /// Returns the Cronus `CronusObject` kept for node `uuid` (menu, config, dataset, object).
    pub fn info(&self, uuid: &str) -> Result<CronusObject> {
        let bytes = self
            .store
            .blob_get(&info_key(uuid))?
            .ok_or_else(|| MetaError::NoSuchObject(uuid.to_string()))?;
        CronusObject::decode(bytes.as_slice())
            .map_err(|e| MetaError::Corrupt(format!("info of {uuid}: {e}")))
    }

    /// Returns the `CronusObject` of node `uuid` if it is of `kind`.
    fn info_of(&self, view: &dyn RowRead, kind: &str, uuid: &str) -> Result<CronusObject> {
        let rows = view.rows_by_id(&Iden::new(uuid)?)?;
        if NodeProps::new(&rows).kind() != Some(kind) {
            return Err(MetaError::NoSuchObject(uuid.to_string()));
        }
        let bytes = view
            .blob_get(&info_key(uuid))?
            .ok_or_else(|| MetaError::Corrupt(format!("{uuid} has no info")))?;
        CronusObject::decode(bytes.as_slice())
            .map_err(|e| MetaError::Corrupt(format!("info of {uuid}: {e}")))
    }
}

/// Maps "not a node of that kind" to the caller's typed error; keeps every other error.
fn not_found(e: MetaError, typed: impl FnOnce() -> MetaError) -> MetaError {
    match e {
        MetaError::NoSuchObject(_) => typed(),
        other => other,
    }
}
