//! Third-party file-system test tools on a real mount: pjdfstest inside a job directory,
//! against the committed list of expected failures (tests/pjdfstest/expected-failures.txt),
//! and 10,000 fsx operations on one object. The tools come from crates.io through
//! scripts/tools.sh (installed once per machine).

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use crate::mount::Mounted;

/// Returns the directory holding pjdfstest and fsx, installing them on first use.
fn tools() -> &'static Path {
    static TOOLS: OnceLock<PathBuf> = OnceLock::new();
    TOOLS.get_or_init(|| {
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/tools.sh");
        let out = Command::new("timeout")
            .arg("900")
            .arg(script)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "scripts/tools.sh: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        PathBuf::from(String::from_utf8(out.stdout).unwrap().trim())
    })
}

fn expected_failures() -> BTreeSet<String> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/pjdfstest/expected-failures.txt");
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(str::to_string)
        .collect()
}

/// Runs pjdfstest in `job` (only the tests named in `only`, when given) and returns its output.
fn pjdfstest(job: &Path, only: &[&String]) -> String {
    let config = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/pjdfstest/pjdfstest.toml");
    let mut cmd = Command::new("timeout");
    cmd.arg("600")
        .arg(tools().join("pjdfstest"))
        .arg("-c")
        .arg(&config)
        .arg("-p")
        .arg(job);
    // Names are matched as substrings (`-e` compares with an internal, longer name).
    cmd.args(only);
    let out = cmd
        .current_dir(job)
        .env("RUST_BACKTRACE", "0")
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        text.lines().any(|l| l.starts_with("Summary:")),
        "pjdfstest did not finish: {text}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    text
}

/// Returns the names of the failed and the passed tests of a pjdfstest output.
fn outcomes(text: &str) -> (BTreeSet<String>, BTreeSet<String>) {
    let (mut failed, mut passed) = (BTreeSet::new(), BTreeSet::new());
    for line in text.lines() {
        let mut words = line.split_whitespace();
        match (words.next(), words.next_back()) {
            (Some(name), Some("FAILED")) => failed.insert(name.to_string()),
            (Some(name), Some("ok")) => passed.insert(name.to_string()),
            _ => false,
        };
    }
    (failed, passed)
}

#[test]
fn pjdfstest_fails_only_where_expected() {
    let m = Mounted::with_options(&["--allow-other"]);
    let job = m.job_dir();
    m.ok(&format!("chmod 777 {}", job.display()));
    let text = pjdfstest(&job, &[]);
    let (failed, passed) = outcomes(&text);
    let expected = expected_failures();
    let fixed: Vec<_> = expected.intersection(&passed).collect();
    if !fixed.is_empty() {
        eprintln!("pjdfstest: listed as expected failures but passed now: {fixed:?}");
    }
    assert!(passed.len() > 100, "{text}");
    let unexpected: Vec<_> = failed.difference(&expected).collect();
    if unexpected.is_empty() {
        return;
    }
    // Timing tests can flake on a loaded machine: a real regression fails a second time.
    eprintln!("pjdfstest: failed once, run again: {unexpected:?}");
    let (again, passed_again) = outcomes(&pjdfstest(&job, &unexpected));
    let still: Vec<_> = unexpected
        .iter()
        .filter(|t| again.contains(**t) || !passed_again.contains(**t))
        .collect();
    assert!(still.is_empty(), "unexpected pjdfstest failures: {still:?}");
}

#[test]
fn fsx_ten_thousand_operations_on_an_object() {
    let m = Mounted::new();
    let job = m.job_dir();
    let artifacts = m.tmp.path().join("fsx");
    std::fs::create_dir(&artifacts).unwrap();
    let out = Command::new("timeout")
        .arg("900")
        .arg(tools().join("fsx"))
        .args(["-N", "10000", "-S", "1", "-P"])
        .arg(&artifacts)
        .arg(job.join("fsxfile"))
        .output()
        .unwrap();
    let text =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success() && text.contains("All operations completed A-OK!"),
        "{text}"
    );
}
