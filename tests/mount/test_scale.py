"""Small versions of the real-size paths (issue 13; the real sizes are in scripts/bench_scale.py):
a series of hundreds of files listed with ``ls -l``, and a project of many subjects walked with
``find``, counting what each costs (FUSE calls into Python, requests to the server)."""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from mounting import MountFactory, RequestCounter

from xnatfs.emulator.server import EmulatorServer
from xnatfs.vfs.prefetch import PrefetchSettings

pytestmark = pytest.mark.mount

FILES = 400
#: more than TreeSettings.prefetch_limit (256): a project too large to warm whole
SUBJECTS = 300


@pytest.fixture(scope="module")
def big(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmulatorServer]:
    """Project BIG: one session with a 400-file DICOM series; project MANY: 300 subjects, one session each,
    every tenth with a resource of its own."""
    server = EmulatorServer(tmp_path_factory.mktemp("xnat-scale")).start()
    store = server.store
    with store.transaction():
        project = store.create_project("BIG")
        subject = store.create_subject(project.id, "S1")
        session = store.create_experiment(project.id, subject.id, "S1_MR1", "xnat:mrSessionData", {"modality": "MR"})
        scan = store.create_scan(session.id, "1", "xnat:mrScanData", {"type": "T1"})
        resource = store.create_resource(scan, "DICOM", format="DICOM")
        for i in range(FILES):
            store.add_file(resource.id, f"1.MR.{i:05d}.dcm", b"x" * (100 + i))
        many = store.create_project("MANY")
        for s in range(SUBJECTS):
            subject = store.create_subject(many.id, f"M{s:03d}")
            store.create_experiment(many.id, subject.id, f"M{s:03d}_MR1", "xnat:mrSessionData", {"modality": "MR"})
            if s % 10 == 0:
                store.create_resource(subject, "NOTES")
    yield server
    server.stop()


SERIES = "projects/BIG/subjects/S1/experiments/S1_MR1/scans/1/resources/DICOM"


def fresh_series(big: EmulatorServer, mount_factory: MountFactory) -> tuple[Path, Path, list[str], RequestCounter]:
    """A fresh mount of ``big``: its root, the 400-file series, the series' names as listed, and the
    request counter reset once the listing's requests (and their prefetch) are over."""
    requests_counter = RequestCounter(big)
    mounted = mount_factory(big)
    series = mounted.path / SERIES
    names = sorted(os.listdir(series))
    requests_counter.settle()
    requests_counter.reset()
    return mounted.path, series, names, requests_counter


def stats(mountpoint: Path) -> dict:
    return json.loads(os.getxattr(mountpoint, "user.xnatfs.stats"))


def test_ls_l_of_a_big_series_costs_no_lookup_per_file(big: EmulatorServer, mount_factory: MountFactory) -> None:
    mounted = mount_factory(big)
    series = mounted.path / SERIES
    before = stats(mounted.path)["calls"]
    for _ in range(3):  # cold, then warm twice
        listing = subprocess.run(["ls", "-l", "--time-style=+%s", str(series)], capture_output=True, text=True,
                                 timeout=60, check=True).stdout.splitlines()[1:]
        sizes = {line.split()[-1]: int(line.split()[4]) for line in listing}
        assert sizes == {f"1.MR.{i:05d}.dcm": 100 + i for i in range(FILES)}
    calls = stats(mounted.path)["calls"]
    lookups = calls.get("getattr", 0) - before.get("getattr", 0)
    # the names come with their attributes (READDIRPLUS): the kernel asks nothing per file
    assert lookups < 20, calls
    assert calls.get("readdir", 0) - before.get("readdir", 0) <= 3 * 2


def test_a_cold_ls_l_of_a_series_costs_the_three_requests_its_path_needs(
        big: EmulatorServer, mount_factory: MountFactory) -> None:
    """Issue 13: the subject listing, the subject's document (its sessions, scans and resources) and the
    session's file listing; listing ``projects/`` on the way warms no other project."""
    requests_counter = RequestCounter(big)
    mounted = mount_factory(big)
    requests_counter.settle()
    requests_counter.reset()
    series = mounted.path / SERIES
    subprocess.run(["ls", str(mounted.path / "projects")], capture_output=True, check=True, timeout=60)
    listing = subprocess.run(["ls", "-l", str(series)], capture_output=True, text=True, timeout=60,
                             check=True).stdout.splitlines()[1:]
    assert len(listing) == FILES
    assert requests_counter.settle() == 3, requests_counter.read()["by_route"]


