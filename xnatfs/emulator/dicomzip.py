"""Reading uploaded DICOM archives (zip, tar, tar.gz) safely, for the emulator's import service.

Owns: recognising the container by its magic bytes, refusing unsafe or damaged archives, reading
each entry's DICOM header (through `dicomheaders.read_instance`), and extracting chosen entries
under a root directory. Pure: no Store, no HTTP. Grouping and XNAT fields: `dicomheaders`.

Safety contract (each refusal is an `ArchiveError` with a user-facing message, status 400):
- entry names with `..`, a leading `/`, a drive letter, a backslash or NUL; links, devices, FIFOs;
  the same name twice; more than `MAX_ENTRIES` entries;
- damage anywhere: `DicomArchive.scan()` reads every byte before it returns anything (zip: every
  entry's CRC; tar: member sizes and the end-of-archive block; gzip: its CRC and length trailer);
- bounded memory: entries stream in `CHUNK`s and at most `HEADER_CAP` bytes of each are parsed.
Entries that are not DICOM (`__MACOSX/…`, `.DS_Store`, a README, a DICOMDIR, a file lacking
Study/Series/SOP Instance UIDs) are listed in `ArchiveContents.unparsable`; the caller decides.

Typical use (the import service):

    with open_archive(spooled_path, name_hint="upload.zip") as archive:
        contents = archive.scan()                       # ArchiveError if anything is wrong
        for study in group_studies(contents.instances):
            ... archive.extract({i.entry: f"{study_dir}/{i.entry}" ...}, root)
"""

from __future__ import annotations

import collections
import gzip
import io
import os
import stat
import struct
import tarfile
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Callable, Iterator, Mapping

from xnatfs.emulator.dicomheaders import DicomInstance, Series, Study, group_studies, read_instance

CHUNK = 1024 * 1024
HEADER_CAP = 1024 * 1024  # a header longer than 1 MiB (before PixelData) counts as unparsable
MAX_ENTRIES = 100_000
_TAR_SUFFIXES = (".tar", ".tgz", ".tar.gz")
# What reading a damaged zip, tar or gzip stream raises (gzip.BadGzipFile is an OSError).
_DAMAGE_ERRORS = (zipfile.BadZipFile, tarfile.TarError, zlib.error, EOFError, OSError, struct.error)

__all__ = ["ArchiveContents", "ArchiveError", "DicomArchive", "DicomInstance", "Series", "Study",
           "extract_entry", "group_studies", "open_archive", "read_archive", "safe_entry_name"]


class ArchiveError(Exception):
    """An upload XNAT would refuse; `str(err)` is safe to show the user, `status` is the HTTP code."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.message = message
        self.status = status


@dataclass(frozen=True)
class ArchiveContents:
    """What `scan()` found: DICOM instances in archive order, and the other entries' names."""
    format: str  # "zip", "tar" or "tar.gz"
    instances: list[DicomInstance]
    unparsable: list[str]
    total_bytes: int


# ---- archives ---------------------------------------------------------------------------------
def open_archive(source: str | os.PathLike | BinaryIO, *, name_hint: str = "") -> DicomArchive:
    """Recognise the container from its first bytes; nothing else is read until `scan()`.

    `source` is a path or a seekable binary file (left open; read from its current position).
    `name_hint` (e.g. "upload.tar") only decides for an old-style tar header that has a valid
    checksum but no "ustar" magic; it never overrides the magic bytes.
    """
    if isinstance(source, (str, os.PathLike)):
        fileobj, owned = open(source, "rb"), True
    else:
        if not (hasattr(source, "seekable") and source.seekable()):
            raise ValueError("open_archive needs a path or a seekable binary file")
        fileobj, owned = source, False
    try:
        start = fileobj.tell()
        head = fileobj.read(512)
        fmt = None
        if head[:4] in (b"PK\x03\x04", b"PK\x05\x06"):
            fmt = "zip"
        elif head[:2] == b"\x1f\x8b":
            fileobj.seek(start)
            try:
                inner = gzip.GzipFile(fileobj=fileobj).read(512)
            except (OSError, EOFError, zlib.error):
                inner = b""
            fmt = "tar.gz" if _is_tar_header(inner, name_hint) else None
        elif _is_tar_header(head, name_hint):
            fmt = "tar"
        if fmt is None:
            raise ArchiveError("The upload is not a zip or tar archive.")
        fileobj.seek(start)
    except BaseException:
        if owned:
            fileobj.close()
        raise
    return DicomArchive(fileobj, start, fmt, owned)


def read_archive(source: str | os.PathLike | BinaryIO, *, name_hint: str = "",
                 max_bytes: int | None = None) -> ArchiveContents:
    """`open_archive(...).scan()` in one call."""
    with open_archive(source, name_hint=name_hint) as archive:
        return archive.scan(max_bytes=max_bytes)


