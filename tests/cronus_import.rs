//! `import-cronus` of stores laid out exactly as the original Python Cronus writes them
//! (seed-systems §1.4-1.5: `FileObjectInfo.partition` left empty, the partition key and job only
//! in the object's name, histograms and job messages beside the files, files registered from
//! outside the store), and of crafted or damaged ones: all of it or nothing, only files inside
//! the directory, bounded by what the store holds, errors that name the file.

use std::io::Read;
use std::path::{Path, PathBuf};

use cronusfs::meta::cronus_io::{export_cronus, import_cronus};
use cronusfs::meta::{ContentId, DatasetId, JobId, MetaError, Metastore, ObjectPath};
use cronusfs::pb::cronus::{Configuration, Menu};
use cronusfs::pb::store::{
    ConfigObjectInfo, CronusObject, CronusObjectStore, CronusObjectStoreInfo, DatasetObjectInfo,
    FileObjectAuxInfo, FileObjectInfo, HistsObjectInfo, MenuObjectInfo, Transform, cronus_object,
};
use cronusfs::storage::{MemoryStore, RocksStore, Storage};
use prost::Message;

use crate::arrow_meta::arrow_file;

/// A store directory as `BaseObjectStore(root, "test")` leaves it after `save_store()`.
struct Original {
    root: PathBuf,
    store_uuid: String,
    menu: CronusObject,
    config: CronusObject,
    dataset: DatasetId,
    info: DatasetObjectInfo,
}

fn url(root: &Path, name: &str) -> String {
    format!("file://{}", root.join(name).display())
}

impl Original {
    /// Registers a menu and a configuration, a dataset made with them and `keys`; the caller
    /// adds files and saves.
    fn new(root: &Path, keys: &[&str]) -> Self {
        std::fs::create_dir_all(root).unwrap();
        let store_uuid = uuid::Uuid::new_v4().to_string();
        let message = |kind: &str| {
            let uuid = uuid::Uuid::new_v4().to_string();
            let name = format!("{uuid}.{kind}.dat");
            let (bytes, info) = match kind {
                "menu" => (
                    Menu {
                        uuid: uuid.clone(),
                        name: name.clone(),
                        graphs: vec![],
                    }
                    .encode_to_vec(),
                    cronus_object::Info::Menu(MenuObjectInfo::default()),
                ),
                _ => (
                    Configuration {
                        uuid: uuid.clone(),
                        name: name.clone(),
                        ..Default::default()
                    }
                    .encode_to_vec(),
                    cronus_object::Info::Config(ConfigObjectInfo::default()),
                ),
            };
            std::fs::write(root.join(&name), bytes).unwrap();
            CronusObject {
                name: name.clone(),
                uuid,
                parent_uuid: store_uuid.clone(),
                address: url(root, &name),
                info: Some(info),
            }
        };
        let (menu, config) = (message("menu"), message("config"));
        let info = DatasetObjectInfo {
            partitions: keys.iter().map(|k| k.to_string()).collect(),
            transform: Some(Box::new(Transform {
                menu: Some(Box::new(menu.clone())),
                config: Some(Box::new(config.clone())),
            })),
            ..Default::default()
        };
        Original {
            root: root.to_path_buf(),
            store_uuid,
            menu,
            config,
            dataset: DatasetId::random(),
            info,
        }
    }

    /// `new_job`.
    fn new_job(&mut self) -> u32 {
        self.info.job_idx += 1;
        (self.info.job_idx - 1) as u32
    }

    /// `register_content(buf, FileObjectInfo(type=ARROW), dataset_id, job_id, partition_key)`
    /// then `put(id, buf)`: the partition is only in the name.
    fn produce(&mut self, job: &str, key: &str, bytes: &[u8]) -> (String, String) {
        let uuid = uuid::Uuid::new_v4().to_string();
        let name = format!("{}.job_{job}.part_{key}.{uuid}.arrow", self.dataset);
        std::fs::write(self.root.join(&name), bytes).unwrap();
        self.info.files.push(CronusObject {
            name: name.clone(),
            uuid: uuid.clone(),
            parent_uuid: self.dataset.to_string(),
            address: url(&self.root, &name),
            info: Some(cronus_object::Info::File(FileObjectInfo {
                r#type: 5,
                aux: Some(FileObjectAuxInfo {
                    description: "produced".into(),
                    ..Default::default()
                }),
                ..Default::default()
            })),
        });
        (uuid, name)
    }

