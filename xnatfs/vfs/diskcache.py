"""The optional on-disk cache (``--cache-dir``): whole files, size-capped, least recently used first out.

A file is cached when it has been read from its first byte to its last in order (``cp``, ``cat``,
``dcm2niix``…): the reader hands every chunk to a :class:`CacheWriter`, which writes a ``.part``
file and, at the end, checks the size and, when the server gave one, the md5, then renames it into
place. Anything else (a random read, a short read, a closed handle) abandons the ``.part``.

The key is a hash of the file's URI, size and md5 (or, without md5, its modification time), so a
file that changes on the server gets a new key and a stale copy is never served; old entries age out.

Eviction keeps the total under ``max_bytes``: least recently opened first (the access time is set on
each hit). Entries being written do not count until they are complete.

Private to its user (issue 18): the folder is made 0700 and checked at start (:meth:`DiskCache.create`:
a folder owned by another user, group- or other-writable, or a symlink is refused with the fix), its
sub-folders 0700, entries 0600 whatever the umask. Nothing inside is followed: entries are opened with
``O_NOFOLLOW``, scans and eviction use ``lstat`` and never descend a symlinked folder, so a planted
link cannot make eviction delete a file outside the cache. An entry is served only if it is a regular
file of ours of the listed size and, when the server gave an md5, its md5 matches (checked at its first
open in this process and again whenever it changed since); one that does not is dropped and read from
the server instead.

Thread-safe: one lock guards the size accounting and eviction; files are renamed atomically.
"""

from __future__ import annotations

import hashlib
import logging
import os
import stat
import threading
import time
from collections.abc import Iterator
from pathlib import Path

from xnatfs.errors import InsecureCacheDir
from xnatfs.localpaths import private_dir

log = logging.getLogger(__name__)

SUFFIX = ".data"
_HASH_CHUNK = 1024 * 1024


class DiskCache:
    """Complete copies of remote files under ``directory``, at most ``max_bytes`` in total."""

    def __init__(self, directory: str | os.PathLike[str], max_bytes: int) -> None:
        """No I/O: :meth:`create` makes and checks the folder (what the daemon calls)."""
        self.directory = Path(directory)
        self.max_bytes = max_bytes
        self._lock = threading.Lock()
        self._total: int | None = None
        #: entries whose md5 was checked: key -> (st_dev, st_ino, st_size, st_mtime_ns) when checked
        self._verified: dict[str, tuple[int, int, int, int]] = {}

    @classmethod
    def create(cls, directory: str | os.PathLike[str], max_bytes: int) -> DiskCache:
        """A cache in ``directory``, made 0700 or checked to be private
        (:class:`~xnatfs.errors.InsecureCacheDir` otherwise: another user could read or plant entries)."""
        return cls(private_dir(directory, what="cache directory (--cache-dir)"), max_bytes)

    @staticmethod
    def key(uri: str, size: int, md5: str = "", mtime: float | None = None) -> str:
        stamp = md5.lower() if md5 else f"mtime={mtime or 0:.0f}"
        return hashlib.sha256(f"{uri}\n{size}\n{stamp}".encode("utf-8", "surrogateescape")).hexdigest()

    def _path(self, key: str) -> Path:
        return self.directory / key[:2] / (key + SUFFIX)

    def open(self, key: str, size: int, md5: str = "") -> int | None:
        """A read-only descriptor of the cached copy, or None (absent, not a regular file of ours, of the
        wrong size, or, with ``md5``, of the wrong content: then it is removed)."""
        path = self._path(key)
        try:
            fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
        except OSError:
            return None
        try:
            info = os.fstat(fd)
            if not stat.S_ISREG(info.st_mode) or info.st_uid != os.geteuid() or info.st_size != size:
                raise ValueError("not a complete entry of ours")
            if md5 and self._verified.get(key) != _identity(info) and _md5_of(fd) != md5.lower():
                log.warning("A cached copy in %s does not match the server's md5; removed, reading from the server",
                            self.directory)
                self._drop(path)
                raise ValueError("md5 mismatch")
            now = time.time()
            os.utime(fd, (now, now))
            if md5:
                self._verified[key] = _identity(os.fstat(fd))
        except (OSError, ValueError):
            os.close(fd)
            return None
        return fd

    def _drop(self, path: Path) -> None:
        try:
            path.unlink()
        except OSError as exc:
            log.debug("could not remove %s: %s", path, exc)
        with self._lock:
            self._total = None

    def writer(self, key: str, size: int, md5: str = "") -> CacheWriter | None:
        """A writer for a new entry, or None if the file cannot fit at all."""
        if size > self.max_bytes or size <= 0:
            return None
        return CacheWriter(self, key, size, md5)

    def _complete(self, key: str, part: Path, size: int, md5: str = "") -> None:
        target = self._path(key)
        os.replace(part, target)
        if md5:  # checked while it was written
            try:
                self._verified[key] = _identity(os.lstat(target))
            except OSError:
                pass
        with self._lock:
            total = self._scan_total() + size if self._total is None else self._total + size
            self._total = total
            if total > self.max_bytes:
                self._evict_locked()

    def _entries(self) -> Iterator[tuple[os.stat_result, Path]]:
        """Every complete entry: regular files ``<2 hex>/<key>.data`` in real sub-folders; nothing behind
        a symlink is looked at (``lstat`` only)."""
        try:
            folders = list(os.scandir(self.directory))
        except OSError:
            return
        for folder in folders:
            if not folder.is_dir(follow_symlinks=False):
                continue
            try:
                entries = list(os.scandir(folder.path))
            except OSError:
                continue
            for entry in entries:
                if not entry.name.endswith(SUFFIX) or not entry.is_file(follow_symlinks=False):
                    continue
                try:
                    yield entry.stat(follow_symlinks=False), Path(entry.path)
                except OSError:
                    continue

    def _scan_total(self) -> int:
        return sum(info.st_size for info, _ in self._entries())

    def _evict_locked(self) -> None:
        entries = sorted((info.st_mtime, info.st_size, path) for info, path in self._entries())
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

    def _subfolder(self, key: str) -> Path:
        """The entry's sub-folder, made 0700; OSError if it is anything but a private folder of ours
        (the same rule as the cache folder itself: :func:`~xnatfs.localpaths.private_dir`)."""
        try:
            return private_dir(self._path(key).parent, what="disk cache sub-folder")
        except InsecureCacheDir as exc:
            raise OSError(str(exc)) from None

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
                self._cache._subfolder(self._key)
                fd = os.open(self._part, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
                self._file = os.fdopen(fd, "wb")  # closed in finish/abandon
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
            self._cache._complete(self._key, self._part, self._size, self._md5)
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


def _identity(info: os.stat_result) -> tuple[int, int, int, int]:
    return info.st_dev, info.st_ino, info.st_size, info.st_mtime_ns


def _md5_of(fd: int) -> str:
    digest = hashlib.md5(usedforsecurity=False)
    offset = 0
    while chunk := os.pread(fd, _HASH_CHUNK, offset):
        digest.update(chunk)
        offset += len(chunk)
    return digest.hexdigest()


__all__ = ["DiskCache", "CacheWriter"]
