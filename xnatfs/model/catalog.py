"""The model's batched loaders: whole levels of the archive as immutable records, one request each.

The object model's per-object access (``project.subjects["S"].experiments``) costs a request per
object; a filesystem walk needs whole levels at once. :class:`Catalog` answers those with XNAT's
batched documents (a subject's document nests its sessions with their scans, assessors,
reconstructions and resources; a session's ``files?all=true`` lists every file below it) and hands
out :mod:`xnatfs.model.records`. It is part of the one access layer: it goes through the
connection's session and its one metadata cache (:class:`~xnatfs.model.base.ModelContext`), so a
write made through the library's objects invalidates what the mount shows, and a record names the
generated object it describes (:meth:`Catalog.object_of`). The mount (:mod:`xnatfs.vfs`) reads
nothing from the server but through it.

Which request answers what (xnat-rest-spec §8–§13):

=========================  =====================================================================
``projects()``             ``GET /data/projects?format=json`` (listing rows)
``project(p)``             ``GET /data/projects/P?format=json`` (fields, resources)
``subjects(p)``            ``GET /data/projects/P/subjects?format=json&columns=…`` (listing rows, joined
                           with each subject's resources: see below)
``subject(s)``             ``GET /data/subjects/S?format=json``: fields, resources and the subject's
                           experiments *with* their scans, assessors, reconstructions and resources
``experiments_in(P)``      ``GET /data/projects/P/experiments?columns=…,subject_ID``: every session of the
                           project, by subject (a walk over 1,000 subjects needs no subject documents)
``experiments(s)``         ``GET /data/projects/P/subjects/S/experiments`` (only if a server's subject
                           document does not nest them)
``experiment(e)``          ``GET /data/experiments/E?format=json``
``files(scope)``           ``GET <scope>/files?format=json`` (``all=true`` for a session): every file of
                           every resource of the object and, for a session, of its scans, assessors
                           and reconstructions, with size, md5 and the resource ID (``cat_ID``)
``document(o, "xml")``     ``GET <uri>?format=xml``
=========================  =====================================================================

A subject listing names the subjects' resources among its ``columns=``
(``xnat:subjectData/resources/resource/label`` …): XNAT's ``QueryOrganizerResource`` takes XML paths
there and joins what they name, one row per resource (xnat-rest-spec §8.1). The rows of a subject
are folded into one record whose ``listed_resources`` are those rows' resources. A server that leaves
the columns out gives records without ``listed_resources`` (the mount then reads each subject's
document, as before); one that refuses them (400, 500) is asked once more without them, and never
again on this connection.

Results are kept in the connection's :class:`~xnatfs.cache.ttl.TTLCache` under keys that start with
the server path they came from (so ``ctx.invalidate(path)`` after a write drops them), and the same
record objects are returned while cached. Concurrent calls for the same key share one request, and a
load that began before an invalidation is not stored (``TTLCache.get_or_load``). Errors are not cached.

Modification times: object records take the document's ``meta.start_date`` (the version's start),
else the listing's ``last_modified``/``insert_date``; file listings carry no time, so a file has its
owner's time. Times are parsed by :mod:`xnatfs.rest.dates` (read as UTC).

Thread-safe.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from datetime import timezone, tzinfo
from types import MappingProxyType
from typing import Any, TypeVar
from urllib.parse import quote, unquote

from xnatfs.errors import ConfigError, ResponseError, XNATError
from xnatfs.model.base import ModelContext, XNATObject
from xnatfs.model.behaviours import (
    AssessorBase,
    ExperimentBase,
    ProjectBase,
    ReconstructionBase,
    ResourceBase,
    ScanBase,
    SubjectBase,
)
from xnatfs.model.records import (
    ASSESSOR,
    EXPERIMENT,
    PROJECT,
    RECONSTRUCTION,
    SCAN,
    SUBJECT,
    FileInfo,
    ResourceInfo,
    XObject,
)
from xnatfs.rest.dates import epoch_of, zone_of
from xnatfs.rest.items import Item, current_item, field_text
from xnatfs.rest.paths import file_resource_key, file_uri_from_listing, normalize, with_data_prefix
from xnatfs.rest.resultset import parse_resultset

log = logging.getLogger(__name__)

T = TypeVar("T")

#: children fields that hold objects or resources (shown as directories, not in xnat.json)
_HIERARCHY_FIELDS = {"experiments/experiment", "scans/scan", "assessors/assessor",
                     "reconstructions/reconstructedImage", "resources/resource", "file", "out/file", "in/file"}
_RESOURCE_FIELDS = ("resources/resource", "file", "out/file", "in/file")
_SESSION_URI = re.compile(r"/data/experiments/[^/]+")
#: a subject listing's columns: the defaults, the modification time, and the subjects' resources
_SUBJECT_RESOURCE = "xnat:subjectData/resources/resource/"
_SUBJECT_RESOURCE_FIELDS = ("xnat_abstractresource_id", "label", "format", "content", "file_count", "file_size")
SUBJECT_COLUMNS = ",".join(["ID", "project", "label", "insert_date", "insert_user", "last_modified",
                            *(_SUBJECT_RESOURCE + name for name in _SUBJECT_RESOURCE_FIELDS)])
#: a project's experiment listing's columns: the defaults, the modification time and the subject
EXPERIMENT_COLUMNS = "ID,project,date,xsiType,label,insert_date,last_modified,subject_ID"
_PREARCHIVE_FILE = re.compile(r"/files/(.+)$")
#: the model family of each record kind (the generated class is looked up by the record's xsi type)
_FAMILIES: dict[str, type[XNATObject]] = {
    PROJECT: ProjectBase, SUBJECT: SubjectBase, EXPERIMENT: ExperimentBase, SCAN: ScanBase, ASSESSOR: AssessorBase,
    RECONSTRUCTION: ReconstructionBase,
}


class Catalog:
    """A :class:`~xnatfs.model.records.MetadataSource` over one connection (see module docstring).

    No I/O in the constructor. A dead server fails fast at the session (``transport.reachability``).
    """

    def __init__(self, ctx: ModelContext) -> None:
        self.ctx = ctx
        #: the server's zone, learnt from its documents (:meth:`_learn_zone`); None until then
        self._zone: tzinfo | None = None
        self._zone_tried = False
        #: whether the server refused a listing whose columns name a joined path (then none is asked)
        self._joins_refused = False

    def _cached(self, key: tuple[str, ...], load: Callable[[], T]) -> T:
        return self.ctx.cache.get_or_load(key, load)

    def clear(self) -> None:
        """Forget every cached record (the next call of each kind sends its request)."""
        self.ctx.cache.clear()

    def changes(self) -> int:
        return self.ctx.cache.generation

    def forget_files(self, scope_uri: str) -> None:
        """Forget the file listing of ``scope_uri`` (after the mount uploaded or deleted a file there)."""
        self.ctx.invalidate(exact=[f"{scope_uri}/files"])

    def object_of(self, record: XObject | ResourceInfo) -> XNATObject:
        """The generated model object a record describes (no request): writes and typed fields go through it."""
        if isinstance(record, ResourceInfo):
            return self.ctx.class_for("xnat:resourceCatalog", ResourceBase.FAMILY_XSI, ResourceBase)(
                self.ctx, record.uri, id=record.id, row={"label": record.label, "xnat_abstractresource_id": record.id})
        family = _FAMILIES[record.kind]
        cls = self.ctx.class_for(record.xsi_type, family.FAMILY_XSI, family)
        row = {key: str(value) for key, value in record.fields.items() if isinstance(value, (str, int, float))}
        return cls(self.ctx, record.uri, row=row, xsi_type=record.xsi_type or None, id=record.id or None)

    # -- MetadataSource ------------------------------------------------------------------------------

    def projects(self) -> Sequence[XObject]:
        def load() -> tuple[XObject, ...]:
            rows = self._rows("/data/projects")
            def record(r: dict[str, str], mtime: float | None) -> XObject:
                return XObject(PROJECT, r["ID"], r["ID"], "xnat:projectData",
                               normalize(r.get("URI") or f"/data/projects/{quote(r['ID'], safe='')}"), mtime, r,
                               scope_uri="")

            rows = [r for r in self._rows("/data/projects") if r.get("ID")]
            if rows:  # (a document without a start_date teaches no zone: its row time read as UTC stands)
                self._learn_zone(record(rows[0], self._row_time(rows[0])))
            return tuple(record(r, self._row_time(r)) for r in rows)
        return self._cached(("/data/projects", "catalog"), load)

    def project(self, project: XObject) -> XObject:
        return self._cached((project.uri, "catalog"), lambda: self._object(project, project.uri))

    def subjects(self, project: XObject) -> Sequence[XObject]:
        def load() -> tuple[XObject, ...]:
            rows = self._joined_rows(f"{project.uri}/subjects", SUBJECT_COLUMNS)
            joined = bool(rows) and _SUBJECT_RESOURCE_ID in _lowered(rows[0])
            first: dict[str, dict[str, str]] = {}  # subject ID → its fields (a joined listing's first row)
            uris: dict[str, str] = {}
            resources: dict[str, list[ResourceInfo]] = {}
            for row in rows:
                ident = row.get("ID")
                if not ident:
                    continue
                if ident not in first:
                    first[ident] = {k: v for k, v in row.items() if not k.lower().startswith(_SUBJECT_RESOURCE_LOWER)}
                    uris[ident] = normalize(row.get("URI") or f"{project.uri}/subjects/{quote(ident, safe='')}")
                    resources[ident] = []
                found = _listed_resource(row, uris[ident])
                if found is not None:
                    resources[ident].append(found)
            return tuple(XObject(SUBJECT, ident, r.get("label", ""), "xnat:subjectData", uris[ident],
                                 self._row_time(r), r, project=project.id,
                                 listed_resources=tuple(resources[ident]) if joined else None)
                         for ident, r in first.items())
        return self._cached((f"{project.uri}/subjects", "catalog"), load)

    def subject(self, subject: XObject) -> XObject:
        return self._cached(self._subject_key(subject), lambda: self._object(subject, subject.uri))

    @staticmethod
    def _subject_key(subject: XObject) -> tuple[str, ...]:
        return (subject.uri, "catalog", subject.project)

    def experiments(self, subject: XObject) -> Sequence[XObject]:
        def load() -> tuple[XObject, ...]:
            project = subject.project or str(subject.fields.get("project", ""))
            path = (f"/data/projects/{quote(project, safe='')}/subjects/{quote(subject.id, safe='')}/experiments"
                    if project else f"{subject.uri}/experiments")
            return tuple(self._experiment_row(r, project) for r in self._rows(path) if r.get("ID"))
        return self._cached((f"{subject.uri}/experiments", "catalog", subject.project), load)

    def _experiment_row(self, row: dict[str, str], project: str) -> XObject:
        """An experiment's record from a listing row (of a subject's or a project's experiments)."""
        return XObject(EXPERIMENT, row.get("ID", ""), row.get("label", ""), row.get("xsiType", ""),
                       normalize(row.get("URI") or f"/data/experiments/{quote(row.get('ID', ''), safe='')}"),
                       self._row_time(row), row, project=project)

    def known_subject(self, subject: XObject) -> XObject | None:
        found = self.ctx.cache.get(self._subject_key(subject))
        return found if isinstance(found, XObject) else None

    def experiments_in(self, project: str, *, load: bool = True) -> Mapping[str, tuple[XObject, ...]] | None:
        path = f"/data/projects/{quote(project, safe='')}/experiments"
        if not load:
            return self.ctx.cache.get((path, "catalog", "by subject"))

        def load() -> Mapping[str, tuple[XObject, ...]] | None:
            rows = [r for r in self._rows(path, {"columns": EXPERIMENT_COLUMNS}) if r.get("ID")]
            if rows and not any(r.get("subject_ID") for r in rows):
                return None  # a server that does not give the subject: each subject's document says
            by_subject: dict[str, list[XObject]] = {}
            for r in rows:
                by_subject.setdefault(r.get("subject_ID", ""), []).append(self._experiment_row(r, project))
            return MappingProxyType({subject: tuple(found) for subject, found in by_subject.items()})
        return self._cached((path, "catalog", "by subject"), load)

    def experiment(self, experiment: XObject) -> XObject:
        return self._cached((experiment.uri, "catalog", experiment.project),
                            lambda: self._object(experiment, experiment.uri))

    def files(self, scope_uri: str) -> Sequence[FileInfo]:
        def load() -> tuple[FileInfo, ...]:
            params = {"all": "true"} if _SESSION_URI.fullmatch(scope_uri) else None
            rows = self._rows(f"{scope_uri}/files", params)
            return tuple(info for info in (_file_info(r) for r in rows) if info is not None)
        return self._cached((f"{scope_uri}/files", "catalog"), load)

    def document(self, obj: XObject, fmt: str) -> bytes:
        def load() -> bytes:
            return self.ctx.session.get(obj.uri, params={"format": fmt}).content
        return self._cached((obj.uri, "catalog", fmt), load)

    # -- the prearchive (cached for the TTL, unlike :class:`~xnatfs.model.prearchive.Prearchive`) ---------

    def prearchive_rows(self, path: str) -> tuple[dict[str, str], ...]:
        """Rows of a prearchive listing (``/data/prearchive/projects``, ``<session>/scans``,
        ``<session>/resources``), with ``url`` given its ``/data`` prefix."""
        def load() -> tuple[dict[str, str], ...]:
            rows = self._rows(path, what="prearchive listing")
            return tuple({**r, "url": with_data_prefix(r["url"])} if r.get("url") else r for r in rows)
        return self._cached((path, "catalog"), load)

    def prearchive_files(self, resource: ResourceInfo) -> tuple[FileInfo, ...]:
        """The files of a prearchive resource (``Name, Size, URI`` rows; no checksum)."""
        def load() -> tuple[FileInfo, ...]:
            rows = self._rows(f"{resource.uri}/files", what="prearchive listing")
            found = (_prearchive_file(row, resource.id) for row in rows)
            return tuple(info for info in found if info is not None)
        return self._cached((f"{resource.uri}/files", "catalog"), load)

    # -- parsing -------------------------------------------------------------------------------------

    def _rows(self, path: str, params: Mapping[str, str] | None = None, *,
              what: str = "listing") -> tuple[dict[str, str], ...]:
        body = self.ctx.session.get_json(path, params=params)
        return parse_resultset(body, what=f"{what} {path}").rows

    def _joined_rows(self, path: str, columns: str) -> tuple[dict[str, str], ...]:
        """A listing asked with ``columns`` that name joined paths; the plain listing from a server that
        refuses them (remembered: it is not asked again)."""
        if not self._joins_refused:
            try:
                return self._rows(path, {"columns": columns})
            except ResponseError as exc:
                if exc.status not in (400, 500):  # (401, 403, 404 … are the listing's own answer)
                    raise
                self._joins_refused = True
                log.info("The server refused a listing with joined columns (%s); listing without them", exc)
        return self._rows(path)

    def _object(self, row: XObject, uri: str) -> XObject:
        item = current_item(self.ctx.session.get_json(uri))
        if self._zone is None:
            self._zone = zone_of(item.meta.get("start_date"))
        return _from_item(item, row.kind, uri, fallback=row, zone=self._zone or timezone.utc)

    # -- the server's time zone -------------------------------------------------------------------------

    def _learn_zone(self, project: XObject) -> None:
        """Learn the server's zone once per connection, from a document's ``meta.start_date`` (the only
        time XNAT prints with its zone), before listing times (which carry none) are read: the first
        project's document, loaded (and cached) through :meth:`project`, which learns it. A server whose
        documents name no known zone is read as UTC."""
        if self._zone_tried:
            return
        self._zone_tried = True
        try:
            self.project(project)
        except XNATError as exc:  # the listing still works; times are then read as UTC
            log.debug("Could not learn the server's time zone from %s: %s", project.uri, exc)
            return
        if self._zone is not None:
            log.info("The server's times are in UTC%s", self._zone.tzname(None)[3:] or "")

    def _row_time(self, row: Mapping[str, str]) -> float | None:
        return row_epoch(row, "last_modified", "insert_date", zone=self._zone or timezone.utc)


