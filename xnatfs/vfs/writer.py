"""The mount's changes on the server: imports, resource creation, file uploads and deletions.

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
(:func:`upload_timeout`): the server answers only after it has stored (for an import: unpacked and
sorted) everything. Progress of long uploads goes to the log (:class:`UploadProgress`).

Thread-safe (the session is).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from pathlib import Path

from xnatfs.errors import Conflict, ServerError
from xnatfs.model.services import destination_path
from xnatfs.model.transfer import ProgressReader
from xnatfs.rest.paths import file_path, join
from xnatfs.rest.resultset import parse_resultset
from xnatfs.settings import MiB, Timeouts
from xnatfs.transport.session import XNATSession

log = logging.getLogger(__name__)

#: seconds between progress lines of one upload
PROGRESS_INTERVAL = 5.0
#: the server is given at least this long to answer after the body is sent, plus 1 s per 10 MiB
MIN_ANSWER_TIME = 60.0
ANSWER_RATE = 10 * MiB


def upload_timeout(base: Timeouts, size: int) -> Timeouts:
    """Timeouts for an upload of ``size`` bytes: the read timeout covers the server's work on it."""
    return Timeouts(connect=base.connect, read=max(base.read, MIN_ANSWER_TIME + size / ANSWER_RATE))


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


class XNATWriter:
    """The write calls of the mount (see the module docstring)."""

    def __init__(self, session: XNATSession) -> None:
        self.session = session

    def writable_projects(self) -> Sequence[str]:
        body = self.session.get_json("/data/projects", params={"format": "json", "restrict": "edit"})
        rows = parse_resultset(body, what="project listing").rows
        return tuple(sorted({r["ID"] for r in rows if r.get("ID")}))

    def import_zip(self, path: Path, project: str, destination: str, *, what: str = "") -> list[str]:
        """Send the zip at ``path`` to the import service; the URIs of the sessions it made."""
        size = path.stat().st_size
        params = [("import-handler", "DICOM-zip"), ("dest", destination_path(destination, project, None, None)),
                  ("PROJECT_ID", project)]
        progress = UploadProgress(what or path.name, size)
        log.info("Importing %s (%s) into %s of %s", what or path.name, _human(size), destination, project)
        with open(path, "rb") as handle:
            resp = self.session.post("/data/services/import", params=params, data=ProgressReader(handle, progress),
                                     headers={"Content-Type": "application/zip"},
                                     timeout=upload_timeout(self.session.settings.timeouts, size))
        uris = [line.strip() for line in resp.text.splitlines() if line.strip().startswith("/")]
        if not uris:
            raise ServerError("The import service did not answer with a session URI", status=resp.status_code,
                              excerpt=resp.text[:200])
        log.info("Imported %s: %s; %s", what or path.name, progress.finished(), ", ".join(uris))
        return uris

    def create_resource(self, owner_uri: str, label: str) -> None:
        self.session.put(join(owner_uri, "resources", label))

    def put_file(self, resource_uri: str, relpath: str, path: Path, *, overwrite: bool, what: str = "") -> None:
        """Upload the file at ``path`` to ``relpath`` in the resource; Conflict if it exists (no overwrite)."""
        size = path.stat().st_size
        target = file_path(resource_uri, relpath)
        params = [("overwrite", "true")] if overwrite else []
        progress = UploadProgress(what or relpath, size)
        with open(path, "rb") as handle:
            resp = self.session.put(target, params=params, data=ProgressReader(handle, progress),
                                    headers={"Content-Type": "application/octet-stream"},
                                    timeout=upload_timeout(self.session.settings.timeouts, size))
        if resp.content.lstrip().startswith(b"{") and b"duplicates" in resp.content:
            raise Conflict(f"{relpath} exists on the server already and was not replaced", status=resp.status_code)
        log.info("Uploaded %s: %s", what or relpath, progress.finished())

    def delete_file(self, file_uri: str) -> None:
        self.session.delete(file_uri)

    def delete_resource(self, resource_uri: str) -> None:
        self.session.delete(resource_uri)


__all__ = ["XNATWriter", "UploadProgress", "upload_timeout"]
