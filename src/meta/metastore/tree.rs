//! The tree above the job directories: datasets (registered with a menu and configuration,
//! or created bare), their partitions and their jobs (numbered by a dataset-wide counter):
//! adding, listing, checking, and removing them when empty.

use prost::Message;
use uuid::Uuid;

use super::dir_times::{Change, entries_changed_in, forget_entries_time};
use super::{DatasetId, JobId, Metastore, NodeProps, dir_key, info_key, not_found, prop, rows_of};
use crate::meta::name_rules::check_component;
use crate::meta::{MetaError, Result};
use crate::pb::store::{CronusObject, DatasetObjectInfo, Transform, cronus_object};
use crate::storage::{Iden, PropQuery, Row, RowRead, RowWrite, Storage, Valu, now_millis};

/// The iden of partition `key` of `dataset`.
pub(super) fn partition_iden(dataset: DatasetId, key: &str) -> Iden {
    Iden::new(format!("{dataset}/partitions/{key}")).expect("a bounded, non-empty iden")
}

/// The iden of `job` of `dataset`.
pub(super) fn job_iden(dataset: DatasetId, job: JobId) -> Iden {
    Iden::new(format!("{dataset}/jobs/{job}")).expect("a bounded, non-empty iden")
}

/// The rows of a newly opened job.
fn job_rows(dataset: DatasetId, job: JobId) -> Vec<Row> {
    let iden = job_iden(dataset, job);
    let now = now_millis();
    rows_of(
        &iden,
        now,
        &[
            (prop::KIND, "job".into()),
            (prop::UUID, iden.as_str().into()),
            (prop::NAME, format!("job_{job}").into()),
            (prop::CREATED, now.into()),
            (prop::JOB_OF, dataset.to_string().into()),
            (prop::JOB, i64::from(job.0).into()),
        ],
    )
}

/// Datasets.
impl<S: Storage> Metastore<S> {
    /// Registers a new dataset (uuid4) made with `menu` and `config`, both registered.
    pub fn register_dataset(&self, menu: &str, config: &str) -> Result<DatasetId> {
        let id = DatasetId(Uuid::new_v4());
        self.register_dataset_as(id, menu, config)?;
        Ok(id)
    }

    /// Registers dataset `id` (for imports that keep uuids); an `id` in use is
    /// [`MetaError::DuplicateUuid`].
    pub fn register_dataset_as(&self, id: DatasetId, menu: &str, config: &str) -> Result<()> {
        self.insert_dataset(id, Some((menu, config)))
    }

    /// Creates dataset `id` with no menu or configuration yet (what `mkdir datasets/<uuid>`
    /// does); an `id` in use is [`MetaError::DuplicateUuid`].
    pub fn create_dataset(&self, id: DatasetId) -> Result<()> {
        self.insert_dataset(id, None)
    }

    fn insert_dataset(&self, id: DatasetId, made_with: Option<(&str, &str)>) -> Result<()> {
        self.in_dataset_txn(id, |txn| self.insert_dataset_in(txn, id, made_with))
    }

    /// Creates dataset `id`, made with `(menu, config)` when given, in `txn`.
    pub(crate) fn insert_dataset_in(
        &self,
        txn: &dyn RowWrite,
        id: DatasetId,
        made_with: Option<(&str, &str)>,
    ) -> Result<()> {
        if !txn.rows_by_id(&id.iden())?.is_empty() {
            return Err(MetaError::DuplicateUuid(id.to_string()));
        }
        let name = format!("{id}.dataset");
        let now = now_millis();
        let mut props: Vec<(&str, Valu)> = vec![
            (prop::KIND, "dataset".into()),
            (prop::UUID, id.to_string().into()),
            (prop::NAME, name.as_str().into()),
            (prop::CREATED, now.into()),
            (prop::JOB_IDX, 0.into()),
        ];
        let mut transform = None;
        if let Some((menu, config)) = made_with {
            transform = Some(Box::new(Transform {
                menu: Some(Box::new(self.info_of(txn, "menu", menu).map_err(|e| {
                    not_found(e, || MetaError::NoSuchMenu(menu.into()))
                })?)),
                config: Some(Box::new(self.info_of(txn, "config", config).map_err(
                    |e| not_found(e, || MetaError::NoSuchConfig(config.into())),
                )?)),
            }));
            props.extend([(prop::MENU, menu.into()), (prop::CONFIG, config.into())]);
        }
        txn.add_rows(&rows_of(&id.iden(), now, &props))?;
        let info = DatasetObjectInfo {
            transform,
            ..Default::default()
        };
        let object = CronusObject {
            name,
            uuid: id.to_string(),
            info: Some(cronus_object::Info::Dataset(Box::new(info))),
            ..Default::default()
        };
        Ok(txn.blob_set(&info_key(&id.to_string()), &object.encode_to_vec())?)
    }