def _label_in(item: Item, project: str) -> str | None:
    """The label of a subject or session in ``project``: its own if it lives there, the share's label
    if it is shared into it, None if it is not in ``project`` at all (or ``project`` is unknown: its own)."""
    own = field_text(item.fields.get("label")) or field_text(item.fields.get("ID")) or ""
    home = field_text(item.fields.get("project"))
    if not project or not home or home == project:
        return own
    for share in item.children.get("sharing/share", ()):
        if field_text(share.fields.get("project")) == project:
            return field_text(share.fields.get("label")) or own
    return None


def _from_item(item: Item, kind: str, uri: str, *, fallback: XObject | None = None,
               session_uri: str = "", project: str = "", zone: tzinfo = timezone.utc) -> XObject:
    """An object record (and its nested objects) from an item document.

    ``project`` is the project the object was reached through: a subject's nested sessions are only
    those in that project (its own, or shared into it), each under its label there. A record made from
    a listing row (``fallback``) keeps the row's label, which is the browsed project's."""
    fields = item.fields
    project = project or (fallback.project if fallback else "")
    ident = field_text(fields.get("ID")) or (fallback.id if fallback else "")
    label = ((fallback.label if fallback and kind in (SUBJECT, EXPERIMENT) else "") or field_text(fields.get("label"))
             or (fallback.label if fallback else "") or ident)
    if kind in (PROJECT, SCAN, RECONSTRUCTION):
        label = ident or label
    scope = uri if kind in (PROJECT, SUBJECT, EXPERIMENT) else session_uri
    resources: list[ResourceInfo] = []
    for name in _RESOURCE_FIELDS:
        role = "in" if name == "in/file" else ""
        for res in item.children.get(name, ()):
            rid = field_text(res.fields.get("xnat_abstractresource_id")) or ""
            if not rid:
                continue
            res_uri = f"{uri}/resources/{quote(rid, safe='')}"
            res_scope = scope or uri
            if role:  # listed on their own: a session's files?all=true leaves input resources out
                owner = f"{session_uri}/assessors/{quote(ident, safe='')}" if kind == ASSESSOR and session_uri else uri
                res_uri = res_scope = f"{owner}/in/resources/{quote(rid, safe='')}"
            resources.append(ResourceInfo(
                rid, field_text(res.fields.get("label")) or "", res_uri,
                res_scope, res.xsi_type or "xnat:resourceCatalog", field_text(res.fields.get("format")) or "",
                field_text(res.fields.get("content")) or "", _int(res.fields.get("file_count")),
                _int(res.fields.get("file_size")), role))
    children: dict[str, tuple[XObject, ...]] = {}
    if kind == SUBJECT and "experiments/experiment" in item.children:
        children[EXPERIMENT] = tuple(
            replace(record, label=there, project=project)
            for child in item.children["experiments/experiment"] if child.fields.get("ID")
            for there in (_label_in(child, project),) if there is not None
            for record in (_from_item(
                child, EXPERIMENT, f"/data/experiments/{quote(field_text(child.fields.get('ID')) or '', safe='')}",
                zone=zone),))
    if kind == EXPERIMENT:
        children[SCAN] = tuple(
            _from_item(child, SCAN, f"{uri}/scans/{quote(field_text(child.fields.get('ID')) or '', safe='')}",
                       session_uri=uri, zone=zone)
            for child in item.children.get("scans/scan", ()) if child.fields.get("ID") is not None)
        children[ASSESSOR] = tuple(
            _from_item(child, ASSESSOR, f"/data/experiments/{quote(field_text(child.fields.get('ID')) or '', safe='')}",
                       session_uri=uri, zone=zone)
            for child in item.children.get("assessors/assessor", ()) if child.fields.get("ID"))
        children[RECONSTRUCTION] = tuple(
            _from_item(child, RECONSTRUCTION,
                       f"{uri}/reconstructions/{quote(field_text(child.fields.get('ID')) or '', safe='')}",
                       session_uri=uri, zone=zone)
            for child in item.children.get("reconstructions/reconstructedImage", ()) if child.fields.get("ID"))
    extra = {name: tuple(_flat(child) for child in items)
             for name, items in item.children.items() if name not in _HIERARCHY_FIELDS}
    mtime = epoch_of(item.meta.get("start_date"), zone) or (fallback.mtime if fallback else None)
    xsi_type = item.xsi_type or (fallback.xsi_type if fallback else "")
    return XObject(kind, ident, label, xsi_type, uri, mtime, dict(fields), extra,
                   children if kind in (SUBJECT, EXPERIMENT) and children else
                   ({} if kind != SUBJECT else None), tuple(resources), scope,
                   project if kind in (SUBJECT, EXPERIMENT) else "")


