//! The directory-level operations the mount needs beyond the Cronus API: existence checks,
//! opening a job by number, removing empty datasets, partitions and jobs, and renaming an
//! object within its dataset (atomically replacing the target).

use prost::Message;

use super::{
    DatasetId, JobId, Metastore, Node, ObjectId, ObjectPath, dir_key, folder_iden, info_key,
    job_iden, job_rows, partition_iden, prop, rows_of,
};
use crate::meta::names::{check_component, check_object_name};
use crate::meta::{MetaError, Result};
use crate::pb::store::{CronusObject, cronus_object};
use crate::storage::{Iden, PropQuery, Row, RowRead, RowWrite, Storage, Valu, ValuRef, now_millis};

impl<S: Storage> Metastore<S> {
    /// Returns whether `dataset` exists.
    pub fn has_dataset(&self, dataset: DatasetId) -> Result<bool> {
        Ok(self.dataset_rows(&self.store, dataset).is_ok())
    }

    /// Returns whether `dataset` has partition `key`.
    pub fn has_partition(&self, dataset: DatasetId, key: &str) -> Result<bool> {
        if check_component("partition key", key).is_err() {
            return Ok(false);
        }
        Ok(!self
            .store
            .rows_by_id(&partition_iden(dataset, key))?
            .is_empty())
    }

    /// Returns whether `dataset` has opened `job`.
    pub fn has_job(&self, dataset: DatasetId, job: JobId) -> Result<bool> {
        Ok(!self.store.rows_by_id(&job_iden(dataset, job))?.is_empty())
    }

    /// Returns the iden of partition `key` of `dataset`.
    pub fn partition_iden(dataset: DatasetId, key: &str) -> Iden {
        partition_iden(dataset, key)
    }

    /// Returns the iden of `job` of `dataset`.
    pub fn job_iden(dataset: DatasetId, job: JobId) -> Iden {
        job_iden(dataset, job)
    }

    /// Opens job `job` of `dataset` by number (what `mkdir jobs/<n>` does): the dataset's
    /// counter moves past it, so `new_job` never hands it out again. A job already open is
    /// [`MetaError::JobExists`].
    pub fn open_job(&self, dataset: DatasetId, job: JobId) -> Result<()> {
        self.in_txn(|txn| self.open_job_in(txn, dataset, job))
    }

    /// Opens job `job` of `dataset` in `txn`, as [`Metastore::open_job`].
    pub(crate) fn open_job_in(
        &self,
        txn: &dyn RowWrite,
        dataset: DatasetId,
        job: JobId,
    ) -> Result<()> {
        job.check()?;
        self.dataset_rows(txn, dataset)?;
        if !txn.rows_by_id(&job_iden(dataset, job))?.is_empty() {
            return Err(MetaError::JobExists {
                dataset: dataset.to_string(),
                job: job.0,
            });
        }
        self.raise_job_counter_in(txn, dataset, job.0 + 1)?;
        Ok(txn.add_rows(&job_rows(dataset, job))?)
    }

    /// Moves the job counter of `dataset` to `next` if it is behind (an import of a Cronus
    /// `job_idx`), in `txn`; `next` is at most [`JobId::MAX`] + 1.
    pub(crate) fn raise_job_counter_in(
        &self,
        txn: &dyn RowWrite,
        dataset: DatasetId,
        next: u32,
    ) -> Result<()> {
        if next > 0 {
            JobId(next - 1).check()?;
        }
        let rows = self.dataset_rows(txn, dataset)?;
        if i64::from(next) > Node::new(&rows).int(prop::JOB_IDX)? {
            txn.set_rows_by_id_prop(&dataset.iden(), prop::JOB_IDX, &Valu::Int(next.into()))?;
        }
        Ok(())
    }

    /// Returns the job counter of `dataset`: the number `new_job` would open next.
    pub fn job_counter(&self, dataset: DatasetId) -> Result<i64> {
        Node::new(&self.dataset_rows(&self.store, dataset)?).int(prop::JOB_IDX)
    }

    /// Returns how many objects live in job `job` of partition `key`.
    fn objects_in(
        &self,
        view: &dyn RowRead,
        dataset: DatasetId,
        key: &str,
        job: JobId,
    ) -> Result<usize> {
        let dir = Valu::from(dir_key(dataset, key, job));
        Ok(view.size_by_prop(&PropQuery::new(prop::DIR).valu(&dir))?)
    }

