#!/usr/bin/env python3
"""Probes for missing names (a build or an import looking for files that are not there): for
each binary, a fresh store, a job directory of 1,000 objects, then 1,000 missing names each
`stat`ed 10 times in a row; prints the median over 3 stores of µs per probe, and the same on a
native directory.

usage: bench_probes.py BINARY [BINARY ...] [--dir DIR]
"""
import argparse
import os
import statistics
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(__file__))
from bench_mount import Daemon  # noqa: E402


def probes(directory):
    """µs per stat of a missing name, 1,000 names × 10 stats."""
    t = time.perf_counter()
    for i in range(1000):
        for _ in range(10):
            try:
                os.stat(f"{directory}/missing{i}")
            except FileNotFoundError:
                pass
    return (time.perf_counter() - t) / 10_000 * 1e6


def one_store(binary, root):
    with tempfile.TemporaryDirectory(dir=root) as work:
        d = Daemon(binary, work)
        try:
            names = d.small_files(1000, size=1)
            return probes(os.path.dirname(names[0]))
        finally:
            d.close()


def main():
    p = argparse.ArgumentParser()
    p.add_argument("binaries", nargs="+")
    p.add_argument("--dir", default="/var/tmp")
    args = p.parse_args()
    with tempfile.TemporaryDirectory(dir=args.dir) as native:
        print(f"native: {probes(native):.1f} µs per probe")
    results = {b: [] for b in args.binaries}
    for _ in range(3):
        for b in args.binaries:
            results[b].append(one_store(b, args.dir))
    for b, r in results.items():
        print(f"{b}: {statistics.median(r):.1f} µs per probe  runs {[round(x, 1) for x in r]}")


if __name__ == "__main__":
    main()
