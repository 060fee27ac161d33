//! Paths of a store, answered as a mount answers them (the same filesystem core): `stat`,
//! listings, extended attributes, directories, and files opened for reading (every read of
//! the version committed at the open) or writing (committed, durable, at `close`).

use std::collections::HashMap;
use std::sync::{Arc, Mutex, Weak};

use cronusfs::fs::{Attr, FsError, Kind, PathReader, PathWriter, millis_of};
use cronusfs::storage::Storage;
use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyDict};

use crate::errors::fs_error_at;
use crate::store::{Core, Open, Store};

/// The attributes of a node as a dict: kind, size, mode, owner, times (epoch ms).
fn attr_dict<'py>(py: Python<'py>, name: &str, attr: &Attr) -> PyResult<Bound<'py, PyDict>> {
    let d = PyDict::new(py);
    let kind = match attr.kind {
        Kind::Dir => "directory",
        Kind::File => "file",
        Kind::Symlink => "link",
    };
    d.set_item("name", name)?;
    d.set_item("type", kind)?;
    d.set_item("size", attr.size)?;
    d.set_item("mode", attr.perm)?;
    d.set_item("uid", attr.uid)?;
    d.set_item("gid", attr.gid)?;
    d.set_item("mtime", millis_of(attr.mtime))?;
    d.set_item("ctime", millis_of(attr.ctime))?;
    d.set_item("created", millis_of(attr.crtime))?;
    Ok(d)
}

#[pymethods]
impl Store {
    /// The attributes of `path` (`FileNotFoundError` when nothing is there).
    fn stat<'py>(&self, py: Python<'py>, path: &str) -> PyResult<Bound<'py, PyDict>> {
        let open = self.get()?;
        let attr = py.detach(|| open.core.stat_path(path));
        attr_dict(py, path, &attr.map_err(|e| fs_error_at(e, path))?)
    }

    /// The entries of directory `path`, each with its attributes.
    fn ls<'py>(&self, py: Python<'py>, path: &str) -> PyResult<Vec<Bound<'py, PyDict>>> {
        let open = self.get()?;
        let entries = py
            .detach(|| open.core.list_path(path))
            .map_err(|e| fs_error_at(e, path))?;
        (entries.iter())
            .map(|e| attr_dict(py, &e.name, &e.attr))
            .collect()
    }

    /// The extended attributes of `path`, by name (`user.cronus.*` and the user rows).
    fn xattrs<'py>(&self, py: Python<'py>, path: &str) -> PyResult<Bound<'py, PyDict>> {
        let open = self.get()?;
        let all = py
            .detach(|| open.core.xattrs_path(path))
            .map_err(|e| fs_error_at(e, path))?;
        let d = PyDict::new(py);
        for (name, value) in all {
            d.set_item(name, PyBytes::new(py, &value))?;
        }
        Ok(d)
    }

    /// Sets extended attribute `name` of `path` (a user row: `user.<prop>`).
    fn setxattr(&self, py: Python<'_>, path: &str, name: &str, value: &[u8]) -> PyResult<()> {
        let open = self.get()?;
        py.detach(|| open.core.set_xattr_path(path, name, value))
            .map_err(|e| fs_error_at(e, path))
    }

    /// Removes extended attribute `name` of `path`.
    fn removexattr(&self, py: Python<'_>, path: &str, name: &str) -> PyResult<()> {
        let open = self.get()?;
        py.detach(|| open.core.remove_xattr_path(path, name))
            .map_err(|e| fs_error_at(e, path))
    }

    /// Makes directory `path`: a dataset, partition, job or folder, as `mkdir` at a mount.
    fn mkdir(&self, py: Python<'_>, path: &str) -> PyResult<()> {
        let open = self.get()?;
        py.detach(|| open.core.mkdir_path(path).map(drop))
            .map_err(|e| fs_error_at(e, path))
    }

    /// Removes file `path`.
    fn remove(&self, py: Python<'_>, path: &str) -> PyResult<()> {
        let open = self.get()?;
        py.detach(|| open.core.remove_path(path))
            .map_err(|e| fs_error_at(e, path))
    }

    /// Removes empty directory `path`.
    fn rmdir(&self, py: Python<'_>, path: &str) -> PyResult<()> {
        let open = self.get()?;
        py.detach(|| open.core.rmdir_path(path))
            .map_err(|e| fs_error_at(e, path))
    }

    /// Renames `source` to `target`, replacing what is there.
    fn rename(&self, py: Python<'_>, source: &str, target: &str) -> PyResult<()> {
        let open = self.get()?;
        py.detach(|| open.core.rename_path(source, target))
            .map_err(|e| fs_error_at(e, source))
    }

    /// Opens file `path` for reading.
    fn open_read(&self, py: Python<'_>, path: &str) -> PyResult<Reader> {
        let open = self.get()?;
        let core = open.core.clone();
        let reader = py
            .detach(|| PathReader::open(core, path))
            .map_err(|e| fs_error_at(e, path))?;
        let size = reader.size();
        let id = open.files.add(File::Read(Arc::new(reader)));
        Ok(Reader {
            handle: Handle::new(&open, id, path),
            size,
        })
    }

    /// Opens file `path` for writing from its start (a new object, or a new version).
    fn open_write(&self, py: Python<'_>, path: &str) -> PyResult<Writer> {
        let open = self.writable()?;
        let core = open.core.clone();
        let writer = py
            .detach(|| PathWriter::create(core, path))
            .map_err(|e| fs_error_at(e, path))?;
        let id = open
            .files
            .add(File::Write(Arc::new(Mutex::new(Some(writer)))));
        Ok(Writer {
            handle: Handle::new(&open, id, path),
        })
    }
}

