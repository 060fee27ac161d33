//! How the library's errors reach Python: the errno a mount would answer, as the `OSError`
//! subclass Python makes of it (`FileNotFoundError`, `FileExistsError`, …); for the Cronus
//! calls, the original's `KeyError` for what is not registered and `ValueError` for what
//! cannot be registered.

use cronusfs::fs::FsError;
use cronusfs::meta::MetaError;
use cronusfs::storage::StorageError;
use pyo3::PyErr;
use pyo3::exceptions::{PyKeyError, PyOSError, PyValueError};

/// An error of a path operation: `OSError(errno, message)`.
pub fn fs_error(e: FsError) -> PyErr {
    let errno = e.errno();
    PyOSError::new_err((errno, e.to_string()))
}

/// An error of a path operation on `path`: `OSError(errno, message, path)`.
pub fn fs_error_at(e: FsError, path: &str) -> PyErr {
    let errno = e.errno();
    PyOSError::new_err((errno, e.to_string(), path.to_string()))
}

/// An error of a catalogue call, as the Cronus original raises it: `KeyError` for an unknown
/// id, `ValueError` for what cannot be registered (a duplicate, a bad name, an unregistered
/// partition), `OSError` for the store failing.
pub fn meta_error(e: MetaError) -> PyErr {
    let message = e.to_string();
    match FsError::Meta(e).errno() {
        libc::ENOENT => PyKeyError::new_err(message),
        libc::EEXIST | libc::EINVAL | libc::ENAMETOOLONG | libc::ENOTEMPTY => {
            PyValueError::new_err(message)
        }
        errno => PyOSError::new_err((errno, message)),
    }
}

/// An error opening a store: a store directory held by a mount's daemon says so.
pub fn open_error(e: StorageError, location: &str) -> PyErr {
    match e {
        StorageError::Locked { .. } => PyOSError::new_err((
            libc::EBUSY,
            format!(
                "{location} is open elsewhere: in another process (a mount's daemon, a \
                 command: read and write it through that mount, or share it as a postgres:// \
                 store), or still in this one (a store closed while one of its files is being \
                 read or written is let go when that call ends)"
            ),
        )),
        other => meta_error(MetaError::Storage(other)),
    }
}
