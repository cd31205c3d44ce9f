"""Reading answers from the server without trusting them: bounded bodies, HTML sniffing, streams.

- :func:`load_body` reads a streamed ``requests.Response`` into ``response.content`` with a byte
  limit. requests would read any body whole (a lying ``Content-Length``, an endless body, a gzip
  bomb: the limit counts decoded bytes); here a body announced or found larger than the limit is a
  :class:`~xnatfs.errors.ServerError` (or, for error answers, is cut to the limit: only an excerpt
  of it is ever shown).
- :func:`looks_like_html` recognises an HTML page (XNAT's error and login pages, a single sign-on or
  proxy page) where data was expected.
- :class:`Stream` wraps a streamed body for files: reads of exact sizes and chunks, with transport
  errors translated.

Imports requests, :mod:`xnatfs.errors`, :mod:`xnatfs.redact` and :mod:`xnatfs.transport.http`.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping

import requests

from xnatfs.errors import ServerError
from xnatfs.redact import redact_url
from xnatfs.transport.http import translate_errors

#: How much of an error answer's body is read (for the excerpt in the exception).
ERROR_BODY_LIMIT = 64 * 1024
_READ_CHUNK = 256 * 1024
#: An HTML page: optional BOM, XML declaration and comments, then a doctype html / html / head / body tag.
_HTML_START = re.compile(rb"\A(?:\xef\xbb\xbf)?\s*(?:<\?xml[^>]*>\s*)?(?:<!--.*?-->\s*)*"
                         rb"<(?:!doctype\s+html|html|head|body)\b", re.IGNORECASE | re.DOTALL)


def looks_like_html(body: bytes) -> bool:
    """True if ``body`` is an HTML page (XNAT's error and login pages, SSO and proxy pages)."""
    return _HTML_START.match(body[:4096]) is not None


def load_body(response: requests.Response, limit: int, *, refuse_larger: bool) -> None:
    """Read the streamed body of ``response`` into ``response.content``, at most ``limit`` bytes.

    With ``refuse_larger`` a body whose ``Content-Length`` announces more, or that turns out longer,
    raises :class:`ServerError` (the connection is dropped, nothing more is read); without it the
    body is cut at ``limit``.
    """
    method = response.request.method or "GET"
    declared = response.headers.get("Content-Length", "").strip()
    if refuse_larger and declared.isdigit() and int(declared) > limit:
        response.close()
        raise ServerError(f"The server announced a {int(declared)}-byte answer to {method}; answers read into "
                          f"memory are limited to {limit} bytes (Settings.max_document_size)",
                          status=response.status_code, url=redact_url(response.url))
    parts: list[bytes] = []
    size = 0
    with translate_errors(method, response.url):
        for chunk in response.iter_content(_READ_CHUNK):
            parts.append(chunk)
            size += len(chunk)
            if size > limit:
                break
    if size > limit:
        response.close()
        if refuse_larger:
            raise ServerError(f"The server's answer to {method} is larger than {limit} bytes, the limit for "
                              f"answers read into memory (Settings.max_document_size)",
                              status=response.status_code, url=redact_url(response.url))
    # What requests itself does once it has read a body (Response.content).
    response._content = b"".join(parts)[:limit]
    response._content_consumed = True


class Stream:
    """A streamed response body. Reads translate transport errors; use as a context manager.

    Read with a size (or :meth:`iter_chunks`): ``read(-1)`` reads whatever the server sends.
    """

    def __init__(self, response: requests.Response, method: str) -> None:
        self._response = response
        self._method = method
        self.status: int = response.status_code
        self.headers: Mapping[str, str] = response.headers
        self.url: str = redact_url(response.url)

    def read(self, size: int = -1) -> bytes:
        """Up to ``size`` bytes (all remaining with -1); fewer only at the end of the body."""
        raw = self._response.raw
        with translate_errors(self._method, self._response.url):
            if size is None or size < 0:
                return raw.read(decode_content=True) or b""
            parts: list[bytes] = []
            remaining = size
            while remaining > 0:
                chunk = raw.read(remaining, decode_content=True)
                if not chunk:
                    break
                parts.append(chunk)
                remaining -= len(chunk)
            return b"".join(parts)

    def iter_chunks(self, chunk_size: int = 1024 * 1024) -> Iterator[bytes]:
        """The body in chunks of at most ``chunk_size`` bytes."""
        iterator = self._response.iter_content(chunk_size)
        while True:
            with translate_errors(self._method, self._response.url):
                chunk = next(iterator, None)
            if chunk is None:
                return
            if chunk:
                yield chunk

    def close(self) -> None:
        self._response.close()

    def __enter__(self) -> Stream:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


__all__ = ["ERROR_BODY_LIMIT", "Stream", "load_body", "looks_like_html"]