    /// Returns every dataset, in creation order.
    pub fn datasets(&self) -> Result<Vec<DatasetId>> {
        let kind = Valu::from("dataset");
        let rows = self
            .store
            .rows_by_prop(&PropQuery::new(prop::KIND).valu(&kind))?;
        rows.iter().map(|r| r.iden.as_str().parse()).collect()
    }

    /// Returns the rows of `dataset`, or [`MetaError::NoSuchDataset`].
    pub(super) fn dataset_rows(&self, view: &dyn RowRead, dataset: DatasetId) -> Result<Vec<Row>> {
        let rows = view.rows_by_id(&dataset.iden())?;
        if NodeProps::new(&rows).kind() != Some("dataset") {
            return Err(MetaError::NoSuchDataset(dataset.to_string()));
        }
        Ok(rows)
    }

    /// Returns the menu and configuration uuids of `dataset`, or `None` for a dataset created
    /// without them.
    pub fn dataset_transform(&self, dataset: DatasetId) -> Result<Option<(String, String)>> {
        let rows = self.dataset_rows(&self.store, dataset)?;
        let node = NodeProps::new(&rows);
        match (node.str(prop::MENU), node.str(prop::CONFIG)) {
            (Ok(menu), Ok(config)) => Ok(Some((menu.to_string(), config.to_string()))),
            _ => Ok(None),
        }
    }

    /// Returns whether `dataset` exists.
    pub fn has_dataset(&self, dataset: DatasetId) -> Result<bool> {
        Ok(self.dataset_rows(&self.store, dataset).is_ok())
    }

    /// Removes `dataset` if it has no partitions and no jobs ([`MetaError::NotEmpty`]).
    pub fn remove_dataset(&self, dataset: DatasetId) -> Result<()> {
        self.in_dataset_txn(dataset, |txn| {
            self.dataset_rows(txn, dataset)?;
            let ds = Valu::from(dataset.to_string());
            for of in [prop::PARTITION_OF, prop::JOB_OF] {
                if txn.size_by_prop(&PropQuery::new(of).valu(&ds))? > 0 {
                    return Err(MetaError::NotEmpty(format!("dataset {dataset}")));
                }
            }
            txn.del_rows_by_id(&dataset.iden())?;
            txn.blob_del(&info_key(&dataset.to_string()))?;
            forget_entries_time(txn, &dataset.iden())?;
            Ok(())
        })
    }

    /// Returns `pick(iden)` of every node with `of_prop` = `dataset`, oldest first: one lift,
    /// however many objects the dataset holds.
    fn children<T>(
        &self,
        dataset: DatasetId,
        of_prop: &str,
        pick: impl Fn(&str) -> Option<T>,
    ) -> Result<Vec<T>> {
        self.dataset_rows(&self.store, dataset)?;
        let ds = Valu::from(dataset.to_string());
        let rows = self
            .store
            .rows_by_prop(&PropQuery::new(of_prop).valu(&ds))?;
        rows.iter()
            .map(|r| {
                pick(r.iden.as_str())
                    .ok_or_else(|| MetaError::Corrupt(format!("bad child iden {}", r.iden)))
            })
            .collect()
    }
}

/// Partitions of a dataset.
impl<S: Storage> Metastore<S> {
    /// Adds partition `key` to `dataset`; a key already there is [`MetaError::PartitionExists`].
    pub fn add_partition(&self, dataset: DatasetId, key: &str) -> Result<()> {
        self.in_dataset_txn(dataset, |txn| {
            self.add_partition_in(txn, dataset, key, now_millis())
        })
    }

    /// Adds partition `key` to `dataset` in `txn`, made at `now` (epoch ms: the partitions of
    /// a dataset list in the order of their times).
    pub(crate) fn add_partition_in(
        &self,
        txn: &dyn RowWrite,
        dataset: DatasetId,
        key: &str,
        now: i64,
    ) -> Result<()> {
        check_component("partition key", key)?;
        self.dataset_rows(txn, dataset)?;
        let iden = partition_iden(dataset, key);
        if !txn.rows_by_id(&iden)?.is_empty() {
            return Err(MetaError::PartitionExists {
                dataset: dataset.to_string(),
                key: key.to_string(),
            });
        }
        txn.add_rows(&rows_of(
            &iden,
            now,
            &[
                (prop::KIND, "partition".into()),
                (prop::UUID, iden.as_str().into()),
                (prop::NAME, key.into()),
                (prop::CREATED, now.into()),
                (prop::PARTITION_OF, dataset.to_string().into()),
                (prop::PARTITION, key.into()),
            ],
        ))?;
        entries_changed_in(txn, &dataset.iden(), now, Change::Now)?;
        Ok(())
    }

