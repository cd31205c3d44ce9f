"""The mounted filesystem as one object without FUSE: look up, list, open and read, with XNAT errors.

:class:`Filesystem` composes the tree (paths → nodes over the cached source), the readers (one per
open file, under one memory budget) and the optional on-disk cache. :mod:`xnatfs.fuseops` is a thin
adapter over it; tests and benchmarks can drive it directly. Errors are :mod:`xnatfs.errors`
classes; turning them into errno values is the adapter's job.

Read-only for now: opening for writing raises :class:`ReadOnlyError` (``EROFS``). Writes (resources,
the import directory) will be added as further node kinds and methods here.

Thread-safe (the parts are).
"""

from __future__ import annotations

import errno as _errno
import logging
import os
import threading
from dataclasses import dataclass
from functools import partial
from typing import Protocol

from xnatfs.errors import XNATError
from xnatfs.vfs.diskcache import DiskCache
from xnatfs.vfs.nodes import Node, NodeKind
from xnatfs.vfs.readpolicy import RangeSupport, ReadBudget, ReaderSettings
from xnatfs.vfs.reader import RemoteFile
from xnatfs.vfs.source import XNATSource
from xnatfs.vfs.tree import TreeSettings, VirtualTree

log = logging.getLogger(__name__)


class ReadOnlyError(XNATError):
    """A write to the read-only mount."""

    errno = _errno.EROFS


class IsADirectory(XNATError):
    """open() of a directory for reading as a file."""

    errno = _errno.EISDIR


class OpenFile(Protocol):
    size: int

    def read(self, offset: int, size: int) -> bytes: ...

    def close(self) -> None: ...


class CachedFile:
    """A file served from the on-disk cache (a complete local copy): ``os.pread`` on one descriptor."""

    def __init__(self, fd: int, size: int) -> None:
        self._fd = fd
        self.size = size

    def read(self, offset: int, size: int) -> bytes:
        return os.pread(self._fd, size, offset)

    def close(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1


class MemoryFile:
    """A small generated file (``xnat.json``, ``xnat.xml``) held in memory."""

    def __init__(self, data: bytes) -> None:
        self._data = data
        self.size = len(data)

    def read(self, offset: int, size: int) -> bytes:
        return self._data[offset: offset + size]

    def close(self) -> None:
        self._data = b""


@dataclass(frozen=True)
class FilesystemStats:
    """Counters for logs and benchmarks."""

    open_files: int
    buffered_bytes: int
    peak_buffered_bytes: int
    live_streams: int


class Filesystem:
    """Paths, listings and open files of one mounted XNAT server (see module docstring)."""

    def __init__(self, source: XNATSource, tree_settings: TreeSettings, reader_settings: ReaderSettings, *,
                 disk_cache: DiskCache | None = None) -> None:
        self.source = source
        self.tree = VirtualTree(source, tree_settings)
        self.reader_settings = reader_settings
        self.budget = ReadBudget(reader_settings.total_budget, reader_settings.max_streams)
        self.ranges = RangeSupport()
        self.disk_cache = disk_cache
        self._open_files = 0
        self._count_lock = threading.Lock()

    def close(self) -> None:
        self.tree.close()

    def lookup(self, path: str) -> Node:
        return self.tree.lookup(path)

    def listdir(self, path: str) -> list[Node]:
        return self.tree.listdir(path)

    def open(self, path: str, *, write: bool = False) -> OpenFile:
        """An open file for reading; raises ReadOnlyError for writes, IsADirectory for directories."""
        if write:
            raise ReadOnlyError(f"The mount is read-only: {path}")
        node = self.tree.lookup(path)
        if node.is_dir:
            raise IsADirectory(f"Is a directory: {path}")
        handle = self._open_node(node)
        with self._count_lock:
            self._open_files += 1
        return handle

    def release(self, handle: OpenFile) -> None:
        with self._count_lock:
            self._open_files -= 1
        handle.close()

    def _open_node(self, node: Node) -> OpenFile:
        if node.kind is NodeKind.DOCUMENT:
            return MemoryFile(self.tree.document_bytes(node))
        info = node.file
        assert info is not None
        sink = None
        if self.disk_cache is not None:
            key = self.disk_cache.key(info.uri, info.size, info.md5, None if info.md5 else node.stat.mtime)
            fd = self.disk_cache.open(key, info.size)
            if fd is not None:
                return CachedFile(fd, info.size)
            sink = self.disk_cache.writer(key, info.size, info.md5)
        return RemoteFile(partial(self.source.open_range, info.uri), info.size, self.reader_settings, self.budget,
                          self.ranges, name=node.path, sink=sink)

    def stats(self) -> FilesystemStats:
        return FilesystemStats(self._open_files, self.budget.used, self.budget.peak, self.budget.streams)


__all__ = ["Filesystem", "FilesystemStats", "ReadOnlyError", "IsADirectory", "OpenFile", "CachedFile", "MemoryFile"]
