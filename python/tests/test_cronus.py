"""The original Cronus tests (seed-systems §1.5), run against ``cronusfs.BaseObjectStore``
with only the import lines changed: menus, configurations, Arrow content, files registered by
path and by glob, and ``test_validation`` (30 objects, saved, reopened, every one read back)."""

import os
import uuid

import pyarrow as pa
import pytest

import cronusfs
from cronusfs import BaseObjectStore
from cronusfs.protobuf.configuration_pb2 import Configuration
from cronusfs.protobuf.cronus_pb2 import (ConfigObjectInfo, DatasetObjectInfo, FileObjectInfo,
                                          MenuObjectInfo)
from cronusfs.protobuf.menu_pb2 import Menu


def arrow_buffer():
    data = [pa.array([1, 2, 3, 4]), pa.array(["foo", "bar", "baz", None]),
            pa.array([True, None, False, True])]
    batch = pa.RecordBatch.from_arrays(data, ["f0", "f1", "f2"])
    sink = pa.BufferOutputStream()
    writer = pa.RecordBatchFileWriter(sink, batch.schema)
    for _ in range(10):
        writer.write_batch(batch)
    writer.close()
    return sink.getvalue()


@pytest.fixture()
def parts(location, content):
    menu = Menu(uuid=str(uuid.uuid4()))
    menu.name = menu.uuid + ".menu.dat"
    menuinfo = MenuObjectInfo()
    menuinfo.created.GetCurrentTime()
    config = Configuration(uuid=str(uuid.uuid4()))
    config.name = config.uuid + ".config.dat"
    configinfo = ConfigObjectInfo()
    configinfo.created.GetCurrentTime()
    fileinfo = FileObjectInfo(type=5)
    fileinfo.aux.description = "This is a test"
    store = BaseObjectStore(location, "test", content=content)
    return store, menu, menuinfo, config, configinfo, fileinfo, arrow_buffer()


def test_menu(parts):
    store, menu, menuinfo, *_ = parts
    store.register_content(menu, menuinfo)
    store.put(menu.uuid, menu)
    fetched = Menu()
    store.get(menu.uuid, fetched)
    assert (fetched.name, fetched.uuid) == (menu.name, menu.uuid)


def test_config(parts):
    store, _, _, config, configinfo, *_ = parts
    store.register_content(config, configinfo)
    store.put(config.uuid, config)
    fetched = Configuration()
    store.get(config.uuid, fetched)
    assert (fetched.name, fetched.uuid) == (config.name, config.uuid)


def test_arrow(parts):
    store, menu, menuinfo, config, configinfo, fileinfo, buf = parts
    store.register_content(menu, menuinfo)
    store.register_content(config, configinfo)
    ds = store.register_dataset(menu.uuid, config.uuid).uuid
    store.new_partition(ds, "key")
    job = store.new_job(ds)
    obj = store.register_content(buf, fileinfo, dataset_id=ds, job_id=job, partition_key="key")
    store.put(obj.uuid, buf)
    reader = pa.ipc.open_file(pa.py_buffer(store.get(obj.uuid)))
    assert reader.num_record_batches == 10
    assert store.open(obj.uuid).num_record_batches == 10
    assert store[obj.uuid].file.type == 5


def test_identical_files_and_glob(parts, tmp_path):
    store, *_, fileinfo, buf = parts
    ds = store.register_dataset().uuid
    store.new_partition(ds, "key")
    for name in ("dummy.arrow", "dummy2.arrow"):
        (tmp_path / name).write_bytes(buf.to_pybytes())
    first = store.register_content(str(tmp_path / "dummy.arrow"), fileinfo, dataset_id=ds,
                                   partition_key="key")
    second = store.register_content(str(tmp_path / "dummy2.arrow"), fileinfo, dataset_id=ds,
                                    partition_key="key")
    assert second.uuid == first.uuid + "_0"
    globbed = store.register_content(str(tmp_path), fileinfo, glob="*arrow", dataset_id=ds,
                                     partition_key="key")
    assert len(globbed) == 2
    for obj in [first, second, *globbed]:
        assert pa.ipc.open_file(pa.py_buffer(store.get(obj.uuid))).num_record_batches == 10
    assert len(store.list(prefix=ds + ".part_key", suffix="arrow")) == 4


def test_errors_are_the_original_s(parts):
    store, menu, menuinfo, *_, fileinfo, buf = parts
    store.register_content(menu, menuinfo)
    with pytest.raises(ValueError):
        store.register_content(menu, menuinfo)  # a uuid registered twice
    ds = store.register_dataset().uuid
    with pytest.raises(ValueError):  # no such partition
        store.register_content(buf, fileinfo, dataset_id=ds, job_id=0, partition_key="nope")
    with pytest.raises(ValueError):  # no job id
        store.register_content(buf, fileinfo, dataset_id=ds, partition_key="key")
    with pytest.raises(KeyError):
        store.get(str(uuid.uuid4()))
    with pytest.raises(KeyError):
        store.new_job(str(uuid.uuid4()))
    with pytest.raises(TypeError):
        store.register_content(b"", DatasetObjectInfo())
    with pytest.raises(KeyError):
        BaseObjectStore(store._root, "never.saved.cronus.pb", store_uuid="x")


