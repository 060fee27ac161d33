#!/usr/bin/env python3
"""The row benchmark of `cargo bench --bench rowstore` on the original: Synapse 0.0.56's LMDB
storage layer (`core.store` of an `lmdb://` Cortex), with exactly the same rows, lookups and
ranges (same idens, values, times and xorshift sequence), so the two can be put side by side.

usage: bench_synapse.py [--rows N] [--lookups N] [--runs R] [--dir DIR] [--nosync]

Figures per run: rows added/s (`addRows` of batches of 1,000), rows lifted/s (`getRowsByProp`
of each of the 4 props in full), prop=value lookups/s (`getRowsByProp('bench:name', valu=…)`),
integer range lifts/s (`rowsByRange('bench:score', (lo, lo + 400))`), fresh (right after the
load) and settled (after closing and reopening). Medians of the runs. `--nosync` opens LMDB with
`lmdb:sync=0` (commits not fsynced: they survive the process, not the machine, as cronusfs's
RocksDB writes, whose write-ahead log is written but not synced at each batch).

Setup (scripts/bench.sh --only synapse does it): a Python 3.11 venv with `synapse==0.0.56`
installed without its pins (they need Python 3.6), `lmdb<2`, `tornado`, `xxhash`, `regex`,
`pyopenssl` and a current `msgpack`. Synapse 0.0.56 passes `encoding='utf8'` to msgpack, which
msgpack 1.0 dropped (its default is that same UTF-8); the shim below removes the argument, so
the C msgpack serves Synapse as msgpack 0.5 did (0.6's C extension does not build on 3.11, and
its pure-Python fallback would make Synapse look several times slower than it is).
"""
import argparse
import os
import shutil
import statistics
import sys
import tempfile
import time

import msgpack


def _without_encoding(cls):
    class Shim(cls):
        def __init__(self, *args, **kwargs):
            kwargs.pop("encoding", None)
            super().__init__(*args, **kwargs)
    Shim.__name__ = cls.__name__
    return Shim


def _fn_without_encoding(fn):
    def shim(*args, **kwargs):
        kwargs.pop("encoding", None)
        return fn(*args, **kwargs)
    return shim


msgpack.Packer = _without_encoding(msgpack.Packer)
msgpack.Unpacker = _without_encoding(msgpack.Unpacker)
msgpack.packb = _fn_without_encoding(msgpack.packb)
msgpack.loads = msgpack.unpackb = _fn_without_encoding(msgpack.unpackb)

import synapse.cortex as s_cortex  # noqa: E402

PROPS = ("bench:score", "bench:name", "bench:bucket", "bench:kind")
BATCH, RANGE_LIFTS, RANGE_WIDTH = 1000, 20_000, 400
MASK = (1 << 64) - 1


class Rng:
    """The benchmark's xorshift, so every run lifts the same data as `cargo bench`."""

    def __init__(self, seed):
        self.s = seed

    def next(self):
        s = self.s
        s ^= (s << 13) & MASK
        s ^= s >> 7
        s ^= (s << 17) & MASK
        self.s = s
        return s


def rows_of(n, iden):
    t = 1_700_000_000_000 + n
    return [
        (iden, "bench:score", n * 4 - 2_000_000, t),
        (iden, "bench:name", f"name-{n:08}", t),
        (iden, "bench:bucket", n % 1000, t),
        (iden, "bench:kind", ("alpha", "beta", "gamma", "delta")[n % 4], t),
    ]


def load(store, idens):
    start = time.perf_counter()
    batch = []
    for n, iden in enumerate(idens):
        batch.extend(rows_of(n, iden))
        if len(batch) >= BATCH:
            store.addRows(batch)
            batch = []
    if batch:
        store.addRows(batch)
    return len(idens) * 4 / (time.perf_counter() - start)


def reads(store, nodes, lookups, rng):
    start = time.perf_counter()
    lifted = sum(len(store.getRowsByProp(p)) for p in PROPS)
    assert lifted == nodes * 4, lifted
    lift = lifted / (time.perf_counter() - start)
    start = time.perf_counter()
    for _ in range(lookups):
        n = rng.next() % nodes
        got = store.getRowsByProp("bench:name", valu=f"name-{n:08}")
        assert len(got) == 1
    lookup = lookups / (time.perf_counter() - start)
    start = time.perf_counter()
    span = nodes * 4
    for _ in range(RANGE_LIFTS):
        lo = rng.next() % span - 2_000_000
        store.rowsByRange("bench:score", (lo, lo + RANGE_WIDTH))
    return lift, lookup, RANGE_LIFTS / (time.perf_counter() - start)


def one_run(args, run):
    work = tempfile.mkdtemp(prefix="synapse-bench-", dir=args.dir)
    url = f"lmdb:///{work}/core.lmdb" + ("?lmdb:sync=0" if args.nosync else "")
    try:
        nodes = args.rows // 4
        idens = [format(n * 0x9E3779B97F4A7C15, "032x") for n in range(nodes)]
        rng = Rng(0x5EED + run)
        core = s_cortex.openurl(url)
        add = load(core.store, idens)
        fresh = reads(core.store, nodes, args.lookups, rng)
        core.fini()
        core = s_cortex.openurl(url)
        settled = reads(core.store, nodes, args.lookups, rng)
        core.fini()
        size = os.stat(f"{work}/core.lmdb").st_blocks * 512  # The map is sparse.
        return add, fresh, settled, size
    finally:
        shutil.rmtree(work, ignore_errors=True)


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--rows", type=int, default=1_000_000)
    p.add_argument("--lookups", type=int, default=100_000)
    p.add_argument("--runs", type=int, default=3)
    p.add_argument("--dir", default=tempfile.gettempdir())
    p.add_argument("--nosync", action="store_true")
    args, _ = p.parse_known_args()
    runs = []
    for i in range(args.runs):
        add, fresh, settled, size = one_run(args, i)
        runs.append((add, fresh, settled))
        print(f"  run {i}: added/s {add:,.0f}; fresh lift/lookup/range {fresh[0]:,.0f} / "
              f"{fresh[1]:,.0f} / {fresh[2]:,.0f}; settled {settled[0]:,.0f} / "
              f"{settled[1]:,.0f} / {settled[2]:,.0f}; file {size / 1048576:.1f} MiB",
              flush=True)
    med = lambda f: statistics.median(f(r) for r in runs)  # noqa: E731
    sync = "lmdb:sync=0" if args.nosync else "lmdb:sync=1 (default)"
    print(f"Synapse 0.0.56 LMDB ({sync}), {args.rows:,} rows, medians of {args.runs}:")
    print(f"  rows added/s               {med(lambda r: r[0]):12,.0f}")
    for i, name in enumerate(("rows lifted/s by prop", "prop=value lookups/s", "range lifts/s")):
        print(f"  {name + ', fresh':27}{med(lambda r: r[1][i]):12,.0f}")
        print(f"  {name + ', settled':27}{med(lambda r: r[2][i]):12,.0f}")


if __name__ == "__main__":
    sys.exit(main())
