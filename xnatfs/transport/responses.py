"""The transport's own answers, read without trusting the server: :class:`Response`, :class:`Stream`.

Nothing of requests or urllib3 leaves :mod:`xnatfs.transport`: callers get these two types, and every
failure while a body is read (a stall, a cut connection, a broken chunk or gzip stream) is an
:mod:`xnatfs.errors` class, whether the body is read whole, streamed, or only read for the excerpt of
an error answer.

- :class:`Response` is an answer read whole: ``status_code``, ``reason``, ``headers`` (a
  case-insensitive copy, ``Set-Cookie`` values masked), ``content``, ``text``, ``json()``, ``ok`` and a
  redacted ``url``, the attribute names requests uses, so code written against requests reads the same.
- :class:`Stream` is a streamed body (files): ``read``, ``readinto``, ``iter_chunks``, ``close``.
- :func:`load_body` reads a streamed requests response with a byte limit. requests would read any body
  whole (a lying ``Content-Length``, an endless body, a gzip bomb: the limit counts decoded bytes); here
  a body announced or found larger than the limit is a :class:`~xnatfs.errors.ServerError`. An error
  answer's body is only ever read for an excerpt: it is cut at the limit, and a failure while reading
  it ends the excerpt instead of replacing the answer's status with a transport error.
- :func:`looks_like_html` recognises an HTML page (XNAT's error and login pages, a single sign-on or
  proxy page) where data was expected.

Imports requests, :mod:`xnatfs.errors`, :mod:`xnatfs.redact` and :mod:`xnatfs.transport.http`.
"""

from __future__ import annotations

import contextlib
import json
import logging
import re
from collections.abc import Iterator, Mapping
from email.message import Message
from typing import Any

import requests

from xnatfs.errors import ServerError, TransportError
from xnatfs.redact import REDACTED, redact_url
from xnatfs.transport.deadline import deadline, raise_if_cut
from xnatfs.transport.http import translate_errors

log = logging.getLogger(__name__)

#: How much of an error answer's body is read (for the excerpt in the exception).
ERROR_BODY_LIMIT = 64 * 1024
_READ_CHUNK = 256 * 1024
#: Header values a copy never shows: the session cookie travels in ``Set-Cookie``.
_MASKED_HEADERS = frozenset({"set-cookie", "set-cookie2"})
#: An HTML page: optional BOM, XML declaration and comments, then a doctype html / html / head / body tag.
_HTML_START = re.compile(rb"\A(?:\xef\xbb\xbf)?\s*(?:<\?xml[^>]*>\s*)?(?:<!--.*?-->\s*)*"
                         rb"<(?:!doctype\s+html|html|head|body)\b", re.IGNORECASE | re.DOTALL)


def looks_like_html(body: bytes) -> bool:
    """True if ``body`` is an HTML page (XNAT's error and login pages, SSO and proxy pages)."""
    return _HTML_START.match(body[:4096]) is not None


class Headers(Mapping[str, str]):
    """Response headers: a read-only, case-insensitive copy (``headers["content-length"]`` works).

    A copy, so that holding a :class:`Response` keeps nothing of the connection alive; ``Set-Cookie``
    values are masked (the session cookie is the transport's business, and a secret).
    """

    __slots__ = ("_items",)

    def __init__(self, items: Mapping[str, str] | None = None) -> None:
        self._items: dict[str, tuple[str, str]] = {}
        for name, value in (items or {}).items():
            self._items[name.lower()] = (name, REDACTED if name.lower() in _MASKED_HEADERS else str(value))

    def __getitem__(self, name: str) -> str:
        return self._items[name.lower()][1]

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and name.lower() in self._items

    def __iter__(self) -> Iterator[str]:
        return (name for name, _ in self._items.values())

    def __len__(self) -> int:
        return len(self._items)

    def __repr__(self) -> str:
        return f"Headers({dict(self.items())!r})"


