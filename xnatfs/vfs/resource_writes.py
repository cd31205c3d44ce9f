"""Writing into resources: ``mkdir`` makes a resource, a copied file is uploaded on close, ``rm``/``rmdir``
delete on the server only with ``--allow-delete``.

============================================  ==================================================
``mkdir …/resources/<label>``                 ``PUT <owner>/resources/<label>`` (409 → EEXIST)
``mkdir`` inside a resource                   a local folder (XNAT has no empty folders): files
                                              copied into it are uploaded under its path
new file in a resource (``cp``, ``>``)         spooled; on close ``PUT <resource>/files/<path>``
``cp`` onto an existing file (``O_TRUNC``)     spooled; on close ``PUT …?overwrite=true``
open an existing file to change it in place    EPERM: XNAT replaces files whole, never in part
(no ``O_TRUNC``, or ``O_APPEND``)
``rm`` of a file                              with ``--allow-delete``: ``DELETE <file>``; else EACCES
``rmdir`` of an empty resource                with ``--allow-delete``: ``DELETE <resource>``; else
                                              EACCES; a resource with files: ENOTEMPTY
``rm`` of a kept file, a note, ``rmdir`` of a   local only, always allowed
local folder
a file with a temporary name (rsync's          kept local when closed; ``rename`` to its real name
``.<name>.XXXXXX``, ``*.tmp``…)                uploads it under that name (``rename`` fails with EIO
                                              if the upload does); never renamed: kept at unmount
``rename`` of a local file                     the same: uploaded under the new name, replacing a
                                              server file of that name
``rename`` of a server file                    EPERM: XNAT cannot rename files
``chmod``, ``utimens`` of a resource or a      accepted and ignored: XNAT keeps no modes or times
folder in one                                 (``cp -a`` and ``rsync -a`` set them); a local file
                                              keeps its own, a server file's are refused (EPERM)
============================================  ==================================================

The upload lifecycle (spooling, the attempt on ``close``, killed writers, kept files with
``<name>.error``) is :class:`~xnatfs.vfs.outbox.Outbox`'s. A file that was not accepted stays in the
resource folder as a local file (shadowing a server file of the same name) until it is removed or
copied again. An empty file is never sent: XNAT refuses empty uploads.

Thread-safe (the outbox is; local folders have their own lock).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from xnatfs.errors import Conflict, NotAllowed, NotEmpty, NotFound, NotPermitted, NotSent, XNATError
from xnatfs.model.writer import Writer
from xnatfs.vfs.naming import decode_name, is_temporary_name
from xnatfs.vfs.nodes import Node, NodeKind, WRITABLE_DIR_MODE, Stat
from xnatfs.vfs.outbox import Entry, Handle, Outbox
from xnatfs.vfs.outcomes import default_failure_text
from xnatfs.model.records import ResourceInfo
from xnatfs.vfs.spool import Spool

RESOURCES = "resources"
FILES = "files"


@dataclass(frozen=True)
class UploadTarget:
    """Where a spooled file goes: a resource, the path inside it, and whether it replaces a file."""

    resource: ResourceInfo
    relpath: str
    overwrite: bool = False


@dataclass(frozen=True)
class LocalFolder:
    """A folder made with ``mkdir`` inside a resource, not (yet) on the server."""

    resource: ResourceInfo
    relpath: str
    mtime: float


def folder_relpath(node: Node) -> tuple[ResourceInfo, str] | None:
    """The resource and the path inside it of a directory files can be written into, else None."""
    if isinstance(node.local, LocalFolder):
        return node.local.resource, node.local.relpath
    if node.resource is None:
        return None
    if node.kind is NodeKind.RESOURCE:
        return node.resource, ""
    if node.kind is NodeKind.FOLDER:
        return node.resource, "/".join(decode_name(part) for part in node.folder.split("/"))
    return None


def _join(relpath: str, name: str) -> str:
    return f"{relpath}/{name}" if relpath else name


class ResourceWrites(Outbox):
    """Uploads, resource creation and deletions in the archive tree (see the module docstring)."""

    kind = "upload"

    def __init__(self, writer: Writer, spool: Spool, *, allow_delete: bool = False,
                 on_changed: Callable[[str, str], None] | None = None) -> None:
        super().__init__(spool)
        self.writer = writer
        self.allow_delete = allow_delete
        self.on_changed = on_changed
        self._folders: dict[str, LocalFolder] = {}
        self._folders_lock = threading.Lock()

    # -- local entries -------------------------------------------------------------------------------

    def local_node(self, path: str) -> Node | None:
        """A kept or pending file, a note, or a local folder at ``path``; None if there is none."""
        node = self.node(path)
        if node is not None:
            return node
        with self._folders_lock:
            folder = self._folders.get(path)
        if folder is None:
            return None
        return Node(NodeKind.FOLDER, path, Stat(WRITABLE_DIR_MODE, 0, folder.mtime), resource=folder.resource,
                    local=folder)

    def local_children(self, directory: str) -> list[Node]:
        prefix = directory.rstrip("/") + "/"
        with self._folders_lock:
            folders = [p for p in self._folders if p.startswith(prefix) and "/" not in p[len(prefix):]]
        nodes = [self.local_node(p) for p in folders]
        return [n for n in nodes if n is not None] + self.children(directory)

    # -- files ---------------------------------------------------------------------------------------

    def create(self, path: str, mode: int, parent: Node) -> Handle:
        """A new file in the resource folder ``parent``; uploaded when closed."""
        where = folder_relpath(parent)
        if where is None:
            raise NotAllowed(f"Files can only be written into a resource folder: {path}")
        resource, relpath = where
        name = decode_name(path.rsplit("/", 1)[-1])
        return self.start(path, UploadTarget(resource, _join(relpath, name)), mode)

    def open(self, node: Node, *, write: bool, truncate: bool, append: bool = False) -> Handle:
        """Open a local file again, or replace a server file (only whole: ``O_TRUNC``)."""
        if node.kind is NodeKind.LOCAL and isinstance(node.local, Entry):
            if append:
                raise NotPermitted(f"{node.name} can only be written whole, not appended to")
            return self.reopen(node.local, write=write, truncate=truncate)
        if node.kind is NodeKind.FILE and node.file is not None and node.resource is not None:
            if not truncate or append:
                raise NotPermitted(f"{node.name}: XNAT replaces files whole; open it with O_TRUNC (as cp does) to "
                              f"replace it")
            return self.start(node.path, UploadTarget(node.resource, node.file.relpath, overwrite=True),
                              node.stat.mode)
        raise NotAllowed(f"{node.name} cannot be written")

    def rename(self, node: Node, path: str, parent: Node, replaces: Node | None) -> None:
        """Upload the local file ``node`` under ``path`` (see the module docstring's table)."""
        if node.kind is not NodeKind.LOCAL or not isinstance(node.local, Entry):
            raise NotPermitted(f"XNAT cannot rename files: {node.path} → {path}")
        where = folder_relpath(parent)
        if where is None:
            raise NotAllowed(f"Files can only be moved into a resource folder: {path}")
        resource, relpath = where
        overwrite = replaces is not None and replaces.kind is NodeKind.FILE
        target = UploadTarget(resource, _join(relpath, decode_name(path.rsplit("/", 1)[-1])), overwrite=overwrite)
        self.move(node.local, path, target)

    # -- directories ---------------------------------------------------------------------------------

    def mkdir(self, path: str, parent: Node) -> None:
        name = path.rsplit("/", 1)[-1]
        if parent.kind is NodeKind.COLLECTION and parent.collection == RESOURCES and parent.obj is not None:
            self.writer.create_resource(parent.obj.uri, decode_name(name))
            self._changed(parent.obj.uri, RESOURCES)
            return
        where = folder_relpath(parent)
        if where is None:
            raise NotAllowed(f"Only resources (in a resources/ folder) and folders inside them can be made: {path}")
        resource, relpath = where
        with self._folders_lock:
            if path in self._folders:
                raise Conflict(f"{path} exists")
            self._folders[path] = LocalFolder(resource, _join(relpath, decode_name(name)), time.time())

    def rmdir(self, path: str, node: Node, children: list[Node]) -> None:
        if children:
            raise NotEmpty(f"{path} is not empty")
        if isinstance(node.local, LocalFolder):
            with self._folders_lock:
                self._folders.pop(path, None)
            return
        if node.kind is not NodeKind.RESOURCE or node.resource is None:
            raise NotAllowed(f"{path}: only empty resources can be removed")
        if not self.allow_delete:
            raise NotAllowed(f"{path}: deleting on the server needs --allow-delete")
        self.writer.delete_resource(node.resource.uri)
        self._changed(node.resource.uri, RESOURCES)

    def unlink(self, path: str, node: Node) -> None:
        if node.kind in (NodeKind.LOCAL, NodeKind.TEXT):
            if not self.remove(path):
                raise NotFound(f"No such entry: {path}")
            return
        if node.kind is not NodeKind.FILE or node.file is None:
            raise NotAllowed(f"{path} cannot be removed")
        if not self.allow_delete:
            raise NotAllowed(f"{path}: deleting on the server needs --allow-delete")
        self.writer.delete_file(node.file.uri)
        self._changed(node.resource.scope_uri if node.resource else node.file.uri, FILES)

    # -- Outbox hooks --------------------------------------------------------------------------------

    def held(self, entry: Entry) -> bool:
        return is_temporary_name(entry.name)

    def validate(self, entry: Entry) -> None:
        if entry.spool.size == 0:
            raise NotSent(f"{entry.name} was not uploaded: it is empty, and XNAT does not store empty files.")

    def send(self, entry: Entry) -> bytes | None:
        target: UploadTarget = entry.target
        self.writer.put_file(target.resource.uri, target.relpath, entry.spool.path, overwrite=target.overwrite,
                             what=entry.path)
        return None

    def sent(self, entry: Entry) -> None:
        self._changed(entry.target.resource.scope_uri, FILES)
        folder = entry.path.rsplit("/", 1)[0]
        with self._folders_lock:  # the folders above the file exist on the server now
            while folder in self._folders:
                del self._folders[folder]
                folder = folder.rsplit("/", 1)[0]

    def ticket_destination(self, entry: Entry) -> dict[str, Any]:
        target: UploadTarget = entry.target
        return {"resource_uri": target.resource.uri, "relpath": target.relpath, "overwrite": target.overwrite}

    def server(self) -> str:
        return self.writer.server

    def describe_failure(self, entry: Entry, exc: XNATError) -> str:
        if isinstance(exc, Conflict):
            return (f"{entry.name} was not uploaded: a file of that name exists on the server already, and the "
                    f"server keeps it. To replace it, copy onto it again (cp replaces an existing file).")
        return default_failure_text(entry.name, exc)

    def _changed(self, uri: str, what: str) -> None:
        """Tell the caches: the file listing of scope ``uri`` (FILES) or the resources of an object changed."""
        if self.on_changed is not None:
            self.on_changed(uri, what)


__all__ = ["ResourceWrites", "UploadTarget", "LocalFolder", "folder_relpath", "RESOURCES", "FILES"]
