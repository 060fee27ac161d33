"""cronusfs without a mount: a store opened in this process, the Cronus ``BaseObjectStore``
API over it, an fsspec filesystem (``cronusfs://``) and row lifts as Arrow tables.

    import cronusfs
    store = cronusfs.open_store("/var/lib/cronus")      # or "postgres://…", content="s3://…"
    cronusfs.lift(store, "quality", ge=8)               # a pyarrow.Table of rows

A store is opened once per process (``open_store`` returns the same one for the same
location); a store directory a mount serves is that mount's: share a store between
processes and hosts with a ``postgres://`` store.
"""

import atexit
import os
import sys
import threading
import weakref

from . import _native
from ._native import Reader, Store, Writer

__all__ = ["Store", "Reader", "Writer", "open_store", "lift", "BaseObjectStore", "MetaObject"]
__version__ = _native.VERSION

_stores = {}
_stores_lock = threading.Lock()


def _key(location):
    location = os.fspath(location)
    if "://" in location:
        return location
    return os.path.realpath(location)


def _slot(key):
    # A forked child opens its own: the parent's threads and handles are not in it.
    return (os.getpid(), key)


def open_store(location=None, content=None, create=False, read_only=False):
    """Returns the store at ``location`` (a directory, or ``postgres://…``; by default
    ``$CRONUSFS_STORE``), opened once per process. ``create`` makes one where none is
    (``content`` names the S3 bucket of a new ``postgres://`` store, as ``cronusfs init
    --content`` does)."""
    if location is None:
        location = os.environ.get("CRONUSFS_STORE")
        if not location:
            raise ValueError("no store given: pass one or set CRONUSFS_STORE")
    if not os.fspath(location):
        raise ValueError("no store given (an empty location)")
    key = _key(location)
    with _stores_lock:
        store = _stores.get(_slot(key))
        if store is not None:
            try:
                was_read_only = store.read_only  # raises once closed
            except ValueError:
                was_read_only = None
            if was_read_only is not None:
                if read_only and not was_read_only or was_read_only and not read_only:
                    mode = "read-only" if was_read_only else "for writing"
                    raise ValueError(f"{location} is open {mode} in this process: "
                                     "close_store it first")
                return store
        store = Store(key, content=content, create=create, read_only=read_only)
        _stores[_slot(key)] = store
        return store


def close_store(location):
    """Closes the store at ``location`` if this process opened it (its session ends): the
    ``cronusfs://`` files still open for writing in it are closed first (committed), and the
    store's own open files after them."""
    key = _key(location)
    _close_writing(lambda f: _key(f._location or os.environ.get("CRONUSFS_STORE", "")) == key)
    with _stores_lock:
        store = _stores.pop(_slot(key), None)
    if store is not None:
        store.close()


def _close_writing(which):
    """Closes (commits) this process's ``cronusfs://`` files open for writing that ``which``
    picks."""
    for f in list(_writing):
        if getattr(f, "_pid", None) != os.getpid() or not which(f):
            continue  # a forked child's copy of its parent's file, or another store's
        try:
            f.close()
        except Exception as e:  # one file's failure must not keep the others open
            print(f"cronusfs: {f.path}: not committed: {e}", file=sys.stderr)


# Files of cronusfs:// open for writing: closed (committed) at exit before their stores.
_writing = weakref.WeakSet()


@atexit.register
def _close_all():
    """Commits the files still open for writing and ends this process's sessions when it
    exits (rather than leaving them to expire), as a process's files are closed at its exit."""
    _close_writing(lambda f: True)
    with _stores_lock:
        mine = [k for k in _stores if k[0] == os.getpid()]
        stores = [_stores.pop(k) for k in mine]
    for store in stores:
        store.close()


def lift(store, prop, **query):
    """The rows of ``prop`` as a ``pyarrow.Table`` (columns ``iden``, ``prop``, ``valu_int``,
    ``valu_str``, ``time``): ``eq=``, ``ge=``, ``le=``, ``gt=``, ``lt=``, ``range_=(lo, hi)``,
    ``min_time=``, ``max_time=``, ``limit=``, and ``join=True`` for whole nodes; what
    ``cronusfs rows lift`` answers."""
    import pyarrow.ipc

    if not isinstance(store, Store):
        store = open_store(store)
    return pyarrow.ipc.open_stream(store.lift(prop, **query)).read_all()


def __getattr__(name):
    # The Cronus API needs protobuf; loaded when first asked for.
    if name in ("BaseObjectStore", "MetaObject"):
        from . import cronus

        return getattr(cronus, name)
    raise AttributeError(name)