def extract_entry(source: str | os.PathLike | BinaryIO, entry: str, root: str | os.PathLike,
                  relative_path: str, *, name_hint: str = "", overwrite: bool = False) -> Path:
    """Write one (validated) entry's bytes to `root/relative_path`; returns the path written."""
    with open_archive(source, name_hint=name_hint) as archive:
        return archive.extract({entry: relative_path}, root, overwrite=overwrite)[entry]


def safe_entry_name(name: str) -> str:
    """The normalised name ("./a//b" → "a/b"), or ArchiveError if it could escape a directory."""
    parts = [p for p in name.split("/") if p not in ("", ".")]
    if (not parts or name.startswith("/") or "\\" in name or "\0" in name or ".." in parts
            or (len(name) > 1 and name[1] == ":")):
        raise ArchiveError(f"Refused archive entry with an unsafe path: {name}")
    return "/".join(parts)


class DicomArchive:
    """An open archive; `scan()` validates it completely, `extract()` then writes chosen entries.

    Not thread-safe (one file position). Use as a context manager, or call `close()`.
    """

    def __init__(self, fileobj: BinaryIO, start: int, fmt: str, owned: bool) -> None:
        self.format = fmt
        self._file, self._start, self._owned = fileobj, start, owned
        self._contents: ArchiveContents | None = None

    def __enter__(self) -> DicomArchive:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        if self._owned:
            self._file.close()

    def scan(self, *, max_bytes: int | None = None) -> ArchiveContents:
        """Read every entry (CRC/size checked), parse each header; raise ArchiveError on any fault."""
        if self._contents is not None:
            return self._contents
        instances, unparsable, names, total = [], [], set(), 0
        for name, size, stream in self._entries(check=True):
            if name in names:
                raise ArchiveError(f"The archive contains the entry {name} more than once.")
            names.add(name)
            if len(names) > MAX_ENTRIES:
                raise ArchiveError(f"The archive has more than {MAX_ENTRIES} entries.")
            head, read = bytearray(), 0
            for chunk in self._chunks(stream):
                read += len(chunk)
                if len(head) < HEADER_CAP:
                    head += chunk[:HEADER_CAP - len(head)]
            if read != size:
                raise self._damaged(f"entry {name} has {read} of {size} bytes")
            total += read
            if max_bytes is not None and total > max_bytes:
                raise ArchiveError(f"The archive expands to more than {max_bytes} bytes.", status=413)
            instance = read_instance(name, bytes(head), size)
            if instance is None:
                unparsable.append(name)
            else:
                instances.append(instance)
        if not instances:
            raise ArchiveError("The archive contains no DICOM files.")
        self._contents = ArchiveContents(self.format, instances, unparsable, total)
        return self._contents

    def extract(self, targets: Mapping[str, str], root: str | os.PathLike, *,
                overwrite: bool = False) -> dict[str, Path]:
        """Write entries (normalised name → path relative to `root`) in one pass; returns the paths.

        Refuses a relative path that leaves `root` (also through a symlink inside it), an entry the
        archive does not have, or an existing file unless `overwrite` (then status 409).
        """
        contents = self.scan()
        known = {i.entry for i in contents.instances}.union(contents.unparsable)
        root_dir = Path(root).resolve()
        plan: dict[str, Path] = {}
        for entry, relative in targets.items():
            if entry not in known:
                raise ArchiveError(f"No such entry in the archive: {entry}")
            dest = root_dir / safe_entry_name(str(relative))
            if not dest.resolve().is_relative_to(root_dir):
                raise ArchiveError(f"Refused archive entry with an unsafe path: {relative}")
            if dest.exists() and not overwrite:
                raise ArchiveError(f"File already exists: {relative}", status=409)
            plan[entry] = dest
        written: dict[str, Path] = {}
        for name, _size, stream in self._entries(check=False, wanted=set(plan)):
            dest = plan[name]
            dest.parent.mkdir(parents=True, exist_ok=True)
            if not dest.parent.resolve().is_relative_to(root_dir):
                raise ArchiveError(f"Refused archive entry with an unsafe path: {targets[name]}")
            part = dest.with_name(f".{dest.name}.part")
            part.unlink(missing_ok=True)
            with open(part, "xb") as out:
                for chunk in self._chunks(stream):
                    out.write(chunk)
            os.replace(part, dest)
            written[name] = dest
            if len(written) == len(plan):
                break  # no need to read the rest of a tar stream
        return written

    # ---- one pass over the entries ----
    def _entries(self, *, check: bool, wanted: set[str] | None = None) -> Iterator[tuple[str, int, BinaryIO]]:
        """(normalised name, size, stream) for regular files; directories are skipped."""
        self._file.seek(self._start)
        if self.format == "zip":
            yield from self._zip_entries(wanted)
        else:
            yield from self._tar_entries(check, wanted)

    def _chunks(self, stream: BinaryIO) -> Iterator[bytes]:
        try:
            while chunk := stream.read(CHUNK):
                yield chunk
        except _DAMAGE_ERRORS as exc:
            raise self._damaged(str(exc)) from exc

    def _damaged(self, detail: str) -> ArchiveError:
        kind = "zip archive" if self.format == "zip" else f"{self.format} archive"
        return ArchiveError(f"The {kind} is truncated or corrupt: {detail}")

    def _zip_entries(self, wanted: set[str] | None) -> Iterator[tuple[str, int, BinaryIO]]:
        try:
            with zipfile.ZipFile(self._file) as archive:
                for info in archive.infolist():  # every name is checked before any data is read
                    _check_name(info.filename, info.is_dir())
                    if not info.is_dir() and stat.S_IFMT(info.external_attr >> 16) not in (0, stat.S_IFREG):
                        raise ArchiveError(f"Refused archive entry that is a link or device: {info.filename}")
                infos = [i for i in archive.infolist() if not i.is_dir()]
                for info in infos:
                    name = safe_entry_name(info.filename)
                    if wanted is not None and name not in wanted:
                        continue
                    if info.flag_bits & 0x1:
                        raise ArchiveError(f"The zip archive contains an encrypted entry: {name}")
                    with archive.open(info) as stream:
                        yield name, info.file_size, stream
        except _DAMAGE_ERRORS as exc:
            raise self._damaged(str(exc)) from exc
        except NotImplementedError as exc:
            raise ArchiveError(f"The zip archive uses an unsupported compression method: {exc}") from exc

    def _tar_entries(self, check: bool, wanted: set[str] | None) -> Iterator[tuple[str, int, BinaryIO]]:
        raw: BinaryIO = self._file
        if self.format == "tar.gz":
            raw = gzip.GzipFile(fileobj=self._file)  # type: ignore[assignment]
        tail = _TailReader(raw)
        try:
            with tarfile.open(fileobj=tail, mode="r|") as archive:
                for member in archive:
                    _check_name(member.name, member.isdir())
                    if member.isdir():
                        continue
                    if not member.isfile():
                        raise ArchiveError(f"Refused archive entry that is a link or device: {member.name}")
                    name = safe_entry_name(member.name)
                    if wanted is not None and name not in wanted:
                        continue
                    stream = archive.extractfile(member)
                    assert stream is not None  # a regular file always has a stream
                    yield name, member.size, stream  # type: ignore[misc]
                if check:
                    tail.check_end_block(archive.offset, self._damaged)
        except _DAMAGE_ERRORS as exc:
            raise self._damaged(str(exc)) from exc


