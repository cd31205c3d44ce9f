"""The local spool: files written into the mount wait on local disk until they are sent.

Owns one private directory per mount (mode ``0700``, ``<spool root>/mount-<pid>-<random>``; the root
itself is made 0700 and refused when another user owns it or others can write to it) and one
:class:`SpoolFile` per file written. Data goes to disk as it arrives (positional writes on one
descriptor), so the daemon's memory stays flat whatever the size of the file; the page cache is the
kernel's. A write that fails (``ENOSPC``, ``EDQUOT``, ``EIO``) is remembered, so a file that lost data
is never sent.

The spool root is ``--spool-dir``, else ``<--cache-dir>/spool``, else ``$XDG_CACHE_HOME/xnatfs/spool``
(``~/.cache/xnatfs/spool``): a disk, not ``/tmp``, which is often a memory filesystem.

At unmount (:meth:`Spool.close`) the files that must not be lost (uploads that failed, kept for the
user) stay where they are and the log names them; the rest is removed, and the directory with it
when it is empty. A kept file has a ticket beside it (``.<file name>.json``: where it was going, on
which server, and why it was not sent), written when it was kept, so the reason survives the mount
and even a killed daemon; :func:`kept_files` reads them for ``xnatfs spool list|retry|clear``.

Thread-safe: each :class:`SpoolFile` has its own lock; ``os.pwrite``/``os.pread`` need no shared offset.
"""

from __future__ import annotations

import itertools
import json
import logging
import os
import re
import secrets
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

from xnatfs.localpaths import default_cache_folder, private_dir

log = logging.getLogger(__name__)

_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


def default_spool_root(cache_dir: Path | None = None) -> Path:
    """``<cache_dir>/spool``, else ``$XDG_CACHE_HOME/xnatfs/spool`` (``~/.cache/xnatfs/spool``)."""
    return default_cache_folder("spool", cache_dir)


def create_exclusive(path: Path) -> int:
    return os.open(path, os.O_RDWR | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)


class SpoolFile:
    """One file on local disk: positional writes and reads, its size, and the first write error."""

    def __init__(self, path: Path, opener: Callable[[Path], int] = create_exclusive) -> None:
        self.path = path
        self._fd = opener(path)
        self.size = 0
        self.mtime = time.time()
        #: the first failed write (data was lost: the file must never be sent)
        self.write_error: OSError | None = None
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"SpoolFile({self.path.name!r}, size={self.size})"

    @property
    def closed(self) -> bool:
        return self._fd < 0

    def write(self, data: bytes, offset: int) -> int:
        """Write ``data`` at ``offset``; raises (and remembers) the OSError of a failed write."""
        view = memoryview(data)
        done = 0
        with self._lock:
            self._check_open()
            try:
                while done < len(view):
                    done += os.pwrite(self._fd, view[done:], offset + done)
            except OSError as exc:
                if self.write_error is None:
                    self.write_error = exc
                raise
            finally:
                self.size = max(self.size, offset + done) if done else self.size
                self.mtime = time.time()
        return done

    def read(self, offset: int, size: int) -> bytes:
        with self._lock:
            self._check_open()
            return os.pread(self._fd, size, offset)

    def truncate(self, length: int) -> None:
        with self._lock:
            self._check_open()
            os.ftruncate(self._fd, length)
            self.size = length
            self.mtime = time.time()

    def free_space(self) -> None:
        """Give the disk space back (after a failed write the partial data is useless)."""
        with self._lock:
            if self._fd >= 0:
                try:
                    os.ftruncate(self._fd, 0)
                except OSError as exc:
                    log.warning("Could not free the space of %s: %s", self.path, exc.strerror)
                self.size = 0

    def open_reader(self) -> BinaryIO:
        """A separate read-only file object (own position) for checking and sending the data."""
        return open(self.path, "rb")  # noqa: SIM115 - the caller closes it

    @property
    def ticket_path(self) -> Path:
        return ticket_path(self.path)

    def write_ticket(self, ticket: dict[str, Any]) -> None:
        """Say beside the file where it was going and why it was kept (replaced atomically, mode 0600)."""
        partial = self.ticket_path.with_name(self.ticket_path.name + ".tmp")
        try:
            fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC | os.O_NOFOLLOW, 0o600)
            with os.fdopen(fd, "w", encoding="utf-8") as out:
                json.dump(ticket, out, indent=1)
            os.replace(partial, self.ticket_path)
        except OSError as exc:
            log.warning("Could not write the note of kept file %s: %s", self.path.name, exc.strerror)

    def discard(self) -> None:
        """Close and delete, with its ticket (idempotent)."""
        with self._lock:
            if self._fd >= 0:
                os.close(self._fd)
                self._fd = -1
            self.path.unlink(missing_ok=True)
            self.ticket_path.unlink(missing_ok=True)

    def close_keeping(self) -> None:
        """Close the descriptor and leave the data on disk (unmount with a kept file)."""
        with self._lock:
            if self._fd >= 0:
                os.close(self._fd)
                self._fd = -1

    def _check_open(self) -> None:
        if self._fd < 0:
            raise OSError(9, f"spool file {self.path.name} is closed")  # EBADF