    /// `save_store()`: the one `<uuid>.<name>.cronus.pb`.
    fn save(&self) {
        let name = format!("{}.test.cronus.pb", self.store_uuid);
        let dataset = CronusObject {
            name: format!("{}.dataset", self.dataset),
            uuid: self.dataset.to_string(),
            parent_uuid: self.store_uuid.clone(),
            address: String::new(),
            info: Some(cronus_object::Info::Dataset(Box::new(self.info.clone()))),
        };
        let store = CronusObjectStore {
            name: name.clone(),
            uuid: self.store_uuid.clone(),
            parent_uuid: String::new(),
            address: url(&self.root, &name),
            info: Some(CronusObjectStoreInfo {
                objects: vec![self.menu.clone(), self.config.clone(), dataset],
                ..Default::default()
            }),
        };
        std::fs::write(self.root.join(name), store.encode_to_vec()).unwrap();
    }
}

/// A produced file: its uuid, partition key, job and bytes.
type Produced = (String, String, u32, Vec<u8>);

/// The original's test_validation: keys key1..3, 3 jobs × 3 partitions of Arrow files, plus a
/// histogram collection and a file registered from outside the store.
fn validation_store(root: &Path) -> (Original, Vec<Produced>) {
    let mut o = Original::new(root, &["key1", "key.two", "key3"]);
    let mut made = Vec::new();
    for _ in 0..3 {
        let job = o.new_job();
        for key in ["key1", "key.two", "key3"] {
            let bytes = arrow_file(job as usize + 1);
            let (uuid, _) = o.produce(&job.to_string(), key, &bytes);
            made.push((uuid, key.to_string(), job, bytes));
        }
    }
    let hist_uuid = uuid::Uuid::new_v4().to_string();
    let hist = format!("{}.job_0.{hist_uuid}.hist.pb", o.dataset);
    std::fs::write(root.join(&hist), b"hist").unwrap();
    o.info.hists.push(CronusObject {
        name: hist,
        uuid: hist_uuid,
        info: Some(cronus_object::Info::Hists(HistsObjectInfo::default())),
        ..Default::default()
    });
    // An entry without a uuid (none the original makes) is skipped, and said.
    o.info.logs.push(CronusObject {
        name: format!("{}.job_0..log", o.dataset),
        info: Some(cronus_object::Info::Log(Default::default())),
        ..Default::default()
    });
    o.info.files.push(CronusObject {
        name: format!("{}.part_key1.{}.dummy.arrow", o.dataset, "ab".repeat(20)),
        uuid: "ab".repeat(20),
        address: "file:///somewhere/else/dummy.arrow".into(),
        info: Some(cronus_object::Info::File(FileObjectInfo::default())),
        ..Default::default()
    });
    o.save();
    (o, made)
}

fn bytes_of<S: Storage>(m: &Metastore<S>, path: &ObjectPath) -> Vec<u8> {
    let mut out = Vec::new();
    m.open(&m.object(path).unwrap())
        .unwrap()
        .read_to_end(&mut out)
        .unwrap();
    out
}

fn nothing_imported<S: Storage>(m: &Metastore<S>) {
    assert!(m.datasets().unwrap().is_empty(), "no dataset left behind");
    assert!(
        m.registered("menu").unwrap().is_empty(),
        "no menu left behind"
    );
    assert!(
        m.registered("config").unwrap().is_empty(),
        "no config left behind"
    );
}

#[test]
fn a_store_written_by_the_original_imports_with_partitions_from_the_names() {
    let dir = tempfile::tempdir().unwrap();
    let m = Metastore::new(RocksStore::create(&dir.path().join("store")).unwrap());
    original_store_imports_into(&m);
}

