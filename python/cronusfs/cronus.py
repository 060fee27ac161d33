"""The Cronus ``BaseObjectStore`` API over a cronusfs store: the original's constructor,
methods and errors (``cronus.core.cronus``), its protobuf messages, and its object names.

What differs, on purpose: everything registered is durable at once (``save_store`` records
the metastore's name, so that ``BaseObjectStore(root, name, store_uuid=…)`` reopens it); a
produced file is an object of its job directory once ``put``; histogram, t-digest, job, table
and log entries are entries of their job, by uuid; errors the original logged and swallowed
(a histogram's registration) are raised; ``update_dataset`` merges a worker's dataset that
wrote to the same store (what it lists must be there).
"""

import dataclasses
import fnmatch
import hashlib
import io
import os
import pathlib
import uuid as uuidlib

from . import open_store
from .protobuf import cronus_pb2

_FILE_TYPES = cronus_pb2.FileObjectInfo.DESCRIPTOR.fields_by_name["type"].enum_type


# The entries of a job: the info message's name, the CronusObject field it goes in, and the
# suffix of the original's name for it.
_ENTRIES = {
    "HistsObjectInfo": ("hists", "hist.pb"),
    "TDigestObjectInfo": ("tdigests", "tdigest.pb"),
    "JobObjectInfo": ("job", "job.pb"),
    "TableObjectInfo": ("table", None),
}
_ENTRY_FIELDS = ("hists", "tdigests", "job", "table", "log")


def _job_number(job):
    if isinstance(job, bool) or not isinstance(job, int):
        raise TypeError(f"job_id is an int, not {type(job).__name__}")
    if not 0 <= job <= 2147483646:
        raise ValueError(f"job_id {job} is not a job number (0 to 2147483646)")
    return job


@dataclasses.dataclass
class MetaObject:
    """What a registration returns, as the original's."""

    name: str
    uuid: str
    parent_uuid: str
    address: str


def _bytes_of(content):
    """The bytes to store for ``content``: a pyarrow ``Buffer``, bytes-like, or a message."""
    if hasattr(content, "to_pybytes"):
        return content.to_pybytes()
    if isinstance(content, (bytes, bytearray, memoryview)):
        return bytes(content)
    if hasattr(content, "SerializeToString"):
        return content.SerializeToString()
    raise TypeError(f"cannot store a {type(content).__name__}: give bytes, a Buffer or a message")


class _ObjectStream(io.RawIOBase):
    """A native reader as a seekable binary stream (one version, read as asked)."""

    def __init__(self, reader):
        super().__init__()
        self._reader, self._pos = reader, 0

    def readable(self):
        return True

    def seekable(self):
        return True

    def readinto(self, buffer):
        data = self._reader.read(self._pos, len(buffer))
        buffer[:len(data)] = data
        self._pos += len(data)
        return len(data)

    def seek(self, offset, whence=io.SEEK_SET):
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self._pos, io.SEEK_END: self._reader.size}[whence]
        if base + offset < 0:
            raise ValueError("negative seek position")
        self._pos = base + offset
        return self._pos

    def tell(self):
        return self._pos

    def close(self):
        if not self.closed:
            self._reader.close()
        super().close()


