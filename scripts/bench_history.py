#!/usr/bin/env python3
"""History benchmark (issue 23): what keeping history costs small writes, and what reading
history costs, with an old and a new binary in one run.

usage: bench_history.py NEW_BINARY [OLD_BINARY] [--runs N] [--dir DIR] [--files N]
                        [--attrs N] [--objects N] [--versions N]

Per binary (medians of --runs, each on a fresh store mounted on DIR): `touch` (os.utime) of
--files small files, `setfattr` (os.setxattr) of one attribute on each and then again (each
replacing the row the first set, whose death history keeps), and the store's growth
(apparent size of the store directory once the daemon closed) after --attrs setxattr calls
spread over the files. With the new binary
only: `diff` of 100 changes in a dataset of --objects objects, and `log` of an object with
--versions versions (each time through the command line, whole process, median of --runs), and
`ls -l` of the --objects objects' job directory live and under `at/<T>/` (T just after the
writes), cold (a new file makes the daemon list the job anew; each run looks T up under another
spelling) and warm (each listed again after the kernel's 1-second cache of live names passed).
tar -x of small files and cp of 1 GiB are bench_mount.py's (run it with each binary).
"""
import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(__file__))
from bench_mount import Daemon, sh  # noqa: E402


def timed(f):
    t = time.perf_counter()
    f()
    return time.perf_counter() - t


def du(path):
    """MiB written under `path` (apparent sizes: RocksDB preallocates its log)."""
    out = subprocess.run(["du", "-sk", "--apparent-size", path], capture_output=True,
                         text=True, check=True)
    return int(out.stdout.split()[0]) / 1024


def small_writes(binary, root, files, attrs):
    """Times touch and setfattr of `files` files, and the store's growth under `attrs` sets."""
    with tempfile.TemporaryDirectory(dir=root) as work:
        d = Daemon(binary, work)
        try:
            names = d.small_files(files)
            touch = timed(lambda: [os.utime(n, (1_000_000 + i, 1_000_000 + i))
                                   for i, n in enumerate(names)])
            setx = timed(lambda: [os.setxattr(n, "user.k", str(i).encode())
                                  for i, n in enumerate(names)])
            # Again: each now replaces a row, whose death history keeps.
            again = timed(lambda: [os.setxattr(n, "user.k", str(-i).encode())
                                   for i, n in enumerate(names)])
            before = du(d.store)
            # Spread over the files, as a workload would (one node's 100,000 replaced rows
            # would time RocksDB's tombstone skipping, with or without history).
            for i in range(attrs):
                os.setxattr(names[i % files], "user.counter", str(i).encode())
        finally:
            d.close()
        grown = du(d.store) - before  # closed: what it wrote is in its log and tables
    return touch, setx, grown, again


def cli(binary, store, *args):
    t = time.perf_counter()
    subprocess.run([binary, "--store", store, *args], check=True, stdout=subprocess.DEVNULL)
    return time.perf_counter() - t


def spell(t, offset_us=0):
    """RFC 3339 of epoch seconds `t` plus `offset_us` µs (UTC, µs digits)."""
    us = int(t * 1e6) + offset_us
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(us // 1_000_000)) + \
        f".{us % 1_000_000:06}Z"


def listings(d, job, objects, runs):
    """Times `ls -l` of `job` live and at a time just after its writes, each read cold (the
    daemon's listing dropped by a new file; a new spelling of the time) and then warm (again,
    once the kernel's 1-second cache of the live names passed)."""
    rel = job.split("/datasets/", 1)[1]
    time.sleep(0.01)
    t = time.time()
    time.sleep(0.01)
    cold, warm = {"live": [], "past": []}, {"live": [], "past": []}
    for run in range(runs):
        with open(f"{job}/extra{run}", "wb") as f:  # the daemon lists the job anew
            f.write(b"z")
        at = f"{d.mnt}/at/{spell(t, run)}/datasets/{rel}"
        for times in (cold, warm):
            time.sleep(1.1)
            times["live"].append(timed(lambda: sh(f"ls -l {job} > /dev/null")))
            times["past"].append(timed(lambda: sh(f"ls -l {at} > /dev/null")))
        n = len(os.listdir(at))
        assert n >= objects, f"{n} entries at T, {objects} written"
    med = statistics.median
    return [(med(x["live"]), med(x["past"])) for x in (cold, warm)]


def history_reads(binary, root, objects, versions, runs):
    """Times `diff` of 100 changes among `objects` objects, `log` of `versions` versions, and
    `ls -l` of the objects live and at a time."""
    with tempfile.TemporaryDirectory(dir=root) as work:
        d = Daemon(binary, work)
        try:
            job = d.job_dir()
            for i in range(objects):
                with open(f"{job}/o{i:06}", "wb") as f:
                    f.write(b"y" * 64)
            ls = listings(d, job, objects, runs)
            time.sleep(0.01)
            t1 = spell(time.time())  # a store directory's clock is this host's
            for i in range(100):
                os.setxattr(f"{job}/o{i * (objects // 100):06}", "user.changed", b"1")
            one = f"{job}/versions"
            for v in range(versions):
                with open(one, "wb") as f:
                    f.write(str(v).encode())
            rel = job.split("/datasets/", 1)[1].replace("/partitions/", "/").replace("/jobs/", "/")
            diff = statistics.median(cli(binary, d.store, "diff", t1) for _ in range(runs))
            log = statistics.median(cli(binary, d.store, "log", f"{rel}/versions")
                                    for _ in range(runs))
        finally:
            d.close()
    return diff, log, ls


def main():
    p = argparse.ArgumentParser()
    p.add_argument("new")
    p.add_argument("old", nargs="?")
    p.add_argument("--runs", type=int, default=3)
    p.add_argument("--dir", default="/var/tmp")
    p.add_argument("--files", type=int, default=2000)
    p.add_argument("--attrs", type=int, default=100_000)
    p.add_argument("--objects", type=int, default=100_000)
    p.add_argument("--versions", type=int, default=1000)
    args = p.parse_args()
    binaries = [("new", args.new)] + ([("old", args.old)] if args.old else [])
    results = {}
    for run in range(args.runs):
        for name, binary in binaries:
            r = small_writes(binary, args.dir, args.files, args.attrs if run == 0 else 0)
            results.setdefault(name, []).append(r)
    print(f"{'phase':<34}" + "".join(f"{n:>12}" for n, _ in binaries))
    phases = {0: f"touch {args.files} files (s)", 1: f"setfattr {args.files} files (s)",
              3: "setfattr again, replacing (s)"}
    for i, phase in phases.items():
        row = [statistics.median(r[i] for r in results[n]) for n, _ in binaries]
        print(f"{phase:<34}" + "".join(f"{v:>12.3f}" for v in row))
    row = [results[n][0][2] for n, _ in binaries]
    print(f"{f'store growth, {args.attrs} setfattr (MiB)':<34}" + "".join(f"{v:>12.1f}" for v in row))
    diff, log, ls = history_reads(args.new, args.dir, args.objects, args.versions, args.runs)
    for how, (live, past) in zip(("cold", "warm"), ls):
        print(f"ls -l of {args.objects} objects, {how}: live {live:.3f} s, at/T {past:.3f} s "
              f"({past / live:.2f}x)")
    print(f"diff of 100 changes among {args.objects} objects: {diff * 1000:.0f} ms (whole command)")
    print(f"log of an object with {args.versions} versions: {log * 1000:.0f} ms (whole command)")


if __name__ == "__main__":
    main()