def test_documents_are_not_handed_to_the_kernel_before_they_are_sized(big: EmulatorServer,
                                                                      mount_factory: MountFactory) -> None:
    """A document's size is known once it is fetched: listing its folder (READDIRPLUS) must not give
    the kernel a size that a read then contradicts (a ``cat`` of 0 bytes)."""
    mounted = mount_factory(big)
    folder = mounted.path / "projects/BIG/subjects/S1/experiments/S1_MR1"
    subprocess.run(["ls", "-l", str(folder)], capture_output=True, check=True, timeout=60)
    for name in ("xnat.json", "xnat.xml"):
        data = subprocess.run(["cat", str(folder / name)], capture_output=True, check=True, timeout=60).stdout
        assert len(data) > 100 and os.stat(folder / name).st_size == len(data)
        assert b"S1_MR1" in data


def test_reading_a_series_file_after_file_fetches_ahead_and_a_lone_read_does_not(
        big: EmulatorServer, mount_factory: MountFactory) -> None:
    root, series, names, requests_counter = fresh_series(big, mount_factory)
    assert (series / names[200]).read_bytes() == b"x" * 300  # a file read alone: one request, nothing ahead
    assert requests_counter.settle() == 1
    assert stats(root)["fetched_ahead"] == 0
    for i, name in enumerate(names[:120]):  # as dcm2niix or cat * reads a series
        assert (series / name).read_bytes() == b"x" * (100 + i)
    served = stats(root)
    assert served["served_ahead"] >= 100, served
    assert served["fetched_ahead"] <= 120 + PrefetchSettings().ahead  # never the whole folder
    assert served["zips_fetched"] <= 1


def test_reading_a_whole_series_in_order_takes_it_as_one_zip(big: EmulatorServer, mount_factory: MountFactory) -> None:
    """Issue 13: a program reading all 400 files of a series in order gets most of them from one zip of the
    resource, not from a request each; every byte is the file's own."""
    root, series, names, requests_counter = fresh_series(big, mount_factory)
    for i, name in enumerate(names):  # as dcm2niix or cat * reads a series
        assert (series / name).read_bytes() == b"x" * (100 + i), name
    served = stats(root)
    requests = requests_counter.settle()
    assert served["zips_fetched"] == 1 and served["served_from_zip"] >= 1, served
    assert served["served_ahead"] >= FILES - 10, served
    assert requests < FILES, (requests, served)  # one zip, not a request per file
    by_route = requests_counter.read()["by_route"]
    assert sum(n for route, n in by_route.items() if route.endswith("/files") or "zip" in route) >= 1, by_route


def test_opening_zipped_files_again_costs_no_read_and_closing_them_no_flush(
        big: EmulatorServer, mount_factory: MountFactory) -> None:
    """dcm2niix opens each file of a series four times: an open served from the resource's zip reads its
    member only once the file is read (the kernel's page cache answers the rest), and closing a file
    opened for reading costs no FLUSH call into Python (``noflush``)."""
    root, series, names, _ = fresh_series(big, mount_factory)
    for i, name in enumerate(names):
        assert (series / name).read_bytes() == b"x" * (100 + i), name
    before = stats(root)
    assert before["zips_fetched"] == 1, before
    for name in names[-50:]:
        os.close(os.open(series / name, os.O_RDONLY))  # a header probe that reads nothing
    after = stats(root)
    assert after["calls"]["open"] - before["calls"]["open"] == 50, after["calls"]
    assert after["served_from_zip"] == before["served_from_zip"], (before, after)
    assert after["calls"].get("flush", 0) == 0, after["calls"]
    with open(series / names[-1], "rb") as again:  # and a read after all is the member's bytes
        assert again.read() == b"x" * (100 + FILES - 1)


def test_opens_that_read_nothing_cost_no_request(big: EmulatorServer, mount_factory: MountFactory) -> None:
    """A server file is opened at its first read, not at open (dcm2niix opens each file four times and
    reads it through one of them): opens and closes of files never read ask the server for nothing and
    start no fetch ahead; the first read then serves the file."""
    root, series, names, requests_counter = fresh_series(big, mount_factory)
    for name in names[:40]:
        os.close(os.open(series / name, os.O_RDONLY))
    assert requests_counter.settle() == 0, requests_counter.read()["by_route"]
    assert stats(root)["fetched_ahead"] == 0
    assert (series / names[3]).read_bytes() == b"x" * 103


