"""The write side of the mount: the spool, the import directory and resource writes, and the rules.

:class:`Writes` composes the spool (:mod:`xnatfs.vfs.spool`), the import directory
(:mod:`xnatfs.vfs.imports`) and resource writes (:mod:`xnatfs.vfs.resource_writes`); each area of
:mod:`xnatfs.vfs.areas` turns file-system calls into one of them or into a refusal with a fitting
errno:

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

import logging
import os
import threading
import weakref
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

from xnatfs.cache.derived import DerivedCache
from xnatfs.model.writer import Writer
from xnatfs.vfs.imports import ImportArea
from xnatfs.vfs.nodes import Node, NodeKind, writable
from xnatfs.vfs.resource_writes import FILES, RESOURCES, ResourceWrites
from xnatfs.vfs.spool import Spool, default_spool_root


log = logging.getLogger(__name__)

#: listings kept as shown (Writes.shown_all)
SHOWN_LISTS_KEPT = 16


#: what ``on_changed`` is told changed: a file listing, or an object's resources
FILES_CHANGED, RESOURCES_CHANGED = FILES, RESOURCES


@dataclass(frozen=True)
class WriteSettings:
    """``--read-only``, ``--allow-delete``, ``--import-destination`` and where the spool lives."""

    read_only: bool = True
    allow_delete: bool = False
    import_destination: str = "prearchive"
    spool_root: Path | None = None


def in_resources(node: Node) -> bool:
    """True for the archive entries a writable mount lets the user change."""
    return node.kind in (NodeKind.RESOURCE, NodeKind.FOLDER, NodeKind.FILE) or (
        node.kind is NodeKind.COLLECTION and node.collection == RESOURCES)


class Writes:
    """The write side of the mount (see the module docstring)."""

    def __init__(self, writer: Writer, settings: WriteSettings, *, ttl: float = 60.0,
                 mount_time: float | None = None, on_imported: Callable[[], None] | None = None,
                 on_changed: Callable[[str, str], None] | None = None) -> None:
        self.settings = settings
        self.read_only = settings.read_only
        #: archive node → that node as shown (see shown())
        self._shown: weakref.WeakKeyDictionary[Node, Node] = weakref.WeakKeyDictionary()
        #: the tree's listings last shown (see shown_all())
        self._shown_lists: DerivedCache[list[Node], list[Node]] = DerivedCache(SHOWN_LISTS_KEPT)
        self._shown_lock = threading.Lock()
        self.spool = Spool(settings.spool_root or default_spool_root())
        self.writer = writer
        self.imports = ImportArea(self.writer, self.spool, destination=settings.import_destination, ttl=ttl,
                                  read_only=settings.read_only, on_imported=on_imported, mount_time=mount_time)
        self.resources = ResourceWrites(self.writer, self.spool, allow_delete=settings.allow_delete,
                                        on_changed=on_changed)
        kept = [] if settings.read_only else self.spool.leftovers()
        if kept:
            log.warning("%d file(s) that earlier mounts could not upload are still kept in %s: 'xnatfs spool "
                        "list' shows them and why, 'xnatfs spool retry' sends them, 'xnatfs spool clear' removes "
                        "them", len(kept), self.spool.root)

    def close(self) -> None:
        """Unmount: kept files stay in the spool (logged); everything else is removed."""
        kept = self.imports.close() + self.resources.close()
        self.spool.close(keep=kept)

    # -- what the archive tree shows ----------------------------------------------------------------

    def shown(self, node: Node) -> Node:
        """An archive node with the owner's write permission where the user may write (not read-only).

        The same node gives the same shown node for as long as the tree keeps it (a weak mapping).
        """
        return node if self.read_only else self._show([node])[0]

    def shown_all(self, nodes: list[Node]) -> list[Node]:
        """:meth:`shown` of each node of a listing: the same list while the tree hands out the same
        listing (:mod:`xnatfs.cache.derived`; not to be changed), so the mount recognises an unchanged
        listing in one comparison and builds nothing per file."""
        return nodes if self.read_only else self._shown_lists.get(nodes, self._show)

    def _show(self, nodes: list[Node]) -> list[Node]:
        shown = []
        with self._shown_lock:
            for node in nodes:
                if not in_resources(node) or node.stat.mode & 0o200:
                    shown.append(node)
                    continue
                result = self._shown.get(node)
                if result is None:
                    result = self._shown[node] = replace(node, stat=writable(node.stat))
                shown.append(result)
        return shown

    def local_node(self, path: str) -> Node | None:
        return None if self.read_only else self.resources.local_node(path)

    def local_children(self, path: str) -> list[Node]:
        return [] if self.read_only else self.resources.local_children(path)

    def statfs(self) -> os.statvfs_result | None:
        """The spool disk's sizes (where written files wait), or None on a read-only mount."""
        return None if self.read_only else self.spool.statvfs()


__all__ = ["Writes", "WriteSettings", "in_resources", "FILES_CHANGED", "RESOURCES_CHANGED"]
