"""Reading files over HTTP: the fetch side of the one ranged reader.

:class:`FileReaders` (one per connection: ``ModelContext.readers``, which the mount uses too) opens a
:class:`~xnatfs.cache.blocks.BlockReader` per open file over a :class:`RangeFetch`, and holds what
they share: the session, the :class:`~xnatfs.settings.ReadSettings`, one
:class:`~xnatfs.cache.budget.ReadBudget` for their memory, and what was learnt about ``Range``.

:class:`RangeFetch` is the reader's ``fetch(start, end)``:

- A fetch that continues the previous one (a sequential run: the reader's pump fetches blocks in
  order) sends ``Range: bytes=<start>-`` and keeps that stream open after reading its block; the
  next fetch starting where it stopped reads on from it. A run costs one request however many
  blocks it has (a fetch a little further on reads on from it too, dropping the bytes between), so a
  distant server's latency is paid once per run (at 20 ms per request, one
  ``GET`` per 1 MiB block would cost 20 ms per 8 ms of data at 120 MiB/s). Several ranged fetches in
  flight would hide latency too, but cost a request per block, a connection each, and their own
  ramp-up; measured in docs/performance.md. Any other fetch is one bounded ranged ``GET``.
- No answer is taken on trust: a 206 must start where it was asked to and its ``Content-Length``
  must match its ``Content-Range``; a 200 is the whole file, so its ``Content-Length`` must be the
  file's size (an HTML login page of a single sign-on proxy answered with 200 is an error, never
  bytes of the file, and is not taken for a server that ignores ``Range``). Only the bytes asked for
  are read, however long a body the server announces or sends. A file whose size on the server is
  no longer its listed size (``Content-Range``'s total, or a 200's length) was replaced since it was
  listed: :class:`~xnatfs.errors.FileChanged` (ESTALE), and the model drops the cached listings that
  hold it, so the next open reads the new file. (XNAT does not clamp a range past the end of a file
  that shrank; without this check the read would end in a broken connection, or read a grown file
  as its old length.)
- If the server **ignores Range** (200 with the whole body, as real XNAT may; xnat-rest-spec §13.2),
  that stream serves the fetch: bytes before ``start`` are skipped, the stream is kept for the next
  fetch at or after where it stopped (a forward stream per open file), and a fetch behind it opens a
  new one from the start. Logged once per connection; later files send no ``Range`` at all.

Every request has the session's timeouts (a socket read never waits longer than the read timeout).
Errors are :mod:`xnatfs.errors` classes.
"""

from __future__ import annotations

import logging
import re
import threading
from collections.abc import Callable, Mapping

from xnatfs.cache.blocks import BlockReader, CacheSink
from xnatfs.cache.budget import ReadBudget
from xnatfs.errors import FileChanged, ServerError
from xnatfs.redact import redact_url
from xnatfs.settings import MiB, ReadSettings
from xnatfs.transport.session import Stream, XNATSession

log = logging.getLogger(__name__)

IDENTITY = {"Accept-Encoding": "identity"}
_CONTENT_RANGE = re.compile(r"bytes\s+(\d+)-(\d+)/(\d+|\*)")
#: how much is read at a time when skipping the start of a whole-file answer
_SKIP_CHUNK = 1 * MiB
#: a kept ranged stream is read on (and the bytes in between dropped) for a fetch at most this far after
#: it: cheaper than a new request (8 ms at 120 MiB/s), and it keeps a run whose reads arrived out of
#: order on one stream
_SKIP_LIMIT = 1 * MiB


def identity_length(headers: Mapping[str, str]) -> int | None:
    """The body length ``Content-Length`` announces, if the body is not content-encoded (else None)."""
    if (headers.get("Content-Encoding") or "identity").strip().lower() not in ("", "identity"):
        return None
    declared = (headers.get("Content-Length") or "").strip()
    return int(declared) if declared.isdigit() else None


