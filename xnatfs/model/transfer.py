"""Moving bytes between the server and local disk: streamed downloads, zip extraction, streamed uploads.

Memory stays bounded for any size: downloads are written chunk by chunk (md5 computed on the way),
and never more bytes than the listing (or, without one, ``Content-Length``) announced; zip archives
(``?format=zip``) are spooled to a temporary file inside the target directory, then checked whole
before anything is extracted: a member that is a link or device, or whose path would leave the
target (absolute, ``..``, a drive letter), or declared sizes that do not fit in the free disk space
(a zip bomb) refuse the whole archive. Each member is written under a temporary name and renamed
only after zipfile checked its CRC (and zipfile never yields more than the declared size), so a
lying member leaves nothing behind. Uploads stream from a seekable file, and a non-seekable source
is first spooled to a temporary file, so a retried or re-authenticated ``PUT`` can rewind.

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
import threading
import time
import zipfile
import zlib
from collections.abc import Callable, Container, Iterator, Mapping
from pathlib import Path
from typing import IO, Any

from xnatfs.callers import POLL, asks, current_check
from xnatfs.errors import ChecksumMismatch, FileChanged, ServerError, TransportError, UploadError
from xnatfs.localpaths import check_layout, safe_join
from xnatfs.model.reading import IDENTITY, check_range, check_whole_file
from xnatfs.settings import MiB, Timeouts
from xnatfs.transport.session import Params, XNATSession, looks_like_html
from xnatfs.model.zipindex import EXTRA_LENGTH, LOCAL_HEADER, LOCAL_SIGNATURE, NAME_LENGTH, Member, ZipStreamIndex

log = logging.getLogger(__name__)

Progress = Callable[[int, "int | None"], None]
CHUNK = 1 * MiB
SPOOL_IN_MEMORY = 8 * MiB
#: a resource's zip is held in memory up to this size (then spooled to disk): a few per worker
ZIP_IN_MEMORY = 4 * MiB


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
            limit = _announced_size(stream.headers, expected_size, path)
            total = expected_size if expected_size is not None else limit
            for chunk in stream.iter_chunks(CHUNK):
                done += len(chunk)
                if limit is not None and done > limit:
                    raise ChecksumMismatch(f"The server sent more than the {limit} bytes of {path} it announced; "
                                           f"the partial file was removed")
                out.write(chunk)
                digest.update(chunk)
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


PART_SUFFIX = ".part"


def part_path(target: Path) -> Path:
    """Where a download of ``target`` is written until it is complete and checked."""
    return target.with_name(target.name + PART_SUFFIX)


def file_md5(path: Path, *, limit: int | None = None) -> "hashlib._Hash":
    """The md5 of the local file at ``path`` (its first ``limit`` bytes), read 1 MiB at a time."""
    digest = hashlib.md5(usedforsecurity=False)
    remaining = limit
    with open(path, "rb") as handle:
        while remaining is None or remaining > 0:
            chunk = handle.read(CHUNK if remaining is None else min(CHUNK, remaining))
            if not chunk:
                break
            digest.update(chunk)
            if remaining is not None:
                remaining -= len(chunk)
    return digest


def resume_to_file(session: XNATSession, path: str, target: Path, *, expected_size: int, expected_md5: str = "",
                   progress: Progress | None = None) -> int:
    """``GET path`` into ``target``, continuing a ``.part`` file an earlier, interrupted download left.

    Why it differs from :func:`stream_to_file`: a bulk download is killed, loses its connection or
    stalls, and its rerun should not fetch again what is on disk already. The ``.part`` file's bytes
    are taken as the start of the file: the request asks for the rest (``Range: bytes=<have>-``), and
    the md5 is taken over the whole file at the end (the bytes on disk are read once to seed it). A
    server that ignores ``Range`` answers 200 with the whole file, which restarts the ``.part`` file;
    one whose listing no longer matches the file (:class:`~xnatfs.errors.FileChanged`), or a
    finished file whose md5 is wrong (which may come from stale ``.part`` bytes), drops the ``.part``
    file, and a resumed file with a wrong md5 is fetched once more from the start. A broken or
    stalled transfer keeps the ``.part`` file for the next run. ``target`` is replaced only by a
    complete, checked file, so a failure never removes a complete copy. Returns the bytes fetched.
    """
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = part_path(target)
    try:
        have = partial.stat().st_size
    except FileNotFoundError:
        have = 0
    if have > expected_size:
        have = 0
    fetched = 0
    while True:
        try:
            got, digest = _fetch_rest(session, path, partial, have, expected_size, progress)
        except (ChecksumMismatch, FileChanged):
            partial.unlink(missing_ok=True)
            raise
        fetched += got
        if not expected_md5 or digest.lower() == expected_md5.lower():
            break
        partial.unlink(missing_ok=True)
        if have == 0:
            raise ChecksumMismatch(f"md5 of the download of {path} is {digest}, the server says {expected_md5}; "
                                   f"the partial file was removed")
        log.info("The resumed download of %s had a wrong md5 (stale partial bytes?); fetching it whole", path)
        have = 0
    os.replace(partial, target)
    return fetched


def _fetch_rest(session: XNATSession, path: str, partial: Path, have: int, size: int,
                progress: Progress | None) -> tuple[int, str]:
    """Bring ``partial`` (``have`` bytes on disk) to ``size`` bytes; the bytes fetched and the whole md5."""
    if have and have == size:
        return 0, file_md5(partial).hexdigest()
    headers = dict(IDENTITY)
    if have:
        headers["Range"] = f"bytes={have}-"
    with session.open_stream("GET", path, headers=headers) as stream:
        if have and stream.status == 206:
            check_range(stream, have, path, size)
            digest = file_md5(partial, limit=have)
            mode = "r+b"
        else:
            if stream.status == 206:
                raise ServerError(f"The server answered a request for all of {path} with part of it",
                                  status=stream.status, url=stream.url)
            check_whole_file(stream, size, path)
            if have:
                log.debug("The server ignored Range for %s: fetching it whole", path)
            have = 0
            digest = hashlib.md5(usedforsecurity=False)
            mode = "wb"
        fetched = 0
        with open(partial, mode) as out:
            out.truncate(have)
            out.seek(have)
            done = have
            for chunk in stream.iter_chunks(CHUNK):
                done += len(chunk)
                if done > size:
                    raise ChecksumMismatch(f"The server sent more than the {size} bytes of {path} its listing "
                                           f"says; the partial file was removed")
                out.write(chunk)
                digest.update(chunk)
                fetched += len(chunk)
                if progress is not None:
                    progress(done, size)
    if done != size:
        raise TransportError(f"The download of {path} ended after {done} of its {size} bytes; the partial file "
                             f"is kept for the next run")
    return fetched, digest.hexdigest()


def zip_to_files(session: XNATSession, path: str, wanted: dict[str, tuple[Path, int, str]], *, spool_dir: Path,
                 progress: Progress | None = None) -> set[str]:
    """``GET path?format=zip`` (a resource's files) and write the members ``wanted`` names to their targets.

    Why: a folder of many small files costs a request each, and a request's latency and the server's
    work per request dominate then; one zip per resource is what xnatpy's ``download_dir`` does, but
    here each member is still checked: ``wanted`` maps a file's path inside the resource to (target,
    size, md5), a member is matched by the path after ``/files/`` in its name, written under a
    ``.part`` name and renamed only if its size and md5 are the listing's. The zip is held in memory
    up to :data:`ZIP_IN_MEMORY` bytes, beyond that spooled to a temporary file in ``spool_dir`` (the
    target's disk), and read member by member, so memory stays bounded. Returns the paths written;
    the caller fetches any other one on its own.
    """
    written: set[str] = set()
    with tempfile.SpooledTemporaryFile(max_size=ZIP_IN_MEMORY, dir=spool_dir) as spool:
        _spool_zip(session, path, spool, progress=progress)  # type: ignore[arg-type]
        made: set[Path] = set()
        try:
            with zipfile.ZipFile(spool) as zf:  # type: ignore[arg-type]
                for relpath, info in _wanted_members(zf, wanted):
                    if relpath in written:
                        continue
                    target, size, md5 = wanted[relpath]
                    if info.file_size != size:
                        continue
                    if target.parent not in made:
                        target.parent.mkdir(parents=True, exist_ok=True)
                        made.add(target.parent)
                    if _write_member(zf, info, target, md5):
                        written.add(relpath)
        except (zipfile.BadZipFile, zipfile.LargeZipFile, zlib.error, EOFError, NotImplementedError) as exc:
            log.info("The zip of %s could not be read (%s); its files are fetched one by one", path, exc)
    return written


class ResourceZip:
    """A resource's files as one zip on local disk, read member by member (the mount's fetch ahead).

    Why: a program reading a series of 1,000 small files costs 1,000 requests, each waiting its
    round trip, however they overlap; one zip of the resource is one request at link speed. The zip
    goes to an anonymous temporary file (no name: no other user can open it, and it is gone when
    closed or when the process dies) in a private folder on disk, never in memory, and at most
    ``limit`` bytes of it are accepted. A member can be read as soon as its bytes are on disk
    (:class:`~xnatfs.model.zipindex.ZipStreamIndex`), not only once the whole zip is there; once it
    is, the zip's own directory answers. A member is handed out only with its listed size and md5.
    Thread-safe: :meth:`fill` runs on one thread while others read.
    """

    #: bytes per read of the response: a member becomes readable at most this much after its last byte
    CHUNK = 64 * 1024
    #: members up to this size have their md5 computed as they arrive (a bigger one is never read whole)
    DIGEST_AHEAD = 1024 * 1024

    def __init__(self, session: XNATSession, files_uri: str, wanted: Mapping[str, int], *, spool_dir: Path,
                 limit: int) -> None:
        """``wanted`` maps the paths inside the resource to index to their listed sizes. No request yet."""
        self._session = session
        self._files_uri = files_uri
        self._wanted = wanted
        self._limit = limit
        self._handle = tempfile.TemporaryFile(dir=spool_dir, buffering=0)  # noqa: SIM115 - closed by close()
        self._archive: zipfile.ZipFile | None = None
        self._members: dict[str, zipfile.ZipInfo] = {}
        self._early: dict[str, Member] = {}  # members found while the zip arrives
        self._offsets: dict[str, int] = {}
        #: (path, size) → md5 of the member's bytes in the file (which only this object writes)
        self._digests: dict[tuple[str, int], str] = {}
        self._state = "new"  # → filling → done | failed | closed
        self._changed = threading.Condition()
        self._index = ZipStreamIndex(self._read_at, self._expected_size)

    @classmethod
    def download(cls, session: XNATSession, files_uri: str, wanted: Mapping[str, int], *, spool_dir: Path,
                 limit: int) -> ResourceZip:
        """The whole zip, fetched before returning (see :meth:`fill`)."""
        archive = cls(session, files_uri, wanted, spool_dir=spool_dir, limit=limit)
        try:
            archive.fill()
        except BaseException:
            archive.close()
            raise
        return archive

    def fill(self) -> None:
        """``GET <files_uri>?format=zip`` into the file, making each member readable as it arrives.
        ServerError if the zip is larger than ``limit`` or unreadable; XNATError if the request
        fails; either way, what arrived stays readable."""
        with self._changed:
            if self._state != "new":
                raise ValueError(f"a resource zip is filled once (it is {self._state})")
            self._state = "filling"
        try:
            _spool_zip(self._session, self._files_uri, self._handle, limit=self._limit,
                       progress=lambda done, _total: self._arrived(done), chunk_size=self.CHUNK)
            try:
                archive = zipfile.ZipFile(self._handle)  # noqa: SIM115 - closed by close()
            except (zipfile.BadZipFile, zipfile.LargeZipFile, EOFError) as exc:
                raise ServerError(f"The zip of {self._files_uri} could not be read: {exc}") from exc
        except BaseException as exc:
            self._finish("failed")
            if self._state == "closed" and isinstance(exc, (OSError, ValueError)):  # its file closed under it
                raise ServerError(f"The zip of {self._files_uri} is no longer wanted") from None
            raise
        with self._changed:
            self._archive = archive
            self._members = {}
            for relpath, info in _wanted_members(archive, self._wanted):
                self._members.setdefault(relpath, info)
        self._finish("done")

    def _arrived(self, received: int) -> None:
        if self._state == "closed":
            raise ServerError(f"The zip of {self._files_uri} is no longer wanted")
        found = self._index.advance(received)
        if not found:
            return
        arrived = [(relpath, member) for member in found
                   if (relpath := _member_relpath(member.name, self._wanted)) is not None]
        # each member's md5 here, on the thread that waits for the network anyway (hashlib lets go of
        # the GIL), not on the read that hands it out: for a series of small files the md5 is most of
        # a read's work
        digests = {relpath: _md5(self._read_at(member.offset, member.size)) for relpath, member in arrived
                   if member.size <= self.DIGEST_AHEAD}
        with self._changed:
            for relpath, member in arrived:
                if relpath not in self._early:
                    self._early[relpath] = member
                    if relpath in digests:
                        self._digests[(relpath, member.size)] = digests[relpath]
            self._changed.notify_all()

    def _finish(self, state: str) -> None:
        with self._changed:
            if self._state != "closed":
                self._state = state
            self._changed.notify_all()

    def _read_at(self, offset: int, count: int) -> bytes:
        return os.pread(self._handle.fileno(), count, offset)

    def _expected_size(self, name: str) -> int | None:
        relpath = _member_relpath(name, self._wanted)
        return None if relpath is None else self._wanted[relpath]

    @property
    def streaming(self) -> bool:
        """Whether members can be read (some have arrived, or the whole zip has)."""
        return bool(self._early) or self._state == "done"

    def __len__(self) -> int:
        return len(self._members) or len(self._early)

    def read(self, relpath: str, size: int, md5: str, *, wait: float = 0.0) -> bytes | None:
        """The file at ``relpath`` if the zip holds it with that size and md5; None otherwise. While the
        zip is still arriving, waits up to ``wait`` seconds for the member.

        A stored (uncompressed) member, XNAT's default, is read with one ``pread`` at its data
        offset: zipfile's own path costs a seek, a header parse and a CRC per read, several times
        the read itself for the small files of a series. The md5 is checked either way: computed as
        the member arrived, or at its first read.
        """
        deadline = time.monotonic() + wait
        check = current_check()  # a program killed while it waits is not kept waiting for the zip
        with self._changed:
            while relpath not in self._early and self._state == "filling":
                remaining = deadline - time.monotonic()
                if remaining <= 0 or asks(check):
                    return None
                self._changed.wait(min(remaining, POLL))
            early = self._early.get(relpath)
            info = self._members.get(relpath)
        try:
            if early is not None and early.size == size:
                data = self._read_at(early.offset, size)
            elif info is not None and info.file_size == size and self._archive is not None:
                offset = self._stored_offset(info)
                data = self._read_at(offset, size) if offset is not None else self._archive.read(info)
            else:
                return None
        except (zipfile.BadZipFile, zlib.error, EOFError, NotImplementedError, ValueError, OSError) as exc:
            log.info("Member %s of a fetched-ahead zip could not be read: %s", relpath, exc)
            return None
        if len(data) != size:
            return None
        digest = self._digests.get((relpath, size))
        if md5 and digest is None:
            digest = self._digests.setdefault((relpath, size), _md5(data))
        if md5 and digest != md5.lower():
            log.info("Member %s of a fetched-ahead zip does not have the listed md5; read from the server", relpath)
            return None
        return data

    def _stored_offset(self, info: zipfile.ZipInfo) -> int | None:
        """Where a stored, unencrypted member's bytes begin in the zip; None for any other member."""
        if info.compress_type != zipfile.ZIP_STORED or info.flag_bits & 0x1 or info.compress_size != info.file_size:
            return None
        offset = self._offsets.get(info.filename)
        if offset is None:
            header = self._read_at(info.header_offset, LOCAL_HEADER.size)
            if len(header) != LOCAL_HEADER.size or header[:4] != LOCAL_SIGNATURE:
                raise zipfile.BadZipFile(f"no local header for {info.filename}")
            fields = LOCAL_HEADER.unpack(header)
            offset = info.header_offset + LOCAL_HEADER.size + fields[NAME_LENGTH] + fields[EXTRA_LENGTH]
            self._offsets[info.filename] = offset
        return offset

    def close(self) -> None:
        """Free the disk space; a :meth:`fill` in progress stops at its next chunk."""
        with self._changed:
            self._state = "closed"
            archive, self._archive = self._archive, None
            self._changed.notify_all()
        if archive is not None:
            archive.close()
        self._handle.close()


