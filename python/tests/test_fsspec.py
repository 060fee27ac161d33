"""``cronusfs://`` through the data tools: pandas, polars, pyarrow.dataset and DuckDB write
and read objects; listings, ``info()`` with the extended attributes, query views, ranged
reads of one version, and the errors a mount gives."""

import os
import subprocess
import time

import fsspec
import pandas as pd
import polars as pl
import pyarrow as pa
import pyarrow.dataset as pads
import pyarrow.parquet as pq
import pytest

import cronusfs
from cronusfs.fsspec import tree_path


def options(location):
    return {"store": location}


def test_pandas_writes_and_reads_parquet(location, fs, job_dir):
    frame = pd.DataFrame({"a": range(100), "b": [f"v{i}" for i in range(100)]})
    url = f"cronusfs://{job_dir}/frame.parquet"
    frame.to_parquet(url, storage_options=options(location))
    back = pd.read_parquet(url, storage_options=options(location))
    pd.testing.assert_frame_equal(back, frame)
    info = fs.info(f"{job_dir}/frame.parquet")
    assert info["type"] == "file" and info["user.cronus.type"] == "PARQUET"
    assert info["user.cronus.parquet:num_rows"] == "100"


def test_polars_writes_and_reads(location, fs, job_dir):
    frame = pl.DataFrame({"x": [1, 2, 3], "y": ["a", "b", "c"]})
    url = f"cronusfs://{job_dir}/polars.parquet"
    with fsspec.open(url, "wb", store=location) as f:
        frame.write_parquet(f)
    assert pl.read_parquet(url, use_pyarrow=True, storage_options=options(location)).equals(frame)
    with fsspec.open(url, "rb", store=location) as f:
        assert pl.read_parquet(f).equals(frame)
    with fs.open(f"{job_dir}/polars.arrow", "wb") as f:
        frame.write_ipc(f)
    assert fs.info(f"{job_dir}/polars.arrow")["user.cronus.type"] == "ARROW"


def test_pyarrow_dataset_reads_a_job_directory(fs, job_dir):
    for n in range(3):
        table = pa.table({"n": [n] * 10, "v": list(range(10))})
        with fs.open(f"{job_dir}/part-{n}.parquet", "wb") as f:
            pq.write_table(table, f)
    dataset = pads.dataset(job_dir, filesystem=fs, format="parquet")
    table = dataset.to_table()
    assert table.num_rows == 30
    assert sorted(set(table.column("n").to_pylist())) == [0, 1, 2]


def test_duckdb_reads_and_writes(fs, job_dir):
    duckdb = pytest.importorskip("duckdb")
    con = duckdb.connect()
    con.register_filesystem(fs)
    url = f"cronusfs://{job_dir}/duck.parquet"
    con.execute(f"COPY (SELECT range AS i, range * 2 AS j FROM range(1000)) TO '{url}' (FORMAT parquet)")
    assert fs.info(f"{job_dir}/duck.parquet")["user.cronus.type"] == "PARQUET"
    assert con.execute(f"SELECT count(*), sum(j) FROM read_parquet('{url}')").fetchone() == (1000, 999000)


def test_listings_and_the_long_and_short_paths(store, fs, job_dir):
    ds, key, job = job_dir.split("/")
    fs.pipe_file(f"{job_dir}/a.bin", b"hello")
    assert fs.ls(job_dir, detail=False) == [f"{job_dir}/a.bin"]
    long = f"datasets/{ds}/partitions/{key}/jobs/{job}"
    assert fs.ls(long, detail=False) == [f"{long}/a.bin"]
    assert fs.ls(ds, detail=False) == [f"{ds}/key"]
    assert fs.ls(f"{ds}/key", detail=False) == [f"{ds}/key/0"]
    assert fs.cat_file(f"{long}/a.bin") == b"hello"
    assert fs.cat_file(f"{job_dir}/a.bin", start=1, end=3) == b"el"
    assert fs.isdir(job_dir) and fs.isfile(f"{job_dir}/a.bin")
    fs.mv(f"{job_dir}/a.bin", f"{job_dir}/b.bin")
    assert fs.ls(job_dir, detail=False) == [f"{job_dir}/b.bin"]
    fs.rm(f"{job_dir}/b.bin")
    assert fs.ls(job_dir, detail=False) == []


def test_datasets_partitions_and_jobs_are_made_by_mkdir(store, fs):
    import uuid

    ds = str(uuid.uuid4())
    fs.makedirs(f"datasets/{ds}/partitions/p/jobs/3")
    assert store.partitions(ds) == ["p"]
    assert 3 in store.jobs(ds)
    with pytest.raises(OSError):
        fs.mkdir("datasets/not-a-uuid", create_parents=False)