def test_validation(parts):
    store, menu, menuinfo, config, configinfo, fileinfo, buf = parts
    store.register_content(menu, menuinfo)
    store.register_content(config, configinfo)
    ds = store.register_dataset(menu.uuid, config.uuid).uuid
    for key in ("key1", "key2", "key3"):
        store.new_partition(ds, key)
    assert store.list_partitions(ds) == ["key1", "key2", "key3"]
    fetched_menu, fetched_config = Menu(), Configuration()
    store.get(menu.uuid, fetched_menu)
    store.get(config.uuid, fetched_config)
    assert fetched_menu.uuid == menu.uuid and fetched_config.uuid == config.uuid
    ids = []
    for _ in range(10):
        job = store.new_job(ds)
        for key in store.list_partitions(ds):
            obj = store.register_content(buf, fileinfo, dataset_id=ds, job_id=job,
                                         partition_key=key)
            store.put(obj.uuid, buf)
            ids.append(obj.uuid)
    assert len(ids) == 30
    for id_ in ids:
        assert pa.ipc.open_file(pa.py_buffer(store.get(id_))).num_record_batches == 10
    store.save_store()
    reopened = BaseObjectStore(store._root, store.store_name, store_uuid=store.store_uuid)
    assert reopened.store_uuid == store.store_uuid
    for id_ in ids:
        assert pa.ipc.open_file(pa.py_buffer(reopened.get(id_))).num_record_batches == 10
    listed = reopened.list(prefix=ds, suffix="arrow")
    assert sorted(m.uuid for m in listed) == sorted(ids)


def test_job_entries_histograms_logs_and_tables(parts):
    """What an Artemis job registers at its end (seed-systems §1.4.5): histograms, job
    metadata, a log written after its registration, a table; listed, read back, merged."""
    from cronusfs.protobuf.cronus_pb2 import (DatasetObjectInfo, HistsObjectInfo,
                                              JobObjectInfo, TableObjectInfo)
    from cronusfs.protobuf.table_pb2 import Table

    store, *_ = parts
    ds = store.register_dataset().uuid
    store.new_partition(ds, "key")
    job = store.new_job(ds)
    hists = store.register_content(b"histogram bytes", HistsObjectInfo(keys=["h1"]),
                                   dataset_id=ds, job_id=job)
    assert hists.name == f"{ds}.job_{job}.{hists.uuid}.hist.pb"
    info = store.register_content(Menu(name="job metadata"), JobObjectInfo(),
                                  dataset_id=ds, job_id=job)
    log = store.register_log(ds, job)
    with pytest.raises(KeyError):
        store.get(log.uuid)  # nothing written yet
    store.put(log.uuid, b"log line\n")
    table = Table(uuid=str(uuid.uuid4()), name="schema.pb")
    tab = store.register_content(table, TableObjectInfo(fields=["f0"]), dataset_id=ds,
                                 job_id=job, partition_key="key")
    with pytest.raises(ValueError):
        store.register_content(table, TableObjectInfo(), dataset_id=ds, job_id=job,
                               partition_key="nope")
    assert store.get(hists.uuid) == b"histogram bytes"
    assert store.get(log.uuid) == b"log line\n"
    fetched = Menu()
    store.get(info.uuid, fetched)
    assert fetched.name == "job metadata"
    assert Table.FromString(store.get(tab.uuid)).uuid == table.uuid
    views = cronusfs.open_store(store._root).ls("query")
    assert not [v for v in views if v["name"].startswith("cronus:entry")], views
    assert [o.uuid for o in store.list_jobs(ds)] == [info.uuid]
    assert [o.uuid for o in store.list_histograms(ds)] == [hists.uuid]
    assert store[hists.uuid].hists.keys == ["h1"]
    assert {m.uuid for m in store.list(prefix=ds + ".job_")} >= {hists.uuid, info.uuid,
                                                                log.uuid}
    with pytest.raises(KeyError):
        store.register_content(b"x", HistsObjectInfo(), dataset_id=ds, job_id=job + 5)
    # A worker's dataset, written to this same store, merges; one naming what is not here
    # does not.
    update = DatasetObjectInfo(partitions=["key"])
    update.jobs.add().CopyFrom(store[info.uuid])
    update.hists.add().CopyFrom(store[hists.uuid])
    store.update_dataset(ds, update.SerializeToString())
    update.logs.add(uuid=str(uuid.uuid4()), name="elsewhere.log")
    with pytest.raises(ValueError):
        store.update_dataset(ds, update.SerializeToString())