_SUBJECT_RESOURCE_LOWER = _SUBJECT_RESOURCE.lower()
_SUBJECT_RESOURCE_ID = _SUBJECT_RESOURCE_LOWER + "xnat_abstractresource_id"


def _lowered(row: Mapping[str, str]) -> dict[str, str]:
    """A row's columns by lower-cased name: XNAT names a column of an XML path by the path as it
    spells it (lower-cased, xnat-rest-spec §8.1)."""
    return {key.lower(): value for key, value in row.items()}


def _listed_resource(row: Mapping[str, str], subject_uri: str) -> ResourceInfo | None:
    """The resource a joined subject listing row names, or None (a subject without resources)."""
    cells = _lowered(row)
    rid = cells.get(_SUBJECT_RESOURCE_ID, "")
    if not rid:
        return None
    def cell(name: str) -> str:
        return cells.get(_SUBJECT_RESOURCE_LOWER + name, "")
    return ResourceInfo(rid, cell("label"), f"{subject_uri}/resources/{quote(rid, safe='')}", subject_uri,
                        format=cell("format"), content=cell("content"), file_count=_int(cell("file_count") or None),
                        file_size=_int(cell("file_size") or None))


def _flat(item: Item) -> dict[str, Any]:
    """A non-hierarchy child (demographics, share, custom field) as one flat dict for xnat.json."""
    flat: dict[str, Any] = {"xsiType": item.xsi_type} if item.xsi_type else {}
    flat.update(item.fields)
    for name, children in item.children.items():
        flat[name] = [_flat(child) for child in children]
    return flat


