#!/usr/bin/env python3
"""Reading through the Python package (fsspec, no mount) beside the same reads through a
mount of the same store and from a native directory, in one run: one large object, then many
small ones. Medians of --runs.

    scripts/bench_python.sh [--size-mib 1024] [--small 10000] [--runs 3] [--shared]

With --shared: the store is on PostgreSQL + S3 (a private PostgreSQL and SeaweedFS, started
and stopped here, as scripts/bench_shared.py does), and s3fs reads a plain copy of the same
files from the same SeaweedFS bucket.

Run by scripts/bench_python.sh, which builds the release wheel and binary and passes
--binary; prints one table and the ratios.
"""

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time


def timed(fn, runs):
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def read_file(path):
    with open(path, "rb", buffering=0) as f:
        while f.read(8 << 20):
            pass


def fill(fs, job, big, small):
    """Writes the large object and the small ones through ``fs`` into ``job``."""
    with fs.open(f"{job}/big.bin", "wb", block_size=8 << 20) as f:
        for at in range(0, len(big), 8 << 20):
            f.write(big[at:at + (8 << 20)])
    for n, data in enumerate(small):
        fs.pipe_file(f"{job}/s{n}.bin", data)


def fsspec_reads(fs, job, n_small, runs):
    """Medians of reading the large object and every small one through fsspec ``fs``."""
    def large():
        with fs.open(f"{job}/big.bin", "rb", block_size=8 << 20, cache_type="none") as f:
            while f.read(8 << 20):
                pass

    def small():
        for n in range(n_small):
            fs.cat_file(f"{job}/s{n}.bin")

    return timed(large, runs), timed(small, runs)


def file_reads(root, n_small, runs):
    """Medians of reading the large file and every small one under directory ``root``."""
    return (timed(lambda: read_file(os.path.join(root, "big.bin")), runs),
            timed(lambda: [read_file(os.path.join(root, f"s{n}.bin")) for n in range(n_small)],
                  runs))


def mount_reads(binary, store, ds, n_small, runs, work):
    mnt = os.path.join(work, "mnt")
    os.makedirs(mnt, exist_ok=True)
    subprocess.run([binary, "mount", store, mnt], check=True, stdout=subprocess.DEVNULL)
    try:
        job = os.path.join(mnt, "datasets", ds, "partitions", "k", "jobs", "0")
        return file_reads(job, n_small, runs)
    finally:
        subprocess.run([binary, "umount", mnt], check=False, stdout=subprocess.DEVNULL)


def cronusfs_job(store, content=None):
    """A new dataset with partition k and job 0 in ``store``: its fsspec and short path."""
    import cronusfs
    import fsspec

    opened = cronusfs.open_store(store, content=content, create=True)
    ds = opened.register_dataset()
    opened.add_partition(ds, "k")
    opened.new_job(ds)
    return fsspec.filesystem("cronusfs", store=store), ds


def on_a_store_directory(args, work, big, small):
    import cronusfs

    native = os.path.join(work, "native")
    os.makedirs(native)
    with open(os.path.join(native, "big.bin"), "wb") as f:
        f.write(big)
    for n, data in enumerate(small):
        with open(os.path.join(native, f"s{n}.bin"), "wb") as f:
            f.write(data)
    store = os.path.join(work, "store")
    fs, ds = cronusfs_job(store)
    fill(fs, f"{ds}/k/0", big, small)
    # Read from the store reopened, as the mount below does: not while the engine still
    # flushes and compacts the gigabyte just written (that halved some runs' reads).
    cronusfs.close_store(store)
    results = {"fsspec": fsspec_reads(fs, f"{ds}/k/0", len(small), args.runs)}
    cronusfs.close_store(store)  # a store directory is one process's at a time
    results["mount"] = mount_reads(args.binary, store, ds, len(small), args.runs, work)
    results["native"] = file_reads(native, len(small), args.runs)
    return results


def on_postgres_and_s3(args, work, big, small):
    import cronusfs

    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    import bench_shared
    import s3fs

    pg, s3 = bench_shared.Postgres(work), bench_shared.Seaweed(work)
    try:
        os.environ["AWS_ACCESS_KEY_ID"], os.environ["AWS_SECRET_ACCESS_KEY"] = (
            bench_shared.AK, bench_shared.SK)
        store = pg.url()
        fs, ds = cronusfs_job(store, content=f"s3://bench/cronusfs?endpoint={s3.endpoint}"
                                             "&region=us-east-1")
        fill(fs, f"{ds}/k/0", big, small)
        # Reopened: the chunks this process just stored are not read from its memory.
        cronusfs.close_store(store)
        results = {"fsspec": fsspec_reads(fs, f"{ds}/k/0", len(small), args.runs)}
        results["mount"] = mount_reads(args.binary, store, ds, len(small), args.runs, work)
        plain = s3fs.S3FileSystem(key=bench_shared.AK, secret=bench_shared.SK,
                                  client_kwargs={"endpoint_url": s3.endpoint,
                                                 "region_name": "us-east-1"})
        fill(plain, "bench/plain", big, small)
        results["s3fs"] = fsspec_reads(plain, "bench/plain", len(small), args.runs)
        return results
    finally:
        s3.stop()
        pg.stop()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--binary", required=True)
    ap.add_argument("--size-mib", type=int, default=1024)
    ap.add_argument("--small", type=int, default=10000)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--shared", action="store_true",
                    help="PostgreSQL + S3 (SeaweedFS), beside s3fs on a plain copy")
    args = ap.parse_args()
    work = tempfile.mkdtemp(prefix="cronusfs-bench-python-", dir="/var/tmp")
    os.chmod(work, 0o755)  # the postgres user's server lives in it (--shared)
    big = os.urandom(1 << 20) * args.size_mib
    small = [os.urandom(4096) for _ in range(args.small)]
    try:
        run = on_postgres_and_s3 if args.shared else on_a_store_directory
        results = run(args, work, big, small)
    finally:
        subprocess.run(["rm", "-rf", work], check=False)
    mib = args.size_mib
    where = "PostgreSQL + S3 (SeaweedFS)" if args.shared else "a store directory (RocksDB)"
    print(f"{where}; medians of {args.runs}; {mib} MiB object, {args.small} objects of 4 KiB")
    print(f"{'':8} {'large MiB/s':>12} {'small µs/file':>14}")
    for name, (big_s, small_s) in results.items():
        print(f"{name:8} {mib / big_s:12.0f} {small_s / args.small * 1e6:14.1f}")
    f_big, f_small = results["fsspec"]
    m_big, m_small = results["mount"]
    print(f"fsspec/mount throughput: large {m_big / f_big:.2f}x, small {m_small / f_small:.2f}x")


if __name__ == "__main__":
    main()
