//! Putting bytes in the catalogue: a new object, or a new version of the object at a path
//! (from a reader, a writer's staging file, or a stream of chunks written as they come), typed
//! and described from its bytes and committed in one transaction; and imports that keep an
//! object's uuid and Cronus name.

use std::collections::HashSet;
use std::io::Read;

use prost::Message;
use uuid::Uuid;

use super::dir_times::{Change, entry_changed_in};
use super::folders::folder_iden;
use super::links::{Placed, placed_of};
use super::node_rows::check_user_prop;
use super::table_rows::table_rows;
use super::{Metastore, NodeProps, ObjectId, ObjectMeta, ObjectPath, info_key, prop, rows_of};
use crate::meta::content::{ChunkStream, ContentStore, Manifest};
use crate::meta::filetype::{self, SNIFF_BYTES};
use crate::meta::name_rules::check_object_name;
use crate::meta::table_meta::{self, TableMeta};
use crate::meta::{MetaError, Result};
use crate::pb::store::{CronusObject, FileObjectAuxInfo, FileObjectInfo, FileType, cronus_object};
use crate::storage::retry::{VERSION_COMMIT, transact_up_to};
use crate::storage::{Row, RowWrite, Storage, Valu, now_millis};

impl<S: Storage> Metastore<S> {
    /// Stores the bytes of `reader` at `path`: a new object, or a new version of the object
    /// already there (its previous content stays reachable by content id until `gc`).
    /// `progress` is called with the bytes stored so far. Durable when it returns.
    pub fn put_object(
        &self,
        path: &ObjectPath,
        reader: &mut dyn Read,
        progress: &mut dyn FnMut(u64),
    ) -> Result<ObjectMeta> {
        let put = Put {
            identity: Identity::Fresh,
            time: None,
            rows: &[],
            entered: None,
        };
        self.put_inner(path, put, reader, progress)
    }

    /// Like [`Metastore::put_object`], but uuid `id` is used only if no object is at `path`
    /// (the mount gives a file its inode's identity when it is created, before its first
    /// commit): when one is, this is a new version of it, keeping its uuid whatever `id` says.
    /// The version is dated `time` (epoch ms: when the mount's writer last changed the bytes,
    /// which is what `stat` showed meanwhile).
    pub fn put_object_id_if_new(
        &self,
        path: &ObjectPath,
        id: ObjectId,
        reader: &mut dyn Read,
        time: i64,
    ) -> Result<ObjectMeta> {
        let put = Put {
            identity: Identity::IfNew(id),
            time: Some(time),
            rows: &[],
            entered: None,
        };
        self.put_inner(path, put, reader, &mut |_| {})
    }

    /// Stores a new object at `path` with uuid `id` and Cronus name `cronus_name` (for imports
    /// that keep both); an `id` in use is [`MetaError::DuplicateUuid`], an occupied path
    /// [`MetaError::ObjectExists`].
    pub fn put_object_as(
        &self,
        path: &ObjectPath,
        id: ObjectId,
        cronus_name: &str,
        reader: &mut dyn Read,
    ) -> Result<ObjectMeta> {
        let put = Put {
            identity: Identity::Keep(id, cronus_name),
            time: None,
            rows: &[],
            entered: None,
        };
        self.put_inner(path, put, reader, &mut |_| {})
    }

    fn put_inner(
        &self,
        path: &ObjectPath,
        put: Put<'_>,
        reader: &mut dyn Read,
        progress: &mut dyn FnMut(u64),
    ) -> Result<ObjectMeta> {
        check_object_name(&path.name)?;
        self.require_dir(&self.store, path)?;
        let _put = self.leases().hold_off_gc_for_new_write()?;
        let manifest = self.content().write_chunks(reader, progress)?;
        self.commit_put(path, put, &manifest)
    }

    /// Stores the first `size` bytes of `file` (a writer's staging file) at `path` like
    /// [`Metastore::put_object_id_if_new`] (`id` only if no object is there); its holes cost
    /// nothing ([`crate::meta::ContentStore::write_file`]).
    pub fn put_file_id_if_new(
        &self,
        path: &ObjectPath,
        id: ObjectId,
        (file, size): (&std::fs::File, u64),
        details: VersionDetails<'_>,
    ) -> Result<ObjectMeta> {
        check_object_name(&path.name)?;
        self.require_dir(&self.store, path)?;
        // Held until the commit: gc cannot reclaim the chunks meanwhile.
        let _put = self.leases().hold_off_gc_for_new_write()?;
        let manifest = self.content().write_file(file, size, &mut |_| {})?;
        let put = Put {
            identity: Identity::IfNew(id),
            time: Some(details.time),
            rows: details.rows,
            entered: details.entered,
        };
        self.commit_put(path, put, &manifest)
    }

