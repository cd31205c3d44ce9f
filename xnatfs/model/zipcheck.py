"""Is a file a complete zip archive of DICOM files? Checked before anything is sent to the import service.

The one zip check of xnatfs: ``Services.import_`` (the library and ``xnatfs import``) and the mount's
``import/`` directory both call :func:`check_import_zip`.

One pass over the file with :mod:`zipfile`: the central directory must be readable (a copy cut short
has none, so a truncated zip is always caught), every member is read to its end so that zipfile
checks its CRC-32 (a damaged zip is caught), and at least one member must look like DICOM (a Part 10
file has ``DICM`` at byte 128; a raw dataset starts with group 0002 or 0008). Memory stays flat:
members are read in 1 MiB pieces.

Before any member is read (issue 18), the layout is checked from the zip's own records, so that time
and memory stay bounded by the zip's size: more than :data:`MAX_ENTRIES` entries, or a central
directory larger than the file, is refused before zipfile parses it; members whose data overlap (a
1 MB zip whose 20 entries all point at one 1 GiB member) or bytes between members that no central
entry accounts for (local entries hidden from the central directory, which another unzip would
extract) are refused; and declared sizes above :data:`MAX_RATIO` times the zip's size (more than
DEFLATE can reach) are a zip bomb.

Each refusal is a :class:`~xnatfs.errors.NotImportable` whose message says, in plain words, what is
wrong and what to do; nothing is sent for such a file.

Imports the standard library and :mod:`xnatfs.errors` only.
"""

from __future__ import annotations

import os
import struct
import zipfile
from pathlib import Path
from typing import IO

from xnatfs.errors import NotImportable

CHUNK = 1024 * 1024
#: the most entries a zip may have (the central directory is held in memory while it is checked)
MAX_ENTRIES = 100_000
#: declared uncompressed bytes per byte of zip, at most (DEFLATE's own limit is about 1032)
MAX_RATIO = 1100
#: bytes a data descriptor may take after a member's data
_DESCRIPTOR = 24
_LOCAL = struct.Struct("<4s5H3L2H")
#: names that zip tools add next to the real content (macOS resource forks, thumbnails)
_NOISE_PREFIXES = ("__MACOSX/",)
_NOISE_NAMES = (".DS_Store", "Thumbs.db", "desktop.ini")


def looks_like_dicom(head: bytes) -> bool:
    """A DICOM Part 10 file (``DICM`` at 128) or a raw dataset starting with group 0002 or 0008."""
    return head[128:132] == b"DICM" or head[:2] in (b"\x02\x00", b"\x08\x00")


def check_import_zip(source: Path | IO[bytes], name: str, *, require_dicom: bool = True) -> tuple[int, int]:
    """Check ``source`` (a path, or a seekable binary file left where it was; shown as ``name``); returns
    ``(members, dicom_members)`` or raises NotImportable. ``require_dicom=False`` is for import handlers
    that take other content."""
    if isinstance(source, (str, os.PathLike)):
        with open(source, "rb") as handle:
            return check_import_zip(handle, name, require_dicom=require_dicom)
    start = source.tell()
    try:
        size = source.seek(0, os.SEEK_END) - start
        source.seek(start)
        magic = source.read(4)
        return _check(source, name, size, magic, require_dicom)
    finally:
        source.seek(start)


def _check(handle: IO[bytes], name: str, size: int, magic: bytes, require_dicom: bool) -> tuple[int, int]:
    if size == 0:
        raise NotImportable(f"{name} is empty: there is nothing to import.")
    if magic[:2] != b"PK":
        raise NotImportable(f"{name} is not a zip archive: only zip archives of DICOM files can be imported "
                            f"here.")
    try:
        _check_directory(handle, name, size)
        with zipfile.ZipFile(handle) as archive:
            _check_layout(handle, name, size, archive.infolist(), archive.start_dir)
            members = [info for info in archive.infolist() if not info.is_dir()]
            dicom = 0
            for info in members:
                if _is_dicom_member(archive, info):
                    dicom += 1
    except zipfile.BadZipFile as exc:
        reason = str(exc)
        if "CRC" in reason or "Bad magic number" in reason or "Overlapped" in reason:
            raise NotImportable(f"{name} is damaged ({reason}): copy it again from a good source.") from exc
        raise NotImportable(f"{name} is not a complete zip archive ({reason}): if the copy was interrupted, "
                            f"copy it again ({size} bytes were received).") from exc
    except (EOFError, OSError) as exc:
        raise NotImportable(f"{name} is not a complete zip archive ({exc}): if the copy was interrupted, "
                            f"copy it again ({size} bytes were received).") from exc
    except NotImplementedError as exc:
        raise NotImportable(f"{name} uses a zip feature XNAT cannot read ({exc}): make the zip again with "
                            f"plain 'deflate' compression.") from exc
    except RuntimeError as exc:  # zipfile: "File ... is encrypted, password required"
        raise NotImportable(f"{name} cannot be read ({exc}): XNAT cannot import encrypted zip archives.") from exc
    if not members:
        raise NotImportable(f"{name} is a zip archive with no files in it: there is nothing to import.")
    if dicom == 0 and require_dicom:
        raise NotImportable(f"{name} contains no DICOM files ({len(members)} file(s), none of them DICOM): the "
                            f"import service only accepts DICOM.")
    return len(members), dicom


