"""A Dask cluster reads an XNAT project through the ``xnat`` fsspec filesystem (issue 16).

A real ``distributed.LocalCluster`` of 2 worker processes: the filesystem is pickled to them with
its options, each worker connects on first use, and together they compute the md5 of every file of
a 240-file project; the md5s equal XNAT's digests (and the bytes the test stored).
"""

from __future__ import annotations

import hashlib
import logging
import os
from collections.abc import Iterator

import dask.bag as db
import fsspec
import pytest
from distributed import Client, LocalCluster

from xnatfs.emulator.server import EmulatorServer

pytestmark = pytest.mark.integration

SUBJECTS, SCANS, FILES_PER_SCAN = 4, 3, 20  # 240 files


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[EmulatorServer, dict[str, bytes]]]:
    """Project DASK: 4 subjects, one session each, 3 scans of 20 small files; and the files' bytes by path."""
    server = EmulatorServer(tmp_path_factory.mktemp("xnat-dask"), users={"admin": "admin"}).start()
    store = server.store
    contents: dict[str, bytes] = {}
    with store.transaction():
        store.create_project("DASK")
        for s in range(SUBJECTS):
            subject = store.create_subject("DASK", f"S{s}")
            session = store.create_experiment("DASK", subject.id, f"S{s}_MR", "xnat:mrSessionData", {"modality": "MR"})
            for n in range(1, SCANS + 1):
                scan = store.create_scan(session.id, str(n), "xnat:mrScanData", {"type": "T1"})
                resource = store.create_resource(scan, "DICOM", format="DICOM")
                for f in range(FILES_PER_SCAN):
                    data = os.urandom(200 + 37 * f)
                    store.add_file(resource.id, f"{f:03d}.dcm", data)
                    contents[f"projects/DASK/subjects/S{s}/experiments/S{s}_MR/scans/{n}/resources/DICOM/{f:03d}.dcm"] = data
        notes = store.create_resource(store.get_project("DASK"), "NOTES")
        for i in range(3):
            store.add_file(notes.id, f"site{i}.txt", "".join(f"site{i} row{r}\n" for r in range(5)).encode())
    yield server, contents
    server.stop()


@pytest.fixture(scope="module")
def client() -> Iterator[Client]:
    with LocalCluster(n_workers=2, processes=True, threads_per_worker=1, dashboard_address=":0",
                      silence_logs=logging.ERROR) as cluster, Client(cluster) as dask_client:
        yield dask_client


def md5_of(path: str, fs: fsspec.AbstractFileSystem) -> tuple[str, str, int]:
    """(path, md5, the worker's pid): read through ``fs.open`` on a worker."""
    digest = hashlib.md5(usedforsecurity=False)
    with fs.open(path, "rb") as handle:
        while chunk := handle.read(4096):
            digest.update(chunk)
    return path, digest.hexdigest(), os.getpid()


def set_password_env(password: str | None) -> None:
    """On a worker: set (or remove) ``XNATFS_PASSWORD`` in its environment."""
    if password is None:
        os.environ.pop("XNATFS_PASSWORD", None)
    else:
        os.environ["XNATFS_PASSWORD"] = password


def test_two_workers_compute_every_files_md5_equal_to_xnats_digests(
        project: tuple[EmulatorServer, dict[str, bytes]], client: Client) -> None:
    server, contents = project
    fs = fsspec.filesystem("xnat", url=server.url, user="admin", password="admin", skip_instance_cache=True)
    listed = fs.find("projects/DASK/subjects", detail=True)
    digests = {path: info["md5"] for path, info in listed.items() if "/resources/" in path}
    assert set(digests) == set(contents) and len(digests) == 240
    assert fs._core is not None  # the client connected; the workers get the options, not the connection

    results = db.from_sequence(sorted(digests), npartitions=16).map(md5_of, fs=fs).compute(scheduler=client)

    computed = {path: md5 for path, md5, _pid in results}
    assert computed == digests
    assert computed == {path: hashlib.md5(data).hexdigest() for path, data in contents.items()}
    workers = set(client.run(os.getpid).values())
    used = {pid for _path, _md5, pid in results}
    assert used == workers and len(used) == 2 and os.getpid() not in used


def test_workers_read_ranges_with_the_password_from_their_environment(
        project: tuple[EmulatorServer, dict[str, bytes]], client: Client) -> None:
    server, contents = project
    client.run(set_password_env, "admin")
    try:
        fs = fsspec.filesystem("xnat", url=server.url, user="admin", skip_instance_cache=True)
        assert "password" not in fs.storage_options  # nothing secret in what is pickled to the workers
        paths = sorted(contents)[:40]
        ranges = db.from_sequence(paths, npartitions=4).map(lambda p, fs: fs.cat_file(p, start=5, end=50), fs=fs)
        assert ranges.compute(scheduler=client) == [contents[p][5:50] for p in paths]
    finally:
        client.run(set_password_env, None)


def test_dask_reads_text_files_by_an_xnat_url_glob(project: tuple[EmulatorServer, dict[str, bytes]],
                                                   client: Client) -> None:
    server, _contents = project
    lines = db.read_text("xnat://projects/DASK/resources/NOTES/site*.txt",
                         storage_options={"url": server.url, "user": "admin", "password": "admin"})
    assert lines.npartitions == 3
    got = lines.map(str.strip).compute(scheduler=client)
    assert sorted(got) == sorted(f"site{i} row{r}" for i in range(3) for r in range(5))