    /// Appends `data` to `stream`, an object's bytes written as they come (the mount's
    /// sequential writers); its chunks are kept from `gc` until [`Metastore::put_stream`] or
    /// [`Metastore::drop_stream`].
    pub fn stream_write(&self, stream: &mut ChunkStream, data: &[u8]) -> Result<()> {
        let leases = self.leases();
        let _put = match stream.chunk_hashes().next() {
            None => leases.hold_off_gc_for_new_write()?,
            Some(_) => leases.hold_off_gc_for_continued_write()?,
        };
        self.content()
            .write_stream(stream, data, &mut |h| self.gc_gate.pin(h))
    }

    /// Commits `stream` at `path` like [`Metastore::put_object_id_if_new`] (`id` only if no
    /// object is there); returns the object and the manifest of its new content.
    pub fn put_stream(
        &self,
        path: &ObjectPath,
        id: ObjectId,
        stream: ChunkStream,
        details: VersionDetails<'_>,
    ) -> Result<(ObjectMeta, Manifest)> {
        let mut pinned: Vec<[u8; 32]> = stream.chunk_hashes().copied().collect();
        let new_write = pinned.is_empty();
        let mut pin = |h: &[u8; 32]| {
            self.gc_gate.pin(h);
            pinned.push(*h);
        };
        let result = (|| {
            check_object_name(&path.name)?;
            let leases = self.leases();
            let _put = if new_write {
                leases.hold_off_gc_for_new_write()?
            } else {
                leases.hold_off_gc_for_continued_write()?
            };
            let manifest = self.content().finish_stream(stream, &mut pin)?;
            let put = Put {
                identity: Identity::IfNew(id),
                time: Some(details.time),
                rows: details.rows,
                entered: details.entered,
            };
            let meta = self.commit_put(path, put, &manifest)?;
            Ok((meta, manifest))
        })();
        self.gc_gate.unpin(pinned.iter());
        result
    }

    /// Gives up `stream`: its chunks are garbage again.
    pub fn drop_stream(&self, stream: ChunkStream) {
        self.gc_gate.unpin(stream.chunk_hashes());
    }

    /// Writes the rows, manifest and info of a put whose chunks are stored (the caller holds
    /// the gc lock shared).
    fn commit_put(
        &self,
        path: &ObjectPath,
        put: Put<'_>,
        manifest: &Manifest,
    ) -> Result<ObjectMeta> {
        for (p, _, _) in put.rows {
            check_user_prop(p, true)?;
        }
        let inspected = self.inspect(manifest).map_err(|e| {
            // Chunks gone because this process's lease expired: say that, not "corrupt".
            match self.leases().check_held_in(&self.store) {
                Err(lost @ MetaError::LeaseLost) => lost,
                _ => e,
            }
        })?;
        // This process's versions commit one at a time: on a shared store, concurrent ones
        // (the commits at release of a create loop, `tar -x`) read and write the same index
        // pages (their paths are neighbours), which PostgreSQL's serializable isolation
        // reports as conflicts; a stream of them could exhaust a commit's retries and lose a
        // file. Other hosts' commits still conflict and are retried.
        let _one_at_a_time = self.commit_gate.lock().unwrap_or_else(|e| e.into_inner());
        // Bytes already stored are lost if their version never commits (a commit at release
        // has nobody to report to): other hosts' conflicts get more attempts than a change.
        let scope = path.dataset.to_string();
        transact_up_to(VERSION_COMMIT, &self.store, |txn| {
            txn.announce_within(&scope);
            self.commit_put_in(txn, path, put, manifest, inspected.clone())
        })
    }

    /// Stores a new object at `path` with uuid `id` and Cronus name `cronus_name`, whose
    /// bytes are stored as `manifest`, in `txn` (an import; see [`Metastore::put_object_as`]).
    pub(crate) fn import_object_in(
        &self,
        txn: &dyn RowWrite,
        path: &ObjectPath,
        (id, cronus_name): (ObjectId, &str),
        manifest: &Manifest,
    ) -> Result<ObjectMeta> {
        check_object_name(&path.name)?;
        let put = Put {
            identity: Identity::Keep(id, cronus_name),
            time: None,
            rows: &[],
            entered: None,
        };
        let inspected = self.inspect(manifest)?;
        self.commit_put_in(txn, path, put, manifest, inspected)
    }

