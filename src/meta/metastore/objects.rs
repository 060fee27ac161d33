//! Objects of the catalogue as they are: looking them up by path or uuid, listing a job
//! directory or a dataset, reading, deleting, and renaming (moving) one within its dataset.
//! Putting bytes is `versions.rs`.

use prost::Message;

use super::dir_times::{Change, entry_changed_in};
use super::folders::folder_iden;
use super::links::replace_at;
use super::table_rows::table_of;
use super::tree::{job_iden, partition_iden};
use super::{
    DatasetId, JobId, Metastore, NodeProps, ObjectId, ObjectMeta, ObjectPath, dir_key, info_key,
    prop,
};
use crate::meta::content::ContentReader;
use crate::meta::name_rules::check_object_name;
use crate::meta::{MetaError, Result};
use crate::pb::store::{CronusObject, FileType, cronus_object};
use crate::storage::{PropQuery, Row, RowRead, RowWrite, Storage, Valu, ValuRef, now_millis};

impl<S: Storage> Metastore<S> {
    /// Checks that the job directory of `path` exists: dataset, partition and job.
    pub(super) fn require_dir(&self, view: &dyn RowRead, path: &ObjectPath) -> Result<()> {
        // The dataset, partition, job (and parent folder) nodes in one read: one round trip
        // on a shared store.
        let mut idens = vec![
            path.dataset.iden(),
            partition_iden(path.dataset, &path.partition),
            job_iden(path.dataset, path.job),
        ];
        let parent = match path.name.rsplit_once('/') {
            Some((folder, _)) => {
                let parent = ObjectPath::new(path.dataset, &path.partition, path.job, folder);
                idens.push(folder_iden(&parent)?);
                Some(parent)
            }
            None => None,
        };
        let mut found = vec![false; idens.len()];
        let (mut is_dataset, mut in_folder) = (false, false);
        view.visit_rows_by_idens(&idens, &mut |i, p, v, _| {
            found[i] = true;
            match (i, p == prop::KIND) {
                (0, true) => is_dataset = v == ValuRef::Str("dataset"),
                (3, true) => in_folder = v == ValuRef::Str("folder"),
                _ => {}
            }
        })?;
        if !is_dataset {
            return Err(MetaError::NoSuchDataset(path.dataset.to_string()));
        }
        if !found[1] {
            let (dataset, key) = (path.dataset.to_string(), path.partition.clone());
            return Err(MetaError::NoSuchPartition { dataset, key });
        }
        if !found[2] {
            return Err(MetaError::NoSuchJob {
                dataset: path.dataset.to_string(),
                job: path.job.0,
            });
        }
        match parent {
            Some(parent) if !found[3] => Err(MetaError::NoSuchFolder(parent.to_string())),
            Some(parent) if !in_folder => Err(MetaError::NotAFolder(parent.to_string())),
            _ => Ok(()),
        }
    }

    /// Returns the rows of the object at `path` as `view` reads them, if there is one.
    pub(super) fn object_rows_at(
        &self,
        view: &dyn RowRead,
        path: &ObjectPath,
    ) -> Result<Option<Vec<Row>>> {
        let key = Valu::from(path.key());
        let hit = view.rows_by_prop(&PropQuery::new(prop::PATH).valu(&key).limit(1))?;
        match hit.first() {
            Some(row) => Ok(Some(view.rows_by_id(&row.iden)?)),
            None => Ok(None),
        }
    }

    /// Returns the object at `path`.
    pub fn object(&self, path: &ObjectPath) -> Result<ObjectMeta> {
        match self.object_rows_at(&self.store, path)? {
            Some(rows) => object_meta(&rows),
            None => Err(MetaError::NoSuchObject(path.to_string())),
        }
    }

    /// Returns the object with uuid `id`.
    pub fn object_by_id(&self, id: ObjectId) -> Result<ObjectMeta> {
        Self::object_of_rows(id, &self.store.rows_by_id(&id.iden())?)
    }

    /// Returns object `id` from its node's rows (read by the caller, as
    /// [`Metastore::node_rows`] gives them): [`MetaError::NoSuchObject`] if they are not an
    /// object's.
    pub fn object_of_rows(id: ObjectId, rows: &[Row]) -> Result<ObjectMeta> {
        if NodeProps::new(rows).kind() != Some("object") {
            return Err(MetaError::NoSuchObject(id.to_string()));
        }
        object_meta(rows)
    }

    /// Returns the objects of one job directory, by name.
    pub fn objects(
        &self,
        dataset: DatasetId,
        partition: &str,
        job: JobId,
    ) -> Result<Vec<ObjectMeta>> {
        self.require_dir(&self.store, &ObjectPath::new(dataset, partition, job, "-"))?;
        let dir = Valu::from(dir_key(dataset, partition, job));
        let rows = self
            .store
            .join_by_prop(&PropQuery::new(prop::DIR).valu(&dir))?;
        let mut out = rows
            .chunk_by(|a, b| a.iden == b.iden)
            .filter(|group| NodeProps::new(group).kind() == Some("object"))
            .map(object_meta)
            .collect::<Result<Vec<_>>>()?;
        out.sort_by(|a, b| a.path.name.cmp(&b.path.name));
        Ok(out)
    }

    /// Returns every object of `dataset` whose Cronus name starts with `prefix` and ends with
    /// `suffix` (the Cronus `list(prefix, suffix)`), in creation order.
    pub fn list(&self, dataset: DatasetId, prefix: &str, suffix: &str) -> Result<Vec<ObjectMeta>> {
        let ds = Valu::from(dataset.to_string());
        let rows = self
            .store
            .join_by_prop(&PropQuery::new(prop::DATASET).valu(&ds))?;
        let mut out = Vec::new();
        for group in rows.chunk_by(|a, b| a.iden == b.iden) {
            let node = NodeProps::new(group);
            let name = node.str(prop::NAME).unwrap_or_default();
            if node.kind() == Some("object") && name.starts_with(prefix) && name.ends_with(suffix) {
                out.push(object_meta(group)?);
            }
        }
        out.sort_by_key(|m| m.created);
        Ok(out)
    }

