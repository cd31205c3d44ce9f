"""XNAT-shaped response bodies: Restlet error pages, ResultSet tables, plain text and URI lists.

Every handler answers through these helpers so that the shapes real clients parse live in one place
(spec §3 "Response formats", §4 "Errors"). Rules that clients depend on:

* error bodies start with ``<html>`` and carry the message in ``<h3>`` (pyxnat reads ``.//h3``,
  xnatpy ``<h3>(.*)</h3>``); 2xx bodies never start with ``<html>``;
* ResultSet rows hold strings only (``None`` → ``""``), ``totalRecords`` is a string too;
* ``format=`` wins over ``Accept``; lists default to JSON, single objects to HTML, and an ``Accept``
  that admits no variant gets Restlet's bare 406 (spec §3.1).
"""

from __future__ import annotations

import csv
import html
import io
import json
from typing import Any, Iterable, Mapping, Sequence

from werkzeug.wrappers import Request, Response

#: format= value → media type (spec §3.1 table).
FORMAT_MEDIA_TYPES = {
    "xml": "text/xml",
    "json": "application/json",
    "csv": "text/csv",
    "txt": "text/plain",
    "html": "text/html",
    "zip": "application/zip",
    "tar.gz": "application/x-gtar",
    "tar": "application/x-tar",
}

_STATUS_DOC = "http://www.w3.org/Protocols/rfc2616/rfc2616-sec10.html"


