"""What a careless or hostile user of the package found, kept fixed: a store used in a forked
child, a reader opened while a write is unfinished, a read-only store, a new store over
someone's files, and files left open at exit."""

import errno
import os
import subprocess
import sys
import textwrap

import pytest

import cronusfs
from cronusfs.fsspec import tree_path


def test_a_forked_child_cannot_use_or_close_its_parents_store(location, store, fs, job_dir):
    writer = store.open_write(tree_path(f"{job_dir}/parent.bin"))
    writer.write(b"parent's")
    pid = os.fork()
    if pid == 0:  # the child: every use is refused; dropping its copies touches nothing
        refused = 0
        for attempt in (lambda: store.ls(""), lambda: writer.write(b"child's"),
                        lambda: store.register_dataset(), lambda: store.close()):
            try:
                attempt()
            except RuntimeError:
                refused += 1
            except BaseException:
                pass
        del writer
        os._exit(0 if refused == 3 else 1)  # close() of a copy just lets it go
    _, status = os.waitpid(pid, 0)
    assert os.WEXITSTATUS(status) == 0
    writer.write(b" bytes")
    writer.close()
    assert fs.cat_file(f"{job_dir}/parent.bin") == b"parent's bytes"
    binary = os.environ.get("CRONUSFS_BIN")
    if binary and not store.shared:
        cronusfs.close_store(location)
        checked = subprocess.run([binary, "fsck", location], capture_output=True, text=True)
        assert checked.returncode == 0, checked.stdout + checked.stderr
        assert fs.cat_file(f"{job_dir}/parent.bin") == b"parent's bytes"


def test_a_reader_opened_during_a_write_reads_the_committed_version(store, job_dir):
    path = tree_path(f"{job_dir}/torn.bin")
    first = store.open_write(path)
    first.write(b"OLD" * 10)
    first.close()
    unfinished = store.open_write(path)
    unfinished.write(b"NEWPARTIAL")
    reader = store.open_read(path)
    assert reader.size == 30
    assert reader.read(0) == b"OLD" * 10
    unfinished.close()
    assert reader.read(0) == b"OLD" * 10  # still the version it opened
    reader.close()
    assert store.open_read(path).read(0) == b"NEWPARTIAL"


def test_a_read_only_store_refuses_every_change(tmp_path):
    location = str(tmp_path / "store")
    made = cronusfs.open_store(location, create=True)
    ds = made.register_dataset()
    made.add_partition(ds, "k")
    made.new_job(ds)
    cronusfs.close_store(location)
    ro = cronusfs.open_store(location, read_only=True)
    assert ro.read_only
    changes = [
        lambda: ro.register_dataset(), lambda: ro.add_partition(ds, "p"),
        lambda: ro.new_job(ds), lambda: ro.mkdir(f"datasets/{ds}/partitions/p"),
        lambda: ro.open_write(f"datasets/{ds}/partitions/k/jobs/0/x"),
        lambda: ro.put_object(ds, "k", 0, "x", b"x"),
    ]
    for change in changes:
        with pytest.raises(OSError) as refused:
            change()
        assert refused.value.errno == errno.EROFS
    assert ro.partitions(ds) == ["k"] and ro.jobs(ds) == [0]
    with pytest.raises(ValueError):
        cronusfs.open_store(location)  # open read-only in this process already
    cronusfs.close_store(location)


def test_a_new_store_is_never_made_over_someone_s_files(tmp_path):
    (tmp_path / "notes.txt").write_text("mine")
    with pytest.raises(FileExistsError):
        cronusfs.open_store(str(tmp_path), create=True)
    assert sorted(os.listdir(tmp_path)) == ["notes.txt"]
    with pytest.raises(ValueError):
        cronusfs.open_store("", create=True)


