#!/usr/bin/env python3
"""Many hosts on one shared store: N daemons (separate processes and mount points) of one
PostgreSQL + S3 store on this machine, each with a writer creating small files in a dataset of
its own as fast as it can. Starts its own PostgreSQL and SeaweedFS (scripts/bench_shared.py's
servers) and stops them at the end.

usage: bench_hosts.py CRONUSFS_BINARY [--hosts 2,4,8,16] [--seconds S] [--runs R]

Per run and host count, printed as medians over the runs:
  creates/s   files created and closed by all writers together (each a 1 KiB write + close:
              one commit), over the run's seconds
  visible     how long a file host 0 writes (in a probe dataset no writer uses) takes to show
              on the last host, polled with stat (ms, median and max of 20 probes in a run)
  heard/s     announcements each daemon heard a second (the other hosts' commits)
  rounds/s    times each daemon acted on them (those heard within 10 ms are one round)
  list reqs   requests host 1 sent its server per listing of a quiet 100-file directory
              while the writers ran (announcements of the other datasets leave its listing
              and attributes kept: 0 when they do)
  daemon cpu  CPU seconds all daemons used per second of the run
"""
import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from bench_shared import AK, PG_BIN, SK, Postgres, Seaweed, sh  # noqa: E402


def stats(mnt):
    """The mount's metrics (its `.cronusfs/stats` file), summed by name and labels."""
    out = {}
    with open(f"{mnt}/.cronusfs/stats") as f:
        for line in f:
            if line.startswith("#") or not line.strip():
                continue
            key, value = line.rsplit(" ", 1)
            out[key] = float(value)
    return out


def server_requests(s):
    return sum(v for k, v in s.items()
               if k.startswith('cronusfs_engine_requests_total{engine="postgres"'))


