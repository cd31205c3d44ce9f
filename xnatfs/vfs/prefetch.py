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
- Whole resources: when the walk has at least ``zip_min_files`` small files still ahead of it, the
  resource is also fetched as one zip (one request at link speed instead of one round trip per file;
  :class:`~xnatfs.model.transfer.ResourceZip`: an anonymous file on disk, at most ``zip_max_bytes``),
  and once its first members have arrived the remaining opens are served from it (each member with
  its listed size and md5, waiting for it while the zip is still coming) and no more files are
  fetched one by one. Until then the per-file fetches go on. At most ``zips_kept`` zips are kept; a
  zip that fails or is too large only means the per-file path.
  The mount reads a member only when the open file is read (:meth:`SiblingPrefetch.zipped`): dcm2niix
  opens each file of a series four times, and the kernel's page cache answers most of those opens.

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
from typing import Protocol

from xnatfs.errors import XNATError
from xnatfs.model.records import FileInfo

log = logging.getLogger(__name__)

Key = tuple[str, int, str]


class ZipMembers(Protocol):
    """A resource zip (:class:`~xnatfs.model.transfer.ResourceZip`): :meth:`fill` downloads it, and its
    members can be read while it does, once :attr:`streaming`."""

    def fill(self) -> None: ...

    @property
    def streaming(self) -> bool: ...

    def read(self, relpath: str, size: int, md5: str, *, wait: float = 0.0) -> bytes | None: ...

    def close(self) -> None: ...


#: ``fetch_zip(files_uri, {relpath: listed size})``: the resource's zip, not yet filled (an OSError if
#: it cannot be made)
ZipFetch = Callable[[str, dict[str, int]], ZipMembers]


def files_uri(file_uri: str) -> str | None:
    """``…/resources/R/files`` of a file's URI (what ``?format=zip`` is asked of), or None."""
    at = file_uri.find("/files/")
    return file_uri[: at + len("/files")] if at >= 0 else None


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
    #: fetch the resource as one zip when at least this many small files lie ahead of the walk
    zip_min_files: int = 64
    #: the largest zip accepted (on local disk, in the spool folder)
    zip_max_bytes: int = 1024 * 1024 * 1024
    #: resource zips kept at once (the oldest is closed and its disk space freed)
    zips_kept: int = 2
    #: files fetched one by one ahead of the walk while its resource's zip has not begun to arrive: a
    #: few bridge the zip's first round trip; 32 requests at once would slow the zip and the walk's own
    #: reads (dcm2niix's second file waited 130 ms behind them)
    ahead_while_zip_starts: int = 4


