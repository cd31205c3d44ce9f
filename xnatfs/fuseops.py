"""The mfusepy ``Operations`` adapter: FUSE callbacks → :class:`~xnatfs.vfs.filesystem.Filesystem`.

This is the one place where errors become errno values (DESIGN.md §2): every callback runs inside
:func:`fuse_errors`, which turns an :class:`~xnatfs.errors.XNATError` into ``FuseOSError(exc.errno)``
(404 → ENOENT, 401/403 → EACCES, 409 → EEXIST, timeouts → ETIMEDOUT, anything else → EIO) and any
other exception into EIO, each with one log line (ENOENT only at debug level: shells and desktops
look up missing names all the time).

What the callbacks report:

- attributes from the tree's nodes: directories ``0555``, files ``0444``, owned by the mounting user,
  sizes and mtimes from the server's listings; ``st_blksize`` 1 MiB so that tools read in big pieces;
- ``readdir`` returns each entry's whole attributes, which the daemon hands the kernel as
  READDIRPLUS (:mod:`xnatfs.daemon.plusfuse`): ``ls -l``, ``find -ls`` and file managers need no
  lookup per entry while the kernel keeps them (``attr_timeout``/``entry_timeout`` = the metadata
  TTL), and ``find`` and ``ls --color`` get each entry's type;
- extended attributes ``user.xnat.id``, ``user.xnat.xsitype``, ``user.xnat.uri`` (and
  ``user.xnat.md5`` on files); on the mount's root, ``user.xnatfs.stats``: the FUSE calls into
  Python by operation, open files and read buffers, the FUSE threads that kept their Python thread
  state (:mod:`xnatfs.threadstates`), as JSON;
- ``statfs``: a read-only mount has no free space; a writable one reports its spool disk; 255-byte
  names.

Writes (the area of the path decides what is allowed, :mod:`xnatfs.vfs.areas`): ``create``/``write`` go to the local spool;
``flush`` — called on every ``close()``, and whose error is ``close()``'s error — sends a written file
and passes the pid of the closing process, so a writer that is being killed is recognised
(:mod:`xnatfs.vfs.procstat`); ``release`` only closes. ``rename``, ``link``, ``symlink``, ``mknod`` are
EPERM and extended attributes ENOTSUP (EROFS on a read-only mount). Refusals are logged at info
level, a failed upload once (by the outbox, at error level).

Open files live in a locked handle table (FUSE calls arrive on several threads). A read-only mount
(``no_open``) answers OPEN and FLUSH with ``ENOSYS``: the kernel then opens and closes files without
calling the daemon, and its reads (file handle 0) are served by path (:mod:`xnatfs.vfs.pathfiles`).
mfusepy is imported here and in :mod:`xnatfs.daemon` only.
"""

from __future__ import annotations

import collections
import ctypes
import dataclasses
import errno
import functools
import itertools
import json
import logging
import os
import threading
import time
from collections.abc import Callable
from typing import Any, TypeVar

import mfusepy

from xnatfs.cache.derived import DerivedCache
from xnatfs.errors import NotPermitted, NotSupported, XNATError
from xnatfs.redact import redact_text
from xnatfs.threadstates import kept_thread_states
from xnatfs.vfs.filesystem import Filesystem, OpenFile
from xnatfs.vfs.nodes import Node
from xnatfs.vfs.outbox import Handle
from xnatfs.vfs.pathfiles import PathFiles

log = logging.getLogger(__name__)

F = TypeVar("F", bound=Callable[..., Any])
NS = 1_000_000_000
BLOCK_SIZE = 1024 * 1024
STATS_XATTR = "user.xnatfs.stats"
#: listings kept for reuse (see XNATOperations._entries)
LISTINGS_KEPT = 8


#: ``fuse_get_context`` called without letting go of the GIL (a ``PyDLL`` function): it only reads a
#: thread-local pointer, and a ctypes call that lets go of the GIL must win it back, which on a busy
#: daemon means waiting for another FUSE thread (dcm2niix's next OPEN runs beside the last RELEASE)
try:
    _get_context = ctypes.PyDLL(None, handle=mfusepy._libfuse._handle).fuse_get_context
    _get_context.restype = ctypes.POINTER(mfusepy.fuse_context)
    _get_context.argtypes = []
except (AttributeError, OSError):  # another mfusepy: its own call, which lets go of the GIL
    _get_context = None


