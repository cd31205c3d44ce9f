"""The mount's top-level folders as areas: one protocol, one object per first path part.

:class:`~xnatfs.vfs.filesystem.Filesystem` keeps a dict ``{first path part: area}`` and hands every
call to the area that owns the path, so no code outside an area asks which folder a path is in. An
area answers the same operations (:class:`MountArea`); what it does not allow it refuses with an
:mod:`xnatfs.errors` class, whose errno the FUSE adapter returns:

==============  ==================================================================================
``projects/``   the archive (:class:`ProjectsArea`: the tree over the model's catalog, plus the
                files and folders being written into resources)
``import/``     zips copied here are imported (:class:`ImportDirArea`)
``prearchive/`` a read-only view (:class:`PrearchiveArea`); every change is EACCES
``bids/``       each project as a BIDS dataset (:class:`BidsArea`, read-only)
==============  ==================================================================================

The NIfTI view (``…/scans/<ID>/nifti/``) lives inside ``projects/``: :class:`ProjectsArea` hands the
paths below a scan's ``nifti`` to it, adds the ``nifti`` entry to a scan's listing and refuses changes
there.

A new view (NIfTI, BIDS) is a new area: implement :class:`MountArea` (usually by extending
:class:`ReadOnlyArea`) and add it to the dict in ``Filesystem``. Reading a server file or a generated
document is the same for every area (the node says what it is) and stays in ``Filesystem``.

Thread-safe (the parts are).
"""

from __future__ import annotations

import os
import time
from typing import Protocol

from xnatfs.errors import AlreadyExists, IsADirectory, NotAllowed, NotFound, NotPermitted
from xnatfs.vfs.bids_view import BIDS, BidsView
from xnatfs.vfs.imports import IMPORT, ImportArea
from xnatfs.vfs.naming import split_path
from xnatfs.vfs.nifti_view import NiftiView, is_nifti_path, is_scan_path
from xnatfs.vfs.nodes import Node, NodeKind
from xnatfs.vfs.outbox import Entry, Handle, Outbox
from xnatfs.vfs.prearchive_view import PREARCHIVE, PrearchiveView
from xnatfs.vfs.tree import VirtualTree
from xnatfs.vfs.resource_writes import LocalFolder
from xnatfs.vfs.writes import Writes, in_resources

PROJECTS = "projects"


class MountArea(Protocol):
    """What every top-level folder answers. Paths are absolute mount paths (``/projects/P/…``)."""

    name: str

    def lookup(self, path: str) -> Node: ...

    def listdir(self, path: str) -> list[Node]: ...

    def open_local(self, node: Node, flags: int) -> Handle:
        """A local file (being written, or kept after a failed upload), or a server file opened to be replaced."""

    def create(self, path: str, mode: int) -> Handle: ...

    def mkdir(self, path: str) -> None: ...

    def rmdir(self, node: Node, children: list[Node]) -> None: ...

    def unlink(self, node: Node) -> None: ...

    def truncate(self, node: Node, length: int) -> None: ...

    def chmod(self, node: Node, mode: int) -> None: ...

    def utimens(self, node: Node, mtime: float | None) -> None: ...

    def rename(self, old: str, new: str) -> None: ...

    def check_change(self, path: str) -> None:
        """Raise if nothing at ``path`` may change (called before the kernel's own checks pass a change on)."""

    def clear(self) -> None:
        """Forget what is cached (after an import, a new session may be anywhere)."""


def wants_write(flags: int) -> bool:
    """True for an ``open`` that writes (or truncates): a change, asked of the path's area."""
    return bool(flags & (os.O_WRONLY | os.O_RDWR | os.O_APPEND | os.O_TRUNC))


def _local_entry(node: Node) -> Entry | None:
    """The spooled file behind a local node (one being written, or kept after a failed upload)."""
    return node.local if node.kind is NodeKind.LOCAL and isinstance(node.local, Entry) else None


