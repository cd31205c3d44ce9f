"""Fetching ahead when a program reads the files of a folder one after another.

``dcm2niix``, ``cp -r``, ``cat *`` and pydicom loops open the files of a DICOM series in order, one
at a time; each small file then costs one request and waits its full round trip (a 1,000-slice
series at 20 ms per request spends 20 s waiting, whatever the bandwidth). When two files of the same
folder are opened in listing order, the next few small files are fetched whole, in parallel, into a
bounded memory store, and their opens are answered from it: the waits overlap instead of adding up.

- A file opened alone costs what it cost before (one ranged request): nothing is fetched ahead until
  a second file is opened right after its predecessor in the listing.
- Only files up to ``max_file`` bytes are fetched ahead (bigger ones are read by the ranged reader
  with its own read-ahead), at most ``ahead`` files past the one opened, by ``workers`` threads.
- The store holds at most ``budget`` bytes; the oldest entries go first. An entry is keyed by the
  file's URI, size and md5, so a file that changed on the server is never served from it, and is
  handed out once (a second open of the same file reads from the server, or the kernel's cache).
- A failed fetch ahead is dropped quietly; the open then reads the file itself and reports its error.

Thread-safe.
"""

from __future__ import annotations

import logging
import threading
from collections import OrderedDict
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass

from xnatfs.errors import XNATError
from xnatfs.model.records import FileInfo

log = logging.getLogger(__name__)

Key = tuple[str, int, str]


def key_of(info: FileInfo) -> Key:
    return (info.uri, info.size, info.md5)


@dataclass(frozen=True)
class PrefetchSettings:
    """How far and how much is fetched ahead (see the module docstring)."""

    workers: int = 16
    ahead: int = 32
    max_file: int = 1024 * 1024
    budget: int = 32 * 1024 * 1024
    #: how long an open waits for a file being fetched ahead before reading it itself
    wait: float = 30.0


class SiblingPrefetch:
    """The store and the pool of fetches ahead (see the module docstring); ``fetch(info)`` returns a
    file's whole content."""

    def __init__(self, fetch: Callable[[FileInfo], bytes], settings: PrefetchSettings | None = None) -> None:
        self._fetch = fetch
        self.settings = settings or PrefetchSettings()
        self._lock = threading.Lock()
        self._store: OrderedDict[Key, bytes] = OrderedDict()
        self._stored = 0
        self._pending: dict[Key, Future[bytes | None]] = {}
        self._pending_bytes = 0
        self._last_opened: OrderedDict[str, Key] = OrderedDict()  # folder → the file opened last in it
        self._pool: ThreadPoolExecutor | None = None
        self._closed = False
        self.hits = 0
        self.fetched = 0

    def take(self, info: FileInfo) -> bytes | None:
        """The file's content if it was fetched ahead (waiting for a fetch in flight), else None."""
        key = key_of(info)
        with self._lock:
            data = self._store.pop(key, None)
            if data is not None:
                self._stored -= len(data)
                self.hits += 1
                return data
            future = self._pending.get(key)
        if future is None:
            return None
        try:
            data = future.result(timeout=self.settings.wait)
        except FutureTimeout:
            return None
        with self._lock:
            stored = self._store.pop(key, None)
            if stored is not None:
                self._stored -= len(stored)
            if data is not None:
                self.hits += 1
        return data

    def opened(self, folder: str, files: Sequence[FileInfo], index: int) -> None:
        """``files[index]`` of ``folder`` (its files in listing order) was opened: if the file opened
        before it in that folder was its predecessor, fetch the next small files ahead."""
        if self._closed or not 0 <= index < len(files):
            return
        key = key_of(files[index])
        with self._lock:
            previous = self._last_opened.pop(folder, None)
            self._last_opened[folder] = key
            while len(self._last_opened) > 256:
                self._last_opened.popitem(last=False)
        if previous is None or index == 0 or key_of(files[index - 1]) != previous:
            return
        settings = self.settings
        for info in files[index + 1: index + 1 + settings.ahead]:
            if info.size > settings.max_file:
                continue
            self._schedule(info)

    def close(self) -> None:
        with self._lock:
            self._closed = True
            pool, self._pool = self._pool, None
            self._store.clear()
            self._stored = 0
        if pool is not None:
            pool.shutdown(wait=False, cancel_futures=True)

    def _schedule(self, info: FileInfo) -> None:
        key = key_of(info)
        with self._lock:
            if self._closed or key in self._store or key in self._pending:
                return
            if self._stored + self._pending_bytes + info.size > self.settings.budget:
                return
            self._pending_bytes += info.size
            if self._pool is None:
                self._pool = ThreadPoolExecutor(self.settings.workers, thread_name_prefix="xnatfs-prefetch")
            future: Future[bytes | None] = self._pool.submit(self._run, info)
            self._pending[key] = future

    def _run(self, info: FileInfo) -> bytes | None:
        key = key_of(info)
        try:
            data: bytes | None = self._fetch(info)
        except XNATError as exc:
            log.debug("Fetching %s ahead failed: %s", info.relpath, exc)
            data = None
        with self._lock:
            self._pending.pop(key, None)
            self._pending_bytes -= info.size
            if data is None or self._closed:
                return data
            self.fetched += 1
            self._store[key] = data
            self._stored += len(data)
            while self._stored > self.settings.budget and self._store:
                _, dropped = self._store.popitem(last=False)
                self._stored -= len(dropped)
        return data


__all__ = ["SiblingPrefetch", "PrefetchSettings", "key_of"]
