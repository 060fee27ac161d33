#!/usr/bin/env python3
"""One file rewritten over and over (a status file, a checkpoint): for each binary, a fresh
store whose one 1,000-byte file is rewritten `--rewrites` times (open O_TRUNC, write, close:
a commit each); prints the mean ms per rewrite over the first 100 rewrites and over the last
500, then, after a remount, the ms per rewrite of 100 more and the µs of a `stat` + open +
read + close of the file. Medians of `--runs` interleaved stores. A figure that grows with
the rewrites is a cost paid per version the file ever had.

usage: bench_rewrites.py BINARY [BINARY ...] [--rewrites N] [--runs K] [--dir DIR]
"""
import argparse
import os
import statistics
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(__file__))
from bench_mount import Daemon, sh  # noqa: E402


def rewrite(path, count, start):
    t = time.perf_counter()
    for i in range(start, start + count):
        with open(path, "wb") as f:
            f.write(b"x" * (1000 + i % 2))
    return (time.perf_counter() - t) / count * 1e3


def reads(path, count=300):
    t = time.perf_counter()
    for _ in range(count):
        os.stat(path)
        with open(path, "rb") as f:
            f.read()
    return (time.perf_counter() - t) / count * 1e6


def one_store(binary, root, rewrites):
    with tempfile.TemporaryDirectory(dir=root) as work:
        d = Daemon(binary, work)
        try:
            job = d.job_dir()
            path = f"{job}/status"
            first = rewrite(path, 100, 0)
            rewrite(path, rewrites - 600, 100)
            last = rewrite(path, 500, rewrites - 500)
        finally:
            d.close()
        sh(f"{binary} mount '{d.store}' {d.mnt} --log-file {work}/daemon2.log",
           stdout=sys.stderr)
        try:
            again = rewrite(path, 100, rewrites)
            read = reads(path)
        finally:
            d.close()
        return {"first 100": first, "last 500": last, "remounted": again, "read µs": read}


def main():
    p = argparse.ArgumentParser()
    p.add_argument("binaries", nargs="+")
    p.add_argument("--rewrites", type=int, default=3000)
    p.add_argument("--runs", type=int, default=3)
    p.add_argument("--dir", default="/var/tmp")
    args = p.parse_args()
    if args.rewrites < 700:
        raise SystemExit("--rewrites must be at least 700")
    results = {b: [] for b in args.binaries}
    for _ in range(args.runs):
        for b in args.binaries:
            results[b].append(one_store(b, args.dir, args.rewrites))
    print(f"{args.rewrites} rewrites of one file, medians of {args.runs} stores "
          "(ms per rewrite; read µs: stat + open + read + close)")
    for b, runs in results.items():
        medians = {k: round(statistics.median(r[k] for r in runs), 2) for k in runs[0]}
        print(f"{b}: {medians}")


if __name__ == "__main__":
    main()
