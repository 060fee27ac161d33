//! Export to, and import from, the Python Cronus on-disk layout: `<uuid>.<name>.cronus.pb` (the
//! `CronusObjectStore` message) with every menu, configuration and object file beside it under
//! its Cronus name, as `BaseObjectStore(root, name, store_uuid=…)` reads them. A sidecar
//! `<uuid>.<name>.rows.jsonl` carries every row, so a cronusfs → cronusfs round trip keeps user
//! rows, times, object names and version history too; the Python Cronus ignores it.

use std::fs::File;
use std::io::{BufRead, BufReader, BufWriter, Write};
use std::path::{Path, PathBuf};

use prost::Message;

use super::{DatasetId, JobId, MetaError, Metastore, ObjectPath, Result, rowjson};
use crate::pb::cronus::{Configuration, Menu};
use crate::pb::store::{
    CronusObject, CronusObjectStore, CronusObjectStoreInfo, DatasetObjectInfo, cronus_object,
};
use crate::storage::{Iden, Row, Storage};

/// What an export or import did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Report {
    /// The `.cronus.pb` file written or read.
    pub store_file: PathBuf,
    /// Menus and configurations.
    pub messages: usize,
    /// Datasets.
    pub datasets: usize,
    /// Object files.
    pub objects: usize,
    /// Rows restored from the sidecar (import only).
    pub rows: usize,
    /// Entries an import could not place, with the reason.
    pub skipped: Vec<String>,
}

fn file_url(path: &Path) -> String {
    format!("file://{}", path.display())
}

/// Writes the whole catalogue into `dir` (made if missing) as Python Cronus store `name`.
pub fn export_cronus<S: Storage>(m: &Metastore<S>, dir: &Path, name: &str) -> Result<Report> {
    std::fs::create_dir_all(dir)?;
    let dir = dir.canonicalize()?;
    let store_uuid = uuid::Uuid::new_v4().to_string();
    let store_name = format!("{store_uuid}.{name}.cronus.pb");
    let mut report = Report {
        store_file: dir.join(&store_name),
        ..Report::default()
    };
    let mut objects = Vec::new();
    for kind in ["menu", "config"] {
        for uuid in m.registered(kind)? {
            let mut obj = m.info(&uuid)?;
            let bytes = match kind {
                "menu" => m.menu(&uuid)?.encode_to_vec(),
                _ => m.config(&uuid)?.encode_to_vec(),
            };
            let file = dir.join(&obj.name);
            std::fs::write(&file, bytes)?;
            (obj.parent_uuid, obj.address) = (store_uuid.clone(), file_url(&file));
            objects.push(obj);
            report.messages += 1;
        }
    }
    for ds in m.datasets()? {
        objects.push(export_dataset(m, ds, &dir, &store_uuid, &mut report)?);
    }
    let info = CronusObjectStoreInfo {
        created: Some(rowjson::timestamp_now()),
        objects,
        ..Default::default()
    };
    let message = CronusObjectStore {
        name: store_name.clone(),
        uuid: store_uuid.clone(),
        address: file_url(&report.store_file),
        info: Some(info),
        ..Default::default()
    };
    std::fs::write(&report.store_file, message.encode_to_vec())?;
    write_rows(m, &dir.join(format!("{store_uuid}.{name}.rows.jsonl")))?;
    Ok(report)
}

fn export_dataset<S: Storage>(
    m: &Metastore<S>,
    ds: DatasetId,
    dir: &Path,
    store: &str,
    report: &mut Report,
) -> Result<CronusObject> {
    let mut obj = m.info(&ds.to_string())?;
    let mut info = match obj.info.take() {
        Some(cronus_object::Info::Dataset(d)) => *d,
        _ => DatasetObjectInfo::default(),
    };
    info.partitions = m.partitions(ds)?;
    info.job_idx = i32::try_from(m.jobs(ds)?.len()).unwrap_or(i32::MAX);
    for meta in m.list(ds, "", "")? {
        let file = dir.join(&meta.cronus_name);
        std::io::copy(
            &mut m.open(&meta)?,
            &mut BufWriter::new(File::create(&file)?),
        )?;
        let mut child = m.info(&meta.id.to_string())?;
        child.address = file_url(&file);
        info.files.push(child);
        report.objects += 1;
    }
    (obj.parent_uuid, obj.info) = (
        store.to_string(),
        Some(cronus_object::Info::Dataset(Box::new(info))),
    );
    report.datasets += 1;
    Ok(obj)
}

fn write_rows<S: Storage>(m: &Metastore<S>, file: &Path) -> Result<()> {
    let mut out = BufWriter::new(File::create(file)?);
    for chunk in m.storage().backup_rows(1000) {
        for row in chunk? {
            writeln!(out, "{}", rowjson::to_json_line(&row))?;
        }
    }
    Ok(out.flush()?)
}

