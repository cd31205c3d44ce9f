"""The mounted filesystem as one object without FUSE: look up, list, open, read and write, with XNAT errors.

:class:`Filesystem` composes the archive tree (``/projects``: paths → nodes over the cached source),
the prearchive view (``/prearchive``, :mod:`xnatfs.vfs.prearchive_view`), the write side (``/import``
and resource writes, :mod:`xnatfs.vfs.writes`), the derived views when ``view_settings`` turn them on
(``…/scans/<ID>/nifti/`` and ``/bids``, :mod:`xnatfs.vfs.views`; off by default here, on by default in
``xnatfs mount``), the readers (one per open file, under one memory budget) and the optional on-disk
cache. :mod:`xnatfs.fuseops` is a thin adapter over it; tests and
benchmarks can drive it directly. Errors are :mod:`xnatfs.errors` classes; turning them into errno
values is the adapter's job.

Paths are dispatched by their first part to an area (:mod:`xnatfs.vfs.areas`: ``projects``,
``bids``, ``import``, ``prearchive``), which answers every operation for the paths below it. Without write
settings (or with ``--read-only``) every change raises :class:`ReadOnlyError` (``EROFS``) before any
area is asked. Opening a server file, a generated document or a converted file for reading is the
same in every area and happens here.

Thread-safe (the parts are).
"""

from __future__ import annotations

import functools
import logging
import os
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from xnatfs.errors import (
    ConversionFailed,
    IsADirectory,
    NotADirectory,
    NotFound,
    NotPermitted,
    QuietlyNotAllowed,
    ReadOnlyError,
    XNATError,
)
from xnatfs.cache.ttl import TTLCache
from xnatfs.localpaths import private_dir
from xnatfs.model.records import FileInfo
from xnatfs.model.transfer import ResourceZip
from xnatfs.vfs.diskcache import DiskCache
from xnatfs.vfs.areas import BidsArea, ImportDirArea, MountArea, PrearchiveArea, ProjectsArea, areas_by_name, \
    wants_write
from xnatfs.vfs.naming import split_path
from xnatfs.vfs.nodes import Node, NodeKind
from xnatfs.vfs.outbox import Handle
from xnatfs.vfs.prearchive_view import PrearchiveView
from xnatfs.vfs.prefetch import SiblingPrefetch
from xnatfs.model.connect import Connection
from xnatfs.vfs.tree import TreeSettings, VirtualTree
from xnatfs.vfs.views import NO_VIEWS, ViewSettings, make_views
from xnatfs.vfs.writes import FILES_CHANGED, Writes, WriteSettings

log = logging.getLogger(__name__)


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


class LazyFile:
    """An open file whose content is opened at its first read: the kernel answers repeated opens of a
    file from its page cache (``auto_cache``), so an open that is never read costs nothing."""

    def __init__(self, size: int, opener: Callable[[], OpenFile]) -> None:
        self.size = size
        self._opener: Callable[[], OpenFile] | None = opener
        self._inner: OpenFile | None = None
        self._lock = threading.Lock()

    def read(self, offset: int, size: int) -> bytes:
        with self._lock:
            if self._inner is None:
                if self._opener is None:
                    raise ValueError("read of a closed file")
                self._inner, self._opener = self._opener(), None
            inner = self._inner
        return inner.read(offset, size)

    def close(self) -> None:
        with self._lock:
            inner, self._inner, self._opener = self._inner, None, None
        if inner is not None:
            inner.close()


@dataclass(frozen=True)
class FilesystemStats:
    """Counters for logs and benchmarks."""

    open_files: int
    buffered_bytes: int
    peak_buffered_bytes: int
    live_streams: int
    fetched_ahead: int = 0
    served_ahead: int = 0
    zips_fetched: int = 0
    served_from_zip: int = 0


