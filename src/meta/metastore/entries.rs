//! A job's Cronus entries that are no file of a partition: histogram and t-digest
//! collections, job metadata, table schemas and logs (the original's `dataset.hists`,
//! `tdigests`, `jobs`, `tables` and `logs`). Each is a node of kind `entry` with its
//! `CronusObject` and, once written, its bytes as a content; they have no place in the
//! mount's tree, and are imported, exported and reached by uuid.

use prost::Message;

use super::tree::job_iden;
use super::{ContentId, DatasetId, JobId, Metastore, info_key, prop, rows_of};
use crate::meta::Manifest;
use crate::meta::name_rules::{check_canonical_uuid, check_entry_name};
use crate::meta::{MetaError, Result};
use crate::pb::store::{CronusObject, cronus_object::Info};
use crate::storage::{Iden, PropQuery, RowRead, RowWrite, Storage, Valu, now_millis};

/// The entry's kind (`cronus:entry`).
const ENTRY: &str = "cronus:entry";
/// The dataset an entry belongs to (lifted to list a dataset's entries).
const ENTRY_OF: &str = "cronus:entry_of";
/// The job an entry belongs to.
pub const ENTRY_JOB: &str = "cronus:entry_job";

/// The props no node but an entry has (left out of `query/`'s listing).
pub(super) const ENTRY_ONLY_PROPS: [&str; 3] = [ENTRY, ENTRY_OF, ENTRY_JOB];

/// One entry of a job: its message and where its bytes are.
#[derive(Clone, Debug, PartialEq)]
pub struct Entry {
    /// The entry as the original catalogues it (uuid, name, parent, info).
    pub object: CronusObject,
    /// Its dataset.
    pub dataset: DatasetId,
    /// Its job.
    pub job: JobId,
    /// Its bytes, once written (a log's come after it is registered).
    pub content: Option<ContentId>,
}

/// Returns the kind word of an entry's info, or `None` for an info that is no entry's.
pub fn entry_kind(info: &Info) -> Option<&'static str> {
    match info {
        Info::Hists(_) => Some("hists"),
        Info::Tdigests(_) => Some("tdigests"),
        Info::Job(_) => Some("job"),
        Info::Table(_) => Some("table"),
        Info::Log(_) => Some("log"),
        Info::Menu(_) | Info::Config(_) | Info::Dataset(_) | Info::File(_) => None,
    }
}

impl<S: Storage> Metastore<S> {
    /// Registers `object` (a histogram, t-digest, job, table or log entry: its `info` says
    /// which) as an entry of `job` of `dataset`, with `bytes` as its content when given.
    /// A uuid in use is [`MetaError::DuplicateUuid`]; an info of another kind is
    /// [`MetaError::BadName`].
    pub fn register_entry(
        &self,
        dataset: DatasetId,
        job: JobId,
        object: &CronusObject,
        bytes: Option<&[u8]>,
    ) -> Result<()> {
        let kind = object
            .info
            .as_ref()
            .and_then(entry_kind)
            .ok_or(MetaError::BadName {
                what: "entry",
                name: object.name.chars().take(64).collect(),
                reason: "its info is no histogram, t-digest, job, table or log entry",
            })?;
        let _put = self.leases().hold_off_gc_for_new_write()?;
        let manifest = match bytes {
            Some(b) => Some(self.content().write_chunks(&mut &b[..], &mut |_| {})?),
            None => None,
        };
        self.in_dataset_txn(dataset, |txn| {
            self.leases().check_held_in(txn)?;
            self.register_entry_in(txn, (dataset, job), object, manifest.as_ref(), kind)
        })
    }

    /// Registers entry `object` of `kind` in `txn`, its bytes stored as `manifest` (an
    /// import's, or [`Metastore::register_entry`]'s).
    pub(crate) fn register_entry_in(
        &self,
        txn: &dyn RowWrite,
        (dataset, job): (DatasetId, JobId),
        object: &CronusObject,
        manifest: Option<&Manifest>,
        kind: &str,
    ) -> Result<()> {
        check_canonical_uuid("entry uuid", &object.uuid)?;
        check_entry_name(&object.name)?;
        self.dataset_rows(txn, dataset)?;
        if txn.rows_by_id(&job_iden(dataset, job))?.is_empty() {
            let dataset = dataset.to_string();
            return Err(MetaError::NoSuchJob {
                dataset,
                job: job.0,
            });
        }
        let iden = Iden::new(&object.uuid)?;
        if !txn.rows_by_id(&iden)?.is_empty() {
            return Err(MetaError::DuplicateUuid(object.uuid.clone()));
        }
        let now = now_millis();
        let mut rows = vec![
            (prop::KIND, Valu::from("entry")),
            (ENTRY, kind.into()),
            (prop::UUID, object.uuid.as_str().into()),
            (prop::NAME, object.name.as_str().into()),
            (prop::CREATED, now.into()),
            (ENTRY_OF, dataset.to_string().into()),
            (ENTRY_JOB, i64::from(job.0).into()),
        ];
        if let Some(m) = manifest {
            rows.push((prop::CONTENT, m.id.to_string().into()));
            rows.push((prop::SIZE, (m.size as i64).into()));
            super::ContentStore::commit_manifest(txn, m)?;
        }
        txn.add_rows(&rows_of(&iden, now, &rows))?;
        Ok(txn.blob_set(&info_key(&object.uuid), &object.encode_to_vec())?)
    }

