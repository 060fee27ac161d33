//! Arrow IPC metadata read at commit: the schema (field names, types, nullability), the number
//! of columns, rows and record batches, and the schema's custom metadata. Only the file footer
//! and the message headers are read; batch bodies are never read or decoded. Input is untrusted:
//! every length is bounded and checked, and any failure (or a panic inside the Arrow crates)
//! means "not a valid Arrow file", never a crash.

use std::collections::BTreeMap;
use std::panic::{AssertUnwindSafe, catch_unwind};

use arrow_ipc::convert::try_fb_to_schema;
use arrow_ipc::{MessageHeader, root_as_footer, root_as_message};
use arrow_schema::Schema;

use crate::pb::store::FileType;

/// Largest footer or message header inspected; a bigger one is not treated as Arrow.
const MAX_HEADER_BYTES: usize = 16 << 20;
const MAGIC: &[u8] = b"ARROW1";
const CONTINUATION: [u8; 4] = [0xFF; 4];

/// One field of an Arrow schema.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ArrowField {
    /// The field's name.
    pub name: String,
    /// Its type, as Arrow prints it (`Int64`, `Utf8`, `List(Int32)`, …).
    pub data_type: String,
    /// Whether it may hold nulls.
    pub nullable: bool,
}

/// What an Arrow IPC file or stream says about itself.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ArrowMeta {
    /// The top-level fields, in order.
    pub fields: Vec<ArrowField>,
    /// Number of rows over all record batches.
    pub num_rows: u64,
    /// Number of record batches.
    pub num_batches: u64,
    /// The schema's custom metadata.
    pub metadata: BTreeMap<String, String>,
}

impl ArrowMeta {
    /// Returns the number of columns (top-level fields).
    pub fn num_columns(&self) -> usize {
        self.fields.len()
    }
}

/// Random access to the bytes being inspected: fills the buffer from an offset and returns how
/// many bytes were read (fewer only at the end).
pub type ReadAt<'a> = dyn FnMut(u64, &mut [u8]) -> std::io::Result<usize> + 'a;

/// Returns the metadata of a content of `size` bytes of type `file_type` (`Arrow` or
/// `ArrowStream`), or `None` when the bytes are not a valid one (or of another type).
pub fn inspect(file_type: FileType, size: u64, read_at: &mut ReadAt<'_>) -> Option<ArrowMeta> {
    let run = AssertUnwindSafe(|| match file_type {
        FileType::Arrow => inspect_file(size, read_at),
        FileType::ArrowStream => inspect_stream(size, read_at),
        _ => None,
    });
    catch_unwind(run).ok().flatten()
}

fn read_exact(read_at: &mut ReadAt<'_>, offset: u64, len: usize) -> Option<Vec<u8>> {
    if len > MAX_HEADER_BYTES {
        return None;
    }
    let mut buf = vec![0u8; len];
    (read_at(offset, &mut buf).ok()? == len).then_some(buf)
}

fn inspect_file(size: u64, read_at: &mut ReadAt<'_>) -> Option<ArrowMeta> {
    let tail = read_exact(read_at, size.checked_sub(10)?, 10)?;
    if &tail[4..] != MAGIC {
        return None;
    }
    let footer_len = usize::try_from(i32::from_le_bytes(tail[..4].try_into().ok()?)).ok()?;
    let footer_at = size.checked_sub(10 + footer_len as u64)?;
    if footer_at < 8 {
        return None;
    }
    let footer_bytes = read_exact(read_at, footer_at, footer_len)?;
    let footer = root_as_footer(&footer_bytes).ok()?;
    let schema = try_fb_to_schema(footer.schema()?).ok()?;
    let mut meta = meta_of(&schema);
    for block in footer.recordBatches()?.iter() {
        let offset = u64::try_from(block.offset()).ok()?;
        let len = usize::try_from(block.metaDataLength()).ok()?;
        if offset.checked_add(len as u64)? > footer_at {
            return None;
        }
        let header = read_exact(read_at, offset, len)?;
        let start = if header.starts_with(&CONTINUATION) {
            8
        } else {
            4
        };
        let message = root_as_message(header.get(start..)?).ok()?;
        meta.num_rows = meta
            .num_rows
            .checked_add(u64::try_from(message.header_as_record_batch()?.length()).ok()?)?;
        meta.num_batches += 1;
    }
    Some(meta)
}

fn inspect_stream(size: u64, read_at: &mut ReadAt<'_>) -> Option<ArrowMeta> {
    let (mut offset, mut meta) = (0u64, None::<ArrowMeta>);
    while offset < size {
        let prefix = read_exact(read_at, offset, 8.min((size - offset) as usize))?;
        let (len, skip) = match prefix.get(..4)? {
            p if p == CONTINUATION => (i32::from_le_bytes(prefix.get(4..8)?.try_into().ok()?), 8),
            p => (i32::from_le_bytes(p.try_into().ok()?), 4),
        };
        if len == 0 {
            break; // End-of-stream marker.
        }
        let len = usize::try_from(len).ok()?;
        let header = read_exact(read_at, offset + skip, len)?;
        let message = root_as_message(&header).ok()?;
        let body = u64::try_from(message.bodyLength()).ok()?;
        match message.header_type() {
            MessageHeader::Schema if meta.is_none() => {
                meta = Some(meta_of(
                    &try_fb_to_schema(message.header_as_schema()?).ok()?,
                ));
            }
            MessageHeader::RecordBatch => {
                let m = meta.as_mut()?;
                m.num_rows = m
                    .num_rows
                    .checked_add(u64::try_from(message.header_as_record_batch()?.length()).ok()?)?;
                m.num_batches += 1;
            }
            MessageHeader::DictionaryBatch if meta.is_some() => {}
            _ => return None,
        }
        offset = offset.checked_add(skip + len as u64)?.checked_add(body)?;
        if offset > size {
            return None;
        }
    }
    meta
}

fn meta_of(schema: &Schema) -> ArrowMeta {
    let fields = schema
        .fields()
        .iter()
        .map(|f| ArrowField {
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
    ArrowMeta {
        fields,
        num_rows: 0,
        num_batches: 0,
        metadata,
    }
}
