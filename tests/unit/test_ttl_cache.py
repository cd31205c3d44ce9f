"""TTLCache: expiry with an injected clock, the size bound, prefix invalidation, load races."""

from __future__ import annotations

import threading
from collections.abc import Callable

import pytest

from xnatfs.cache.ttl import TTLCache, key_has_prefix

pytestmark = pytest.mark.unit


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_entries_expire_after_ttl() -> None:
    clock = Clock()
    cache = TTLCache(maxsize=10, ttl=60, timer=clock)
    cache.set("/data/projects", ["P1"])
    clock.now += 59
    assert cache.get("/data/projects") == ["P1"]
    clock.now += 2
    assert cache.get("/data/projects") is None
    assert len(cache) == 0


def test_size_is_bounded_and_least_recently_used_goes_first() -> None:
    cache = TTLCache(maxsize=3, ttl=60, timer=Clock())
    for key in ("/a", "/b", "/c"):
        cache.set(key, key)
    cache.get("/a")
    cache.set("/d", "d")
    assert len(cache) == 3
    assert "/b" not in cache and "/a" in cache and "/d" in cache


def test_invalidate_drops_the_prefix_on_segment_boundaries() -> None:
    cache = TTLCache(maxsize=100, ttl=60, timer=Clock())
    keys = ["/data/projects/P1", "/data/projects/P1/subjects?columns=ID", "/data/projects/P1/subjects/S1",
            "/data/projects/P10", "/data/projects/P10/subjects", ("/data/projects/P1/resources", "json")]
    for key in keys:
        cache.set(key, 1)
    assert cache.invalidate("/data/projects/P1") == 4
    assert "/data/projects/P10" in cache and "/data/projects/P10/subjects" in cache
    assert "/data/projects/P1" not in cache


def test_exact_invalidation_keeps_what_lies_below() -> None:
    cache = TTLCache(maxsize=100, ttl=60, timer=Clock())
    for key in [("/data/experiments/E1", "format=json"), ("/data/experiments/E1/scans", "format=json"),
                ("/data/experiments/E1", "format=xml")]:
        cache.set(key, 1)
    assert cache.invalidate("/data/experiments/E1", exact=True) == 2
    assert ("/data/experiments/E1/scans", "format=json") in cache


def test_key_has_prefix_rules() -> None:
    assert key_has_prefix("/x/y?format=json", "/x/y")
    assert key_has_prefix("/x/y/", "/x/y/")
    assert not key_has_prefix("/x/yz", "/x/y")
    assert not key_has_prefix(42, "/x")


def test_get_or_load_loads_once_then_serves_from_cache() -> None:
    cache = TTLCache(maxsize=10, ttl=60, timer=Clock())
    calls: list[int] = []

    def load() -> str:
        calls.append(1)
        return "value"

    assert cache.get_or_load("/k", load) == "value"
    assert cache.get_or_load("/k", load) == "value"
    assert len(calls) == 1


def test_value_loaded_across_an_invalidation_is_not_stored() -> None:
    cache = TTLCache(maxsize=10, ttl=60, timer=Clock())

    def load_while_someone_writes() -> str:
        cache.invalidate("/data/projects/P1")
        return "stale"

    assert cache.get_or_load("/data/projects/P1/subjects", load_while_someone_writes) == "stale"
    assert "/data/projects/P1/subjects" not in cache


def test_zero_ttl_disables_caching() -> None:
    cache = TTLCache(maxsize=10, ttl=0)
    cache.set("/a", 1)
    assert cache.get("/a") is None
    assert cache.get_or_load("/a", lambda: 2) == 2
    assert len(cache) == 0


def test_concurrent_use_keeps_the_bound() -> None:
    cache = TTLCache(maxsize=50, ttl=60)

    def worker(n: int) -> None:
        for i in range(500):
            cache.set(f"/w{n}/{i}", i)
            cache.get(f"/w{n}/{i // 2}")
            if i % 50 == 0:
                cache.invalidate(f"/w{n}")

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    assert len(cache) <= 50


def run_callers(call: Callable[[], None], count: int, entered: threading.Event, gate: threading.Event) -> None:
    """``count`` threads run ``call``; once the first load has begun, the gate lets it finish."""
    threads = [threading.Thread(target=call) for _ in range(count)]
    for thread in threads:
        thread.start()
    assert entered.wait(5)
    gate.set()
    for thread in threads:
        thread.join(5)


def test_concurrent_loads_of_one_key_share_one_load() -> None:
    cache = TTLCache(maxsize=10, ttl=60, timer=Clock())
    entered, gate, calls, results = threading.Event(), threading.Event(), [], []

    def load() -> str:
        calls.append(1)
        entered.set()
        assert gate.wait(5)
        return "value"

    run_callers(lambda: results.append(cache.get_or_load("/k", load)), 4, entered, gate)
    assert len(calls) == 1 and results == ["value"] * 4


def test_a_load_that_began_before_an_invalidation_is_not_stored_nor_shared() -> None:
    cache = TTLCache(maxsize=10, ttl=60, timer=Clock())
    entered, gate, versions = threading.Event(), threading.Event(), iter(["old", "new"])

    def slow_old() -> str:
        value = next(versions)
        entered.set()
        assert gate.wait(5)
        return value

    first: list[str] = []
    thread = threading.Thread(target=lambda: first.append(cache.get_or_load("/data/x/files", slow_old)))
    thread.start()
    assert entered.wait(5)
    cache.invalidate("/data/x")
    # a caller arriving after the invalidation does not wait for the old load: it loads itself
    assert cache.get_or_load("/data/x/files", lambda: next(versions)) == "new"
    gate.set()
    thread.join(5)
    assert first == ["old"]
    assert cache.get("/data/x/files") == "new"


def test_a_failed_load_reaches_its_waiters_and_is_not_cached() -> None:
    cache = TTLCache(maxsize=10, ttl=60, timer=Clock())
    entered, gate, calls, errors = threading.Event(), threading.Event(), [], []

    def failing() -> str:
        calls.append(1)
        entered.set()
        assert gate.wait(5)
        raise ValueError("server down")

    def call() -> None:
        try:
            cache.get_or_load("/k", failing)
        except ValueError as exc:
            errors.append(str(exc))

    run_callers(call, 3, entered, gate)
    assert len(calls) == 1 and errors == ["server down"] * 3
    assert cache.get_or_load("/k", lambda: "ok") == "ok"
