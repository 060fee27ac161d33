//! AFL target: Arrow inspection of any bytes, as a file and as a stream (metadata or `None`).
fn main() {
    afl::fuzz!(|data: &[u8]| {
        for file_type in [
            cronusfs::pb::store::FileType::Arrow,
            cronusfs::pb::store::FileType::ArrowStream,
        ] {
            let mut read_at = |off: u64, buf: &mut [u8]| {
                let off = (off as usize).min(data.len());
                let n = buf.len().min(data.len() - off);
                buf[..n].copy_from_slice(&data[off..off + n]);
                Ok(n)
            };
            let _ = cronusfs::meta::arrow_meta::inspect(file_type, data.len() as u64, &mut read_at);
        }
    });
}
