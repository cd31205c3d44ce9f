"""Checks of the server's answers to file reads: no answer is taken on trust.

- A 206 must start where it was asked to, and its ``Content-Length`` must be its ``Content-Range``'s
  span (:func:`check_range`).
- A 200 is the whole file, so its ``Content-Length`` must be the file's listed size
  (:func:`check_whole_file`): an HTML login page of a single sign-on proxy, or a proxy's error page,
  answered with 200 is an error, never bytes of the file. Before this check the mount served the
  first bytes of such a page as the file (``tests/mount/test_mount_security.py``).

A ``Content-Length`` of a content-encoded body says nothing about the file's bytes and is not checked.
Both raise :class:`~xnatfs.errors.ServerError` (EIO). Imports :mod:`xnatfs.errors` and the reader's
stream protocol only.
"""

from __future__ import annotations

import re

from xnatfs.errors import ServerError
from xnatfs.vfs.readpolicy import RangeStream

_CONTENT_RANGE = re.compile(r"bytes\s+(\d+)-(\d+)/(\d+|\*)")


def header_of(stream: RangeStream, name: str) -> str:
    """A response header of ``stream`` ("" if absent)."""
    headers = getattr(stream, "headers", None) or {}
    return str(headers.get(name) or "")  # type: ignore[attr-defined]


def identity_length(stream: RangeStream) -> int | None:
    """The body length ``Content-Length`` announces, if the body is not content-encoded (else None)."""
    if header_of(stream, "Content-Encoding").strip().lower() not in ("", "identity"):
        return None
    declared = header_of(stream, "Content-Length").strip()
    return int(declared) if declared.isdigit() else None


def check_range(stream: RangeStream, start: int, name: str) -> None:
    """A 206 must start at ``start``, and its ``Content-Length`` must be its ``Content-Range``'s span."""
    header = header_of(stream, "Content-Range")
    match = _CONTENT_RANGE.match(header)
    if match is None or int(match.group(1)) != start:
        raise ServerError(f"Unexpected Content-Range {header!r} for offset {start} of {name}")
    length = identity_length(stream)
    if length is not None and length != int(match.group(2)) - int(match.group(1)) + 1:
        raise ServerError(f"The server answered a Range request for {name} with Content-Length {length} "
                          f"for Content-Range {header!r}")


def check_whole_file(stream: RangeStream, size: int, name: str) -> None:
    """A 200 is the whole file: a ``Content-Length`` other than the file's ``size`` is not the file."""
    length = identity_length(stream)
    if length is not None and length != size:
        kind = header_of(stream, "Content-Type").split(";", 1)[0].strip() or "no type"
        raise ServerError(f"The server answered with {length} bytes ({kind}) for {name}, a file of {size} bytes: "
                          f"a login page or a proxy's answer instead of the file?")


__all__ = ["check_range", "check_whole_file", "header_of", "identity_length"]