    fn commit_put_in(
        &self,
        txn: &dyn RowWrite,
        path: &ObjectPath,
        put: Put<'_>,
        manifest: &Manifest,
        (file_type, table): (FileType, Option<TableMeta>),
    ) -> Result<ObjectMeta> {
        let moved = match put.identity {
            Identity::IfNew(id) => moved_to(txn, id, path)?,
            Identity::Fresh | Identity::Keep(..) => None,
        };
        let path = moved.as_ref().unwrap_or(path);
        self.require_dir(txn, path)?;
        self.leases().check_held_in(txn)?;
        let (identity, now) = (put.identity, put.time.unwrap_or_else(now_millis));
        let existing = self.object_rows_at(txn, path)?;
        if existing.is_none() {
            match placed_of(&txn.rows_by_id(&folder_iden(path)?)?) {
                Some(Placed::Folder) => return Err(MetaError::FolderExists(path.to_string())),
                Some(Placed::Link(_)) => return Err(MetaError::ObjectExists(path.to_string())),
                None => {}
            }
        }
        let new_id = match identity {
            Identity::Fresh => ObjectId(Uuid::new_v4()),
            Identity::IfNew(id) | Identity::Keep(id, _) => id,
        };
        let mut fresh = new_meta(path, new_id, manifest, file_type, table, now);
        let meta = match (existing.as_deref(), identity) {
            (Some(old), Identity::Fresh | Identity::IfNew(_)) => {
                next_version(&NodeProps::new(old), fresh)?
            }
            (Some(_), Identity::Keep(..)) => {
                return Err(MetaError::ObjectExists(path.to_string()));
            }
            (None, identity) => {
                if !txn.rows_by_id(&new_id.iden())?.is_empty() {
                    return Err(MetaError::DuplicateUuid(new_id.to_string()));
                }
                if let Identity::Keep(_, cronus_name) = identity {
                    fresh.cronus_name = cronus_name.to_string();
                }
                fresh
            }
        };
        // The Cronus name changes only with the type's extension: its row is rewritten then.
        let renamed = existing
            .as_deref()
            .is_none_or(|old| NodeProps::new(old).str(prop::NAME).ok() != Some(&meta.cronus_name));
        let stale = existing.as_deref().map(|old| stale_props(old, renamed));
        for p in stale.unwrap_or_default() {
            txn.del_rows_by_id_prop(&meta.id.iden(), p, None)?;
        }
        if let Some(old) = existing.as_deref() {
            txn.del_rows(&history_past_kept(old, meta.version))?;
        }
        txn.add_rows(&object_rows(&meta, existing.is_none(), renamed))?;
        if existing.is_none() {
            match put.entered {
                Some(e) => entry_changed_in(txn, path, e.at, Change::Entered(e.set))?,
                None => entry_changed_in(txn, path, now, Change::Now)?,
            }
        }
        let iden = meta.id.iden();
        for (p, _, _) in put.rows {
            txn.del_rows_by_id_prop(&iden, p, None)?;
        }
        let landed: Vec<Row> = (put.rows.iter())
            .map(|(p, v, t)| Row::new(&iden, p, v.clone(), *t))
            .collect();
        txn.add_rows(&landed)?;
        ContentStore::commit_manifest(txn, manifest)?;
        txn.blob_set(
            &info_key(&meta.id.to_string()),
            &cronus_info(&meta).encode_to_vec(),
        )?;
        Ok(meta)
    }

    /// Returns the type of the content from its first and last bytes, and its table metadata
    /// when it is Arrow or Parquet; bytes that only look like one are typed `NONE`.
    fn inspect(&self, manifest: &Manifest) -> Result<(FileType, Option<TableMeta>)> {
        let file_type = self.sniff(manifest)?;
        if !table_meta::is_table(file_type) {
            return Ok((file_type, None));
        }
        let content = self.content();
        let mut read_at = |off: u64, buf: &mut [u8]| {
            content
                .read_at(manifest, off, buf)
                .map_err(std::io::Error::other)
        };
        Ok(
            match table_meta::inspect(file_type, manifest.size, &mut read_at) {
                Some(meta) => (file_type, Some(meta)),
                None => (FileType::None, None),
            },
        )
    }

