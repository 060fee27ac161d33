"""``cronusfs://``, an fsspec filesystem over a cronusfs store opened in this process: paths
are the mount's (``datasets/<uuid>/partitions/<key>/jobs/<n>/<name>``, ``query/…``,
``at/<time>/…``, ``objects/<content-id>``, …), or the short form
``<dataset-uuid>/<key>/<job>/<name>``; every answer is the one a mount gives at that path.

    pl.read_parquet("cronusfs://DS/KEY/0/part.parquet", storage_options={"store": "/srv/st"})

The store comes from ``storage_options={"store": …}`` (and ``"content"`` for a new shared
store) or ``$CRONUSFS_STORE``. A file opened for reading reads the version committed when it
was opened, fetching only the ranges asked for; a file written is committed, durable, when it
is closed. ``info()`` carries the node's extended attributes (``user.cronus.*`` and user rows)
as fields of those names.
"""

import os
import uuid as uuidlib

from fsspec.spec import AbstractBufferedFile, AbstractFileSystem

from . import _writing, open_store


def _is_uuid(text):
    try:
        uuidlib.UUID(text)
        return len(text) == 36
    except ValueError:
        return False


def tree_path(path):
    """The mount path a short path names: ``DS`` is the dataset's partitions, ``DS/KEY`` a
    partition's jobs, ``DS/KEY/JOB/…`` the job's members. Other paths are the mount's."""
    parts = [p for p in path.split("/") if p]
    if not parts or not _is_uuid(parts[0]):
        return "/".join(parts)
    long = ["datasets", parts[0], "partitions"]
    if len(parts) > 1:
        long += [parts[1], "jobs"]
    long += parts[2:]
    return "/".join(long)


def node_path(path):
    """The mount path of the node a path names: a short ``DS`` is the dataset itself,
    ``DS/KEY`` the partition (what ``rmdir`` removes), not the directories they list."""
    parts = [p for p in path.split("/") if p]
    if len(parts) in (1, 2) and _is_uuid(parts[0]):
        return "/".join(["datasets", parts[0]] + (["partitions", parts[1]] if len(parts) == 2
                                                 else []))
    return tree_path(path)


def _fixed(path):
    """Whether mount path ``path`` is a directory no one makes or removes: a dataset's
    ``partitions``, a partition's ``jobs``, the top-level trees."""
    parts = path.split("/")
    return (len(parts) == 1 or (len(parts) == 3 and parts[0] == "datasets"
                                and parts[2] == "partitions")
            or (len(parts) == 5 and parts[0] == "datasets" and parts[4] == "jobs"))


def _text(value):
    try:
        return value.decode()
    except UnicodeDecodeError:
        return value


