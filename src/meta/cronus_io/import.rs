//! Import of a Python Cronus store directory: reads only the files inside it, places every
//! produced file by its Cronus name (`<ds>.job_<n>.part_<key>.<uuid>.<ext>`: the original
//! never fills `FileObjectInfo.partition`), stores all bytes first and then commits the whole
//! catalogue in one transaction, so a failed import leaves nothing behind but unreferenced
//! chunks for `gc`.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::fs::File;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};

use prost::Message;

use super::Report;
use crate::meta::content::Manifest;
use crate::meta::metastore::RegisteredMessage;
use crate::meta::name_rules::check_uuid;
use crate::meta::{
    ContentId, DatasetId, JobId, MetaError, Metastore, ObjectId, ObjectPath, Result, prop, rowjson,
};
use crate::pb::cronus::{Configuration, Menu};
use crate::pb::store::{CronusObject, CronusObjectStore, DatasetObjectInfo, cronus_object};
use crate::storage::retry::transact;
use crate::storage::{Iden, Row, RowWrite, Storage, Valu};

/// A menu or configuration read and stored, waiting for the transaction.
struct StagedMessage {
    kind: &'static str,
    uuid: String,
    name: String,
    info: cronus_object::Info,
    manifest: Manifest,
}

/// A dataset read, its objects' bytes stored, waiting for the transaction.
struct StagedDataset {
    id: DatasetId,
    made_with: Option<(String, String)>,
    partitions: Vec<String>,
    job_counter: u32,
    jobs: BTreeSet<JobId>,
    objects: Vec<StagedObject>,
    entries: Vec<super::entries::StagedEntry>,
}

/// One produced file: where it goes, its identity and its stored bytes.
struct StagedObject {
    path: ObjectPath,
    id: ObjectId,
    manifest: Manifest,
}

/// Imports the Python Cronus store in `dir` (its only `*.cronus.pb`) with the uuids it has, all
/// of it or nothing.
pub fn import_cronus<S: Storage>(m: &Metastore<S>, dir: &Path) -> Result<Report> {
    let dir = dir.canonicalize().map_err(|e| MetaError::file(dir, e))?;
    let store_file = find_store_file(&dir)?;
    let bytes = std::fs::read(&store_file).map_err(|e| MetaError::file(&store_file, e))?;
    let store = CronusObjectStore::decode(bytes.as_slice()).map_err(|e| {
        MetaError::Corrupt(format!(
            "{} is not a CronusObjectStore: {e}",
            store_file.display()
        ))
    })?;
    let mut report = Report {
        store_file: store_file.clone(),
        ..Report::default()
    };
    // Chunks stored before the transaction are kept from gc until it commits.
    let _hold = m.leases().hold_off_gc_for_new_write()?;
    let sidecar = PathBuf::from(
        store_file
            .to_string_lossy()
            .replace(".cronus.pb", ".rows.jsonl"),
    );
    let entry_jobs = super::entries::sidecar_entry_jobs(&sidecar)?;
    let (messages, datasets) = stage(m, &dir, store, &entry_jobs, &mut report)?;
    // The catalogue changes run as one transaction, again from the start (with a fresh
    // count) when another writer of a shared store changed what it read.
    let staged = report;
    transact(m.storage(), |txn| {
        let mut report = staged.clone();
        for msg in &messages {
            let message = RegisteredMessage {
                kind: msg.kind,
                uuid: &msg.uuid,
                name: &msg.name,
                info: msg.info.clone(),
            };
            m.register_message_in(txn, message, &msg.manifest)?;
            report.messages += 1;
        }
        let (mut imported, mut entries) = (HashMap::new(), HashSet::new());
        for ds in &datasets {
            apply_dataset(m, txn, ds, (&mut imported, &mut entries))?;
            report.datasets += 1;
            report.objects += ds.objects.len();
            report.entries += ds.entries.len();
        }
        if sidecar.is_file() {
            let restored = restore_rows(txn, &sidecar, (&imported, &entries), &mut report.changed);
            report.rows = restored?;
            // The rows file's job counters, raised past every job the import opened.
            for ds in &datasets {
                m.raise_job_counter_in(txn, ds.id, ds.job_counter)?;
            }
            // Its rows are written as they are: a folder or link none could have made is
            // refused, with the whole import.
            if let Some(bad) = m.placed_problems(txn)?.into_iter().next() {
                return Err(MetaError::Corrupt(format!("{}: {bad}", sidecar.display())));
            }
        }
        Ok(report)
    })
}

