"""The entries of the mounted tree: what kind each is, its attributes, and its extended attributes.

Independent of FUSE: :mod:`xnatfs.fuseops` turns a :class:`Stat` into the dict mfusepy wants.
Everything here is immutable; a node is rebuilt (not changed) when the server's answer changes.

Kinds (DESIGN.md §2):

- ``ROOT`` — the mount point; ``COLLECTION`` — a fixed-name folder of objects or resources
  (``projects``, ``subjects``, ``experiments``, ``scans``, ``assessors``, ``reconstructions``,
  ``resources``);
- ``OBJECT`` — one XNAT object (named by ID or label); ``RESOURCE`` — one resource (by label);
  ``FOLDER`` — a sub-folder of a resource's file paths;
- ``FILE`` — a file stored on the server; ``DOCUMENT`` — ``xnat.json`` / ``xnat.xml`` of an object;
- ``TEXT`` — a small file held in memory (a prearchive session's ``xnat.json``, an import's
  ``.result``, an upload's ``.error``); its bytes are in ``data``;
- ``DERIVED`` — a file made locally from server data (a NIfTI image converted from a scan's DICOM):
  ``local`` is its path on local disk, or None when making it failed (opening it is then EIO);
- ``LOCAL`` — a file written through the mount and held in the local spool (being written, being
  sent, or kept after a failed upload); ``local`` is its entry (:mod:`xnatfs.vfs.outbox`).

Server entries are read-only (directories ``0555``, files ``0444``) except where the mount can write
(resources, the import directory), which are ``0755``/``0644`` when the mount is not read-only.

Imports the standard library and :mod:`xnatfs.model.records` only.
"""

from __future__ import annotations

import enum
import stat as _stat
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from xnatfs.model.records import FileInfo, ResourceInfo, XObject

DIR_MODE = _stat.S_IFDIR | 0o555
FILE_MODE = _stat.S_IFREG | 0o444
#: modes of entries the user may change (resources and the import directory of a writable mount)
WRITABLE_DIR_MODE = _stat.S_IFDIR | 0o755
WRITABLE_FILE_MODE = _stat.S_IFREG | 0o644

#: Extended attribute names (Linux ``user.`` namespace, readable with ``getfattr -d``).
XATTR_ID = "user.xnat.id"
XATTR_XSITYPE = "user.xnat.xsitype"
XATTR_URI = "user.xnat.uri"
XATTR_MD5 = "user.xnat.md5"

#: The per-object documents and the collection folder names.
JSON_DOCUMENT = "xnat.json"
XML_DOCUMENT = "xnat.xml"


class NodeKind(enum.Enum):
    ROOT = "root"
    COLLECTION = "collection"
    OBJECT = "object"
    RESOURCE = "resource"
    FOLDER = "folder"
    FILE = "file"
    DOCUMENT = "document"
    TEXT = "text"
    DERIVED = "derived"
    LOCAL = "local"


@dataclass(frozen=True)
class Stat:
    """The attributes ``stat`` reports: type and permissions, size in bytes, modification time."""

    mode: int
    size: int = 0
    mtime: float = 0.0

    @property
    def is_dir(self) -> bool:
        return _stat.S_ISDIR(self.mode)

    @property
    def nlink(self) -> int:
        return 2 if self.is_dir else 1


def dir_stat(mtime: float) -> Stat:
    return Stat(DIR_MODE, 0, mtime)


def file_stat(size: int, mtime: float) -> Stat:
    return Stat(FILE_MODE, size, mtime)


def writable(stat: Stat) -> Stat:
    """The same attributes with the owner's write permission (``0755`` / ``0644``)."""
    return Stat(WRITABLE_DIR_MODE if stat.is_dir else WRITABLE_FILE_MODE, stat.size, stat.mtime)


@dataclass(frozen=True, eq=False)
class Node:
    """One entry of the tree.

    ``obj`` is the XNAT object the entry belongs to (the object itself for ``OBJECT``, the owner for
    a collection, resource, folder or document); ``resource``/``file`` are set for entries inside a
    resource; ``collection`` names what a ``COLLECTION`` holds (an object kind, or ``resources``);
    ``folder`` is a ``FOLDER``'s path inside its resource; ``document`` is ``json`` or ``xml``;
    ``data`` is a ``TEXT`` node's content; ``local`` is what a local entry stands for (a spooled
    file, a folder made with ``mkdir`` and not yet on the server, …).
    """

    kind: NodeKind
    path: str
    stat: Stat
    xattrs: Mapping[str, str] = field(default_factory=dict)
    obj: XObject | None = None
    resource: ResourceInfo | None = None
    file: FileInfo | None = None
    collection: str = ""
    folder: str = ""
    document: str = ""
    data: bytes = b""
    local: Any = None

    @property
    def name(self) -> str:
        return self.path.rsplit("/", 1)[-1]

    @property
    def is_dir(self) -> bool:
        return self.stat.is_dir

    @property
    def stat_is_final(self) -> bool:
        """Whether a listing's attributes are this entry's own, fit to hand the kernel with its name: a
        document's size is known only once it was fetched (lookup sizes it), and a local entry
        changes while it is written and sent."""
        return self.kind not in (NodeKind.DOCUMENT, NodeKind.LOCAL)

    def __repr__(self) -> str:
        return f"Node({self.kind.value}, {self.path!r}, size={self.stat.size})"


def object_xattrs(obj: XObject) -> dict[str, str]:
    return {XATTR_ID: obj.id, XATTR_XSITYPE: obj.xsi_type, XATTR_URI: obj.uri}


def resource_xattrs(resource: ResourceInfo) -> dict[str, str]:
    return {XATTR_ID: resource.id, XATTR_XSITYPE: resource.xsi_type, XATTR_URI: resource.uri}


def file_xattrs(info: FileInfo) -> dict[str, str]:
    attrs = {XATTR_URI: info.uri}
    if info.md5:
        attrs[XATTR_MD5] = info.md5
    return attrs


__all__ = ["NodeKind", "Stat", "Node", "dir_stat", "file_stat", "writable", "object_xattrs", "resource_xattrs",
           "file_xattrs", "DIR_MODE", "FILE_MODE", "WRITABLE_DIR_MODE", "WRITABLE_FILE_MODE", "XATTR_ID",
           "XATTR_XSITYPE", "XATTR_URI", "XATTR_MD5", "JSON_DOCUMENT", "XML_DOCUMENT"]