def _md5(data: bytes) -> str:
    return hashlib.md5(data, usedforsecurity=False).hexdigest()


def _spool_zip(session: XNATSession, files_uri: str, out: IO[bytes], *, limit: int | None = None,
               progress: Progress | None = None, chunk_size: int = CHUNK) -> None:
    """``GET <files_uri>?format=zip`` into ``out`` (then rewound); ServerError past ``limit`` bytes."""
    done = 0
    with session.open_stream("GET", files_uri, params=[("format", "zip")], headers=IDENTITY) as stream:
        for chunk in stream.iter_chunks(chunk_size):
            done += len(chunk)
            if limit is not None and done > limit:
                raise ServerError(f"The zip of {files_uri} is larger than {limit} bytes; not fetched ahead")
            view = memoryview(chunk)
            while view:  # (an unbuffered file may take part of a write)
                view = view[out.write(view):]
            if progress is not None:
                progress(done, None)
    out.seek(0)


def _wanted_members(archive: zipfile.ZipFile, wanted: Container[str]) -> Iterator[tuple[str, zipfile.ZipInfo]]:
    """(path inside the resource, member) for each file member of the zip that ``wanted`` names, in order."""
    for info in archive.infolist():
        relpath = _member_relpath(info.filename, wanted)
        if relpath is not None and not info.is_dir():
            yield relpath, info