/// Reads every member of `store` from `dir` and stores its bytes; nothing is catalogued yet.
fn stage<S: Storage>(
    m: &Metastore<S>,
    dir: &Path,
    store: CronusObjectStore,
    entry_jobs: &HashMap<String, JobId>,
    report: &mut Report,
) -> Result<(Vec<StagedMessage>, Vec<StagedDataset>)> {
    let (mut messages, mut datasets) = (Vec::new(), Vec::new());
    for obj in store.info.map(|i| i.objects).unwrap_or_default() {
        match &obj.info {
            Some(cronus_object::Info::Menu(_) | cronus_object::Info::Config(_)) => {
                messages.push(stage_message(m, dir, obj)?);
            }
            Some(cronus_object::Info::Dataset(info)) => {
                let mut ds = stage_dataset(m, dir, &obj, info, report)?;
                ds.entries =
                    super::entries::stage_entries(m, dir, (ds.id, info), entry_jobs, report)?;
                for e in &ds.entries {
                    ds.job_counter = ds.job_counter.max(e.job.0 + 1);
                    ds.jobs.insert(e.job);
                }
                datasets.push(ds);
            }
            _ => report.skipped.push(format!(
                "{}: not a menu, configuration or dataset",
                obj.name
            )),
        }
    }
    Ok((messages, datasets))
}

fn stage_message<S: Storage>(
    m: &Metastore<S>,
    dir: &Path,
    obj: CronusObject,
) -> Result<StagedMessage> {
    let bytes = read_member(dir, &obj)?;
    let bad =
        |e: prost::DecodeError| MetaError::Corrupt(format!("{} does not decode: {e}", obj.name));
    let (kind, uuid, name, encoded) = match &obj.info {
        Some(cronus_object::Info::Menu(_)) => {
            let mut menu = Menu::decode(bytes.as_slice()).map_err(bad)?;
            if menu.uuid.is_empty() {
                (menu.uuid, menu.name) = (obj.uuid.clone(), obj.name.clone());
            }
            check_uuid("menu uuid", &menu.uuid)?;
            (
                "menu",
                menu.uuid.clone(),
                menu.name.clone(),
                menu.encode_to_vec(),
            )
        }
        _ => {
            let mut config = Configuration::decode(bytes.as_slice()).map_err(bad)?;
            if config.uuid.is_empty() {
                (config.uuid, config.name) = (obj.uuid.clone(), obj.name.clone());
            }
            check_uuid("configuration uuid", &config.uuid)?;
            let (uuid, name) = (config.uuid.clone(), config.name.clone());
            ("config", uuid, name, config.encode_to_vec())
        }
    };
    let manifest = m
        .content()
        .write_chunks(&mut encoded.as_slice(), &mut |_| {})?;
    let info = obj.info.expect("a menu or configuration");
    Ok(StagedMessage {
        kind,
        uuid,
        name,
        info,
        manifest,
    })
}

fn stage_dataset<S: Storage>(
    m: &Metastore<S>,
    dir: &Path,
    obj: &CronusObject,
    info: &DatasetObjectInfo,
    report: &mut Report,
) -> Result<StagedDataset> {
    let id: DatasetId = obj.uuid.parse()?;
    let mut ds = StagedDataset {
        id,
        made_with: made_with(obj, info)?,
        partitions: Vec::new(),
        job_counter: u32::try_from(info.job_idx).map_err(|_| {
            MetaError::Corrupt(format!(
                "dataset {id}: job_idx {} is negative",
                info.job_idx
            ))
        })?,
        jobs: BTreeSet::new(),
        objects: Vec::new(),
        entries: Vec::new(),
    };
    for key in &info.partitions {
        add_partition_once(&mut ds.partitions, key);
    }
    for file in &info.files {
        let Some((key, job)) = place(id, file)? else {
            report.skipped.push(format!(
                "{}: a file registered from outside the store (its bytes are not in it)",
                file.name
            ));
            continue;
        };
        add_partition_once(&mut ds.partitions, &key);
        ds.job_counter = ds.job_counter.max(job.0 + 1);
        ds.jobs.insert(job);
        let source = member_path(dir, file)?;
        let mut reader = File::open(&source).map_err(|e| MetaError::file(&source, e))?;
        let manifest = m
            .content()
            .write_chunks(&mut reader, &mut |_| {})
            .map_err(|e| with_file(e, &source))?;
        ds.objects.push(StagedObject {
            path: ObjectPath::new(id, &key, job, &file.name),
            id: file.uuid.parse()?,
            manifest,
        });
    }
    Ok(ds)
}

