"""Issue 18, row 5: the zip check refuses what it cannot vouch for, in time bounded by the zip's size.

An overlap bomb (one deflated member of zeros that 20 central-directory entries all point at, so a
reader would inflate it 20 times), a local entry hidden from the central directory, too many entries
and a declared size no DEFLATE stream can reach are refused with a clear message, in under a second.
"""

from __future__ import annotations

import io
import struct
import time
import zipfile
import zlib

import pytest

from xnatfs.errors import NotImportable
from xnatfs.model.zipcheck import check_import_zip

pytestmark = pytest.mark.unit

DICOM = bytes(128) + b"DICM" + bytes(64)
MiB = 1024 * 1024


def plain_zip(members: dict[str, bytes], compression: int = zipfile.ZIP_DEFLATED) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression) as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return buffer.getvalue()


def overlap_bomb(copies: int = 20, size: int = 256 * MiB) -> bytes:
    """One member ``m00.dcm`` (DICOM header + zeros, deflated), and ``copies`` central entries pointing at it."""
    compressor = zlib.compressobj(9, zlib.DEFLATED, -15)
    data = compressor.compress(DICOM) + compressor.compress(bytes(size - len(DICOM))) + compressor.flush()
    crc = zlib.crc32(bytes(size - len(DICOM)), zlib.crc32(DICOM))
    local = struct.pack("<4s5H3L2H", b"PK\x03\x04", 20, 0, 8, 0, 0, crc, len(data), size, 7, 0) + b"m00.dcm" + data
    central = b"".join(struct.pack("<4s6H3L5H2L", b"PK\x01\x02", 20, 20, 0, 8, 0, 0, crc, len(data), size, 7, 0, 0,
                                   0, 0, 0, 0) + f"m{i:02d}.dcm".encode() for i in range(copies))
    end = struct.pack("<4s4H2LH", b"PK\x05\x06", 0, 0, copies, copies, len(central), len(local), 0)
    return local + central + end


def hidden_entry() -> bytes:
    """A zip whose second local entry is listed by no central-directory entry."""
    visible = plain_zip({"a.dcm": DICOM})
    hidden = plain_zip({"hidden.exe": b"MZ" * 100})
    cut = visible.find(b"PK\x01\x02")
    hidden_local = hidden[:hidden.find(b"PK\x01\x02")]
    central = visible[cut:]
    end_at = central.find(b"PK\x05\x06")
    end = bytearray(central[end_at:])
    struct.pack_into("<L", end, 16, cut + len(hidden_local))  # the central directory moved
    return visible[:cut] + hidden_local + central[:end_at] + bytes(end)


@pytest.mark.parametrize("case, expected", [
    ("overlap", "overlap"),
    ("hidden", "listed by no central directory entry"),
    ("declared", "zip bomb"),
])
def test_a_hostile_zip_is_refused_in_under_a_second(tmp_path: object, case: str, expected: str) -> None:
    if case == "overlap":
        data = overlap_bomb()
    elif case == "hidden":
        data = hidden_entry()
        assert zipfile.ZipFile(io.BytesIO(data)).namelist() == ["a.dcm"]  # invisible to the central directory
    else:
        data = bytearray(plain_zip({"a.dcm": DICOM}))
        at = data.find(b"PK\x01\x02")
        struct.pack_into("<L", data, at + 24, 0xFFFFFFF0)  # declares 4 GiB for a 200-byte member
        data = bytes(data)
    started = time.monotonic()
    with pytest.raises(NotImportable, match=expected) as info:
        check_import_zip(io.BytesIO(data), "upload.zip")
    assert time.monotonic() - started < 1.0
    assert str(info.value).startswith("upload.zip was refused")


def test_too_many_entries_are_refused_before_they_are_parsed() -> None:
    data = bytearray(plain_zip({"a.dcm": DICOM}, zipfile.ZIP_STORED))
    end = data.rfind(b"PK\x05\x06")
    struct.pack_into("<HH", data, end + 8, 0xFFFF, 0xFFFF)  # 65,535 entries claimed...
    struct.pack_into("<L", data, end + 12, 0xFFFFFF)  # ...in 16 MiB of directory: more than the file
    with pytest.raises(NotImportable, match="central directory lists"):
        check_import_zip(io.BytesIO(bytes(data)), "upload.zip")


def test_an_ordinary_zip_still_passes() -> None:
    data = plain_zip({f"s/{i}.dcm": DICOM + bytes(i) for i in range(50)})
    assert check_import_zip(io.BytesIO(data), "ok.zip") == (50, 50)
