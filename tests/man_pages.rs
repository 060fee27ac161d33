//! The committed man pages under `man/` are exactly what the clap definitions generate now.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;

fn pages(dir: &Path) -> BTreeMap<String, String> {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "1"))
        .map(|p| {
            (
                p.file_name().unwrap().to_string_lossy().into_owned(),
                std::fs::read_to_string(&p).unwrap(),
            )
        })
        .collect()
}

#[test]
fn committed_man_pages_are_current() {
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_cronusfs"))
        .arg("gen-man")
        .arg(dir.path())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let fresh = pages(dir.path());
    assert!(fresh.contains_key("cronusfs.1") && fresh.contains_key("cronusfs-rows-lift.1"));
    let committed = pages(&Path::new(env!("CARGO_MANIFEST_DIR")).join("man"));
    let names = |m: &BTreeMap<String, String>| m.keys().cloned().collect::<Vec<_>>();
    assert_eq!(
        names(&committed),
        names(&fresh),
        "run `cronusfs gen-man man` and commit"
    );
    for (name, text) in &fresh {
        assert!(
            committed[name] == *text,
            "man/{name} is stale: run `cronusfs gen-man man` and commit"
        );
    }
}

/// A man page's synopsis, as text (roff fonts and escapes removed).
fn synopsis(page: &str) -> String {
    let line = page
        .lines()
        .skip_while(|l| *l != ".SH SYNOPSIS")
        .nth(1)
        .unwrap();
    line.replace("\\fB", "")
        .replace("\\fR", "")
        .replace("\\fI", "")
        .replace("\\-", "-")
}

#[test]
fn man_synopses_are_the_usage_lines_of_help() {
    let man = Path::new(env!("CARGO_MANIFEST_DIR")).join("man");
    for words in [
        vec!["put"],
        vec!["get"],
        vec!["find"],
        vec!["rows", "lift"],
        vec!["rows", "add"],
        vec!["mount"],
        vec!["import-cronus"],
        vec!["gc"],
        vec!["menu", "get"],
    ] {
        let help = Command::new(env!("CARGO_BIN_EXE_cronusfs"))
            .args(&words)
            .arg("--help")
            .output()
            .unwrap();
        let help = String::from_utf8(help.stdout).unwrap();
        let usage = help
            .lines()
            .find_map(|l| l.strip_prefix("Usage: "))
            .unwrap()
            .trim()
            .to_string();
        let page =
            std::fs::read_to_string(man.join(format!("cronusfs-{}.1", words.join("-")))).unwrap();
        assert_eq!(synopsis(&page).trim(), usage, "{words:?}");
    }
}
