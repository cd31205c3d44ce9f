"""``connect()``: credentials → logged-in session → server schemas → class registry → Connection.

This is the only place that talks to the server during setup (constructors do no I/O):

1. credentials by precedence explicit > netrc > anonymous (:mod:`xnatfs.transport.auth`);
2. ``POST /data/JSESSION`` login (or the reused ``jsession``);
3. the version probe, then ``/xapi/schemas`` and each schema, parsed into specs and built into
   this connection's own classes (``connection.classes.MrSessionData``), no ``exec``, no globals.

A :class:`Connection` is a context manager; ``close()`` logs out and releases connections.
"""

from __future__ import annotations

import dataclasses
import logging
import os
from collections.abc import Mapping
from typing import Any

from xnatfs.errors import ConfigError, NotFound
from xnatfs.model.base import ModelContext
from xnatfs.model.behaviours import FAMILY_BASES, PROJECTS, HasResources
from xnatfs.model.builder import ClassRegistry, build_registry
from xnatfs.model.catalog import Catalog
from xnatfs.model.listing import Listing
from xnatfs.model.prearchive import Prearchive
from xnatfs.model.services import Services
from xnatfs.model.writer import Writer
from xnatfs.redact import redact_url
from xnatfs.rest.items import current_item
from xnatfs.rest.paths import split_hierarchy
from xnatfs.schema.loader import load_server_specs
from xnatfs.settings import DEFAULT_SETTINGS, Settings, Timeouts
from xnatfs.transport.auth import resolve_credentials
from xnatfs.transport.session import Params, Response, XNATSession

log = logging.getLogger(__name__)

#: hierarchy segment → the attribute of the parent object that lists it
_COLLECTIONS = {"subjects": "subjects", "experiments": "experiments", "scans": "scans", "assessors": "assessors",
                "reconstructions": "reconstructions", "resources": "resources", "files": "files"}


class Connection:
    """One logged-in connection to an XNAT server: raw verbs, the object tree, services, prearchive."""

    def __init__(self, session: XNATSession, ctx: ModelContext, *, version: str | None = None) -> None:
        self._session = session
        self._ctx = ctx
        self.version = version
        self.prearchive = Prearchive(ctx, self.object_at)
        self.services = Services(ctx, self.prearchive, self.object_at)
        self._projects = Listing(ctx, "/data/projects", PROJECTS)
        self.catalog = Catalog(ctx)
        self.writer = Writer(ctx, self.services)

    def __repr__(self) -> str:
        return f"<Connection {redact_url(self._session.base_url)} user={self._session.user or 'anonymous'}>"

    def __enter__(self) -> Connection:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- properties ---------------------------------------------------------------------------------

    @property
    def url(self) -> str:
        return self._session.base_url

    @property
    def user(self) -> str | None:
        return self._session.user

    @property
    def session(self) -> XNATSession:
        """The transport session (raw HTTP on server paths)."""
        return self._session

    @property
    def context(self) -> ModelContext:
        return self._ctx

    @property
    def classes(self) -> ClassRegistry | None:
        """The classes built from this server's schemas (``classes.MrSessionData``); None if not loaded."""
        return self._ctx.registry

    @property
    def projects(self) -> Listing:
        return self._projects

    # -- raw verbs ----------------------------------------------------------------------------------
    # The transport's own Response (status_code, headers, content, text, json()), never a requests object.

    def get(self, path: str, params: Params = None, **kw: Any) -> Response:
        return self._session.get(path, params, **kw)

    def head(self, path: str, params: Params = None, **kw: Any) -> Response:
        return self._session.head(path, params, **kw)

    def put(self, path: str, params: Params = None, data: Any = None, **kw: Any) -> Response:
        return self._session.put(path, params, data, **kw)

    def post(self, path: str, params: Params = None, data: Any = None, **kw: Any) -> Response:
        return self._session.post(path, params, data, **kw)

    def delete(self, path: str, params: Params = None, **kw: Any) -> Response:
        return self._session.delete(path, params, **kw)

    def get_json(self, path: str, params: Params = None, **kw: Any) -> Any:
        return self._session.get_json(path, params, **kw)

    # -- objects ------------------------------------------------------------------------------------

    def object_at(self, uri: str) -> Any:
        """The object a server URI names (``/data[/archive]/projects/P/subjects/S/experiments/E/…``,
        ``/data/experiments/E/…``), reached through the listings so it has its parents."""
        pairs = split_hierarchy(uri)
        if not pairs:
            raise NotFound(f"No object at {uri}")
        if pairs[0][0] == "experiments":
            item = current_item(self._session.get_json(f"/data/experiments/{pairs[0][1]}"))
            project, subject = item.text("project"), item.text("subject_ID")
            if not project:
                raise NotFound(f"Cannot tell the project of {uri}")
            prefix = [("projects", project)] + ([("subjects", subject)] if subject else [])
            pairs = prefix + pairs
        if pairs[0][0] != "projects":
            raise NotFound(f"Not a path in the archive: {uri}")
        current: Any = self.projects[pairs[0][1]]
        for kind, key in pairs[1:]:
            attribute = _COLLECTIONS.get(kind)
            if attribute is None or not hasattr(current, attribute):
                raise NotFound(f"{kind!r} cannot follow {current!r} in {uri}")
            current = getattr(current, attribute)[key]
        return current

    def clear_cache(self) -> None:
        """Forget all cached metadata (listings, object documents)."""
        self._ctx.cache.clear()

    def close(self) -> None:
        """Log out and release pooled connections. Idempotent."""
        self._session.close()

    disconnect = close  # xnatpy's name