class BaseObjectStore:
    """``BaseObjectStore(root, name, store_uuid=None, storetype='hfs', algorithm='sha1',
    alt_root=None)``: ``root`` is a cronusfs store (a directory, made if need be, or
    ``postgres://…`` with ``content=`` for a new one)."""

    def __init__(self, root, name, store_uuid=None, storetype="hfs", algorithm="sha1",
                 alt_root=None, content=None):
        hashlib.new(algorithm)  # ValueError for an unknown one, as the original
        self._algorithm = algorithm
        self._root = os.fspath(root)
        open_store(self._root, content=content, create=store_uuid is None)
        self._pending = {}  # produced files registered, not put yet: uuid -> CronusObject
        self._external = {}  # files registered by path: uuid -> CronusObject
        self._dups = {}
        if store_uuid is None:
            new = str(uuidlib.uuid4())
            self._name = f"{new}.{name}.cronus.pb"
            self._msg = cronus_pb2.CronusObjectStore(
                name=self._name, uuid=new, address=self._url(self._name))
            self._msg.info.created.GetCurrentTime()
            return
        saved = self._store.cronus_store(name)
        if saved is None:
            raise KeyError(name)
        self._msg = cronus_pb2.CronusObjectStore.FromString(saved)
        if self._msg.name != name:
            raise ValueError(f"the store saved as {name} is named {self._msg.name}")
        self._name = name
        for obj in self._msg.info.objects:
            self._external[obj.uuid] = obj
        del self._msg.info.objects[:]

    # -- properties -------------------------------------------------------------------
    @property
    def _store(self):
        # As this process has it open now: one closed by cronusfs.close_store opens again.
        return open_store(self._root)

    @property
    def store_name(self):
        return self._name

    @property
    def store_uuid(self):
        return self._msg.uuid

    @property
    def store_info(self):
        return self._msg.info

    @property
    def store_aux(self):
        return self._msg.info.aux

    def _url(self, name):
        return f"cronusfs://{name}"

    @staticmethod
    def _object_url(ds, key, job, name):
        return f"cronusfs://datasets/{ds}/partitions/{key}/jobs/{job}/{name}"

    def save_store(self):
        """Records the metastore under its name (its contents are durable already)."""
        saved = cronus_pb2.CronusObjectStore()
        saved.CopyFrom(self._msg)
        saved.info.objects.extend(self._external.values())
        self._store.save_cronus_store(saved.SerializeToString())

    # -- registration -----------------------------------------------------------------
    def register_content(self, content, info, **kwargs):
        kind = info.DESCRIPTOR.name
        if kind in ("MenuObjectInfo", "ConfigObjectInfo"):
            return self._register_message(content, info, kind)
        if kind == "DatasetObjectInfo":
            raise TypeError("use register_dataset")
        if kind == "LogObjectInfo":
            raise TypeError("use register_log")
        if kind == "FileObjectInfo":
            if isinstance(content, (str, os.PathLike)):
                return self._register_paths(os.fspath(content), info, kwargs)
            return self._register_produced(info, kwargs)
        if kind in _ENTRIES:
            return self._register_entry(content, info, kind, kwargs)
        raise ValueError(f"cannot register content with a {kind}")

    def _register_entry(self, content, info, kind, kwargs):
        field, suffix = _ENTRIES[kind]
        ds, job = self._need(kwargs, "dataset_id", "job_id")
        job = _job_number(job)
        if kind == "TableObjectInfo":
            key = self._need(kwargs, "partition_key")[0]
            if key not in self._store.partitions(ds):
                raise ValueError(f"dataset {ds} has no partition {key!r}")
            new, name = content.uuid, content.name
        else:
            new = str(uuidlib.uuid4())
            name = f"{ds}.job_{job}.{new}.{suffix}"
        if new in self._pending or new in self._external:
            raise ValueError(f"uuid {new} is already registered")
        obj = cronus_pb2.CronusObject(name=name, uuid=new, parent_uuid=ds,
                                      address=self._url(name))
        getattr(obj, field).CopyFrom(info)
        self._store.register_entry(ds, job, obj.SerializeToString(), _bytes_of(content))
        return MetaObject(name, new, ds, obj.address)

    def _register_message(self, content, info, kind):
        register = (self._store.register_menu if kind == "MenuObjectInfo"
                    else self._store.register_config)
        register(content.SerializeToString(), info.SerializeToString())
        return MetaObject(content.name, content.uuid, self.store_uuid, self._url(content.name))

    def _need(self, kwargs, *names):
        for n in names:
            if kwargs.get(n) is None:
                raise ValueError(f"{n} is required")
        return [kwargs[n] for n in names]

    def _register_produced(self, info, kwargs):
        ds, key, job = self._need(kwargs, "dataset_id", "partition_key", "job_id")
        job = _job_number(job)
        if key not in self._store.partitions(ds):
            raise ValueError(f"dataset {ds} has no partition {key!r}")
        new = str(uuidlib.uuid4())
        ext = _FILE_TYPES.values_by_number[info.type].name.lower()
        name = f"{ds}.job_{job}.part_{key}.{new}.{ext}"
        obj = cronus_pb2.CronusObject(name=name, uuid=new, parent_uuid=ds,
                                      address=self._object_url(ds, key, job, name))
        obj.file.CopyFrom(info)
        obj.file.partition = key
        self._pending[new] = (obj, ds, key, int(job))
        return MetaObject(name, new, ds, obj.address)

    def _register_paths(self, path, info, kwargs):
        ds, key = self._need(kwargs, "dataset_id", "partition_key")
        self._store.partitions(ds)  # KeyError for an unknown dataset
        pattern = kwargs.get("glob")
        if pattern is None:
            return self._register_path(pathlib.Path(path), ds, key, info)
        matches = [p for p in sorted(pathlib.Path(path).glob(pattern)) if p.is_file()]
        return [self._register_path(p, ds, key, info) for p in matches]

    def _register_path(self, path, ds, key, info):
        digest = hashlib.new(self._algorithm)
        with open(path, "rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                digest.update(block)
        hashed = digest.hexdigest()
        new = hashed
        if new in self._external or new in self._pending:
            n = self._dups.get(hashed, -1) + 1
            while f"{hashed}_{n}" in self._external:
                n += 1
            self._dups[hashed] = n
            new = f"{hashed}_{n}"
        name = f"{ds}.part_{key}.{hashed}.{path.name}"
        obj = cronus_pb2.CronusObject(name=name, uuid=new, parent_uuid=ds,
                                      address=path.resolve().as_uri())
        obj.file.CopyFrom(info)
        obj.file.partition = key
        self._external[new] = obj
        return MetaObject(name, new, ds, obj.address)

    def register_dataset(self, menu_id=None, config_id=None):
        ds = self._store.register_dataset(menu_id, config_id)
        name = f"{ds}.dataset"
        return MetaObject(name, ds, self.store_uuid, self._url(name))

    def register_log(self, dataset_id, job_id):
        """A log entry of the job; its bytes come with a later ``put``."""
        job = _job_number(job_id)
        new = str(uuidlib.uuid4())
        name = f"{dataset_id}.job_{job}.{new}.log"
        obj = cronus_pb2.CronusObject(name=name, uuid=new, parent_uuid=dataset_id,
                                      address=self._url(name))
        obj.log.SetInParent()
        self._store.register_entry(dataset_id, job, obj.SerializeToString())
        return MetaObject(name, new, dataset_id, obj.address)

    def update_dataset(self, dataset_id, buf):
        """Merges a worker's serialized ``DatasetObjectInfo``. A worker's ``BaseObjectStore``
        writes to this same store, so what it lists is here already: each listed item must
        be (``ValueError`` names one that is not); differing partitions are logged, as the
        original does."""
        import logging

        update = cronus_pb2.DatasetObjectInfo.FromString(buf)
        mine = self._store.partitions(dataset_id)
        if list(update.partitions) != mine:
            logging.getLogger("cronusfs").error(
                "dataset %s: the update's partitions %s differ from %s", dataset_id,
                list(update.partitions), mine)
        lists = (("job", update.jobs), ("hists", update.hists), ("tdigests", update.tdigests),
                 ("file", update.files), ("log", update.logs), ("table", update.tables))
        for field, items in lists:
            for obj in items:
                if obj.uuid not in self:
                    raise ValueError(f"{obj.name} ({obj.uuid}) is not in the store")
                here = self[obj.uuid]
                if here.WhichOneof("info") != field or here.parent_uuid != dataset_id:
                    raise ValueError(f"{obj.name} ({obj.uuid}) is no {field} entry of "
                                     f"dataset {dataset_id}")

    def new_partition(self, dataset_id, partition_key):
        self._store.add_partition(dataset_id, partition_key)

    def new_job(self, dataset_id):
        return self._store.new_job(dataset_id)

    def list_partitions(self, dataset_id):
        return self._store.partitions(dataset_id)

    def list_jobs(self, dataset_id):
        """The job entries (``JobObjectInfo``) of the dataset, as the original's."""
        return self._entries(dataset_id, "job")

    def list_histograms(self, dataset_id):
        return self._entries(dataset_id, "hists")

    def list_tdigests(self, dataset_id):
        return self._entries(dataset_id, "tdigests")

    def _entries(self, dataset_id, field=None):
        found = [cronus_pb2.CronusObject.FromString(raw)
                 for raw, _, _ in self._store.entries(dataset_id)]
        return [o for o in found if field is None or o.WhichOneof("info") == field]

    # -- content ----------------------------------------------------------------------
    def put(self, id_, content):
        data = _bytes_of(content)
        if id_ in self._pending:
            obj, ds, key, job = self._pending[id_]
            self._store.put_object(ds, key, job, obj.name, data, uuid=id_)
            del self._pending[id_]
            return
        kind = self._kind(id_)
        if kind == "file":
            found = self._store.object(id_)
            self._store.put_object(found["dataset"], found["partition"], found["job"],
                                   found["name"], data)
        elif kind in _ENTRY_FIELDS:
            self._store.set_entry_content(id_, data)
        elif kind in ("menu", "config"):
            stored = self._store.menu(id_) if kind == "menu" else self._store.config(id_)
            if stored != data:
                raise ValueError(f"{id_}: a registered {kind} does not change")
        else:
            raise ValueError(f"{id_} is a {kind}: nothing to put")

    def get(self, id_, msg=None):
        data = self._bytes(id_)
        if msg is None:
            return data
        msg.ParseFromString(data)
        return None

    def _bytes(self, id_):
        if id_ in self._external:
            address = self._external[id_].address
            with open(address.removeprefix("file://"), "rb") as f:
                return f.read()
        if id_ in self._pending:
            raise KeyError(f"{id_}: registered, not put yet")
        kind = self._kind(id_)
        if kind == "file":
            return self._store.object_bytes(id_)
        if kind == "menu":
            return self._store.menu(id_)
        if kind == "config":
            return self._store.config(id_)
        if kind in _ENTRY_FIELDS:
            return self._store.entry_bytes(id_)
        raise KeyError(f"{id_} is a {kind}: it has no content")

    def open(self, id_):
        """A reader of the object, streamed from the store (the version current now): Arrow
        IPC file or stream readers for those types, else a binary stream."""
        import io

        obj = self[id_]
        if obj.WhichOneof("info") != "file" or id_ in self._external or id_ in self._pending:
            return io.BytesIO(self._bytes(id_))
        found = self._store.object(id_)
        path = "/".join(["datasets", found["dataset"], "partitions", found["partition"],
                         "jobs", str(found["job"]), found["name"]])
        stream = io.BufferedReader(_ObjectStream(self._store.open_read(path)), 1 << 20)
        if obj.file.type not in (cronus_pb2.ARROW, cronus_pb2.ARROW_STREAM):
            return stream
        import pyarrow as pa

        try:
            source = pa.PythonFile(stream, mode="r")
            if obj.file.type == cronus_pb2.ARROW:
                return pa.ipc.open_file(source)
            return pa.ipc.open_stream(source)
        except BaseException:
            stream.close()
            raise

    def _kind(self, id_):
        return self[id_].WhichOneof("info")

    # -- the index --------------------------------------------------------------------
    def __getitem__(self, id_):
        if not isinstance(id_, str):
            raise TypeError("keys are str")
        if id_ in self._pending:
            return self._pending[id_][0]
        if id_ in self._external:
            return self._external[id_]
        try:
            return cronus_pb2.CronusObject.FromString(self._store.info(id_))
        except KeyError:
            raise KeyError(id_) from None

    def __contains__(self, id_):
        try:
            self[id_]
            return True
        except (KeyError, TypeError):
            return False

    def list(self, prefix="", suffix=""):
        """Every registered item whose name starts with ``prefix`` and ends with
        ``suffix``: menus, configurations, datasets, then each dataset's objects."""
        found = []

        def keep(name, uuid, parent, address):
            if name.startswith(prefix) and name.endswith(suffix):
                found.append(MetaObject(name, uuid, parent, address))

        for kind in ("menu", "config"):
            for uuid in self._store.registered(kind):
                name = self[uuid].name
                keep(name, uuid, self.store_uuid, self._url(name))
        for ds in self._store.datasets():
            keep(f"{ds}.dataset", ds, self.store_uuid, self._url(f"{ds}.dataset"))
            for obj in self._store.list(ds):
                address = self._object_url(ds, obj["partition"], obj["job"], obj["name"])
                keep(obj["cronus_name"], obj["uuid"], ds, address)
            for entry in self._entries(ds):
                keep(entry.name, entry.uuid, ds, entry.address)
        for obj, *_ in self._pending.values():
            keep(obj.name, obj.uuid, obj.parent_uuid, obj.address)
        for obj in self._external.values():
            keep(obj.name, obj.uuid, obj.parent_uuid, obj.address)
        return found

    def glob(self, pattern):
        """The registered items whose name matches ``pattern`` (fnmatch)."""
        return [m for m in self.list() if fnmatch.fnmatch(m.name, pattern)]