def test_a_reader_reads_the_version_it_opened(fs, job_dir):
    path = f"{job_dir}/versions.bin"
    fs.pipe_file(path, b"A" * 3_000_000)
    with fs.open(path, "rb", block_size=1 << 20) as old:
        fs.pipe_file(path, b"B" * 10)
        old.seek(2_500_000)
        assert old.read(4) == b"AAAA"
        assert old.size == 3_000_000
    assert fs.cat_file(path) == b"B" * 10


def test_ranged_reads_of_a_large_object(fs, job_dir):
    path = f"{job_dir}/large.bin"
    data = os.urandom(9 << 20)
    with fs.open(path, "wb", block_size=4 << 20) as f:
        for at in range(0, len(data), 1 << 20):
            f.write(data[at:at + (1 << 20)])
    assert fs.info(path)["size"] == len(data)
    with fs.open(path, "rb", block_size=64 << 10) as f:
        f.seek(7_654_321)
        assert f.read(100) == data[7_654_321:7_654_421]
    assert fs.cat_file(path, start=5 << 20, end=(5 << 20) + 10) == data[5 << 20:(5 << 20) + 10]
    # Spans of many slices, read in parallel, come back whole and in order.
    assert fs.cat_file(path) == data
    assert fs.cat_file(path, start=1_000_001, end=8_500_003) == data[1_000_001:8_500_003]
    assert fs.cat_file(path, start=len(data) - 3, end=len(data) + 100) == data[-3:]


def test_xattrs_are_info_fields_and_views_find_them(store, fs, job_dir):
    path = f"{job_dir}/tagged.bin"
    fs.pipe_file(path, b"tagged")
    fs.setxattr(path, "user.quality", "12345")
    info = fs.info(path)
    assert info["user.quality"] == "12345"
    assert info["user.cronus.size"] == "6"
    listed = fs.ls("query/quality=12345", detail=False)
    assert len(listed) == 1, listed  # by its Cronus name
    assert fs.cat_file(listed[0]) == b"tagged"
    fs.removexattr(path, "user.quality")
    assert "user.quality" not in fs.info(path)
    with pytest.raises(OSError):
        fs.setxattr(path, "user.cronus.size", "1")


def test_errors_are_the_mount_s(fs, job_dir):
    with pytest.raises(FileNotFoundError):
        fs.info(f"{job_dir}/missing")
    with pytest.raises(FileNotFoundError):
        fs.cat_file(f"{job_dir}/missing")
    with pytest.raises(IsADirectoryError):
        fs.cat_file(job_dir)
    with pytest.raises(PermissionError):
        fs.pipe_file("datasets/x.bin", b"no object lives here")
    with pytest.raises(OSError):
        fs.pipe_file(f"{job_dir}/../escape", b"")


def test_a_closed_store_is_let_go_and_fsspec_opens_it_again(location, store, fs, job_dir):
    with fs.open(f"{job_dir}/kept.bin", "wb") as written:
        written.write(b"kept")
    with fs.open(f"{job_dir}/kept.bin", "rb") as read:
        assert read.read() == b"kept"
    left_open = store.open_read(tree_path(f"{job_dir}/kept.bin"))
    unclosed = store.open_write(tree_path(f"{job_dir}/unclosed.bin"))
    unclosed.write(b"committed when the store closes")
    shared = store.shared
    cronusfs.close_store(location)  # `written`, `read` and the two above are referenced here
    binary = os.environ.get("CRONUSFS_BIN")
    if binary and not shared:  # a store directory is now free for another process
        subprocess.run([binary, "-s", location, "--wait", "0", "dataset", "ls"], check=True,
                       capture_output=True)
    with pytest.raises(ValueError):
        store.ls("")
    with pytest.raises(ValueError):
        left_open.read(0)
    with pytest.raises(ValueError):
        unclosed.write(b"too late")
    assert fs.cat_file(f"{job_dir}/kept.bin") == b"kept"
    assert fs.cat_file(f"{job_dir}/unclosed.bin") == b"committed when the store closes"


def test_the_past_reads_through_at_paths(fs, job_dir):
    import datetime

    ds, key, job = job_dir.split("/")
    fs.pipe_file(f"{job_dir}/history.txt", b"first")
    time.sleep(0.01)
    then = datetime.datetime.now(datetime.timezone.utc).isoformat().replace("+00:00", "Z")
    time.sleep(0.01)
    fs.pipe_file(f"{job_dir}/history.txt", b"second")
    past = f"at/{then}/datasets/{ds}/partitions/{key}/jobs/{job}/history.txt"
    assert fs.cat_file(past) == b"first"
    assert fs.cat_file(f"{job_dir}/history.txt") == b"second"
    with pytest.raises(OSError) as refused:
        fs.pipe_file(past, b"rewrite the past")
    assert refused.value.errno == 30  # EROFS
