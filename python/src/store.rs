//! `Store`: one open store, as the CLI opens it (a directory or `postgres://…`), served through
//! the filesystem core a mount uses. On a shared store the process takes part like a daemon:
//! a session that beats, the write lease, and what other processes commit heard and acted on.
//! The catalogue calls of the Cronus API live here too.

use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use cronusfs::fs::{FsCore, FsOptions};
use cronusfs::meta::heartbeat::{Heartbeat, Holder};
use cronusfs::meta::{DatasetId, JobId, Metastore, ObjectId, ObjectMeta, ObjectPath};
use cronusfs::pb::cronus::{Configuration, Menu};
use cronusfs::pb::store::{ConfigObjectInfo, CronusObject, CronusObjectStore, MenuObjectInfo};
use cronusfs::storage::Storage;
use cronusfs::storage::location::{self, Location};
use cronusfs::storage::s3::S3Url;
use prost::Message;
use pyo3::exceptions::{
    PyFileExistsError, PyFileNotFoundError, PyOSError, PyRuntimeError, PyValueError,
};
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyDict};

use crate::errors::{meta_error, open_error};

/// The filesystem core over the store's catalogue.
pub type Core = FsCore<Box<dyn Storage>>;

/// How long what was read of a shared store is kept when no change is heard: the bound on
/// staleness after a missed announcement (the mount's default too).
const HEAR_EVERY: Duration = Duration::from_secs(1);

/// An open store and what serves it.
pub struct Open {
    /// The core every path and catalogue call goes through.
    pub core: Arc<Core>,
    /// The store as named when it was opened.
    pub location: String,
    /// The files open in the store.
    pub files: crate::files::OpenFiles,
    /// Whether every change is refused (EROFS).
    pub read_only: bool,
    /// The process that opened the store: the only one that may use it.
    pid: u32,
    heartbeat: Mutex<Option<Heartbeat>>,
    watching: Arc<AtomicBool>,
    staging: Mutex<Option<tempfile::TempDir>>,
}

impl Open {
    /// Fails in a process made by `fork()` after the store was opened: the child has a copy
    /// of the parent's engine but none of its threads or locks, and a write there would
    /// break the store for both.
    pub fn check_process(&self) -> PyResult<()> {
        if !self.forked() {
            return Ok(());
        }
        Err(PyRuntimeError::new_err(format!(
            "{} was opened by process {}: a process made by fork() opens its own \
             (cronusfs.open_store in the child; a store directory is one process's at a time)",
            self.location, self.pid
        )))
    }

    /// Fails when the store was opened read-only.
    pub fn check_writable(&self) -> PyResult<()> {
        self.check_process()?;
        match self.read_only {
            true => Err(PyOSError::new_err((
                libc::EROFS,
                format!("{} was opened read-only", self.location),
            ))),
            false => Ok(()),
        }
    }

    /// Whether this is a copy of the store in a process made by `fork()`.
    pub fn forked(&self) -> bool {
        std::process::id() != self.pid
    }
}

impl Drop for Open {
    fn drop(&mut self) {
        if self.forked() {
            // A forked child's copy: nothing of it is the child's to close, release or
            // delete (the parent's session, its staging files, its engine). Leaked.
            self.files.leak_all();
            std::mem::forget(self.core.clone());
            std::mem::forget(
                self.heartbeat
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .take(),
            );
            std::mem::forget(
                self.staging
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .take(),
            );
            return;
        }
        // Writers left open commit first, while the session and its lease still stand.
        self.files.close_all();
        self.watching.store(false, Ordering::SeqCst);
        let beat = self
            .heartbeat
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take();
        if let Some(beat) = beat {
            beat.stop();
        }
    }
}

/// A store opened by this process: `Store(location, content=None, create=False,
/// read_only=False)`.
#[pyclass(frozen, module = "cronusfs._native")]
pub struct Store {
    open: Mutex<Option<Arc<Open>>>,
}

impl Store {
    /// The open store, or `ValueError` once it was closed.
    pub fn get(&self) -> PyResult<Arc<Open>> {
        let open = self.open.lock().unwrap_or_else(|e| e.into_inner());
        let open = (open.clone()).ok_or_else(|| PyValueError::new_err("the store was closed"))?;
        open.check_process()?;
        Ok(open)
    }