def check_range(stream: Stream, start: int, name: str, size: int | None = None) -> None:
    """A 206 must start at ``start``, and its ``Content-Length`` must be its ``Content-Range``'s span.

    A total in ``Content-Range`` other than the listed ``size`` means the file was replaced since it
    was listed: :class:`FileChanged`. XNAT (Restlet) does not clamp a range past the end of a file
    that shrank: it announces the requested span and ends the body early, so only the total tells.
    """
    header = stream.headers.get("Content-Range") or ""
    match = _CONTENT_RANGE.match(header)
    if match is None or int(match.group(1)) != start:
        raise ServerError(f"Unexpected Content-Range {header!r} for offset {start} of {name}", status=stream.status,
                          url=stream.url)
    total = match.group(3)
    if size is not None and total.isdigit() and int(total) != size:
        raise _file_changed(stream, name, int(total), size)
    length = identity_length(stream.headers)
    if length is not None and length != int(match.group(2)) - int(match.group(1)) + 1:
        raise ServerError(f"The server answered a Range request for {name} with Content-Length {length} "
                          f"for Content-Range {header!r}", status=stream.status, url=stream.url)


def _file_changed(stream: Stream, name: str, held: int, listed: int) -> FileChanged:
    """The error for a file the server holds ``held`` bytes of where its listing said ``listed``."""
    return FileChanged(f"{name} changed on the server since it was listed: it holds {held} bytes, the listing "
                       f"said {listed}; list its folder again", status=stream.status, url=stream.url)


def check_whole_file(stream: Stream, size: int, name: str) -> None:
    """A 200 is the whole file: a ``Content-Length`` other than the file's ``size`` is not the file
    (an HTML page: a login page or a proxy's; anything else: the file changed since it was listed)."""
    length = identity_length(stream.headers)
    if length is not None and length != size:
        kind = (stream.headers.get("Content-Type") or "").split(";", 1)[0].strip() or "no type"
        if kind != "text/html":
            raise _file_changed(stream, name, length, size)
        raise ServerError(f"The server answered with {length} bytes for a file of {size} bytes ({name}; {kind}): "
                          f"a login page or a proxy's answer instead of the file?", status=stream.status,
                          url=stream.url)


class FileReaders:
    """Opens readers of one connection's files under one memory budget (see the module docstring).

    Thread-safe.
    """

    def __init__(self, session: XNATSession, settings: ReadSettings | None = None, *,
                 on_changed: Callable[[str], None] | None = None) -> None:
        self.session = session
        #: told the URI of a file found changed on the server (the model drops its cached listings)
        self.on_changed = on_changed
        self.settings = settings or ReadSettings()
        self.budget = ReadBudget(self.settings.total_budget, self.settings.max_streams)
        #: whether the server honours ``Range``: None until an answer told
        self.range_supported: bool | None = None
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"FileReaders({self.budget!r}, range_supported={self.range_supported})"

    def open(self, uri: str, size: int, *, name: str = "", sink: CacheSink | None = None) -> BlockReader:
        """A reader of the ``size`` bytes at ``uri`` (``.read(offset, length)``, ``.close()``); no I/O yet."""
        label = name or redact_url(uri)
        return BlockReader(RangeFetch(self, uri, size, label), size, self.settings, self.budget, name=label,
                           sink=sink)

    def saw_ranged(self, ranged: bool, url: str) -> None:
        """Record what an answer to a ranged GET said about ``Range`` (logged once, when it is ignored)."""
        with self._lock:
            if ranged:
                if self.range_supported is None:
                    self.range_supported = True
                return
            if self.range_supported is False:
                return
            self.range_supported = False
        log.warning("The server ignores HTTP Range requests (answered %s with the whole file); files are read "
                    "as forward streams, and reading backwards reads again from the start", url)