    /// Removes `dataset` if it has no partitions and no jobs ([`MetaError::NotEmpty`]).
    pub fn remove_dataset(&self, dataset: DatasetId) -> Result<()> {
        self.in_txn(|txn| {
            self.dataset_rows(txn, dataset)?;
            let ds = Valu::from(dataset.to_string());
            for of in [prop::PARTITION_OF, prop::JOB_OF] {
                if txn.size_by_prop(&PropQuery::new(of).valu(&ds))? > 0 {
                    return Err(MetaError::NotEmpty(format!("dataset {dataset}")));
                }
            }
            txn.del_rows_by_id(&dataset.iden())?;
            txn.blob_del(&info_key(&dataset.to_string()))?;
            Ok(())
        })
    }

    /// Removes partition `key` of `dataset` if no object lives in it ([`MetaError::NotEmpty`]).
    pub fn remove_partition(&self, dataset: DatasetId, key: &str) -> Result<()> {
        self.in_txn(|txn| {
            let iden = partition_iden(dataset, key);
            if txn.rows_by_id(&iden)?.is_empty() {
                let (dataset, key) = (dataset.to_string(), key.to_string());
                return Err(MetaError::NoSuchPartition { dataset, key });
            }
            for job in self.jobs(dataset)? {
                if self.objects_in(txn, dataset, key, job)? > 0 {
                    return Err(MetaError::NotEmpty(format!("partition {key:?}")));
                }
            }
            txn.del_rows_by_id(&iden)?;
            Ok(())
        })
    }

    /// Removes `job` of `dataset` if no object lives in it under any partition
    /// ([`MetaError::NotEmpty`]). Its number is not handed out again.
    pub fn remove_job(&self, dataset: DatasetId, job: JobId) -> Result<()> {
        self.in_txn(|txn| {
            let iden = job_iden(dataset, job);
            if txn.rows_by_id(&iden)?.is_empty() {
                let dataset = dataset.to_string();
                return Err(MetaError::NoSuchJob {
                    dataset,
                    job: job.0,
                });
            }
            for key in self.partitions(dataset)? {
                if self.objects_in(txn, dataset, &key, job)? > 0 {
                    return Err(MetaError::NotEmpty(format!("job {job}")));
                }
            }
            txn.del_rows_by_id(&iden)?;
            Ok(())
        })
    }

    /// Moves the object at `from` to `to` in the same dataset, atomically replacing an object
    /// already at `to` (whose content stays until `gc`). Returns the uuid of the replaced
    /// object, if any. Another dataset is [`MetaError::CrossDataset`].
    pub fn rename_object(&self, from: &ObjectPath, to: &ObjectPath) -> Result<Option<ObjectId>> {
        if from.dataset != to.dataset {
            return Err(MetaError::CrossDataset(to.to_string()));
        }
        check_object_name(&to.name)?;
        self.in_txn(|txn| {
            self.require_dir(txn, to)?;
            let rows = self
                .object_rows_at(txn, from)?
                .ok_or_else(|| MetaError::NoSuchObject(from.to_string()))?;
            let id: ObjectId = Node::new(&rows).str(prop::UUID)?.parse()?;
            if from == to {
                return Ok(None);
            }
            let mut replaced = None;
            if let Some(old) = self.object_rows_at(txn, to)? {
                let old_id: ObjectId = Node::new(&old).str(prop::UUID)?.parse()?;
                txn.del_rows_by_id(&old_id.iden())?;
                txn.blob_del(&info_key(&old_id.to_string()))?;
                replaced = Some(old_id);
            }
            move_object(txn, id, &rows, to)?;
            Ok(replaced)
        })
    }
}

impl<S: Storage> Metastore<S> {
    /// Returns every row of node `iden` (empty when there is no such node).
    pub fn node_rows(&self, iden: &Iden) -> Result<Vec<Row>> {
        Ok(self.store.rows_by_id(iden)?)
    }

    /// Returns the uuid of the object at `path`, if there is one.
    pub fn object_id_at(&self, path: &ObjectPath) -> Result<Option<ObjectId>> {
        let key = Valu::from(path.key());
        let hit = self
            .store
            .rows_by_prop(&PropQuery::new(prop::PATH).valu(&key).limit(1))?;
        hit.first().map(|r| r.iden.as_str().parse()).transpose()
    }

