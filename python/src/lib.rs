//! The Python package's native module, `cronusfs._native`: one more thin front over the
//! cronusfs library, beside the CLI and the FUSE adapter. It opens a store as the CLI does,
//! serves paths through the same filesystem core a mount uses, and the catalogue through the
//! same metastore; storage work runs with the GIL released.

mod errors;
mod files;
mod rows;
mod store;

use pyo3::prelude::*;
use pyo3::types::PyBytes;

/// The module: the `Store` class, open files, and the protobuf descriptors of `proto/`.
#[pymodule]
fn _native(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<store::Store>()?;
    m.add_class::<files::Reader>()?;
    m.add_class::<files::Writer>()?;
    let descriptors = PyBytes::new(m.py(), cronusfs::pb::FILE_DESCRIPTORS);
    m.add("FILE_DESCRIPTORS", descriptors)?;
    m.add("VERSION", env!("CARGO_PKG_VERSION"))?;
    Ok(())
}
