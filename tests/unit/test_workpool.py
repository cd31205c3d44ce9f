"""The prefetch pool runs urgent work before guesses, and drops what is queued once closed."""

from __future__ import annotations

import threading

import pytest

from xnatfs.vfs.workpool import GUESS, URGENT, WorkPool

pytestmark = pytest.mark.unit


def test_urgent_work_runs_before_guesses_queued_earlier() -> None:
    pool, ran, gate, done = WorkPool(1, "test-pool"), [], threading.Event(), threading.Event()
    pool.submit(GUESS, gate.wait, 5)  # occupies the one worker while the rest is queued
    for n in range(3):
        pool.submit(GUESS, ran.append, f"guess{n}")
    for n in range(2):
        pool.submit(URGENT, ran.append, f"urgent{n}")
    pool.submit(GUESS, done.set)
    gate.set()
    assert done.wait(5)
    assert ran == ["urgent0", "urgent1", "guess0", "guess1", "guess2"]
    pool.close()


def test_a_closed_pool_drops_queued_work_and_takes_no_more() -> None:
    pool, ran, gate = WorkPool(1, "test-pool"), [], threading.Event()
    started = threading.Event()
    pool.submit(URGENT, lambda: (started.set(), gate.wait(5)))
    assert started.wait(5)
    pool.submit(URGENT, ran.append, "queued")
    pool.close()
    gate.set()
    assert pool.submit(URGENT, ran.append, "late") is False
    threads = [t for t in threading.enumerate() if t.name.startswith("test-pool")]
    for thread in threads:
        thread.join(5)
    assert ran == [] and not any(t.is_alive() for t in threads)