class RangeFetch:
    """``fetch(start, end)`` of one file by ranged GETs, riding one stream across consecutive fetches.

    Thread-safe: concurrent fetches each use their own request; only one takes the kept stream.
    """

    #: the ends of this many recent fetches are remembered: a fetch starting at one continues a run
    RECENT = 4

    def __init__(self, readers: FileReaders, uri: str, size: int, name: str) -> None:
        self._readers = readers
        self._uri = uri
        self._size = size
        self._name = name
        self._lock = threading.Lock()
        self._stream: Stream | None = None  # kept open after a fetch, at _stream_pos
        self._stream_pos = 0
        self._stream_whole = False  # a 200 answer: it can be skipped forward
        self._recent_ends: list[int] = []
        self._closed = False
        self.requests = 0

    def __repr__(self) -> str:
        return f"RangeFetch({self._name!r}, requests={self.requests})"

    def __call__(self, start: int, end: int) -> bytes:
        with self._lock:
            continuing = start in self._recent_ends
            self._recent_ends = [*self._recent_ends[-(self.RECENT - 1):], end]
            stream, pos, whole = self._stream, self._stream_pos, self._stream_whole
            if stream is not None and (pos == start or (pos < start and (whole or start - pos <= _SKIP_LIMIT))):
                self._stream = None
            else:
                stream = None
        if stream is None:
            stream, pos, whole = self._open(start, end, open_ended=continuing)
        try:
            if pos < start:
                self._skip(stream, start - pos)
            data = stream.read(end - start)
        except BaseException:
            stream.close()
            raise
        self._keep(stream, end, whole, ended=len(data) < end - start)
        return data

    def _open(self, start: int, end: int, *, open_ended: bool) -> tuple[Stream, int, bool]:
        """A new GET for ``[start, end)`` (to the end of the file when ``open_ended``): (stream, its position,
        whether it is the whole file)."""
        readers = self._readers
        headers = dict(IDENTITY)
        whole_file = start == 0 and end >= self._size
        if readers.range_supported is not False and not (whole_file and open_ended):
            headers["Range"] = f"bytes={start}-" + ("" if open_ended else str(end - 1))
        stream = readers.session.open_stream("GET", self._uri, headers=headers, ok=(200, 206))
        self.requests += 1
        try:
            if stream.status == 206:
                check_range(stream, start, self._name, self._size)
                readers.saw_ranged(True, stream.url)
                return stream, start, False
            check_whole_file(stream, self._size, self._name)
        except BaseException as exc:
            stream.close()
            if isinstance(exc, FileChanged) and readers.on_changed is not None:
                readers.on_changed(self._uri)
            raise
        if "Range" in headers and not whole_file:
            readers.saw_ranged(False, stream.url)
        return stream, 0, True

    def _skip(self, stream: Stream, count: int) -> None:
        while count > 0:
            skipped = stream.read(min(count, _SKIP_CHUNK))
            if not skipped:
                raise ServerError(f"The server's answer for {self._name} ended before offset {count}")
            count -= len(skipped)

    def _keep(self, stream: Stream, pos: int, whole: bool, *, ended: bool) -> None:
        """Keep a stream that has more to send for the next fetch; close any other."""
        keep = not ended and pos < self._size and (whole or self._open_ended(stream))
        with self._lock:
            if keep and not self._closed:
                stream, self._stream = self._stream, stream
                self._stream_pos, self._stream_whole = pos, whole
        if stream is not None:
            stream.close()

    def _open_ended(self, stream: Stream) -> bool:
        match = _CONTENT_RANGE.match(stream.headers.get("Content-Range") or "")
        return match is not None and int(match.group(2)) >= self._size - 1

    def close(self) -> None:
        """Close the kept stream (called by the reader's ``close()``)."""
        with self._lock:
            self._closed = True
            stream, self._stream = self._stream, None
        if stream is not None:
            stream.close()


__all__ = ["FileReaders", "RangeFetch", "check_range", "check_whole_file", "identity_length", "IDENTITY"]