def _member_relpath(name: str, wanted: Container[str]) -> str | None:
    """The wanted path a zip member stands for: the rest of its name after one of its ``/files/``."""
    start = 0
    while (found := name.find("/files/", start)) >= 0:
        rest = name[found + len("/files/"):]
        if rest in wanted:
            return rest
        start = found + 1
    return None


def _write_member(zf: zipfile.ZipFile, info: zipfile.ZipInfo, target: Path, md5: str) -> bool:
    """Write one member to ``target`` (its folder exists) via its ``.part`` name if its md5 is ``md5``."""
    partial = part_path(target)
    digest = hashlib.md5(usedforsecurity=False)
    try:
        with zf.open(info) as src, open(partial, "wb") as out:
            while chunk := src.read(CHUNK):
                out.write(chunk)
                digest.update(chunk)
        if md5 and digest.hexdigest() != md5.lower():
            return False
        os.replace(partial, target)
        return True
    finally:
        partial.unlink(missing_ok=True)


def _announced_size(headers: Any, expected_size: int | None, path: str) -> int | None:
    """The most bytes a download may deliver: the listing's size, else an identity ``Content-Length``.

    A ``Content-Length`` that contradicts the listing is refused before a byte is written.
    """
    declared = str(headers.get("Content-Length", "")).strip()
    encoded = str(headers.get("Content-Encoding", "identity")).strip().lower() not in ("", "identity")
    if not declared.isdigit() or encoded:
        return expected_size
    if expected_size is not None and int(declared) != expected_size:
        raise ChecksumMismatch(f"The server announced {int(declared)} bytes for {path}; its listing says "
                               f"{expected_size} (a login page or a proxy's answer instead of the file?)")
    return int(declared)