class CronusFileSystem(AbstractFileSystem):
    """The fsspec filesystem of a cronusfs store (protocol ``cronusfs``)."""

    protocol = "cronusfs"
    root_marker = ""

    def __init__(self, store=None, content=None, create=False, read_only=False, **kwargs):
        super().__init__(**kwargs)
        self._location, self._read_only = store, read_only
        open_store(store, content=content, create=create, read_only=read_only)

    @property
    def store(self):
        """The store, as this process has it open now (fsspec keeps instances: one made
        before ``cronusfs.close_store`` opens the store again when next used)."""
        return open_store(self._location, read_only=self._read_only)

    @classmethod
    def _strip_protocol(cls, path):
        if isinstance(path, list):
            return [cls._strip_protocol(p) for p in path]
        path = str(path)
        if path.startswith("cronusfs://"):
            path = path[len("cronusfs://"):]
        return path.strip("/")

    def _entry(self, path, attr, with_xattrs):
        entry = {
            "name": path,
            "size": attr["size"],
            "type": attr["type"],
            "mode": attr["mode"],
            "uid": attr["uid"],
            "gid": attr["gid"],
            "mtime": attr["mtime"] / 1000,
            "created": attr["created"] / 1000,
        }
        if with_xattrs:
            for name, value in self.store.xattrs(tree_path(path)).items():
                entry[name] = _text(value)
        return entry

    def ls(self, path, detail=True, **kwargs):
        path = self._strip_protocol(path)
        entries = self.store.ls(tree_path(path))
        found = []
        for attr in sorted(entries, key=lambda a: a["name"]):
            child = f"{path}/{attr['name']}" if path else attr["name"]
            found.append(self._entry(child, attr, False))
        return found if detail else [e["name"] for e in found]

    def info(self, path, **kwargs):
        path = self._strip_protocol(path)
        return self._entry(path, self.store.stat(tree_path(path)), True)

    def _open(self, path, mode="rb", block_size=None, autocommit=True, cache_options=None,
              **kwargs):
        path = self._strip_protocol(path)
        if "r" in mode:
            return CronusFile(self, path, mode, block_size=block_size or "default",
                              cache_options=cache_options, **kwargs)
        if "w" in mode and autocommit:
            return CronusFile(self, path, mode, block_size=block_size or "default", **kwargs)
        raise NotImplementedError(f"mode {mode!r}: cronusfs files are read, or written whole")

    def cat_file(self, path, start=None, end=None, **kwargs):
        path = self._strip_protocol(path)
        reader = self.store.open_read(tree_path(path))
        try:
            size = reader.size
            start = 0 if start is None else (start if start >= 0 else max(size + start, 0))
            end = size if end is None else (end if end >= 0 else max(size + end, 0))
            return reader.read(start, max(end - start, 0))
        finally:
            reader.close()

    def pipe_file(self, path, value, **kwargs):
        writer = self.store.open_write(tree_path(self._strip_protocol(path)))
        writer.write(bytes(value))
        writer.close()

    def mkdir(self, path, create_parents=True, **kwargs):
        path = self._strip_protocol(path)
        if create_parents:
            return self.makedirs(path, exist_ok=True)
        self.store.mkdir(tree_path(path))

    def makedirs(self, path, exist_ok=False):
        parts = tree_path(self._strip_protocol(path)).split("/")
        for n in range(1, len(parts) + 1):
            here = "/".join(parts[:n])
            try:
                self.store.stat(here)
                if n == len(parts) and not exist_ok:
                    raise FileExistsError(path)
            except FileNotFoundError:
                self.store.mkdir(here)

    def rm_file(self, path):
        self.store.remove(tree_path(self._strip_protocol(path)))

    def _rm(self, path):
        self.rm_file(path)

    def rmdir(self, path):
        self.store.rmdir(node_path(self._strip_protocol(path)))

    def rm(self, path, recursive=False, maxdepth=None):
        """Removes files, and with ``recursive`` directories: deepest first, every mount
        path once (a short path and the tree it lists name the same nodes), the fixed
        ``partitions`` and ``jobs`` directories with the node above them."""
        paths = self.expand_path(path, recursive=recursive, maxdepth=maxdepth)
        nodes = {}
        for p in paths:
            node = node_path(self._strip_protocol(p))
            if not _fixed(node):
                nodes[node] = p
        for node in sorted(nodes, key=lambda n: n.count("/"), reverse=True):
            if self.store.stat(node)["type"] == "directory":
                self.store.rmdir(node)
            else:
                self.store.remove(node)

    def cp_file(self, path1, path2, **kwargs):
        """Copies file ``path1`` to ``path2`` (the version read when the copy began)."""
        reader = self.store.open_read(tree_path(self._strip_protocol(path1)))
        try:
            writer = self.store.open_write(tree_path(self._strip_protocol(path2)))
            try:
                at = 0
                while at < reader.size:
                    block = reader.read(at, 8 << 20)
                    if not block:
                        break
                    writer.write(block)
                    at += len(block)
            finally:
                writer.close()
        finally:
            reader.close()

    def mv(self, path1, path2, recursive=False, maxdepth=None, **kwargs):
        source = tree_path(self._strip_protocol(path1))
        self.store.rename(source, tree_path(self._strip_protocol(path2)))

    def setxattr(self, path, name, value):
        """Sets extended attribute ``name`` (``user.<prop>``: a user row) of ``path``."""
        value = value.encode() if isinstance(value, str) else bytes(value)
        self.store.setxattr(tree_path(self._strip_protocol(path)), name, value)

    def removexattr(self, path, name):
        """Removes extended attribute ``name`` of ``path``."""
        self.store.removexattr(tree_path(self._strip_protocol(path)), name)

    def modified(self, path):
        import datetime

        mtime = self.info(path)["mtime"]
        return datetime.datetime.fromtimestamp(mtime, tz=datetime.timezone.utc)

    def created(self, path):
        import datetime

        created = self.info(path)["created"]
        return datetime.datetime.fromtimestamp(created, tz=datetime.timezone.utc)


class CronusFile(AbstractBufferedFile):
    """A file of a cronusfs store: read ranges of the version committed at its open, or
    written from its start and committed at its close."""

    def __init__(self, fs, path, mode="rb", **kwargs):
        self._reader = None
        self._pid = os.getpid()
        if "r" in mode:
            self._reader = fs.store.open_read(tree_path(path))
            kwargs["size"] = self._reader.size
        super().__init__(fs, path, mode, **kwargs)
        if "w" in mode:
            # Opened now, not at the first flush: a file flushed later (at its close, or by
            # the garbage collector) writes to this store, never to one opened anew.
            self._writer = fs.store.open_write(tree_path(path))
            self._location = fs._location
            _writing.add(self)

    def _fetch_range(self, start, end):
        return self._reader.read(start, max(end - start, 0))

    def _initiate_upload(self):
        pass  # the native writer was opened with the file

    def _upload_chunk(self, final=False):
        self._writer.write(self.buffer.getvalue())
        if final:
            self._writer.close()
        return True

    def close(self):
        if os.getpid() != self._pid:
            # A copy in a process made by fork(): the file is the parent's to write.
            self.closed = True
            return
        try:
            super().close()
        finally:
            _writing.discard(self)
            if self._reader is not None:
                self._reader.close()
                self._reader = None
