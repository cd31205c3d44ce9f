"""The mount's XNAT calls: records for the tree (one request each, cached) and ranged file streams.

Which request answers what (xnat-rest-spec §8–§13):

=========================  =====================================================================
``projects()``             ``GET /data/projects?format=json`` (listing rows)
``project(p)``             ``GET /data/projects/P?format=json`` (fields, resources)
``subjects(p)``            ``GET /data/projects/P/subjects?format=json`` (listing rows)
``subject(s)``             ``GET /data/subjects/S?format=json``: fields, resources and the subject's
                           experiments *with* their scans, assessors, reconstructions and resources
``experiments(s)``         ``GET /data/projects/P/subjects/S/experiments`` (only if a server's subject
                           document does not nest them)
``experiment(e)``          ``GET /data/experiments/E?format=json``
``files(scope)``           ``GET <scope>/files?format=json`` (``all=true`` for a session): every file of
                           every resource of the object and, for a session, of its scans, assessors
                           and reconstructions, with size, md5 and the resource ID (``cat_ID``)
``document(o, "xml")``     ``GET <uri>?format=xml``
``open_range(uri, a, b)``  ``GET <file uri>`` with ``Range: bytes=a-b`` (206, or 200 if ignored)
=========================  =====================================================================

After a transport failure (server down or hung) requests fail at once for a moment
(:mod:`xnatfs.vfs.reachability`), so a walk over a dead server does not wait once per directory.

Results are kept in a :class:`~xnatfs.cache.ttl.TTLCache` (TTL and size bound from the mount
options) and the same record objects are returned while cached. Concurrent calls for the same key
share one request (the later callers wait, bounded by the request timeout). Errors are not cached.

Modification times: object records take the document's ``meta.start_date`` (the version's start),
else the listing's ``last_modified``/``insert_date``; file listings carry no time, so a file has its
owner's time. Times without a zone are read as UTC.

Thread-safe.
"""

from __future__ import annotations

import calendar
import logging
import re
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import Future
from concurrent.futures import TimeoutError as FutureTimeout
from typing import Any, TypeVar
from urllib.parse import quote, unquote

