"""What the mount knows about the server: XNAT objects, resources and files as plain records, and the
:class:`MetadataSource` seam the tree reads them through.

The tree (:mod:`xnatfs.vfs.tree`) turns these records into directories; :mod:`xnatfs.model.catalog`
fills them from XNAT's REST API; unit tests fill them from memory. This is ratarmount's
``MountSource`` idea (style-anchors §1): one small interface between the backend and the filesystem.

Records are immutable and compared by identity: a source returns the *same* record objects while
its cache holds them, so the tree can keep what it derived from a record until the record changes.

Imports the standard library only.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

#: Object kinds, in hierarchy order. Assessors and reconstructions hang off an experiment (session).
PROJECT, SUBJECT, EXPERIMENT, SCAN, ASSESSOR, RECONSTRUCTION = (
    "project", "subject", "experiment", "scan", "assessor", "reconstruction")
OBJECT_KINDS = (PROJECT, SUBJECT, EXPERIMENT, SCAN, ASSESSOR, RECONSTRUCTION)


@dataclass(frozen=True, eq=False)
class ResourceInfo:
    """One resource (a catalog of files) of one object.

    ``uri`` is the resource's own server path (``<owner uri>/resources/<id>``); ``scope_uri`` is the
    object whose merged file listing holds this resource's files (an experiment for its scans,
    assessors and reconstructions, so one request describes all of them).
    """

    id: str
    label: str
    uri: str
    scope_uri: str
    xsi_type: str = "xnat:resourceCatalog"
    format: str = ""
    content: str = ""
    file_count: int | None = None
    file_size: int | None = None
    #: ``in`` for an assessor's or reconstruction's input resources (XNAT keeps them apart from the
    #: ``out`` ones and leaves them out of a session's ``files?all=true``), else ``""``
    role: str = ""


@dataclass(frozen=True, eq=False)
class FileInfo:
    """One file of a resource: its path inside the resource (``/`` separated), size, URI and md5."""

    relpath: str
    size: int
    uri: str
    resource_id: str
    md5: str = ""
    format: str = ""
    content: str = ""
    tags: str = ""


@dataclass(frozen=True, eq=False)
class XObject:
    """A project, subject, experiment, scan, assessor or reconstruction.

    A record built from a listing row has ``resources is None`` (its document was not read yet);
    one built from the object's document (or from a parent document that nests it) has its
    resources and, for containers, ``children`` by kind. ``children`` is None for a kind that the
    document did not describe (a subject document without nested experiments). A subject listing
    that the server joined with the subjects' resources gives each row's record ``listed_resources``
    (None where the listing did not say).
    """

    kind: str
    id: str
    label: str
    xsi_type: str
    uri: str
    mtime: float | None = None
    fields: Mapping[str, Any] = field(default_factory=dict)
    extra: Mapping[str, tuple[Mapping[str, Any], ...]] = field(default_factory=dict)
    children: Mapping[str, tuple[XObject, ...]] | None = None
    resources: tuple[ResourceInfo, ...] | None = None
    #: where this object's files are listed (its own URI, or its session's for scans and assessors)
    scope_uri: str = ""
    #: the project this record was reached through (subjects and experiments): a subject or session
    #: shared into it has this project's label there, and only what was shared is shown under it
    project: str = ""
    listed_resources: tuple[ResourceInfo, ...] | None = None

    @property
    def is_complete(self) -> bool:
        """True if this record came from a document (fields, resources and children are known)."""
        return self.resources is not None

    def children_of(self, kind: str) -> tuple[XObject, ...] | None:
        """The nested objects of ``kind``, or None if this record does not describe them."""
        if self.children is None:
            return None
        return self.children.get(kind)


class MetadataSource(Protocol):
    """Where the tree gets its records. Each call costs at most one request; results are cached by
    the source for its TTL and the same record objects are returned while cached."""

    def projects(self) -> Sequence[XObject]:
        """The projects the user can read (listing rows)."""

    def project(self, project: XObject) -> XObject:
        """The project's document: fields and resources."""

    def subjects(self, project: XObject) -> Sequence[XObject]:
        """The subjects of a project (listing rows)."""

    def subject(self, subject: XObject) -> XObject:
        """The subject's document: fields, resources and, if the server nests them, its experiments."""

    def experiments(self, subject: XObject) -> Sequence[XObject]:
        """The experiments of a subject (listing rows), for servers whose subject document lacks them."""

    def known_subject(self, subject: XObject) -> XObject | None:
        """The subject's document if the source holds it now (no request), else None."""

    def experiments_in(self, project: str, *, load: bool = True) -> Mapping[str, tuple[XObject, ...]] | None:
        """Every experiment in the project (its own and those shared into it, under their labels
        there; listing rows) by subject ID, from one listing; None if the source has no such listing
        (or, with ``load=False``, does not hold it now)."""

    def experiment(self, experiment: XObject) -> XObject:
        """The experiment's document: scans, assessors, reconstructions and resources."""

    def files(self, scope_uri: str) -> Sequence[FileInfo]:
        """Every file of every resource under ``scope_uri`` (see :attr:`ResourceInfo.scope_uri`)."""

    def document(self, obj: XObject, fmt: str) -> bytes:
        """The object's document as the server renders it (``fmt`` is ``xml``)."""

    def changes(self) -> int:
        """A counter that grows whenever cached records are forgotten (a write, a refresh): what was
        derived from the records while it held one value may be reused only while it still does."""


__all__ = ["XObject", "ResourceInfo", "FileInfo", "MetadataSource", "OBJECT_KINDS",
           "PROJECT", "SUBJECT", "EXPERIMENT", "SCAN", "ASSESSOR", "RECONSTRUCTION"]
