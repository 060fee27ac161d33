//! The Python package (`python/`) by its own pytest suite: the Cronus `test_validation`
//! scenario through `cronusfs.BaseObjectStore`, pandas, polars, pyarrow.dataset and DuckDB
//! through `cronusfs://`, lifts equal to the CLI's; on a store directory (RocksDB), on
//! PostgreSQL + S3, and beside a mount of the same shared store. `scripts/test.sh` builds
//! and installs the package (`scripts/python-package.sh`) before `cargo test`: a cargo build
//! cannot run inside one.

use std::path::{Path, PathBuf};
use std::process::Command;

/// The venv's python, which must have the package.
fn python() -> PathBuf {
    let python = crate::python_clients::python();
    let probe = Command::new(python)
        .args(["-c", "import cronusfs, cronusfs.fsspec, cronusfs.cronus"])
        .output()
        .unwrap();
    assert!(
        probe.status.success(),
        "the venv has no cronusfs package: run scripts/python-package.sh first ({})",
        String::from_utf8_lossy(&probe.stderr)
    );
    python.to_path_buf()
}

/// Runs the package's pytest suite (`files` of `python/tests`) with `env`.
fn pytest(files: &[&str], env: &[(&str, &str)]) {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let out = Command::new("timeout")
        .arg("600")
        .arg(python())
        .args(["-m", "pytest", "-q", "-p", "no:cacheprovider"])
        .args(files.iter().map(|f| root.join("python/tests").join(f)))
        .env("CRONUSFS_BIN", env!("CARGO_BIN_EXE_cronusfs"))
        .envs(env.iter().copied())
        .current_dir(root.join("python"))
        .output()
        .unwrap();
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "pytest {files:?} failed:\n{said}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(!said.contains(" skipped"), "pytest skipped tests:\n{said}");
}

const SUITE: [&str; 4] = [
    "test_cronus.py",
    "test_fsspec.py",
    "test_hostile.py",
    "test_rows.py",
];

#[test]
fn the_package_on_a_store_directory() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("store");
    pytest(&SUITE, &[("CRONUSFS_TEST_STORE", store.to_str().unwrap())]);
}

#[test]
fn the_package_on_postgres_and_s3() {
    let url = crate::services::pg_store_url();
    let content = crate::services::s3_content_url();
    let mut env = vec![
        ("CRONUSFS_TEST_STORE", url.as_str()),
        ("CRONUSFS_TEST_CONTENT", content.as_str()),
    ];
    env.extend(crate::services::s3_env());
    pytest(&SUITE, &env);
}

#[test]
fn the_package_and_a_mount_share_a_store() {
    let mounted = crate::mount::Mounted::shared();
    let store = mounted.store.to_str().unwrap().to_string();
    let mnt = mounted.mnt.to_str().unwrap().to_string();
    let mut env = vec![
        ("CRONUSFS_TEST_STORE", store.as_str()),
        ("CRONUSFS_TEST_MOUNT", mnt.as_str()),
    ];
    env.extend(crate::services::s3_env());
    pytest(&["test_shared.py"], &env);
}