    /// Returns the type of the content from its first and last bytes.
    fn sniff(&self, manifest: &Manifest) -> Result<FileType> {
        let content = self.content();
        let len = SNIFF_BYTES.min(manifest.size as usize);
        if manifest.chunk_count() == 1 {
            // One chunk holds both ends: read it once.
            let only = content.chunk(manifest, 0)?;
            return Ok(filetype::detect(
                &only[..len],
                &only[only.len() - len..],
                manifest.size,
            ));
        }
        let mut head = vec![0u8; len];
        let n = content.read_at(manifest, 0, &mut head)?;
        head.truncate(n);
        let mut tail = vec![0u8; len];
        let n = content.read_at(manifest, manifest.size - len as u64, &mut tail)?;
        tail.truncate(n);
        Ok(filetype::detect(&head, &tail, manifest.size))
    }
}

/// How a put names and dates what it stores.
#[derive(Clone, Copy)]
struct Put<'a> {
    identity: Identity<'a>,
    /// The version's time (epoch ms); now when `None`.
    time: Option<i64>,
    /// Rows set on the object in the same transaction.
    rows: &'a [(String, Valu, i64)],
    /// When its name appeared in its directory, for a new object (the version's time when
    /// `None`): the directory's mtime moves to it.
    entered: Option<Entered>,
}

/// What a writer of the mount commits with a version besides its bytes.
#[derive(Clone, Copy, Debug, Default)]
pub struct VersionDetails<'a> {
    /// The version's time, epoch ms.
    pub time: i64,
    /// Rows to set on the object in the version's transaction, replacing those of their
    /// props (catalogue rows such as a new file's mode and owner, set before its first
    /// commit): `(prop, value, time)`.
    pub rows: &'a [(String, Valu, i64)],
    /// For the first version of a new object, when its name appeared in its directory (a
    /// file created, or renamed there, before its first commit): what the directory's mtime
    /// moves to. The version's time when `None`.
    pub entered: Option<Entered>,
}

/// When a file's name entered its directory, for the commit that first stores it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Entered {
    /// When, epoch ms.
    pub at: i64,
    /// How the last time set on the directory is ordered against the entry, as the mount saw.
    pub set: SetOrder,
}

/// Where the last time set on a directory falls against a file's entry there.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SetOrder {
    /// After the entry: the directory keeps that time.
    After,
    /// Before it: only a time set elsewhere strictly later than the entry keeps it.
    Before,
    /// Not known (none made through the mount, or one racing the commit): a time set at or
    /// after the entry's millisecond keeps it.
    Unknown,
}

impl VersionDetails<'_> {
    /// A version at `time` with no rows of its own.
    pub fn at(time: i64) -> VersionDetails<'static> {
        VersionDetails {
            time,
            rows: &[],
            entered: None,
        }
    }
}

/// Which uuid a put gives a new object.
#[derive(Clone, Copy)]
enum Identity<'a> {
    /// A fresh uuid4.
    Fresh,
    /// This uuid if no object is at the path (else a new version of the one there).
    IfNew(ObjectId),
    /// This uuid and Cronus name (an import; an object at the path is an error).
    Keep(ObjectId, &'a str),
}

/// Where object `id` is now, if it exists and is not at `path`: a version the mount commits of
/// an object renamed (or moved with its folder) since the commit named its path follows it,
/// rather than fail on a folder that is gone or make a second object at the old name.
fn moved_to(txn: &dyn RowWrite, id: ObjectId, path: &ObjectPath) -> Result<Option<ObjectPath>> {
    let rows = txn.rows_by_id(&id.iden())?;
    if rows.is_empty() {
        return Ok(None);
    }
    let now = super::objects::object_meta(&rows)?.path;
    Ok((now != *path).then_some(now))
}

fn new_meta(
    path: &ObjectPath,
    id: ObjectId,
    manifest: &Manifest,
    file_type: FileType,
    table: Option<TableMeta>,
    now: i64,
) -> ObjectMeta {
    let ext = file_type.as_str_name().to_lowercase();
    let cronus_name = format!(
        "{}.job_{}.part_{}.{id}.{ext}",
        path.dataset, path.job, path.partition
    );
    ObjectMeta {
        id,
        path: path.clone(),
        cronus_name,
        content: manifest.id,
        size: manifest.size,
        file_type,
        version: 1,
        created: now,
        modified: now,
        table,
    }
}

/// Returns `fresh` as the next version of the object whose current rows are `old`.
/// Its Cronus name is the old one with the extension of the new version's type (an object
/// first committed empty, as some writers leave it, is `.none` until its bytes say more).
fn next_version(old: &NodeProps<'_>, fresh: ObjectMeta) -> Result<ObjectMeta> {
    let name = old.str(prop::NAME)?;
    let ext = fresh.file_type.as_str_name().to_lowercase();
    let cronus_name = match name.rsplit_once('.') {
        Some((stem, _)) => format!("{stem}.{ext}"),
        None => name.to_string(),
    };
    Ok(ObjectMeta {
        id: old.str(prop::UUID)?.parse()?,
        cronus_name,
        version: old.int(prop::VERSION)? + 1,
        created: old.int(prop::CREATED)?,
        ..fresh
    })
}

