#!/usr/bin/env python3
"""Scale benchmark (issue 27, item 3): a store of N small objects (one dataset, job directories
of --per-job objects each, filled through the library by `cargo bench --bench scale`), mounted
with each --max-inodes given; for each mount: `find` with `-size` over every object (each
looked up or listed with its attributes), the daemon's resident memory after it and its peak,
the inodes the kernel holds and the daemon numbers, a cold `stat` of 2,000 random objects, and
`ls -l` of one job directory; then `fsck` and `gc` of the store, and its size on disk. Medians
of --runs runs of each timed step.

usage: bench_scale.py CRONUSFS_BINARY --objects N [--per-job P] [--max-inodes M ...]
                      [--runs R] [--dir DIR] [--no-fsck] [--threads T] [--tagged M]
                      [--store PATH]
Also per mount: µs per new small file (1,000 made in a job directory, then removed), and
`ls -l` of the query view `query/quality=10` (the filler tags --tagged objects).
(The filler is `cargo bench --bench scale`, built in $CARGO_TARGET_DIR, by default
~/.cache/cronusfs-target.)
"""
import argparse
import json
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time


def sh(cmd, **kw):
    return subprocess.run(cmd, shell=True, check=True, text=True, capture_output=True, **kw)


def timed(cmd):
    t = time.perf_counter()
    out = sh(cmd).stdout
    return time.perf_counter() - t, out


def timed_peak(cmd):
    """Seconds `cmd` took, and its peak resident memory in MiB."""
    t = time.perf_counter()
    out = subprocess.run(f"/usr/bin/time -f '%M' {cmd}", shell=True, check=True, text=True,
                         capture_output=True)
    kib = int(out.stderr.strip().splitlines()[-1])
    return time.perf_counter() - t, kib / 1024


def drop_caches():
    sh("sync")
    with open("/proc/sys/vm/drop_caches", "w") as f:
        f.write("3\n")


def status_mib(pid, field):
    with open(f"/proc/{pid}/status") as f:
        kib = next(int(l.split()[1]) for l in f if l.startswith(field + ":"))
    return kib / 1024


def gauge(mnt, name):
    with open(f"{mnt}/.cronusfs/stats") as f:
        for line in f:
            if line.split(" ")[0] == name:
                return float(line.rsplit(" ", 1)[1])
    return float("nan")


