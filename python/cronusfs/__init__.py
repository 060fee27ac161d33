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
import threading

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
    key = _key(location)
    with _stores_lock:
        store = _stores.get(_slot(key))
        if store is not None:
            try:
                store.location  # raises once closed
                return store
            except ValueError:
                pass
        store = Store(key, content=content, create=create, read_only=read_only)
        _stores[_slot(key)] = store
        return store


def close_store(location):
    """Closes the store at ``location`` if this process opened it (its session ends)."""
    with _stores_lock:
        store = _stores.pop(_slot(_key(location)), None)
    if store is not None:
        store.close()


@atexit.register
def _close_all():
    """Ends this process's sessions when it exits, rather than leaving them to expire."""
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
