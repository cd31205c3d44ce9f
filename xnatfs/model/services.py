"""The import service: upload a zip (or tar) of DICOM to ``POST /data/services/import``.

Parameters follow xnat-rest-spec §15: ``import-handler`` (``DICOM-zip`` by default), ``dest``
(``/prearchive[/projects/P]`` or ``/archive/projects/P[/subjects/S[/experiments/E]]``),
``PROJECT_ID``/``SUBJECT_ID``/``EXPT_LABEL``, ``overwrite``, ``quarantine`` and ``triggerPipelines``
(spelled right: xnatpy sends ``tiggerPipelines``, which the server ignores).

The body streams from disk with ``Content-Type: application/zip`` (or ``application/x-tar``,
``application/x-gtar``): XNAT derives the archive format from it, and refuses
``application/octet-stream``. A zip is checked locally first (:mod:`xnatfs.model.zipcheck`: readable,
every member's CRC, DICOM inside for the DICOM handlers) and refused with
:class:`~xnatfs.errors.NotImportable` before anything is sent. POST is never retried; the read timeout
grows with the size (:func:`~xnatfs.model.transfer.upload_timeout`): XNAT answers once it has unpacked
and sorted everything.

The answer is the URI of each session made (:func:`import_answer_uris`): a prearchive session, or an
archived experiment.
"""

from __future__ import annotations

import logging
import os
import tempfile
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

from xnatfs.errors import AuthenticationError, NotFound, PermissionDenied, ResponseError, ServerError, UploadError
from xnatfs.model.prearchive import Prearchive
from xnatfs.model.transfer import Progress, ProgressReader, open_upload_source, upload_timeout, walk_files
from xnatfs.model.zipcheck import check_import_zip
from xnatfs.rest.paths import join

if TYPE_CHECKING:
    from xnatfs.model.base import ModelContext

log = logging.getLogger(__name__)

DESTINATIONS = ("prearchive", "archive")
#: import handlers whose archives must hold DICOM
DICOM_HANDLERS = ("DICOM-zip", "gradual-DICOM")


def import_answer_uris(status: int, text: str) -> list[str]:
    """The session URIs in the import service's answer (one a line); ServerError if there is none."""
    uris = [line.strip() for line in text.splitlines() if line.strip().startswith("/")]
    if not uris:
        raise ServerError("The import service did not answer with a session URI", status=status, excerpt=text[:200])
    return uris


def content_type_for(name: str, head: bytes) -> str:
    """The archive media type XNAT needs, from the file name or the first bytes."""
    lowered = name.lower()
    if lowered.endswith((".tar.gz", ".tgz")) or (not lowered.endswith(".zip") and head[:2] == b"\x1f\x8b"):
        return "application/x-gtar"
    if lowered.endswith(".tar"):
        return "application/x-tar"
    return "application/zip"


def destination_path(destination: str, project: str | None, subject: str | None, experiment: str | None) -> str:
    """The ``dest`` parameter for a destination name and the target labels."""
    if destination.startswith("/"):
        return destination
    if destination not in DESTINATIONS:
        raise ValueError(f"destination must be one of {DESTINATIONS} or a /prearchive or /archive path")
    if destination == "prearchive":
        return "/prearchive" + (join("/projects", project) if project else "")
    if not project:
        raise ValueError("importing straight to the archive needs project=")
    path = join("/archive/projects", project)
    if subject:
        path = join(path, "subjects", subject)
        if experiment:
            path = join(path, "experiments", experiment)
    return path


