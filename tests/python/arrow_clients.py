"""Real Arrow clients on files cronusfs stores and gives back.

usage:
  arrow_clients.py write-pyarrow PATH   an IPC file of 10 batches x 1000 rows (int64, float64,
                                        string) with custom schema metadata, written by pyarrow
  arrow_clients.py write-polars PATH    an IPC file of 2500 rows written by polars
  arrow_clients.py write-pyarrow-parquet PATH
                                        a Parquet file of the same 10,000 rows in row groups of
                                        1000, with the same schema metadata, written by pyarrow
  arrow_clients.py write-polars-parquet PATH
                                        a Parquet file of the 2500 rows in row groups of 1000,
                                        written by polars
  arrow_clients.py read PATH            reads PATH (an IPC file, or Parquet when it ends in
                                        .parquet) with pyarrow (file, memory map) and polars,
                                        and prints a JSON summary of what each reader saw
"""
import json
import sys

import polars as pl
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.ipc as ipc
import pyarrow.parquet as pq


def write_pyarrow(path):
    schema = pa.schema(
        [("id", pa.int64()), ("x", pa.float64()), ("label", pa.string())],
        metadata={"producer": "pyarrow", "seed": "7"},
    )
    with ipc.new_file(path, schema) as writer:
        for b in range(10):
            ids = list(range(b * 1000, (b + 1) * 1000))
            writer.write_batch(pa.record_batch(
                [pa.array(ids), pa.array([i * 0.5 for i in ids]), pa.array([f"r{i}" for i in ids])],
                schema=schema))


def pyarrow_table():
    schema = pa.schema(
        [("id", pa.int64()), ("x", pa.float64()), ("label", pa.string())],
        metadata={"producer": "pyarrow", "seed": "7"},
    )
    ids = list(range(10_000))
    return pa.table(
        [pa.array(ids), pa.array([i * 0.5 for i in ids]), pa.array([f"r{i}" for i in ids])],
        schema=schema)


def polars_frame():
    return pl.DataFrame({"k": list(range(2500)), "v": [f"v{i % 7}" for i in range(2500)]})


def write_polars(path):
    polars_frame().write_ipc(path)


def write_pyarrow_parquet(path):
    pq.write_table(pyarrow_table(), path, row_group_size=1000)


def write_polars_parquet(path):
    polars_frame().write_parquet(path, row_group_size=1000)


def read(path):
    if path.endswith(".parquet"):
        return read_parquet(path)
    with pa.OSFile(path) as f:
        reader = ipc.open_file(f)
        table = reader.read_all()
        batches = reader.num_record_batches
    with pa.memory_map(path) as m:
        mapped = ipc.open_file(m).read_all()
    summarise(table, batches, mapped, pl.read_ipc(path))


def read_parquet(path):
    table = pq.read_table(path)
    batches = pq.ParquetFile(path).metadata.num_row_groups
    mapped = pq.read_table(path, memory_map=True)
    summarise(table, batches, mapped, pl.read_parquet(path))


def summarise(table, batches, mapped, df):
    meta = {k.decode(): v.decode() for k, v in (table.schema.metadata or {}).items()}
    first = table.column(0)
    print(json.dumps({
        "pyarrow": {"rows": table.num_rows, "batches": batches, "columns": table.column_names,
                    "metadata": meta, "sum0": pc.sum(first).as_py()},
        "memory_map_equal": mapped.equals(table),
        "polars": {"rows": df.height, "columns": df.columns, "sum0": int(df[df.columns[0]].sum())},
    }, sort_keys=True))


if __name__ == "__main__":
    command, path = sys.argv[1:3]
    {"write-pyarrow": write_pyarrow, "write-polars": write_polars,
     "write-pyarrow-parquet": write_pyarrow_parquet, "write-polars-parquet": write_polars_parquet,
     "read": read}[command](path)
