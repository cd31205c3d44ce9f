"""Every change the mount can make, and what it refuses, decided in one place.

:class:`Writes` composes the spool (:mod:`xnatfs.vfs.spool`), the import directory
(:mod:`xnatfs.vfs.imports`) and resource writes (:mod:`xnatfs.vfs.resource_writes`), and turns each
file-system call into one of them or into a refusal with a fitting errno:

=====================================================  ==============================================
``--read-only`` (any change)                           EROFS (the kernel also refuses: ``ro`` mount)
a file in ``import/<project>/``                        spooled, imported on close (ImportArea)
``mkdir`` in ``resources/``, files in a resource       ResourceWrites
``rm``/``rmdir`` on the server                         only with ``--allow-delete``, else EACCES
anything in ``prearchive/`` (a read-only view)         EACCES
files or folders anywhere else (``projects/P/x``)      EACCES: XNAT has nowhere to put them
renames, links, symlinks, device nodes                 EPERM: XNAT cannot rename or link
``chmod``/``chown``/``utimes`` of server objects        EPERM: XNAT keeps no modes, owners or times —
                                                       unless they ask for what is there already
                                                       (``chown`` to the mounting user, ``chmod 644``
                                                       of a ``0644`` file), which succeeds
``chmod``/``utimes`` of a local file being written      applied to the local copy (``cp -p`` works);
                                                       the server does not keep them
``truncate`` of a server file (not ``O_TRUNC``)         EPERM: XNAT replaces files whole
extended attributes                                    ENOTSUP
=====================================================  ==============================================

Thread-safe (the parts are).
"""

from __future__ import annotations

import errno as _errno
import logging
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

from xnatfs.errors import NotFound, XNATError
from xnatfs.transport.session import XNATSession
from xnatfs.vfs.imports import IMPORT, ImportArea
from xnatfs.vfs.naming import split_path
from xnatfs.vfs.nodes import Node, NodeKind, writable
from xnatfs.vfs.outbox import Entry, Handle
from xnatfs.vfs.outcomes import Refused
from xnatfs.vfs.prearchive_view import PREARCHIVE
from xnatfs.vfs.resource_writes import FILES, RESOURCES, ResourceWrites
from xnatfs.vfs.spool import Spool, default_spool_root
from xnatfs.vfs.writer import XNATWriter


log = logging.getLogger(__name__)


class ReadOnlyError(XNATError):
    """A change on a read-only mount."""

    errno = _errno.EROFS
    log_level = logging.DEBUG


#: what ``on_changed`` is told changed: a file listing, or an object's resources
FILES_CHANGED, RESOURCES_CHANGED = FILES, RESOURCES


@dataclass(frozen=True)
class WriteSettings:
    """``--read-only``, ``--allow-delete``, ``--import-destination`` and where the spool lives."""

    read_only: bool = True
    allow_delete: bool = False
    import_destination: str = "prearchive"
    spool_root: Path | None = None


def top_of(path: str) -> str:
    parts = split_path(path)
    return parts[0] if parts else ""


def in_resources(node: Node) -> bool:
    """True for the archive entries a writable mount lets the user change."""
    return node.kind in (NodeKind.RESOURCE, NodeKind.FOLDER, NodeKind.FILE) or (
        node.kind is NodeKind.COLLECTION and node.collection == RESOURCES)