class HTTPError(Exception):
    """Raised by handlers; the app renders it as XNAT's Restlet status page."""

    def __init__(self, status: int, message: str, headers: Mapping[str, str] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.headers = dict(headers or {})


def error_page(status: int, message: str, headers: Mapping[str, str] | None = None) -> Response:
    """Restlet 1.1's default status page (spec §4, recorded from a real XNAT)."""
    body = (
        "<html>\n<head>\n   <title>Status page</title>\n</head>\n<body>\n"
        f"<h3>{html.escape(message, quote=False)}</h3>"
        f"<p>You can get technical details <a href=\"{_STATUS_DOC}\">here</a>.<br>\n"
        "Please continue your visit at our <a href=\"/\">home page</a>.\n</p>\n</body>\n</html>\n"
    )
    response = Response(body, status=status, mimetype="text/html")
    for key, value in (headers or {}).items():
        response.headers[key] = value
    return response


#: Tomcat 9's reason phrases and descriptions for the statuses Spring sends with ``sendError``.
_TOMCAT_STATUS = {
    401: ("Unauthorized", "The request has not been applied to the target resource because it lacks valid "
                          "authentication credentials for that resource."),
    403: ("Forbidden", "The server understood the request but refuses to authorize it."),
}
_TOMCAT_STYLE = ("body {font-family:Tahoma,Arial,sans-serif;} h1, h2, h3, b {color:white;background-color:#525D76;} "
                 "h1 {font-size:22px;} h2 {font-size:16px;} h3 {font-size:14px;} p {font-size:12px;} "
                 "a {color:black;} .line {height:1px;background-color:#525D76;border:none;}")


def tomcat_error_page(status: int, headers: Mapping[str, str] | None = None) -> Response:
    """Tomcat's default error report: what a client gets when Spring Security (not Restlet) refuses a
    request with ``sendError`` (XnatAuthenticationEntryPoint); XNAT's web.xml maps no status pages."""
    reason, description = _TOMCAT_STATUS.get(status, ("Error", ""))
    body = (f'<!doctype html><html lang="en"><head><title>HTTP Status {status} \u2013 {reason}</title>'
            f'<style type="text/css">{_TOMCAT_STYLE}</style></head><body><h1>HTTP Status {status} \u2013 {reason}'
            f'</h1><hr class="line" /><p><b>Type</b> Status Report</p><p><b>Description</b> {description}</p>'
            '<hr class="line" /><h3>Apache Tomcat/9.0.82</h3></body></html>')
    response = Response(body, status=status, mimetype="text/html")
    response.headers["Content-Language"] = "en"
    for key, value in (headers or {}).items():
        response.headers[key] = value
    return response


#: Restlet variants of XNAT's resources, first = what ``Accept: */*`` (or no Accept) gets (spec §3.1).
LIST_VARIANTS = ("json", "html", "xml")
ITEM_VARIANTS = ("html", "xml")


class NotAcceptable(HTTPError):
    """Restlet 1.1 ``Resource.handleGet``: no variant matches ``Accept`` → 406 whose body is the
    (empty) text list of variant identifiers, not a status page."""

    bare = True

    def __init__(self) -> None:
        super().__init__(406, "")


def requested_format(request: Request, default: str = "json", variants: Sequence[str] | None = None) -> str:
    """The response format: ``format=`` (case-insensitive; any value, the caller decides what an
    unknown one means), else ``Accept`` negotiated against the resource's variants (``variants``, or
    ``default`` followed by the list variants), else the first variant; :class:`NotAcceptable` when
    ``Accept`` admits none of them."""
    fmt = (request.args.get("format") or "").strip()
    if fmt:
        return fmt.lower()
    names = list(variants) if variants else [default] + [n for n in LIST_VARIANTS if n != default]
    if not request.accept_mimetypes:
        return names[0]
    mimes = [FORMAT_MEDIA_TYPES.get(n, n) for n in names]
    best = request.accept_mimetypes.best_match(mimes)
    if best is None:
        raise NotAcceptable()
    return names[mimes.index(best)]


def text(body: str, status: int = 200, mimetype: str = "text/plain") -> Response:
    return Response(body, status=status, mimetype=mimetype)


def json_response(data: Any, status: int = 200) -> Response:
    return Response(json.dumps(data), status=status, mimetype="application/json")


def uri_list(request: Request, uris: Sequence[str]) -> Response:
    """Importer.represent, reached through ``returnDefaultRepresentation`` (so ``Accept`` plays no
    part): ``format=txt`` → ``text/plain``, one URI without a newline; ``format=html`` → an HTML
    summary; otherwise ``text/uri-list`` with CRLF after each URI (spec §15 "Response")."""
    fmt = (request.args.get("format") or "").strip().lower()
    if fmt == "txt":
        body = uris[0] if len(uris) == 1 else "".join(u + "\r\n" for u in uris)
        return Response(body, mimetype="text/plain")
    if fmt == "html":
        items = "".join(f'<li><a href="{html.escape(u)}">{html.escape(u)}</a></li>' for u in uris)
        return Response(f"<html><body><h3>Upload complete</h3><ul>{items}</ul></body></html>", mimetype="text/html")
    return Response("".join(u + "\r\n" for u in uris), mimetype="text/uri-list")


def cell(value: Any) -> str:
    """XFTTable's ValueParser: every value a string, None → "". Called for every cell of every
    listing (45,000 for a 5,000-file listing), so the common types are tested first, exactly."""
    kind = type(value)
    if kind is str:
        return value
    if kind is int:
        return str(value)
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def select_columns(request: Request, default: Sequence[str], available: Sequence[str],
                   always: Sequence[str] = ("URI",)) -> list[str]:
    """Columns of a listing: ``columns=`` (unknown names dropped, ``DEFAULT`` = defaults) plus ``always``.

    XNAT matches shortcut names case-insensitively and names the column by the shortcut (spec §8.1).
    """
    requested = request.args.get("columns")
    if not requested or requested.strip().upper() == "DEFAULT":
        chosen = list(default)
    else:
        by_lower = {name.lower(): name for name in available}
        chosen = []
        for name in requested.split(","):
            match = by_lower.get(name.strip().lower())
            if match and match not in chosen:
                chosen.append(match)
    for name in always:
        if name not in chosen:
            chosen.append(name)
    return chosen


def filter_rows(request: Request, rows: list[dict], filterable: Iterable[str]) -> list[dict]:
    """Query parameters naming a column filter rows: comma list = OR, ``*``/``%`` wildcards (spec §8.1)."""
    import fnmatch

    lower_args = {k.lower(): v for k, v in request.args.items()}
    for name in filterable:
        pattern = lower_args.get(name.lower())
        if pattern is None or name.lower() in ("format", "columns"):
            continue
        options = [p.strip().replace("%", "*") for p in pattern.split(",")]
        rows = [r for r in rows
                if any(fnmatch.fnmatchcase(cell(r.get(name)).lower(), o.lower()) for o in options)]
    return rows


def result_set(request: Request, rows: Sequence[Mapping[str, Any]], columns: Sequence[str], *,
               meta: Mapping[str, Any] | None = None, column_props: Mapping[str, Mapping[str, str]] | None = None,
               total_records: bool = True, paging: bool = False, default: str = "json") -> Response:
    """Render a table as XNAT does (JSONTableRepresentation / XMLTableRepresentation / CSV / HTML).

    ``sortBy``/``sortOrder`` apply to every table; ``limit``/``offset`` only when ``paging`` is set
    (the resources that support paging omit ``totalRecords`` once paged, spec §3.2).
    """
    table = [dict(zip(columns, map(cell, map(row.get, columns)))) for row in rows]
    sort_by = request.args.get("sortBy")
    if sort_by:
        keys = [k for k in sort_by.split(",") if k in columns]
        if keys:
            table.sort(key=lambda r: tuple(r[k] for k in keys),
                       reverse=request.args.get("sortOrder", "").upper() == "DESC")
    meta = dict(meta or {})
    paged = paging and ("limit" in request.args or "offset" in request.args)
    if paged:
        offset = _paging_arg(request, "offset", 0) or 0
        limit = _paging_arg(request, "limit", 100)
        table = table[offset:None if limit is None else offset + limit]
    elif total_records:
        meta["totalRecords"] = str(len(table))
    fmt = requested_format(request, default)
    if fmt == "xml":
        return Response(_table_xml(table, columns, meta, column_props or {}), mimetype="text/xml")
    if fmt == "csv":
        return Response(_table_csv(table, columns), mimetype="text/csv")
    if fmt != "json":  # representTable: html, and any other media type, is the HTML table
        return Response(_table_html(table, columns), mimetype="text/html")
    result_set_body: dict[str, Any] = {}
    if column_props:
        result_set_body["Columns"] = [{"key": k, **v} for k, v in column_props.items()]
    result_set_body["Result"] = table
    result_set_body.update({k: cell(v) for k, v in meta.items()})
    return Response(json.dumps({"ResultSet": result_set_body}), mimetype="application/json")


def _paging_arg(request: Request, name: str, default: int) -> int | None:
    """``limit``/``offset``: a count, ``*`` (everything: None), or absent (``default``); anything
    else is the client's error (400), never a server failure."""
    value = request.args.get(name)
    if value is None or value.strip() == "":
        return default
    if value.strip() == "*":
        return None
    try:
        number = int(value)
    except ValueError:
        number = -1
    if number < 0:
        raise HTTPError(400, f"Invalid {name}: {value}")
    return number


def _xml_cell(value: str) -> str:
    # XFTTable.toXMLList escapes only < and > and replaces newlines by spaces (spec §3.2).
    return value.replace("<", "&lt;").replace(">", "&gt;").replace("\r", " ").replace("\n", " ")


def _table_xml(table: list[dict], columns: Sequence[str], meta: Mapping[str, Any],
               column_props: Mapping[str, Mapping[str, str]]) -> str:
    attrs = "".join(f' {k}="{html.escape(cell(v))}"' for k, v in meta.items())
    out = [f"<ResultSet{attrs}><results><columns>"]
    for col in columns:
        props = "".join(f' {k}="{html.escape(v)}"' for k, v in column_props.get(col, {}).items())
        out.append(f"<column{props}>{_xml_cell(col)}</column>")
    out.append("</columns><rows>")
    for row in table:
        out.append("<row>" + "".join(f"<cell>{_xml_cell(row[c])}</cell>" for c in columns) + "</row>")
    out.append("</rows></results></ResultSet>")
    return "".join(out)


def _table_csv(table: list[dict], columns: Sequence[str]) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(columns)
    for row in table:
        writer.writerow([row[c].replace("\r", " ").replace("\n", " ") for c in columns])
    return buffer.getvalue()


def _table_html(table: list[dict], columns: Sequence[str]) -> str:
    head = "".join(f"<th>{html.escape(c)}</th>" for c in columns)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(r[c])}</td>" for c in columns) + "</tr>" for r in table)
    return f"<html><body><table><tr>{head}</tr>{body}</table></body></html>"
