#!/usr/bin/env python3
"""The FUSE floor beside cronusfs and a native directory (issue 24): per-operation latency of
small requests on each, in one run, and cronusfs as a multiple of the floor.

The floor is benches/fuse_floor.rs (a flat in-memory filesystem on the same fuser crate and
thread count as cronusfs), started with `cargo bench --bench fuse_floor -- --mount DIR`.
Each run, on each target, on --files new files of one directory:
  create     os.open(O_CREAT) + close          (LOOKUP, CREATE, FLUSH, RELEASE)
  write      open(w) + 100 bytes + close        (LOOKUP, CREATE, WRITE, FLUSH, RELEASE; tar -x)
  utime      os.utime                           (SETATTR; touch of an existing file)
  lookup     os.stat once the kernel's 1 s entry cache has passed (LOOKUP)
  getxattr   os.getxattr user.k                 (GETXATTR; getfattr -n)
  cat        open + read all + close            (OPEN, READ, FLUSH, RELEASE)
Prints medians of --runs runs in µs per file.

usage: bench_floor.py CRONUSFS_BINARY [--runs N] [--files N] [--dir DIR]
"""
import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(__file__))
from bench_mount import Daemon  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OPS = ["create", "write", "utime", "lookup", "getxattr", "cat"]


def timed(names, op):
    t = time.perf_counter()
    for n in names:
        op(n)
    return (time.perf_counter() - t) / len(names) * 1e6


def cat(n):
    with open(n, "rb") as f:
        f.read()


def workload(directory, files, tag):
    """Returns µs per file of each of OPS on `files` new files in `directory`."""
    made = [f"{directory}/c{tag}_{i:05}" for i in range(files)]
    written = [f"{directory}/w{tag}_{i:05}" for i in range(files)]
    out = {}
    out["create"] = timed(made, lambda n: os.close(os.open(n, os.O_CREAT | os.O_WRONLY, 0o644)))

    def write(n):
        with open(n, "wb") as f:
            f.write(b"x" * 100)
    out["write"] = timed(written, write)
    out["utime"] = timed(written, lambda n: os.utime(n, (1_000_000, 1_000_000)))
    for n in written:
        os.setxattr(n, "user.k", b"floor")
    time.sleep(1.2)  # past the kernel's 1 s entry and attribute cache
    out["lookup"] = timed(written, os.stat)
    out["getxattr"] = timed(written, lambda n: os.getxattr(n, "user.k"))
    out["cat"] = timed(written, cat)
    return out


class Floor:
    def __init__(self, work):
        self.mnt = f"{work}/floor"
        os.makedirs(self.mnt)
        # The target directory outside the clone, as scripts/bench.sh and .ci/run keep it (a
        # build into the clone would rebuild RocksDB's C++ from scratch).
        env = dict(os.environ)
        env.setdefault("CARGO_TARGET_DIR", os.path.expanduser("~/.cache/cronusfs-target"))
        self.proc = subprocess.Popen(
            ["cargo", "bench", "-q", "--locked", "--bench", "fuse_floor", "--",
             "--mount", self.mnt], cwd=ROOT, stdout=subprocess.DEVNULL, env=env)
        deadline = time.time() + 1800  # a first build of the bench profile
        while not os.path.ismount(self.mnt):
            if self.proc.poll() is not None or time.time() > deadline:
                raise SystemExit("the floor filesystem did not mount")
            time.sleep(0.1)

    def close(self):
        subprocess.run(["fusermount3", "-u", self.mnt], check=False)
        self.proc.wait(timeout=30)


def main():
    p = argparse.ArgumentParser()
    p.add_argument("binary")
    p.add_argument("--runs", type=int, default=3)
    p.add_argument("--files", type=int, default=2000)
    p.add_argument("--dir", default="/var/tmp")
    args = p.parse_args()
    results = {"native": [], "floor": [], "cronusfs": []}
    with tempfile.TemporaryDirectory(dir=args.dir) as work:
        native = f"{work}/native"
        os.makedirs(native)
        floor = Floor(work)
        daemon = Daemon(args.binary, work)
        try:
            job = daemon.job_dir()
            for run in range(args.runs):
                results["native"].append(workload(native, args.files, run))
                results["floor"].append(workload(floor.mnt, args.files, run))
                results["cronusfs"].append(workload(job, args.files, run))
        finally:
            daemon.close()
            floor.close()
    med = {t: {op: statistics.median(r[op] for r in rs) for op in OPS}
           for t, rs in results.items()}
    print(f"µs per file, medians of {args.runs} runs of {args.files} files")
    print(f"{'op':<10}{'native':>10}{'floor':>10}{'cronusfs':>10}{'/floor':>9}{'/native':>9}")
    for op in OPS:
        n, f, c = med["native"][op], med["floor"][op], med["cronusfs"][op]
        print(f"{op:<10}{n:>10.1f}{f:>10.1f}{c:>10.1f}{c / f:>8.2f}x{c / n:>8.1f}x")


if __name__ == "__main__":
    main()
