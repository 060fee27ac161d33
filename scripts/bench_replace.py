#!/usr/bin/env python3
"""Setfattr replacing a value, alone: for each binary, fresh stores with 2,000 small files
that each got `user.k` once; then (after a pause of 0 s, then of 3 s) every file's `user.k`
is set again, each set replacing a row whose death history keeps. Prints the medians of 5
interleaved stores per pause in µs per set.

usage: bench_replace.py BINARY [BINARY ...] [--dir DIR]
"""
import argparse
import os
import statistics
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(__file__))
from bench_mount import Daemon  # noqa: E402


def one_store(binary, root, pause):
    with tempfile.TemporaryDirectory(dir=root) as work:
        d = Daemon(binary, work)
        try:
            names = d.small_files(2000)
            for i, n in enumerate(names):
                os.setxattr(n, "user.k", str(i).encode())
            time.sleep(pause)
            t = time.perf_counter()
            for i, n in enumerate(names):
                os.setxattr(n, "user.k", str(-i).encode())
            return (time.perf_counter() - t) / len(names) * 1e6
        finally:
            d.close()


def main():
    p = argparse.ArgumentParser()
    p.add_argument("binaries", nargs="+")
    p.add_argument("--dir", default="/var/tmp")
    args = p.parse_args()
    for pause in (0, 3):
        results = {b: [] for b in args.binaries}
        for _ in range(5):
            for b in args.binaries:
                results[b].append(one_store(b, args.dir, pause))
        medians = {b: round(statistics.median(r), 1) for b, r in results.items()}
        print(f"pause {pause} s: µs per replacing setxattr {medians}")


if __name__ == "__main__":
    main()
