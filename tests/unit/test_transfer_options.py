"""The transfer engine's pure parts: glob filters, options' bounds, the summary, byte counting, the pool."""

from __future__ import annotations

import threading

import pytest

from xnatfs.model.transfer import _member_relpath
from xnatfs.transfer.common import (
    FAILED,
    PLANNED,
    SENT,
    SKIPPED,
    ByteCounter,
    QuietReporter,
    Summary,
    TransferOptions,
    matches,
    run_pool,
)

pytestmark = pytest.mark.unit


@pytest.mark.parametrize(("relpath", "pattern", "expected"), [
    ("experiments/E/scans/2/resources/DICOM/1.dcm", "*.dcm", True),        # no "/": the file name, any depth
    ("experiments/E/scans/2/resources/DICOM/1.dcm", "1.dcm", True),
    ("experiments/E/scans/2/resources/DICOM/1.dcm", "DICOM", False),       # a folder name is not a file name
    ("experiments/E/scans/3/resources/DICOM/1.dcm", "experiments/*/scans/3/*", True),  # "/": the whole path
    ("experiments/E/scans/2/resources/DICOM/1.dcm", "experiments/*/scans/3/*", False),
    ("resources/notes/a.TXT", "*.txt", False),                              # case matters, as on Linux
    ("a.txt", "/a.txt", True),                                              # a leading / anchors at the root
])
def test_globs(relpath: str, pattern: str, expected: bool) -> None:
    assert matches(relpath, pattern) is expected


def test_include_then_exclude() -> None:
    options = TransferOptions(include=("*.dcm", "*.json"), exclude=("*/secret/*",))
    assert options.wanted("scans/1/a.dcm") and options.wanted("x.json")
    assert not options.wanted("scans/1/a.nii") and not options.wanted("top/secret/a.dcm")
    assert TransferOptions().wanted("anything/at/all")


@pytest.mark.parametrize("jobs", [0, -1, 17])
def test_jobs_are_bounded(jobs: int) -> None:
    with pytest.raises(ValueError, match="jobs"):
        TransferOptions(jobs=jobs)


def test_summary_counts_each_outcome_and_lists_failures_sorted() -> None:
    summary = Summary()
    summary.record("b", SENT, 10)
    summary.record("c", SKIPPED, 0)
    summary.record("z", FAILED, 0, "boom")
    summary.record("a", FAILED, 0, "bang")
    summary.record("d", PLANNED, 0)
    summary.seconds = 1.23456
    assert not summary.ok
    assert summary.as_dict() == {"files": 1, "bytes": 10, "skipped": 1, "planned": 1, "seconds": 1.235,
                                 "failed": [{"path": "a", "error": "bang"}, {"path": "z", "error": "boom"}]}


def test_byte_counter_reports_only_new_bytes_from_its_start() -> None:
    moved: list[int] = []

    class Recorder(QuietReporter):
        def advance(self, count: int) -> None:
            moved.append(count)

    counter = ByteCounter(Recorder(), start=100)  # a resumed file had 100 bytes on disk
    for done in (100, 150, 150, 400):
        counter(done, 400)
    counter.restart(0)  # the server ignored Range: the file starts again
    counter(50, 400)
    assert moved == [50, 250, 50]


def test_the_pool_runs_everything_with_at_most_jobs_threads() -> None:
    seen: list[int] = []
    running, peak = 0, 0
    lock = threading.Lock()
    gate = threading.Event()

    def work(item: int) -> None:
        nonlocal running, peak
        with lock:
            running += 1
            peak = max(peak, running)
        gate.wait(0.01)
        with lock:
            running -= 1
            seen.append(item)

    run_pool(iter(range(200)), work, 3)
    assert sorted(seen) == list(range(200)) and peak <= 3


def test_a_bug_in_the_work_is_raised_not_swallowed() -> None:
    def work(item: int) -> None:
        if item == 7:
            raise RuntimeError("bug")

    with pytest.raises(RuntimeError, match="bug"):
        run_pool(range(20), work, 2)


@pytest.mark.parametrize(("name", "expected"), [
    ("E1/scans/2-T1/resources/DICOM/files/a/b.dcm", "a/b.dcm"),
    ("E1/scans/2-T1/resources/files/files/b.dcm", "b.dcm"),        # a resource labelled "files"
    ("E1/scans/2-T1/resources/DICOM/files/files/b.dcm", "files/b.dcm"),  # a folder named "files"
    ("E1/scans/2-T1/resources/DICOM/files/other.dcm", None),
])
def test_zip_members_are_matched_to_wanted_paths(name: str, expected: str | None) -> None:
    wanted = {"a/b.dcm": None, "b.dcm": None, "files/b.dcm": None}
    if expected == "b.dcm":
        wanted.pop("files/b.dcm")
    if expected == "files/b.dcm":
        wanted.pop("b.dcm")
    assert _member_relpath(name, wanted) == expected  # type: ignore[arg-type]


def test_ctrl_c_stops_running_work_at_its_next_chunk_and_is_raised() -> None:
    cancel = threading.Event()
    stopped: list[str] = []
    started = threading.Barrier(3)

    def work(item: int) -> None:
        counter = ByteCounter(QuietReporter(), cancel=cancel)
        started.wait(5)
        try:
            for done in range(10**9):  # a long transfer: a chunk at a time
                counter(done, None)
                cancel.wait(0.001)
        except InterruptedError as exc:
            stopped.append(str(exc))

    def items():  # the user presses Ctrl-C while the two workers are busy
        yield 1
        yield 2
        started.wait(5)
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        run_pool(items(), work, 2, cancel)
    assert cancel.is_set() and stopped == ["the transfer was interrupted"] * 2
