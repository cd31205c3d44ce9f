"""Is a file a complete zip archive of DICOM files? Checked before anything is sent to the import service.

The one zip check of xnatfs: ``Services.import_`` (the library and ``xnatfs import``) and the mount's
``import/`` directory both call :func:`check_import_zip`.

One pass over the file with :mod:`zipfile`: the central directory must be readable (a copy cut short
has none, so a truncated zip is always caught), every member is read to its end so that zipfile
checks its CRC-32 (a damaged zip is caught), and at least one member must look like DICOM (a Part 10
file has ``DICM`` at byte 128; a raw dataset starts with group 0002 or 0008). Memory stays flat:
members are read in 1 MiB pieces.

Each refusal is a :class:`~xnatfs.errors.NotImportable` whose message says, in plain words, what is
wrong and what to do; nothing is sent for such a file.

Imports the standard library and :mod:`xnatfs.errors` only.
"""

from __future__ import annotations

import os
import zipfile
from pathlib import Path
from typing import IO

from xnatfs.errors import NotImportable

CHUNK = 1024 * 1024
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
        with zipfile.ZipFile(handle) as archive:
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


def _is_dicom_member(archive: zipfile.ZipFile, info: zipfile.ZipInfo) -> bool:
    """Read the member to its end (zipfile checks the CRC there); True if it looks like DICOM."""
    noise = info.filename.startswith(_NOISE_PREFIXES) or info.filename.rsplit("/", 1)[-1] in _NOISE_NAMES
    with archive.open(info) as member:
        head = member.read(132)
        while member.read(CHUNK):
            pass
    return not noise and looks_like_dicom(head)


__all__ = ["check_import_zip", "looks_like_dicom"]
