//! A dataset's job entries (histograms, t-digests, job metadata, tables, logs) in the Python
//! Cronus layout: exported into the dataset's `hists`, `tdigests`, `jobs`, `tables` and
//! `logs`, each one's bytes in a file under its name; imported from there, each one's job
//! read from its name (`<ds>.job_<n>.<uuid>.…`), or from the sidecar when the name does not
//! say it (a table's is its own).

use std::collections::HashMap;
use std::fs::File;
use std::io::{BufRead, BufReader, BufWriter};
use std::path::Path;

use super::Report;
use crate::meta::content::Manifest;
use crate::meta::metastore::ENTRY_JOB;
use crate::meta::name_rules::{check_canonical_uuid, check_entry_name};
use crate::meta::{DatasetId, JobId, Metastore, Result, entry_kind, rowjson};
use crate::pb::store::{CronusObject, DatasetObjectInfo, cronus_object::Info};
use crate::storage::{Storage, Valu};

/// One entry read from the store's directory: its job, message and stored bytes.
pub(super) struct StagedEntry {
    pub job: JobId,
    pub object: CronusObject,
    pub kind: &'static str,
    pub manifest: Option<Manifest>,
}

/// Writes the entries of `ds` into `info` and their bytes beside it in `dir`.
pub(super) fn export_entries<S: Storage>(
    m: &Metastore<S>,
    ds: DatasetId,
    (dir, names): (&Path, &mut super::FileNames),
    info: &mut DatasetObjectInfo,
    report: &mut Report,
) -> Result<()> {
    for entry in m.entries(ds)? {
        let mut child = entry.object;
        child.name = names.claim(&child.name, &child.uuid, "entry");
        if let Some(id) = entry.content {
            let file = dir.join(&child.name);
            let mut out = BufWriter::new(File::create(&file)?);
            std::io::copy(&mut m.content().reader(id)?, &mut out)?;
            child.address = super::file_url(&file);
        }
        let list = match &child.info {
            Some(Info::Hists(_)) => &mut info.hists,
            Some(Info::Tdigests(_)) => &mut info.tdigests,
            Some(Info::Job(_)) => &mut info.jobs,
            Some(Info::Table(_)) => &mut info.tables,
            Some(Info::Log(_)) => &mut info.logs,
            Some(Info::Menu(_) | Info::Config(_) | Info::Dataset(_) | Info::File(_)) | None => {
                continue;
            }
        };
        list.push(child);
        report.entries += 1;
    }
    Ok(())
}

/// Reads the entries of dataset `ds` (`info`) from `dir` and stores their bytes; an entry
/// whose job neither its name nor `jobs` (the sidecar's) says is skipped and reported.
pub(super) fn stage_entries<S: Storage>(
    m: &Metastore<S>,
    dir: &Path,
    (ds, info): (DatasetId, &DatasetObjectInfo),
    jobs: &HashMap<String, JobId>,
    report: &mut Report,
) -> Result<Vec<StagedEntry>> {
    let lists = [
        &info.hists,
        &info.tdigests,
        &info.jobs,
        &info.tables,
        &info.logs,
    ];
    let mut staged = Vec::new();
    for object in lists.into_iter().flatten() {
        let kind = object.info.as_ref().and_then(entry_kind);
        // The rows file, when there is one, says the job the entry was in; else its name.
        let job = jobs
            .get(&object.uuid)
            .copied()
            .or_else(|| job_in_name(ds, &object.name));
        let checked = check_canonical_uuid("entry uuid", &object.uuid)
            .and_then(|()| check_entry_name(&object.name));
        if let Err(e) = checked {
            report.skipped.push(format!("{}: {e}", object.name));
            continue;
        }
        let (Some(kind), Some(job)) = (kind, job) else {
            report.skipped.push(format!(
                "{}: a histogram, job, log or table entry whose job its name does not say",
                object.name
            ));
            continue;
        };
        // A log registered and never written has no file: its entry has no bytes.
        let manifest = match super::import::member_path(dir, object) {
            Ok(path) => {
                let mut file =
                    File::open(&path).map_err(|e| crate::meta::MetaError::file(&path, e))?;
                Some(m.content().write_chunks(&mut file, &mut |_| {})?)
            }
            Err(_) => None,
        };
        staged.push(StagedEntry {
            job,
            object: object.clone(),
            kind,
            manifest,
        });
    }
    Ok(staged)
}

/// The job an entry's original name says: `<ds>.job_<n>.<uuid>.<suffix>`.
fn job_in_name(ds: DatasetId, name: &str) -> Option<JobId> {
    let rest = name.strip_prefix(&format!("{ds}.job_"))?;
    JobId::parse_canonical(rest.split('.').next()?)
}

/// The job of every entry the sidecar `file` records (`cronus:entry_job` rows), by uuid.
pub(super) fn sidecar_entry_jobs(file: &Path) -> Result<HashMap<String, JobId>> {
    let mut jobs = HashMap::new();
    if !file.is_file() {
        return Ok(jobs);
    }
    let reader =
        BufReader::new(File::open(file).map_err(|e| crate::meta::MetaError::file(file, e))?);
    for line in reader.lines() {
        let line = line.map_err(|e| crate::meta::MetaError::file(file, e))?;
        if !line.contains(ENTRY_JOB) {
            continue;
        }
        let Ok(row) = rowjson::from_json_line(&line) else {
            continue; // the restore reads every line again, and says which is bad
        };
        if let (true, Valu::Int(job)) = (row.prop == ENTRY_JOB, &row.valu)
            && let Ok(job) = u32::try_from(*job)
        {
            jobs.insert(row.iden.to_string(), JobId(job));
        }
    }
    Ok(jobs)
}