    /// The open store, if it may be changed (`OSError(EROFS)` when opened read-only).
    pub fn writable(&self) -> PyResult<Arc<Open>> {
        let open = self.get()?;
        open.check_writable()?;
        Ok(open)
    }
}

/// Opens (or creates) the store at `location` and starts what a shared store needs.
fn open_store(
    location: &str,
    content: Option<&str>,
    create: bool,
    read_only: bool,
) -> PyResult<Open> {
    if location.is_empty() {
        return Err(PyValueError::new_err("no store given (an empty location)"));
    }
    let parsed = Location::parse(Path::new(location)).map_err(|e| open_error(e, location))?;
    let exists = location::exists(&parsed).map_err(|e| open_error(e, location))?;
    let opened = match (exists, create) {
        (true, _) => location::open(&parsed),
        (false, true) => {
            if let Location::Dir(dir) = &parsed
                && std::fs::read_dir(dir).is_ok_and(|mut entries| entries.next().is_some())
            {
                return Err(PyFileExistsError::new_err(format!(
                    "{location} holds files and no store: a new store needs an empty or new \
                     directory"
                )));
            }
            let content = content.map(S3Url::parse).transpose();
            let content = content.map_err(|e| open_error(e, location))?;
            location::create(&parsed, content.as_ref())
        }
        (false, false) => {
            return Err(PyFileNotFoundError::new_err(format!(
                "no store at {location}"
            )));
        }
    };
    let catalog = Metastore::of_store(opened.map_err(|e| open_error(e, location))?);
    let shared = catalog.storage().is_shared();
    let staging = tempfile::Builder::new()
        .prefix("cronusfs-python-")
        .tempdir()?;
    let options = FsOptions {
        read_only,
        // SAFETY: getuid and getgid cannot fail and touch no memory.
        uid: unsafe { libc::getuid() },
        // SAFETY: as above.
        gid: unsafe { libc::getgid() },
        staging_dir: staging.path().join("staging"),
        cache_dir: None,
        cache_limit: 0,
        max_inodes: 0,
        listing_page: cronusfs::fs::DEFAULT_LISTING_PAGE,
    };
    let core = Arc::new(FsCore::new(catalog, options).map_err(crate::errors::fs_error)?);
    let open = Open {
        core: core.clone(),
        location: location.to_string(),
        files: Default::default(),
        heartbeat: Mutex::new(None),
        watching: Arc::new(AtomicBool::new(shared)),
        staging: Mutex::new(Some(staging)),
        read_only,
        pid: std::process::id(),
    };
    if shared {
        let holder: Holder = core.clone();
        let at = format!("(python pid {})", std::process::id());
        let beat = Heartbeat::start_as(holder, &at).map_err(meta_error)?;
        *open.heartbeat.lock().unwrap_or_else(|e| e.into_inner()) = Some(beat);
        hear_other_processes(Arc::downgrade(&core), open.watching.clone())?;
    }
    Ok(open)
}

/// Starts the thread that hears other processes' commits, so that what the core keeps of
/// what they changed is dropped (a mount's store watch, with no kernel to tell).
fn hear_other_processes(core: Weak<Core>, watching: Arc<AtomicBool>) -> std::io::Result<()> {
    std::thread::Builder::new()
        .name("store-watch".into())
        .spawn(move || {
            while watching.load(Ordering::SeqCst) {
                let Some(core) = core.upgrade() else { return };
                // Nothing to tell a kernel: the answers are only the core's to drop.
                let _ = core.next_kernel_invalidations(HEAR_EVERY);
            }
        })?;
    Ok(())
}

/// The object's fields as a dict: uuid, path, name, content id, size, type, version, times.
fn object_dict<'py>(py: Python<'py>, meta: &ObjectMeta) -> PyResult<Bound<'py, PyDict>> {
    let d = PyDict::new(py);
    d.set_item("uuid", meta.id.to_string())?;
    d.set_item("dataset", meta.path.dataset.to_string())?;
    d.set_item("partition", &meta.path.partition)?;
    d.set_item("job", meta.path.job.0)?;
    d.set_item("name", &meta.path.name)?;
    d.set_item("cronus_name", &meta.cronus_name)?;
    d.set_item("content", meta.content.to_string())?;
    d.set_item("size", meta.size)?;
    d.set_item("file_type", meta.file_type.as_str_name())?;
    d.set_item("version", meta.version)?;
    d.set_item("created", meta.created)?;
    d.set_item("modified", meta.modified)?;
    Ok(d)
}