def caller_pid() -> int:
    """The pid of the process whose request the calling FUSE thread serves (inside a callback only)."""
    if _get_context is None:
        return mfusepy.fuse_get_context()[2]
    context = _get_context()
    return context.contents.pid if context else 0


def fuse_errors(func: F) -> F:
    """Run a callback; translate errors to ``FuseOSError`` with one log line (see module docstring)."""

    @functools.wraps(func)
    def wrapper(self: XNATOperations, path: str, *args: Any) -> Any:
        self.calls[func.__name__] += 1  # (under the GIL; a rare lost count is harmless in a diagnostic)
        start = time.perf_counter_ns()
        try:
            return func(self, path, *args)
        except mfusepy.FuseOSError:
            raise
        except XNATError as exc:
            level = getattr(exc, "log_level", logging.DEBUG if exc.errno == errno.ENOENT else logging.ERROR)
            log.log(level, "%s %s: %s (%s)", func.__name__, path, redact_text(str(exc)),
                    errno.errorcode.get(exc.errno, exc.errno))
            raise mfusepy.FuseOSError(exc.errno) from exc
        except Exception as exc:  # noqa: BLE001 - the FUSE boundary: anything unexpected becomes EIO
            log.error("%s %s: unexpected %s: %s", func.__name__, path, type(exc).__name__, exc,
                      exc_info=log.isEnabledFor(logging.DEBUG))
            raise mfusepy.FuseOSError(errno.EIO) from exc
        finally:
            self.call_ns[func.__name__] += time.perf_counter_ns() - start

    return wrapper  # type: ignore[return-value]