class ReadOnlyArea:
    """An area where nothing changes: every change is :class:`~xnatfs.errors.NotAllowed` (EACCES)."""

    name = ""

    def _refuse(self, path: str) -> NotAllowed:
        return NotAllowed(f"The {self.name} view is read-only: {path}")

    def open_local(self, node: Node, flags: int) -> Handle:
        raise self._refuse(node.path)

    def create(self, path: str, mode: int) -> Handle:
        raise self._refuse(path)

    def mkdir(self, path: str) -> None:
        raise self._refuse(path)

    def rmdir(self, node: Node, children: list[Node]) -> None:
        raise self._refuse(node.path)

    def unlink(self, node: Node) -> None:
        raise self._refuse(node.path)

    def truncate(self, node: Node, length: int) -> None:
        raise self._refuse(node.path)

    def chmod(self, node: Node, mode: int) -> None:
        raise self._refuse(node.path)

    def utimens(self, node: Node, mtime: float | None) -> None:
        raise self._refuse(node.path)

    def rename(self, old: str, new: str) -> None:
        raise self._refuse(old)

    def check_change(self, path: str) -> None:
        raise self._refuse(path)


class _View(Protocol):
    def lookup(self, path: str) -> Node: ...

    def listdir(self, path: str) -> list[Node]: ...

    def clear(self) -> None: ...


class _ViewArea(ReadOnlyArea):
    """A read-only area that a view object answers (its paths, listings and cache)."""

    def __init__(self, view: _View) -> None:
        self.view = view

    def lookup(self, path: str) -> Node:
        return self.view.lookup(path)

    def listdir(self, path: str) -> list[Node]:
        return self.view.listdir(path)

    def clear(self) -> None:
        self.view.clear()


class PrearchiveArea(_ViewArea):
    """``prearchive/``: sessions received but not archived, read-only."""

    name = PREARCHIVE
    view: PrearchiveView


class BidsArea(_ViewArea):
    """``bids/``: every project as a BIDS dataset, read-only."""

    name = BIDS
    view: BidsView


class _ChangesArea:
    """What the writable areas share: local files (in ``outbox``) take modes, times and truncation;
    server objects keep theirs (only a change that changes nothing is accepted)."""

    name = ""
    outbox: Outbox

    def chmod(self, node: Node, mode: int) -> None:
        entry = _local_entry(node)
        if entry is not None:
            entry.mode = mode & 0o777  # cp -p
        elif mode & 0o7777 != node.stat.mode & 0o7777 and not self._ignores_attributes(node):
            raise NotPermitted(f"{node.path}: XNAT keeps no file modes")

    def utimens(self, node: Node, mtime: float | None) -> None:
        entry = _local_entry(node)
        if entry is not None:
            entry.spool.mtime = time.time() if mtime is None else mtime
        elif (mtime is None or int(mtime) != int(node.stat.mtime)) and not self._ignores_attributes(node):
            raise NotPermitted(f"{node.path}: XNAT keeps no modification times")

    def _ignores_attributes(self, node: Node) -> bool:
        """Whether a mode or time change of ``node`` is accepted and ignored rather than refused."""
        return False

    def rename(self, old: str, new: str) -> None:
        raise NotPermitted(f"XNAT cannot rename: {old} → {new}")

    def truncate(self, node: Node, length: int) -> None:
        entry = _local_entry(node)
        if entry is None:
            raise NotPermitted(f"{node.path}: XNAT replaces files whole; they cannot be truncated")
        self.outbox.truncate(entry, length)

    def _reopen(self, node: Node) -> Handle:
        """A local file opened for reading."""
        return self.outbox.reopen(node.local, write=False, truncate=False)

    def check_change(self, path: str) -> None:
        return None

    def clear(self) -> None:
        return None


class ImportDirArea(_ChangesArea):
    """``import/<project>/``: a zip copied here is imported when its writer closes it."""

    name = IMPORT

    def __init__(self, imports: ImportArea) -> None:
        self.imports = self.outbox = imports

    def lookup(self, path: str) -> Node:
        return self.imports.lookup(path)

    def listdir(self, path: str) -> list[Node]:
        return self.imports.listdir(path)

    def open_local(self, node: Node, flags: int) -> Handle:
        if wants_write(flags):
            return self.imports.open(node, write=True, truncate=bool(flags & os.O_TRUNC))
        return self._reopen(node)

    def create(self, path: str, mode: int) -> Handle:
        return self.imports.create(path, mode)

    def mkdir(self, path: str) -> None:
        if len(split_path(path)) == 2:
            raise NotAllowed(f"The folders of import/ are the projects you may write to; projects are made on "
                             f"the server: {path}")
        raise NotPermitted(f"Only files (zips) can be put in the import directory: {path}")

    def rmdir(self, node: Node, children: list[Node]) -> None:
        raise NotAllowed(f"The import directory's folders are the projects; they cannot be removed: {node.path}")

    def unlink(self, node: Node) -> None:
        self.imports.unlink(node.path)


