//! Export to, and import from, the Python Cronus on-disk layout: `<uuid>.<name>.cronus.pb` (the
//! `CronusObjectStore` message) with every menu, configuration and object file beside it under
//! its Cronus name, as `BaseObjectStore(root, name, store_uuid=…)` reads them. A sidecar
//! `<uuid>.<name>.rows.jsonl` carries every row, so a cronusfs → cronusfs round trip keeps user
//! rows, times, object names and version history too; the Python Cronus ignores it.

mod entries;
mod import;

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use prost::Message;

use super::{DatasetId, MetaError, Metastore, Result, rowjson};
use crate::pb::store::{
    CronusObject, CronusObjectStore, CronusObjectStoreInfo, DatasetObjectInfo, cronus_object,
};
use crate::storage::Storage;

pub use import::import_cronus;

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
    /// Job entries: histograms, t-digests, job metadata, tables and logs.
    pub entries: usize,
    /// Rows restored from the sidecar (import only).
    pub rows: usize,
    /// Entries an import could not place, with the reason.
    pub skipped: Vec<String>,
    /// Objects (uuids) whose file held other bytes than the content id the sidecar records:
    /// imported as the file holds them (import only).
    pub changed: Vec<String>,
}

/// The names of the files an export wrote so far.
#[derive(Default)]
struct FileNames {
    taken: std::collections::HashSet<String>,
}

impl FileNames {
    /// The name a member is exported under: its own when that is a plain file name no other
    /// member took, else `<uuid>.<kind>.dat` (the original's own naming). A name from the
    /// store (a menu registered with none, or `../x`, two tables both named `schema.pb`, a
    /// name over 255 bytes) never writes outside the export's directory nor over another
    /// member's file, and the member's entry names the file it was written to, as the
    /// importer and the original read it.
    fn claim(&mut self, name: &str, uuid: &str, kind: &str) -> String {
        let plain = !name.is_empty()
            && name.len() <= 255
            && !name.contains('/')
            && !name.contains('\0')
            && name != "."
            && name != "..";
        let mut chosen = match plain && !self.taken.contains(name) {
            true => name.to_string(),
            false => format!("{uuid}.{kind}.dat"),
        };
        // A member may be named as another's fallback: numbered until free.
        let mut n = 0;
        while self.taken.contains(&chosen) {
            n += 1;
            chosen = format!("{uuid}.{kind}.{n}.dat");
        }
        self.taken.insert(chosen.clone());
        chosen
    }
}

fn file_url(path: &Path) -> String {
    format!("file://{}", path.display())
}

/// Writes the whole catalogue into `dir` (made if missing) as Python Cronus store `name`.
pub fn export_cronus<S: Storage>(m: &Metastore<S>, dir: &Path, name: &str) -> Result<Report> {
    let store = (uuid::Uuid::new_v4().to_string(), rowjson::timestamp_now());
    export_as(m, dir, name, store)
}

/// [`export_cronus`] of the catalogue as it was at `at` (µs; `m` is [`Metastore::at`] of
/// it): the Cronus store is dated `at` and its uuid is derived from the store and `at`, so
/// two exports at one time into one directory are the same bytes.
pub fn export_cronus_at<S: Storage>(
    m: &Metastore<S>,
    dir: &Path,
    name: &str,
    at: i64,
) -> Result<Report> {
    let made = m.storage().blob_get(crate::storage::keys::SYN_CREATED)?;
    let mut seed = made.unwrap_or_default();
    seed.extend_from_slice(&at.to_be_bytes());
    let hash = blake3::hash(&seed);
    let uuid = uuid::Builder::from_random_bytes(hash.as_bytes()[..16].try_into().expect("16"));
    let created = prost_types::Timestamp {
        seconds: at.div_euclid(1_000_000),
        nanos: (at.rem_euclid(1_000_000) * 1000) as i32,
    };
    export_as(m, dir, name, (uuid.into_uuid().to_string(), created))
}

/// Exports `m` into `dir` as the Cronus store `name` with uuid and creation time `store`.
fn export_as<S: Storage>(
    m: &Metastore<S>,
    dir: &Path,
    name: &str,
    (store_uuid, created): (String, prost_types::Timestamp),
) -> Result<Report> {
    std::fs::create_dir_all(dir)?;
    let dir = dir.canonicalize()?;
    let store_name = format!("{store_uuid}.{name}.cronus.pb");
    let mut report = Report {
        store_file: dir.join(&store_name),
        ..Report::default()
    };
    let mut names = FileNames::default();
    names.taken.insert(store_name.clone());
    names
        .taken
        .insert(format!("{store_uuid}.{name}.rows.jsonl"));
    // Objects claim their names first: an object's name is where the importer reads its
    // dataset, partition and job, so it is never the one to give way.
    let mut datasets = Vec::new();
    for ds in m.datasets()? {
        let store = (store_uuid.as_str(), &mut names);
        datasets.push((ds, export_dataset(m, ds, &dir, store, &mut report)?));
    }
    for (ds, obj) in &mut datasets {
        if let Some(cronus_object::Info::Dataset(info)) = &mut obj.info {
            entries::export_entries(m, *ds, (&dir, &mut names), info, &mut report)?;
        }
    }
    let mut objects = Vec::new();
    for kind in ["menu", "config"] {
        for uuid in m.registered(kind)? {
            let mut obj = m.info(&uuid)?;
            let bytes = match kind {
                "menu" => m.menu(&uuid)?.encode_to_vec(),
                _ => m.config(&uuid)?.encode_to_vec(),
            };
            obj.name = names.claim(&obj.name, &uuid, kind);
            let file = dir.join(&obj.name);
            std::fs::write(&file, bytes)?;
            (obj.parent_uuid, obj.address) = (store_uuid.clone(), file_url(&file));
            objects.push(obj);
            report.messages += 1;
        }
    }
    objects.extend(datasets.into_iter().map(|(_, obj)| obj));
    let info = CronusObjectStoreInfo {
        created: Some(created),
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
    (store, names): (&str, &mut FileNames),
    report: &mut Report,
) -> Result<CronusObject> {
    let mut obj = m.info(&ds.to_string())?;
    let mut info = match obj.info.take() {
        Some(cronus_object::Info::Dataset(d)) => *d,
        _ => DatasetObjectInfo::default(),
    };
    info.partitions = m.partitions(ds)?;
    info.job_idx = i32::try_from(m.job_counter(ds)?)
        .map_err(|_| MetaError::Corrupt(format!("dataset {ds}: job counter out of range")))?;
    for meta in m.list(ds, "", "")? {
        let mut child = m.info(&meta.id.to_string())?;
        child.name = names.claim(&meta.cronus_name, &meta.id.to_string(), "object");
        let file = dir.join(&child.name);
        std::io::copy(
            &mut m.open(&meta)?,
            &mut BufWriter::new(File::create(&file)?),
        )?;
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
