#!/usr/bin/env bash
# The whole test suite, exactly as CI runs it: formatting, lints, docs, every test.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
bash scripts/python-env.sh >/dev/null   # pyarrow, polars, simplekv for the client tests
bash scripts/tools.sh >/dev/null        # pjdfstest and fsx for the mount tests
bash scripts/services.sh >/dev/null     # SeaweedFS (S3) for the shared-store tests; PostgreSQL is from setup.sh
# One target directory outside the clone, so that RocksDB's C++ is built once per machine.
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/cronusfs-target}"
export RUST_BACKTRACE=0

cargo fmt --all -- --check
cargo clippy --locked --workspace --all-targets -- -D warnings
RUSTDOCFLAGS="-D warnings" cargo doc --locked --no-deps --quiet
# The Python package, into the client tests' venv: its pytest suite runs inside `cargo test`
# (tests/python_package.rs), which cannot build it itself.
bash scripts/python-package.sh >/dev/null
cargo test --locked