fn add_partition_once(partitions: &mut Vec<String>, key: &str) {
    // The original's new_partition never checked for duplicates.
    if !partitions.iter().any(|k| k == key) {
        partitions.push(key.to_string());
    }
}

/// The menu and configuration a dataset was made with: both, or neither (`mkdir`).
fn made_with(obj: &CronusObject, info: &DatasetObjectInfo) -> Result<Option<(String, String)>> {
    let transform = info.transform.as_deref();
    let uuid_of = |o: Option<&CronusObject>| o.map(|o| o.uuid.clone()).unwrap_or_default();
    let menu = uuid_of(transform.and_then(|t| t.menu.as_deref()));
    let config = uuid_of(transform.and_then(|t| t.config.as_deref()));
    match (menu.is_empty(), config.is_empty()) {
        (true, true) => Ok(None),
        (false, false) => Ok(Some((menu, config))),
        _ => Err(MetaError::Corrupt(format!(
            "dataset {}: its transform names a menu or a configuration, not both",
            obj.uuid
        ))),
    }
}

/// Returns the partition key and job of a produced file, from its info or its name
/// `<ds>.job_<n>.part_<key>.<uuid>.<ext>`; `None` for a file registered from outside the store
/// (`<ds>.part_<key>.<hash>.<basename>`, no job).
fn place(ds: DatasetId, file: &CronusObject) -> Result<Option<(String, JobId)>> {
    let bad = |why: &str| MetaError::Corrupt(format!("{}: {why}", file.name));
    let Some(cronus_object::Info::File(info)) = &file.info else {
        return Err(bad("not a file entry"));
    };
    let rest = file
        .name
        .strip_prefix(&format!("{ds}."))
        .ok_or_else(|| bad("the name does not start with its dataset's uuid"))?;
    let Some(rest) = rest.strip_prefix("job_") else {
        return match rest.starts_with("part_") {
            true => Ok(None),
            false => Err(bad("the name has no job_<n> or part_<key>")),
        };
    };
    let (job, rest) = rest
        .split_once(".part_")
        .ok_or_else(|| bad("the name has no .part_<key>"))?;
    let job = JobId::parse_canonical(job)
        .ok_or_else(|| bad("the job number is not one from 0 to 2147483646"))?;
    if !info.partition.is_empty() {
        return Ok(Some((info.partition.clone(), job)));
    }
    let key = rest
        .rsplit_once(&format!(".{}.", file.uuid))
        .map(|(key, _)| key)
        .filter(|key| !key.is_empty())
        .ok_or_else(|| bad("the name has no partition key before the file's uuid"))?;
    Ok(Some((key.to_string(), job)))
}

/// Catalogues a staged dataset in `txn`; records each object's content id in `imported`.
fn apply_dataset<S: Storage>(
    m: &Metastore<S>,
    txn: &dyn RowWrite,
    ds: &StagedDataset,
    (imported, entries): (&mut HashMap<Iden, ContentId>, &mut HashSet<Iden>),
) -> Result<()> {
    let made_with = ds.made_with.as_ref().map(|(m, c)| (m.as_str(), c.as_str()));
    m.insert_dataset_in(txn, ds.id, made_with)?;
    // One millisecond apart, so that they list in the store's order.
    let now = crate::storage::now_millis();
    for (key, at) in ds.partitions.iter().zip(now..) {
        m.add_partition_in(txn, ds.id, key, at)?;
    }
    for job in &ds.jobs {
        m.open_job_in(txn, ds.id, *job)?;
    }
    m.raise_job_counter_in(txn, ds.id, ds.job_counter)?;
    for o in &ds.objects {
        m.import_object_in(txn, &o.path, (o.id, &o.path.name), &o.manifest)?;
        imported.insert(o.id.iden(), o.manifest.id);
    }
    for e in &ds.entries {
        let manifest = e.manifest.as_ref();
        m.register_entry_in(txn, (ds.id, e.job), &e.object, manifest, e.kind)?;
        let iden = Iden::new(&e.object.uuid)?;
        if let Some(manifest) = manifest {
            imported.insert(iden.clone(), manifest.id);
        }
        entries.insert(iden);
    }
    Ok(())
}

