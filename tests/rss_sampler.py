"""Peak resident memory of a process while a block of test code runs (tests/ is on sys.path through
tests/conftest.py, so every test directory imports it as ``from rss_sampler import PeakRSS``)."""

from __future__ import annotations

import threading

import psutil


class PeakRSS:
    """Samples a process's resident memory (this process by default) every ``interval`` seconds in a
    thread; ``growth`` is the peak over the RSS at construction."""

    def __init__(self, process: psutil.Process | None = None, *, interval: float = 0.005) -> None:
        self._process = process or psutil.Process()
        self._interval = interval
        self.baseline = self._process.memory_info().rss
        self.peak = self.baseline
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.wait(self._interval):
            self.peak = max(self.peak, self._process.memory_info().rss)

    def __enter__(self) -> PeakRSS:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        self.peak = max(self.peak, self._process.memory_info().rss)

    @property
    def growth(self) -> int:
        return self.peak - self.baseline