def download_and_extract(session: XNATSession, path: str, target: Path, *, params: Params = None,
                         progress: Progress | None = None) -> list[Path]:
    """``GET path`` as a zip (``format=zip``), spooled to disk, then extracted safely under ``target``.

    The zip is spooled inside ``target`` (the disk it is extracted to, not a RAM-backed ``/tmp``).
    """
    target = Path(target)
    target.mkdir(parents=True, exist_ok=True)
    query = list(params.items()) if isinstance(params, dict) else list(params or [])
    query = [(k, v) for k, v in query if k != "format"] + [("format", "zip")]
    with tempfile.TemporaryDirectory(prefix=".xnatfs-zip-", dir=target) as tmp:
        archive = stream_to_file(session, path, Path(tmp) / "download.zip", params=query, progress=progress)
        if not zipfile.is_zipfile(archive):
            with open(archive, "rb") as handle:
                head = handle.read(4096)
            what = "an HTML page (a login page or a proxy's page?)" if looks_like_html(head) else "something that is not a zip"
            raise ServerError(f"The server answered the zip download of {path} with {what}; nothing was extracted")
        return safe_extract(archive, target)


def safe_extract(archive: Path, target: Path) -> list[Path]:
    """Extract the zip ``archive`` under ``target``, or refuse it whole (see the module docstring).

    Raises :class:`~xnatfs.errors.ServerError` naming the first bad member, before anything is written
    (:class:`~xnatfs.errors.UnsafeLocalPath` for a name that cannot be a path under ``target``: every
    member's path is checked, and that they can all be made, first), or when a member fails its CRC (that member is not left behind). Returns the files written.
    """
    Path(target).mkdir(parents=True, exist_ok=True)
    root = Path(target).resolve()
    written: list[Path] = []
    try:
        with zipfile.ZipFile(archive) as zf:
            plan = [(info, _member_destination(root, info)) for info in zf.infolist()]
            check_layout(root, [dest for info, dest in plan if not info.is_dir()],
                         [dest for info, dest in plan if info.is_dir()], what="zip archive member")
            _check_space(root, [info for info, _ in plan])
            for info, destination in plan:
                if info.is_dir():
                    destination.mkdir(parents=True, exist_ok=True)
                    continue
                destination.parent.mkdir(parents=True, exist_ok=True)
                _extract_member(zf, info, destination)
                written.append(destination)
    except (zipfile.BadZipFile, zipfile.LargeZipFile, zlib.error, EOFError, NotImplementedError) as exc:
        raise ServerError(f"The server sent a corrupt zip archive ({exc}); {len(written)} members were "
                          f"extracted before it, the bad member was not") from exc
    return written