fn find_store_file(dir: &Path) -> Result<PathBuf> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(|e| MetaError::file(dir, e))? {
        let path = entry.map_err(|e| MetaError::file(dir, e))?.path();
        if path.to_string_lossy().ends_with(".cronus.pb") {
            found.push(path);
        }
    }
    match found.len() {
        1 => Ok(found.remove(0)),
        0 => Err(MetaError::Corrupt(format!(
            "no *.cronus.pb file in {}",
            dir.display()
        ))),
        n => Err(MetaError::Corrupt(format!(
            "{n} *.cronus.pb files in {}: import one store at a time",
            dir.display()
        ))),
    }
}

/// Returns the file of a member: the one named after it in `dir` (where the original's
/// key-value store puts it), never anything outside `dir`, whatever its address says.
pub(super) fn member_path(dir: &Path, obj: &CronusObject) -> Result<PathBuf> {
    let name = &obj.name;
    if name.is_empty() || name.contains('/') || name == "." || name == ".." || name.contains('\0') {
        return Err(MetaError::Corrupt(format!(
            "{name:?}: not a file name in the store's directory"
        )));
    }
    let beside = dir.join(name);
    let real = beside
        .canonicalize()
        .map_err(|e| MetaError::file(&beside, e))?;
    if !real.starts_with(dir) || !real.is_file() {
        return Err(MetaError::Corrupt(format!(
            "{}: not a file inside {}",
            beside.display(),
            dir.display()
        )));
    }
    Ok(real)
}

fn read_member(dir: &Path, obj: &CronusObject) -> Result<Vec<u8>> {
    let path = member_path(dir, obj)?;
    std::fs::read(&path).map_err(|e| MetaError::file(&path, e))
}

/// Names `path` in an I/O error that does not say which file it was about.
fn with_file(e: MetaError, path: &Path) -> MetaError {
    match e {
        MetaError::Io(io) => MetaError::file(path, io),
        other => other,
    }
}

/// Rows whose values follow from an object's bytes: the import's own, computed from the
/// bytes it read, win over the sidecar's when the two disagree on the content.
fn from_the_bytes(p: &str) -> bool {
    [
        prop::CONTENT,
        prop::SIZE,
        prop::TYPE,
        prop::VERSION,
        prop::HISTORY,
        prop::MODIFIED,
    ]
    .contains(&p)
        || p.starts_with(prop::ARROW_PREFIX)
}

/// Replaces the rows of every node named in the sidecar with the sidecar's rows, except the
/// rows that follow from the bytes of an object whose file no longer holds the content the
/// sidecar records (those objects are listed in `changed`).
fn restore_rows(
    txn: &dyn RowWrite,
    file: &Path,
    (imported, entries): (&HashMap<Iden, ContentId>, &HashSet<Iden>),
    changed: &mut Vec<String>,
) -> Result<usize> {
    let mut nodes: HashMap<Iden, Vec<Row>> = HashMap::new();
    let reader = BufReader::new(File::open(file).map_err(|e| MetaError::file(file, e))?);
    for (n, line) in reader.lines().enumerate() {
        let row = rowjson::from_json_line(&line.map_err(|e| MetaError::file(file, e))?)
            .map_err(|e| MetaError::Corrupt(format!("{} line {}: {e}", file.display(), n + 1)))?;
        nodes.entry(row.iden.clone()).or_default().push(row);
    }
    let mut restored = 0;
    for (iden, mut rows) in nodes {
        let entry = Valu::from("entry");
        if rows.iter().any(|r| r.prop == prop::KIND && r.valu == entry) && !entries.contains(&iden)
        {
            continue; // an entry the import skipped: its rows alone would be no entry
        }
        let recorded = rows.iter().find(|r| r.prop == prop::CONTENT);
        let bytes_differ = match (imported.get(&iden), recorded.map(|r| &r.valu)) {
            (Some(id), Some(Valu::Str(s))) => *s != id.to_string(),
            _ => false,
        };
        if bytes_differ {
            rows.retain(|r| !from_the_bytes(&r.prop));
            let mut props: Vec<String> =
                txn.rows_by_id(&iden)?.into_iter().map(|r| r.prop).collect();
            props.dedup(); // Rows of one node come ordered by prop.
            for p in props.iter().filter(|p| !from_the_bytes(p)) {
                txn.del_rows_by_id_prop(&iden, p, None)?;
            }
            changed.push(iden.to_string());
        } else {
            txn.del_rows_by_id(&iden)?;
        }
        txn.add_rows(&rows)?;
        restored += rows.len();
    }
    Ok(restored)
}