def cpu_seconds(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def daemon_pid(mnt):
    """The pid of the daemon serving `mnt`: the cronusfs process with it among its arguments."""
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                args = f.read().decode(errors="replace").split("\0")
        except OSError:
            continue
        if args and "cronusfs" in os.path.basename(args[0]) and mnt in args:
            return int(pid)
    return None


def writer(job, stop, counts, i):
    n = 0
    data = b"x" * 1024
    while not stop.is_set():
        with open(f"{job}/f{n}", "wb") as f:
            f.write(data)
        n += 1
    counts[i] = n


def probe(src_dir, dst_dir, probes=20):
    took = []
    for i in range(probes):
        name = f"p{i}-{uuid.uuid4().hex[:6]}"
        with open(f"{src_dir}/{name}", "wb") as f:
            f.write(b"p")
        start = time.perf_counter()
        while not os.path.exists(f"{dst_dir}/{name}"):
            if time.perf_counter() - start > 10:
                break
            time.sleep(0.0005)
        took.append(time.perf_counter() - start)
        time.sleep(0.1)
    return took


def one_run(binary, url, content, hosts, seconds, work, env):
    mnts = []
    for h in range(hosts):
        mnt = f"{work}/mnt-{hosts}-{h}"
        os.makedirs(mnt, exist_ok=True)
        sh(f"{binary} mount '{url}' {mnt} --log-file {work}/daemon-{hosts}-{h}.log",
           stdout=subprocess.DEVNULL, env=env)
        mnts.append(mnt)
    try:
        return measure(binary, mnts, seconds, env)
    finally:
        for mnt in mnts:
            subprocess.run([binary, "umount", mnt], env=env, stdout=subprocess.DEVNULL)


def new_job(mnt):
    ds = uuid.uuid4()
    job = f"datasets/{ds}/partitions/k/jobs/0"
    os.makedirs(f"{mnt}/{job}")
    return job


def measure(binary, mnts, seconds, env):
    jobs = [new_job(m) for m in mnts]
    probe_job = new_job(mnts[0])
    quiet_job = new_job(mnts[0])
    for i in range(100):
        with open(f"{mnts[0]}/{quiet_job}/q{i}", "wb") as f:
            f.write(b"q")
    quiet_on_1 = f"{mnts[1]}/{quiet_job}"
    while len(os.listdir(quiet_on_1)) < 100:
        time.sleep(0.05)
    pids = [daemon_pid(m) for m in mnts]
    stop, counts = threading.Event(), [0] * len(mnts)
    threads = [threading.Thread(target=writer, args=(f"{m}/{j}", stop, counts, i))
               for i, (m, j) in enumerate(zip(mnts, jobs))]
    before = [stats(m) for m in mnts]
    cpu0 = sum(cpu_seconds(p) for p in pids if p)
    start = time.perf_counter()
    for t in threads:
        t.start()
    took = probe(f"{mnts[0]}/{probe_job}", f"{mnts[-1]}/{probe_job}")
    listed, s1 = 0, stats(mnts[1])
    while time.perf_counter() - start < seconds:
        assert len(os.listdir(quiet_on_1)) == 100
        listed += 1
    list_reqs = (server_requests(stats(mnts[1])) - server_requests(s1)) / max(listed, 1)
    stop.set()
    for t in threads:
        t.join()
    elapsed = time.perf_counter() - start
    cpu = sum(cpu_seconds(p) for p in pids if p) - cpu0
    after = [stats(m) for m in mnts]
    per = lambda key: statistics.median(  # noqa: E731
        (a.get(key, 0) - b.get(key, 0)) / elapsed for a, b in zip(after, before))
    return {
        "creates/s": sum(counts) / elapsed,
        "visible ms": statistics.median(took) * 1000,
        "visible max ms": max(took) * 1000,
        "heard/s": per("cronusfs_announcements_heard_total"),
        "rounds/s": per("cronusfs_announcement_rounds_total"),
        "list reqs": list_reqs,
        "daemon cpu": cpu / elapsed,
    }


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("binary")
    ap.add_argument("--hosts", default="2,4,8,16")
    ap.add_argument("--seconds", type=float, default=10)
    ap.add_argument("--runs", type=int, default=3)
    a = ap.parse_args()
    work = tempfile.mkdtemp(prefix="cronusfs-hosts-")
    os.chmod(work, 0o755)
    pg = s3 = None
    try:
        pg, s3 = Postgres(work), Seaweed(work)
        # Each daemon holds up to 17 connections (a pool of 16 and its listener).
        pg.as_pg(f"{PG_BIN}/psql -h 127.0.0.1 -p {pg.port} -U postgres -qc "
                 f"'ALTER SYSTEM SET max_connections = 600'")
        pg.as_pg(f"{PG_BIN}/pg_ctl -D {pg.dir}/data -w restart >/dev/null")
        env = dict(os.environ, AWS_ACCESS_KEY_ID=AK, AWS_SECRET_ACCESS_KEY=SK,
                   XDG_CACHE_HOME=f"{work}/cache")
        url = pg.url() + "?schema=hosts"
        content = f"s3://bench/hosts?endpoint={s3.endpoint}"
        sh(f"{a.binary} init '{url}' --content '{content}'", stdout=subprocess.DEVNULL, env=env)
        keys = ["creates/s", "visible ms", "visible max ms", "heard/s", "rounds/s",
                "list reqs", "daemon cpu"]
        print("| hosts | " + " | ".join(keys) + " |")
        print("|---" * (len(keys) + 1) + "|")
        for hosts in [int(h) for h in a.hosts.split(",")]:
            runs = [one_run(a.binary, url, content, hosts, a.seconds, work, env)
                    for _ in range(a.runs)]
            row = [statistics.median(r[k] for r in runs) for k in keys]
            print(f"| {hosts} | " + " | ".join(f"{v:.2f}" if v < 10 else f"{v:.0f}"
                                              for v in row) + " |", flush=True)
    finally:
        for server in (s3, pg):
            if server:
                server.stop()


if __name__ == "__main__":
    main()
