//! Arrow IPC files and streams: the schema from the footer (file) or the first message
//! (stream), rows and record batches counted from the message headers; batch bodies are never
//! read.

use arrow_ipc::convert::try_fb_to_schema;
use arrow_ipc::{MessageHeader, root_as_footer, root_as_message};

use super::{ReadAt, TableFormat, TableMeta, meta_of, read_exact};

const MAGIC: &[u8] = b"ARROW1";
const CONTINUATION: [u8; 4] = [0xFF; 4];

pub(super) fn inspect_file(size: u64, read_at: &mut ReadAt<'_>) -> Option<TableMeta> {
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
    let mut meta = meta_of(TableFormat::Arrow, &schema);
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

pub(super) fn inspect_stream(size: u64, read_at: &mut ReadAt<'_>) -> Option<TableMeta> {
    let (mut offset, mut meta) = (0u64, None::<TableMeta>);
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
                    TableFormat::Arrow,
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
