"""The fetch-ahead of a folder's files (vfs/prefetch.py) over a fake fetch: when it starts, what it
keeps, and that it never hands out another version of a file."""

from __future__ import annotations

import threading

import pytest

from xnatfs.errors import ServerError
from xnatfs.model.records import FileInfo
from xnatfs.vfs.prefetch import PrefetchSettings, SiblingPrefetch

pytestmark = pytest.mark.unit


def files(count: int, size: int = 10, md5: str = "m") -> list[FileInfo]:
    return [FileInfo(f"f{i:03d}", size, f"/data/x/files/f{i:03d}", "R", md5) for i in range(count)]


class Fetch:
    def __init__(self, fail: set[str] | None = None) -> None:
        self.calls: list[str] = []
        self.fail = fail or set()
        self.lock = threading.Lock()
        self.gate = threading.Event()  # fetches wait here, so what is scheduled does not race them
        self.gate.set()

    def __call__(self, info: FileInfo) -> bytes:
        assert self.gate.wait(5)
        with self.lock:
            self.calls.append(info.relpath)
        if info.relpath in self.fail:
            raise ServerError("boom")
        return info.relpath.encode() * 2


def drain(prefetch: SiblingPrefetch) -> None:
    if prefetch._pool is not None:
        prefetch._pool.shutdown(wait=True)
        prefetch._pool = None


def test_nothing_is_fetched_until_two_files_are_opened_in_order() -> None:
    fetch, listing = Fetch(), files(10)
    prefetch = SiblingPrefetch(fetch, PrefetchSettings(ahead=3))
    prefetch.opened("/d", listing, 5)
    prefetch.opened("/d", listing, 2)  # not the next one: no pattern
    drain(prefetch)
    assert fetch.calls == []
    prefetch.opened("/d", listing, 3)
    drain(prefetch)
    assert sorted(fetch.calls) == ["f004", "f005", "f006"]
    assert prefetch.take(listing[4]) == b"f004f004"
    assert prefetch.take(listing[4]) is None  # handed out once
    prefetch.close()


def test_a_changed_file_is_never_served_from_the_store() -> None:
    fetch, listing = Fetch(), files(5)
    prefetch = SiblingPrefetch(fetch, PrefetchSettings(ahead=2))
    prefetch.opened("/d", listing, 0)
    prefetch.opened("/d", listing, 1)
    drain(prefetch)
    changed = FileInfo(listing[2].relpath, 11, listing[2].uri, "R", "other")
    assert prefetch.take(changed) is None
    prefetch.close()


def test_big_files_failures_and_the_budget_are_respected() -> None:
    fetch = Fetch(fail={"f003"})
    listing = files(20, size=100)
    prefetch = SiblingPrefetch(fetch, PrefetchSettings(ahead=10, budget=450, max_file=100))
    fetch.gate.clear()
    prefetch.opened("/d", listing, 0)
    prefetch.opened("/d", listing, 1)
    fetch.gate.set()
    drain(prefetch)
    assert len(fetch.calls) == 4  # 4 x 100 bytes fit in 450
    assert prefetch.take(listing[3]) is None  # the failed one: the open reads it itself
    assert prefetch.take(listing[2]) == b"f002f002"
    big = files(3, size=10_000)
    prefetch.opened("/e", big, 0)
    prefetch.opened("/e", big, 1)
    drain(prefetch)
    assert all(not call.startswith("/e") for call in fetch.calls) and len(fetch.calls) == 4
    prefetch.close()
