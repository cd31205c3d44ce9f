"""Reads that come without an open: a read-only mount tells the kernel it need not send OPEN.

dcm2niix opens every file of a series four times, and each open is a round trip from the kernel
into Python through libfuse's high-level API (OPEN, then FLUSH and RELEASE at the close): about
180 µs per open and close on our machines, against 5 µs for a local file, so the opens of a
1,000-slice series cost more than dcm2niix's own work. When a filesystem answers OPEN with
``ENOSYS``, Linux (since 4.20) stops sending OPEN and RELEASE for the whole mount, keeps each file's
pages across opens (``FOPEN_KEEP_CACHE``; they are dropped when the file's size or mtime changes)
and sends reads with file handle 0; answering FLUSH with ``ENOSYS`` ends the FLUSH calls too. An
open and close then costs what a local one costs. Only a mount that writes nothing can do that: a
written file is sent when it is closed, and the daemon would no longer see the opens that write. So
``--read-only`` mounts do it (:class:`~xnatfs.fuseops.XNATOperations` ``no_open``).

:class:`PathFiles` keeps one open file per path for those reads. It is opened at the path's first
read (where the fetch ahead learns the order in which a program reads a folder), shared by reads in
parallel, and closed once it has been read from its start and to its end (the kernel then holds the
whole file),
when the path names other content (a new listing with another size, time or checksum: the file
changed on the server), when newer ones push it out (at most ``kept`` are open), or at unmount. A
read after that opens it again.

Thread-safe.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Any, Protocol

import cachetools

from xnatfs.errors import RequestTimeout
from xnatfs.vfs.nodes import Node

#: how long a read waits for the same file's open by another read (the open's own requests have
#: their deadlines; this only bounds the wait)
OPEN_WAIT = 300.0
#: files kept open between reads (each holds at most a ranged reader's buffers, a small file's bytes,
#: or a descriptor of the disk cache)
KEPT = 32


class OpenedFile(Protocol):
    size: int

    def read(self, offset: int, size: int) -> bytes: ...

    def close(self) -> None: ...


class PathOpener(Protocol):
    """What :class:`PathFiles` needs of the mounted filesystem (:class:`~xnatfs.vfs.filesystem.Filesystem`)."""

    def lookup(self, path: str) -> Node: ...

    def open(self, path: str, flags: int = ...) -> Any: ...

    def release(self, handle: Any) -> None: ...


def content_version(node: Node) -> tuple[object, ...]:
    """What tells one content of a file from another. Not the node itself: a fresh listing makes new
    nodes for unchanged files, and the views (``bids/``) make a node at every lookup."""
    info = node.file
    return (node.kind, node.stat.size, node.stat.mtime, info.uri if info else "", info.md5 if info else "",
            str(node.local or ""), node.document)


@dataclass(eq=False)
class _Entry:
    node: Node
    version: tuple[object, ...]
    #: set once opened (None while the first read opens it, or if that failed: see ``error``)
    handle: OpenedFile | None = None
    error: BaseException | None = None
    opened: threading.Event = field(default_factory=threading.Event)
    #: the lowest offset read so far: a file counts as read whole once a read reaches its end and one
    #: began at 0 (DICOM tools read a file's tail first, then its head)
    lowest: int | None = None
    users: int = 0
    retired: bool = False
    closed: bool = False


class _Kept(cachetools.LRUCache[str, _Entry]):
    """The open files by path; what the bound pushes out is collected for closing outside the lock."""

    def __init__(self, maxsize: int) -> None:
        super().__init__(maxsize)
        self.pushed_out: list[_Entry] = []

    def popitem(self) -> tuple[str, _Entry]:
        path, entry = super().popitem()
        self.pushed_out.append(entry)
        return path, entry


class PathFiles:
    """One open file per path for reads that came without an open (see the module docstring)."""

    def __init__(self, filesystem: PathOpener, kept: int = KEPT) -> None:
        self._fs = filesystem
        self._lock = threading.Lock()
        self._files = _Kept(kept)

    def read(self, path: str, offset: int, size: int) -> bytes:
        """``size`` bytes of ``path`` from ``offset``; errors of the open or the read are raised."""
        entry = self._acquire(path)
        reached_end = False
        try:
            handle = self._opened(entry)
            data = handle.read(offset, size)
            with self._lock:
                entry.lowest = offset if entry.lowest is None else min(entry.lowest, offset)
                reached_end = entry.lowest == 0 and offset + len(data) >= handle.size
            return data
        finally:
            with self._lock:
                entry.users -= 1
                if reached_end or entry.error is not None:
                    self._retire(path, entry)
                done = self._closable(entry)
            self._close(done)

    def close(self) -> None:
        """Close every file (at unmount); reads in progress finish first with theirs."""
        with self._lock:
            entries = list(self._files.values())
            self._files.clear()
            self._files.pushed_out.clear()
            done = []
            for entry in entries:
                entry.retired = True
                done += self._closable(entry)
        self._close(done)

    def __len__(self) -> int:
        with self._lock:
            return len(self._files)

    def _acquire(self, path: str) -> _Entry:
        """The path's entry, marked in use; a new one (for what the path names now) if it has none or its
        content changed, which the caller then opens (:meth:`_opened`)."""
        node = self._fs.lookup(path)
        version = content_version(node)
        done: list[_Entry] = []
        with self._lock:
            entry = self._files.get(path)
            if entry is not None and entry.version != version:
                self._retire(path, entry)
                done += self._closable(entry)
                entry = None
            created = entry is None
            if entry is None:
                entry = _Entry(node, version)
                self._files[path] = entry
                for pushed in self._files.pushed_out:
                    pushed.retired = True
                    done += self._closable(pushed)
                self._files.pushed_out.clear()
            entry.users += 1
        self._close(done)
        if created:
            self._open(path, entry)
        return entry

    def _open(self, path: str, entry: _Entry) -> None:
        """Open the entry's file; a failure is kept for every read waiting on it (:meth:`_opened`)."""
        try:
            entry.handle = self._fs.open(path)
        except Exception as exc:  # noqa: BLE001 - raised to each read by _opened
            entry.error = exc
        finally:
            entry.opened.set()

    def _opened(self, entry: _Entry) -> OpenedFile:
        """The entry's open file, once the read that opens it has (its error, if that failed)."""
        if not entry.opened.wait(OPEN_WAIT):
            raise RequestTimeout(f"an open of {entry.node.path} took over {OPEN_WAIT:g} s")
        if entry.handle is None:
            raise entry.error or RequestTimeout(f"{entry.node.path} could not be opened")
        return entry.handle

    def _retire(self, path: str, entry: _Entry) -> None:
        """No new read uses ``entry`` (under the lock)."""
        entry.retired = True
        if self._files.get(path) is entry:
            del self._files[path]

    @staticmethod
    def _closable(entry: _Entry) -> list[_Entry]:
        """``[entry]`` if it is retired, unused and not yet closed, marking it closed (under the lock)."""
        if entry.retired and entry.users == 0 and not entry.closed:
            entry.closed = True
            return [entry]
        return []

    def _close(self, entries: list[_Entry]) -> None:
        for entry in entries:
            if entry.handle is not None:
                self._fs.release(entry.handle)


__all__ = ["PathFiles", "KEPT", "content_version"]
