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


class Zip:
    """A fake resource zip: members are the files' names twice, except those listed as ``corrupt``;
    ``fill`` fails with ``fail``."""

    def __init__(self, corrupt: frozenset[str] = frozenset(), fail: Exception | None = None) -> None:
        self.corrupt = corrupt
        self.closed = False
        self.streaming = False
        self.fail = fail

    def fill(self) -> None:
        if self.fail is not None:
            raise self.fail
        self.streaming = True

    def read(self, relpath: str, size: int, md5: str, *, wait: float = 0.0) -> bytes | None:
        return None if relpath in self.corrupt or self.closed else relpath.encode() * 2

    def close(self) -> None:
        self.closed = True


def test_a_walk_with_many_files_ahead_takes_the_resource_as_one_zip() -> None:
    fetch, listing, asked = Fetch(), files(100), []
    made: list[Zip] = []

    def fetch_zip(uri: str, wanted: dict[str, int]) -> Zip:
        asked.append((uri, len(wanted)))
        made.append(Zip(corrupt=frozenset({"f050"})))
        return made[-1]

    prefetch = SiblingPrefetch(fetch, PrefetchSettings(ahead=4, zip_min_files=20), fetch_zip=fetch_zip)
    prefetch.opened("/d", listing, 0)
    prefetch.opened("/d", listing, 1)  # a walk, 98 small files ahead: the zip starts, and 4 files alone
    prefetch._zip_pool.shutdown(wait=True)
    drain(prefetch)
    assert asked == [("/data/x/files", 100)] and sorted(fetch.calls) == ["f002", "f003", "f004", "f005"]
    assert prefetch.take(listing[2]) == b"f002f002"  # fetched alone, from the store
    for index in range(3, 60):
        prefetch.opened("/d", listing, index)  # the zip is there: nothing more is fetched file by file
    drain(prefetch)
    assert len(fetch.calls) == 4
    assert prefetch.take(listing[40]) is None  # not fetched on its own: it is in the zip
    assert prefetch.read_zipped(made[0], listing[40]) == b"f040f040" and prefetch.zip_hits == 1
    # a member without its listed size or md5: read from the server
    assert prefetch.read_zipped(made[0], listing[50]) is None
    assert prefetch.zipped(listing[41]) is made[0]
    big = FileInfo("f041", PrefetchSettings().max_file + 1, listing[41].uri, "R", "m")
    assert prefetch.zipped(big) is None  # a big file is never read whole into memory from the zip
    prefetch.close()
    assert made[0].closed


def test_a_short_walk_or_a_failed_zip_fetches_file_by_file() -> None:
    fetch, listing = Fetch(), files(30)

    def failing_zip(uri: str, wanted: dict[str, int]) -> Zip:
        return Zip(fail=ServerError("no zips here"))

    prefetch = SiblingPrefetch(fetch, PrefetchSettings(ahead=3, zip_min_files=20), fetch_zip=failing_zip)
    prefetch.opened("/d", listing, 0)
    prefetch.opened("/d", listing, 1)
    prefetch._zip_pool.shutdown(wait=True)
    prefetch.opened("/d", listing, 2)
    drain(prefetch)
    assert prefetch.zips == 0 and sorted(fetch.calls) == ["f002", "f003", "f004", "f005"]
    assert prefetch.take(listing[5]) == b"f005f005"
    prefetch.close()
    few = SiblingPrefetch(Fetch(), PrefetchSettings(zip_min_files=20), fetch_zip=failing_zip)
    few.opened("/d", listing[:10], 0)
    few.opened("/d", listing[:10], 1)  # 8 files ahead: no zip asked for
    assert few._zip_pool is None
    few.close()


def test_while_the_zip_has_not_begun_to_arrive_only_a_few_files_are_fetched_alone() -> None:
    """32 requests at once beside the zip's first round trip slowed the zip and the walk's own reads:
    until the zip's members arrive, only ``ahead_while_zip_starts`` files are fetched one by one."""
    fetch, listing, gate = Fetch(), files(100), threading.Event()

    class SlowZip(Zip):
        def fill(self) -> None:
            assert gate.wait(5)
            super().fill()

    made: list[Zip] = []
    settings = PrefetchSettings(ahead=32, zip_min_files=20, ahead_while_zip_starts=3)
    prefetch = SiblingPrefetch(fetch, settings, fetch_zip=lambda uri, wanted: made.append(SlowZip()) or made[-1])
    prefetch.opened("/d", listing, 0)
    prefetch.opened("/d", listing, 1)  # the zip is asked for, and has not begun to arrive
    drain(prefetch)
    assert sorted(fetch.calls) == ["f002", "f003", "f004"]
    gate.set()
    prefetch._zip_pool.shutdown(wait=True)
    prefetch.opened("/d", listing, 2)  # its members arrive: nothing more one by one
    drain(prefetch)
    assert len(fetch.calls) == 3 and prefetch.zipped(listing[10]) is made[0]
    prefetch.close()
