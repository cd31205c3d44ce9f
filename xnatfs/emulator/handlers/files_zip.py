"""``?format=zip`` downloads, streamed: memory stays flat however large the archive (spec §13.3).

XNAT's ``ZipRepresentation`` writes straight to the socket; here :class:`ChunkSink` is the small
write-only object ``zipfile.ZipFile`` writes into, and :func:`zip_chunks` copies each file in
``CHUNK`` pieces, yielding whatever the sink holds after each piece. Because the sink cannot seek,
zipfile writes data descriptors after each entry (sizes and CRC in the central directory, which
every reader of Python's, Info-ZIP's or libarchive's kind uses) and picks ZIP64 per entry from the
file size. Entries are STORED, XNAT's default ``zipCompressionMethod``; ``compression=8`` deflates.

Entry paths follow ``RestFileUtils.buildRelativePath``: the file's URI cut at the session (or
subject, or project) accession ID, that ID replaced by its label, ``/<resource id>/files/`` by
``/<resource label>/files/``, and scans named in the URL by ``<id>-<type with non-word chars → _>``:
``<session label>/scans/<id>-<type>/resources/<label>/files/<path>``.
"""

from __future__ import annotations

import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from werkzeug.wrappers import Response

from xnatfs.emulator.handlers.files_download import CHUNK, attachment
from xnatfs.emulator.handlers.files_scope import Scope
from xnatfs.emulator.responses import HTTPError
from xnatfs.emulator.store import FileRow, Resource


@dataclass(frozen=True)
class ZipItem:
    """One file going into an archive: its name inside the zip and where its bytes are."""

    arcname: str
    disk_path: Path


class ChunkSink:
    """A write-only, non-seekable file object collecting zipfile's output between yields."""

    def __init__(self) -> None:
        self._parts: list[bytes] = []

    def write(self, data: bytes) -> int:
        self._parts.append(bytes(data))
        return len(data)

    def flush(self) -> None:
        pass

    def take(self) -> bytes:
        data = b"".join(self._parts)
        self._parts.clear()
        return data


def zip_chunks(items: list[ZipItem], compression: int = zipfile.ZIP_STORED) -> Iterator[bytes]:
    """The bytes of a zip of ``items``, produced piece by piece (never more than ~CHUNK held)."""
    sink = ChunkSink()
    with zipfile.ZipFile(sink, "w", compression=compression, allowZip64=True) as archive:  # type: ignore[arg-type]
        for item in items:
            try:
                source = open(item.disk_path, "rb")
            except FileNotFoundError:
                continue  # deleted while the archive was being written: XNAT skips missing files too
            with source:
                info = zipfile.ZipInfo.from_file(item.disk_path, item.arcname)
                info.compress_type = compression
                with archive.open(info, "w") as target:
                    while chunk := source.read(CHUNK):
                        target.write(chunk)
                        if data := sink.take():
                            yield data
            if data := sink.take():
                yield data
    if data := sink.take():
        yield data


def entry_name(uri: str, root: tuple[str, str], resource: Resource, renames: dict[str, str]) -> str:
    """``RestFileUtils.buildRelativePath`` for one file URI (see module docstring)."""
    token, name = root
    cut = uri.find(f"/{token}/")
    relative = uri[cut + 1:] if cut >= 0 else f"{token}{uri}"
    relative = relative.replace(token, name)
    relative = relative.replace(f"/{resource.id}/files/", f"/{resource.label}/files/", 1)
    for scan_id, renamed in renames.items():
        relative = relative.replace(f"/scans/{scan_id}/", f"/scans/{renamed}/", 1)
    return relative


def zip_response(request_args: dict, scope: Scope, files: list[tuple[Resource, FileRow, str]]) -> Response:
    """A streamed ``application/zip`` of ``(resource, file, uri)`` triples; 404 when empty."""
    if not files:
        raise HTTPError(404, "Not Found")
    root, renames = scope.archive_root(), scope.scan_renames()
    items = [ZipItem(entry_name(uri, root, resource, renames), row.disk_path) for resource, row, uri in files]
    return archive_response(items, scope.download_name(), request_args)


def archive_response(items: list[ZipItem], download_name: str, request_args: dict) -> Response:
    compression = zipfile.ZIP_DEFLATED if str(request_args.get("compression", "0")) == "8" else zipfile.ZIP_STORED
    response = Response(zip_chunks(items, compression), content_type="application/zip", direct_passthrough=True)
    response.headers["Content-Disposition"] = attachment(f"{download_name}.zip")
    return response
