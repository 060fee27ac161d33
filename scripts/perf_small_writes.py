#!/usr/bin/env python3
"""Profiles the daemon under small writes: mounts BINARY on a fresh store, writes 3,000 small
files, then records `perf record -p DAEMON` (1 kHz, DWARF stacks) over 5 rounds of `touch`
(os.utime) or `setx` (os.setxattr of one attribute, replacing it from the second round on)
of every file. Read the profile with `perf report -i OUT`.

usage: perf_small_writes.py BINARY touch|setx OUT [--dir DIR]
"""
import argparse
import os
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(__file__))
from bench_mount import Daemon  # noqa: E402


def main():
    p = argparse.ArgumentParser()
    p.add_argument("binary")
    p.add_argument("op", choices=["touch", "setx"])
    p.add_argument("out")
    p.add_argument("--dir", default="/var/tmp")
    args = p.parse_args()
    with tempfile.TemporaryDirectory(dir=args.dir) as work:
        d = Daemon(args.binary, work)
        try:
            names = d.small_files(3000)
            perf = subprocess.Popen(
                ["perf", "record", "-F", "1000", "--call-graph", "dwarf,16384",
                 "-p", str(d.pid), "-o", args.out],
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            time.sleep(0.5)
            for r in range(5):
                for i, n in enumerate(names):
                    if args.op == "touch":
                        os.utime(n, (1_000_000 + i + r, 1_000_000 + i))
                    else:
                        os.setxattr(n, "user.k", str(i + r).encode())
            perf.send_signal(2)
            perf.wait()
        finally:
            d.close()


if __name__ == "__main__":
    main()
