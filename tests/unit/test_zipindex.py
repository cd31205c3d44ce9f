"""Members of a zip found while it arrives (model/zipindex.py), on zips written by Python's zipfile the
ways servers write them: sizes in the headers (seekable output, XNAT's stored zips), sizes in data
descriptors (a stream, the emulator), zip64, and compressed members, which the index does not follow."""

from __future__ import annotations

import io
import zipfile

import pytest

from xnatfs.model.zipindex import ZipStreamIndex

pytestmark = pytest.mark.unit

FILES = {f"E1/scans/1/resources/DICOM/files/1.MR.{i:03d}.dcm": bytes([i]) * (1000 + 37 * i) for i in range(40)}


class Stream(io.RawIOBase):
    """A write-only, unseekable sink: zipfile then puts each member's sizes in a data descriptor."""

    def __init__(self) -> None:
        self.data = bytearray()

    def writable(self) -> bool:
        return True

    def write(self, b) -> int:  # type: ignore[no-untyped-def, override]
        self.data += b
        return len(b)


def make_zip(*, seekable: bool, compression: int = zipfile.ZIP_STORED, zip64: bool = False) -> bytes:
    sink: io.BytesIO | Stream = io.BytesIO() if seekable else Stream()
    with zipfile.ZipFile(sink, "w", compression=compression) as archive:  # type: ignore[arg-type]
        for name, data in FILES.items():
            info = zipfile.ZipInfo(name)
            info.compress_type = compression
            with archive.open(info, "w", force_zip64=zip64) as member:
                member.write(data)
    return bytes(sink.getvalue() if isinstance(sink, io.BytesIO) else sink.data)


def arrive(blob: bytes, chunk: int, sizes: dict[str, int]) -> tuple[list, list[int], ZipStreamIndex]:
    """Feed ``blob`` ``chunk`` bytes at a time; the members found and how many bytes had come for each."""
    index = ZipStreamIndex(lambda offset, count: blob[offset: offset + count], sizes.get)
    found, when = [], []
    for received in range(chunk, len(blob) + chunk, chunk):
        received = min(received, len(blob))
        for member in index.advance(received):
            assert member.offset + member.size <= received  # never before its last byte is there
            found.append(member)
            when.append(received)
    return found, when, index


@pytest.mark.parametrize("seekable, zip64", [(True, False), (False, False), (False, True)])
def test_each_stored_member_is_found_once_its_bytes_have_arrived(seekable: bool, zip64: bool) -> None:
    blob = make_zip(seekable=seekable, zip64=zip64)
    sizes = {name: len(data) for name, data in FILES.items()}
    found, when, index = arrive(blob, 4096, sizes)
    assert [m.name for m in found] == list(FILES)
    for member in found:
        assert blob[member.offset: member.offset + member.size] == FILES[member.name]
    assert when[0] < len(blob) // 4  # the first members long before the whole zip (and its directory)
    assert index.stopped  # at the central directory


def test_a_compressed_member_stops_the_index() -> None:
    blob = make_zip(seekable=False, compression=zipfile.ZIP_DEFLATED)
    found, _, index = arrive(blob, 4096, {name: len(data) for name, data in FILES.items()})
    assert found == [] and index.stopped


def test_a_descriptor_member_of_unknown_or_wrong_size_stops_the_index() -> None:
    blob = make_zip(seekable=False)
    names = list(FILES)
    unknown = {name: len(FILES[name]) for name in names[:5]}
    found, _, index = arrive(blob, 1024, unknown)
    assert [m.name for m in found] == names[:5] and index.stopped
    wrong = {name: len(data) for name, data in FILES.items()}
    wrong[names[3]] += 1  # the listing says otherwise (the file changed since): the index loses its way
    found, _, index = arrive(blob, 1024, wrong)
    assert [m.name for m in found] == names[:4] and index.stopped
    assert found[3].size == wrong[names[3]]  # reported as claimed; its reader's md5 check refuses it


def test_sizes_in_the_headers_need_no_expected_size() -> None:
    found, _, _ = arrive(make_zip(seekable=True), 100_000, {})
    assert len(found) == len(FILES)
