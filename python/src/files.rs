//! Paths of a store, answered as a mount answers them (the same filesystem core): `stat`,
//! listings, extended attributes, directories, and files opened for reading (every read of
//! the version committed at the open) or writing (committed, durable, at `close`).

use std::sync::{Arc, Mutex};

use cronusfs::fs::{Attr, Kind, PathReader, PathWriter, millis_of};
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
        Ok(Reader {
            size: reader.size(),
            file: Mutex::new(Some((reader, open))),
            path: path.to_string(),
        })
    }

    /// Opens file `path` for writing from its start (a new object, or a new version).
    fn open_write(&self, py: Python<'_>, path: &str) -> PyResult<Writer> {
        let open = self.get()?;
        let core = open.core.clone();
        let writer = py
            .detach(|| PathWriter::create(core, path))
            .map_err(|e| fs_error_at(e, path))?;
        Ok(Writer {
            file: Mutex::new(Some((writer, open))),
            path: path.to_string(),
        })
    }
}

type OpenReader = PathReader<Box<dyn Storage>, Arc<Core>>;
type OpenWriter = PathWriter<Box<dyn Storage>, Arc<Core>>;

/// A file open for reading: every read is of the version committed when it was opened.
/// Until it is closed it keeps its store open (closing the store lets it go once its files
/// are closed).
#[pyclass(frozen, module = "cronusfs._native")]
pub struct Reader {
    file: Mutex<Option<(OpenReader, Arc<Open>)>>,
    size: u64,
    path: String,
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
        let bytes = py.detach(|| {
            let file = self.file.lock().unwrap_or_else(|e| e.into_inner());
            let (file, _) = file.as_ref().ok_or(cronusfs::fs::FsError::BadHandle)?;
            file.read(offset, length)
        });
        Ok(PyBytes::new(
            py,
            &bytes.map_err(|e| fs_error_at(e, &self.path))?,
        ))
    }

    /// Closes the file.
    fn close(&self, py: Python<'_>) -> PyResult<()> {
        let file = self.file.lock().unwrap_or_else(|e| e.into_inner()).take();
        let Some((file, open)) = file else {
            return Ok(());
        };
        // The store is let go with the file: a closed store is released once its files are.
        py.detach(move || {
            let closed = file.close();
            drop(open);
            closed
        })
        .map_err(|e| fs_error_at(e, &self.path))
    }
}

/// A file open for writing: bytes land in order; `close` commits them, durable when it
/// returns; a writer dropped unclosed commits what it wrote, as a process that exits does.
#[pyclass(frozen, module = "cronusfs._native")]
pub struct Writer {
    file: Mutex<Option<(OpenWriter, Arc<Open>)>>,
    path: String,
}

#[pymethods]
impl Writer {
    /// Writes `data` after what was written so far.
    fn write(&self, py: Python<'_>, data: &[u8]) -> PyResult<()> {
        py.detach(|| {
            let mut file = self.file.lock().unwrap_or_else(|e| e.into_inner());
            let (file, _) = file.as_mut().ok_or(cronusfs::fs::FsError::BadHandle)?;
            file.write(data)
        })
        .map_err(|e| fs_error_at(e, &self.path))
    }

    /// How many bytes were written.
    #[getter]
    fn written(&self) -> PyResult<u64> {
        let file = self.file.lock().unwrap_or_else(|e| e.into_inner());
        let (file, _) = file
            .as_ref()
            .ok_or_else(|| PyValueError::new_err("the file was closed"))?;
        Ok(file.written())
    }

    /// Commits what was written and closes the file; returns its attributes.
    fn close<'py>(&self, py: Python<'py>) -> PyResult<Option<Bound<'py, PyDict>>> {
        let file = self.file.lock().unwrap_or_else(|e| e.into_inner()).take();
        let Some((file, open)) = file else {
            return Ok(None);
        };
        let attr = py.detach(move || {
            let closed = file.close();
            drop(open);
            closed
        });
        let attr = attr.map_err(|e| fs_error_at(e, &self.path))?;
        attr_dict(py, &self.path, &attr).map(Some)
    }
}
