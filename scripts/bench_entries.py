#!/usr/bin/env python3
"""Changes of a directory's entries (issue 25: each moves the directory's time in the store),
binaries interleaved: for each of --runs runs, each binary on a fresh store makes 2,000 small
files in one job directory (create, write 100 bytes, close), renames each, makes 500 folders and
removes every file and folder; prints the medians in µs per operation, and the new binary's
ratio to the first one (below 1.0: faster).

usage: bench_entries.py BINARY [BINARY ...] [--runs N] [--dir DIR]
"""
import argparse
import os
import statistics
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(__file__))
from bench_mount import Daemon  # noqa: E402

FILES, FOLDERS = 2000, 500


def timed_each(items, op):
    """µs per item of `op` over `items`."""
    t = time.perf_counter()
    for item in items:
        op(item)
    return (time.perf_counter() - t) / len(items) * 1e6


def write_small(path):
    with open(path, "wb") as f:
        f.write(b"x" * 100)


def one_store(binary, root):
    with tempfile.TemporaryDirectory(dir=root) as work:
        d = Daemon(binary, work)
        try:
            job = d.job_dir()
            names = [f"{job}/f{i}" for i in range(FILES)]
            moved = [f"{job}/g{i}" for i in range(FILES)]
            folders = [f"{job}/d{i}" for i in range(FOLDERS)]
            return {
                "create": timed_each(names, write_small),
                "rename": timed_each(range(FILES), lambda i: os.rename(names[i], moved[i])),
                "mkdir": timed_each(folders, os.mkdir),
                "unlink": timed_each(moved, os.unlink),
                "rmdir": timed_each(folders, os.rmdir),
            }
        finally:
            d.close()


def main():
    p = argparse.ArgumentParser()
    p.add_argument("binaries", nargs="+")
    p.add_argument("--runs", type=int, default=5)
    p.add_argument("--dir", default="/var/tmp")
    args = p.parse_args()
    results = {b: [] for b in args.binaries}
    for _ in range(args.runs):
        for b in args.binaries:
            results[b].append(one_store(b, args.dir))
    first = args.binaries[0]
    medians = {b: {op: statistics.median(r[op] for r in runs) for op in runs[0]}
               for b, runs in results.items()}
    print(f"µs per operation, medians of {args.runs} interleaved stores")
    print(f"{'binary':40}" + "".join(f"{op:>10}" for op in medians[first]))
    for b, m in medians.items():
        print(f"{b[-40:]:40}" + "".join(f"{v:10.1f}" for v in m.values()))
        if b != first:
            print(f"{'  ratio to ' + first[-28:]:40}"
                  + "".join(f"{m[op] / medians[first][op]:10.2f}" for op in m))


if __name__ == "__main__":
    main()