/// How many of an object's latest versions its `cronus:history` rows name: every row is read
/// with the object (each `stat`, `open` and commit), so a file rewritten all day must not
/// carry one per version. The store's history has every version (`cronusfs log`).
pub const HISTORY_KEPT: i64 = 16;

/// The version a `cronus:history` value (`<version>:<content id>`) names.
pub fn history_version(valu: &str) -> Option<i64> {
    valu.split_once(':')?.0.parse().ok()
}

/// The `cronus:history` rows of `old` that version `version` leaves behind: those naming a
/// version [`HISTORY_KEPT`] or more before it.
fn history_past_kept(old: &[Row], version: i64) -> Vec<Row> {
    old.iter()
        .filter(|r| r.prop == prop::HISTORY)
        .filter(|r| {
            history_version(&r.valu.to_string()).is_some_and(|v| v <= version - HISTORY_KEPT)
        })
        .cloned()
        .collect()
}

/// The props of an object's rows that describe its current version (replaced by a new one);
/// its Cronus name too when `renamed`.
fn stale_props(old: &[Row], renamed: bool) -> HashSet<&str> {
    let replaced = [
        prop::CONTENT,
        prop::SIZE,
        prop::TYPE,
        prop::VERSION,
        prop::MODIFIED,
        prop::MTIME,
    ];
    old.iter()
        .map(|r| r.prop.as_str())
        .filter(|p| {
            replaced.contains(p)
                || (renamed && *p == prop::NAME)
                || p.starts_with(prop::ARROW_PREFIX)
                || p.starts_with(prop::PARQUET_PREFIX)
        })
        .collect()
}

/// The rows of an object: all of them for a new one, the version-dependent ones otherwise (and
/// its Cronus name when `renamed`).
fn object_rows(m: &ObjectMeta, new: bool, renamed: bool) -> Vec<Row> {
    let iden = m.id.iden();
    let mut props: Vec<(&str, Valu)> = vec![
        (prop::CONTENT, m.content.to_string().into()),
        (prop::SIZE, (m.size as i64).into()),
        (prop::TYPE, m.file_type.as_str_name().into()),
        (prop::VERSION, m.version.into()),
        (prop::MODIFIED, m.modified.into()),
        (prop::HISTORY, format!("{}:{}", m.version, m.content).into()),
    ];
    if renamed {
        props.push((prop::NAME, m.cronus_name.as_str().into()));
    }
    if new {
        props.extend([
            (prop::KIND, "object".into()),
            (prop::UUID, m.id.to_string().into()),
            (prop::CREATED, m.created.into()),
            (prop::DATASET, m.path.dataset.to_string().into()),
            (prop::PARTITION, m.path.partition.as_str().into()),
            (prop::JOB, i64::from(m.path.job.0).into()),
            (prop::OBJECT, m.path.name.as_str().into()),
            (prop::PATH, m.path.key().into()),
            (prop::DIR, m.path.dir().into()),
        ]);
    }
    let mut rows = rows_of(&iden, m.modified, &props);
    if let Some(table) = &m.table {
        rows.extend(table_rows(table).into_iter().map(|(prop, valu)| Row {
            iden: iden.clone(),
            prop,
            valu,
            time: m.modified,
        }));
    }
    rows
}

pub(super) fn cronus_info(m: &ObjectMeta) -> CronusObject {
    let saturate = |v: u64| i32::try_from(v).unwrap_or(i32::MAX);
    let aux = m.table.as_ref().map(|a| FileObjectAuxInfo {
        num_columns: saturate(a.num_columns() as u64),
        num_rows: saturate(a.num_rows),
        num_batches: saturate(a.num_batches),
        ..Default::default()
    });
    let file = FileObjectInfo {
        aux,
        r#type: m.file_type as i32,
        size_bytes: m.size as i64,
        partition: m.path.partition.clone(),
        ..Default::default()
    };
    CronusObject {
        name: m.cronus_name.clone(),
        uuid: m.id.to_string(),
        parent_uuid: m.path.dataset.to_string(),
        info: Some(cronus_object::Info::File(file)),
        ..Default::default()
    }
}
