#!/usr/bin/env python3
"""Reads of small objects, whole sequence per file: for each binary, 3 fresh stores, each with
3,000 100-byte objects carrying one attribute; twice per store, once the kernel's 1 s caches
passed, `stat`, `getxattr user.k`, then open + read + close of every file. Prints the medians
(6 passes) of wall time and of the daemon's CPU time (/proc/PID/stat) per file.

usage: bench_reads.py BINARY [BINARY ...] [--dir DIR]
"""
import argparse
import os
import statistics
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(__file__))
from bench_mount import Daemon  # noqa: E402

FILES = 3000


def cpu_seconds(pid):
    fields = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def one_store(binary, root):
    """Returns [(wall µs, daemon CPU µs) per file] of two passes on a fresh store."""
    with tempfile.TemporaryDirectory(dir=root) as work:
        d = Daemon(binary, work)
        try:
            names = d.small_files(FILES)
            for n in names:
                os.setxattr(n, "user.k", b"v")
            out = []
            for _ in range(2):
                time.sleep(1.2)
                cpu, t = cpu_seconds(d.pid), time.perf_counter()
                for n in names:
                    os.stat(n)
                    os.getxattr(n, "user.k")
                    with open(n, "rb") as f:
                        f.read()
                wall = time.perf_counter() - t
                out.append((wall / FILES * 1e6, (cpu_seconds(d.pid) - cpu) / FILES * 1e6))
        finally:
            d.close()
    return out


def main():
    p = argparse.ArgumentParser()
    p.add_argument("binaries", nargs="+")
    p.add_argument("--dir", default="/var/tmp")
    args = p.parse_args()
    results = {b: [] for b in args.binaries}
    for _ in range(3):
        for b in args.binaries:
            results[b].extend(one_store(b, args.dir))
    for b, r in results.items():
        print(f"{b}: wall {statistics.median(x[0] for x in r):.1f} µs/file, daemon CPU "
              f"{statistics.median(x[1] for x in r):.1f} µs/file")


if __name__ == "__main__":
    main()