    /// Returns a reader of the object's current content.
    pub fn open(&self, meta: &ObjectMeta) -> Result<ContentReader<'_>> {
        self.content().reader(meta.content)
    }

    /// Deletes the object at `path` (its content stays until `gc`).
    pub fn delete_object(&self, path: &ObjectPath) -> Result<()> {
        self.in_dataset_txn(path.dataset, |txn| {
            let rows = self
                .object_rows_at(txn, path)?
                .ok_or_else(|| MetaError::NoSuchObject(path.to_string()))?;
            let id: ObjectId = NodeProps::new(&rows).str(prop::UUID)?.parse()?;
            txn.del_rows_by_id(&id.iden())?;
            txn.blob_del(&info_key(&id.to_string()))?;
            entry_changed_in(txn, path, now_millis(), Change::Now)?;
            Ok(())
        })
    }

    /// Returns the uuid of the object at `path`, if there is one.
    pub fn object_id_at(&self, path: &ObjectPath) -> Result<Option<ObjectId>> {
        let key = Valu::from(path.key());
        let hit = self
            .store
            .rows_by_prop(&PropQuery::new(prop::PATH).valu(&key).limit(1))?;
        hit.first().map(|r| r.iden.as_str().parse()).transpose()
    }

    /// Moves the object at `from` to `to` in the same dataset, atomically replacing an object
    /// (whose content stays until `gc`) or link already at `to`. Returns the uuid of the
    /// replaced object, if any. Another dataset is [`MetaError::CrossDataset`], a folder at
    /// `to` [`MetaError::FolderExists`].
    pub fn rename_object(&self, from: &ObjectPath, to: &ObjectPath) -> Result<Option<ObjectId>> {
        if from.dataset != to.dataset {
            return Err(MetaError::CrossDataset(to.to_string()));
        }
        check_object_name(&to.name)?;
        self.in_dataset_txn(to.dataset, |txn| {
            self.require_dir(txn, to)?;
            let rows = self
                .object_rows_at(txn, from)?
                .ok_or_else(|| MetaError::NoSuchObject(from.to_string()))?;
            let id: ObjectId = NodeProps::new(&rows).str(prop::UUID)?.parse()?;
            if from == to {
                return Ok(None);
            }
            let replaced = replace_at(txn, self, to)?;
            move_object(txn, id, &rows, to)?;
            let now = now_millis();
            entry_changed_in(txn, from, now, Change::Now)?;
            entry_changed_in(txn, to, now, Change::Now)?;
            Ok(replaced)
        })
    }
}

pub(super) fn object_meta(rows: &[Row]) -> Result<ObjectMeta> {
    let n = NodeProps::new(rows);
    let job = u32::try_from(n.int(prop::JOB)?)
        .map_err(|_| MetaError::Corrupt("job number out of range".into()))?;
    let dataset = n.str(prop::DATASET)?.parse()?;
    Ok(ObjectMeta {
        id: n.str(prop::UUID)?.parse()?,
        path: ObjectPath::new(
            dataset,
            n.str(prop::PARTITION)?,
            JobId(job),
            n.str(prop::OBJECT)?,
        ),
        cronus_name: n.str(prop::NAME)?.to_string(),
        content: n.str(prop::CONTENT)?.parse()?,
        size: n.int(prop::SIZE)? as u64,
        file_type: FileType::from_str_name(n.str(prop::TYPE)?).unwrap_or(FileType::None),
        version: n.int(prop::VERSION)?,
        created: n.int(prop::CREATED)?,
        modified: n.int(prop::MODIFIED)?,
        table: table_of(rows, &n)?,
    })
}

/// Rewrites the rows and info of object `id` (its current rows `rows`) for its new place `to`,
/// inside `txn`: partition, job, name in the job directory, place, directory, Cronus name.
pub(super) fn move_object(
    txn: &dyn RowWrite,
    id: ObjectId,
    rows: &[Row],
    to: &ObjectPath,
) -> Result<()> {
    let ext = NodeProps::new(rows)
        .str(prop::NAME)?
        .rsplit_once('.')
        .map_or(String::new(), |(_, e)| e.to_string());
    let cronus_name = format!(
        "{}.job_{}.part_{}.{id}.{ext}",
        to.dataset, to.job, to.partition
    );
    let iden = id.iden();
    let moved: [(&str, Valu); 6] = [
        (prop::PARTITION, to.partition.as_str().into()),
        (prop::JOB, i64::from(to.job.0).into()),
        (prop::OBJECT, to.name.as_str().into()),
        (prop::PATH, to.key().into()),
        (prop::DIR, to.dir().into()),
        (prop::NAME, cronus_name.as_str().into()),
    ];
    for (p, v) in &moved {
        txn.set_rows_by_id_prop(&iden, p, v)?;
    }
    let info_bytes = txn
        .blob_get(&info_key(&id.to_string()))?
        .ok_or_else(|| MetaError::Corrupt(format!("object {id} has no info")))?;
    let mut info = CronusObject::decode(info_bytes.as_slice())
        .map_err(|e| MetaError::Corrupt(format!("info of {id}: {e}")))?;
    info.name = cronus_name;
    if let Some(cronus_object::Info::File(f)) = info.info.as_mut() {
        f.partition = to.partition.clone();
    }
    txn.blob_set(&info_key(&id.to_string()), &info.encode_to_vec())?;
    Ok(())
}
