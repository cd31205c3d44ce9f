"""``upload``: a local folder (sub-folders kept) into a resource, created if it does not exist yet.

The target is a mount path (``projects/P/…/scans/2/resources/DICOM``, or a folder inside a resource:
``…/resources/DICOM/extra``), resolved by :class:`~xnatfs.vfs.filesystem.Filesystem` as the mount
resolves it. A missing resource under an object's ``resources/`` folder is created (one ``PUT``).

Why an upload can be rerun: the resource's file listing (one request, with sizes and md5s) is read
first, and a file the server has with the same size and md5 is skipped, so a rerun after a
finished upload sends no write and a rerun after an interrupted one sends only what is missing. A
file the server holds with other content is a failure unless ``overwrite``. XNAT stores an upload
only once its body is complete, so an interrupted ``PUT`` leaves nothing to continue. Each file is
one streamed ``PUT`` (:meth:`~xnatfs.model.behaviours.ResourceBase.put_file`: read timeout grown
with the size, cache invalidated); with ``verify`` (the default) the listing is read again at the
end and every sent file's md5 is compared with the local one. XNAT refuses empty files: they are
skipped with a warning.
"""

from __future__ import annotations

import logging
import os
import threading
from dataclasses import dataclass
from pathlib import Path

from xnatfs.errors import ConfigError, NotFound, UploadError, XNATError
from xnatfs.model.connect import Connection
from xnatfs.model.records import FileInfo, ResourceInfo
from xnatfs.model.transfer import file_md5, walk_files
from xnatfs.transfer.common import (
    FAILED,
    PLANNED,
    SENT,
    SKIPPED,
    ByteCounter,
    Clock,
    QuietReporter,
    Reporter,
    Summary,
    TransferOptions,
    describe,
    run_pool,
)
from xnatfs.transfer.download import mount_path, open_filesystem
from xnatfs.vfs.filesystem import Filesystem
from xnatfs.vfs.naming import decode_name, join_path, split_path
from xnatfs.vfs.nodes import NodeKind
from xnatfs.vfs.resource_writes import RESOURCES, folder_relpath

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class LocalFile:
    """One file to upload: where it is, and its path inside the resource."""

    path: Path
    relpath: str
    local_relpath: str


@dataclass(frozen=True)
class UploadTarget:
    """The resource an upload goes into (None in a dry run that would create it) and the folder in it."""

    resource: ResourceInfo | None
    prefix: str
    label: str


def resolve_target(fs: Filesystem, remote: str, *, create: bool) -> UploadTarget:
    """The resource (and folder inside it) the mount path ``remote`` names; a missing resource in an
    object's ``resources/`` folder is created if ``create``. ConfigError for any other path."""
    parts = split_path(mount_path(remote))
    for depth in range(len(parts), 0, -1):
        try:
            node = fs.lookup(join_path(parts[:depth]))
        except NotFound:
            continue
        rest = [decode_name(part) for part in parts[depth:]]
        where = folder_relpath(node)
        if where is not None:
            resource, inside = where
            return UploadTarget(resource, "/".join(p for p in (inside, *rest) if p), resource.label)
        if node.kind is NodeKind.COLLECTION and node.collection == RESOURCES and node.obj is not None and rest:
            if not create:
                return UploadTarget(None, "/".join(rest[1:]), rest[0])
            fs.connection.writer.create_resource(node.obj.uri, rest[0])
            log.info("Created resource %s in %s", rest[0], node.path)
            fs.forget_all()
            created = fs.lookup(join_path(parts[: depth + 1]))
            where = folder_relpath(created)
            if where is None:  # pragma: no cover - the server made something else
                raise UploadError(f"Created resource {rest[0]} but {created.path} is not one")
            return UploadTarget(where[0], "/".join(rest[1:]), rest[0])
        break
    raise ConfigError(f"{remote} is not a resource (…/resources/LABEL) or a folder in one, nor a new resource "
                      f"in an existing resources/ folder")


def local_files(local: Path, prefix: str, options: TransferOptions) -> list[LocalFile]:
    """The files below ``local`` (or ``local`` itself) that the filters keep, with their remote paths."""
    local = Path(local)
    if local.is_file():
        pairs = [(local, local.name)]
    else:
        pairs = list(walk_files(local))
    return [LocalFile(path, f"{prefix}/{rel}" if prefix else rel, rel) for path, rel in pairs if options.wanted(rel)]


