"""A process using the package and a mount of the same shared store see each other's commits
(run by the Rust test ``python_package`` with ``$CRONUSFS_TEST_MOUNT`` set to that mount)."""

import os
import time

import pytest

MOUNT = os.environ.get("CRONUSFS_TEST_MOUNT")
pytestmark = pytest.mark.skipif(not MOUNT, reason="no mount of the store ($CRONUSFS_TEST_MOUNT)")


def eventually(check, seconds=10):
    """Waits until ``check()`` holds (other processes' commits arrive by announcement)."""
    deadline = time.monotonic() + seconds
    while True:
        try:
            if check():
                return
        except OSError:
            pass
        if time.monotonic() > deadline:
            raise AssertionError(f"not seen within {seconds} s")
        time.sleep(0.05)


def test_the_package_and_a_mount_see_each_other(store, fs, job_dir):
    assert store.shared
    ds, key, job = job_dir.split("/")
    mounted = os.path.join(MOUNT, "datasets", ds, "partitions", key, "jobs", job)
    fs.pipe_file(f"{job_dir}/from-python.bin", b"written by the package")

    def mount_reads():
        with open(os.path.join(mounted, "from-python.bin"), "rb") as f:
            return f.read() == b"written by the package"

    eventually(mount_reads)
    with open(os.path.join(mounted, "from-mount.bin"), "wb") as f:
        f.write(b"written through the mount")
    eventually(lambda: fs.cat_file(f"{job_dir}/from-mount.bin") == b"written through the mount")
    with open(os.path.join(mounted, "from-mount.bin"), "wb") as f:
        f.write(b"a second version")
    eventually(lambda: fs.cat_file(f"{job_dir}/from-mount.bin") == b"a second version")
    os.setxattr(os.path.join(mounted, "from-mount.bin"), "user.seen", b"yes")
    eventually(lambda: fs.info(f"{job_dir}/from-mount.bin").get("user.seen") == "yes")


def test_the_package_has_a_session_in_the_store(store, location):
    import subprocess

    binary = os.environ["CRONUSFS_BIN"]
    out = subprocess.run([binary, "status", "-s", location], check=True, capture_output=True,
                         text=True).stdout
    assert f"(python pid {os.getpid()})" in out, out