class Filesystem:
    """Paths, listings and open files of one mounted XNAT server (see module docstring)."""

    def __init__(self, connection: Connection, tree_settings: TreeSettings, *,
                 disk_cache: DiskCache | None = None, write_settings: WriteSettings | None = None,
                 view_settings: ViewSettings = NO_VIEWS) -> None:
        self.connection = connection
        self.source = connection.catalog
        self.tree = VirtualTree(self.source, tree_settings)
        self.prearchive = PrearchiveView(self.source, ttl=tree_settings.ttl, mount_time=self.tree.mount_time)
        self.writes = Writes(connection.writer, write_settings or WriteSettings(), ttl=tree_settings.ttl,
                             mount_time=self.tree.mount_time, on_imported=self.forget_all,
                             on_changed=self._changed)
        #: the derived views (``scans/<ID>/nifti/``, ``bids/``) that ``view_settings`` turn on
        self.views = make_views(self.tree, self._read_whole, view_settings, ttl=tree_settings.ttl)
        #: the top-level folders, each answering for the paths below it (:mod:`xnatfs.vfs.areas`)
        areas: list[MountArea] = [ProjectsArea(self.tree, self.writes, self.views.nifti)]
        if self.views.bids is not None:
            areas.append(BidsArea(self.views.bids))
        self.areas = areas_by_name(*areas, PrearchiveArea(self.prearchive), ImportDirArea(self.writes.imports))
        #: the connection's one ranged reader (xnatfs.model.reading), the one File.open() uses: one budget
        self.readers = connection.context.readers
        #: whole small files fetched ahead while a program reads a folder's files in order
        self.prefetch = SiblingPrefetch(self._read_whole, fetch_zip=self._fetch_zip)
        #: folder path → (its files in listing order, index by URI), for the prefetch's decisions
        self._folder_files: TTLCache = TTLCache(1024, tree_settings.ttl)
        self.disk_cache = disk_cache
        self._open_files = 0
        self._count_lock = threading.Lock()

    def close(self) -> None:
        self.prefetch.close()
        self.tree.close()
        self.writes.close()

    # -- caches ---------------------------------------------------------------------------------------

    def forget_all(self) -> None:
        """Drop every cached listing (after an import: a new session may be anywhere)."""
        self.source.clear()
        for area in self.areas.values():
            area.clear()

    def _changed(self, uri: str, what: str) -> None:
        if what == FILES_CHANGED:
            self.source.forget_files(uri)
        else:
            self.source.clear()

    # -- dispatch -------------------------------------------------------------------------------------

    def _area(self, path: str) -> MountArea:
        parts = split_path(path)
        area = self.areas.get(parts[0]) if parts else None
        if area is None:
            raise NotFound(f"No such entry: {path}")
        return area

    def _changeable(self, path: str) -> MountArea:
        """The area of ``path``, once it is clear that a change may be asked of it (EROFS on ``--read-only``)."""
        if self.writes.read_only:
            raise ReadOnlyError("read-only mount")
        area = self._area(path)
        area.check_change(path)
        return area

    # -- reading ----------------------------------------------------------------------------------------

    def lookup(self, path: str) -> Node:
        if not split_path(path):
            return self.tree.root
        return self._area(path).lookup(path)

    def listdir(self, path: str) -> list[Node]:
        if not split_path(path):
            return [area.lookup("/" + name) for name, area in self.areas.items()]
        return self._area(path).listdir(path)

    def open(self, path: str, flags: int = os.O_RDONLY) -> OpenFile:
        """An open file: server files and documents for reading, local files for reading or writing, a
        resource's file for replacing (``O_TRUNC``); ReadOnlyError on a read-only mount."""
        node = self.lookup(path)
        if node.is_dir:
            raise IsADirectory(f"Is a directory: {path}")
        if wants_write(flags):
            handle: OpenFile = self._changeable(path).open_local(node, flags)
        elif node.kind is NodeKind.LOCAL:
            handle = self._area(path).open_local(node, flags)
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
        handle = self._changeable(path).create(path, mode)
        self._count(1)
        return handle

    def truncate(self, path: str, length: int) -> None:
        self._changeable(path).truncate(self.lookup(path), length)

    def unlink(self, path: str) -> None:
        self._changeable(path).unlink(self.lookup(path))

    def mkdir(self, path: str) -> None:
        self._changeable(path).mkdir(path)

    def rmdir(self, path: str) -> None:
        area = self._changeable(path)
        node = self.lookup(path)
        if not node.is_dir:
            raise NotADirectory(f"Not a directory: {path}")
        area.rmdir(node, self.listdir(path))

    def chmod(self, path: str, mode: int) -> None:
        self._changeable(path).chmod(self.lookup(path), mode)

    def chown(self, path: str, uid: int, gid: int, owner: tuple[int, int]) -> None:
        """Only an owner that changes nothing (the mounting user) is accepted."""
        self._changeable(path)
        if uid not in (-1, owner[0], 0xFFFFFFFF) or gid not in (-1, owner[1], 0xFFFFFFFF):
            raise NotPermitted(f"{path}: XNAT keeps no owners")

    def utimens(self, path: str, mtime: float | None) -> None:
        self._changeable(path).utimens(self.lookup(path), mtime)

    def rename(self, old: str, new: str) -> None:
        """Only a local file (being written, or kept) can be renamed: it is sent under its new name."""
        area = self._changeable(old)
        if self._changeable(new) is not area:
            raise NotPermitted(f"Files cannot be moved between {old} and {new}")
        area.rename(old, new)

    def check_change(self, path: str) -> None:
        self._changeable(path)

    def check_access(self, path: str, write: bool) -> Node:
        """access(2) with W_OK: EROFS on a read-only mount, EACCES where nothing can be written."""
        node = self.lookup(path)
        if write:
            if self.writes.read_only:
                raise ReadOnlyError("read-only mount")
            if not node.stat.mode & 0o200:  # desktops ask this of every folder: not worth a log line
                raise QuietlyNotAllowed(f"{node.path} cannot be written")
        return node

    def statfs(self) -> os.statvfs_result | None:
        return self.writes.statfs()

    def _open_node(self, node: Node) -> OpenFile:
        if node.kind is NodeKind.DOCUMENT:
            return MemoryFile(self.tree.document_bytes(node))
        if node.kind is NodeKind.TEXT:
            return MemoryFile(node.data)
        if node.kind is NodeKind.DERIVED:
            return _open_derived(node)
        info = node.file
        assert info is not None
        return LazyFile(info.size, functools.partial(self._open_file, node, info))

    def _open_file(self, node: Node, info: FileInfo) -> OpenFile:
        """A server file's content, at its first read: from the fetch ahead, the resource's zip, the disk
        cache or the server. Not at open: the kernel serves a file it holds from its page cache
        without a read (``auto_cache``), and dcm2niix opens every file of a series four times and reads
        it through one of them; the fetch ahead learns a program's order from the files it reads."""
        ahead = self.prefetch.take(info)
        self._opened_in_folder(node.path, info)
        if ahead is not None:
            return MemoryFile(ahead)
        members = self.prefetch.zipped(info)
        if members is not None:
            data = self.prefetch.read_zipped(members, info)
            if data is not None:
                return MemoryFile(data)
        return self._open_from_server(node, info)

    def _open_from_server(self, node: Node, info: FileInfo) -> OpenFile:
        sink = None
        if self.disk_cache is not None:
            key = self.disk_cache.key(info.uri, info.size, info.md5, None if info.md5 else node.stat.mtime)
            fd = self.disk_cache.open(key, info.size, info.md5)
            if fd is not None:
                return CachedFile(fd, info.size)
            sink = self.disk_cache.writer(key, info.size, info.md5)
        return self.readers.open(info.uri, info.size, name=node.path, sink=sink)

    def _opened_in_folder(self, path: str, info: FileInfo) -> None:
        """Tell the prefetch which file of its folder was opened (the folder's listing is in memory)."""
        folder = path.rsplit("/", 1)[0] or "/"
        def index() -> tuple[tuple[FileInfo, ...], dict[str, int]]:
            files = tuple(n.file for n in self.tree.listdir(folder) if n.kind is NodeKind.FILE and n.file is not None)
            return files, {f.uri: i for i, f in enumerate(files)}
        try:
            files, by_uri = self._folder_files.get_or_load(folder, index)
        except XNATError:
            return
        position = by_uri.get(info.uri)
        if position is not None:
            self.prefetch.opened(folder, files, position)

    def _fetch_zip(self, files_uri: str, wanted: dict[str, int]) -> ResourceZip:
        """A resource as one zip, for the fetch ahead: on disk in the (private) spool folder."""
        folder = private_dir(self.writes.spool.root, what="spool directory")
        return ResourceZip(self.connection.session, files_uri, wanted, spool_dir=folder,
                           limit=self.prefetch.settings.zip_max_bytes)

    def _read_whole(self, info: FileInfo) -> bytes:
        reader = self.readers.open(info.uri, info.size, name=info.relpath)
        try:
            return reader.read(0, info.size)
        finally:
            reader.close()

    def stats(self) -> FilesystemStats:
        budget = self.readers.budget
        return FilesystemStats(self._open_files, budget.used, budget.peak, budget.streams,
                               self.prefetch.fetched, self.prefetch.hits, self.prefetch.zips, self.prefetch.zip_hits)


def _open_derived(node: Node) -> CachedFile:
    """A converted file on local disk; EIO if its conversion failed or the file is gone or changed."""
    if node.local is None:
        raise ConversionFailed(f"{node.path} could not be made; see conversion.log next to it")
    try:
        fd = os.open(node.local, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
    except OSError as exc:
        raise ConversionFailed(f"{node.path}: its converted file is gone ({exc.strerror}); remount or wait for "
                               f"the listing to expire") from None
    if os.fstat(fd).st_size != node.stat.size:
        os.close(fd)
        raise ConversionFailed(f"{node.path}: its converted file changed size")
    return CachedFile(fd, node.stat.size)


__all__ = ["Filesystem", "FilesystemStats", "ReadOnlyError", "IsADirectory", "OpenFile", "CachedFile", "MemoryFile",
           "LazyFile"]
