"""The members of a zip while it is still arriving, from their local headers.

Why: a zip's table of contents (its central directory) comes last, so a reader that waits for it
waits for the whole download; a program reading a series file after file would sit idle through
it. Every member is also preceded by a local header that names it and, for a stored (uncompressed)
member, tells where its bytes are and how many there are, so each member can be handed out as soon
as its last byte is on disk. XNAT stores members by default; the emulator and Python's zipfile,
writing to a stream, put the sizes in a data descriptor after the bytes instead, so the caller
supplies the size it expects (the file listing's) for such members.

The index stops (and the caller waits for the central directory) at the first thing it cannot
follow for certain: a compressed or encrypted member, a descriptor whose size is unknown, or a
record that is not where the previous one said it would end. A size taken from the caller is a
claim, not a proof: the member's bytes are checked by whoever reads them (the listing's md5).
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from dataclasses import dataclass

#: local file header (APPNOTE 4.3.7): signature, version, (pad), flags, method, time, date, crc,
#: compressed size, size, name length, extra field length
LOCAL_HEADER = struct.Struct("<4s2B4HL2L2H")
LOCAL_SIGNATURE = b"PK\x03\x04"
DESCRIPTOR_SIGNATURE = b"PK\x07\x08"
_FLAGS, _METHOD, _COMPRESSED, _SIZE, NAME_LENGTH, EXTRA_LENGTH = 3, 4, 8, 9, 10, 11
_ENCRYPTED, _HAS_DESCRIPTOR, _UTF8 = 0x1, 0x8, 0x800
_STORED = 0
_ZIP64_EXTRA = 0x0001
_ZIP64_MARK = 0xFFFFFFFF


@dataclass(frozen=True)
class Member:
    """A stored member whose bytes have all arrived: ``size`` bytes at ``offset`` of the zip."""

    name: str
    offset: int
    size: int


class ZipStreamIndex:
    """Members of a zip in arrival order (see the module docstring).

    ``read_at(offset, count)`` reads bytes of the zip already received; ``expected_size(name)`` is the
    size the caller expects of a member (None if it has no idea). Call :meth:`advance` with the
    number of bytes received so far whenever more arrive.
    """

    def __init__(self, read_at: Callable[[int, int], bytes], expected_size: Callable[[str], int | None]) -> None:
        self._read_at = read_at
        self._expected_size = expected_size
        self._next = 0
        #: after a member with a data descriptor: whether its sizes are 64-bit (None: no descriptor to skip)
        self._descriptor_zip64: bool | None = None
        #: the index can follow no further (the central directory, or something it cannot parse)
        self.stopped = False

    def advance(self, received: int) -> list[Member]:
        """The members completed by the bytes up to ``received``."""
        found: list[Member] = []
        while not self.stopped:
            if self._descriptor_zip64 is not None and not self._skip_descriptor(received):
                break
            member = self._member_at(received)
            if member is None:
                break
            found.append(member)
        return found

    def _member_at(self, received: int) -> Member | None:
        start = self._next
        if received - start < LOCAL_HEADER.size:
            return None
        head = self._read_at(start, LOCAL_HEADER.size)
        if head[:4] != LOCAL_SIGNATURE:
            self.stopped = True  # the central directory (or anything else): the rest waits for it
            return None
        fields = LOCAL_HEADER.unpack(head)
        flags, name_length, extra_length = fields[_FLAGS], fields[NAME_LENGTH], fields[EXTRA_LENGTH]
        data_at = start + LOCAL_HEADER.size + name_length + extra_length
        if received < data_at:
            return None
        if fields[_METHOD] != _STORED or flags & _ENCRYPTED:
            self.stopped = True
            return None
        raw_name = self._read_at(start + LOCAL_HEADER.size, name_length)
        name = raw_name.decode("utf-8" if flags & _UTF8 else "cp437", errors="replace")
        extra = self._read_at(start + LOCAL_HEADER.size + name_length, extra_length)
        zip64 = _zip64_sizes(extra)
        size: int | None = fields[_SIZE]
        if fields[_COMPRESSED] == _ZIP64_MARK or fields[_SIZE] == _ZIP64_MARK:
            size = zip64[0] if zip64 else None
        if flags & _HAS_DESCRIPTOR and not size:  # the sizes follow the bytes
            size = self._expected_size(name)
        if size is None:
            self.stopped = True
            return None
        if received < data_at + size:
            return None
        self._next = data_at + size
        self._descriptor_zip64 = (zip64 is not None) if flags & _HAS_DESCRIPTOR else None
        return Member(name, data_at, size)

    def _skip_descriptor(self, received: int) -> bool:
        """Step over the data descriptor after the last member (its length is not in any header: with
        or without its signature, 32- or 64-bit sizes); the next record must start right after it."""
        zip64 = bool(self._descriptor_zip64)
        longest = 4 + 4 + (16 if zip64 else 8)
        if received - self._next < longest + 4:
            return False  # (the end of a zip always follows, so this many bytes will come)
        tail = self._read_at(self._next, longest + 4)
        sizes = 16 if zip64 else 8
        for length in ((4 + 4 + sizes, 4 + sizes) if tail[:4] == DESCRIPTOR_SIGNATURE else (4 + sizes,)):
            if tail[length: length + 2] == b"PK":
                self._next += length
                self._descriptor_zip64 = None
                return True
        self.stopped = True
        return False


def _zip64_sizes(extra: bytes) -> tuple[int, ...] | None:
    """The sizes in a zip64 extra field, if the member has one."""
    at = 0
    while at + 4 <= len(extra):
        header_id, length = struct.unpack_from("<HH", extra, at)
        if header_id == _ZIP64_EXTRA:
            body = extra[at + 4: at + 4 + length]
            return struct.unpack_from(f"<{len(body) // 8}Q", body) if len(body) >= 8 else ()
        at += 4 + length
    return None


__all__ = ["ZipStreamIndex", "Member", "LOCAL_HEADER", "LOCAL_SIGNATURE", "NAME_LENGTH", "EXTRA_LENGTH"]