/// Imports a store laid out as the Python Cronus writes it into `m` (empty) and checks it.
pub fn original_store_imports_into<S: Storage>(m: &Metastore<S>) {
    let dir = tempfile::tempdir().unwrap();
    let (o, made) = validation_store(&dir.path().join("cronus"));
    let r = import_cronus(m, &o.root).unwrap();
    assert_eq!((r.messages, r.datasets, r.objects), (2, 1, 9));
    assert_eq!(r.skipped.len(), 2, "{:?}", r.skipped);
    assert!(r.skipped[0].contains("dummy.arrow") && r.skipped[1].contains("entry uuid"));
    assert_eq!(
        r.entries, 1,
        "the histogram collection is an entry of job 0"
    );
    let hists = &o.info.hists[0];
    assert_eq!(m.entry(&hists.uuid).unwrap().job, JobId(0));
    assert_eq!(m.entry_bytes(&hists.uuid).unwrap(), b"hist");
    assert_eq!(
        m.partitions(o.dataset).unwrap(),
        ["key1", "key.two", "key3"]
    );
    assert_eq!(m.jobs(o.dataset).unwrap(), [JobId(0), JobId(1), JobId(2)]);
    assert_eq!(
        m.new_job(o.dataset).unwrap(),
        JobId(3),
        "the counter goes on"
    );
    for (uuid, key, job, bytes) in &made {
        let name = format!("{}.job_{job}.part_{key}.{uuid}.arrow", o.dataset);
        let path = ObjectPath::new(o.dataset, key, JobId(*job), &name);
        let meta = m.object(&path).unwrap();
        assert_eq!(meta.id.to_string(), *uuid);
        assert_eq!(meta.cronus_name, name);
        assert_eq!(
            meta.table.as_ref().unwrap().num_batches,
            u64::from(*job) + 1
        );
        assert!(bytes_of(m, &path) == *bytes);
        let info = m.info(uuid).unwrap();
        let Some(cronus_object::Info::File(f)) = info.info else {
            panic!("a file")
        };
        assert_eq!(f.partition, *key, "the info now says its partition");
    }
    assert_eq!(
        m.dataset_transform(o.dataset).unwrap(),
        Some((o.menu.uuid.clone(), o.config.uuid.clone()))
    );
}

#[test]
fn job_counters_are_bounded_by_what_the_store_holds() {
    let dir = tempfile::tempdir().unwrap();
    for (job_idx, next) in [(1_000_000, Ok(JobId(1_000_000))), (i32::MAX, Err(()))] {
        let root = dir.path().join(format!("c{job_idx}"));
        let mut o = Original::new(&root, &["k"]);
        o.info.job_idx = job_idx;
        o.produce("7", "k", b"seven");
        o.save();
        let m = Metastore::new(MemoryStore::new());
        import_cronus(&m, &root).unwrap();
        let rows: usize = m
            .storage()
            .backup_rows(1000)
            .map(|c| c.unwrap().len())
            .sum();
        assert!(rows < 100, "{rows} rows: jobs were made one by one");
        assert_eq!(
            m.jobs(o.dataset).unwrap(),
            [JobId(7)],
            "only jobs that hold files"
        );
        assert_eq!(m.job_counter(o.dataset).unwrap(), i64::from(job_idx));
        match (m.new_job(o.dataset), next) {
            (Ok(job), Ok(want)) => assert_eq!(job, want),
            (Err(MetaError::JobsExhausted(_)), Err(())) => {}
            (got, want) => panic!("{got:?} vs {want:?}"),
        }
    }
}

#[test]
fn a_bad_entry_late_in_the_store_leaves_nothing_behind() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("cronus");
    let mut o = Original::new(&root, &["k"]);
    o.new_job();
    o.produce("0", "k", b"fine");
    let (_, bad) = o.produce("99999999999", "k", b"job number out of range");
    o.save();
    let m = Metastore::new(RocksStore::create(&dir.path().join("store")).unwrap());
    let e = import_cronus(&m, &root).unwrap_err().to_string();
    assert!(e.contains(&bad) && e.contains("job number"), "{e}");
    nothing_imported(&m);

    // Fixed, the retry imports everything (nothing "already registered").
    o.info.files.pop();
    o.save();
    let r = import_cronus(&m, &root).unwrap();
    assert_eq!((r.messages, r.datasets, r.objects), (2, 1, 1));
}

#[test]
fn a_missing_file_is_named_once() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("cronus");
    let mut o = Original::new(&root, &["k"]);
    o.new_job();
    let (_, name) = o.produce("0", "k", b"gone");
    std::fs::remove_file(root.join(&name)).unwrap();
    o.save();
    let m = Metastore::new(MemoryStore::new());
    let e = import_cronus(&m, &root).unwrap_err();
    let text = format!("{:#}", anyhow::Error::from(e));
    assert_eq!(text.matches(&name).count(), 1, "{text}");
    assert_eq!(text.matches("No such file").count(), 1, "{text}");
    nothing_imported(&m);

    let store = dir.path().join("store");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_cronusfs"))
        .arg("import-cronus")
        .args([&store, &root])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(err.lines().count(), 1, "{err}");
    assert_eq!(err.matches("No such file").count(), 1, "{err}");
    assert_eq!(err.matches(&name).count(), 1, "{err}");
}

