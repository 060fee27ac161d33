#!/usr/bin/env python3
"""`cp` of a large file and `sync`, through a mount of each binary given and into a native
directory on the same disk, interleaved (each variant first in turn), a fresh store per run (issue 24, item 5: what close
promises, the bytes durable, against a native copy made durable by `sync`). The source is
random bytes written once (page cached); prints each variant's median seconds and its speed
as a multiple of native.

usage: bench_cp.py BINARY ... [--runs N] [--mib N] [--dir DIR]
example: bench_cp.py /tmp/cronusfs-old /tmp/cronusfs-new --runs 5
"""
import argparse
import os
import shutil
import statistics
import subprocess
import time
import uuid


def timed_copy(src, dest):
    subprocess.run("sync", shell=True, check=True)
    t = time.perf_counter()
    subprocess.run(["cp", src, dest], check=True)
    subprocess.run("sync", shell=True, check=True)
    return time.perf_counter() - t


def through_mount(binary, work, src):
    os.makedirs(f"{work}/mnt")
    quiet = {"check": True, "stdout": subprocess.DEVNULL}
    subprocess.run([binary, "init", f"{work}/store"], **quiet)
    subprocess.run([binary, "mount", f"{work}/store", f"{work}/mnt"], **quiet)
    try:
        job = f"{work}/mnt/datasets/{uuid.uuid4()}/partitions/k/jobs/0"
        os.makedirs(job)
        return timed_copy(src, f"{job}/big")
    finally:
        subprocess.run([binary, "umount", f"{work}/mnt"], **quiet)


def main():
    p = argparse.ArgumentParser()
    p.add_argument("binaries", nargs="+")
    p.add_argument("--runs", type=int, default=3)
    p.add_argument("--mib", type=int, default=1024)
    p.add_argument("--dir", default="/var/tmp")
    args = p.parse_args()
    work = f"{args.dir}/cronusfs-bench-cp-{os.getpid()}"
    os.makedirs(work)
    try:
        src = f"{work}/src.bin"
        with open(src, "wb") as f:
            for _ in range(args.mib):
                f.write(os.urandom(1 << 20))
        results = {label: [] for label in ["native", *args.binaries]}
        labels = list(results)
        for run in range(args.runs):
            # Each variant takes each place in turn: what one copy leaves to write back or
            # delete slows the next one, whichever it is.
            for label in labels[run % len(labels):] + labels[:run % len(labels)]:
                one = f"{work}/r{run}-{labels.index(label)}"
                if label == "native":
                    os.makedirs(one)
                    results[label].append(timed_copy(src, f"{one}/big"))
                else:
                    results[label].append(through_mount(label, one, src))
                shutil.rmtree(one)
                subprocess.run("sync", shell=True, check=True)
        native = statistics.median(results["native"])
        print(f"cp of {args.mib} MiB + sync, medians of {args.runs} runs")
        for label, times in results.items():
            med = statistics.median(times)
            runs = [round(t, 3) for t in times]
            print(f"{label:<40} {med:7.3f} s  {native / med:6.3f}x native  runs {runs}")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
