#!/usr/bin/env python3
"""Reading through the Python package (fsspec, no mount) beside the same reads through a
mount of the same store and from a native directory, in one run: one large object, then many
small ones. Medians of --runs.

    scripts/bench_python.sh [--size-mib 1024] [--small 10000] [--runs 3]

Run by scripts/bench_python.sh, which builds the release wheel and binary and passes
--binary; prints one table and the ratios.
"""

import argparse
import os
import statistics
import subprocess
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


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--binary", required=True)
    ap.add_argument("--size-mib", type=int, default=1024)
    ap.add_argument("--small", type=int, default=10000)
    ap.add_argument("--runs", type=int, default=3)
    args = ap.parse_args()
    import cronusfs
    import fsspec

    work = tempfile.mkdtemp(prefix="cronusfs-bench-python-", dir="/var/tmp")
    store_dir, native, mnt = (os.path.join(work, d) for d in ("store", "native", "mnt"))
    os.makedirs(native)
    os.makedirs(mnt)
    big = os.urandom(1 << 20) * args.size_mib
    small = [os.urandom(4096) for _ in range(args.small)]
    with open(os.path.join(native, "big.bin"), "wb") as f:
        f.write(big)
    for n, data in enumerate(small):
        with open(os.path.join(native, f"s{n}.bin"), "wb") as f:
            f.write(data)

    store = cronusfs.open_store(store_dir, create=True)
    ds = store.register_dataset()
    store.add_partition(ds, "k")
    store.new_job(ds)
    fs = fsspec.filesystem("cronusfs", store=store_dir)
    job = f"{ds}/k/0"
    with fs.open(f"{job}/big.bin", "wb", block_size=8 << 20) as f:
        for at in range(0, len(big), 8 << 20):
            f.write(big[at:at + (8 << 20)])
    for n, data in enumerate(small):
        fs.pipe_file(f"{job}/s{n}.bin", data)

    def fsspec_big():
        with fs.open(f"{job}/big.bin", "rb", block_size=8 << 20, cache_type="none") as f:
            while f.read(8 << 20):
                pass

    def fsspec_small():
        for n in range(args.small):
            fs.cat_file(f"{job}/s{n}.bin")

    results = {"fsspec": (timed(fsspec_big, args.runs), timed(fsspec_small, args.runs))}
    cronusfs.close_store(store_dir)
    subprocess.run([args.binary, "mount", store_dir, mnt], check=True)
    try:
        mounted = os.path.join(mnt, "datasets", ds, "partitions", "k", "jobs", "0")
        results["mount"] = (
            timed(lambda: read_file(os.path.join(mounted, "big.bin")), args.runs),
            timed(lambda: [read_file(os.path.join(mounted, f"s{n}.bin"))
                           for n in range(args.small)], args.runs),
        )
    finally:
        subprocess.run([args.binary, "umount", mnt], check=False)
    results["native"] = (
        timed(lambda: read_file(os.path.join(native, "big.bin")), args.runs),
        timed(lambda: [read_file(os.path.join(native, f"s{n}.bin"))
                       for n in range(args.small)], args.runs),
    )
    mib = args.size_mib
    print(f"medians of {args.runs}; {mib} MiB object, {args.small} objects of 4 KiB")
    print(f"{'':8} {'large MiB/s':>12} {'small µs/file':>14}")
    for name, (big_s, small_s) in results.items():
        print(f"{name:8} {mib / big_s:12.0f} {small_s / args.small * 1e6:14.1f}")
    f_big, f_small = results["fsspec"]
    m_big, m_small = results["mount"]
    print(f"fsspec/mount throughput: large {m_big / f_big:.2f}x, small {m_small / f_small:.2f}x")
    subprocess.run(["rm", "-rf", work], check=False)


if __name__ == "__main__":
    main()