class Upload:
    """One upload run (see the module docstring); :meth:`run` returns its :class:`Summary`."""

    def __init__(self, fs: Filesystem, local: str | os.PathLike[str], remote: str, *,
                 options: TransferOptions | None = None, reporter: Reporter | None = None) -> None:
        self.fs = fs
        self.local = Path(local)
        self.remote = remote
        self.options = options or TransferOptions()
        self.reporter = reporter or QuietReporter()
        self.summary = Summary()
        self._existing: dict[str, FileInfo] = {}
        self._sent: dict[str, tuple[str, int, str]] = {}
        self._lock = threading.Lock()
        #: set on Ctrl-C: running uploads stop at their next chunk (:class:`ByteCounter`)
        self._cancel = threading.Event()
        self._target: UploadTarget | None = None

    def run(self) -> Summary:
        clock = Clock()
        try:
            if not self.local.exists():
                raise UploadError(f"No such file or folder: {self.local}")
            target = self._target = resolve_target(self.fs, self.remote, create=not self.options.dry_run)
            if target.resource is not None:
                self._existing = self._listing(target.resource)
            files = local_files(self.local, target.prefix, self.options)
            self.reporter.start(len(files), sum(f.path.stat().st_size for f in files))
            run_pool(files, self._one, self.options.jobs, self._cancel)
            self._verify()
        finally:
            self.summary.seconds = clock.elapsed()
            self.reporter.close()
        return self.summary

    def _listing(self, resource: ResourceInfo) -> dict[str, FileInfo]:
        """The resource's files by path (one request: the merged listing of its scope, filtered)."""
        return {f.relpath: f for f in self.fs.source.files(resource.scope_uri) if f.resource_id == resource.id}

    def _one(self, item: LocalFile) -> None:
        try:
            outcome, size, message = self._send(item)
        except (XNATError, OSError) as exc:
            log.debug("Upload of %s failed", item.local_relpath, exc_info=True)
            self.summary.record(item.local_relpath, FAILED, 0, describe(exc))
            self.reporter.done(item.local_relpath, FAILED, 0, describe(exc))
            return
        if outcome != SENT:
            self.summary.record(item.local_relpath, outcome, 0, message)
        self.reporter.done(item.local_relpath, outcome, size, message)

    def _send(self, item: LocalFile) -> tuple[str, int, str]:
        size = item.path.stat().st_size
        if size == 0:
            log.warning("Skipping empty file %s: XNAT does not accept empty files", item.path)
            return SKIPPED, 0, "empty: XNAT does not accept empty files"
        existing = self._existing.get(item.relpath)
        md5 = file_md5(item.path).hexdigest() if (self.options.verify or existing is not None) else ""
        if existing is not None and existing.size == size and (not existing.md5 or not md5 or existing.md5 == md5):
            return SKIPPED, size, ""
        if existing is not None and not self.options.overwrite:
            raise UploadError(f"{item.relpath} exists on the server with other content ({existing.size} bytes, md5 "
                              f"{existing.md5 or 'unknown'}); pass --overwrite to replace it")
        if self.options.dry_run:
            return PLANNED, size, ""
        assert self._target is not None and self._target.resource is not None
        resource = self.fs.source.object_of(self._target.resource)
        counter = ByteCounter(self.reporter, cancel=self._cancel)
        resource.put_file(item.path, item.relpath, overwrite=existing is not None, progress=counter)
        with self._lock:
            self._sent[item.relpath] = (item.local_relpath, size, md5)
        return SENT, size, ""

    def _verify(self) -> None:
        """Record the sent files: with ``verify``, each against the server's listing read once more."""
        if not self._sent:
            return
        listing: dict[str, FileInfo] = {}
        if self.options.verify and self._target is not None and self._target.resource is not None:
            self.fs.source.forget_files(self._target.resource.scope_uri)
            listing = self._listing(self._target.resource)
        for relpath, (local_relpath, size, md5) in sorted(self._sent.items()):
            remote = listing.get(relpath)
            problem = ""
            if self.options.verify:
                if remote is None:
                    problem = "not in the resource's listing after the upload"
                elif remote.size != size or (remote.md5 and remote.md5 != md5):
                    problem = (f"the server holds {remote.size} bytes with md5 {remote.md5}; the local file has "
                               f"{size} bytes with md5 {md5}")
            if problem:
                self.summary.record(local_relpath, FAILED, size, problem)
                self.reporter.done(local_relpath, FAILED, 0, problem)
            else:
                self.summary.record(local_relpath, SENT, size)


def upload(connection: Connection, local: str | os.PathLike[str], remote: str, *,
           options: TransferOptions | None = None, reporter: Reporter | None = None) -> Summary:
    """Upload the file or folder ``local`` into the resource at the mount path ``remote``.

    Raises ConfigError for a ``remote`` that is no resource path, UploadError for a missing ``local``;
    per-file failures are in the summary, never raised.
    """
    options = options or TransferOptions()
    fs = open_filesystem(connection)
    try:
        return Upload(fs, local, remote, options=options, reporter=reporter).run()
    finally:
        fs.close()


__all__ = ["upload", "Upload", "UploadTarget", "LocalFile", "resolve_target", "local_files"]