class Writes:
    """The write side of the mount (see the module docstring)."""

    def __init__(self, session: XNATSession, settings: WriteSettings, *, ttl: float = 60.0,
                 mount_time: float | None = None, on_imported: Callable[[], None] | None = None,
                 on_changed: Callable[[str, str], None] | None = None) -> None:
        self.settings = settings
        self.read_only = settings.read_only
        self.spool = Spool(settings.spool_root or default_spool_root())
        self.writer = XNATWriter(session)
        self.imports = ImportArea(self.writer, self.spool, destination=settings.import_destination, ttl=ttl,
                                  read_only=settings.read_only, on_imported=on_imported, mount_time=mount_time)
        self.resources = ResourceWrites(self.writer, self.spool, allow_delete=settings.allow_delete,
                                        on_changed=on_changed)
        kept = [] if settings.read_only else self.spool.leftovers()
        if kept:
            log.warning("%d file(s) that earlier mounts could not upload are still kept in %s (remove them when "
                        "no longer needed)", len(kept), self.spool.root)

    def close(self) -> None:
        """Unmount: kept files stay in the spool (logged); everything else is removed."""
        kept = self.imports.close() + self.resources.close()
        self.spool.close(keep=kept)

    # -- what the archive tree shows ----------------------------------------------------------------

    def shown(self, node: Node) -> Node:
        """An archive node with the owner's write permission where the user may write (not read-only)."""
        if self.read_only or not in_resources(node) or node.stat.mode & 0o200:
            return node
        return replace(node, stat=writable(node.stat))

    def local_node(self, path: str) -> Node | None:
        return None if self.read_only else self.resources.local_node(path)

    def local_children(self, path: str) -> list[Node]:
        return [] if self.read_only else self.resources.local_children(path)

    # -- files ----------------------------------------------------------------------------------------

    def check_change(self, path: str) -> None:
        """EROFS on a read-only mount, EACCES in the prearchive view; the caller refuses the rest."""
        self._writable(path)

    def _writable(self, path: str) -> str:
        if self.read_only:
            raise ReadOnlyError(f"The mount is read-only (--read-only): {path}")
        top = top_of(path)
        if top == PREARCHIVE:
            raise Refused(f"The prearchive view is read-only: {path}", _errno.EACCES)
        return top

    def create(self, path: str, mode: int, lookup: Callable[[str], Node]) -> Handle:
        if self._writable(path) == IMPORT:
            return self.imports.create(path, mode)
        parent = lookup(path.rsplit("/", 1)[0] or "/")
        return self.resources.create(path, mode, parent)

    def open(self, node: Node, flags: int) -> Handle:
        """Open a local file (read or write), or a server file for replacing (``O_TRUNC``)."""
        write = bool(flags & (os.O_WRONLY | os.O_RDWR | os.O_APPEND)) or bool(flags & os.O_TRUNC)
        truncate = bool(flags & os.O_TRUNC)
        if write:
            top = self._writable(node.path)
            if top == IMPORT:
                return self.imports.open(node, write=True, truncate=truncate)
            return self.resources.open(node, write=True, truncate=truncate, append=bool(flags & os.O_APPEND))
        outbox = self.imports if top_of(node.path) == IMPORT else self.resources
        return outbox.reopen(node.local, write=False, truncate=False)

    def truncate(self, node: Node, length: int) -> None:
        self._writable(node.path)
        if node.kind is NodeKind.LOCAL and isinstance(node.local, Entry):
            outbox = self.imports if top_of(node.path) == IMPORT else self.resources
            outbox.truncate(node.local, length)
            return
        raise Refused(f"{node.path}: XNAT replaces files whole; they cannot be truncated", _errno.EPERM)

    def unlink(self, node: Node) -> None:
        if self._writable(node.path) == IMPORT:
            self.imports.unlink(node.path)
        else:
            self.resources.unlink(node.path, node)

    # -- directories ----------------------------------------------------------------------------------

    def mkdir(self, path: str, lookup: Callable[[str], Node]) -> None:
        if self._writable(path) == IMPORT:
            if len(split_path(path)) == 2:
                raise Refused(f"The folders of import/ are the projects you may write to; projects are made on "
                              f"the server: {path}", _errno.EACCES)
            raise Refused(f"Only files (zips) can be put in the import directory: {path}", _errno.EPERM)
        parent = lookup(path.rsplit("/", 1)[0] or "/")
        try:
            lookup(path)
        except NotFound:
            pass
        else:
            raise Refused(f"{path} exists", _errno.EEXIST)
        self.resources.mkdir(path, parent)

    def rmdir(self, node: Node, children: list[Node]) -> None:
        if self._writable(node.path) == IMPORT:
            raise Refused(f"The import directory's folders are the projects; they cannot be removed: {node.path}",
                          _errno.EACCES)
        self.resources.rmdir(node.path, node, children)

    # -- attributes -----------------------------------------------------------------------------------

    def chmod(self, node: Node, mode: int) -> None:
        """A local file takes the mode; elsewhere only a mode that changes nothing is accepted."""
        self._writable(node.path)
        if node.kind is NodeKind.LOCAL and isinstance(node.local, Entry):
            node.local.mode = mode & 0o777
            return
        if mode & 0o7777 != node.stat.mode & 0o7777:
            raise Refused(f"{node.path}: XNAT keeps no file modes", _errno.EPERM)

    def chown(self, node: Node, uid: int, gid: int, owner: tuple[int, int]) -> None:
        """Only an owner that changes nothing (the mounting user) is accepted."""
        self._writable(node.path)
        if uid not in (-1, owner[0], 0xFFFFFFFF) or gid not in (-1, owner[1], 0xFFFFFFFF):
            raise Refused(f"{node.path}: XNAT keeps no owners", _errno.EPERM)

    def utimens(self, node: Node, mtime: float | None) -> None:
        """A local file takes the time; elsewhere only a time that changes nothing is accepted."""
        self._writable(node.path)
        if node.kind is NodeKind.LOCAL and isinstance(node.local, Entry):
            node.local.spool.mtime = time.time() if mtime is None else mtime
            return
        if mtime is None or int(mtime) != int(node.stat.mtime):
            raise Refused(f"{node.path}: XNAT keeps no modification times", _errno.EPERM)

    def check_access(self, node: Node, write: bool) -> None:
        """access(2) with W_OK: EROFS on a read-only mount, EACCES where nothing can be written."""
        if not write:
            return
        if self.read_only:
            raise ReadOnlyError("read-only mount")
        if not node.stat.mode & 0o200:  # desktops ask this of every folder: not worth a log line
            raise Refused(f"{node.path} cannot be written", _errno.EACCES, log_level=logging.DEBUG)

    def statfs(self) -> os.statvfs_result | None:
        """The spool disk's sizes (where written files wait), or None on a read-only mount."""
        return None if self.read_only else self.spool.statvfs()


__all__ = ["Writes", "WriteSettings", "ReadOnlyError", "top_of", "in_resources", "FILES_CHANGED",
           "RESOURCES_CHANGED"]
