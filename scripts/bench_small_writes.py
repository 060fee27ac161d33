#!/usr/bin/env python3
"""Small writes with history (issue 23), binaries interleaved: for each of --runs runs, each
binary on a fresh store times os.utime and os.setxattr of 2,000 files (and os.setxattr again,
replacing)
(`bench_history.small_writes`); prints the medians, every run, and the store growth after
20,000 setxattrs (first run). Interleaving spreads this machine's drift over every binary.

usage: bench_small_writes.py BINARY [BINARY ...] [--runs N] [--dir DIR]
"""
import argparse
import os
import statistics
import sys

sys.path.insert(0, os.path.dirname(__file__))
from bench_history import small_writes  # noqa: E402


def main():
    p = argparse.ArgumentParser()
    p.add_argument("binaries", nargs="+")
    p.add_argument("--runs", type=int, default=5)
    p.add_argument("--dir", default="/var/tmp")
    args = p.parse_args()
    results = {b: [] for b in args.binaries}
    for run in range(args.runs):
        for b in args.binaries:
            results[b].append(small_writes(b, args.dir, 2000, 20000 if run == 0 else 0))
    for b, runs in results.items():
        touch = statistics.median(r[0] for r in runs)
        setx = statistics.median(r[1] for r in runs)
        again = statistics.median(r[3] for r in runs)
        print(f"{b}: touch {touch:.3f} s  setfattr {setx:.3f} s  again {again:.3f} s"
              f"  growth {runs[0][2]:.1f} MiB"
              f"  runs touch {[round(r[0], 3) for r in runs]}"
              f" setfattr {[round(r[1], 3) for r in runs]}"
              f" again {[round(r[3], 3) for r in runs]}")


if __name__ == "__main__":
    main()