def test_files_left_open_are_committed_at_exit(tmp_path):
    location = str(tmp_path / "store")
    script = textwrap.dedent(f"""
        import fsspec, cronusfs
        store = cronusfs.open_store({location!r}, create=True)
        ds = store.register_dataset(); store.add_partition(ds, "k"); store.new_job(ds)
        fs = fsspec.filesystem("cronusfs", store={location!r})
        small = fs.open(f"{{ds}}/k/0/small.bin", "wb")
        small.write(b"left open")
        native = store.open_write(f"datasets/{{ds}}/partitions/k/jobs/0/native.bin")
        native.write(b"left open too")
        print(ds)
    """)
    out = subprocess.run([sys.executable, "-c", script], check=True, capture_output=True,
                         text=True, cwd=str(tmp_path))
    ds = out.stdout.strip()
    assert out.stderr == ""
    store = cronusfs.open_store(location)
    assert store.open_read(f"datasets/{ds}/partitions/k/jobs/0/small.bin").read(0) == b"left open"
    assert store.open_read(f"datasets/{ds}/partitions/k/jobs/0/native.bin").read(0) == \
        b"left open too"
    cronusfs.close_store(location)


def test_a_job_id_is_a_job_number(location, content):
    from cronusfs import BaseObjectStore
    from cronusfs.protobuf.cronus_pb2 import FileObjectInfo

    st = BaseObjectStore(location, "jobs", content=content)
    ds = st.register_dataset().uuid
    st.new_partition(ds, "k")
    for bad, error in ((1.5, TypeError), (True, TypeError), (-1, ValueError),
                       (2**40, ValueError)):
        with pytest.raises(error):
            st.register_content(b"x", FileObjectInfo(), dataset_id=ds, partition_key="k",
                                job_id=bad)


def test_rm_recursive_removes_a_whole_dataset(store, fs):
    ds = store.register_dataset()
    store.add_partition(ds, "k")
    store.new_job(ds)
    fs.pipe_file(f"{ds}/k/0/a.bin", b"a")
    fs.makedirs(f"datasets/{ds}/partitions/k/jobs/0/folder")
    fs.pipe_file(f"{ds}/k/0/folder/b.bin", b"b")
    fs.rm(ds, recursive=True)
    assert ds not in store.datasets()
    other = store.register_dataset()
    store.add_partition(other, "p")
    fs.rmdir(f"{other}/p")  # the short path of a partition is the partition
    assert store.partitions(other) == []
    fs.rmdir(other)
    assert other not in store.datasets()


def test_cp_file_copies_one_version(fs, job_dir):
    fs.pipe_file(f"{job_dir}/source.bin", b"s" * 100_000)
    fs.cp_file(f"{job_dir}/source.bin", f"{job_dir}/copy.bin")
    assert fs.cat_file(f"{job_dir}/copy.bin") == b"s" * 100_000


def test_fsspec_opens_a_store_read_only(tmp_path):
    import fsspec

    location = str(tmp_path / "store")
    made = cronusfs.open_store(location, create=True)
    ds = made.register_dataset()
    made.add_partition(ds, "k")
    made.new_job(ds)
    cronusfs.close_store(location)
    ro = fsspec.filesystem("cronusfs", store=location, read_only=True, skip_instance_cache=True)
    assert ro.ls(f"{ds}/k", detail=False) == [f"{ds}/k/0"]
    with pytest.raises(OSError) as refused:
        ro.pipe_file(f"{ds}/k/0/x.bin", b"x")
    assert refused.value.errno == errno.EROFS
    cronusfs.close_store(location)


def test_update_dataset_checks_what_each_list_holds(location, content):
    from cronusfs import BaseObjectStore
    from cronusfs.protobuf.cronus_pb2 import DatasetObjectInfo, HistsObjectInfo

    st = BaseObjectStore(location, "updates", content=content)
    ds, elsewhere = st.register_dataset().uuid, st.register_dataset().uuid
    for d in (ds, elsewhere):
        st.new_partition(d, "k")
        st.new_job(d)
    mine = st.register_content(b"h", HistsObjectInfo(), dataset_id=ds, job_id=0)
    theirs = st.register_content(b"h", HistsObjectInfo(), dataset_id=elsewhere, job_id=0)
    good = DatasetObjectInfo(partitions=["k"])
    good.hists.add().CopyFrom(st[mine.uuid])
    st.update_dataset(ds, good.SerializeToString())
    for wrong in ("another dataset's", "listed as a log"):
        bad = DatasetObjectInfo(partitions=["k"])
        if wrong == "another dataset's":
            bad.hists.add().CopyFrom(st[theirs.uuid])
        else:
            bad.logs.add().CopyFrom(st[mine.uuid])
        with pytest.raises(ValueError):
            st.update_dataset(ds, bad.SerializeToString())