def _check_directory(handle: IO[bytes], name: str, size: int) -> None:
    """Refuse, from the end-of-central-directory record alone, a zip with too many entries or a central
    directory larger than the file (before zipfile builds one object per entry)."""
    handle.seek(0)
    end = zipfile._EndRecData(handle)  # type: ignore[attr-defined]  # zipfile's own reader (zip64 too)
    if end is None:
        raise zipfile.BadZipFile("File is not a zip file")
    entries, directory = end[zipfile._ECD_ENTRIES_TOTAL], end[zipfile._ECD_SIZE]  # type: ignore[attr-defined]
    if entries > MAX_ENTRIES or directory > size or entries * 46 > directory:
        raise NotImportable(f"{name} was refused: its central directory lists {entries} entries in {directory} "
                            f"bytes (at most {MAX_ENTRIES} entries are checked); make smaller zips.")


def _check_layout(handle: IO[bytes], name: str, size: int, infos: list[zipfile.ZipInfo], start_dir: int) -> None:
    """Members must not overlap and must account for every byte before the central directory; declared
    sizes must be within :data:`MAX_RATIO` of the zip's size."""
    position = min((info.header_offset for info in infos), default=start_dir)
    if position > 0:
        handle.seek(0)
        if b"PK\x03\x04" in handle.read(min(position, CHUNK)) or position > CHUNK:
            raise NotImportable(f"{name} was refused: it has data before its first member that the central directory "
                                f"does not list (hidden zip entries?).")
    for info in sorted(infos, key=lambda i: i.header_offset):
        if info.header_offset < position:
            raise NotImportable(f"{name} was refused: its members overlap ({info.filename[:100]!r} points into another "
                                f"member's data; a zip bomb?).")
        _refuse_gap(name, info.header_offset - position)
        handle.seek(info.header_offset)
        header = handle.read(_LOCAL.size)
        if len(header) < _LOCAL.size or header[:4] != b"PK\x03\x04":
            raise zipfile.BadZipFile(f"Bad magic number for file header of {info.filename[:100]!r}")
        fields = _LOCAL.unpack(header)
        position = info.header_offset + _LOCAL.size + fields[9] + fields[10] + info.compress_size
        if position > start_dir:
            raise NotImportable(f"{name} was refused: member {info.filename[:100]!r} runs into the central directory.")
    _refuse_gap(name, start_dir - position)
    declared = sum(info.file_size for info in infos)
    if declared > MAX_RATIO * max(size, 1):
        raise NotImportable(f"{name} was refused as a zip bomb: its members declare {declared} bytes, more than "
                            f"{MAX_RATIO} times its {size} bytes.")


def _refuse_gap(name: str, gap: int) -> None:
    """Bytes between members beyond a data descriptor: a local entry the central directory hides."""
    if gap > _DESCRIPTOR:
        raise NotImportable(f"{name} was refused: {gap} bytes between its members are listed by no central "
                            f"directory entry (hidden zip entries?).")


def _is_dicom_member(archive: zipfile.ZipFile, info: zipfile.ZipInfo) -> bool:
    """Read the member to its end (zipfile checks the CRC there); True if it looks like DICOM."""
    noise = info.filename.startswith(_NOISE_PREFIXES) or info.filename.rsplit("/", 1)[-1] in _NOISE_NAMES
    with archive.open(info) as member:
        head = member.read(132)
        while member.read(CHUNK):
            pass
    return not noise and looks_like_dicom(head)


__all__ = ["check_import_zip", "looks_like_dicom"]
