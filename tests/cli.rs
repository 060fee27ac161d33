//! The command line as a user types it: init, rows add/get/lift/set/del/dump/import in every
//! output format, and the errors (usage errors exit 2 with one line, run-time errors exit 1).

use std::path::Path;
use std::process::{Command, Output, Stdio};

fn cronusfs(store: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_cronusfs"))
        .arg("--store")
        .arg(store)
        .args(args)
        .stdin(Stdio::null())
        .env_remove("CRONUSFS_STORE")
        .env("TZ", "UTC")
        .output()
        .unwrap()
}

fn ok(store: &Path, args: &[&str]) -> String {
    let out = cronusfs(store, args);
    assert!(
        out.status.success(),
        "{args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// Runs a failing command; returns (exit code, stderr).
fn fails(store: &Path, args: &[&str]) -> (i32, String) {
    let out = cronusfs(store, args);
    let err = String::from_utf8(out.stderr).unwrap();
    assert!(!out.status.success(), "{args:?} should fail");
    assert_eq!(
        err.lines().count(),
        1,
        "{args:?}: one line expected, got {err:?}"
    );
    assert!(
        !err.contains("panicked") && !err.contains("RUST_BACKTRACE"),
        "{err}"
    );
    (out.status.code().unwrap(), err)
}

fn new_store() -> (tempfile::TempDir, std::path::PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("store");
    let out = Command::new(env!("CARGO_BIN_EXE_cronusfs"))
        .arg("init")
        .arg(&store)
        .output()
        .unwrap();
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout).contains("created store"));
    (dir, store)
}

#[test]
fn add_and_lift_in_every_format() {
    let (_dir, s) = new_store();
    ok(&s, &["rows", "add", "n1", "size", "10", "--time", "100"]);
    ok(
        &s,
        &["rows", "add", "n1", "name", "first one", "--time", "101"],
    );
    ok(&s, &["rows", "add", "n2", "size", "-5", "--time", "200"]);
    ok(
        &s,
        &["rows", "add", "n3", "size", "10", "--str", "--time", "300"],
    );
    let table = ok(&s, &["rows", "lift", "size"]);
    let lines: Vec<&str> = table.lines().collect();
    assert_eq!(
        lines[0].split_whitespace().collect::<Vec<_>>(),
        ["IDEN", "PROP", "VALU", "TIME"]
    );
    assert_eq!(
        lines[1].split_whitespace().collect::<Vec<_>>(),
        ["n1", "size", "10", "1970-01-01T00:00:00.100+00:00"],
        "times in local ISO-8601"
    );
    assert_eq!(lines.len(), 4);
    // In another zone (a POSIX TZ string: no tzdata needed), with its offset.
    let elsewhere = Command::new(env!("CARGO_BIN_EXE_cronusfs"))
        .args([
            "--store",
            s.to_str().unwrap(),
            "rows",
            "lift",
            "size",
            "--eq",
            "-5",
        ])
        .env("TZ", "XST-5:30")
        .output()
        .unwrap();
    let shown = String::from_utf8(elsewhere.stdout).unwrap();
    assert!(shown.contains("1970-01-01T05:30:00.200+05:30"), "{shown}");
    let jsonl = ok(
        &s,
        &["rows", "lift", "size", "--eq", "10", "--format", "jsonl"],
    );
    assert_eq!(
        jsonl,
        "{\"iden\":\"n1\",\"prop\":\"size\",\"time\":100,\"valu\":10}\n"
    );
    let jsonl = ok(
        &s,
        &[
            "rows", "lift", "size", "--eq", "10", "--str", "--format", "jsonl",
        ],
    );
    assert_eq!(
        jsonl,
        "{\"iden\":\"n3\",\"prop\":\"size\",\"time\":300,\"valu\":\"10\"}\n"
    );
    assert_eq!(
        ok(
            &s,
            &["rows", "lift", "size", "--ge", "-5", "--format", "tsv"]
        ),
        "n2\tsize\t-5\t200\nn1\tsize\t10\t100\n"
    );
    assert_eq!(
        ok(
            &s,
            &["rows", "lift", "size", "--range", "-5", "10", "--count"]
        ),
        "1\n"
    );
    assert_eq!(
        ok(
            &s,
            &["rows", "lift", "size", "--lt", "0", "--format", "tsv"]
        ),
        "n2\tsize\t-5\t200\n"
    );
    assert_eq!(
        ok(
            &s,
            &[
                "rows",
                "lift",
                "size",
                "--min-time",
                "150",
                "--max-time",
                "300",
                "--format",
                "tsv"
            ]
        ),
        "n2\tsize\t-5\t200\n"
    );
    assert_eq!(
        ok(
            &s,
            &["rows", "lift", "size", "--limit", "1", "--format", "tsv"]
        ),
        "n1\tsize\t10\t100\n"
    );
    let joined = ok(
        &s,
        &[
            "rows", "lift", "size", "--eq", "10", "--join", "--format", "tsv",
        ],
    );
    assert_eq!(joined, "n1\tname\tfirst one\t101\nn1\tsize\t10\t100\n");
    let by_in = ok(
        &s,
        &["rows", "lift", "size", "--in", "-5", "7", "--format", "tsv"],
    );
    assert_eq!(by_in, "n2\tsize\t-5\t200\n");
    assert_eq!(
        ok(&s, &["rows", "get", "n2", "n1", "--format", "tsv"])
            .lines()
            .count(),
        3
    );
}