    /// Sets user row `prop` of node `iden` to `valu` (replacing its values). Props of the
    /// catalogue (`cronus:`) are [`MetaError::SystemProp`] unless `system` is set, which only the
    /// mount does, for the attributes `chmod`, `chown` and `utimens` change.
    pub fn set_node_row(&self, iden: &Iden, p: &str, valu: &Valu, system: bool) -> Result<()> {
        self.set_node_rows(iden, &[(p, valu.clone(), now_millis())], system)
    }

    /// Sets rows `(prop, value, time)` of node `iden` in one transaction, each replacing the
    /// node's rows of its prop; a node that does not exist is [`MetaError::NoSuchObject`].
    pub fn set_node_rows(
        &self,
        iden: &Iden,
        rows: &[(&str, Valu, i64)],
        system: bool,
    ) -> Result<()> {
        for (p, _, _) in rows {
            check_user_prop(p, system)?;
        }
        self.in_txn(|txn| {
            // Every node has its kind row: one row read says whether it exists.
            if txn.rows_by_id_prop(iden, prop::KIND, None)?.is_empty() {
                return Err(MetaError::NoSuchObject(iden.to_string()));
            }
            let mut new = Vec::with_capacity(rows.len());
            for (p, valu, time) in rows {
                txn.del_rows_by_id_prop(iden, p, None)?;
                new.push(Row::new(iden, p, valu.clone(), *time));
            }
            txn.add_rows(&new)?;
            Ok(())
        })
    }

    /// Deletes user row `prop` of node `iden`; returns how many rows went.
    pub fn del_node_row(&self, iden: &Iden, p: &str) -> Result<usize> {
        check_user_prop(p, false)?;
        Ok(self.store.del_rows_by_id_prop(iden, p, None)?)
    }
}

/// What [`Metastore::map_dir_nodes`] does with each node of a directory: `take` folds each
/// of its rows into an accumulator that starts as `A::default()`, then `finish` makes the
/// node's entry of it (`None` leaves the node out).
pub struct DirNodeFold<'f, A, T> {
    /// Folds one row (prop, value, time) into the node's accumulator.
    pub take: &'f (dyn Fn(&mut A, &str, ValuRef<'_>, i64) + Sync),
    /// Makes the node's entry of its accumulator.
    pub finish: &'f (dyn Fn(A) -> Result<Option<T>> + Sync),
}

/// How many nodes of a directory are read at once (one round trip on a shared store).
const LISTING_BATCH: usize = 256;

/// How many threads read a big directory's batches of nodes at once.
const LISTING_THREADS: usize = 4;

/// Refuses props of the catalogue's own rows unless `system` is set.
/// How the props the daemons keep for themselves begin: no user sets or removes them.
pub(crate) const DAEMON_PROPS: &str = "cronusfs:";

pub(super) fn check_user_prop(p: &str, system: bool) -> Result<()> {
    // `cronus:` is the catalogue's, `cronusfs:` the daemons' own (sessions, leases, holds).
    if !system && (p.starts_with("cronus:") || p.starts_with(DAEMON_PROPS)) {
        return Err(MetaError::SystemProp(p.to_string()));
    }
    Ok(())
}

/// Folders: directories inside a job directory (what `mkdir` there and `tar -x` make). A
/// folder is a node with rows (`cronus:kind` = `folder`, `cronus:dir` = its parent directory,
/// `cronus:object` = its path in the job); objects in it have names that are paths.
impl<S: Storage> Metastore<S> {
    /// Makes the folder at `at` (`at.name` is its path in the job directory).
    pub fn make_folder(&self, at: &ObjectPath) -> Result<()> {
        check_object_name(&at.name)?;
        let iden = folder_iden(at)?;
        self.in_txn(|txn| {
            self.require_dir(txn, at)?;
            if !txn.rows_by_id(&iden)?.is_empty() || self.object_rows_at(txn, at)?.is_some() {
                return Err(MetaError::ObjectExists(at.to_string()));
            }
            let now = now_millis();
            txn.add_rows(&rows_of(
                &iden,
                now,
                &[
                    (prop::KIND, "folder".into()),
                    (prop::UUID, iden.as_str().into()),
                    (prop::CREATED, now.into()),
                    (prop::OBJECT, at.name.as_str().into()),
                    (prop::DIR, at.dir().into()),
                ],
            ))?;
            Ok(())
        })
    }

    /// Returns whether there is a folder at `at`.
    pub fn has_folder(&self, at: &ObjectPath) -> Result<bool> {
        match folder_iden(at) {
            Ok(iden) => Ok(!self.store.rows_by_id(&iden)?.is_empty()),
            Err(_) => Ok(false),
        }
    }

