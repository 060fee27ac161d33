#!/usr/bin/env python3
"""What metrics and the access log cost (issue 26): `tar -x` of small files and `getfattr -n`
of one name on each of them, on a fresh store per run, for each variant given, next to a native
directory measured in the same run. A variant is LABEL=BINARY, with `+metrics` after the binary
for a mount with `--metrics 127.0.0.1:0` (scraped once a second while the workload runs, as
Prometheus would), or `+log` for a mount whose `.cronusfs/accesslog` is read while the workload
runs (by a thread of this script, as `profile` would). Variants run interleaved; prints medians
of --runs runs in µs per file and each variant as a multiple of the first.

usage: bench_metrics.py LABEL=BINARY[+metrics|+log] ... [--runs N] [--files N] [--dir DIR]
example: bench_metrics.py old=/tmp/cronusfs-old new=/tmp/cronusfs-new \\
             on=/tmp/cronusfs-new+metrics read=/tmp/cronusfs-new+log --runs 5
"""
import argparse
import os
import re
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request

sys.path.insert(0, os.path.dirname(__file__))
from bench_mount import Daemon  # noqa: E402

OPS = ["tar -x", "getfattr -n"]


def make_tarball(work, files):
    """A tarball of `files` files of 100 bytes each, in one directory."""
    src = f"{work}/src"
    os.makedirs(src)
    for i in range(files):
        with open(f"{src}/f{i:05}.txt", "wb") as f:
            f.write(b"x" * 100)
    tarball = f"{work}/small.tar"
    subprocess.run(["tar", "-cf", tarball, "-C", src, "."], check=True)
    return tarball


def workload(directory, tarball, files):
    """µs per file of `tar -x` into `directory`, then of one getxattr on each file."""
    out = {}
    t = time.perf_counter()
    subprocess.run(["tar", "-xf", tarball, "-C", directory], check=True)
    out["tar -x"] = (time.perf_counter() - t) / files * 1e6
    names = [f"{directory}/f{i:05}.txt" for i in range(files)]
    for n in names:
        os.setxattr(n, "user.k", b"v")
    time.sleep(1.2)  # past the kernel's 1 s attribute cache
    t = time.perf_counter()
    for n in names:
        os.getxattr(n, "user.k")
    out["getfattr -n"] = (time.perf_counter() - t) / files * 1e6
    return out


class Scraper:
    """Scrapes a daemon's metrics once a second until stopped."""

    def __init__(self, log):
        text = open(log).read()
        self.url = "http://" + re.search(r"http://([0-9.:]+)/metrics", text).group(1) + "/metrics"
        self.stop = threading.Event()
        self.scrapes = 0
        self.thread = threading.Thread(target=self.run, daemon=True)
        self.thread.start()

    def run(self):
        while not self.stop.wait(1.0):
            urllib.request.urlopen(self.url, timeout=10).read()
            self.scrapes += 1

    def close(self):
        self.stop.set()
        self.thread.join()


class LogReader:
    """Reads a mount's access log until stopped, as `cronusfs profile` would."""

    def __init__(self, mnt):
        self.file = open(f"{mnt}/.cronusfs/accesslog", "rb", buffering=0)
        self.stop = threading.Event()
        self.lines = 0
        self.thread = threading.Thread(target=self.run, daemon=True)
        self.thread.start()

    def run(self):
        while not self.stop.is_set():
            chunk = self.file.read(1 << 17)
            if not chunk:
                return
            self.lines += chunk.count(b"\n")

    def close(self):
        self.stop.set()
        self.thread.join()  # within a second: the log answers `#` when quiet
        self.file.close()


def one_run(variant, work, tarball, files):
    binary, extra = variant
    options = ["--metrics", "127.0.0.1:0"] if extra == "metrics" else []
    os.makedirs(work)
    daemon = Daemon(binary, work, options=options)
    scraper = Scraper(f"{work}/daemon.log") if extra == "metrics" else None
    reader = LogReader(daemon.mnt) if extra == "log" else None
    try:
        return workload(daemon.job_dir(), tarball, files)
    finally:
        if scraper:
            scraper.close()
        if reader:
            reader.close()
            if reader.lines < files:
                raise SystemExit(f"the access log showed {reader.lines} lines only")
        daemon.close()


def main():
    p = argparse.ArgumentParser()
    p.add_argument("variants", nargs="+")
    p.add_argument("--runs", type=int, default=3)
    p.add_argument("--files", type=int, default=5000)
    p.add_argument("--dir", default="/var/tmp")
    args = p.parse_args()
    variants = {}
    for v in args.variants:
        label, spec = v.split("=", 1)
        binary, _, extra = spec.partition("+")
        if extra not in ("", "metrics", "log"):
            raise SystemExit(f"{v}: +metrics or +log after the binary")
        variants[label] = (binary, extra)
    results = {label: [] for label in ["native", *variants]}
    with tempfile.TemporaryDirectory(dir=args.dir) as work:
        tarball = make_tarball(work, args.files)
        for run in range(args.runs):
            native = f"{work}/native{run}"
            os.makedirs(native)
            results["native"].append(workload(native, tarball, args.files))
            for label, variant in variants.items():
                results[label].append(
                    one_run(variant, f"{work}/{label}{run}", tarball, args.files))
    med = {t: {op: statistics.median(r[op] for r in rs) for op in OPS}
           for t, rs in results.items()}
    first = next(iter(variants))
    print(f"µs per file, medians of {args.runs} runs of {args.files} files")
    print(f"{'variant':<12}" + "".join(f"{op:>14}{'/' + first:>10}" for op in OPS))
    for label in results:
        cells = "".join(f"{med[label][op]:>14.1f}{med[label][op] / med[first][op]:>9.3f}x"
                        for op in OPS)
        print(f"{label:<12}{cells}")
    for label in variants:
        runs = {op: [round(r[op], 1) for r in results[label]] for op in OPS}
        print(f"  {label} runs: {runs}")


if __name__ == "__main__":
    main()