#[test]
fn change_delete_dump_and_import() {
    let (_dir, s) = new_store();
    ok(&s, &["rows", "add", "a", "x", "1", "--time", "1"]);
    ok(&s, &["rows", "add", "a", "x", "2", "--time", "2"]);
    ok(&s, &["rows", "add", "b", "x", "2", "--time", "3"]);
    ok(&s, &["rows", "set", "a", "x", "tab\there"]);
    let a = ok(&s, &["rows", "get", "a", "--format", "tsv"]);
    assert!(a.starts_with("a\tx\ttab\\there\t"), "{a}");
    assert_eq!(
        ok(&s, &["rows", "update-value", "x", "2", "20"]),
        "updated 1 rows\n"
    );
    assert_eq!(
        ok(&s, &["rows", "rename-prop", "x", "y"]),
        "renamed 2 rows\n"
    );
    let dump = ok(&s, &["rows", "dump"]);
    assert_eq!(dump.lines().count(), 2);
    assert_eq!(ok(&s, &["rows", "del", "a"]), "deleted 1 rows\n");
    assert_eq!(
        ok(&s, &["rows", "del-prop", "y", "--eq", "20", "--join"]),
        "deleted 1 rows\n"
    );
    assert_eq!(ok(&s, &["rows", "dump"]), "");

    let file = s.parent().unwrap().join("rows.jsonl");
    std::fs::write(&file, &dump).unwrap();
    assert_eq!(
        ok(
            &s,
            &["rows", "import", file.to_str().unwrap(), "--batch", "1"]
        ),
        "imported 2 rows\n"
    );
    assert_eq!(ok(&s, &["rows", "dump"]), dump, "dump → import round-trips");
    std::fs::write(
        &file,
        "{\"iden\":\"a\",\"prop\":\"p\",\"valu\":1}\nnot json\n",
    )
    .unwrap();
    let (code, err) = fails(&s, &["rows", "import", file.to_str().unwrap()]);
    assert_eq!(code, 1);
    assert!(err.contains("line 2"), "{err}");
}

#[test]
fn usage_errors_exit_2_with_one_line() {
    let (_dir, s) = new_store();
    for args in [
        &["rows", "lift", "size", "--ge", "ten"][..],
        &["rows", "lift", "size", "--ge", "1", "--le", "2"],
        &["rows", "lift", "size", "--range", "1"],
        &["rows", "frobnicate"],
        &["rows", "add", "a", "b"],
        &["rows", "import", "--batch", "0"],
        &["rows", "lift", "size", "--limit", "-1"],
    ] {
        let (code, err) = fails(&s, args);
        assert_eq!(code, 2, "{args:?}: {err}");
        assert!(err.starts_with("cronusfs: error: "), "{err}");
    }
    let (_, err) = fails(&s, &["rows", "lift"]);
    assert!(
        err.contains("not provided: <PROP>") && err.contains("(usage: cronusfs rows lift"),
        "{err}"
    );
}

#[test]
fn runtime_errors_exit_1_and_name_the_problem() {
    let (dir, s) = new_store();
    let missing = dir.path().join("missing");
    let (code, err) = fails(&missing, &["rows", "get", "a"]);
    assert_eq!(code, 1);
    assert!(
        err.contains("no store at") && err.contains("cronusfs init"),
        "{err}"
    );
    let (_, err) = fails(&s, &["rows", "add", "a", "", "1"]);
    assert!(err.contains("invalid prop"), "{err}");
    let long = "p".repeat(1025);
    let (_, err) = fails(&s, &["rows", "lift", &long]);
    assert!(err.contains("longer than 1024 bytes"), "{err}");
    let (_, err) = fails(&s, &["rows", "lift", "x", "--ge", "1", "--min-time", "5"]);
    assert!(err.contains("do not apply to integer lifts"), "{err}");
    let (_, err) = fails(&s, &["rows", "update-value", "x", "1", "one"]);
    assert!(
        err.contains("cannot replace a int value by a str value"),
        "{err}"
    );
    let out = Command::new(env!("CARGO_BIN_EXE_cronusfs"))
        .arg("init")
        .arg(&s)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("is already a store"));
    let out = Command::new(env!("CARGO_BIN_EXE_cronusfs"))
        .args(["rows", "get", "a"])
        .env_remove("CRONUSFS_STORE")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("no store given"));
}
