//! AFL target: `import-cronus` of a directory whose `.cronus.pb` holds these bytes: imported
//! whole, or an error with nothing imported.
fn main() {
    afl::fuzz!(|data: &[u8]| {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("0.fuzz.cronus.pb"), data).unwrap();
        let m = cronusfs::meta::Metastore::new(cronusfs::storage::MemoryStore::new());
        if cronusfs::meta::cronus_io::import_cronus(&m, dir.path()).is_err() {
            assert!(m.datasets().unwrap().is_empty());
        }
    });
}