class XNATOperations(mfusepy.Operations):
    """FUSE callbacks of an XNAT mount; ``no_open`` only for a mount that writes nothing (see the module
    docstring)."""

    use_ns = True

    def __init__(self, filesystem: Filesystem, *, on_ready: Callable[[], None] | None = None,
                 uid: int | None = None, gid: int | None = None, no_open: bool = False) -> None:
        self.fs = filesystem
        #: the files read without an open, by path (a ``no_open`` mount)
        self._unopened = PathFiles(filesystem) if no_open else None
        self._on_ready = on_ready
        self._uid = os.getuid() if uid is None else uid
        self._gid = os.getgid() if gid is None else gid
        self._handles: dict[int, OpenFile] = {}
        self._lock = threading.Lock()
        self._next_fh = itertools.count(1)
        #: open directories: handle → their entries as listed at open
        self._dirs: dict[int, list[Any]] = {}
        #: the last listings made (the filesystem's list of nodes → their entries)
        self._listed: DerivedCache[list[Node], list[Any]] = DerivedCache(LISTINGS_KEPT)
        #: FUSE calls into Python, by operation (``getfattr -n user.xnatfs.stats MOUNTPOINT``)
        self.calls: collections.Counter[str] = collections.Counter()
        #: time spent in those calls, in nanoseconds by operation (shown in milliseconds)
        self.call_ns: collections.Counter[str] = collections.Counter()

    # -- lifecycle ------------------------------------------------------------------------------------

    def init(self, path: str) -> None:
        """Called once the kernel has accepted the mount: the mount is ready."""
        log.info("Mounted; ready")
        if self._on_ready is not None:
            self._on_ready()

    def destroy(self, path: str) -> None:
        with self._lock:
            handles = list(self._handles.values())
            self._handles.clear()
        for handle in handles:
            handle.close()
        if self._unopened is not None:
            self._unopened.close()
        self.fs.close()
        log.info("Unmounted")

    # -- attributes ---------------------------------------------------------------------------------

    def _attrs(self, node: Node) -> dict[str, int]:
        st = node.stat
        mtime = int(st.mtime * NS)
        return {"st_mode": st.mode, "st_nlink": st.nlink, "st_size": st.size, "st_uid": self._uid,
                "st_gid": self._gid, "st_mtime": mtime, "st_ctime": mtime, "st_atime": mtime,
                "st_blksize": BLOCK_SIZE, "st_blocks": (st.size + 511) // 512}

    @fuse_errors
    def getattr(self, path: str, fh: int | None = None) -> dict[str, int]:
        return self._attrs(self.fs.lookup(path))

    @fuse_errors
    def opendir(self, path: str) -> int:
        """A handle per open directory, holding its listing as it was at open: the kernel reads a big
        folder in chunks (xnatfs.daemon.plusfuse) and each chunk is served from it."""
        entries = self._entries(path)
        fh = next(self._next_fh)
        with self._lock:
            self._dirs[fh] = entries
        return fh

    @fuse_errors
    def readdir(self, path: str, fh: int) -> list[tuple[str, dict[str, int] | int, int] | str]:
        """The listing of the open directory ``fh`` (listed afresh for a handle not from :meth:`opendir`)."""
        with self._lock:
            found = self._dirs.get(fh)
        return found if found is not None else self._entries(path)

    def _entries(self, path: str) -> list[tuple[str, dict[str, int] | int, int] | str]:
        """Names with their whole attributes where they are final: the daemon's FUSE hands those to the
        kernel as READDIRPLUS (xnatfs.daemon.plusfuse), so ``ls -l`` of a big folder costs no lookup
        per name; the others (documents not yet sized, local entries) with their type only.

        While the filesystem hands out the same listing, the same list is returned (the daemon keeps
        what it built for the kernel from it): a warm ``ls -l`` of 5,000 files then builds nothing per
        file (:mod:`xnatfs.cache.derived`).
        """
        return self._listed.get(self.fs.listdir(path), self._entries_of)

    def _entries_of(self, nodes: list[Node]) -> list[tuple[str, dict[str, int] | int, int] | str]:
        entries: list[tuple[str, dict[str, int] | int, int] | str] = [".", ".."]
        entries += [(node.name, self._attrs(node) if node.stat_is_final else node.stat.mode, 0) for node in nodes]
        return entries

    def releasedir(self, path: str, fh: int) -> int:
        with self._lock:
            self._dirs.pop(fh, None)
        return 0

    @fuse_errors
    def access(self, path: str, amode: int) -> None:
        node = self.fs.check_access(path, write=bool(amode & os.W_OK))
        if amode & os.X_OK and not node.is_dir:
            raise mfusepy.FuseOSError(errno.EACCES)

    def stats(self) -> dict[str, Any]:
        """What the mount is doing, for people and benchmarks: FUSE calls by operation, open files and
        the read buffers (the ``user.xnatfs.stats`` attribute of the mount's root, as JSON)."""
        return {"calls": dict(self.calls), "call_ms": {name: round(ns / 1e6, 1) for name, ns in self.call_ns.items()},
                "kept_thread_states": kept_thread_states(), **dataclasses.asdict(self.fs.stats())}

    @fuse_errors
    def getxattr(self, path: str, name: str, position: int = 0) -> bytes:
        if path == "/" and name == STATS_XATTR:
            return json.dumps(self.stats(), sort_keys=True).encode()
        if not name.startswith("user."):
            # ls -l asks every file for its SELinux context and ACL; "not supported" (rather than "no
            # such attribute") lets it remember that for the whole mount and stop asking
            raise mfusepy.FuseOSError(errno.ENOTSUP)
        value = self.fs.lookup(path).xattrs.get(name)
        if value is None:
            raise mfusepy.FuseOSError(mfusepy.ENOATTR)
        return value.encode("utf-8", "surrogateescape")

    @fuse_errors
    def listxattr(self, path: str) -> list[str]:
        return list(self.fs.lookup(path).xattrs) + ([STATS_XATTR] if path == "/" else [])

    def statfs(self, path: str) -> dict[str, int]:
        """A read-only mount has no space; a writable one reports its spool disk (where copies wait)."""
        vfs = self.fs.statfs()
        if vfs is None:
            return {"f_bsize": BLOCK_SIZE, "f_frsize": 4096, "f_blocks": 0, "f_bfree": 0, "f_bavail": 0,
                    "f_files": 0, "f_ffree": 0, "f_favail": 0, "f_namemax": 255}
        return {"f_bsize": BLOCK_SIZE, "f_frsize": vfs.f_frsize, "f_blocks": vfs.f_blocks, "f_bfree": vfs.f_bfree,
                "f_bavail": vfs.f_bavail, "f_files": 0, "f_ffree": 0, "f_favail": 0, "f_namemax": 255}

    # -- files --------------------------------------------------------------------------------------

    def _add(self, handle: OpenFile) -> int:
        with self._lock:
            fh = next(self._next_fh)
            self._handles[fh] = handle
        return fh

    def _handle(self, fh: int | None) -> OpenFile:
        handle = self._handles.get(fh) if fh is not None else None  # one dict lookup is atomic
        if handle is None:
            raise mfusepy.FuseOSError(errno.EBADF)
        return handle

    @fuse_errors
    def open(self, path: str, flags: int) -> int:
        if self._unopened is not None:
            raise mfusepy.FuseOSError(errno.ENOSYS)  # no more OPEN calls: reads come by path
        return self._add(self.fs.open(path, flags))

    @fuse_errors
    def create(self, path: str, mode: int, flags: int = 0) -> int:
        return self._add(self.fs.create(path, mode))

    @fuse_errors
    def read(self, path: str, size: int, offset: int, fh: int) -> bytes:
        if fh == 0 and self._unopened is not None:  # (handles count from 1)
            return self._unopened.read(path, offset, size)
        return self._handle(fh).read(offset, size)

    @fuse_errors
    def write(self, path: str, data: bytes, offset: int, fh: int) -> int:
        handle = self._handle(fh)
        if not isinstance(handle, Handle) or not handle.writable:
            raise mfusepy.FuseOSError(errno.EBADF)
        return handle.write(data, offset)

    @fuse_errors
    def truncate(self, path: str, length: int, fh: int | None = None) -> None:
        handle = self._handles.get(fh) if fh is not None else None
        if isinstance(handle, Handle) and handle.writable:
            handle.truncate(length)
        else:
            self.fs.truncate(path, length)

    @fuse_errors
    def flush(self, path: str, fh: int) -> None:
        """Each close(): a file written here is checked and sent now; its failure is close()'s EIO."""
        if self._unopened is not None:
            raise mfusepy.FuseOSError(errno.ENOSYS)  # nothing is written: no more FLUSH calls
        handle = self._handles.get(fh)
        if isinstance(handle, Handle) and handle.writable:
            handle.flush(caller_pid())

    def fsync(self, path: str, datasync: int, fh: int) -> None:
        """The data is on the local spool disk already; it is sent when the file is closed."""

    @fuse_errors
    def release(self, path: str, fh: int) -> None:
        with self._lock:
            handle = self._handles.pop(fh, None)
        if handle is not None:
            self.fs.release(handle)

    # -- changes (the path's area decides; EROFS on a read-only mount) --------------------------------

    @fuse_errors
    def unlink(self, path: str) -> None:
        self.fs.unlink(path)

    @fuse_errors
    def mkdir(self, path: str, mode: int) -> None:
        self.fs.mkdir(path)

    @fuse_errors
    def rmdir(self, path: str) -> None:
        self.fs.rmdir(path)

    @fuse_errors
    def chmod(self, path: str, mode: int) -> None:
        self.fs.chmod(path, mode)

    @fuse_errors
    def chown(self, path: str, uid: int, gid: int) -> None:
        self.fs.chown(path, uid, gid, (self._uid, self._gid))

    @fuse_errors
    def utimens(self, path: str, times: tuple[int, int] | None = None) -> None:
        self.fs.utimens(path, times[1] / NS if times is not None else None)

    @fuse_errors
    def rename(self, old: str, new: str, flags: int = 0) -> None:
        self.fs.rename(old, new)  # mfusepy passes no renameat2 flags (it drops them for libfuse 3)

    @fuse_errors
    def link(self, target: str, source: str) -> None:
        self.fs.check_change(target)
        raise NotPermitted(f"XNAT has no hard links: {target}")

    @fuse_errors
    def symlink(self, target: str, source: str) -> None:
        self.fs.check_change(target)
        raise NotPermitted(f"XNAT has no symbolic links: {target}")

    @fuse_errors
    def mknod(self, path: str, mode: int, dev: int) -> None:
        self.fs.check_change(path)
        raise NotPermitted(f"XNAT stores only files and folders: {path}")

    @fuse_errors
    def setxattr(self, path: str, name: str, value: bytes, options: int, position: int = 0) -> None:
        self.fs.check_change(path)
        raise NotSupported(f"XNAT keeps no extended attributes: {path}")

    @fuse_errors
    def removexattr(self, path: str, name: str) -> None:
        self.fs.check_change(path)
        raise NotSupported(f"XNAT keeps no extended attributes: {path}")


__all__ = ["XNATOperations", "fuse_errors"]