class _TailReader(io.RawIOBase):
    """A forward-only reader that remembers its last `KEEP` bytes, to look at the tar end block.

    tarfile's stream mode takes a cut-off or garbled header as the end of the archive; a real end
    is a complete all-zero 512-byte block. Draining to EOF also makes gzip check its CRC trailer.
    tarfile reads ahead at most one 10 KiB record, so the block is always among the kept bytes.
    """

    KEEP = 64 * 1024

    def __init__(self, raw: BinaryIO) -> None:
        self._raw, self.position = raw, 0
        self._recent: collections.deque[bytes] = collections.deque()
        self._kept = 0

    def readable(self) -> bool:
        return True

    def read(self, size: int = -1) -> bytes:
        data = self._raw.read(size if 0 <= size <= CHUNK else CHUNK)  # never all at once
        if data:
            self.position += len(data)
            self._recent.append(data)
            self._kept += len(data)
            while self._kept - len(self._recent[0]) >= self.KEEP:
                self._kept -= len(self._recent.popleft())
        return data

    def check_end_block(self, offset: int, damaged: Callable[[str], ArchiveError]) -> None:
        while self.position < offset + 512 and self.read(CHUNK):
            pass
        kept = b"".join(self._recent)
        first = self.position - len(kept)
        block = kept[offset - first: offset - first + 512] if offset >= first else b""
        if len(block) < 512 or any(block):
            raise damaged("the end-of-archive block is missing (cut off or garbled)")
        while self._raw.read(CHUNK):  # the rest (padding) must still be readable: gzip CRC check
            pass


def _check_name(name: str, is_dir: bool) -> None:
    """Every entry name is checked; a directory entry may be the archive root ("./")."""
    if not is_dir or [p for p in name.split("/") if p not in ("", ".")] or "\\" in name:
        safe_entry_name(name)


def _is_tar_header(block: bytes, name_hint: str) -> bool:
    if len(block) < 512 or not any(block):
        return False
    try:
        stored = int(block[148:156].replace(b"\0", b" ").strip() or b"-1", 8)
    except ValueError:
        return False
    unsigned = sum(block[:148]) + 256 + sum(block[156:])
    signed = sum(struct.unpack_from("148b8x356b", block)) + 256  # some old tars sum signed bytes
    checksum_ok = stored in (unsigned, signed)
    if block[257:262] == b"ustar":
        return checksum_ok
    return checksum_ok and name_hint.lower().endswith(_TAR_SUFFIXES)
