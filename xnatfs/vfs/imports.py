"""``import/<project>/``: a zip of DICOM copied here is sent to XNAT's import service.

Layout: ``/import`` lists the projects the user may add data to (one request, cached for the
metadata TTL); ``/import/<project>/`` holds only local things:

- ``<name>`` while it is written and sent, and afterwards only if it was *not* accepted (kept, with
  its data, readable and removable);
- ``<name>.error`` — why it was not accepted, in words (read-only, removable);
- ``<name>.result`` — after success: the URIs of the sessions the server made, one a line.

The lifecycle (spooling, the attempt on ``close``, a killed writer, failures) is
:class:`~xnatfs.vfs.outbox.Outbox`'s; this module adds the check (a complete zip with DICOM in it,
:func:`~xnatfs.model.zipcheck.check_import_zip`) and the upload (``POST /data/services/import`` to the
prearchive, or to the archive with ``--import-destination archive``). After an import the metadata
caches are dropped (``on_imported``), so the new session shows under ``prearchive/`` or
``projects/`` at once.

Names: ``*.error`` and ``*.result`` cannot be written (they are the notes); names that desktops
create on their own (``.DS_Store``, AppleDouble ``._*``) are refused (EACCES). Only files can be
made here (``mkdir`` → EPERM).

Thread-safe (the outbox is; the project list is a locked TTL cache).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from typing import Any

from xnatfs.cache.ttl import TTLCache
from xnatfs.errors import NotADirectory, NotAllowed, NotFound
from xnatfs.model.writer import Writer
from xnatfs.model.zipcheck import check_import_zip
from xnatfs.vfs.naming import is_probe_name, split_path
from xnatfs.vfs.nodes import Node, NodeKind, dir_stat, writable
from xnatfs.vfs.outbox import NOTE_SUFFIXES, Entry, Handle, Outbox
from xnatfs.vfs.spool import Spool

log = logging.getLogger(__name__)

IMPORT = "import"
DESTINATIONS = ("prearchive", "archive")


class ImportArea(Outbox):
    """The ``/import`` tree (see the module docstring)."""

    kind = "import"

    def __init__(self, writer: Writer, spool: Spool, *, destination: str = "prearchive", ttl: float = 60.0,
                 read_only: bool = False, on_imported: Callable[[], None] | None = None,
                 mount_time: float | None = None) -> None:
        if destination not in DESTINATIONS:
            raise ValueError(f"destination must be one of {DESTINATIONS}")
        super().__init__(spool)
        self.writer = writer
        self.destination = destination
        self.read_only = read_only
        self.on_imported = on_imported
        self.mount_time = time.time() if mount_time is None else mount_time
        self._projects = TTLCache(1, ttl)

    # -- the tree ------------------------------------------------------------------------------------

    def projects(self) -> Sequence[str]:
        """The projects the user may import into (one request per TTL)."""
        return self._projects.get_or_load("projects", self.writer.writable_projects)

    def _dir(self, path: str) -> Node:
        stat = dir_stat(self.mount_time)
        return Node(NodeKind.COLLECTION, path, stat if self.read_only else writable(stat), collection=IMPORT)

    def lookup(self, path: str) -> Node:
        parts = split_path(path)
        if parts[:1] != [IMPORT]:
            raise NotFound(f"Not in the import directory: {path}")
        if len(parts) == 1:
            return self._dir("/" + IMPORT)
        if len(parts) > 3 or is_probe_name(parts[-1]) or parts[1] not in self.projects():
            raise NotFound(f"No such entry: {path}")
        if len(parts) == 2:
            return self._dir(path)
        node = self.node(path)
        if node is None:
            raise NotFound(f"No such entry: {path}")
        return node

    def listdir(self, path: str) -> list[Node]:
        parts = split_path(path)
        if parts == [IMPORT]:
            return [self._dir(f"/{IMPORT}/{p}") for p in self.projects()]
        node = self.lookup(path)
        if len(parts) != 2 or not node.is_dir:
            raise NotADirectory(f"Not a directory: {path}")
        return self.children(path)

    # -- changes -------------------------------------------------------------------------------------

    def create(self, path: str, mode: int) -> Handle:
        """A new file ``import/<project>/<name>`` (O_CREAT): spooled, sent when closed."""
        parts = split_path(path)
        if len(parts) != 3 or parts[0] != IMPORT:
            raise NotAllowed(f"Only files directly inside import/<project>/ can be imported: {path}")
        project, name = parts[1], parts[2]
        if project not in self.projects():
            raise NotFound(f"No project {project} to import into")
        if name.endswith(NOTE_SUFFIXES):
            raise NotAllowed(f"{name}: names ending in .error or .result are the import directory's own notes")
        if is_probe_name(name):
            raise NotAllowed(f"{name}: not imported (a name desktops create on their own)")
        return self.start(path, project, mode)

    def open(self, node: Node, *, write: bool, truncate: bool) -> Handle:
        if node.kind is not NodeKind.LOCAL or not isinstance(node.local, Entry):
            if write:
                raise NotAllowed(f"{node.name} is a note of the import directory and cannot be written")
            raise NotFound(f"{node.path} is not a local file")
        return self.reopen(node.local, write=write, truncate=truncate)

    def unlink(self, path: str) -> None:
        """``rm`` of a kept zip or of a note (local only: nothing on the server changes)."""
        if not self.remove(path):
            raise NotFound(f"No such entry: {path}")

    # -- Outbox hooks --------------------------------------------------------------------------------

    def validate(self, entry: Entry) -> None:
        if entry.spool.size >= 64 * 1024 * 1024:
            log.info("Import %s: checking %d MiB (every member's CRC) before sending", entry.path,
                     entry.spool.size // 2**20)
        members, dicom = check_import_zip(entry.spool.path, entry.name)
        log.info("Import %s: a complete zip, %d file(s), %d DICOM", entry.path, members, dicom)

    def send(self, entry: Entry) -> bytes | None:
        uris = self.writer.import_zip(entry.spool.path, entry.target, self.destination, what=entry.path)
        return ("\n".join(uris) + "\n").encode("utf-8")

    def ticket_destination(self, entry: Entry) -> dict[str, Any]:
        return {"project": entry.target, "destination": self.destination}

    def server(self) -> str:
        return self.writer.server

    def sent(self, entry: Entry) -> None:
        if self.on_imported is not None:
            self.on_imported()


__all__ = ["ImportArea", "IMPORT", "DESTINATIONS"]
