//! Detects a file's type from its first and last bytes: Arrow IPC file, Arrow IPC stream,
//! Parquet, JSON, CSV, or none of these (the Cronus `FileType`).

use crate::pb::store::FileType;

/// Bytes of the head and tail [`detect`] looks at.
pub const SNIFF_BYTES: usize = 4096;

const ARROW_MAGIC: &[u8] = b"ARROW1";
const PARQUET_MAGIC: &[u8] = b"PAR1";

/// Returns the type of a content of `size` bytes whose first bytes are `head` and last bytes
/// `tail` (each up to [`SNIFF_BYTES`]). Structure is not validated here: a truncated Arrow file
/// whose head says Arrow but whose tail lacks the magic is not an Arrow file.
pub fn detect(head: &[u8], tail: &[u8], size: u64) -> FileType {
    if head.starts_with(ARROW_MAGIC) && tail.ends_with(ARROW_MAGIC) && size >= 12 {
        return FileType::Arrow;
    }
    if head.starts_with(PARQUET_MAGIC) && tail.ends_with(PARQUET_MAGIC) && size >= 8 {
        return FileType::Parquet;
    }
    // An IPC stream starts with a message: the continuation marker 0xFFFFFFFF and a length, or
    // (pre-0.15 format) a bare positive little-endian length.
    if head.len() >= 8
        && head[..4] == [0xFF; 4]
        && i32::from_le_bytes(head[4..8].try_into().expect("4")) > 0
    {
        return FileType::ArrowStream;
    }
    let Ok(text) = std::str::from_utf8(trim_partial_char(head)) else {
        return FileType::None;
    };
    let text = text.trim_start_matches('\u{feff}').trim_start();
    if text.starts_with('{') || text.starts_with('[') {
        return FileType::Json;
    }
    if looks_like_csv(text) {
        return FileType::Csv;
    }
    FileType::None
}

/// Cuts an incomplete UTF-8 character off the end of `head` (a sniff window may split one).
fn trim_partial_char(head: &[u8]) -> &[u8] {
    match std::str::from_utf8(head) {
        Err(e) if e.error_len().is_none() => &head[..e.valid_up_to()],
        _ => head,
    }
}

/// Text whose complete first lines all have the same number (> 1) of commas.
fn looks_like_csv(text: &str) -> bool {
    let lines: Vec<&str> = text.lines().take(5).collect();
    let complete = if text.len() >= SNIFF_BYTES && lines.len() > 1 {
        &lines[..lines.len() - 1]
    } else {
        &lines[..]
    };
    let Some(first) = complete.first() else {
        return false;
    };
    let commas = first.matches(',').count();
    commas > 0 && complete.iter().all(|l| l.matches(',').count() == commas) && !text.contains('\0')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sniffs_each_type() {
        let arrow = [b"ARROW1\0\0".as_slice(), &[1; 20], b"ARROW1"].concat();
        assert_eq!(detect(&arrow, &arrow, arrow.len() as u64), FileType::Arrow);
        assert_eq!(
            detect(&arrow[..10], &arrow[..10], 10),
            FileType::None,
            "truncated Arrow file"
        );
        let stream = [[0xFF; 4].as_slice(), &[16, 0, 0, 0], &[0; 16]].concat();
        assert_eq!(detect(&stream, &stream, 24), FileType::ArrowStream);
        assert_eq!(
            detect(b"PAR1xxxxPAR1", b"PAR1xxxxPAR1", 12),
            FileType::Parquet
        );
        assert_eq!(detect(b" {\"a\": 1}", b"}", 9), FileType::Json);
        assert_eq!(detect(b"a,b,c\n1,2,3\n", b"", 12), FileType::Csv);
        assert_eq!(detect(b"hello world\n", b"", 12), FileType::None);
        assert_eq!(detect(&[0, 159, 146, 150], &[], 4), FileType::None);
        assert_eq!(detect(b"", b"", 0), FileType::None);
    }
}
