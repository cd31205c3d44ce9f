"""The mounted filesystem as one object without FUSE: look up, list, open, read and write, with XNAT errors.

:class:`Filesystem` composes the archive tree (``/projects``: paths → nodes over the cached source),
the prearchive view (``/prearchive``, :mod:`xnatfs.vfs.prearchive_view`), the write side (``/import``
and resource writes, :mod:`xnatfs.vfs.writes`), the readers (one per open file, under one memory
budget) and the optional on-disk cache. :mod:`xnatfs.fuseops` is a thin adapter over it; tests and
benchmarks can drive it directly. Errors are :mod:`xnatfs.errors` classes; turning them into errno
values is the adapter's job.

Paths are dispatched by their first part. In the archive tree, local entries (files being uploaded
or kept after a failed upload, their ``.error`` notes, folders made with ``mkdir`` inside a resource)
are looked up before the server's and listed with them. Without write settings (or with
``--read-only``) every change raises :class:`ReadOnlyError` (``EROFS``).

Thread-safe (the parts are).
"""

from __future__ import annotations

import errno as _errno
import logging
import os
import threading
from dataclasses import dataclass
from typing import Protocol

from xnatfs.errors import NotFound, XNATError
from xnatfs.model.reading import FileReaders
from xnatfs.settings import ReadSettings
from xnatfs.vfs.diskcache import DiskCache
from xnatfs.vfs.imports import IMPORT
from xnatfs.vfs.nodes import Node, NodeKind
from xnatfs.vfs.outbox import Handle
from xnatfs.vfs.prearchive_view import PREARCHIVE, PrearchiveView
from xnatfs.vfs.source import XNATSource
from xnatfs.vfs.tree import TreeSettings, VirtualTree
from xnatfs.vfs.writes import FILES_CHANGED, ReadOnlyError, Writes, WriteSettings, top_of

log = logging.getLogger(__name__)


class IsADirectory(XNATError):
    """open() of a directory for reading as a file."""

    errno = _errno.EISDIR