    /// Returns the iden of the folder at `at`.
    pub fn folder_iden(at: &ObjectPath) -> Result<Iden> {
        folder_iden(at)
    }

    /// Removes the folder at `at` if nothing is in it ([`MetaError::NotEmpty`]).
    pub fn remove_folder(&self, at: &ObjectPath) -> Result<()> {
        let iden = folder_iden(at)?;
        self.in_txn(|txn| {
            if txn.rows_by_id(&iden)?.is_empty() {
                return Err(MetaError::NoSuchObject(at.to_string()));
            }
            let inside = Valu::from(at.key());
            if txn.size_by_prop(&PropQuery::new(prop::DIR).valu(&inside))? > 0 {
                return Err(MetaError::NotEmpty(format!("folder {at}")));
            }
            txn.del_rows_by_id(&iden)?;
            Ok(())
        })
    }

    /// Returns the entry `fold` makes of every object and folder directly in directory `at` (a
    /// job directory when `at.name` is empty, else the folder `at.name`), dropping `None`s:
    /// one lift of `cronus:dir`, then [`Metastore::map_nodes`].
    pub fn map_dir_nodes<A: Default, T: Send>(
        &self,
        at: &ObjectPath,
        fold: &DirNodeFold<'_, A, T>,
    ) -> Result<Vec<T>> {
        let dir = match at.name.as_str() {
            "" => dir_key(at.dataset, &at.partition, at.job),
            _ => at.key(),
        };
        let members = self
            .store
            .rows_by_prop(&PropQuery::new(prop::DIR).valu(&Valu::from(dir)))?;
        self.map_nodes(members.into_iter().map(|r| r.iden).collect(), fold)
    }

    /// Returns the entry `fold` makes of each node of `idens`, dropping `None`s, in iden
    /// order: the nodes' rows 256 nodes at a time ([`RowRead::visit_rows_by_idens`]: nothing
    /// is kept but what `fold` keeps), on up to four threads for more than one batch.
    pub fn map_nodes<A: Default, T: Send>(
        &self,
        mut members: Vec<Iden>,
        fold: &DirNodeFold<'_, A, T>,
    ) -> Result<Vec<T>> {
        // In iden order the nodes' rows are read front to back: neighbours share blocks, and
        // each block is read and decompressed once (in lift order, by time, every node's
        // rows were a block cache miss once the directory outgrew the cache).
        members.sort_unstable();
        let run = |part: &[Iden]| -> Result<Vec<T>> {
            let mut out = Vec::with_capacity(part.len());
            for idens in part.chunks(LISTING_BATCH) {
                let mut seen: Vec<A> = idens.iter().map(|_| A::default()).collect();
                (self.store).visit_rows_by_idens(idens, &mut |i, p, v, t| {
                    (fold.take)(&mut seen[i], p, v, t)
                })?;
                for node in seen {
                    out.extend((fold.finish)(node)?);
                }
            }
            Ok(out)
        };
        // Batches on up to LISTING_THREADS threads (a shared store: as many connections, so the
        // server works on several at once), each thread a contiguous run of batches.
        let batches = members.len().div_ceil(LISTING_BATCH);
        let threads = batches.clamp(1, LISTING_THREADS);
        if threads == 1 {
            return run(&members);
        }
        let part = batches.div_ceil(threads) * LISTING_BATCH;
        let parts: Vec<Result<Vec<T>>> = std::thread::scope(|s| {
            let mut rest = members.chunks(part);
            let first = rest.next().unwrap_or_default();
            let others: Vec<_> = rest.map(|p| s.spawn(move || run(p))).collect();
            let mut done = vec![run(first)];
            for other in others {
                done.push(other.join().unwrap_or_else(|_| {
                    Err(MetaError::Corrupt("a listing thread panicked".into()))
                }));
            }
            done
        });
        let mut out = Vec::with_capacity(members.len());
        for part in parts {
            out.extend(part?);
        }
        Ok(out)
    }
}

/// Rewrites the rows and info of object `id` (its current rows `rows`) for its new place `to`,
/// inside `txn`: partition, job, name in the job directory, place, directory, Cronus name.
pub(super) fn move_object(
    txn: &dyn RowWrite,
    id: ObjectId,
    rows: &[Row],
    to: &ObjectPath,
) -> Result<()> {
    let ext = Node::new(rows)
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