/// Imports the Python Cronus store in `dir` (its only `*.cronus.pb`) with the uuids it has.
pub fn import_cronus<S: Storage>(m: &Metastore<S>, dir: &Path) -> Result<Report> {
    let store_file = find_store_file(dir)?;
    let bytes = std::fs::read(&store_file)?;
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
    let objects = store.info.map(|i| i.objects).unwrap_or_default();
    // Menus and configurations first: datasets refer to them.
    let (messages, rest): (Vec<_>, Vec<_>) = objects.into_iter().partition(|o| {
        matches!(
            o.info,
            Some(cronus_object::Info::Menu(_) | cronus_object::Info::Config(_))
        )
    });
    for obj in messages.iter().chain(&rest) {
        match &obj.info {
            Some(cronus_object::Info::Menu(info)) => {
                let menu = Menu::decode(read_member(dir, obj)?.as_slice())
                    .map_err(|e| bad_member(obj, e))?;
                m.register_menu(&with_identity_menu(menu, obj), info.clone())?;
                report.messages += 1;
            }
            Some(cronus_object::Info::Config(info)) => {
                let config = Configuration::decode(read_member(dir, obj)?.as_slice())
                    .map_err(|e| bad_member(obj, e))?;
                m.register_config(&with_identity_config(config, obj), info.clone())?;
                report.messages += 1;
            }
            Some(cronus_object::Info::Dataset(info)) => {
                import_dataset(m, dir, obj, info, &mut report)?
            }
            _ => report.skipped.push(format!(
                "{}: not a menu, configuration or dataset",
                obj.name
            )),
        }
    }
    let sidecar = PathBuf::from(
        store_file
            .to_string_lossy()
            .replace(".cronus.pb", ".rows.jsonl"),
    );
    if sidecar.is_file() {
        report.rows = restore_rows(m, &sidecar)?;
    }
    Ok(report)
}

fn find_store_file(dir: &Path) -> Result<PathBuf> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir(dir)? {
        let path = entry?.path();
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

/// Reads a member's bytes: the file named after it beside the store, else its `file://` address.
fn read_member(dir: &Path, obj: &CronusObject) -> Result<Vec<u8>> {
    let beside = dir.join(&obj.name);
    if !obj.name.is_empty() && !obj.name.contains('/') && beside.is_file() {
        return Ok(std::fs::read(beside)?);
    }
    match obj.address.strip_prefix("file://") {
        Some(path) => Ok(std::fs::read(path)?),
        None => Err(MetaError::Corrupt(format!(
            "no file for {} (address {:?})",
            obj.name, obj.address
        ))),
    }
}

fn bad_member(obj: &CronusObject, e: prost::DecodeError) -> MetaError {
    MetaError::Corrupt(format!("{} does not decode: {e}", obj.name))
}

fn with_identity_menu(mut menu: Menu, obj: &CronusObject) -> Menu {
    if menu.uuid.is_empty() {
        (menu.uuid, menu.name) = (obj.uuid.clone(), obj.name.clone());
    }
    menu
}

fn with_identity_config(mut config: Configuration, obj: &CronusObject) -> Configuration {
    if config.uuid.is_empty() {
        (config.uuid, config.name) = (obj.uuid.clone(), obj.name.clone());
    }
    config
}

fn import_dataset<S: Storage>(
    m: &Metastore<S>,
    dir: &Path,
    obj: &CronusObject,
    info: &DatasetObjectInfo,
    report: &mut Report,
) -> Result<()> {
    let ds: DatasetId = obj.uuid.parse()?;
    let transform = info.transform.as_deref();
    let menu = transform
        .and_then(|t| t.menu.as_ref())
        .map(|o| o.uuid.clone())
        .unwrap_or_default();
    let config = transform
        .and_then(|t| t.config.as_ref())
        .map(|o| o.uuid.clone())
        .unwrap_or_default();
    m.register_dataset_as(ds, &menu, &config)?;
    for key in &info.partitions {
        m.add_partition(ds, key)?;
    }
    for _ in 0..info.job_idx.max(0) {
        m.new_job(ds)?;
    }
    for file in &info.files {
        let Some(job) = job_of(&file.name) else {
            report.skipped.push(format!(
                "{}: registered without a job (a pre-existing file)",
                file.name
            ));
            continue;
        };
        let Some(cronus_object::Info::File(f)) = &file.info else {
            continue;
        };
        let path = ObjectPath::new(ds, &f.partition, job, &file.name);
        let bytes = read_member(dir, file)?;
        m.put_object_as(&path, file.uuid.parse()?, &file.name, &mut bytes.as_slice())?;
        report.objects += 1;
    }
    report.datasets += 1;
    Ok(())
}

/// Returns n of a produced file's name `<dataset>.job_<n>.part_<key>.<uuid>.<ext>`.
fn job_of(name: &str) -> Option<JobId> {
    let rest = name.split(".job_").nth(1)?;
    rest.split('.').next()?.parse().ok().map(JobId)
}

/// Replaces the rows of every node named in the sidecar with the sidecar's rows.
fn restore_rows<S: Storage>(m: &Metastore<S>, file: &Path) -> Result<usize> {
    let mut rows: Vec<Row> = Vec::new();
    for (n, line) in BufReader::new(File::open(file)?).lines().enumerate() {
        let row = rowjson::from_json_line(&line?)
            .map_err(|e| MetaError::Corrupt(format!("{} line {}: {e}", file.display(), n + 1)))?;
        rows.push(row);
    }
    let txn = m.storage().begin()?;
    let mut idens: Vec<&Iden> = rows.iter().map(|r| &r.iden).collect();
    idens.dedup();
    for iden in idens {
        txn.del_rows_by_id(iden)?;
    }
    txn.add_rows(&rows)?;
    txn.commit()?;
    Ok(rows.len())
}
