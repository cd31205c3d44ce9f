"""Moving bytes between the server and local disk: streamed downloads, zip extraction, streamed uploads.

Memory stays bounded for any size: downloads are written chunk by chunk (md5 computed on the way);
zip archives (``?format=zip``) are spooled to a temporary file on disk, then extracted member by
member with every path checked, so no entry can land outside the target (absolute paths, ``..``,
symlinks, device files are refused); uploads stream from a seekable file, and a non-seekable
source is first spooled to a temporary file, so a retried or re-authenticated ``PUT`` can rewind.

Progress callbacks get ``(bytes_done, bytes_total_or_None)``.
"""

from __future__ import annotations

import hashlib
import io
import logging
import os
import shutil
import stat
import tempfile
import zipfile
from collections.abc import Callable, Iterator
from pathlib import Path, PurePosixPath
from typing import IO, Any

from xnatfs.errors import ChecksumMismatch, ServerError, UploadError
from xnatfs.settings import MiB
from xnatfs.transport.session import Params, XNATSession

log = logging.getLogger(__name__)

Progress = Callable[[int, "int | None"], None]
CHUNK = 1 * MiB
SPOOL_IN_MEMORY = 8 * MiB


def stream_to_file(session: XNATSession, path: str, target: Path, *, params: Params = None,
                   expected_md5: str = "", expected_size: int | None = None,
                   progress: Progress | None = None) -> Path:
    """Stream ``GET path`` into ``target`` (via a ``.part`` file renamed at the end), checking md5/size."""
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(target.name + ".part")
    digest = hashlib.md5(usedforsecurity=False)
    done = 0
    try:
        with session.open_stream("GET", path, params=params, headers={"Accept-Encoding": "identity"}) as stream, \
                open(partial, "wb") as out:
            total = expected_size
            if total is None and stream.headers.get("Content-Length", "").isdigit():
                total = int(stream.headers["Content-Length"])
            for chunk in stream.iter_chunks(CHUNK):
                out.write(chunk)
                digest.update(chunk)
                done += len(chunk)
                if progress is not None:
                    progress(done, total)
        if expected_md5 and digest.hexdigest().lower() != expected_md5.lower():
            raise ChecksumMismatch(f"md5 of the download of {path} is {digest.hexdigest()}, the server says "
                                   f"{expected_md5}; the partial file was removed")
        if expected_size is not None and done != expected_size:
            raise ChecksumMismatch(f"Downloaded {done} bytes of {path}; the server's listing says {expected_size}")
        os.replace(partial, target)
    finally:
        partial.unlink(missing_ok=True)
    return target


def download_and_extract(session: XNATSession, path: str, target: Path, *, params: Params = None,
                         progress: Progress | None = None) -> list[Path]:
    """``GET path`` as a zip (``format=zip``), spooled to disk, then extracted safely under ``target``."""
    target = Path(target)
    target.mkdir(parents=True, exist_ok=True)
    query = list(params.items()) if isinstance(params, dict) else list(params or [])
    query = [(k, v) for k, v in query if k != "format"] + [("format", "zip")]
    with tempfile.TemporaryDirectory(prefix="xnatfs-zip-") as tmp:
        archive = stream_to_file(session, path, Path(tmp) / "download.zip", params=query, progress=progress)
        return safe_extract(archive, target)


def safe_extract(archive: Path, target: Path) -> list[Path]:
    """Extract the zip ``archive`` under ``target``; refuse any member that would escape it."""
    root = Path(target).resolve()
    written: list[Path] = []
    try:
        with zipfile.ZipFile(archive) as zf:
            for info in zf.infolist():
                destination = _member_destination(root, info)
                if destination is None:
                    continue
                if info.is_dir():
                    destination.mkdir(parents=True, exist_ok=True)
                    continue
                destination.parent.mkdir(parents=True, exist_ok=True)
                with zf.open(info) as src, open(destination, "wb") as out:
                    shutil.copyfileobj(src, out, CHUNK)
                written.append(destination)
    except zipfile.BadZipFile as exc:
        raise ServerError(f"The server sent a corrupt zip archive: {exc}") from exc
    return written


def _member_destination(root: Path, info: zipfile.ZipInfo) -> Path | None:
    """Where a zip member goes, or None (logged) if it is a link/device or would leave ``root``."""
    file_type = stat.S_IFMT(info.external_attr >> 16)  # 0 when the zip did not record one
    if file_type and file_type not in (stat.S_IFREG, stat.S_IFDIR):
        log.warning("Skipping zip member %r: not a regular file or directory", info.filename)
        return None
    name = info.filename.replace("\\", "/")
    parts = PurePosixPath(name).parts
    if name.startswith("/") or not parts or any(p in ("..", "") for p in parts) or ":" in parts[0]:
        log.warning("Skipping zip member %r: its path would leave the target directory", info.filename)
        return None
    destination = root.joinpath(*parts).resolve()
    if destination != root and root not in destination.parents:
        log.warning("Skipping zip member %r: its path would leave the target directory", info.filename)
        return None
    return destination


class ProgressReader(io.RawIOBase):
    """A read-only, seekable view of a binary file that reports progress as requests reads it.

    ``len()`` is the number of bytes from the start position to the end, so requests sends a
    ``Content-Length`` and streams the body instead of loading it.
    """

    def __init__(self, raw: IO[bytes], progress: Progress | None = None) -> None:
        super().__init__()
        self._raw = raw
        self._start = raw.tell()
        self._size = raw.seek(0, io.SEEK_END) - self._start
        raw.seek(self._start)
        self._progress = progress

    def __len__(self) -> int:
        return self._size

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def read(self, size: int = -1) -> bytes:
        data = self._raw.read(size)
        if self._progress is not None and data:
            self._progress(self.tell(), self._size)
        return data

    def readinto(self, buffer: Any) -> int:
        data = self.read(len(buffer))
        buffer[: len(data)] = data
        return len(data)

    def tell(self) -> int:
        return self._raw.tell() - self._start

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        if whence == io.SEEK_SET:
            offset += self._start
        return self._raw.seek(offset, whence) - self._start


def open_upload_source(source: str | os.PathLike[str] | IO[bytes] | bytes) -> tuple[IO[bytes], bool]:
    """A seekable binary file for ``source`` and whether the caller must close it.

    Paths are opened; bytes are wrapped; seekable file objects are used as they are; anything else
    is spooled to a temporary file (in memory up to 8 MiB, then on disk).
    """
    if isinstance(source, (bytes, bytearray, memoryview)):
        return io.BytesIO(bytes(source)), True
    if isinstance(source, (str, os.PathLike)):
        path = Path(source)
        if not path.is_file():
            raise UploadError(f"Not a file: {path}")
        return open(path, "rb"), True
    seekable = getattr(source, "seekable", None)
    if callable(seekable) and seekable():
        return source, False
    spool = tempfile.SpooledTemporaryFile(max_size=SPOOL_IN_MEMORY)
    shutil.copyfileobj(source, spool, CHUNK)
    spool.seek(0)
    return spool, True  # type: ignore[return-value]


def walk_files(directory: Path) -> Iterator[tuple[Path, str]]:
    """Every regular file under ``directory`` (sorted) with its ``/``-separated relative path."""
    directory = Path(directory)
    if not directory.is_dir():
        raise UploadError(f"Not a directory: {directory}")
    for path in sorted(directory.rglob("*")):
        if path.is_file() and not path.is_symlink():
            yield path, path.relative_to(directory).as_posix()


__all__ = ["stream_to_file", "download_and_extract", "safe_extract", "ProgressReader", "open_upload_source",
           "walk_files", "Progress"]