class ProjectsArea(_ChangesArea):
    """``projects/``: the archive tree, with the local files and folders being written into resources
    looked up before the server's and listed with them."""

    name = PROJECTS

    def __init__(self, tree: VirtualTree, writes: Writes, nifti: NiftiView | None = None) -> None:
        self.tree = tree
        self.writes = writes
        self.resources = self.outbox = writes.resources
        #: the ``nifti/`` folders of scans, or None when that view is off
        self.nifti = nifti

    def _in_nifti(self, path: str) -> bool:
        return self.nifti is not None and is_nifti_path(path)

    def check_change(self, path: str) -> None:
        if self._in_nifti(path):
            raise NotAllowed(f"The NIfTI view is read-only: {path}")

    def lookup(self, path: str) -> Node:
        if self._in_nifti(path):
            assert self.nifti is not None
            return self.nifti.lookup(path)
        local = self.writes.local_node(path)
        if local is not None:
            return local
        return self.writes.shown(self.tree.lookup(path))

    def listdir(self, path: str) -> list[Node]:
        if self._in_nifti(path):
            assert self.nifti is not None
            return self.nifti.listdir(path)
        local = self.writes.local_children(path)
        try:
            server = self.writes.shown_all(self.tree.listdir(path))
            if self.nifti is not None and is_scan_path(split_path(path)):
                view = self.nifti.entry(self.tree.lookup(path))
                if view is not None:
                    server = [*server, view]  # (the shown listing is shared: not changed in place)
        except NotFound:
            if not local and self.writes.local_node(path) is None:
                raise
            server = []
        if not local:
            return server
        merged = {n.name: n for n in server}
        merged.update((n.name, n) for n in local)
        return list(merged.values())

    def _parent(self, path: str) -> Node:
        return self.lookup(path.rsplit("/", 1)[0] or "/")

    def open_local(self, node: Node, flags: int) -> Handle:
        if wants_write(flags):
            return self.resources.open(node, write=True, truncate=bool(flags & os.O_TRUNC),
                                       append=bool(flags & os.O_APPEND))
        return self._reopen(node)

    def create(self, path: str, mode: int) -> Handle:
        return self.resources.create(path, mode, self._parent(path))

    def mkdir(self, path: str) -> None:
        parent = self._parent(path)
        try:
            self.lookup(path)
        except NotFound:
            pass
        else:
            raise AlreadyExists(f"{path} exists")
        self.resources.mkdir(path, parent)

    def rmdir(self, node: Node, children: list[Node]) -> None:
        self.resources.rmdir(node.path, node, children)

    def unlink(self, node: Node) -> None:
        self.resources.unlink(node.path, node)

    def rename(self, old: str, new: str) -> None:
        node = self.lookup(old)
        try:
            replaces: Node | None = self.lookup(new)
        except NotFound:
            replaces = None
        if replaces is not None and replaces.is_dir:
            raise IsADirectory(f"{new} is a folder")
        self.resources.rename(node, new, self._parent(new), replaces)

    def _ignores_attributes(self, node: Node) -> bool:
        """Resources and the folders in them: ``cp -a`` and ``rsync -a`` set a copied folder's mode and
        times after its files (a file's are set while it is still local, and kept for it); XNAT keeps
        neither for folders, and refusing would fail a copy whose data all arrived. A server file's are
        still refused: ``touch`` or ``chmod`` of one would otherwise seem to work and change nothing."""
        return node.is_dir and (in_resources(node) or isinstance(node.local, LocalFolder))


def areas_by_name(*areas: MountArea) -> dict[str, MountArea]:
    return {area.name: area for area in areas}


__all__ = ["MountArea", "ReadOnlyArea", "wants_write", "PrearchiveArea", "ImportDirArea", "ProjectsArea", "BidsArea",
           "PROJECTS",
           "areas_by_name"]

