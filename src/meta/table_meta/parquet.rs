//! Parquet files: the footer's schema (as the Arrow reader types its columns), rows, row
//! groups, key-value metadata and writer; pages are never read.

use ::parquet::arrow::parquet_to_arrow_schema;
use ::parquet::file::metadata::ParquetMetaDataReader;

use super::{ReadAt, TableFormat, TableMeta, meta_of, read_exact};

const MAGIC: &[u8] = b"PAR1";
/// The key of the Arrow schema Arrow writers embed: decoded into the field types (and its
/// custom metadata), not kept as a metadata row (it is a base64 IPC message).
const ARROW_SCHEMA_KEY: &str = "ARROW:schema";

pub(super) fn inspect_file(size: u64, read_at: &mut ReadAt<'_>) -> Option<TableMeta> {
    let tail = read_exact(read_at, size.checked_sub(8)?, 8)?;
    if &tail[4..] != MAGIC {
        return None;
    }
    let footer_len = u64::from(u32::from_le_bytes(tail[..4].try_into().ok()?));
    let footer_at = size.checked_sub(8 + footer_len)?;
    if footer_at < MAGIC.len() as u64 {
        return None;
    }
    let footer = read_exact(read_at, footer_at, usize::try_from(footer_len).ok()?)?;
    let parsed = ParquetMetaDataReader::decode_metadata(&footer).ok()?;
    let file = parsed.file_metadata();
    let (descr, pairs) = (file.schema_descr(), file.key_value_metadata());
    // The embedded Arrow schema gives the writer's own types; one that cannot be decoded is
    // ignored, and the columns get the types the Parquet schema alone gives.
    let schema = parquet_to_arrow_schema(descr, pairs)
        .or_else(|_| parquet_to_arrow_schema(descr, None))
        .ok()?;
    let mut meta = meta_of(TableFormat::Parquet, &schema);
    for kv in pairs.into_iter().flatten() {
        if kv.key != ARROW_SCHEMA_KEY {
            (meta.metadata.entry(kv.key.clone()))
                .or_insert_with(|| kv.value.clone().unwrap_or_default());
        }
    }
    meta.num_rows = u64::try_from(file.num_rows()).ok()?;
    meta.num_batches = parsed.num_row_groups() as u64;
    meta.created_by = file.created_by().map(str::to_string);
    Some(meta)
}