    /// Stores `bytes` as the content of entry `uuid` (a log's, written after it was
    /// registered), replacing what it had.
    pub fn set_entry_content(&self, uuid: &str, bytes: &[u8]) -> Result<()> {
        let entry = self.entry(uuid)?;
        let _put = self.leases().hold_off_gc_for_new_write()?;
        let manifest = self.content().write_chunks(&mut &bytes[..], &mut |_| {})?;
        self.in_dataset_txn(entry.dataset, |txn| {
            self.leases().check_held_in(txn)?;
            let iden = Iden::new(uuid)?;
            super::ContentStore::commit_manifest(txn, &manifest)?;
            txn.set_rows_by_id_prop(&iden, prop::CONTENT, &manifest.id.to_string().into())?;
            txn.set_rows_by_id_prop(&iden, prop::SIZE, &(manifest.size as i64).into())?;
            Ok(())
        })
    }

    /// Returns entry `uuid` ([`MetaError::NoSuchObject`] if no entry has it).
    pub fn entry(&self, uuid: &str) -> Result<Entry> {
        let rows = self.store.rows_by_id(&Iden::new(uuid)?)?;
        self.entry_of(&self.store, uuid, &rows)
    }

    fn entry_of(
        &self,
        view: &dyn RowRead,
        uuid: &str,
        rows: &[crate::storage::Row],
    ) -> Result<Entry> {
        let node = super::NodeProps::new(rows);
        if node.kind() != Some("entry") {
            return Err(MetaError::NoSuchObject(uuid.to_string()));
        }
        let bytes = (view.blob_get(&info_key(uuid))?)
            .ok_or_else(|| MetaError::Corrupt(format!("entry {uuid} has no info")))?;
        let object = CronusObject::decode(bytes.as_slice())
            .map_err(|e| MetaError::Corrupt(format!("info of {uuid}: {e}")))?;
        let job = u32::try_from(node.int(ENTRY_JOB)?)
            .map_err(|_| MetaError::Corrupt(format!("entry {uuid}: a bad job number")))?;
        let content = match node.str(prop::CONTENT) {
            Ok(id) => Some(id.parse()?),
            Err(_) => None,
        };
        Ok(Entry {
            object,
            dataset: node.str(ENTRY_OF)?.parse()?,
            job: JobId(job),
            content,
        })
    }

    /// Returns the entries of `dataset`, in the order they were registered.
    pub fn entries(&self, dataset: DatasetId) -> Result<Vec<Entry>> {
        let ds = Valu::from(dataset.to_string());
        let rows = self
            .store
            .join_by_prop(&PropQuery::new(ENTRY_OF).valu(&ds))?;
        let mut out = Vec::new();
        for group in rows.chunk_by(|a, b| a.iden == b.iden) {
            let uuid = group[0].iden.as_str();
            let created = super::NodeProps::new(group).int(prop::CREATED).unwrap_or(0);
            out.push((created, self.entry_of(&self.store, uuid, group)?));
        }
        out.sort_by(|a, b| (a.0, &a.1.object.uuid).cmp(&(b.0, &b.1.object.uuid)));
        Ok(out.into_iter().map(|(_, e)| e).collect())
    }

    /// Returns how many entries `job` of `dataset` has, as `view` reads them.
    pub(super) fn entries_in(
        &self,
        view: &dyn RowRead,
        dataset: DatasetId,
        job: JobId,
    ) -> Result<usize> {
        let ds = Valu::from(dataset.to_string());
        let rows = view.join_by_prop(&PropQuery::new(ENTRY_OF).valu(&ds))?;
        let of_job = Valu::from(i64::from(job.0));
        Ok(rows
            .iter()
            .filter(|r| r.prop == ENTRY_JOB && r.valu == of_job)
            .count())
    }

    /// Returns the bytes of entry `uuid` ([`MetaError::NoSuchContent`]-free: an entry with
    /// none yet, a log not written, is [`MetaError::NoSuchObject`]).
    pub fn entry_bytes(&self, uuid: &str) -> Result<Vec<u8>> {
        let entry = self.entry(uuid)?;
        let id = entry
            .content
            .ok_or_else(|| MetaError::NoSuchObject(format!("{uuid} (nothing written yet)")))?;
        let mut bytes = Vec::new();
        std::io::Read::read_to_end(&mut self.content().reader(id)?, &mut bytes)?;
        Ok(bytes)
    }
}