class NotADirectoryError_(XNATError):
    """rmdir() of a file."""

    errno = _errno.ENOTDIR


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

    def __init__(self, source: XNATSource, tree_settings: TreeSettings, read_settings: ReadSettings, *,
                 disk_cache: DiskCache | None = None, write_settings: WriteSettings | None = None) -> None:
        self.source = source
        self.tree = VirtualTree(source, tree_settings)
        self.prearchive = PrearchiveView(source.session, ttl=tree_settings.ttl, mount_time=self.tree.mount_time)
        self.writes = Writes(source.session, write_settings or WriteSettings(), ttl=tree_settings.ttl,
                             mount_time=self.tree.mount_time, on_imported=self.forget_all,
                             on_changed=self._changed)
        # the one ranged reader (xnatfs.model.reading), as File.open() uses it; reached through the
        # source's session here only
        self.readers = FileReaders(source.session, read_settings)
        self.disk_cache = disk_cache
        self._open_files = 0
        self._count_lock = threading.Lock()

    def close(self) -> None:
        self.tree.close()
        self.writes.close()

    # -- caches ---------------------------------------------------------------------------------------

    def forget_all(self) -> None:
        """Drop every cached listing (after an import: a new session may be anywhere)."""
        self.source.clear()
        self.prearchive.clear()

    def _changed(self, uri: str, what: str) -> None:
        if what == FILES_CHANGED:
            self.source.forget_files(uri)
        else:
            self.source.clear()

    # -- reading ----------------------------------------------------------------------------------------

    def lookup(self, path: str) -> Node:
        top = top_of(path)
        if top == PREARCHIVE:
            return self.prearchive.lookup(path)
        if top == IMPORT:
            return self.writes.imports.lookup(path)
        local = self.writes.local_node(path) if top else None
        if local is not None:
            return local
        return self.writes.shown(self.tree.lookup(path))

    def listdir(self, path: str) -> list[Node]:
        top = top_of(path)
        if top == PREARCHIVE:
            return self.prearchive.listdir(path)
        if top == IMPORT:
            return self.writes.imports.listdir(path)
        if not top:
            return [*self.tree.listdir(path), self.prearchive.lookup("/" + PREARCHIVE),
                    self.writes.imports.lookup("/" + IMPORT)]
        local = self.writes.local_children(path)
        try:
            server = [self.writes.shown(n) for n in self.tree.listdir(path)]
        except NotFound:
            if not local and self.writes.local_node(path) is None:
                raise
            server = []
        if not local:
            return server
        merged = {n.name: n for n in server}
        merged.update((n.name, n) for n in local)
        return list(merged.values())

    def open(self, path: str, flags: int = os.O_RDONLY) -> OpenFile:
        """An open file: server files and documents for reading, local files for reading or writing, a
        resource's file for replacing (``O_TRUNC``); ReadOnlyError on a read-only mount."""
        node = self.lookup(path)
        if node.is_dir:
            raise IsADirectory(f"Is a directory: {path}")
        wants_write = bool(flags & (os.O_WRONLY | os.O_RDWR | os.O_APPEND | os.O_TRUNC))
        if wants_write or node.kind is NodeKind.LOCAL:
            handle: OpenFile = self.writes.open(node, flags)
        else:
            handle = self._open_node(node)
        self._count(1)
        return handle

    def release(self, handle: OpenFile) -> None:
        self._count(-1)
        handle.close()

    def _count(self, delta: int) -> None:
        with self._count_lock:
            self._open_files += delta

    # -- writing ------------------------------------------------------------------------------------------

    def create(self, path: str, mode: int) -> Handle:
        """A new file (``O_CREAT``), written to the spool and sent when closed."""
        handle = self.writes.create(path, mode, self.lookup)
        self._count(1)
        return handle

    def truncate(self, path: str, length: int) -> None:
        self.writes.truncate(self.lookup(path), length)

    def unlink(self, path: str) -> None:
        self.writes.unlink(self.lookup(path))

    def mkdir(self, path: str) -> None:
        self.writes.mkdir(path, self.lookup)

    def rmdir(self, path: str) -> None:
        node = self.lookup(path)
        if not node.is_dir:
            raise NotADirectoryError_(f"Not a directory: {path}")
        self.writes.rmdir(node, self.listdir(path))

    def chmod(self, path: str, mode: int) -> None:
        self.writes.chmod(self.lookup(path), mode)

    def chown(self, path: str, uid: int, gid: int, owner: tuple[int, int]) -> None:
        self.writes.chown(self.lookup(path), uid, gid, owner)

    def utimens(self, path: str, mtime: float | None) -> None:
        self.writes.utimens(self.lookup(path), mtime)

    def check_change(self, path: str) -> None:
        self.writes.check_change(path)

    def check_access(self, path: str, write: bool) -> Node:
        node = self.lookup(path)
        self.writes.check_access(node, write)
        return node

    def statfs(self) -> os.statvfs_result | None:
        return self.writes.statfs()

    def _open_node(self, node: Node) -> OpenFile:
        if node.kind is NodeKind.DOCUMENT:
            return MemoryFile(self.tree.document_bytes(node))
        if node.kind is NodeKind.TEXT:
            return MemoryFile(node.data)
        info = node.file
        assert info is not None
        sink = None
        if self.disk_cache is not None:
            key = self.disk_cache.key(info.uri, info.size, info.md5, None if info.md5 else node.stat.mtime)
            fd = self.disk_cache.open(key, info.size)
            if fd is not None:
                return CachedFile(fd, info.size)
            sink = self.disk_cache.writer(key, info.size, info.md5)
        return self.readers.open(info.uri, info.size, name=node.path, sink=sink)

    def stats(self) -> FilesystemStats:
        budget = self.readers.budget
        return FilesystemStats(self._open_files, budget.used, budget.peak, budget.streams)


__all__ = ["Filesystem", "FilesystemStats", "ReadOnlyError", "IsADirectory", "OpenFile", "CachedFile", "MemoryFile"]
