//! What the disk under a store has: its free space (`statvfs(3)`) and where a file's data
//! lies between its holes (`lseek(2)` with `SEEK_DATA`). The only libc calls below the mount
//! adapter, each in one small function.

use std::fs::File;
use std::io;
use std::os::fd::AsRawFd;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

/// Returns the statistics of the filesystem holding `path`.
#[allow(unsafe_code)] // statvfs(3) has no safe wrapper in std.
pub fn statvfs(path: &Path) -> io::Result<libc::statvfs> {
    let path = std::ffi::CString::new(path.as_os_str().as_bytes()).map_err(io::Error::other)?;
    let mut st = std::mem::MaybeUninit::<libc::statvfs>::zeroed();
    // SAFETY: `path` is a NUL-terminated string and `st` points to writable memory of the
    // right type; statvfs fills it completely when it returns 0.
    let rc = unsafe { libc::statvfs(path.as_ptr(), st.as_mut_ptr()) };
    if rc != 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: statvfs returned 0, so it initialised `st`.
    Ok(unsafe { st.assume_init() })
}

/// Returns the bytes an unprivileged user may still write on the filesystem holding `path`.
pub fn free_bytes(path: &Path) -> io::Result<u64> {
    let st = statvfs(path)?;
    Ok(st.f_bavail * st.f_frsize)
}

/// Returns the first offset at or after `offset` where `file` has data, or `None` when it has
/// none there (a hole to its end). A filesystem without `SEEK_DATA` has data everywhere.
#[allow(unsafe_code)] // lseek(2) with SEEK_DATA has no safe wrapper in std.
pub fn next_data(file: &File, offset: u64) -> io::Result<Option<u64>> {
    let Ok(at) = libc::off_t::try_from(offset) else {
        return Ok(None);
    };
    // SAFETY: lseek on a descriptor `file` owns; it moves only the file position, which no
    // caller relies on (their reads and writes are positioned).
    let found = unsafe { libc::lseek(file.as_raw_fd(), at, libc::SEEK_DATA) };
    if let Ok(found) = u64::try_from(found) {
        return Ok(Some(found));
    }
    match io::Error::last_os_error() {
        e if e.raw_os_error() == Some(libc::ENXIO) => Ok(None),
        e if e.raw_os_error() == Some(libc::EINVAL) => Ok(Some(offset)),
        e => Err(e),
    }
}