def _settings_with_timeout(settings: Settings, timeout: Timeouts | float | None) -> Settings:
    if timeout is None:
        return settings
    timeouts = timeout if isinstance(timeout, Timeouts) else Timeouts(connect=min(float(timeout), 10.0),
                                                                      read=float(timeout))
    return dataclasses.replace(settings, timeouts=timeouts)


def tls_verify(verify: bool | str, ca_bundle: str | os.PathLike[str] | None) -> bool | str:
    """What requests' ``verify`` gets: True (system CAs), False, or the path of a CA bundle file or directory."""
    if ca_bundle is not None:
        if verify is False:
            raise ConfigError("Pass either ca_bundle= or verify=False, not both")
        verify = os.fspath(ca_bundle)
    if isinstance(verify, str):
        if not os.path.exists(verify):
            raise ConfigError(f"The CA bundle {verify} does not exist")
        return verify
    if not isinstance(verify, bool):
        raise ConfigError(f"verify must be True, False or a CA bundle path, not {type(verify).__name__}")
    return verify


def build_classes(session: XNATSession, bases: Mapping[str, type] | None = None) -> ClassRegistry:
    """Fetch the server's schemas and build this connection's class registry."""
    specs = load_server_specs(lambda path: session.get(path).content)
    return build_registry(specs, dict(bases or FAMILY_BASES), generic_base=HasResources)


def connect(url: str, user: str | None = None, password: str | None = None, *, netrc_file: str | None = None,
            jsession: str | None = None, verify: bool | str = True, timeout: Timeouts | float | None = None,
            settings: Settings = DEFAULT_SETTINGS, load_schemas: bool = True,
            ca_bundle: str | os.PathLike[str] | None = None) -> Connection:
    """Connect to the XNAT server at ``url`` and return a logged-in :class:`Connection`.

    Credentials: ``user``/``password``, else the netrc entry for the host (``netrc_file`` or
    ``~/.netrc``, refused if group or others can read it), else anonymous. ``jsession`` reuses an
    existing server session (not logged out on close). ``timeout`` (seconds, or a
    :class:`~xnatfs.settings.Timeouts`) bounds every request. ``load_schemas=False`` skips the
    schema download: objects then have no typed field attributes (use ``obj.get(key)``).

    TLS certificates are verified (``verify=True``) against the system's CAs, or against
    ``ca_bundle`` (a PEM file or a directory; ``verify="/path"`` means the same). ``verify=False``
    turns checking off and logs a warning. Redirects are followed only within the server's
    scheme, host and port. The password never appears in a repr, a log line or an exception.
    """
    if not isinstance(url, str) or not url.startswith(("http://", "https://")):
        raise ConfigError(f"Not an http(s) URL: {redact_url(str(url))}")
    settings = _settings_with_timeout(settings, timeout)
    verify = tls_verify(verify, ca_bundle)
    credentials = None if jsession and not user else resolve_credentials(url, user, password, netrc_file=netrc_file)
    session = XNATSession(url, credentials, settings=settings, verify=verify, jsession=jsession)
    try:
        if credentials is not None and not jsession:
            session.login()
        else:
            # A reused session must be alive; an anonymous one must be allowed (guest access):
            # either way a 401 here is a clear AuthenticationError, not a later schema failure.
            session.get("/data/JSESSION")
        version = session.server_version()
        registry = build_classes(session) if load_schemas else None
    except BaseException:
        session.close()
        raise
    ctx = ModelContext(session, settings=settings, registry=registry)
    log.debug("Connected to %s (XNAT %s) as %s", redact_url(url), version, session.user or "anonymous")
    return Connection(session, ctx, version=version)


__all__ = ["Connection", "connect", "build_classes"]