class SiblingPrefetch:
    """The store and the pool of fetches ahead (see the module docstring); ``fetch(info)`` returns a
    file's whole content."""

    def __init__(self, fetch: Callable[[FileInfo], bytes], settings: PrefetchSettings | None = None, *,
                 fetch_zip: ZipFetch | None = None) -> None:
        self._fetch = fetch
        self._fetch_zip = fetch_zip
        #: files URI → the resource's zip and its fill (True once filled)
        self._zips: OrderedDict[str, tuple[ZipMembers, Future[bool]]] = OrderedDict()
        self._no_zip: set[str] = set()  # resources found not worth a zip (decided once, not at every open)
        self._zip_pool: ThreadPoolExecutor | None = None
        self.zips = 0
        self.zip_hits = 0
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
        """The file's content if it was fetched ahead on its own (waiting for a fetch in flight), else
        None; a file of a resource's zip is found with :meth:`zipped`."""
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
        if self._zip_ready(files, index):
            return
        settings = self.settings
        ahead = settings.ahead_while_zip_starts if self._zip_starting(files[index]) else settings.ahead
        for info in files[index + 1: index + 1 + ahead]:
            if info.size > settings.max_file:
                continue
            self._schedule(info)

    def close(self) -> None:
        with self._lock:
            self._closed = True
            pool, self._pool = self._pool, None
            zip_pool, self._zip_pool = self._zip_pool, None
            zips = list(self._zips.values())
            self._zips.clear()
            self._store.clear()
            self._stored = 0
        for pool_ in (pool, zip_pool):
            if pool_ is not None:
                pool_.shutdown(wait=False, cancel_futures=True)
        for members, _fill in zips:
            members.close()

    # -- whole resources ---------------------------------------------------------------------------

    def _zip_ready(self, files: Sequence[FileInfo], index: int) -> bool:
        """Whether the resource's zip is arriving (then nothing more is fetched file by file); starts
        it when enough small files lie ahead of the walk."""
        uri = files_uri(files[index].uri)
        if self._fetch_zip is None or uri is None:
            return False
        with self._lock:
            entry = self._zips.get(uri)
            if entry is None:
                settings = self.settings
                if self._closed or uri in self._no_zip:
                    return False
                small = [f.size <= settings.max_file for f in files]
                if sum(small) < settings.zip_min_files or any(files_uri(f.uri) != uri for f in files):
                    self._never_zip(uri)  # never worth it, wherever a walk starts
                    return False
                if sum(small[index + 1:]) < settings.zip_min_files:
                    return False  # a walk near the end of the folder
                try:
                    members = self._fetch_zip(uri, {f.relpath: f.size for f in files})
                except (XNATError, OSError) as exc:
                    log.info("No zip of %s (%s); its files are fetched one by one", uri, exc)
                    self._never_zip(uri)
                    return False
                if self._zip_pool is None:
                    self._zip_pool = ThreadPoolExecutor(1, thread_name_prefix="xnatfs-prefetch-zip")
                self._zips[uri] = (members, self._zip_pool.submit(self._run_zip, uri, members))
                while len(self._zips) > settings.zips_kept:
                    _, (old, _fill) = self._zips.popitem(last=False)
                    old.close()
                return False
        return _arriving(entry) is not None

    def _zip_starting(self, info: FileInfo) -> bool:
        """Whether the zip of the file's resource was asked for and has not begun to arrive."""
        uri = files_uri(info.uri)
        with self._lock:
            entry = self._zips.get(uri) if uri is not None else None
        return entry is not None and not entry[1].done() and _arriving(entry) is None

    def _never_zip(self, uri: str) -> None:
        """Remember (under the lock) that ``uri`` gets no zip; at most 1,024 such resources."""
        if len(self._no_zip) >= 1024:
            self._no_zip.clear()
        self._no_zip.add(uri)

    def _run_zip(self, uri: str, members: ZipMembers) -> bool:
        try:
            members.fill()
        except (XNATError, OSError) as exc:
            log.info("Fetching %s ahead as one zip failed (%s); its files are fetched one by one", uri, exc)
            return False
        except Exception as exc:  # noqa: BLE001 - a fetch ahead never fails a read: the open reads for itself
            log.warning("Fetching %s ahead as one zip failed unexpectedly: %r", uri, exc)
            return False
        with self._lock:
            self.zips += 1
        return True

    def zipped(self, info: FileInfo) -> ZipMembers | None:
        """The zip of the file's resource, if its members are arriving (a member is read with
        :meth:`read_zipped`, which waits for it while the zip downloads), and the file is small: a
        member is read whole into memory, so a big file of the resource is read by its own ranged
        reader, within the memory budget."""
        if info.size > self.settings.max_file:
            return None
        uri = files_uri(info.uri)
        with self._lock:
            entry = self._zips.get(uri) if uri is not None else None
        return None if entry is None else _arriving(entry)

    def read_zipped(self, members: ZipMembers, info: FileInfo) -> bytes | None:
        """The file from its resource's zip, if the zip holds it with its listed size and md5."""
        data = members.read(info.relpath, info.size, info.md5, wait=self.settings.wait)
        if data is not None:
            with self._lock:
                self.hits += 1
                self.zip_hits += 1
        return data

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


def _arriving(entry: tuple[ZipMembers, Future[bool]]) -> ZipMembers | None:
    """The zip of a ``_zips`` entry if its members are arriving and its download has not failed."""
    members, fill = entry
    if not members.streaming or fill.done() and not fill.result():
        return None
    return members


__all__ = ["SiblingPrefetch", "PrefetchSettings", "ZipMembers", "ZipFetch", "files_uri", "key_of"]