def fill(store, objects, per_job, threads, tagged):
    jobs = max(1, objects // per_job)
    # The build's target directory (never one inside the clone: RocksDB would build again).
    env = dict(os.environ)
    env.setdefault("CARGO_TARGET_DIR", os.path.expanduser("~/.cache/cronusfs-target"))
    out = sh(f"cargo bench --quiet --bench scale -- --store '{store}' --jobs {jobs} "
             f"--per-job {per_job} --threads {threads} --tagged {tagged}",
             cwd=os.path.dirname(os.path.dirname(os.path.abspath(__file__))), env=env).stdout
    ds = next(l.split()[1] for l in out.splitlines() if l.startswith("dataset "))
    print(next(l for l in out.splitlines() if l.startswith("filled ")), flush=True)
    return ds, jobs


OBJECTS = None


def kept_or_filled(binary, store, args):
    """The dataset and job count of the store at `store`: filled now, unless a run with
    --store filled it before (its description is beside it)."""
    described = f"{store}.filled.json"
    if os.path.exists(described):
        with open(described) as f:
            d = json.load(f)
        print(f"reusing {store}: {d}", flush=True)
        # A fill stopped early says how many objects it made (its last jobs partly filled:
        # `jobs` counts the whole ones, which the random stats pick from).
        global OBJECTS
        OBJECTS = d.get("objects")
        return d["ds"], d["jobs"], d["tagged"]
    sh(f"{binary} init '{store}'")
    ds, jobs = fill(store, args.objects, args.per_job, args.threads, args.tagged)
    with open(described, "w") as f:
        json.dump({"ds": ds, "jobs": jobs, "tagged": args.tagged}, f)
    return ds, jobs, args.tagged


def creates(root, jobs, runs):
    """µs per new small file (create, write, close) in a job directory, medians of `runs`
    rounds of 1,000; the files are removed after each round."""
    per_file = []
    for r in range(runs):
        job = f"{root}/{r % jobs}"
        names = [f"{job}/new{r}-{i}.bin" for i in range(1000)]
        t = time.perf_counter()
        for n in names:
            with open(n, "wb") as f:
                f.write(b"new\n")
        per_file.append((time.perf_counter() - t) / len(names) * 1e6)
        for n in names:
            os.unlink(n)
    return statistics.median(per_file)


def view_listing(mnt, ds, tagged, runs):
    """Seconds of `ls -l` of the query view of `tagged` matches, medians of `runs`, each after
    a commit in the dataset (so the daemon lists it anew) and with the kernel's caches dropped."""
    took = []
    for r in range(runs):
        sh(f"setfattr -n user.bench -v {r} {mnt}/datasets/{ds}")
        drop_caches()
        secs, out = timed(f"ls -l {mnt}/query/quality=10 | wc -l")
        assert int(out) == tagged + 1, out
        took.append(secs)
    return statistics.median(took)


def ls_only(binary, store, work, max_inodes, ds, jobs, per_job, runs):
    """`ls -l` of a whole job directory (cold: kernel caches dropped, a fresh mount each
    run): seconds, and the daemon's resident memory at mount, after, and at its peak."""
    mnt = f"{work}/mnt"
    os.makedirs(mnt, exist_ok=True)
    rows = []
    for _ in range(runs):
        said = sh(f"{binary} mount '{store}' {mnt} --log-file {work}/daemon.log "
                  f"--max-inodes {max_inodes}").stdout
        pid = int(said.rsplit("daemon pid ", 1)[1].rstrip(")\n"))
        try:
            row = {"rss at mount": status_mib(pid, "VmRSS")}
            drop_caches()
            secs, out = timed(f"ls -l {mnt}/datasets/{ds}/partitions/k/jobs/0 | wc -l")
            assert int(out) == per_job + 1, out
            row["ls -l s"] = secs
            row["rss after"] = status_mib(pid, "VmRSS")
            row["peak rss"] = status_mib(pid, "VmHWM")
            rows.append(row)
        finally:
            sh(f"{binary} umount {mnt}")
    return {k: statistics.median(r[k] for r in rows) for k in rows[0]}


def one_mount(binary, store, work, max_inodes, ds, jobs, per_job, runs, tagged):
    mnt = f"{work}/mnt"
    os.makedirs(mnt, exist_ok=True)
    said = sh(f"{binary} mount '{store}' {mnt} --log-file {work}/daemon.log "
              f"--max-inodes {max_inodes}").stdout
    pid = int(said.rsplit("daemon pid ", 1)[1].rstrip(")\n"))
    row = {"rss at mount": status_mib(pid, "VmRSS")}
    try:
        root = f"{mnt}/datasets/{ds}/partitions/k/jobs"
        finds = []
        for _ in range(runs):
            drop_caches()
            secs, out = timed(f"find {mnt}/datasets -name 'o*.bin' -size -2k | wc -l")
            assert int(out) == (OBJECTS or jobs * per_job), out
            finds.append(secs)
        time.sleep(2.5)  # The gauges move once a second.
        row["find s"] = statistics.median(finds)
        row["rss after find"] = status_mib(pid, "VmRSS")
        row["peak rss"] = status_mib(pid, "VmHWM")
        row["held"] = gauge(mnt, "cronusfs_inodes_held")
        row["numbered"] = gauge(mnt, "cronusfs_inodes")
        stats = []
        for _ in range(runs):
            drop_caches()
            picks = [f"{root}/{random.randrange(jobs)}/o{random.randrange(per_job):07}.bin"
                     for _ in range(2000)]
            t = time.perf_counter()
            for p in picks:
                os.stat(p)
            stats.append((time.perf_counter() - t) / len(picks) * 1e6)
        row["stat µs"] = statistics.median(stats)
        row["ls -l s"] = statistics.median(
            timed(f"ls -l {root}/{random.randrange(jobs)} | wc -l")[0] for _ in range(runs))
        row["create µs"] = creates(root, jobs, runs)
        if tagged:
            row["view s"] = view_listing(mnt, ds, tagged, runs)
    finally:
        sh(f"{binary} umount {mnt}")
    return row


def print_rows(rows, jobs, args):
    print(f"{jobs * args.per_job} objects in {jobs} job directories; medians of {args.runs}")
    names = list(next(iter(rows.values())))
    print(f"{'--max-inodes':>14}" + "".join(f"{n:>16}" for n in names))
    for m, row in rows.items():
        print(f"{m:>14}" + "".join(f"{row[n]:16.3f}" if row[n] < 10 else f"{row[n]:16.1f}"
                                   for n in names))


def main():
    p = argparse.ArgumentParser()
    p.add_argument("binary")
    p.add_argument("--objects", type=int, required=True)
    p.add_argument("--per-job", type=int, default=10_000)
    p.add_argument("--max-inodes", type=int, nargs="+", default=[1_000_000, 0])
    p.add_argument("--runs", type=int, default=3)
    p.add_argument("--dir", default="/var/tmp")
    p.add_argument("--no-fsck", action="store_true", help="skip fsck (slow on large stores)")
    p.add_argument("--threads", type=int, default=2, help="writers filling the store")
    p.add_argument("--tagged", type=int, default=1000, help="objects a query view matches")
    p.add_argument("--store", help="keep the store here (filled once, reused by later runs)")
    p.add_argument("--ls-only", action="store_true",
                   help="only `ls -l` of job directory 0, whole (use --per-job = --objects)")
    args = p.parse_args()
    with tempfile.TemporaryDirectory(dir=args.dir) as work:
        store = args.store or f"{work}/store"
        ds, jobs, tagged = kept_or_filled(args.binary, store, args)
        if args.ls_only:
            rows = {m: ls_only(args.binary, store, work, m, ds, jobs, args.per_job, args.runs)
                    for m in args.max_inodes}
            print_rows(rows, jobs, args)
            return
        rows = {m: one_mount(args.binary, store, work, m, ds, jobs, args.per_job, args.runs,
                             tagged)
                for m in args.max_inodes}
        fsck, fsck_mib = (float("nan"), float("nan")) if args.no_fsck else \
            timed_peak(f"{args.binary} -s '{store}' fsck")
        gc, gc_mib = timed_peak(f"{args.binary} -s '{store}' gc")
        size = int(sh(f"du -sk '{store}'").stdout.split()[0]) / 1024
    print_rows(rows, jobs, args)
    print(f"fsck {fsck:.1f} s (peak {fsck_mib:.0f} MiB), gc {gc:.1f} s (peak {gc_mib:.0f} MiB), "
          f"store {size:.0f} MiB")


if __name__ == "__main__":
    sys.exit(main())
