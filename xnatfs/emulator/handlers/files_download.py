"""Sending one stored file: headers as XNAT sets them, streamed from disk, with HTTP Range support.

XNAT (``SecureResource.representFile``, spec §13.2, §17) answers a file with ``Content-Type`` from
the extension (a short white-list, everything else ``application/octet-stream``),
``Content-Disposition: attachment; filename="<name>";`` (trailing ``;`` included), ``Cache-Control:
must-revalidate``, ``Last-Modified`` = the file's mtime and ``Content-Length``. HEAD gets the same
headers without a body (xnatpy reads a file's size that way).

XNAT itself has no Range code, but Restlet's RangeFilter serves ranges for it; by default the
emulator does what Restlet does (``ranges``, seeking to the first byte). With the ``http_range``
switch on (``--rfc-range``, the emulator's older behaviour) it serves
``Range`` (206, ``Content-Range``, ``Accept-Ranges: bytes``) as a normal HTTP server does, through
werkzeug's ``make_conditional``:
one satisfiable range → 206; an unparsable or unsatisfiable ``bytes`` range → 416 with
``Content-Range: bytes */<size>``; no ``Range`` → 200. A range unit other than ``bytes`` (RFC 9110
§14.2: "MUST ignore") and a multi-range request (no multipart/byteranges here; ignoring Range is
what XNAT itself does) are ignored → 200 with the whole file. Under the ``no_range`` fault the app has
already removed the header, and no ``Accept-Ranges`` is advertised, like a server that ignores Range.

Bodies are never read into memory: ``wrap_file`` streams the open file in ``CHUNK`` pieces and
werkzeug's range wrapper seeks to the first byte.
"""

from __future__ import annotations

import datetime as dt
import os
import posixpath

from typing import BinaryIO, Iterator

from werkzeug.exceptions import RequestedRangeNotSatisfiable
from werkzeug.wrappers import Response
from werkzeug.wsgi import wrap_file

from xnatfs.emulator import ranges
from xnatfs.emulator.app import Context
from xnatfs.emulator.responses import HTTPError
from xnatfs.emulator.store import FileRow

#: Bytes read from disk per body chunk.
CHUNK = 256 * 1024

#: ``SecureResource.buildMediaType``: the only extensions with their own type (lower-cased names).
MEDIA_TYPES = {
    "bmp": "image/bmp", "gif": "image/gif", "html": "text/html", "jpg": "image/jpeg", "jpeg": "image/jpeg",
    "pdf": "application/pdf", "png": "image/png", "svg": "image/svg+xml", "tiff": "image/tiff",
    "txt": "text/plain", "xml": "text/xml",
}


def media_type(name: str) -> str:
    """The Content-Type XNAT sends for a file name (``.dcm``, ``.nii.gz`` … → octet-stream)."""
    extension = posixpath.splitext(name.lower())[1].lstrip(".")
    return MEDIA_TYPES.get(extension, "application/octet-stream")


def attachment(name: str) -> str:
    """``TurbineUtils.createContentDispositionValue``: ``attachment; filename="<name>";``."""
    return 'attachment; filename="{}";'.format(name.replace('"', "_"))


def send_file(ctx: Context, row: FileRow) -> Response:
    """Stream a stored file (200, 206 for one Range, 416 for a bad one; HEAD: headers only)."""
    try:
        handle = open(row.disk_path, "rb")
    except FileNotFoundError as exc:
        raise HTTPError(404, "Unable to find file.") from exc
    size = os.fstat(handle.fileno()).st_size
    response = Response(wrap_file(ctx.request.environ, handle, buffer_size=CHUNK),
                        content_type=media_type(row.name), direct_passthrough=True)
    response.content_length = size
    response.last_modified = dt.datetime.fromtimestamp(row.mtime, tz=dt.timezone.utc)
    response.headers["Content-Disposition"] = attachment(row.name)
    response.headers["Cache-Control"] = "must-revalidate"
    if not ctx.app.config.http_range and not ctx.faults.settings.no_range:
        return _restlet_range(ctx, response, handle, size)
    ranges = not ctx.faults.settings.no_range
    environ = ctx.request.environ
    if _ignored_range(environ.get("HTTP_RANGE")):
        environ = {k: v for k, v in environ.items() if k not in ("HTTP_RANGE", "HTTP_IF_RANGE")}
    try:
        response.make_conditional(environ, accept_ranges=ranges, complete_length=size)
    except RequestedRangeNotSatisfiable as exc:
        handle.close()
        raise HTTPError(416, "Requested Range Not Satisfiable",
                        {"Content-Range": f"bytes */{size}", "Accept-Ranges": "bytes"}) from exc
    response.headers.pop("Date", None)  # make_conditional adds one; the HTTP server sends its own
    return response


def _restlet_range(ctx: Context, response: Response, handle: BinaryIO, size: int) -> Response:
    """Restlet's Range answer for a stored file (``ranges``), seeking to the first byte; a range past
    the end keeps its requested ``Content-Length`` and the body stops at the end of the file."""
    response.headers["Accept-Ranges"] = "bytes"
    response.ranged = True  # type: ignore[attr-defined]
    wanted = ranges.parse(ctx.request.headers.get("Range")) if ctx.request.method != "HEAD" else None
    if wanted is None:
        return response
    if isinstance(wanted, ranges.Multiple):
        handle.close()
        return ranges.not_implemented()
    first, last = wanted.bounds(size)
    handle.seek(min(first, size))
    body = Response(_read_span(handle, max(last - first + 1, 0)), content_type=response.content_type,
                    direct_passthrough=True, headers=[(k, v) for k, v in response.headers.items()
                                                      if k.lower() != "content-length"])
    body.ranged = True  # type: ignore[attr-defined]
    return ranges.partial(body, first, last, size)


def _read_span(handle: BinaryIO, length: int) -> Iterator[bytes]:
    try:
        while length > 0:
            chunk = handle.read(min(CHUNK, length))
            if not chunk:
                break
            length -= len(chunk)
            yield chunk
    finally:
        handle.close()


def _ignored_range(header: str | None) -> bool:
    """A Range header to ignore rather than refuse: another unit, or more than one range."""
    if not header:
        return False
    unit, _, spec = header.partition("=")
    return unit.strip().lower() != "bytes" or "," in spec
