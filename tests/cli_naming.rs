//! The command line as a new user types it: one way to name the store (`-s`, the environment,
//! or the positional of the commands that had one), objects named by path (`cp` order) or by
//! uuid, listings of a dataset or a partition, a new store's creation blob, and the mistakes
//! (a terminal on standard input, a missing folder) answered in one line.

use std::path::Path;
use std::process::{Command, Output, Stdio};

use cronusfs::storage::{RocksStore, RowRead};

const BIN: &str = env!("CARGO_BIN_EXE_cronusfs");

/// Runs cronusfs with `args` in `cwd`, CRONUSFS_STORE set to `env_store` (or unset).
fn run(cwd: &Path, env_store: Option<&Path>, args: &[&str], stdin: Option<&[u8]>) -> Output {
    let mut c = Command::new("timeout");
    c.arg("60").arg(BIN).args(args).current_dir(cwd);
    match env_store {
        Some(s) => c.env("CRONUSFS_STORE", s),
        None => c.env_remove("CRONUSFS_STORE"),
    };
    let Some(bytes) = stdin else {
        return c.stdin(Stdio::null()).output().unwrap();
    };
    c.stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = c.spawn().unwrap();
    std::io::Write::write_all(&mut child.stdin.take().unwrap(), bytes).unwrap();
    child.wait_with_output().unwrap()
}

