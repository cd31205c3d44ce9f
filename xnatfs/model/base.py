"""The object base: what every XNAT object (project, subject, experiment, scan, resource…) shares.

:class:`ModelContext` is what objects hold instead of a module global (xnatpy's ``SESSION``): the
connection's :class:`~xnatfs.transport.session.XNATSession`, its bounded TTL metadata cache, its
settings and its class registry. Two connections never share objects, classes or caches.

:class:`XNATObject` implements the contract of :mod:`xnatfs.model.fields` for generated classes:

- ``_field_text(key)``: the listing row the object came from answers first (no request), then the
  object's item document (``GET <uri>?format=json``, cached with a TTL).
- ``_set_field(xsi_type, xpath, text)``: ``PUT <uri>?xsiType=…&<xpath>=<text>``, then invalidates the
  object, its parent's document and the listings that contain it.

Every public name here is a class-level attribute (properties, methods): the builder gives a schema
field no descriptor when the base already defines that name, and instance state lives in ``_``
attributes, which no schema field can be named. Constructors do no I/O.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, ClassVar
from urllib.parse import urlencode

from xnatfs.cache.ttl import TTLCache
from xnatfs.errors import ServerError
from xnatfs.model.fields import FieldDescriptor, to_xnat
from xnatfs.model.reading import FileReaders
from xnatfs.rest.items import Item, current_item
from xnatfs.settings import DEFAULT_SETTINGS, Settings
from xnatfs.transport.session import Params, XNATSession

if TYPE_CHECKING:
    from xnatfs.model.builder import ClassRegistry

log = logging.getLogger(__name__)

ITEM = "format=json"


def query_key(params: Params) -> str:
    """The cache key part for query parameters (sorted, so equal queries share an entry)."""
    if not params:
        return ""
    items = list(params.items()) if isinstance(params, Mapping) else list(params)
    return urlencode(sorted((str(k), str(v)) for k, v in items))


def field_params(cls: type, xsi_type: str, values: Mapping[str, Any]) -> list[tuple[str, str]]:
    """``(xpath, text)`` query pairs for a field update or a creation of an object of ``cls``.

    A key naming a generated field attribute of ``cls`` is converted with its type; any other key
    is an xpath, absolute if its first segment has a prefix (``xnat:…``), else relative to the type.
    """
    pairs = []
    for key, value in values.items():
        descriptor = _descriptor(cls, key)
        if descriptor is not None:
            pairs.append((descriptor.spec.put_xpath(xsi_type),
                          to_xnat(value, descriptor.spec.python_type_name, field_name=key)))
        else:
            xpath = key if ":" in key.split("/", 1)[0] else f"{xsi_type}/{key}"
            pairs.append((xpath, to_xnat(value)))
    return pairs


def _descriptor(cls: type, name: str) -> FieldDescriptor | None:
    for klass in cls.__mro__:
        found = klass.__dict__.get(name)
        if found is not None:
            return found if isinstance(found, FieldDescriptor) else None
    return None


class ModelContext:
    """Per-connection state every object shares: transport, metadata cache, settings, classes.

    Thread-safe: the session and the cache lock themselves; ``_notes`` (things logged once) has a lock.
    """

    def __init__(self, session: XNATSession, *, settings: Settings = DEFAULT_SETTINGS,
                 registry: ClassRegistry | None = None) -> None:
        self.session = session
        self.settings = settings
        # a caller waiting for another thread's load of the same key waits no longer than that load may
        # last (its request's deadline), so no call queues behind a stuck one for longer
        self.cache = TTLCache(settings.cache.maxsize, settings.cache.ttl,
                              wait_timeout=settings.timeouts.deadline + settings.timeouts.connect)
        self.registry = registry
        #: the one ranged reader of the connection's files (File.open(); the mount's reads), one budget
        self.readers = FileReaders(session, settings.read, on_changed=self.forget_file)
        self._notes: set[str] = set()
        self._lock = threading.Lock()

    def get_json_cached(self, path: str, params: Params = None, *, parse: Callable[[Any], Any] | None = None) -> Any:
        """``GET path?…&format=json`` through the TTL cache (key: path and sorted query).

        With ``parse`` the parsed value is cached instead of the JSON (one parse per fetch, and a
        stable identity for as long as the entry lives).
        """
        items = list(params.items()) if isinstance(params, Mapping) else list(params or [])
        key = (path, query_key(items + [("format", "json")]), getattr(parse, "__qualname__", ""))
        if parse is None:
            return self.cache.get_or_load(key, lambda: self.session.get_json(path, items))
        return self.cache.get_or_load(key, lambda: parse(self.session.get_json(path, items)))

    def invalidate(self, *paths: str, exact: Iterable[str] = ()) -> None:
        """Drop cached data at or below each of ``paths``, and at exactly each of ``exact``."""
        for path in paths:
            self.cache.invalidate(path)
        for path in exact:
            self.cache.invalidate(path, exact=True)

    def forget_file(self, uri: str) -> None:
        """Drop what is cached about the object that holds the file at ``uri`` (the file changed on the
        server): everything under its top-level object (``/data/experiments/E``, ``/data/projects/P``),
        whose file listings may name the file by resource label or ID. Rare, so coarse."""
        parts = uri.split("?", 1)[0].rstrip("/").split("/")
        if len(parts) >= 4 and parts[1] == "data":
            self.invalidate("/".join(parts[:4]))

    def class_for(self, xsi_type: str | None, fallback_xsi: str, family: type, default: type | None = None) -> type:
        """The registry's class for ``xsi_type`` (else for ``fallback_xsi``) if it is a ``family``
        subclass; otherwise ``default`` (or ``family``): the hand-written base, without schema fields."""
        if self.registry is not None:
            cls = self.registry.for_xsi_type(xsi_type or fallback_xsi, fallback=fallback_xsi)
            if issubclass(cls, family):
                return cls
        return default or family

    def note_once(self, key: str, message: str, *args: Any) -> None:
        """Log ``message`` at WARNING the first time ``key`` is noted on this connection."""
        with self._lock:
            if key in self._notes:
                return
            self._notes.add(key)
        log.warning(message, *args)


class XNATObject:
    """An object on the server at ``uri`` (a canonical ``/data/…`` path built from IDs)."""

    #: The xsi type objects of this family have at least (subclasses set it).
    FAMILY_XSI: ClassVar[str] = ""
    __xsi_type__: ClassVar[str | None] = None

    def __init__(self, ctx: ModelContext, uri: str, *, parent: XNATObject | None = None,
                 row: Mapping[str, str] | None = None, xsi_type: str | None = None, id: str | None = None) -> None:
        self._ctx = ctx
        self._uri = uri
        self._parent = parent
        self._row: dict[str, str] = dict(row or {})
        self._row_time = time.monotonic()
        self._xsi = xsi_type
        self._id = id
        self._listings: dict[str, Any] = {}

    # -- identity -----------------------------------------------------------------------------------

    @property
    def uri(self) -> str:
        """The server path of this object (``/data/…``), built from accession IDs."""
        return self._uri

    @property
    def id(self) -> str:
        """The accession ID (or scan/resource ID) of this object."""
        if self._id:
            return self._id
        found = self._row.get("ID") or self._item().text("ID") or self._item().text("id")
        if not found:
            raise ServerError(f"The server gave no ID for {self._uri}")
        self._id = found
        return found

    @property
    def parent(self) -> XNATObject | None:
        """The object this one was reached from (project of a subject, experiment of a scan…)."""
        return self._parent

    @property
    def xsi_type(self) -> str:
        """The XNAT type the server reports (may be a subtype of the class's own type)."""
        return self._xsi or type(self).__xsi_type__ or self.FAMILY_XSI

    @property
    def connection_context(self) -> ModelContext:
        return self._ctx

    def __repr__(self) -> str:
        label = self._row.get("label") or self._row.get("name") or self._row.get("type") or ""
        ident = self._id or self._row.get("ID") or self._uri.rsplit("/", 1)[-1]
        return f"<{type(self).__name__} {ident}{' ' + label if label and label != ident else ''}>"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, XNATObject) and other._uri == self._uri and other._ctx is self._ctx

    def __hash__(self) -> int:
        return hash(self._uri)

    # -- data ---------------------------------------------------------------------------------------

    def _item(self) -> Item:
        """The object's current item document (cached with a TTL)."""
        return self._ctx.get_json_cached(self._uri, parse=current_item)

    @property
    def data(self) -> dict[str, Any]:
        """The object's own fields as XNAT sends them (``data_fields`` of its item document)."""
        return dict(self._item().fields)

    @property
    def item(self) -> Item:
        """The whole item document: fields, child collections, meta."""
        return self._item()

    def get(self, key: str, default: str | None = None) -> str | None:
        """The text of field ``key`` (XNAT's spelling, e.g. ``scanner/manufacturer``), or ``default``."""
        text = self._field_text(key)
        return default if text is None else text

    def _fresh_row(self) -> dict[str, str]:
        """The listing row this object came from, while it is younger than the cache TTL."""
        if self._row and time.monotonic() - self._row_time > self._ctx.settings.cache.ttl:
            self._row = {}
        return self._row

    def _field_text(self, key: str) -> str | None:
        row = self._fresh_row()
        if key in row:
            return row[key]
        return self._item().text(key)

    def _set_field(self, xsi_type: str, xpath: str, text: str) -> None:
        self.set_fields({xpath: text}, xsi_type=xsi_type)

    def set_fields(self, values: Mapping[str, Any], *, xsi_type: str | None = None) -> None:
        """Set several fields in one ``PUT``: keys are attribute names (``series_description``) or
        xpaths, absolute (``xnat:mrScanData/type``) or relative to the type (``scanner/manufacturer``)."""
        xsi = xsi_type or self.xsi_type
        params: list[tuple[str, str]] = [("xsiType", xsi), *field_params(type(self), xsi, values)]
        containers = self._containers()
        self._ctx.session.put(self._uri, params=params)
        self._row.clear()
        self._changed(containers)

    # -- cache invalidation -------------------------------------------------------------------------

    def _containers(self) -> Sequence[str]:
        """Paths of the listings that contain this object (subclasses name them)."""
        return ()

    def _changed(self, containers: Sequence[str]) -> None:
        """Forget cached data a write to this object may have changed (``containers`` computed
        before the write: after a delete the object can no longer be asked)."""
        parent_exact = [self._parent._uri] if self._parent is not None else []
        self._ctx.invalidate(self._uri, exact=[*containers, *parent_exact])

    def refresh(self) -> XNATObject:
        """Forget cached data of this object (and below it); the next read asks the server."""
        self._row = {k: v for k, v in self._row.items() if k == "ID"}
        self._ctx.invalidate(self._uri)
        self._listings.clear()
        return self

    def delete(self, remove_files: bool = True) -> None:
        """Delete this object on the server (``DELETE <uri>?removeFiles=true``)."""
        params = {"removeFiles": "true"} if remove_files else None
        containers = self._containers()
        self._ctx.session.delete(self._uri, params=params)
        self._changed(containers)

    def _listing(self, name: str, factory: Any) -> Any:
        """A listing of this object, made once per object by ``factory()``."""
        listing = self._listings.get(name)
        if listing is None:
            listing = self._listings[name] = factory()
        return listing


__all__ = ["ModelContext", "XNATObject", "field_params", "query_key"]