#[test]
fn only_files_inside_the_directory_are_read() {
    let dir = tempfile::tempdir().unwrap();
    let secret = dir.path().join("secret");
    std::fs::write(&secret, b"not for the store").unwrap();
    for how in ["address", "symlink"] {
        let root = dir.path().join(how);
        let mut o = Original::new(&root, &["k"]);
        o.new_job();
        let (_, name) = o.produce("0", "k", b"");
        std::fs::remove_file(root.join(&name)).unwrap();
        o.info.files[0].address = format!("file://{}", secret.display());
        if how == "symlink" {
            std::os::unix::fs::symlink(&secret, root.join(&name)).unwrap();
        }
        o.save();
        let m = Metastore::new(MemoryStore::new());
        let e = import_cronus(&m, &root).unwrap_err().to_string();
        assert!(e.contains(&name), "{how}: {e}");
        nothing_imported(&m);
        assert!(
            m.content()
                .ids()
                .unwrap()
                .iter()
                .all(|id| { *id != ContentId::of(b"not for the store") }),
            "{how}: the secret was never read into the store"
        );
    }
}

#[test]
fn changed_bytes_are_imported_as_they_are_and_survive_gc() {
    let (m, back) = (
        Metastore::new(MemoryStore::new()),
        Metastore::new(MemoryStore::new()),
    );
    changed_bytes_survive_an_export_and_import(&m, &back);
}

/// Exports `m` (empty) with one object's bytes edited by hand, imports it into `back` (empty):
/// the bytes as they are, gc keeps them, every content verifies.
pub fn changed_bytes_survive_an_export_and_import<S: Storage, T: Storage>(
    m: &Metastore<S>,
    back: &Metastore<T>,
) {
    let ds = m.register_dataset_as_mkdir();
    let path = ObjectPath::new(ds, "k", JobId(0), "data.bin");
    let meta = m
        .put_object(&path, &mut &b"original"[..], &mut |_| {})
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    export_cronus(m, dir.path(), "t").unwrap();
    std::fs::write(dir.path().join(&meta.cronus_name), b"edited by hand").unwrap();
    let r = import_cronus(back, dir.path()).unwrap();
    assert_eq!(r.changed, [meta.id.to_string()]);
    back.gc().unwrap();
    let got = back.object(&path).unwrap();
    assert_eq!(got.content, ContentId::of(b"edited by hand"));
    assert_eq!(got.size, 14);
    assert_eq!(bytes_of(back, &path), b"edited by hand");
    for id in back.content().ids().unwrap() {
        assert!(back.content().verify(id).unwrap().is_empty());
    }
}

#[test]
fn a_dataset_made_with_mkdir_round_trips() {
    let m = Metastore::new(MemoryStore::new());
    let ds = m.register_dataset_as_mkdir();
    m.open_job(ds, JobId(17)).unwrap();
    m.put_object(
        &ObjectPath::new(ds, "k", JobId(17), "x"),
        &mut &b"x"[..],
        &mut |_| {},
    )
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    export_cronus(&m, dir.path(), "t").unwrap();
    let back = Metastore::new(MemoryStore::new());
    import_cronus(&back, dir.path()).unwrap();
    assert_eq!(back.dataset_transform(ds).unwrap(), None);
    assert_eq!(back.jobs(ds).unwrap(), [JobId(0), JobId(17)]);
    assert_eq!(back.job_counter(ds).unwrap(), 18);
}

/// What `mkdir datasets/<uuid>`, `mkdir partitions/k` and `mkdir jobs/0` make.
trait Mkdir {
    fn register_dataset_as_mkdir(&self) -> DatasetId;
}

impl<S: Storage> Mkdir for Metastore<S> {
    fn register_dataset_as_mkdir(&self) -> DatasetId {
        let ds = DatasetId::random();
        self.create_dataset(ds).unwrap();
        self.add_partition(ds, "k").unwrap();
        self.open_job(ds, JobId(0)).unwrap();
        ds
    }
}