def _extract_member(zf: zipfile.ZipFile, info: zipfile.ZipInfo, destination: Path) -> None:
    """Write one member under a temporary name and rename it once zipfile has checked its CRC."""
    partial = destination.with_name(destination.name + ".xnatfs-part")
    try:
        with zf.open(info) as src, open(partial, "wb") as out:
            shutil.copyfileobj(src, out, CHUNK)
        os.replace(partial, destination)
    finally:
        partial.unlink(missing_ok=True)


def _check_space(root: Path, members: list[zipfile.ZipInfo]) -> None:
    """Refuse an archive whose declared sizes do not fit in the free space under ``root``."""
    declared = sum(info.file_size for info in members if not info.is_dir())
    free = shutil.disk_usage(root).free
    if declared > free:
        raise ServerError(f"Refused the server's zip archive: its members declare {declared} bytes, more than the "
                          f"{free} bytes free under {root} (a zip bomb?); nothing was extracted")


def _member_destination(root: Path, info: zipfile.ZipInfo) -> Path:
    """Where a zip member goes (:func:`xnatfs.localpaths.safe_join`); a link, device, encrypted member or a
    path leaving ``root`` (or too long for the disk) refuses the zip."""
    file_type = stat.S_IFMT(info.external_attr >> 16)  # 0 when the zip did not record one
    reason = ""
    if file_type and file_type not in (stat.S_IFREG, stat.S_IFDIR):
        reason = "is not a regular file or directory (a link or a device)"
    elif info.flag_bits & 0x1:
        reason = "is encrypted"
    if reason:
        raise ServerError(f"Refused the server's zip archive: member {info.filename[:200]!r} {reason}; "
                          f"nothing was extracted")
    return safe_join(root, info.filename, what="zip archive member", backslash=True)


#: an upload's answer may take this long after the body is sent, plus 1 s per :data:`ANSWER_RATE` bytes
MIN_ANSWER_TIME = 60.0
ANSWER_RATE = 10 * 1024 * 1024


def upload_timeout(base: Timeouts, size: int) -> Timeouts:
    """Timeouts for an upload of ``size`` bytes: XNAT answers only after it has stored (for an import:
    unpacked and sorted) everything, so the read timeout covers the server's work on the body."""
    return Timeouts(connect=base.connect, read=max(base.read, MIN_ANSWER_TIME + size / ANSWER_RATE))


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


__all__ = ["stream_to_file", "ResourceZip", "resume_to_file", "zip_to_files", "file_md5", "part_path", "PART_SUFFIX",
           "download_and_extract", "safe_extract", "ProgressReader", "open_upload_source",
           "walk_files", "Progress"]
