"""Files in a resource: metadata from the listing row, seekable reads, streamed download.

``File.open()`` returns a seekable binary file (``io.BufferedReader`` over :class:`RemoteReader`).
Reads go through a :class:`~xnatfs.cache.blocks.BlockReader` whose fetch is a ranged ``GET``
(``Range: bytes=a-b`` → 206), so memory stays bounded and a seek costs one small request, unlike
xnatpy's ``open()``, which buffers the whole file (xnatpy-notes §4.6).

Real XNAT may ignore ``Range`` (xnat-rest-spec §13.2) and answer 200 with the whole body. Then the
reader falls back to one forward stream: bytes before the wanted offset are skipped, a backward seek
outside the cached blocks re-opens the stream. This is logged once per connection, and later
files of that connection go straight to the stream.

Every request has the connection's timeouts; a server that stops sending fails the read with
:class:`~xnatfs.errors.RequestTimeout` instead of hanging. No answer is taken on trust: a 206 must
start where asked and its ``Content-Length`` must match its ``Content-Range``; a 200 (the whole file)
whose ``Content-Length`` is not the file's size (a login page, a proxy's error page) is a
:class:`~xnatfs.errors.ServerError`; and only the bytes asked for are ever read, however long a body
the server announces or sends.
"""

from __future__ import annotations

import io
import logging
import re
from pathlib import Path
from typing import TYPE_CHECKING, Any

from xnatfs.cache.blocks import BlockReader
from xnatfs.errors import ServerError
from xnatfs.model.transfer import Progress, stream_to_file
from xnatfs.redact import redact_url
from xnatfs.rest.paths import file_path, file_uri_from_listing, normalize
from xnatfs.rest.resultset import Row
from xnatfs.settings import MiB
from xnatfs.transport.session import Stream

if TYPE_CHECKING:
    from xnatfs.model.base import ModelContext, XNATObject

log = logging.getLogger(__name__)

_CONTENT_RANGE = re.compile(r"bytes\s+(\d+)-(\d+)/(\d+|\*)")
IDENTITY = {"Accept-Encoding": "identity"}


class RemoteReader(io.RawIOBase):
    """A read-only, seekable raw file over HTTP (see the module docstring). Not thread-safe by
    itself; wrap it in ``io.BufferedReader`` (which locks) as :meth:`File.open` does."""

    def __init__(self, ctx: ModelContext, path: str, size: int) -> None:
        super().__init__()
        self._ctx = ctx
        self._path = path
        self._size = size
        self._pos = 0
        self._blocks = BlockReader(self._fetch, size, ctx.settings.read)
        self._forward: Stream | None = None
        self._forward_pos = 0
        self.requests = 0

    def __repr__(self) -> str:
        return f"<RemoteReader {redact_url(self._path)} size={self._size} pos={self._pos}>"

    @property
    def blocks(self) -> BlockReader:
        return self._blocks

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._pos

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        if self.closed:
            raise ValueError("I/O operation on closed file")
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self._pos, io.SEEK_END: self._size}[whence]
        if base + offset < 0:
            raise ValueError(f"negative seek position {base + offset}")
        self._pos = base + offset
        return self._pos

    def readinto(self, buffer: Any) -> int:
        data = self.read(len(buffer))
        buffer[: len(data)] = data
        return len(data)

    def read(self, size: int = -1) -> bytes:
        if self.closed:
            raise ValueError("I/O operation on closed file")
        if size is None or size < 0:
            size = max(0, self._size - self._pos)
        data = self._blocks.read(self._pos, size)
        self._pos += len(data)
        return data

    def readall(self) -> bytes:
        return self.read(-1)

    def close(self) -> None:
        if not self.closed:
            self._close_forward()
            self._blocks.clear()
        super().close()

    # -- fetching -----------------------------------------------------------------------------------

    def _fetch(self, start: int, end: int) -> bytes:
        if not self._ctx.range_ignored:
            headers = {**IDENTITY, "Range": f"bytes={start}-{end - 1}"}
            stream = self._ctx.session.open_stream("GET", self._path, headers=headers, ok=(200, 206))
            self.requests += 1
            if stream.status == 206:
                with stream:
                    self._check_content_range(stream, start)
                    return stream.read(end - start)
            self._check_whole_file(stream)
            self._ctx.range_ignored = True
            self._ctx.note_once("range-ignored", "The server ignores HTTP Range requests (answered %s with the "
                                "whole file); files are read as forward streams, and seeking backwards reads "
                                "again from the start", redact_url(stream.url))
            self._close_forward()
            self._forward, self._forward_pos = stream, 0
        return self._fetch_forward(start, end)

    def _check_content_range(self, stream: Stream, start: int) -> None:
        match = _CONTENT_RANGE.match(stream.headers.get("Content-Range", ""))
        if match is None or int(match.group(1)) != start:
            raise ServerError(f"The server answered a Range request for offset {start} with Content-Range "
                              f"{stream.headers.get('Content-Range')!r}", status=206, url=stream.url)
        length = _identity_length(stream)
        span = int(match.group(2)) - int(match.group(1)) + 1
        if length is not None and length != span:
            raise ServerError(f"The server answered a Range request with Content-Length {length} for Content-Range "
                              f"{stream.headers.get('Content-Range')!r}", status=206, url=stream.url)

    def _check_whole_file(self, stream: Stream) -> None:
        """A 200 answer to a Range request is the whole file: its length must be the file's size."""
        length = _identity_length(stream)
        if length is not None and length != self._size:
            stream.close()
            raise ServerError(f"The server answered with {length} bytes for a file of {self._size} bytes (a login "
                              f"page or a proxy's answer instead of the file?)", status=stream.status, url=stream.url)

    def _fetch_forward(self, start: int, end: int) -> bytes:
        if self._forward is None or start < self._forward_pos:
            self._close_forward()
            stream = self._ctx.session.open_stream("GET", self._path, headers=IDENTITY)
            self.requests += 1
            self._check_whole_file(stream)
            self._forward, self._forward_pos = stream, 0
        while self._forward_pos < start:
            skipped = self._forward.read(min(start - self._forward_pos, 1 * MiB))
            if not skipped:
                break
            self._forward_pos += len(skipped)
        data = self._forward.read(end - start)
        self._forward_pos += len(data)
        return data

    def _close_forward(self) -> None:
        if self._forward is not None:
            self._forward.close()
            self._forward = None


