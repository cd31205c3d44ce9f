"""Changes to the archive addressed by server path: imports, resource creation, file uploads, deletions.

For consumers that hold paths rather than objects (the mount, bulk upload). Each call goes through
the object model (:class:`~xnatfs.model.services.Services` for imports, ``ResourceBase.put_file`` for
uploads, ``XNATObject.delete`` for deletions), so the checks, timeouts and cache invalidation are the
library's own.

=================================  ==========================================================================
``writable_projects()``            ``GET /data/projects?format=json&restrict=edit`` (projects the user may
                                   add data to: the folders of ``import/``)
``import_zip(path, project, …)``   ``POST /data/services/import?import-handler=DICOM-zip&dest=…&PROJECT_ID=P``
                                   with the zip as the raw body (``application/zip``), streamed from disk
``create_resource(owner, label)``  ``PUT <owner>/resources/<label>`` (409 if it exists)
``put_file(resource, path, …)``    ``PUT <resource>/files/<path>[?overwrite=true]``, raw body streamed from
                                   disk; XNAT answers 200 with ``{"duplicates": …}`` instead of replacing a
                                   file without ``overwrite``: that is a :class:`~xnatfs.errors.Conflict`
``delete_file(uri)``               ``DELETE <file uri>``
``delete_resource(uri)``           ``DELETE <resource uri>``
=================================  ==========================================================================

POST is never retried (the transport's policy). An upload's read timeout grows with its size
(:func:`~xnatfs.model.transfer.upload_timeout`). Progress of long uploads goes to the log
(:class:`UploadProgress`).

Thread-safe (the session and the cache are).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from pathlib import Path

from xnatfs.model.base import ModelContext, XNATObject
from xnatfs.model.behaviours import ResourceBase
from xnatfs.model.services import Services, destination_path
from xnatfs.redact import redact_url
from xnatfs.rest.paths import join
from xnatfs.rest.resultset import parse_resultset

log = logging.getLogger(__name__)

#: seconds between progress lines of one upload
PROGRESS_INTERVAL = 5.0


def _human(size: float) -> str:
    for unit in ("bytes", "KiB", "MiB", "GiB"):
        if size < 1024 or unit == "GiB":
            return f"{size:.0f} {unit}" if unit == "bytes" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{size:.1f} TiB"  # pragma: no cover - the loop returns


class UploadProgress:
    """A progress callback that logs ``what``'s upload every :data:`PROGRESS_INTERVAL` seconds."""

    def __init__(self, what: str, total: int, *, interval: float = PROGRESS_INTERVAL) -> None:
        self.what = what
        self.total = total
        self.interval = interval
        self.start = time.monotonic()
        self._next = self.start + interval
        self.done = 0

    def __call__(self, done: int, total: int | None) -> None:
        self.done = done
        now = time.monotonic()
        if now < self._next:
            return
        self._next = now + self.interval
        rate = done / max(now - self.start, 1e-6)
        share = f" ({100 * done / self.total:.0f}%)" if self.total else ""
        log.info("Uploading %s: %s of %s%s, %s/s", self.what, _human(done), _human(self.total), share, _human(rate))

    def finished(self) -> str:
        elapsed = time.monotonic() - self.start
        return f"{_human(self.total)} in {elapsed:.1f} s ({_human(self.total / max(elapsed, 1e-6))}/s)"


class Writer:
    """The write calls by server path (see the module docstring)."""

    def __init__(self, ctx: ModelContext, services: Services) -> None:
        self.ctx = ctx
        self.services = services

    @property
    def server(self) -> str:
        """The server's base URL, without credentials (for notes kept beside unsent files)."""
        return redact_url(self.ctx.session.base_url)

    def writable_projects(self) -> Sequence[str]:
        body = self.ctx.session.get_json("/data/projects", params={"format": "json", "restrict": "edit"})
        rows = parse_resultset(body, what="project listing").rows
        return tuple(sorted({r["ID"] for r in rows if r.get("ID")}))

    def import_zip(self, path: Path, project: str, destination: str, *, what: str = "") -> list[str]:
        """Send the zip at ``path``, already checked by :func:`~xnatfs.model.zipcheck.check_import_zip`, to the
        import service; the URIs of the sessions it made."""
        size = path.stat().st_size
        params = [("import-handler", "DICOM-zip"), ("dest", destination_path(destination, project, None, None)),
                  ("PROJECT_ID", project)]
        progress = UploadProgress(what or path.name, size)
        log.info("Importing %s (%s) into %s of %s", what or path.name, _human(size), destination, project)
        uris = self.services.import_uris(path, params, name=what or path.name, content_type="application/zip",
                                         progress=progress, checked=True)
        log.info("Imported %s: %s; %s", what or path.name, progress.finished(), ", ".join(uris))
        return uris

    def create_resource(self, owner_uri: str, label: str) -> None:
        """``PUT <owner>/resources/<label>``: one request (the server answers 409 if it exists)."""
        self.ctx.session.put(join(owner_uri, "resources", label))
        self.ctx.invalidate(exact=[join(owner_uri, "resources")])

    def put_file(self, resource_uri: str, relpath: str, path: Path, *, overwrite: bool, what: str = "") -> None:
        """Upload the file at ``path`` to ``relpath`` in the resource; Conflict if it exists (no overwrite)."""
        progress = UploadProgress(what or relpath, path.stat().st_size)
        resource = ResourceBase(self.ctx, resource_uri)
        resource.put_file(path, relpath, overwrite=overwrite, progress=progress)
        log.info("Uploaded %s: %s", what or relpath, progress.finished())

    def delete_file(self, file_uri: str) -> None:
        XNATObject(self.ctx, file_uri).delete(remove_files=False)

    def delete_resource(self, resource_uri: str) -> None:
        ResourceBase(self.ctx, resource_uri).delete()


__all__ = ["Writer", "UploadProgress"]