from xnatfs.cache.ttl import TTLCache
from xnatfs.errors import RequestTimeout
from xnatfs.rest.items import Item, current_item, field_text
from xnatfs.rest.paths import normalize
from xnatfs.rest.resultset import parse_resultset
from xnatfs.settings import CacheSettings
from xnatfs.transport.session import Stream, XNATSession
from xnatfs.vfs.reachability import Reachability
from xnatfs.vfs.records import (
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

log = logging.getLogger(__name__)

T = TypeVar("T")
IDENTITY = {"Accept-Encoding": "identity"}

#: children fields that hold objects or resources (shown as directories, not in xnat.json)
_HIERARCHY_FIELDS = {"experiments/experiment", "scans/scan", "assessors/assessor",
                     "reconstructions/reconstructedImage", "resources/resource", "file", "out/file", "in/file"}
_RESOURCE_FIELDS = ("resources/resource", "file", "out/file", "in/file")
_FILES_PART = re.compile(r"/resources/([^/]+)/files/(.+)$")
_JAVA_DATE = re.compile(r"^\w{3} (\w{3}) +(\d{1,2}) (\d{2}):(\d{2}):(\d{2}) (?:\S+ )?(\d{4})$")
_ISO_DATE = re.compile(r"^(\d{4})-(\d{2})-(\d{2})(?:[ T](\d{2}):(\d{2})(?::(\d{2}))?)?")
_MONTHS = {m: i for i, m in enumerate(("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct",
                                        "Nov", "Dec"), start=1)}


class XNATSource:
    """A :class:`~xnatfs.vfs.records.MetadataSource` over an :class:`XNATSession` (see module docstring)."""

    def __init__(self, session: XNATSession, cache: CacheSettings | None = None, *,
                 timer: Callable[[], float] = time.monotonic) -> None:
        cache = cache or CacheSettings()
        self.session = session
        self.ttl = cache.ttl
        self._cache = TTLCache(cache.maxsize, cache.ttl, timer=timer)
        self._inflight: dict[Any, Future] = {}
        self._lock = threading.Lock()
        self.reachability = Reachability()
        timeouts = session.settings.timeouts
        #: how long a caller waits for another thread's identical request
        self._wait = timeouts.connect + 2 * timeouts.read + 5.0

    # -- cache with shared in-flight requests ------------------------------------------------------

    def _cached(self, key: Any, load: Callable[[], T]) -> T:
        value = self._cache.get(key, _MISSING)
        if value is not _MISSING:
            return value  # type: ignore[return-value]
        with self._lock:
            future = self._inflight.get(key)
            owner = future is None
            if owner:
                future = self._inflight[key] = Future()
        assert future is not None
        if not owner:
            try:
                return future.result(timeout=self._wait)
            except FutureTimeout as exc:
                raise RequestTimeout(f"Waited {self._wait:.0f} s for a request another thread sent") from exc
        try:
            value = load()
        except BaseException as exc:
            future.set_exception(exc)
            raise
        else:
            self._cache.set(key, value)
            future.set_result(value)
            return value
        finally:
            with self._lock:
                self._inflight.pop(key, None)

    def clear(self) -> None:
        """Forget every cached record (the next call of each kind sends its request)."""
        self._cache.clear()

    def forget_files(self, scope_uri: str) -> None:
        """Forget the file listing of ``scope_uri`` (after the mount uploaded or deleted a file there)."""
        self._cache.pop(("files", scope_uri))

    # -- MetadataSource ------------------------------------------------------------------------------

    def projects(self) -> Sequence[XObject]:
        def load() -> tuple[XObject, ...]:
            rows = self._rows("/data/projects")
            return tuple(XObject(PROJECT, r.get("ID", ""), r.get("ID", ""), "xnat:projectData",
                                 normalize(r.get("URI") or f"/data/projects/{quote(r.get('ID', ''), safe='')}"),
                                 _row_time(r), r, scope_uri="")
                         for r in rows if r.get("ID"))
        return self._cached(("projects",), load)

    def project(self, project: XObject) -> XObject:
        return self._cached(("project", project.uri), lambda: self._object(project, project.uri))

    def subjects(self, project: XObject) -> Sequence[XObject]:
        def load() -> tuple[XObject, ...]:
            rows = self._rows(f"{project.uri}/subjects")
            return tuple(XObject(SUBJECT, r.get("ID", ""), r.get("label", ""), "xnat:subjectData",
                                 normalize(r.get("URI") or f"{project.uri}/subjects/{quote(r.get('ID', ''), safe='')}"),
                                 _row_time(r), r) for r in rows if r.get("ID"))
        return self._cached(("subjects", project.uri), load)

    def subject(self, subject: XObject) -> XObject:
        return self._cached(("subject", subject.uri), lambda: self._object(subject, subject.uri))

    def experiments(self, subject: XObject) -> Sequence[XObject]:
        def load() -> tuple[XObject, ...]:
            project = str(subject.fields.get("project", ""))
            path = (f"/data/projects/{quote(project, safe='')}/subjects/{quote(subject.id, safe='')}/experiments"
                    if project else f"{subject.uri}/experiments")
            rows = self._rows(path)
            return tuple(XObject(EXPERIMENT, r.get("ID", ""), r.get("label", ""), r.get("xsiType", ""),
                                 normalize(r.get("URI") or f"/data/experiments/{quote(r.get('ID', ''), safe='')}"),
                                 _row_time(r), r) for r in rows if r.get("ID"))
        return self._cached(("experiments", subject.uri), load)

    def experiment(self, experiment: XObject) -> XObject:
        return self._cached(("experiment", experiment.uri), lambda: self._object(experiment, experiment.uri))

    def files(self, scope_uri: str) -> Sequence[FileInfo]:
        def load() -> tuple[FileInfo, ...]:
            params = {"all": "true"} if scope_uri.startswith("/data/experiments/") else None
            rows = self._rows(f"{scope_uri}/files", params)
            return tuple(info for info in (_file_info(r) for r in rows) if info is not None)
        return self._cached(("files", scope_uri), load)

    def document(self, obj: XObject, fmt: str) -> bytes:
        def load() -> bytes:
            return self.reachability.call(lambda: self.session.get(obj.uri, params={"format": fmt}).content)
        return self._cached(("document", obj.uri, fmt), load)

    # -- file data ---------------------------------------------------------------------------------

    def open_range(self, uri: str, start: int, end: int | None = None) -> Stream:
        """A streamed ``GET`` of bytes ``[start, end)`` (to the end if ``end`` is None).

        The answer is 206 with the range, or 200 with the whole file if the server ignores ``Range``;
        callers check ``stream.status``. Without a range (``start == 0`` and no end) no header is sent.
        """
        headers = dict(IDENTITY)
        if start > 0 or end is not None:
            headers["Range"] = f"bytes={start}-" + (str(end - 1) if end is not None else "")
        return self.reachability.call(lambda: self.session.open_stream("GET", uri, headers=headers, ok=(200, 206)))

    # -- parsing -------------------------------------------------------------------------------------

    def _rows(self, path: str, params: Mapping[str, str] | None = None) -> tuple[dict[str, str], ...]:
        body = self.reachability.call(lambda: self.session.get_json(path, params=params))
        return parse_resultset(body, what=f"listing {path}").rows

    def _object(self, row: XObject, uri: str) -> XObject:
        item = current_item(self.reachability.call(lambda: self.session.get_json(uri)))
        return _from_item(item, row.kind, uri, fallback=row)


_MISSING = object()


def _from_item(item: Item, kind: str, uri: str, *, fallback: XObject | None = None,
               session_uri: str = "") -> XObject:
    """An object record (and its nested objects) from an item document."""
    fields = item.fields
    ident = field_text(fields.get("ID")) or (fallback.id if fallback else "")
    label = field_text(fields.get("label")) or (fallback.label if fallback else "") or ident
    if kind in (PROJECT, SCAN, RECONSTRUCTION):
        label = ident or label
    scope = uri if kind in (PROJECT, SUBJECT, EXPERIMENT) else session_uri
    resources: list[ResourceInfo] = []
    for name in _RESOURCE_FIELDS:
        for res in item.children.get(name, ()):
            rid = field_text(res.fields.get("xnat_abstractresource_id")) or ""
            if not rid:
                continue
            resources.append(ResourceInfo(
                rid, field_text(res.fields.get("label")) or "", f"{uri}/resources/{quote(rid, safe='')}",
                scope or uri, res.xsi_type or "xnat:resourceCatalog", field_text(res.fields.get("format")) or "",
                field_text(res.fields.get("content")) or "", _int(res.fields.get("file_count")),
                _int(res.fields.get("file_size"))))
    children: dict[str, tuple[XObject, ...]] = {}
    if kind == SUBJECT and "experiments/experiment" in item.children:
        children[EXPERIMENT] = tuple(
            _from_item(child, EXPERIMENT, f"/data/experiments/{quote(field_text(child.fields.get('ID')) or '', safe='')}")
            for child in item.children["experiments/experiment"] if child.fields.get("ID"))
    if kind == EXPERIMENT:
        children[SCAN] = tuple(
            _from_item(child, SCAN, f"{uri}/scans/{quote(field_text(child.fields.get('ID')) or '', safe='')}",
                       session_uri=uri)
            for child in item.children.get("scans/scan", ()) if child.fields.get("ID") is not None)
        children[ASSESSOR] = tuple(
            _from_item(child, ASSESSOR, f"/data/experiments/{quote(field_text(child.fields.get('ID')) or '', safe='')}",
                       session_uri=uri)
            for child in item.children.get("assessors/assessor", ()) if child.fields.get("ID"))
        children[RECONSTRUCTION] = tuple(
            _from_item(child, RECONSTRUCTION,
                       f"{uri}/reconstructions/{quote(field_text(child.fields.get('ID')) or '', safe='')}",
                       session_uri=uri)
            for child in item.children.get("reconstructions/reconstructedImage", ()) if child.fields.get("ID"))
    extra = {name: tuple(_flat(child) for child in items)
             for name, items in item.children.items() if name not in _HIERARCHY_FIELDS}
    mtime = _java_time(item.meta.get("start_date")) or (fallback.mtime if fallback else None)
    xsi_type = item.xsi_type or (fallback.xsi_type if fallback else "")
    return XObject(kind, ident, label, xsi_type, uri, mtime, dict(fields), extra,
                   children if kind in (SUBJECT, EXPERIMENT) and children else
                   ({} if kind != SUBJECT else None), tuple(resources), scope)


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
    match = _FILES_PART.search(uri.split("?", 1)[0])
    if match is None:
        return None
    resource_id = row.get("cat_ID") or unquote(match.group(1))
    raw = match.group(2)
    name = row.get("Name", "")
    # A server may send the path raw or URL-quoted; the Name column (the basename) tells which.
    relpath = raw if raw.rsplit("/", 1)[-1] == name else unquote(raw, errors="surrogateescape")
    base = uri[: match.start(2)]
    download = base + "/".join(quote(part, safe="", errors="surrogateescape") for part in relpath.split("/"))
    try:
        size = int(row.get("Size") or 0)
    except ValueError:
        size = 0
    return FileInfo(relpath, size, normalize(download), resource_id, (row.get("digest") or "").lower(),
                    row.get("file_format", ""), row.get("file_content", ""), row.get("file_tags", ""))


def _int(value: Any) -> int | None:
    try:
        return int(str(value))
    except (TypeError, ValueError):
        return None


def _java_time(text: Any) -> float | None:
    """``Wed Nov 25 14:44:29 UTC 2026`` (Java ``Date.toString``) → epoch seconds, read as UTC."""
    if not isinstance(text, str):
        return None
    match = _JAVA_DATE.match(text.strip())
    if match is None or match.group(1) not in _MONTHS:
        return _iso_time(text)
    month, day, hh, mm, ss, year = match.groups()
    return float(calendar.timegm((int(year), _MONTHS[month], int(day), int(hh), int(mm), int(ss), 0, 0, 0)))


def _iso_time(text: Any) -> float | None:
    """``2026-11-25 14:44:12.554`` or ``2024-01-15`` → epoch seconds, read as UTC."""
    if not isinstance(text, str):
        return None
    match = _ISO_DATE.match(text.strip())
    if match is None:
        return None
    year, month, day, hh, mm, ss = (int(g) if g else 0 for g in match.groups())
    try:
        return float(calendar.timegm((year, month, day, hh, mm, ss, 0, 0, 0)))
    except (ValueError, OverflowError):
        return None


def _row_time(row: Mapping[str, str]) -> float | None:
    return _iso_time(row.get("last_modified")) or _iso_time(row.get("insert_date"))


__all__ = ["XNATSource"]
