"""Getting uploaded bytes onto local disk: request bodies and the members of uploaded archives.

Everything lands in ``store.tmp_dir`` first, copied in ``CHUNK`` pieces with its md5 computed on
the way (the store's ``copy_stream``), and is then renamed into a resource by ``Store.add_file(move=True)``; so memory does not
grow with the size of an upload and the store's lock is never held while bytes are copied.

``unpack`` serves ``extract=true`` (spec §13.4): a zip or tar archive is opened from its spooled
copy and each regular file becomes a :class:`Spooled` named by its path inside the archive. Every
member name is checked *before* anything is written — an absolute path, ``..`` or a backslash
refuses the whole archive with 400 — and tar links, devices and directories are skipped.
"""

from __future__ import annotations

import os
import tarfile
import tempfile
import zipfile
from functools import partial
from pathlib import Path
from typing import IO, BinaryIO, Callable

from xnatfs.emulator.responses import HTTPError
from xnatfs.emulator.store import Invalid, check_relative_path, copy_stream

ARCHIVE_SUFFIXES = {".zip": "zip", ".tar": "tar", ".tar.gz": "tar", ".tgz": "tar"}


class Spooled:
    """Bytes on local disk waiting to be moved into a resource at ``name`` (or discarded)."""

    def __init__(self, name: str, path: Path, size: int, md5: str | None) -> None:
        self.name, self.path, self.size, self.md5 = name, path, size, md5

    def discard(self) -> None:
        self.path.unlink(missing_ok=True)


def spool(stream: BinaryIO | IO[bytes], tmp_dir: Path, name: str) -> Spooled:
    """Copy a stream to a new file under ``tmp_dir`` in chunks, computing its md5."""
    fd, tmp_name = tempfile.mkstemp(dir=tmp_dir, prefix="upload-")
    try:
        with os.fdopen(fd, "wb") as out:
            size, md5 = copy_stream(stream, out)
    except BaseException:
        Path(tmp_name).unlink(missing_ok=True)
        raise
    return Spooled(name, Path(tmp_name), size, md5)


def archive_kind(name: str) -> str | None:
    """"zip" or "tar" when ``name`` looks like an archive XNAT would extract, else None."""
    lower = name.lower()
    for suffix, kind in ARCHIVE_SUFFIXES.items():
        if lower.endswith(suffix):
            return kind
    return None


def unpack(archive: Path, name: str, tmp_dir: Path) -> list[Spooled]:
    """Spool every regular file of an archive; 400 for a damaged archive or an unsafe member name."""
    kind = archive_kind(name)
    try:
        if kind == "zip":
            return _unpack_zip(archive, tmp_dir)
        return _unpack_tar(archive, tmp_dir)
    except (zipfile.BadZipFile, tarfile.TarError, EOFError) as exc:
        raise HTTPError(400, f"Unable to extract {name}: {exc}") from exc


def _member_path(raw: str) -> str:
    name = raw[2:] if raw.startswith("./") else raw
    try:
        return check_relative_path(name)
    except Invalid as exc:
        raise HTTPError(400, f"Invalid file path in archive: {raw!r}") from exc


def _unpack_zip(archive: Path, tmp_dir: Path) -> list[Spooled]:
    with zipfile.ZipFile(archive) as zf:
        return _spool_members([(info.filename, partial(zf.open, info)) for info in zf.infolist()
                               if not info.is_dir()], tmp_dir)


def _unpack_tar(archive: Path, tmp_dir: Path) -> list[Spooled]:
    with tarfile.open(archive, mode="r:*") as tf:
        return _spool_members([(m.name, partial(tf.extractfile, m)) for m in tf.getmembers() if m.isfile()],
                              tmp_dir)


def _spool_members(members: list[tuple[str, Callable[[], IO[bytes] | None]]], tmp_dir: Path) -> list[Spooled]:
    """Spool each (member name, opener); every name is checked before the first byte is written, an
    opener that gives None is skipped, and on any failure nothing spooled so far is kept."""
    checked = [(_member_path(name), open_member) for name, open_member in members]
    spooled: list[Spooled] = []
    try:
        for path, open_member in checked:
            source = open_member()
            if source is None:
                continue
            with source:
                spooled.append(spool(source, tmp_dir, path))
    except BaseException:
        for item in spooled:
            item.discard()
        raise
    return spooled