fn parse_id<T: std::str::FromStr<Err = cronusfs::meta::MetaError>>(s: &str) -> PyResult<T> {
    s.parse().map_err(meta_error)
}

fn decode<M: Message + Default>(bytes: &[u8], what: &str) -> PyResult<M> {
    M::decode(bytes).map_err(|e| PyValueError::new_err(format!("not a {what} message: {e}")))
}

#[pymethods]
impl Store {
    #[new]
    #[pyo3(signature = (location, content=None, create=false, read_only=false))]
    fn new(
        py: Python<'_>,
        location: &str,
        content: Option<&str>,
        create: bool,
        read_only: bool,
    ) -> PyResult<Store> {
        let open = py.detach(|| open_store(location, content, create, read_only))?;
        Ok(Store {
            open: Mutex::new(Some(Arc::new(open))),
        })
    }

    /// The store as named when it was opened.
    #[getter]
    fn location(&self) -> PyResult<String> {
        Ok(self.get()?.location.clone())
    }

    /// Whether the store was opened read-only (every change is EROFS).
    #[getter]
    fn read_only(&self) -> PyResult<bool> {
        Ok(self.get()?.read_only)
    }

    /// Whether other processes may share the store (a `postgres://` store).
    #[getter]
    fn shared(&self) -> PyResult<bool> {
        Ok(self.get()?.core.metastore().storage().is_shared())
    }

    /// Closes the store: its session ends and, once no open file holds it, the store is let
    /// go (a store directory can then be mounted).
    fn close(&self, py: Python<'_>) {
        let open = self.open.lock().unwrap_or_else(|e| e.into_inner()).take();
        py.detach(|| drop(open));
    }

    /// Registers a menu (serialized `Menu`, serialized `MenuObjectInfo`).
    fn register_menu(&self, py: Python<'_>, menu: &[u8], info: &[u8]) -> PyResult<()> {
        let (menu, info): (Menu, MenuObjectInfo) =
            (decode(menu, "Menu")?, decode(info, "MenuObjectInfo")?);
        let open = self.writable()?;
        py.detach(|| open.core.metastore().register_menu(&menu, info))
            .map_err(meta_error)
    }

    /// Registers a configuration (serialized `Configuration`, `ConfigObjectInfo`).
    fn register_config(&self, py: Python<'_>, config: &[u8], info: &[u8]) -> PyResult<()> {
        let config: Configuration = decode(config, "Configuration")?;
        let info: ConfigObjectInfo = decode(info, "ConfigObjectInfo")?;
        let open = self.writable()?;
        py.detach(|| open.core.metastore().register_config(&config, info))
            .map_err(meta_error)
    }

