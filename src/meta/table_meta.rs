//! What a table file says about itself, read at commit: the schema (field names, types,
//! nullability), the number of columns, rows and batches (record batches of Arrow, row groups
//! of Parquet), the key-value metadata and, for Parquet, the writer. Only footers and message
//! headers are read, never data. Input is untrusted: every length is bounded and checked, and
//! any failure (or a panic inside the Arrow or Parquet crates) means "not a valid table file",
//! never a crash. The decoders are `arrow` (IPC file and stream) and `parquet`.

mod arrow;
mod parquet;

use std::collections::BTreeMap;
use std::panic::{AssertUnwindSafe, catch_unwind};

use arrow_schema::Schema;

use crate::pb::store::FileType;

/// Largest footer or message header inspected; a bigger one is not treated as a table file.
const MAX_HEADER_BYTES: usize = 16 << 20;

/// The format a [`TableMeta`] was read from.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum TableFormat {
    /// An Arrow IPC file or stream.
    #[default]
    Arrow,
    /// A Parquet file.
    Parquet,
}

/// One top-level field of a table's schema.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TableField {
    /// The field's name.
    pub name: String,
    /// Its Arrow type, as Arrow prints it (`Int64`, `Utf8`, `List(Int32)`, …); for Parquet, the
    /// type the Arrow reader gives the column (the embedded Arrow schema when there is one).
    pub data_type: String,
    /// Whether it may hold nulls.
    pub nullable: bool,
}

/// What an Arrow IPC file or stream, or a Parquet file, says about itself.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TableMeta {
    /// Which format this came from.
    pub format: TableFormat,
    /// The top-level fields, in order.
    pub fields: Vec<TableField>,
    /// Number of rows over all batches.
    pub num_rows: u64,
    /// Number of record batches (Arrow) or row groups (Parquet).
    pub num_batches: u64,
    /// The key-value metadata: the Arrow schema's custom metadata, or the Parquet footer's
    /// (without `ARROW:schema`, which is what the field types come from).
    pub metadata: BTreeMap<String, String>,
    /// The application that wrote the file (Parquet's `created_by`).
    pub created_by: Option<String>,
}

impl TableMeta {
    /// Returns the number of columns (top-level fields).
    pub fn num_columns(&self) -> usize {
        self.fields.len()
    }
}

/// Random access to the bytes being inspected: fills the buffer from an offset and returns how
/// many bytes were read (fewer only at the end).
pub type ReadAt<'a> = dyn FnMut(u64, &mut [u8]) -> std::io::Result<usize> + 'a;

/// Returns the metadata of a content of `size` bytes of type `file_type` (`Arrow`,
/// `ArrowStream` or `Parquet`), or `None` when the bytes are not a valid one (or of another
/// type).
pub fn inspect(file_type: FileType, size: u64, read_at: &mut ReadAt<'_>) -> Option<TableMeta> {
    let run = AssertUnwindSafe(|| match file_type {
        FileType::Arrow => arrow::inspect_file(size, read_at),
        FileType::ArrowStream => arrow::inspect_stream(size, read_at),
        FileType::Parquet => parquet::inspect_file(size, read_at),
        _ => None,
    });
    catch_unwind(run).ok().flatten()
}

/// Returns whether a content of `file_type` is inspected by [`inspect`].
pub fn is_table(file_type: FileType) -> bool {
    matches!(
        file_type,
        FileType::Arrow | FileType::ArrowStream | FileType::Parquet
    )
}

fn read_exact(read_at: &mut ReadAt<'_>, offset: u64, len: usize) -> Option<Vec<u8>> {
    if len > MAX_HEADER_BYTES {
        return None;
    }
    let mut buf = vec![0u8; len];
    (read_at(offset, &mut buf).ok()? == len).then_some(buf)
}

/// The fields and custom metadata of an Arrow schema, with no rows or batches counted yet.
fn meta_of(format: TableFormat, schema: &Schema) -> TableMeta {
    let fields = schema
        .fields()
        .iter()
        .map(|f| TableField {
            name: f.name().clone(),
            data_type: f.data_type().to_string(),
            nullable: f.is_nullable(),
        })
        .collect();
    let metadata = schema
        .metadata()
        .iter()
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    TableMeta {
        format,
        fields,
        metadata,
        ..TableMeta::default()
    }
}