def _file_info(row: Mapping[str, str]) -> FileInfo | None:
    """A file listing row → FileInfo; the path inside the resource comes from the URI."""
    uri = row.get("URI", "")
    try:
        relpath, download = file_uri_from_listing(uri, row.get("Name", ""))
    except ConfigError:  # not a file URI, or a path that is no relative path ("..", absolute)
        return None
    resource_id = row.get("cat_ID") or file_resource_key(uri)
    return FileInfo(relpath, _int(row.get("Size")) or 0, download, resource_id, (row.get("digest") or "").lower(),
                    row.get("file_format", ""), row.get("file_content", ""), row.get("file_tags", ""))


def _prearchive_file(row: Mapping[str, str], resource_id: str) -> FileInfo | None:
    uri = normalize(with_data_prefix(row.get("URI", "")))
    match = _PREARCHIVE_FILE.search(uri)
    if match is None:
        return None
    return FileInfo(unquote(match.group(1), errors="surrogateescape"), _int(row.get("Size")) or 0, uri, resource_id)


def row_epoch(row: Mapping[str, str], *keys: str, zone: tzinfo = timezone.utc) -> float | None:
    """The first of ``keys`` in ``row`` that holds a time, as epoch seconds (read in ``zone``)."""
    for key in keys:
        found = epoch_of(row.get(key), zone)
        if found is not None:
            return found
    return None


def _int(value: Any) -> int | None:
    try:
        return int(str(value))
    except (TypeError, ValueError):
        return None


__all__ = ["Catalog", "row_epoch"]
