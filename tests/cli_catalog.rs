//! The seed walkthrough through the command line, as a new user types it: menu, config,
//! dataset, three partitions, ten jobs, an Arrow file of ten batches put for every job and
//! partition, each read back with ten batches; `ls`, `dataset show`, `gc`; `fsck` clean, then
//! catching a corrupted chunk and a stray index entry.

use std::path::Path;
use std::process::{Command, Output, Stdio};

use arrow_ipc::reader::FileReader;
use cronusfs::storage::engine::{Cf, Engine, EngineRead, WriteBatch};
use cronusfs::storage::rocks::RocksEngine;
use cronusfs::storage::{RocksStore, RowRead, RowWrite};

use crate::arrow_meta::arrow_file;

fn run(store: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_cronusfs"))
        .arg("--store")
        .arg(store)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .unwrap()
}

fn ok(store: &Path, args: &[&str]) -> String {
    let out = run(store, args);
    assert!(
        out.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout)
        .unwrap()
        .trim_end()
        .to_string()
}

#[test]
fn seed_scenario_through_the_cli() {
    let dir = tempfile::tempdir().unwrap();
    let s = dir.path().join("store");
    let out = Command::new(env!("CARGO_BIN_EXE_cronusfs"))
        .arg("init")
        .arg(&s)
        .output()
        .unwrap();
    assert!(out.status.success());
    seed_scenario(&s, dir.path());
}

/// The seed scenario on the store `s` (new and empty), with scratch files in `scratch`.
pub fn seed_scenario(s: &Path, scratch: &Path) {
    let menu = ok(s, &["menu", "new"]);
    let config = ok(s, &["config", "new", "--name", "test.config.dat"]);
    assert_eq!(
        ok(s, &["config", "ls"]),
        format!("{config}\ttest.config.dat")
    );
    let ds = ok(
        s,
        &["dataset", "create", "--menu", &menu, "--config", &config],
    );
    ok(s, &["partition", "add", &ds, "key1", "key2", "key3"]);
    assert_eq!(ok(s, &["partition", "ls", &ds]), "key1\nkey2\nkey3");
    let file = scratch.join("batches.arrow");
    std::fs::write(&file, arrow_file(10)).unwrap();
    for n in 0..10 {
        assert_eq!(ok(s, &["job", "new", &ds]), n.to_string());
        for key in ["key1", "key2", "key3"] {
            let line = ok(
                s,
                &[
                    "put",
                    file.to_str().unwrap(),
                    &format!("{ds}/{key}/{n}/data.arrow"),
                ],
            );
            assert!(line.contains("\tARROW\tversion 1"), "{line}");
        }
    }
    let show = ok(s, &["dataset", "show", &ds]);
    assert!(
        show.contains("partitions  key1 key2 key3")
            && show.contains("jobs        0 1 2 3 4 5 6 7 8 9"),
        "{show}"
    );
    for n in 0..10 {
        for key in ["key1", "key2", "key3"] {
            let back = scratch.join("back.arrow");
            ok(
                s,
                &[
                    "get",
                    &format!("{ds}/{key}/{n}/data.arrow"),
                    "-o",
                    back.to_str().unwrap(),
                ],
            );
            let reader = FileReader::try_new(std::fs::File::open(&back).unwrap(), None).unwrap();
            assert_eq!(reader.num_batches(), 10);
        }
    }
    let ls = ok(s, &["ls", &format!("{ds}/key2/7")]);
    assert!(
        ls.starts_with("data.arrow\t") && ls.contains("\tARROW\t1\t"),
        "{ls}"
    );
    assert_eq!(ok(s, &["gc"]), "freed 0 contents, 0 chunks, 0 bytes");
    assert!(
        ok(s, &["fsck"]).starts_with("clean: 3 contents, 30 objects"),
        "menu, config, one shared Arrow content"
    );
    let lifted = ok(
        s,
        &[
            "rows",
            "lift",
            "cronus:arrow:num_batches",
            "--eq",
            "10",
            "--count",
        ],
    );
    assert_eq!(lifted, "30");
}

