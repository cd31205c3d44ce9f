"""The optional on-disk cache (``--cache-dir``): whole files, size-capped, least recently used first out.

A file is cached when it has been read from its first byte to its last in order (``cp``, ``cat``,
``dcm2niix``…): the reader hands every chunk to a :class:`CacheWriter`, which writes a ``.part``
file and, at the end, checks the size and, when the server gave one, the md5, then renames it into
place. Anything else (a random read, a short read, a closed handle) abandons the ``.part``.

The key is a hash of the file's URI, size and md5 (or, without md5, its modification time), so a
file that changes on the server gets a new key and a stale copy is never served; old entries age out.

Eviction keeps the total under ``max_bytes``: least recently opened first (the access time is set on
each hit). Entries being written do not count until they are complete.

Thread-safe: one lock guards the size accounting and eviction; files are renamed atomically.
"""

from __future__ import annotations

import hashlib
import logging
import os
import threading
import time
from pathlib import Path

log = logging.getLogger(__name__)

SUFFIX = ".data"


class DiskCache:
    """Complete copies of remote files under ``directory``, at most ``max_bytes`` in total."""

    def __init__(self, directory: str | os.PathLike[str], max_bytes: int) -> None:
        self.directory = Path(directory)
        self.max_bytes = max_bytes
        self._lock = threading.Lock()
        self._total: int | None = None

    @staticmethod
    def key(uri: str, size: int, md5: str = "", mtime: float | None = None) -> str:
        stamp = md5.lower() if md5 else f"mtime={mtime or 0:.0f}"
        return hashlib.sha256(f"{uri}\n{size}\n{stamp}".encode("utf-8", "surrogateescape")).hexdigest()

    def _path(self, key: str) -> Path:
        return self.directory / key[:2] / (key + SUFFIX)

    def open(self, key: str, size: int) -> int | None:
        """A read-only descriptor of the cached copy, or None (absent or of the wrong size)."""
        path = self._path(key)
        try:
            fd = os.open(path, os.O_RDONLY)
        except OSError:
            return None
        if os.fstat(fd).st_size != size:
            os.close(fd)
            return None
        now = time.time()
        try:
            os.utime(path, (now, now))
        except OSError:
            pass
        return fd

    def writer(self, key: str, size: int, md5: str = "") -> CacheWriter | None:
        """A writer for a new entry, or None if the file cannot fit at all."""
        if size > self.max_bytes or size <= 0:
            return None
        return CacheWriter(self, key, size, md5)

    def _complete(self, key: str, part: Path, size: int) -> None:
        target = self._path(key)
        os.replace(part, target)
        with self._lock:
            total = self._scan_total() + size if self._total is None else self._total + size
            self._total = total
            if total > self.max_bytes:
                self._evict_locked()

    def _scan_total(self) -> int:
        total = 0
        for path in self.directory.glob(f"*/*{SUFFIX}"):
            try:
                total += path.stat().st_size
            except OSError:
                continue
        return total

    def _evict_locked(self) -> None:
        entries = []
        for path in self.directory.glob(f"*/*{SUFFIX}"):
            try:
                info = path.stat()
            except OSError:
                continue
            entries.append((info.st_mtime, info.st_size, path))
        entries.sort()
        total = sum(size for _, size, _ in entries)
        for _, size, path in entries:
            if total <= self.max_bytes:
                break
            try:
                path.unlink()
                total -= size
            except OSError as exc:
                log.debug("cache eviction of %s failed: %s", path, exc)
        self._total = total

    @property
    def total(self) -> int:
        with self._lock:
            if self._total is None:
                self._total = self._scan_total()
            return self._total


class CacheWriter:
    """Writes one file's bytes, in order from offset 0, into a ``.part`` file (see module docstring)."""

    def __init__(self, cache: DiskCache, key: str, size: int, md5: str) -> None:
        self._cache = cache
        self._key = key
        self._size = size
        self._md5 = md5.lower()
        self._hash = hashlib.md5(usedforsecurity=False) if md5 else None
        self._part = cache._path(key).with_suffix(f".{os.getpid()}.{threading.get_ident()}.part")
        self._file = None
        self._written = 0
        self._done = False

    def write(self, offset: int, data: bytes) -> None:
        if self._done:
            return
        if offset != self._written:
            self.abandon()
            return
        try:
            if self._file is None:
                self._part.parent.mkdir(parents=True, exist_ok=True)
                self._file = open(self._part, "wb")  # noqa: SIM115 - closed in finish/abandon
            self._file.write(data)
        except OSError as exc:
            log.warning("Disk cache write failed (%s); not caching %s", exc, self._part.name)
            self.abandon()
            return
        if self._hash is not None:
            self._hash.update(data)
        self._written += len(data)

    def finish(self) -> None:
        if self._done:
            return
        if self._written != self._size or (self._hash is not None and self._hash.hexdigest() != self._md5):
            log.warning("Not caching a file whose bytes do not match the listing (size %d of %d, md5 %s)",
                        self._written, self._size, "ok" if self._hash is None else "mismatch")
            self.abandon()
            return
        self._done = True
        try:
            assert self._file is not None
            self._file.close()
            self._cache._complete(self._key, self._part, self._size)
        except OSError as exc:
            log.warning("Disk cache could not store a file: %s", exc)
            self._unlink()

    def abandon(self) -> None:
        if self._done:
            return
        self._done = True
        if self._file is not None:
            self._file.close()
        self._unlink()

    def _unlink(self) -> None:
        try:
            self._part.unlink()
        except FileNotFoundError:
            pass
        except OSError as exc:
            log.debug("could not remove %s: %s", self._part, exc)


__all__ = ["DiskCache", "CacheWriter"]