type OpenReader = PathReader<Box<dyn Storage>, Arc<Core>>;
type OpenWriter = PathWriter<Box<dyn Storage>, Arc<Core>>;

/// A file a store has open for Python.
#[derive(Clone)]
pub enum File {
    /// Open for reading.
    Read(Arc<OpenReader>),
    /// Open for writing (`None` once closed, for writes that raced the close).
    Write(Arc<Mutex<Option<OpenWriter>>>),
}

/// The files a store has open. They are the store's, not their Python objects': closing the
/// store closes them (a writer's bytes committed, as when a process exits), so the store is
/// let go at once whatever Python still refers to.
#[derive(Default)]
pub struct OpenFiles {
    files: Mutex<(u64, HashMap<u64, File>)>,
}

impl OpenFiles {
    fn add(&self, file: File) -> u64 {
        let mut files = self.files.lock().unwrap_or_else(|e| e.into_inner());
        files.0 += 1;
        let id = files.0;
        files.1.insert(id, file);
        id
    }

    fn get(&self, id: u64) -> Option<File> {
        let files = self.files.lock().unwrap_or_else(|e| e.into_inner());
        files.1.get(&id).cloned()
    }

    fn take(&self, id: u64) -> Option<File> {
        let mut files = self.files.lock().unwrap_or_else(|e| e.into_inner());
        files.1.remove(&id)
    }

    /// Forgets every file without closing it (a forked child's copy of the store: its
    /// handles are the parent's to release).
    pub fn leak_all(&self) {
        let all = std::mem::take(&mut self.files.lock().unwrap_or_else(|e| e.into_inner()).1);
        std::mem::forget(all);
    }

    /// Closes every file (when the store closes).
    pub fn close_all(&self) {
        let all = std::mem::take(&mut self.files.lock().unwrap_or_else(|e| e.into_inner()).1);
        drop(all);
    }
}

/// What a Python file object holds: its store, weakly, and its number there.
struct Handle {
    store: Weak<Open>,
    id: u64,
    path: String,
}

impl Handle {
    fn new(open: &Arc<Open>, id: u64, path: &str) -> Handle {
        let store = Arc::downgrade(open);
        let path = path.to_string();
        Handle { store, id, path }
    }