#[test]
fn fsck_finds_a_corrupted_chunk_and_a_stray_index_entry() {
    let dir = tempfile::tempdir().unwrap();
    let s = dir.path().join("store");
    Command::new(env!("CARGO_BIN_EXE_cronusfs"))
        .arg("init")
        .arg(&s)
        .output()
        .unwrap();
    let (menu, config) = (ok(&s, &["menu", "new"]), ok(&s, &["config", "new"]));
    let ds = ok(
        &s,
        &["dataset", "create", "--menu", &menu, "--config", &config],
    );
    ok(&s, &["partition", "add", &ds, "k"]);
    ok(&s, &["job", "new", &ds]);
    let file = dir.path().join("f.arrow");
    std::fs::write(&file, arrow_file(3)).unwrap();
    ok(&s, &["put", file.to_str().unwrap(), &format!("{ds}/k/0")]);
    assert!(ok(&s, &["fsck"]).starts_with("clean"));
    {
        let store = RocksStore::open(&s).unwrap();
        let chunk = store
            .blob_keys_with_prefix("chunk/")
            .unwrap()
            .pop()
            .unwrap();
        let mut bytes = store.blob_get(&chunk).unwrap().unwrap();
        bytes[0] ^= 0xFF;
        store.blob_set(&chunk, &bytes).unwrap();
    }
    let out = run(&s, &["fsck"]);
    assert_eq!(out.status.code(), Some(1));
    let report = String::from_utf8_lossy(&out.stdout);
    assert!(report.contains("does not match its hash"), "{report}");
    assert!(
        report.contains("is damaged")
            && ["/partitions/k/jobs/0/f.arrow", &menu, &config]
                .iter()
                .any(|who| report.contains(&**who)),
        "what holds the content is named: {report}"
    );
    assert!(String::from_utf8_lossy(&out.stderr).contains("2 problems found"));
    {
        let engine = RocksEngine::open(&s, false).unwrap();
        let mut b = WriteBatch::new();
        let row =
            cronusfs::storage::Row::new(&cronusfs::storage::Iden::new("ghost").unwrap(), "p", 1, 1);
        let key = {
            // A row present in the by-iden index only: written through a scratch store, copied.
            let scratch = cronusfs::storage::MemoryStore::new();
            scratch.add_rows(&[row]).unwrap();
            let mut found = None;
            scratch
                .engine()
                .scan(Cf::ByIden, &[], None, &mut |k, _| {
                    found = Some(k.to_vec());
                    Ok(false)
                })
                .unwrap();
            found.unwrap()
        };
        b.put(Cf::ByIden, key, Vec::new());
        engine.write(b).unwrap();
    }
    let report = String::from_utf8_lossy(&run(&s, &["fsck"]).stdout).to_string();
    assert!(
        report.contains("rows_by_iden: row")
            && report.contains("is missing from rows_by_prop_valu"),
        "{report}"
    );
}

#[test]
fn progress_is_drawn_on_a_terminal_and_nowhere_else() {
    let dir = tempfile::tempdir().unwrap();
    let s = dir.path().join("store");
    ok(dir.path(), &["init", s.to_str().unwrap()]);
    let ds = ok(
        &s,
        &[
            "dataset",
            "create",
            "--menu",
            &ok(&s, &["menu", "new"]),
            "--config",
            &ok(&s, &["config", "new"]),
        ],
    );
    ok(&s, &["partition", "add", &ds, "k"]);
    ok(&s, &["job", "new", &ds]);
    let file = dir.path().join("big.bin");
    std::fs::write(&file, vec![7u8; 8 << 20]).unwrap();

    // Not a terminal: stderr stays empty.
    let out = run(
        &s,
        &["put", file.to_str().unwrap(), &format!("{ds}/k/0/piped")],
    );
    assert!(out.status.success() && out.stderr.is_empty());

    // On a terminal (script(1) gives the command a pseudo-terminal), the put draws its bar.
    let line = format!(
        "{} --store {} put {} {ds}/k/0/tty",
        env!("CARGO_BIN_EXE_cronusfs"),
        s.display(),
        file.display()
    );
    let typescript = dir.path().join("typescript");
    let status = Command::new("timeout")
        .args(["60", "script", "-qec", &line])
        .arg(&typescript)
        .stdout(Stdio::null())
        .status()
        .unwrap();
    assert!(status.success());
    let shown = String::from_utf8_lossy(&std::fs::read(&typescript).unwrap()).into_owned();
    assert!(shown.contains("put tty ["), "{shown}");
    assert!(shown.contains("/ 8.0 MiB"), "{shown}");
    assert!(shown.contains("\u{1b}[2K"), "the bar is erased: {shown}");
}