    /// Returns the partition keys of `dataset`, in the order they were added.
    pub fn partitions(&self, dataset: DatasetId) -> Result<Vec<String>> {
        let prefix = format!("{dataset}/partitions/");
        self.children(dataset, prop::PARTITION_OF, |iden| {
            iden.strip_prefix(&prefix).map(str::to_string)
        })
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

    /// Returns the iden of partition `key` of `dataset`.
    pub fn partition_iden(dataset: DatasetId, key: &str) -> Iden {
        partition_iden(dataset, key)
    }

    /// Removes partition `key` of `dataset` if no object lives in it ([`MetaError::NotEmpty`]).
    pub fn remove_partition(&self, dataset: DatasetId, key: &str) -> Result<()> {
        self.in_dataset_txn(dataset, |txn| {
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
            entries_changed_in(txn, &dataset.iden(), now_millis(), Change::Now)?;
            Ok(())
        })
    }
}

/// Jobs of a dataset.
impl<S: Storage> Metastore<S> {
    /// Opens the next job of `dataset` (the dataset-wide counter, from 0) and returns it.
    pub fn new_job(&self, dataset: DatasetId) -> Result<JobId> {
        self.in_dataset_txn(dataset, |txn| {
            let rows = self.dataset_rows(txn, dataset)?;
            let next = NodeProps::new(&rows).int(prop::JOB_IDX)?;
            let job = match u32::try_from(next) {
                Ok(n) if n <= JobId::MAX.0 => JobId(n),
                _ if next > i64::from(JobId::MAX.0) => {
                    return Err(MetaError::JobsExhausted(dataset.to_string()));
                }
                _ => return Err(MetaError::Corrupt(format!("job counter {next}"))),
            };
            txn.set_rows_by_id_prop(&dataset.iden(), prop::JOB_IDX, &Valu::Int(next + 1))?;
            txn.add_rows(&job_rows(dataset, job))?;
            Ok(job)
        })
    }

    /// Returns the jobs of `dataset`, in order.
    pub fn jobs(&self, dataset: DatasetId) -> Result<Vec<JobId>> {
        let prefix = format!("{dataset}/jobs/");
        let mut jobs = self.children(dataset, prop::JOB_OF, |iden| {
            iden.strip_prefix(&prefix)
                .and_then(|n| n.parse().ok())
                .map(JobId)
        })?;
        jobs.sort();
        Ok(jobs)
    }

    /// Returns whether `dataset` has opened `job`.
    pub fn has_job(&self, dataset: DatasetId, job: JobId) -> Result<bool> {
        Ok(!self.store.rows_by_id(&job_iden(dataset, job))?.is_empty())
    }

    /// Returns the iden of `job` of `dataset`.
    pub fn job_iden(dataset: DatasetId, job: JobId) -> Iden {
        job_iden(dataset, job)
    }

    /// Opens job `job` of `dataset` by number (what `mkdir jobs/<n>` does): the dataset's
    /// counter moves past it, so `new_job` never hands it out again. A job already open is
    /// [`MetaError::JobExists`].
    pub fn open_job(&self, dataset: DatasetId, job: JobId) -> Result<()> {
        self.in_dataset_txn(dataset, |txn| self.open_job_in(txn, dataset, job))
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
        if i64::from(next) > NodeProps::new(&rows).int(prop::JOB_IDX)? {
            txn.set_rows_by_id_prop(&dataset.iden(), prop::JOB_IDX, &Valu::Int(next.into()))?;
        }
        Ok(())
    }

    /// Returns the job counter of `dataset`: the number `new_job` would open next.
    pub fn job_counter(&self, dataset: DatasetId) -> Result<i64> {
        NodeProps::new(&self.dataset_rows(&self.store, dataset)?).int(prop::JOB_IDX)
    }

    /// Removes `job` of `dataset` if no object lives in it under any partition
    /// ([`MetaError::NotEmpty`]). Its number is not handed out again.
    pub fn remove_job(&self, dataset: DatasetId, job: JobId) -> Result<()> {
        self.in_dataset_txn(dataset, |txn| {
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
            if self.entries_in(txn, dataset, job)? > 0 {
                return Err(MetaError::NotEmpty(format!(
                    "job {job} (its histogram, job, table or log entries)"
                )));
            }
            txn.del_rows_by_id(&iden)?;
            forget_entries_time(txn, &iden)?;
            Ok(())
        })
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
}
