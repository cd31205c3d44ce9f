"""Files in a resource: metadata from the listing row, seekable reads, streamed download.

``File.open()`` returns a seekable binary file (``io.BufferedReader`` over :class:`RemoteReader`).
Reads go through the connection's one ranged reader (:class:`~xnatfs.model.reading.FileReaders`,
``ModelContext.readers``; the mount uses the same): a small first block, background read-ahead on
one stream once reads are sequential, a seek costing one small ranged request, memory bounded per
file and for all open files of the connection together, unlike xnatpy's ``open()``, which buffers
the whole file (xnatpy-notes §4.6). A server that ignores ``Range`` is read as a forward stream
(logged once per connection); no answer is taken on trust (:mod:`xnatfs.model.reading`).
"""

from __future__ import annotations

import io
import logging
from pathlib import Path
from typing import TYPE_CHECKING, Any

from xnatfs.cache.blocks import BlockReader
from xnatfs.errors import ServerError
from xnatfs.localpaths import safe_join
from xnatfs.model.reading import IDENTITY
from xnatfs.model.transfer import Progress, stream_to_file
from xnatfs.redact import redact_url
from xnatfs.rest.paths import file_path, file_uri_from_listing, normalize
from xnatfs.rest.resultset import Row

if TYPE_CHECKING:
    from xnatfs.model.base import ModelContext, XNATObject

log = logging.getLogger(__name__)


class RemoteReader(io.RawIOBase):
    """A read-only, seekable raw file over a :class:`~xnatfs.cache.blocks.BlockReader`. Not thread-safe
    by itself (its position); wrap it in ``io.BufferedReader`` (which locks) as :meth:`File.open` does."""

    def __init__(self, reader: BlockReader) -> None:
        super().__init__()
        self._reader = reader
        self._size = reader.size
        self._pos = 0

    def __repr__(self) -> str:
        return f"<RemoteReader {self._reader.name} size={self._size} pos={self._pos}>"

    @property
    def blocks(self) -> BlockReader:
        return self._reader

    @property
    def name(self) -> str:
        """What the file is called (a redacted URI, or a mount path): readers such as pydicom and nibabel
        ask an open file for ``.name`` (``io.BufferedReader`` passes the question on to this raw file)."""
        return str(getattr(self._reader, "name", ""))

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
        data = self._reader.read(self._pos, size)
        self._pos += len(data)
        return data

    def readall(self) -> bytes:
        return self.read(-1)

    def close(self) -> None:
        if not self.closed:
            self._reader.close()
        super().close()


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
        """A seekable binary file reading by ranged GETs through the connection's bounded block cache."""
        reader = self._ctx.readers.open(self._uri, self.size, name=redact_url(self._uri))
        return io.BufferedReader(RemoteReader(reader), buffer_size=buffer_size)

    def download(self, target: str | Path, *, progress: Progress | None = None, verify: bool = True) -> Path:
        """Stream the file to ``target`` (a file path, or a directory to put ``name`` in).

        With ``verify`` the md5 is checked against :attr:`digest` (and the size against the listing);
        a mismatch raises :class:`~xnatfs.errors.ChecksumMismatch` and leaves no file behind. The name
        comes from the server: into a directory it goes through :func:`~xnatfs.localpaths.safe_join`
        (:class:`~xnatfs.errors.UnsafeLocalPath` for ``../x``, ``/abs``, NUL, over-long; nothing written).
        """
        target = Path(target)
        if target.is_dir():
            target = safe_join(target, self.name, what="file name")
        return stream_to_file(self._ctx.session, self._uri, target, expected_md5=self.digest if verify else "",
                              expected_size=self._size if verify else None, progress=progress)

    def delete(self) -> None:
        """Delete the file from its resource on the server."""
        self._ctx.session.delete(self._uri)
        self._resource._files_changed()  # type: ignore[attr-defined]


__all__ = ["File", "RemoteReader"]
