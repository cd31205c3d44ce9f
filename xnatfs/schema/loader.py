"""Fetch a server's XSD schema documents and parse them into :class:`~xnatfs.schema.specs.SchemaSpecs`.

XNAT 1.7+ lists its schemas at ``GET /xapi/schemas`` (a JSON list of names such as ``"xnat"``,
``"catalog"``, ``"xdat/display"``) and serves each at ``GET /xapi/schemas/<name>``
(XNAT's ``SchemaApi``). One broken plugin schema must not stop a
connection (xnatpy aborts on any 404), so a document that fails to fetch or parse is logged and
skipped; only the core ``xnat`` schema is required.

This module does no HTTP itself: the caller passes ``fetch(path) -> bytes``, a server-relative GET
that raises :class:`~xnatfs.errors.XNATError` on failure (the transport layer provides it), and
keeps its own timeouts. Imports: the standard library, L0 and the schema package.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterable

from xnatfs.errors import SchemaError, XNATError
from xnatfs.schema.specs import SchemaSpecs
from xnatfs.schema.xsd import parse_schemas

log = logging.getLogger(__name__)

#: The schema XNAT cannot work without; its absence is a SchemaError.
REQUIRED_SCHEMA = "xnat"

#: Used when ``/xapi/schemas`` cannot be read (XNAT 1.6 has no XAPI): the core set every server has.
DEFAULT_SCHEMA_NAMES: tuple[str, ...] = ("xnat", "xdat", "security", "catalog", "birn/birnprov")

SCHEMA_LIST_PATH = "/xapi/schemas"

Fetch = Callable[[str], bytes]


def load_server_specs(fetch: Fetch, schema_names: list[str] | None = None) -> SchemaSpecs:
    """Fetch and parse the server's schemas; ``schema_names=None`` asks the server which exist.

    Every listed schema is fetched from ``/xapi/schemas/<name>``; the ``xnat`` schema is always
    included. A document that fails to fetch (any :class:`~xnatfs.errors.XNATError`) or is not
    well-formed XML is logged and left out. Raises :class:`~xnatfs.errors.SchemaError` if the
    ``xnat`` schema could not be fetched or parsed.
    """
    names = _ordered_names(list_schema_names(fetch) if schema_names is None else schema_names)
    documents: dict[str, bytes] = {}
    for name in names:
        try:
            documents[name] = fetch(f"{SCHEMA_LIST_PATH}/{name}")
        except XNATError as exc:
            if name == REQUIRED_SCHEMA:
                raise SchemaError(f"Could not fetch the {name!r} schema: {exc}") from exc
            log.warning("Skipping schema %r: could not fetch it (%s)", name, exc)
    specs = parse_schemas(documents, lenient=True)
    if REQUIRED_SCHEMA in specs.skipped:
        raise SchemaError(f"The {REQUIRED_SCHEMA!r} schema from the server was refused: it is not well-formed, "
                          f"safe XML (the warning logged above says why)")
    log.debug("Loaded %d types from schemas %s", len(specs), ", ".join(specs.documents))
    return specs


def list_schema_names(fetch: Fetch) -> list[str]:
    """The names ``GET /xapi/schemas`` reports, or :data:`DEFAULT_SCHEMA_NAMES` if it cannot be read."""
    try:
        names = json.loads(fetch(SCHEMA_LIST_PATH))
    except (XNATError, ValueError) as exc:
        log.warning("Could not read the schema list (%s); using the core schemas %s", exc,
                    ", ".join(DEFAULT_SCHEMA_NAMES))
        return list(DEFAULT_SCHEMA_NAMES)
    if not isinstance(names, list) or not all(isinstance(name, str) for name in names):
        log.warning("The schema list is not a list of names; using the core schemas %s",
                    ", ".join(DEFAULT_SCHEMA_NAMES))
        return list(DEFAULT_SCHEMA_NAMES)
    return names


def _ordered_names(names: Iterable[str]) -> list[str]:
    """``xnat`` first (its types win name clashes), then the others in the given order, once each.

    Names are used in a URL path, so anything that could leave ``/xapi/schemas/`` (``..``, a
    leading ``/``, a query) is dropped.
    """
    ordered = [REQUIRED_SCHEMA]
    for name in names:
        name = name.strip()
        unsafe = not name or name.startswith("/") or ".." in name.split("/") or any(c in name for c in "?#\\")
        if unsafe:
            log.warning("Ignoring schema name %r from the server", name)
        elif name not in ordered:
            ordered.append(name)
    return ordered