class Response:
    """An answer whose body was read whole (bounded: see :func:`load_body`).

    ``url`` is the URL that answered (after same-origin redirects), with secret query values
    redacted, so it can go into a message or a log as it is.
    """

    __slots__ = ("status_code", "reason", "headers", "content", "url", "method")

    def __init__(self, status_code: int, content: bytes = b"", *, headers: Mapping[str, str] | None = None,
                 url: str = "", reason: str = "", method: str = "GET") -> None:
        self.status_code = status_code
        self.reason = reason
        self.headers: Headers = headers if isinstance(headers, Headers) else Headers(headers)
        self.content = content
        self.url = redact_url(url)
        self.method = method

    @property
    def ok(self) -> bool:
        """True for a status below 400 (what requests calls ``ok``)."""
        return self.status_code < 400

    @property
    def encoding(self) -> str:
        """The ``charset`` of ``Content-Type``, else UTF-8 (XNAT sends UTF-8, often without saying so)."""
        message = Message()
        message["Content-Type"] = self.headers.get("Content-Type", "")
        charset = message.get_param("charset")
        return charset if isinstance(charset, str) and charset else "utf-8"

    @property
    def text(self) -> str:
        """The body decoded with :attr:`encoding`; undecodable bytes become U+FFFD."""
        try:
            return self.content.decode(self.encoding, "replace")
        except LookupError:  # a charset Python does not know
            return self.content.decode("utf-8", "replace")

    def json(self) -> Any:
        """The body parsed as JSON (UTF-8/16/32 detected); ``ValueError`` if it is not JSON."""
        return json.loads(self.content)

    def __repr__(self) -> str:
        return f"<Response [{self.status_code}] {self.method} {self.url} ({len(self.content)} bytes)>"


def response_from(resp: requests.Response) -> Response:
    """Our :class:`Response` for a requests response whose body :func:`load_body` has read."""
    method = (resp.request.method if resp.request is not None else None) or "GET"
    return Response(resp.status_code, resp.content, headers=resp.headers, url=resp.url or "",
                    reason=resp.reason or "", method=method)


def load_body(response: requests.Response, limit: int, *, refuse_larger: bool) -> None:
    """Read the streamed body of ``response`` into ``response.content``, at most ``limit`` bytes.

    With ``refuse_larger`` (a document we need whole) a body whose ``Content-Length`` announces more,
    or that turns out longer, raises :class:`ServerError` (the connection is dropped, nothing more is
    read), and a failure while reading is the translated transport error. Without it (an error answer,
    read only for its excerpt) the body is cut at ``limit``, and a failure while reading it (a stall,
    a cut connection) ends the body there: the answer's status is what the caller reports.
    """
    method = (response.request.method if response.request is not None else None) or "GET"
    declared = response.headers.get("Content-Length", "").strip()
    if refuse_larger and declared.isdigit() and int(declared) > limit:
        close_quietly(response)
        raise ServerError(f"The server announced a {int(declared)}-byte answer to {method}; answers read into "
                          f"memory are limited to {limit} bytes (Settings.max_document_size)",
                          status=response.status_code, url=redact_url(response.url))
    parts: list[bytes] = []
    size = 0
    try:
        with translate_errors(method, response.url):
            for chunk in response.iter_content(_READ_CHUNK) if refuse_larger else _pieces(response):
                parts.append(chunk)
                size += len(chunk)
                if size > limit:
                    break
    except TransportError as exc:
        close_quietly(response)
        if refuse_larger:
            parts.clear()  # the traceback keeps this frame: keep nothing of the body with it
            raise
        log.debug("The body of an HTTP %d answer could not be read whole: %s", response.status_code, exc)
    if size > limit:
        close_quietly(response)
        if refuse_larger:
            parts.clear()  # released now, not when the exception (and its traceback's frames) dies
            raise ServerError(f"The server's answer to {method} is larger than {limit} bytes, the limit for "
                              f"answers read into memory (Settings.max_document_size)",
                              status=response.status_code, url=redact_url(response.url))
    # What requests itself does once it has read a body (Response.content).
    response._content = b"".join(parts)[:limit]
    response._content_consumed = True


