//! Structured random inputs for every decoder (SPEC §6): stored keys and values, the protobuf
//! import, Arrow and Parquet inspection, xattr names and values, row JSON lines, the daemon's
//! socket. Each must answer with a value or a typed error, never panic, and a refused import
//! must leave nothing behind.
//! `PROPTEST_CASES` sets the number of cases (CI runs the default; docs/BENCHMARKS.md records a
//! long run).

use std::path::Path;

use cronusfs::fs::{Ino, XattrFlags};
use cronusfs::meta::cronus_io::import_cronus;
use cronusfs::meta::{DatasetId, Metastore, rowjson};
use cronusfs::pb::store::FileType;
use cronusfs::storage::engine::{Cf, Engine, WriteBatch};
use cronusfs::storage::{IntLift, MemoryStore, PropQuery, Row, RowRead, RowWrite, Storage, Valu};
use proptest::prelude::*;

use crate::arrow_meta::{arrow_file, inspect_bytes};
use crate::fs_core::{core, job_dir, write_file};
use crate::parquet_meta::parquet_file;

fn config() -> ProptestConfig {
    ProptestConfig {
        cases: std::env::var("PROPTEST_CASES")
            .ok()
            .and_then(|n| n.parse().ok())
            .unwrap_or(256),
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

/// A change to a byte string: flip bits, cut it, splice random bytes in, or replace it.
#[derive(Clone, Debug)]
enum Mutation {
    Flip(usize, u8),
    Truncate(usize),
    Splice(usize, Vec<u8>),
    Replace(Vec<u8>),
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        4 => (any::<usize>(), 1u8..).prop_map(|(at, bits)| Mutation::Flip(at, bits)),
        2 => any::<usize>().prop_map(Mutation::Truncate),
        2 => (any::<usize>(), proptest::collection::vec(any::<u8>(), 1..16))
            .prop_map(|(at, b)| Mutation::Splice(at, b)),
        1 => proptest::collection::vec(any::<u8>(), 0..64).prop_map(Mutation::Replace),
    ]
}

fn mutate(bytes: &mut Vec<u8>, mutations: &[Mutation]) {
    for m in mutations {
        let len = bytes.len().max(1);
        match m {
            Mutation::Flip(at, bits) if !bytes.is_empty() => bytes[at % len] ^= bits,
            Mutation::Flip(..) => {}
            Mutation::Truncate(at) => bytes.truncate(at % len),
            Mutation::Splice(at, b) => {
                let at = at % len;
                bytes.splice(at.min(bytes.len())..at.min(bytes.len()), b.iter().copied());
            }
            Mutation::Replace(b) => *bytes = b.clone(),
        }
    }
}

/// Reads everything a store answers, with entries that may not decode in it.
fn read_everything(s: &MemoryStore) {
    let iden = cronusfs::storage::Iden::new("node").unwrap();
    let _ = s.rows_by_id(&iden);
    let _ = s.visit_rows_by_id(&iden, &mut |_, _, _| {});
    let _ = s.rows_by_prop(&PropQuery::new("p"));
    let _ = s.rows_by_prop(&PropQuery::new("p").valu(&Valu::Int(7)));
    let _ = s.join_by_prop(&PropQuery::new("p"));
    let _ = s.rows_by_int("p", IntLift::Range(-5, 500), None);
    let _ = s.joins_by_int("p", IntLift::Ge(0), Some(3));
    let _ = s.blob_keys();
    let _ = s.check_indexes();
    for chunk in s.backup_rows(3) {
        let _ = chunk;
    }
    let _ = s.del_rows_by_id(&iden);
}

fn original_store(root: &Path) -> std::path::PathBuf {
    // The store of the import tests, as the original writes it.
    std::fs::create_dir_all(root).unwrap();
    let m = Metastore::new(MemoryStore::new());
    let ds = DatasetId::random();
    m.create_dataset(ds).unwrap();
    m.add_partition(ds, "k").unwrap();
    m.open_job(ds, cronusfs::meta::JobId(0)).unwrap();
    m.put_object(
        &cronusfs::meta::ObjectPath::new(ds, "k", cronusfs::meta::JobId(0), "x"),
        &mut &arrow_file(1)[..],
        &mut |_| {},
    )
    .unwrap();
    cronusfs::meta::cronus_io::export_cronus(&m, root, "fuzz")
        .unwrap()
        .store_file
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn stored_entries_that_do_not_decode_are_errors(
        entries in proptest::collection::vec(
            (0usize..4, proptest::collection::vec(any::<u8>(), 0..40),
             proptest::collection::vec(any::<u8>(), 0..24)),
            1..8,
        )
    ) {
        let s = MemoryStore::new();
        s.add_rows(&[Row {
            iden: cronusfs::storage::Iden::new("node").unwrap(),
            prop: "p".into(),
            valu: Valu::Int(7),
            time: 1,
        }]).unwrap();
        let mut batch = WriteBatch::new();
        for (cf, key, value) in entries {
            let cf = [Cf::ByIden, Cf::ByPropValu, Cf::ByPropTime, Cf::Blobs][cf];
            batch.put(cf, key, value);
        }
        s.engine().write(batch).unwrap();
        read_everything(&s);
    }

    #[test]
    fn a_damaged_cronus_store_imports_whole_or_not_at_all(
        mutations in proptest::collection::vec(mutation(), 1..4)
    ) {
        let dir = tempfile::tempdir().unwrap();
        let file = original_store(dir.path());
        let mut bytes = std::fs::read(&file).unwrap();
        mutate(&mut bytes, &mutations);
        std::fs::write(&file, &bytes).unwrap();
        let m = Metastore::new(MemoryStore::new());
        if import_cronus(&m, dir.path()).is_err() {
            prop_assert!(m.datasets().unwrap().is_empty());
            prop_assert!(m.storage().backup_rows(100).all(|c| c.unwrap().is_empty()));
        }
    }

    #[test]
    fn damaged_table_bytes_inspect_as_a_table_or_not_at_all(
        mutations in proptest::collection::vec(mutation(), 1..4),
        kind in 0..3usize,
    ) {
        let (file_type, mut bytes) = match kind {
            0 => (FileType::Arrow, arrow_file(2)),
            1 => (FileType::ArrowStream, arrow_file(2)),
            _ => (FileType::Parquet, parquet_file(2)),
        };
        mutate(&mut bytes, &mutations);
        if let Some(meta) = inspect_bytes(file_type, &bytes) {
            prop_assert!(meta.num_columns() <= 3, "{meta:?}");
        }
    }

    #[test]
    fn any_xattr_name_and_value_gets_an_answer(
        names in proptest::collection::vec(
            prop_oneof!["user\\.[a-z:.]{0,12}", "[a-z.]{0,12}", "user\\.cronus\\..{0,8}", ".{0,300}"],
            1..6,
        ),
        value in proptest::collection::vec(any::<u8>(), 0..80),
        flags in 0u8..3,
    ) {
        let dir = tempfile::tempdir().unwrap();
        let fs = core(dir.path());
        let job = job_dir(&fs, DatasetId::random(), "k", 0);
        let file = write_file(&fs, job, "f", b"bytes");
        let flags = match flags {
            0 => XattrFlags::default(),
            1 => XattrFlags { create: true, replace: false },
            _ => XattrFlags { create: false, replace: true },
        };
        for name in &names {
            for ino in [file, job, Ino::ROOT] {
                let _ = fs.setxattr(ino, name, &value, flags);
                let _ = fs.getxattr(ino, name, 0);
                let _ = fs.getxattr(ino, name, 4);
                let _ = fs.listxattr(ino, 0);
                let _ = fs.removexattr(ino, name);
            }
        }
    }

    #[test]
    fn any_row_json_line_is_a_row_or_an_error(line in ".{0,120}") {
        if let Ok(row) = rowjson::from_json_line(&line) {
            prop_assert_eq!(rowjson::from_json_line(&rowjson::to_json_line(&row)).unwrap(), row);
        }
    }
}

/// The daemon's socket protocol: random bytes, damaged requests and random command lines sent
/// to a mounted store's socket. Every connection gets well-formed reply frames ending in an
/// exit status (a request that is not UTF-8 or not JSON gets an error and status 2); the
/// daemon never panics and keeps serving the mount and the command line.
#[test]
fn the_daemon_socket_answers_any_request_or_closes_it() {
    use std::io::{Read, Write};
    use std::os::unix::net::UnixStream;
    let m = crate::mount::Mounted::new();
    let job = m.job_dir();
    std::fs::write(job.join("kept"), b"still here").unwrap();
    let ds = job
        .iter()
        .nth_back(4)
        .unwrap()
        .to_string_lossy()
        .into_owned();
    let words = [
        "cronusfs",
        "rows",
        "add",
        "get",
        "lift",
        "set",
        "del",
        "dump",
        "ls",
        "put",
        "gc",
        "fsck",
        "dataset",
        "show",
        "partition",
        "job",
        "new",
        "menu",
        "config",
        "--store",
        "--json",
        "--eq",
        "--ge",
        "k",
        "0",
        "4294967296",
        "-1",
        "",
        "\u{0}",
        "é",
        &ds,
    ];
    let valid = format!(r#"{{"args":["cronusfs","ls","{ds}/k/0"],"cwd":"/"}}"#);
    let mut seed = 0x5eed_u64;
    let mut next = |n: u64| {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed % n
    };
    let runs: u64 = std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(300);
    let mut answered = 0;
    for i in 0..runs {
        let mut request: Vec<u8> = match next(3) {
            0 => (0..next(200)).map(|_| next(256) as u8).collect(),
            1 => {
                let mut r = valid.clone().into_bytes();
                for _ in 0..=next(4) {
                    let at = next(r.len() as u64) as usize;
                    r[at] ^= 1 + next(255) as u8;
                }
                r
            }
            _ => {
                let args: Vec<&str> = (0..next(8))
                    .map(|_| words[next(words.len() as u64) as usize])
                    .collect();
                serde_json::json!({"args": args, "cwd": "/"})
                    .to_string()
                    .into_bytes()
            }
        };
        request.push(b'\n');
        let mut s = UnixStream::connect(m.store.join("cronusfs.sock")).unwrap();
        s.set_read_timeout(Some(std::time::Duration::from_secs(60)))
            .unwrap();
        let _ = s.write_all(&request);
        let _ = s.shutdown(std::net::Shutdown::Write);
        let mut reply = Vec::new();
        s.read_to_end(&mut reply)
            .unwrap_or_else(|e| panic!("request {i}: no answer: {e}"));
        let mut at = 0;
        let mut ended = reply.is_empty();
        while at < reply.len() {
            assert!(!ended, "request {i}: frames after the exit status");
            assert!(reply.len() >= at + 5, "request {i}: a cut frame header");
            let len = u32::from_be_bytes(reply[at + 1..at + 5].try_into().unwrap()) as usize;
            assert!(
                matches!(reply[at], b'o' | b'e' | b'x'),
                "request {i}: tag {}",
                reply[at]
            );
            ended = reply[at] == b'x';
            at += 5 + len;
        }
        assert!(
            ended && at == reply.len(),
            "request {i}: frames end with the exit status"
        );
        answered += u64::from(!reply.is_empty());
    }
    assert!(
        answered > runs / 2,
        "only {answered} of {runs} requests were answered"
    );
    let log = std::fs::read_to_string(&m.log).unwrap_or_default();
    assert!(!log.contains("panicked"), "{log}");
    assert_eq!(std::fs::read(job.join("kept")).unwrap(), b"still here");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_cronusfs"))
        .arg("--store")
        .arg(&m.store)
        .args(["ls", &format!("{ds}/k/0")])
        .output()
        .unwrap();
    crate::mount::assert_success(&out);
    assert!(String::from_utf8_lossy(&out.stdout).contains("kept"));
}