    /// The file, while it and its store are open (in the process that opened them).
    fn file(&self) -> PyResult<(Arc<Open>, File)> {
        let closed = || PyValueError::new_err(format!("{} was closed", self.path));
        let open = self.store.upgrade().ok_or_else(closed)?;
        open.check_process()?;
        let file = open.files.get(self.id).ok_or_else(closed)?;
        Ok((open, file))
    }

    /// Takes the file out of its store (to close it), if it is still open; in a process made
    /// by `fork()`, nothing (the handle is the parent's).
    fn take(&self) -> Option<(Arc<Open>, File)> {
        let open = self.store.upgrade()?;
        if open.forked() {
            return None;
        }
        let file = open.files.take(self.id)?;
        Some((open, file))
    }
}

/// A file open for reading: every read is of the version committed when it was opened.
#[pyclass(frozen, module = "cronusfs._native")]
pub struct Reader {
    handle: Handle,
    size: u64,
}

#[pymethods]
impl Reader {
    /// The size of the version read.
    #[getter]
    fn size(&self) -> u64 {
        self.size
    }

    /// Reads up to `length` bytes from `offset` (to the end without `length`).
    #[pyo3(signature = (offset, length=None))]
    fn read<'py>(
        &self,
        py: Python<'py>,
        offset: u64,
        length: Option<u64>,
    ) -> PyResult<Bound<'py, PyBytes>> {
        let (_open, File::Read(file)) = self.handle.file()? else {
            return Err(PyValueError::new_err("not a file open for reading"));
        };
        let bytes = py.detach(|| file.read(offset, length));
        let bytes = bytes.map_err(|e| fs_error_at(e, &self.handle.path))?;
        Ok(PyBytes::new(py, &bytes))
    }

    /// Closes the file.
    fn close(&self, py: Python<'_>) {
        // The last reference goes in a thread without the GIL: it may be the store's.
        let taken = self.handle.take();
        py.detach(move || drop(taken));
    }
}

/// A file open for writing: bytes land in order; `close` commits them, durable when it
/// returns; a writer left unclosed commits what it wrote when its store closes (or when
/// Python frees it), as a process's files when it exits.
#[pyclass(frozen, module = "cronusfs._native")]
pub struct Writer {
    handle: Handle,
}

impl Drop for Writer {
    fn drop(&mut self) {
        drop(self.handle.take());
    }
}

impl Drop for Reader {
    fn drop(&mut self) {
        drop(self.handle.take());
    }
}

#[pymethods]
impl Writer {
    /// Writes `data` after what was written so far.
    fn write(&self, py: Python<'_>, data: &[u8]) -> PyResult<()> {
        let (_open, File::Write(file)) = self.handle.file()? else {
            return Err(PyValueError::new_err("not a file open for writing"));
        };
        py.detach(|| {
            let mut file = file.lock().unwrap_or_else(|e| e.into_inner());
            file.as_mut().ok_or(FsError::BadHandle)?.write(data)
        })
        .map_err(|e| fs_error_at(e, &self.handle.path))
    }

    /// How many bytes were written.
    #[getter]
    fn written(&self) -> PyResult<u64> {
        let (_open, File::Write(file)) = self.handle.file()? else {
            return Err(PyValueError::new_err("not a file open for writing"));
        };
        let file = file.lock().unwrap_or_else(|e| e.into_inner());
        Ok(file.as_ref().map_or(0, |f| f.written()))
    }

    /// Commits what was written and closes the file; returns its attributes (`None` when it
    /// was closed already).
    fn close<'py>(&self, py: Python<'py>) -> PyResult<Option<Bound<'py, PyDict>>> {
        let Some((open, File::Write(file))) = self.handle.take() else {
            return Ok(None);
        };
        let attr = py.detach(move || {
            // A write in flight on another thread holds the lock: it lands first.
            let taken = file.lock().unwrap_or_else(|e| e.into_inner()).take();
            let closed = taken.ok_or(FsError::BadHandle).and_then(PathWriter::close);
            drop(open);
            closed
        });
        let attr = attr.map_err(|e| fs_error_at(e, &self.handle.path))?;
        attr_dict(py, &self.handle.path, &attr).map(Some)
    }
}