def _identity_length(stream: Stream) -> int | None:
    """The body length ``Content-Length`` announces, if the body is not content-encoded (else None)."""
    if stream.headers.get("Content-Encoding", "identity").strip().lower() not in ("", "identity"):
        return None
    declared = stream.headers.get("Content-Length", "").strip()
    return int(declared) if declared.isdigit() else None


class File:
    """One file of a resource, described by its row of ``<resource>/files`` (xnat-rest-spec §13.1)."""

    def __init__(self, ctx: ModelContext, resource: XNATObject, row: Row) -> None:
        self._ctx = ctx
        self._resource = resource
        self._row = dict(row)
        uri = row.get("URI", "")
        try:
            self._path, self._uri = file_uri_from_listing(uri, row.get("Name", ""))
        except Exception:  # noqa: BLE001 - a URI without /files/: the name column in this resource
            self._path = row.get("Name", "")
            self._uri = file_path(resource.uri, self._path) if self._path else normalize(uri)
        self._size: int | None = int(row["Size"]) if row.get("Size", "").isdigit() else None

    def __repr__(self) -> str:
        return f"<File {self._path} ({self._size if self._size is not None else '?'} bytes)>"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, File) and other._uri == self._uri

    def __hash__(self) -> int:
        return hash(self._uri)

    @property
    def uri(self) -> str:
        return self._uri

    @property
    def path(self) -> str:
        """The path inside the resource (may contain ``/``)."""
        return self._path

    @property
    def id(self) -> str:
        return self._path

    @property
    def name(self) -> str:
        return self._row.get("Name") or self._path.rsplit("/", 1)[-1]

    @property
    def resource(self) -> XNATObject:
        return self._resource

    @property
    def digest(self) -> str:
        """The md5 the server reports (lower-case hex), or ``""``."""
        return self._row.get("digest", "")

    @property
    def format(self) -> str:
        return self._row.get("file_format", "")

    @property
    def content(self) -> str:
        return self._row.get("file_content", "")

    @property
    def tags(self) -> str:
        return self._row.get("file_tags", "")

    @property
    def data(self) -> dict[str, str]:
        """The file's listing row as the server sent it."""
        return dict(self._row)

    @property
    def size(self) -> int:
        """Size in bytes, from the listing; a ``HEAD`` request if the listing has none."""
        if self._size is None:
            resp = self._ctx.session.head(self._uri, headers=IDENTITY)
            length = resp.headers.get("Content-Length", "")
            if not length.isdigit():
                raise ServerError("The server did not say how large the file is", url=redact_url(self._uri))
            self._size = int(length)
        return self._size

    def open(self, *, buffer_size: int = 64 * 1024) -> io.BufferedReader:
        """A seekable binary file reading by ranged GETs through a bounded block cache."""
        return io.BufferedReader(RemoteReader(self._ctx, self._uri, self.size), buffer_size=buffer_size)

    def download(self, target: str | Path, *, progress: Progress | None = None, verify: bool = True) -> Path:
        """Stream the file to ``target`` (a file path, or a directory to put ``name`` in).

        With ``verify`` the md5 is checked against :attr:`digest` (and the size against the listing);
        a mismatch raises :class:`~xnatfs.errors.ChecksumMismatch` and leaves no file behind.
        """
        target = Path(target)
        if target.is_dir():
            target = target / self.name
        return stream_to_file(self._ctx.session, self._uri, target, expected_md5=self.digest if verify else "",
                              expected_size=self._size if verify else None, progress=progress)

    def delete(self) -> None:
        """Delete the file from its resource on the server."""
        self._ctx.session.delete(self._uri)
        self._resource._files_changed()  # type: ignore[attr-defined]


__all__ = ["File", "RemoteReader"]
