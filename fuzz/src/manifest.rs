//! AFL target: a stored manifest's bytes, decoded (any bytes: a manifest or a typed error).
fn main() {
    afl::fuzz!(|data: &[u8]| {
        let id = cronusfs::meta::ContentId::of(b"fuzz");
        if let Ok(m) = cronusfs::meta::Manifest::decode(id, data) {
            assert_eq!(
                cronusfs::meta::Manifest::decode(id, &m.encode()).ok(),
                Some(m)
            );
        }
    });
}