def test_fuse_threads_keep_their_python_thread_state(big: EmulatorServer, mount_factory: MountFactory) -> None:
    """Each libfuse worker thread keeps one Python thread state for the mount's life
    (xnatfs.threadstates), instead of one made and destroyed per call: hundreds of calls from parallel
    readers, at most as many states as libfuse has worker threads (10) plus the thread that ran init."""
    root, series, names, _ = fresh_series(big, mount_factory)
    with ThreadPoolExecutor(8) as pool:
        sizes = list(pool.map(lambda name: len((series / name).read_bytes()), names))
    assert sizes == [100 + i for i in range(FILES)]
    for name in names:
        os.close(os.open(series / name, os.O_RDONLY))
    after = stats(root)
    assert sum(after["calls"].values()) >= 2 * FILES, after["calls"]
    assert 1 <= after["kept_thread_states"] <= 11, after


def find_in_many(big: EmulatorServer, mount_factory: MountFactory, depth: int) -> tuple[list[str], RequestCounter]:
    """``find projects/MANY/subjects -maxdepth <depth> -type d`` through a fresh mount (its first line is
    the folder itself), and the request counter, reset before it."""
    requests_counter = RequestCounter(big)
    mounted = mount_factory(big)
    requests_counter.settle()
    requests_counter.reset()
    found = subprocess.run(["find", str(mounted.path / "projects/MANY/subjects"), "-maxdepth", str(depth), "-type",
                            "d"], capture_output=True, text=True, timeout=120, check=True).stdout.splitlines()
    return found, requests_counter


def test_find_over_a_large_project_costs_a_few_requests_not_one_per_subject(
        big: EmulatorServer, mount_factory: MountFactory) -> None:
    """Issue 13: ``find -maxdepth 3 -type d`` over 300 subjects reads the project's subject listing (joined
    with the subjects' resources) and its one session listing, not a document per subject."""
    found, requests_counter = find_in_many(big, mount_factory, 3)
    relative = {str(Path(line).relative_to(found[0])) for line in found}
    expected = {"."} | {f"M{s:03d}{tail}" for s in range(SUBJECTS)
                        for tail in ("", "/experiments", "/resources", f"/experiments/M{s:03d}_MR1")}
    expected |= {f"M{s:03d}/resources/NOTES" for s in range(0, SUBJECTS, 10)}
    assert relative == expected
    requests = requests_counter.settle()
    assert requests <= 10, requests_counter.read()["by_route"]


def test_a_deeper_find_over_a_large_project_describes_each_session_once(
        big: EmulatorServer, mount_factory: MountFactory) -> None:
    """Below the sessions a walk needs each session's document and file listing: fetched ahead of it,
    once each, whether a session came from its subject's document or the project's listing."""
    found, requests_counter = find_in_many(big, mount_factory, 5)
    assert sum(line.endswith("_MR1/scans") for line in found) == SUBJECTS
    requests_counter.settle()
    by_route = requests_counter.read()["by_route"]
    described = by_route.get("GET /data/experiments/<experiment>", 0) + by_route.get("GET /data/subjects/<subject>", 0)
    assert described <= SUBJECTS + 3, by_route  # a document per session (or per subject), not both
    assert by_route.get("GET /data/experiments/<experiment>/files", 0) <= SUBJECTS, by_route
    assert by_route.get("GET /data/subjects/<subject>/files", 0) == SUBJECTS // 10, by_route  # the NOTES


def test_a_read_only_mount_reads_a_series_without_an_open_call_per_file(
        big: EmulatorServer, mount_factory: MountFactory) -> None:
    """On a --read-only mount the kernel opens and closes files without calling the daemon (the first
    OPEN is answered ENOSYS): reading the series costs reads only, from the resource's zip; each file's
    open file is closed once read to its end; opening the files again costs no call at all."""
    requests_counter = RequestCounter(big)
    mounted = mount_factory(big, "--read-only")
    series = mounted.path / SERIES
    names = sorted(os.listdir(series))
    requests_counter.settle()
    requests_counter.reset()
    for i, name in enumerate(names):
        assert (series / name).read_bytes() == b"x" * (100 + i), name
    before = stats(mounted.path)
    assert before["calls"].get("open", 0) <= 1 and "release" not in before["calls"], before["calls"]
    assert before["zips_fetched"] == 1 and before["served_from_zip"] >= FILES - 100, before
    assert before["open_files"] == 0, before
    assert requests_counter.settle() < 50
    for name in names:  # dcm2niix's second, third and fourth opens
        os.close(os.open(series / name, os.O_RDONLY))
    with open(series / names[7], "rb") as again:
        assert again.read() == b"x" * 107
    after = stats(mounted.path)
    calls = {k: v - before["calls"].get(k, 0) for k, v in after["calls"].items() if k != "getxattr"}  # (the stats)
    assert not any(calls.values()), calls