fn ok(out: Output) -> String {
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// The one line a failed command said.
fn one_line_error(out: Output) -> String {
    assert!(!out.status.success());
    let said = String::from_utf8(out.stderr).unwrap();
    assert_eq!(said.lines().count(), 1, "{said}");
    assert!(said.starts_with("cronusfs: error: "), "{said}");
    said
}

#[test]
fn the_store_is_named_by_s_the_environment_or_the_positional() {
    let tmp = tempfile::tempdir().unwrap();
    let (a, b, c) = (
        tmp.path().join("a"),
        tmp.path().join("b"),
        tmp.path().join("c"),
    );
    let before = cronusfs::storage::now_millis();
    ok(run(tmp.path(), None, &["init", a.to_str().unwrap()], None));
    ok(run(
        tmp.path(),
        None,
        &["-s", b.to_str().unwrap(), "init"],
        None,
    ));
    ok(run(tmp.path(), Some(&c), &["init"], None));
    let again = one_line_error(run(tmp.path(), Some(&c), &["init"], None));
    assert!(again.contains("is already a store"), "{again}");
    for store in [&a, &b, &c] {
        let rows = RocksStore::open(store).unwrap();
        let created = rows
            .blob_get("syn:core:created")
            .unwrap()
            .expect("the blob");
        let created = i64::from_be_bytes(created.try_into().expect("8 bytes"));
        assert!(created >= before && created <= cronusfs::storage::now_millis());
    }
    // fsck and gc take the store as a positional too, or from -s and the environment.
    for args in [
        vec!["fsck", a.to_str().unwrap()],
        vec!["gc", a.to_str().unwrap()],
        vec!["-s", a.to_str().unwrap(), "fsck"],
    ] {
        ok(run(tmp.path(), None, &args, None));
    }
    ok(run(tmp.path(), Some(&a), &["fsck"], None));
    // The positional wins over the environment.
    ok(run(
        tmp.path(),
        Some(&tmp.path().join("none")),
        &["fsck", a.to_str().unwrap()],
        None,
    ));
    // export-cronus and import-cronus: [STORE] DIR.
    let export = tmp.path().join("export");
    ok(run(
        tmp.path(),
        Some(&a),
        &["export-cronus", export.to_str().unwrap()],
        None,
    ));
    let d = tmp.path().join("d");
    let imported = ok(run(
        tmp.path(),
        None,
        &[
            "-s",
            d.to_str().unwrap(),
            "import-cronus",
            export.to_str().unwrap(),
        ],
        None,
    ));
    assert!(imported.starts_with("imported"), "{imported}");
    let none = one_line_error(run(tmp.path(), None, &["fsck"], None));
    assert!(none.contains("no store given"), "{none}");
    // A usage error with the store in the environment does not show --store as missing.
    let usage = one_line_error(run(tmp.path(), Some(&a), &["dataset", "create"], None));
    assert!(
        usage.contains("(usage: cronusfs dataset create --menu"),
        "{usage}"
    );
    assert!(!usage.contains("--store"), "{usage}");
    // Usage lines name the store as optional, environment or not.
    let help = ok(run(tmp.path(), Some(&a), &["fsck", "--help"], None));
    assert!(
        help.contains("Usage: cronusfs fsck [OPTIONS] [STORE]"),
        "{help}"
    );
}

/// A store with a dataset (partitions k1, k2), job 0, and its uuid.
fn catalogue(tmp: &Path) -> (std::path::PathBuf, String) {
    let store = tmp.join("store");
    ok(run(tmp, None, &["init", store.to_str().unwrap()], None));
    let s = Some(store.as_path());
    let menu = ok(run(tmp, s, &["menu", "new"], None)).trim().to_string();
    let config = ok(run(tmp, s, &["config", "new"], None)).trim().to_string();
    let create = ["dataset", "create", "--menu", &menu, "--config", &config];
    let ds = ok(run(tmp, s, &create, None)).trim().to_string();
    ok(run(tmp, s, &["partition", "add", &ds, "k1", "k2"], None));
    ok(run(tmp, s, &["job", "new", &ds], None));
    (store, ds)
}

#[test]
fn objects_are_named_by_path_in_cp_order_or_by_uuid() {
    let tmp = tempfile::tempdir().unwrap();
    let (store, ds) = catalogue(tmp.path());
    let s = Some(store.as_path());
    std::fs::write(tmp.path().join("notes.csv"), "a,b\n1,2\n").unwrap();
    // NAME defaults to FILE's name; the output names the place, uuid and Cronus name.
    let put = ok(run(
        tmp.path(),
        s,
        &["put", "notes.csv", &format!("{ds}/k1/0")],
        None,
    ));
    let fields: Vec<&str> = put.trim_end().split('\t').collect();
    assert_eq!(fields[0], format!("{ds}/k1/0/notes.csv"), "{put}");
    let uuid = fields[1].to_string();
    assert_eq!(fields[2], format!("{ds}.job_0.part_k1.{uuid}.csv"));
    assert_eq!(&fields[3..], ["8", "CSV", "version 1"]);
    // Standard input needs the name; piped, it is read.
    let piped = ok(run(
        tmp.path(),
        s,
        &["put", "-", &format!("{ds}/k2/0/piped.txt")],
        Some(b"from a pipe"),
    ));
    assert!(
        piped.starts_with(&format!("{ds}/k2/0/piped.txt\t")),
        "{piped}"
    );
    let unnamed = one_line_error(run(
        tmp.path(),
        s,
        &["put", "-", &format!("{ds}/k2/0")],
        Some(b"x"),
    ));
    assert!(unnamed.contains("give the object's name"), "{unnamed}");

    let by_path = ok(run(
        tmp.path(),
        s,
        &["get", &format!("{ds}/k1/0/notes.csv")],
        None,
    ));
    assert_eq!(by_path, "a,b\n1,2\n");
    let by_uuid = ok(run(tmp.path(), s, &["get", &uuid], None));
    assert_eq!(by_uuid, by_path);

    // ls of a dataset, a partition, a job directory: paths from there.
    let first = |out: String| -> Vec<String> {
        out.lines()
            .map(|l| l.split('\t').next().unwrap().to_string())
            .collect()
    };
    let all = first(ok(run(tmp.path(), s, &["ls", &ds], None)));
    assert_eq!(all, ["k1/0/notes.csv", "k2/0/piped.txt"]);
    let k2 = first(ok(run(tmp.path(), s, &["ls", &format!("{ds}/k2")], None)));
    assert_eq!(k2, ["0/piped.txt"]);
    let job = ok(run(tmp.path(), s, &["ls", &format!("{ds}/k1/0")], None));
    let line: Vec<&str> = job.trim_end().split('\t').collect();
    assert_eq!(&line[..6], ["notes.csv", "8", "CSV", "1", &uuid, fields[2]]);
    let missing = one_line_error(run(tmp.path(), s, &["ls", &format!("{ds}/k9")], None));
    assert!(missing.contains("no partition \"k9\""), "{missing}");
}

#[test]
fn the_mistakes_of_a_new_user_get_one_clear_line() {
    let tmp = tempfile::tempdir().unwrap();
    let (store, ds) = catalogue(tmp.path());
    let s = Some(store.as_path());
    std::fs::write(tmp.path().join("f.txt"), "x").unwrap();
    // A name with `/` is a path in the job directory: its folder must exist.
    let folder = one_line_error(run(
        tmp.path(),
        s,
        &["put", "f.txt", &format!("{ds}/k1/0/sub/f.txt")],
        None,
    ));
    assert!(
        folder.contains(&format!("no folder {ds}/partitions/k1/jobs/0/sub")),
        "{folder}"
    );
    // The old argument order is refused with the new form in the message.
    let old = one_line_error(run(tmp.path(), s, &["put", &ds, "k1", "0", "f.txt"], None));
    assert!(old.contains("unexpected argument"), "{old}");
    let bad_job = one_line_error(run(
        tmp.path(),
        s,
        &["put", "f.txt", &format!("{ds}/k1/x")],
        None,
    ));
    assert!(bad_job.contains("not a job number"), "{bad_job}");
    // `put -` with a terminal on standard input does not wait for typing: script(1) gives
    // the command a pseudo-terminal.
    let line = format!(
        "{BIN} -s {} put - {ds}/k1/0/typed.txt; echo status=$?",
        store.display()
    );
    let out = Command::new("timeout")
        .args(["20", "script", "-qec", &line, "/dev/null"])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(said.contains("standard input is a terminal"), "{said}");
    assert!(said.contains("status=1"), "{said}");
}

#[test]
fn registered_messages_are_read_back_and_kinds_are_not_mixed_up() {
    use cronusfs::pb::cronus::{Configuration, Graph, Menu, Module, Node};
    use prost::Message;
    let tmp = tempfile::tempdir().unwrap();
    let store = tmp.path().join("store");
    ok(run(
        tmp.path(),
        None,
        &["init", store.to_str().unwrap()],
        None,
    ));
    let s = Some(store.as_path());
    let menu = Menu {
        name: "menu.dat".into(),
        uuid: "7d8a7bd8-5a39-4a55-9c4b-1f7f2b0a2f61".into(),
        graphs: vec![Graph {
            name: "g".into(),
            nodes: vec![Node {
                name: "n".into(),
                parents: vec![],
                algos: vec!["a".into()],
            }],
        }],
    };
    let config = Configuration {
        name: "config.dat".into(),
        uuid: "0b0c4a9e-8d8e-4f39-a7a5-5a3f1f9d6c12".into(),
        algos: vec![Module {
            name: "a".into(),
            module: "artemis.algos".into(),
            klass: "Algo".into(),
            properties: None,
        }],
        ..Default::default()
    };
    let (menu_file, config_file) = (tmp.path().join("menu.pb"), tmp.path().join("config.pb"));
    std::fs::write(&menu_file, menu.encode_to_vec()).unwrap();
    std::fs::write(&config_file, config.encode_to_vec()).unwrap();
    let wrong = one_line_error(run(tmp.path(), s, &["config", "add", "menu.pb"], None));
    assert!(wrong.contains("holds a Menu"), "{wrong}");
    let wrong = one_line_error(run(tmp.path(), s, &["menu", "add", "config.pb"], None));
    assert!(wrong.contains("holds a Configuration"), "{wrong}");
    assert_eq!(
        ok(run(tmp.path(), s, &["menu", "add", "menu.pb"], None)).trim(),
        menu.uuid
    );
    assert_eq!(
        ok(run(tmp.path(), s, &["config", "add", "config.pb"], None)).trim(),
        config.uuid
    );
    // Read back as registered: the bytes a job decodes at its start.
    let out = run(tmp.path(), s, &["menu", "get", &menu.uuid], None);
    assert!(out.status.success());
    assert_eq!(Menu::decode(out.stdout.as_slice()).unwrap(), menu);
    ok(run(
        tmp.path(),
        s,
        &["config", "get", &config.uuid, "-o", "back.pb"],
        None,
    ));
    let back = std::fs::read(tmp.path().join("back.pb")).unwrap();
    assert_eq!(back, std::fs::read(&config_file).unwrap());
    let missing = one_line_error(run(tmp.path(), s, &["menu", "get", &config.uuid], None));
    assert!(missing.contains("no menu"), "{missing}");
}

#[test]
fn commands_on_a_store_in_use_wait_for_it() {
    let tmp = tempfile::tempdir().unwrap();
    let (store, ds) = catalogue(tmp.path());
    // Three puts at once: each opens the store in turn.
    let children: Vec<_> = (0..3)
        .map(|i| {
            let file = tmp.path().join(format!("f{i}.bin"));
            std::fs::write(&file, vec![i as u8; 3 << 20]).unwrap();
            Command::new("timeout")
                .arg("120")
                .arg(BIN)
                .arg("-s")
                .arg(&store)
                .arg("put")
                .arg(&file)
                .arg(format!("{ds}/k1/0"))
                .stdin(Stdio::null())
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    for child in children {
        ok(child.wait_with_output().unwrap());
    }
    let listed = ok(run(
        tmp.path(),
        Some(&store),
        &["ls", &format!("{ds}/k1/0")],
        None,
    ));
    assert_eq!(listed.lines().count(), 3, "{listed}");

    // Held for longer than --wait: said after a second, given up at the limit.
    let held = RocksStore::open(&store).unwrap();
    let started = std::time::Instant::now();
    let out = run(tmp.path(), Some(&store), &["--wait", "2", "ls", &ds], None);
    let waited = started.elapsed();
    assert!(!out.status.success());
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(said.contains("waiting (at most 2 s, --wait)"), "{said}");
    assert!(
        said.contains("in use by another process (waited 2 s)"),
        "{said}"
    );
    assert!(waited >= std::time::Duration::from_secs(2), "{waited:?}");
    let at_once = one_line_error(run(
        tmp.path(),
        Some(&store),
        &["--wait", "0", "ls", &ds],
        None,
    ));
    assert!(at_once.contains("in use by another process"), "{at_once}");
    // Released while waiting (once it has said so): the command goes on.
    let mut waiter = Command::new("timeout")
        .arg("60")
        .arg(BIN)
        .args(["-s", store.to_str().unwrap(), "ls", &ds])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut said = String::new();
    let stderr = waiter.stderr.take().unwrap();
    std::io::BufRead::read_line(&mut std::io::BufReader::new(stderr), &mut said).unwrap();
    assert!(said.contains("waiting"), "{said}");
    drop(held);
    let out = waiter.wait_with_output().unwrap();
    assert_eq!(ok(out).lines().count(), 3);
}