def _pieces(response: requests.Response) -> Iterator[bytes]:
    """The body as it arrives (each piece what one receive gave), so that what came before a stall or a
    break is kept for the excerpt; requests' ``iter_content`` would lose a partly filled chunk."""
    raw = response.raw
    read1 = getattr(raw, "read1", None)  # urllib3 >= 2.3
    if read1 is None or getattr(raw, "_fp", None) is None or not hasattr(raw._fp, "read1"):
        yield from response.iter_content(_READ_CHUNK)
        return
    while piece := read1(_READ_CHUNK, decode_content=True):
        yield piece


def close_quietly(response: requests.Response) -> None:
    """Drop the connection of ``response``; closing a broken connection raises nothing worth reporting."""
    try:
        response.close()
    except Exception as exc:  # noqa: BLE001 - the connection is being thrown away either way
        log.debug("Closing a response failed: %s", exc)


class Stream:
    """A streamed response body. Every read translates transport errors; use as a context manager.

    Read with a size, into a buffer (:meth:`readinto`) or in chunks (:meth:`iter_chunks`); ``read(-1)``
    reads whatever the server sends. ``status``/``status_code``, ``headers`` (a :class:`Headers` copy)
    and ``url`` (redacted) describe the answer. A read after :meth:`close` returns ``b""``; a read
    after a read failed raises that failure again (urllib3 would report the broken body as its end,
    and a caller would take a truncated file for a whole one).
    """

    def __init__(self, response: requests.Response, method: str) -> None:
        self._response = response
        self._method = method
        self.status: int = response.status_code
        self.reason: str = response.reason or ""
        self.headers: Headers = Headers(response.headers)
        self.url: str = redact_url(response.url)
        self._closed = False
        self._failure: TransportError | None = None
        #: (seconds, sockets): each read is bounded by the request's deadline (xnatfs.transport.deadline)
        self._deadline: tuple[float | None, tuple] = getattr(response, "_xnatfs_deadline", (None, ()))

    @property
    def status_code(self) -> int:
        """The HTTP status (the name :class:`Response` and requests use)."""
        return self.status

    @property
    def closed(self) -> bool:
        return self._closed

    @contextlib.contextmanager
    def _reading(self) -> Iterator[None]:
        """Translate transport errors inside the block, and remember the first one (see the class docstring)."""
        if self._failure is not None:
            raise type(self._failure)(f"{self._failure} (the body broke off there; read no further)")
        seconds, sockets = self._deadline
        try:
            with deadline(seconds, sockets) as guard:
                try:
                    with translate_errors(self._method, self._response.url):
                        yield
                finally:
                    raise_if_cut(guard, self._method, self.url, reading=True)
        except TransportError as exc:
            self._failure = exc
            raise

    def read(self, size: int = -1) -> bytes:
        """Up to ``size`` bytes (all remaining with -1); fewer only at the end of the body."""
        if self._closed:
            return b""
        raw = self._response.raw
        with self._reading():
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

    def readinto(self, buffer: bytearray | memoryview) -> int:
        """Fill ``buffer`` from the body; the number of bytes put there (fewer only at the end, 0 after it)."""
        view = memoryview(buffer).cast("B")
        data = self.read(len(view))
        view[:len(data)] = data
        return len(data)

    def iter_chunks(self, chunk_size: int = 1024 * 1024) -> Iterator[bytes]:
        """The body in chunks of at most ``chunk_size`` bytes."""
        if self._closed:
            return
        with self._reading():
            iterator = self._response.iter_content(chunk_size)
        while True:
            with self._reading():
                chunk = next(iterator, None)
            if chunk is None:
                return
            if chunk:
                yield chunk

    def close(self) -> None:
        """Release the connection (dropped, not drained, if the body was not read to its end). Idempotent."""
        if self._closed:
            return
        self._closed = True
        close_quietly(self._response)

    def __enter__(self) -> Stream:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<Stream [{self.status}] {self._method} {self.url}{' closed' if self._closed else ''}>"


__all__ = ["ERROR_BODY_LIMIT", "Headers", "Response", "Stream", "load_body", "looks_like_html", "response_from"]