class Services:
    """``connection.services``: the import service."""

    def __init__(self, ctx: ModelContext, prearchive: Prearchive, resolve: Callable[[str], Any]) -> None:
        self._ctx = ctx
        self._prearchive = prearchive
        self._resolve = resolve

    def __repr__(self) -> str:
        return "<Services>"

    def import_(self, source: str | os.PathLike[str] | IO[bytes], *, project: str | None = None,
                subject: str | None = None, experiment: str | None = None, destination: str = "prearchive",
                overwrite: str | None = None, quarantine: bool | None = None, trigger_pipelines: bool | None = None,
                import_handler: str = "DICOM-zip", content_type: str | None = None,
                progress: Progress | None = None, allow_unassigned: bool = False) -> Any:
        """Upload an archive of DICOM files; returns the resulting prearchive session or experiment.

        ``source`` is a path or a binary file object. ``destination`` is ``prearchive`` (default) or
        ``archive`` (or an explicit ``/prearchive…``/``/archive…`` path); ``overwrite`` is ``none``,
        ``append`` or ``delete``. A ``project`` the server does not show us is refused before anything
        is sent (XNAT would file the session under the prearchive's ``Unassigned``, where it is easily
        lost) unless ``allow_unassigned``.
        """
        if project and not allow_unassigned:
            self._check_project(project)
        name = str(source) if isinstance(source, (str, os.PathLike)) else getattr(source, "name", "upload")
        params = [("import-handler", import_handler),
                  ("dest", destination_path(destination, project, subject, experiment))]
        options = (("PROJECT_ID", project), ("SUBJECT_ID", subject), ("EXPT_LABEL", experiment),
                   ("overwrite", overwrite), ("quarantine", quarantine), ("triggerPipelines", trigger_pipelines))
        for key, value in options:
            if value is not None:
                params.append((key, str(value).lower() if isinstance(value, bool) else str(value)))
        try:
            uris = self.import_uris(source, params, name=str(name), content_type=content_type, progress=progress,
                                    require_dicom=import_handler in DICOM_HANDLERS)
        except (AuthenticationError, PermissionDenied):
            raise
        except ResponseError as exc:
            raise UploadError(f"The import service refused {Path(str(name)).name}: {exc}") from exc
        if len(uris) > 1:
            log.info("The import produced %d sessions; returning the first (%s)", len(uris), uris[0])
        uri = uris[0]
        if "/prearchive/" in uri:
            return self._prearchive.get(uri)
        return self._resolve(uri)

    def _check_project(self, project: str) -> None:
        try:
            self._ctx.session.get(join("/data/projects", project), params=[("format", "json")])
        except (NotFound, PermissionDenied) as exc:
            raise NotFound(f"No project {project!r} that you can see on this server: XNAT would put the session "
                           f"in the prearchive's Unassigned folder. Check the project ID, or pass "
                           f"allow_unassigned=True (command line: --allow-unassigned)") from exc

    def import_uris(self, source: str | os.PathLike[str] | IO[bytes], params: list[tuple[str, str]], *, name: str,
                    content_type: str | None = None, progress: Progress | None = None,
                    require_dicom: bool = True, checked: bool = False) -> list[str]:
        """Check and send an archive with ready-made service ``params``; the URIs of the sessions made.

        The one upload path of the import service (the library, ``xnatfs import`` and the mount's
        ``import/`` directory): local zip check, streamed body, size-scaled timeout, the server's
        refusal as its :class:`~xnatfs.errors.ResponseError` (status and words kept), and every cached
        listing dropped once it was sent (a new session may appear anywhere). ``checked``: the caller ran :func:`~xnatfs.model.zipcheck.check_import_zip`
        on this very file already (the mount does, before it decides to send).
        """
        handle, owned = open_upload_source(source)
        try:
            head = handle.read(4)
            handle.seek(handle.tell() - len(head))
            media = content_type or content_type_for(name, head)
            if media == "application/zip" and not checked:
                check_import_zip(handle, Path(name).name, require_dicom=require_dicom)
            body = ProgressReader(handle, progress)
            try:
                resp = self._ctx.session.post("/data/services/import", params=params, data=body,
                                              headers={"Content-Type": media},
                                              timeout=upload_timeout(self._ctx.settings.timeouts, len(body)))
            finally:  # sent, or maybe half-processed: a new session may be anywhere
                self._ctx.cache.clear()
        finally:
            if owned:
                handle.close()
        return import_answer_uris(resp.status_code, resp.text)

    def import_dir(self, directory: str | os.PathLike[str], **kwargs: Any) -> Any:
        """Zip ``directory`` into a temporary file on disk and :meth:`import_` it."""
        with tempfile.TemporaryDirectory(prefix="xnatfs-import-") as tmp:
            archive = Path(tmp) / (Path(directory).name + ".zip")
            with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as zf:
                for path, relative in walk_files(Path(directory)):
                    zf.write(path, relative)
            return self.import_(archive, **kwargs)


__all__ = ["Services", "content_type_for", "destination_path", "import_answer_uris", "DICOM_HANDLERS"]