    /// The bytes of registered menu `uuid`.
    fn menu<'py>(&self, py: Python<'py>, uuid: &str) -> PyResult<Bound<'py, PyBytes>> {
        let open = self.get()?;
        let bytes = py
            .detach(|| open.core.metastore().menu_bytes(uuid))
            .map_err(meta_error)?;
        Ok(PyBytes::new(py, &bytes))
    }

    /// The bytes of registered configuration `uuid`.
    fn config<'py>(&self, py: Python<'py>, uuid: &str) -> PyResult<Bound<'py, PyBytes>> {
        let open = self.get()?;
        let bytes = py
            .detach(|| open.core.metastore().config_bytes(uuid))
            .map_err(meta_error)?;
        Ok(PyBytes::new(py, &bytes))
    }

    /// The serialized `CronusObject` of node `uuid` (menu, configuration, dataset, object).
    fn info<'py>(&self, py: Python<'py>, uuid: &str) -> PyResult<Bound<'py, PyBytes>> {
        let open = self.get()?;
        let info = py
            .detach(|| open.core.metastore().info(uuid))
            .map_err(meta_error)?;
        Ok(PyBytes::new(py, &info.encode_to_vec()))
    }

    /// Registers a new dataset made with `menu` and `config` (both, or neither); returns
    /// its uuid.
    #[pyo3(signature = (menu=None, config=None))]
    fn register_dataset(
        &self,
        py: Python<'_>,
        menu: Option<&str>,
        config: Option<&str>,
    ) -> PyResult<String> {
        let open = self.writable()?;
        let made = py.detach(|| {
            let m = open.core.metastore();
            match (menu, config) {
                (Some(menu), Some(config)) => m.register_dataset(menu, config).map(Some),
                (None, None) => {
                    let id = DatasetId::random();
                    m.create_dataset(id).map(|()| Some(id))
                }
                _ => Ok(None),
            }
        });
        match made.map_err(meta_error)? {
            Some(id) => Ok(id.to_string()),
            None => Err(PyValueError::new_err(
                "a dataset is made with a menu and a configuration, or with neither",
            )),
        }
    }

    /// The uuids of the registered menus (`kind` "menu") or configurations ("config").
    fn registered(&self, py: Python<'_>, kind: &str) -> PyResult<Vec<String>> {
        if kind != "menu" && kind != "config" {
            return Err(PyValueError::new_err("kind is \"menu\" or \"config\""));
        }
        let open = self.get()?;
        py.detach(|| open.core.metastore().registered(kind))
            .map_err(meta_error)
    }

    /// The uuids of every dataset.
    fn datasets(&self, py: Python<'_>) -> PyResult<Vec<String>> {
        let open = self.get()?;
        let ids = py
            .detach(|| open.core.metastore().datasets())
            .map_err(meta_error)?;
        Ok(ids.iter().map(ToString::to_string).collect())
    }

    /// Adds partition `key` to dataset `dataset` (a key it has already is left as it is).
    fn add_partition(&self, py: Python<'_>, dataset: &str, key: &str) -> PyResult<()> {
        let ds: DatasetId = parse_id(dataset)?;
        let open = self.writable()?;
        py.detach(|| {
            let m = open.core.metastore();
            match m.has_partition(ds, key)? {
                true => Ok(()),
                false => m.add_partition(ds, key),
            }
        })
        .map_err(meta_error)
    }

    /// The partition keys of `dataset`, in the order they were added.
    fn partitions(&self, py: Python<'_>, dataset: &str) -> PyResult<Vec<String>> {
        let ds: DatasetId = parse_id(dataset)?;
        let open = self.get()?;
        py.detach(|| open.core.metastore().partitions(ds))
            .map_err(meta_error)
    }

    /// Opens the next job of `dataset` (its counter, from 0) and returns its number.
    fn new_job(&self, py: Python<'_>, dataset: &str) -> PyResult<u32> {
        let ds: DatasetId = parse_id(dataset)?;
        let open = self.writable()?;
        let job = py
            .detach(|| open.core.metastore().new_job(ds))
            .map_err(meta_error)?;
        Ok(job.0)
    }

    /// The job numbers of `dataset`.
    fn jobs(&self, py: Python<'_>, dataset: &str) -> PyResult<Vec<u32>> {
        let ds: DatasetId = parse_id(dataset)?;
        let open = self.get()?;
        let jobs = py
            .detach(|| open.core.metastore().jobs(ds))
            .map_err(meta_error)?;
        Ok(jobs.iter().map(|j| j.0).collect())
    }

    /// Stores `data` as object `name` of (dataset, partition, job): a new object with uuid
    /// `uuid` (a fresh one without it), or a new version of the object already there.
    /// Durable when it returns; returns the object.
    #[pyo3(signature = (dataset, partition, job, name, data, uuid=None))]
    #[allow(clippy::too_many_arguments)]
    fn put_object<'py>(
        &self,
        py: Python<'py>,
        dataset: &str,
        partition: &str,
        job: u32,
        name: &str,
        data: &[u8],
        uuid: Option<&str>,
    ) -> PyResult<Bound<'py, PyDict>> {
        let path = ObjectPath::new(parse_id(dataset)?, partition, JobId(job), name);
        let id: Option<ObjectId> = uuid.map(parse_id).transpose()?;
        let open = self.writable()?;
        let stored = py.detach(|| {
            let m = open.core.metastore();
            let mut reader = data;
            match id {
                Some(id) if m.object_id_at(&path)?.is_none() => {
                    m.put_object_as(&path, id, name, &mut reader)
                }
                _ => m.put_object(&path, &mut reader, &mut |_| {}),
            }
        });
        object_dict(py, &stored.map_err(meta_error)?)
    }

    /// The object with uuid `uuid`.
    fn object<'py>(&self, py: Python<'py>, uuid: &str) -> PyResult<Bound<'py, PyDict>> {
        let id: ObjectId = parse_id(uuid)?;
        let open = self.get()?;
        let found = py
            .detach(|| open.core.metastore().object_by_id(id))
            .map_err(meta_error)?;
        object_dict(py, &found)
    }

    /// The bytes of object `uuid`'s current version.
    fn object_bytes<'py>(&self, py: Python<'py>, uuid: &str) -> PyResult<Bound<'py, PyBytes>> {
        let id: ObjectId = parse_id(uuid)?;
        let open = self.get()?;
        let bytes = py.detach(|| {
            let m = open.core.metastore();
            let found = m.object_by_id(id)?;
            let mut out = Vec::with_capacity(found.size as usize);
            std::io::Read::read_to_end(&mut m.open(&found)?, &mut out)?;
            Ok(out)
        });
        Ok(PyBytes::new(py, &bytes.map_err(meta_error)?))
    }

    /// The objects of `dataset` whose Cronus name starts with `prefix` and ends with `suffix`,
    /// in creation order.
    #[pyo3(signature = (dataset, prefix="", suffix=""))]
    fn list<'py>(
        &self,
        py: Python<'py>,
        dataset: &str,
        prefix: &str,
        suffix: &str,
    ) -> PyResult<Vec<Bound<'py, PyDict>>> {
        let ds: DatasetId = parse_id(dataset)?;
        let open = self.get()?;
        let found = py
            .detach(|| open.core.metastore().list(ds, prefix, suffix))
            .map_err(meta_error)?;
        found.iter().map(|m| object_dict(py, m)).collect()
    }

    /// Registers entry `object` (a serialized `CronusObject` whose info is a histogram,
    /// t-digest, job, table or log entry) of `job` of `dataset`, with its bytes if given.
    #[pyo3(signature = (dataset, job, object, data=None))]
    fn register_entry(
        &self,
        py: Python<'_>,
        dataset: &str,
        job: u32,
        object: &[u8],
        data: Option<&[u8]>,
    ) -> PyResult<()> {
        let ds: DatasetId = parse_id(dataset)?;
        let object: CronusObject = decode(object, "CronusObject")?;
        let open = self.writable()?;
        py.detach(|| (open.core.metastore()).register_entry(ds, JobId(job), &object, data))
            .map_err(meta_error)
    }

    /// Stores `data` as the bytes of entry `uuid` (a log written after its registration).
    fn set_entry_content(&self, py: Python<'_>, uuid: &str, data: &[u8]) -> PyResult<()> {
        let open = self.writable()?;
        py.detach(|| open.core.metastore().set_entry_content(uuid, data))
            .map_err(meta_error)
    }

    /// The entries of `dataset`, as (serialized `CronusObject`, job, has bytes), in the order
    /// they were registered.
    fn entries<'py>(
        &self,
        py: Python<'py>,
        dataset: &str,
    ) -> PyResult<Vec<(Bound<'py, PyBytes>, u32, bool)>> {
        let ds: DatasetId = parse_id(dataset)?;
        let open = self.get()?;
        let found = py
            .detach(|| open.core.metastore().entries(ds))
            .map_err(meta_error)?;
        Ok((found.iter())
            .map(|e| {
                (
                    PyBytes::new(py, &e.object.encode_to_vec()),
                    e.job.0,
                    e.content.is_some(),
                )
            })
            .collect())
    }

    /// The bytes of entry `uuid` (`KeyError` when none are written yet).
    fn entry_bytes<'py>(&self, py: Python<'py>, uuid: &str) -> PyResult<Bound<'py, PyBytes>> {
        let open = self.get()?;
        let bytes = py
            .detach(|| open.core.metastore().entry_bytes(uuid))
            .map_err(meta_error)?;
        Ok(PyBytes::new(py, &bytes))
    }

    /// Saves a Cronus metastore's message (serialized `CronusObjectStore`) under its name.
    fn save_cronus_store(&self, py: Python<'_>, message: &[u8]) -> PyResult<()> {
        let saved: CronusObjectStore = decode(message, "CronusObjectStore")?;
        let open = self.writable()?;
        py.detach(|| open.core.metastore().save_cronus_store(&saved))
            .map_err(meta_error)
    }

    /// The Cronus metastore saved under `name` (serialized), or `None`.
    fn cronus_store<'py>(
        &self,
        py: Python<'py>,
        name: &str,
    ) -> PyResult<Option<Bound<'py, PyBytes>>> {
        let open = self.get()?;
        let saved = py
            .detach(|| open.core.metastore().cronus_store(name))
            .map_err(meta_error)?;
        Ok(saved.map(|s| PyBytes::new(py, &s.encode_to_vec())))
    }
}