class Spool:
    """The spool directory of one mount (see the module docstring)."""

    def __init__(self, root: Path, *, opener: Callable[[Path], int] = create_exclusive) -> None:
        """``opener`` creates a file and returns its descriptor (tests pass one that opens /dev/full)."""
        self.root = Path(root)
        self._opener = opener
        self.directory = self.root / f"mount-{os.getpid()}-{secrets.token_hex(4)}"
        self._counter = itertools.count(1)
        self._lock = threading.Lock()
        self._made = False
        self._closed = False

    def _make(self) -> None:
        """Create the directory at the first file (a mount that never writes leaves no trace)."""
        with self._lock:
            if not self._made:
                private_dir(self.root, what="spool directory")  # refused if others could read or plant files
                self.directory.mkdir(mode=0o700)
                self._made = True

    def __repr__(self) -> str:
        return f"Spool({str(self.directory)!r})"

    def new_file(self, name: str) -> SpoolFile:
        """A new empty file; its name on disk keeps the user's name (readable in the spool)."""
        self._make()
        safe = _UNSAFE.sub("_", name)[-100:] or "file"
        return SpoolFile(self.directory / f"{next(self._counter):06d}-{safe}", self._opener)

    def leftovers(self) -> list[Path]:
        """Files earlier mounts kept (uploads that failed then), for a reminder in the log."""
        if not self.root.is_dir():
            return []
        return [kept.path for kept in kept_files(self.root) if kept.path.parent != self.directory]

    def statvfs(self) -> os.statvfs_result:
        """The spool disk's sizes (of the nearest existing folder before the first file)."""
        path = self.directory
        while not path.exists() and path != path.parent:
            path = path.parent
        return os.statvfs(path)

    def close(self, keep: Iterable[SpoolFile] = ()) -> None:
        """Remove everything but ``keep`` (closed, left on disk and logged); the directory if empty."""
        if self._closed:
            return
        self._closed = True
        if not self._made:
            return
        kept = [f for f in keep if f.path.exists()]
        for spooled in kept:
            spooled.close_keeping()
        keep_paths = {f.path for f in kept} | {f.ticket_path for f in kept}
        for path in self.directory.iterdir():
            if path not in keep_paths:
                path.unlink(missing_ok=True)
        if kept:
            log.warning("%d file(s) that were not uploaded are kept in %s: %s", len(kept), self.directory,
                        ", ".join(f.path.name for f in kept))
        else:
            try:
                self.directory.rmdir()
            except OSError as exc:
                log.warning("Could not remove the spool directory %s: %s", self.directory, exc)


def ticket_path(path: Path) -> Path:
    """The ticket of spool file ``path`` (a dot-file: spool files' own names start with a digit)."""
    return path.with_name(f".{path.name}.json")


@dataclass(frozen=True)
class KeptFile:
    """A file a mount kept in the spool (an upload or import that did not go), and its ticket."""

    path: Path
    size: int
    mtime: float
    ticket: dict[str, Any] = field(default_factory=dict)

    @property
    def id(self) -> str:
        """``mount-<pid>-<random>/<file>``: unique under the spool root."""
        return f"{self.path.parent.name}/{self.path.name}"

    @property
    def mount_pid(self) -> int:
        try:
            return int(self.path.parent.name.split("-")[1])
        except (IndexError, ValueError):
            return 0

    def discard(self) -> None:
        self.path.unlink(missing_ok=True)
        ticket_path(self.path).unlink(missing_ok=True)
        try:
            self.path.parent.rmdir()  # the mount's folder, once nothing is left in it
        except OSError:
            pass


def kept_files(root: Path) -> list[KeptFile]:
    """Every file kept under spool ``root`` by any mount, oldest first, with its ticket (``{}`` if none)."""
    found = []
    if not Path(root).is_dir():
        return found
    for folder in Path(root).glob("mount-*"):
        if not folder.is_dir() or folder.is_symlink():
            continue
        for path in folder.iterdir():
            if path.name.startswith(".") or not path.is_file() or path.is_symlink():
                continue
            ticket: dict[str, Any] = {}
            try:
                loaded = json.loads(ticket_path(path).read_text(encoding="utf-8"))
                ticket = loaded if isinstance(loaded, dict) else {}
            except (OSError, ValueError):
                pass
            info = path.stat()
            found.append(KeptFile(path, info.st_size, info.st_mtime, ticket))
    return sorted(found, key=lambda kept: (kept.mtime, kept.id))


__all__ = ["Spool", "SpoolFile", "KeptFile", "default_spool_root", "kept_files", "ticket_path"]
