"""Where the package's tests keep their store: ``$CRONUSFS_TEST_STORE`` (a ``postgres://``
store, made with ``$CRONUSFS_TEST_CONTENT`` as its S3 content), else a new directory. The
Rust test ``python_package`` starts the servers and runs these both ways."""

import os
import tempfile

import pytest

import cronusfs


@pytest.fixture(scope="session")
def location():
    shared = os.environ.get("CRONUSFS_TEST_STORE")
    if shared:
        return shared
    return os.path.join(tempfile.mkdtemp(prefix="cronusfs-pytest-"), "store")


@pytest.fixture(scope="session")
def content():
    return os.environ.get("CRONUSFS_TEST_CONTENT")


@pytest.fixture()
def store(location, content):
    # Opened for each test: one may close it (the next open makes it anew).
    return cronusfs.open_store(location, content=content, create=True)


@pytest.fixture()
def fs(store, location):
    import fsspec

    return fsspec.filesystem("cronusfs", store=location)


@pytest.fixture()
def job_dir(store):
    """A new dataset with partition ``key`` and job 0: its short path ``DS/key/0``."""
    ds = store.register_dataset()
    store.add_partition(ds, "key")
    store.new_job(ds)
    return f"{ds}/key/0"
