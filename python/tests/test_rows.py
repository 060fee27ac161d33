"""Lifts as Arrow tables, equal to what ``cronusfs rows lift`` prints for the same store."""

import json
import os
import subprocess

import pytest

import cronusfs


def test_lifts_by_value_range_and_join(store, fs, job_dir):
    for n in range(5):
        path = f"{job_dir}/r{n}.bin"
        fs.pipe_file(path, b"x" * n)
        fs.setxattr(path, "user.score", str(100 + n))
    table = cronusfs.lift(store, "score", ge=102)
    assert sorted(table.column("valu_int").to_pylist()) == [102, 103, 104]
    assert table.column("valu_str").null_count == 3
    assert cronusfs.lift(store, "score", eq=101).num_rows == 1
    assert cronusfs.lift(store, "score", range_=(100, 102)).num_rows == 2
    joined = cronusfs.lift(store, "score", eq=104, join=True)
    props = set(joined.column("prop").to_pylist())
    assert {"score", "cronus:size", "cronus:uuid"} <= props
    with pytest.raises(ValueError):
        cronusfs.lift(store, "score", ge=1, le=2)


def test_a_lift_equals_the_cli_s(store, location, fs, job_dir):
    binary = os.environ.get("CRONUSFS_BIN")
    if not binary:
        pytest.skip("CRONUSFS_BIN names no cronusfs binary")
    for n in range(3):
        path = f"{job_dir}/cli{n}.bin"
        fs.pipe_file(path, b"y")
        fs.setxattr(path, "user.cli_mark", f"m{n}")
    table = cronusfs.lift(store, "cli_mark").to_pylist()
    if not store.shared:
        cronusfs.close_store(location)  # a store directory is one process's at a time
    try:
        out = subprocess.run([binary, "-s", location, "rows", "lift", "cli_mark", "--format",
                              "jsonl"], check=True, capture_output=True, text=True).stdout
    finally:
        reopened = cronusfs.open_store(location)
    cli = [json.loads(line) for line in out.splitlines()]
    ours = [{"iden": r["iden"], "prop": r["prop"],
             "valu": r["valu_int"] if r["valu_str"] is None else r["valu_str"],
             "time": r["time"]} for r in table]
    assert sorted(ours, key=lambda r: r["iden"]) == sorted(cli, key=lambda r: r["iden"])
    assert reopened.location
