"""Restlet 1.1's ``Range`` handling (``RangeService``/``RangeFilter``, on by default in XNAT's Restlet
application), for every response of the REST API, not only files:

* ``Accept-Ranges: bytes`` on every response;
* one ``bytes`` range → 206 with ``Content-Range: bytes FIRST-LAST/SIZE`` (``/*`` when the size is
  unknown) and ``Content-Length`` = the *requested* span: a range past the end is not clamped, so
  the body is shorter than announced and the connection ends early;
* an open range (``N-`` or ``-N``) on an entity of unknown size (a streamed zip) → 500;
* several ranges → 501; never 416; another unit or a header that does not parse → ignored (200).

``parse`` reads the header; ``apply`` rewrites a 200 response whose body is an iterable (listings,
zips); files are served by ``files_download.send_file``, which seeks instead of reading up to the
first byte.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Iterable, Iterator

from werkzeug.wrappers import Response

from xnatfs.emulator.responses import error_page

_RANGE = re.compile(r"^\s*(\d*)\s*-\s*(\d*)\s*$")


@dataclass(frozen=True)
class ByteRange:
    """``first-last`` (``last`` None: open), or a suffix of ``suffix`` bytes."""

    first: int | None
    last: int | None
    suffix: int | None = None

    @property
    def open(self) -> bool:
        return self.last is None

    def bounds(self, size: int) -> tuple[int, int]:
        """(first, last) on an entity of ``size`` bytes; ``last`` may lie past the end (not clamped)."""
        if self.suffix is not None:
            return max(size - self.suffix, 0), size - 1
        assert self.first is not None
        return self.first, (size - 1 if self.last is None else self.last)


class Multiple:
    """Several ranges: Restlet answers 501."""


def parse(header: str | None) -> ByteRange | Multiple | None:
    """The one range a ``Range`` header asks for, ``Multiple``, or None (no header, another unit,
    or nothing that parses: the header is ignored)."""
    if not header:
        return None
    unit, sep, spec = header.partition("=")
    if not sep or unit.strip().lower() != "bytes":
        return None
    parts = [p for p in spec.split(",") if p.strip()]
    if len(parts) > 1:
        return Multiple()
    if not parts:
        return None
    match = _RANGE.match(parts[0])
    if match is None or (not match.group(1) and not match.group(2)):
        return None
    first, last = match.group(1), match.group(2)
    if not first:
        return ByteRange(None, None, suffix=int(last))
    if last and int(last) < int(first):
        return None
    return ByteRange(int(first), int(last) if last else None)


def not_implemented() -> Response:
    return error_page(501, "Not Implemented")


def unknown_size() -> Response:
    return error_page(500, "Internal Server Error")


def partial(response: Response, first: int, last: int, size: int | None) -> Response:
    """Turn ``response`` into the 206 Restlet sends: ``Content-Length`` is the requested span."""
    response.status_code = 206
    response.headers["Content-Range"] = f"bytes {first}-{last}/{'*' if size is None else size}"
    response.headers["Content-Length"] = str(max(last - first + 1, 0))
    response.headers["Accept-Ranges"] = "bytes"
    return response


def apply(header: str | None, response: Response) -> Response:
    """Apply a ``Range`` header to a complete (200) response whose body has not been sliced yet."""
    response.headers["Accept-Ranges"] = "bytes"
    if response.status_code != 200 or getattr(response, "ranged", False):
        return response
    wanted = parse(header)
    if wanted is None:
        return response
    if isinstance(wanted, Multiple):
        return not_implemented()
    size = response.content_length if "Content-Length" in response.headers else None
    if size is None and wanted.open:
        return unknown_size()
    if size is None:
        first, last = wanted.first or 0, wanted.last  # a closed range needs no size
        assert last is not None
    else:
        first, last = wanted.bounds(size)
    body = response.response if response.direct_passthrough or not response.is_sequence else [response.get_data()]
    sliced = Response(_slice(body, first, last - first + 1), headers=list(response.headers.items()),
                      direct_passthrough=True)
    sliced.call_on_close(response.close)
    return partial(sliced, first, last, size)


def _slice(body: Iterable[bytes], start: int, length: int) -> Iterator[bytes]:
    """``length`` bytes of ``body`` from offset ``start`` (fewer if the body ends first)."""
    position = 0
    for chunk in body:
        end = position + len(chunk)
        if end > start and length > 0:
            piece = chunk[max(start - position, 0):]
            piece = piece[:length]
            length -= len(piece)
            yield piece
        position = end
        if length <= 0:
            break
