"""Hand-written behaviour per object family, and the listing kinds that make those objects.

The builder puts a family base first in the bases of the generated class of its xsi type
(:data:`FAMILY_BASES`), so ``MrSessionData`` gets schema fields *and* ``scans``, ``download_dir``…

URIs are canonical and built from accession IDs, so one object has one cache key:

==============  ======================================================
project         ``/data/projects/{ID}``
subject         ``/data/projects/{project}/subjects/{ID}``
experiment      ``/data/experiments/{ID}`` (XNAT's flat form, spec §10.2)
scan            ``/data/experiments/{session}/scans/{ID}``
assessor        ``/data/experiments/{session}/assessors/{ID}``
reconstruction  ``/data/experiments/{session}/reconstructions/{ID}``
resource        ``<owner uri>/resources/{label}``
==============  ======================================================

Creation sends XNAT's ``PUT <container>/<label>?xsiType=…&req_format=qs&<xpath>=<value>``
(xnatpy-notes §2.3.13); the answer is the new accession ID where XNAT gives one.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path
from typing import IO, Any

from xnatfs.errors import Conflict, NotFound, UploadError
from xnatfs.model.base import XNATObject, field_params
from xnatfs.model.files import File
from xnatfs.model.listing import Listing, ListingKind
from xnatfs.model.transfer import (
    Progress,
    ProgressReader,
    download_and_extract,
    open_upload_source,
    upload_timeout,
    walk_files,
)
from xnatfs.rest.items import Item
from xnatfs.rest.paths import file_path, file_relpath, join
from xnatfs.rest.resultset import Row

log = logging.getLogger(__name__)


class HasResources(XNATObject):
    """Objects that own resources (every level from project to scan/assessor)."""

    @property
    def resources(self) -> Listing:
        """The resources (file folders) of this object, by ID or label."""
        return self._listing("resources", lambda: Listing(self._ctx, self._uri + "/resources", RESOURCES, owner=self))

    def create_resource(self, label: str, **kwargs: Any) -> ResourceBase:
        return self.resources.create(label, **kwargs)

    def download_dir(self, target: str | Path, *, progress: Progress | None = None) -> Path:
        """Download every file below this object as a zip and extract it safely under ``target``."""
        download_and_extract(self._ctx.session, self._zip_path(), Path(target), progress=progress)
        return Path(target)

    def _zip_path(self) -> str:
        return self._uri + "/files"


class ProjectBase(HasResources):
    FAMILY_XSI = "xnat:projectData"

    @property
    def subjects(self) -> Listing:
        return self._listing("subjects", lambda: Listing(self._ctx, self._uri + "/subjects", SUBJECTS, owner=self))

    @property
    def experiments(self) -> Listing:
        return self._listing("experiments",
                             lambda: Listing(self._ctx, self._uri + "/experiments", EXPERIMENTS, owner=self))

    def _containers(self) -> Sequence[str]:
        return ("/data/projects",)


class SubjectBase(HasResources):
    FAMILY_XSI = "xnat:subjectData"

    @property
    def experiments(self) -> Listing:
        return self._listing("experiments",
                             lambda: Listing(self._ctx, self._uri + "/experiments", EXPERIMENTS, owner=self))

    def _containers(self) -> Sequence[str]:
        return (self._uri.rsplit("/", 1)[0],)


class ExperimentBase(HasResources):
    FAMILY_XSI = "xnat:experimentData"

    @property
    def subject(self) -> SubjectBase:
        """The subject of this experiment (its listing parent, or looked up by ``subject_ID``)."""
        if isinstance(self._parent, SubjectBase):
            return self._parent
        project = self._parent if isinstance(self._parent, ProjectBase) else None
        subject_id = self._field_text("subject_ID")
        if project is None or not subject_id:
            raise NotFound(f"No subject known for experiment {self._uri}")
        return project.subjects[subject_id]

    def _containers(self) -> Sequence[str]:
        parent = self._parent
        if isinstance(parent, SubjectBase):
            return (parent.uri + "/experiments", parent.uri.rsplit("/subjects/", 1)[0] + "/experiments")
        if isinstance(parent, ProjectBase):
            paths = [parent.uri + "/experiments"]
            subject_id = self._field_text("subject_ID")
            if subject_id:
                paths.append(join(parent.uri, "subjects", subject_id, "experiments"))
            return paths
        return ()


class ImageSessionBase(ExperimentBase):
    FAMILY_XSI = "xnat:imageSessionData"

    @property
    def scans(self) -> Listing:
        return self._listing("scans", lambda: Listing(self._ctx, self._uri + "/scans", SCANS, owner=self))

    @property
    def assessors(self) -> Listing:
        return self._listing("assessors", lambda: Listing(self._ctx, self._uri + "/assessors", ASSESSORS, owner=self))

    @property
    def reconstructions(self) -> Listing:
        return self._listing("reconstructions",
                             lambda: Listing(self._ctx, self._uri + "/reconstructions", RECONSTRUCTIONS, owner=self))

    def _zip_path(self) -> str:
        return self._uri + "/scans/ALL/files"


class SessionChild(HasResources):
    """Scans, assessors and reconstructions: contained in an image session's collection."""

    COLLECTION = ""

    def _containers(self) -> Sequence[str]:
        return (self._uri.rsplit("/", 1)[0],)


class ScanBase(SessionChild):
    FAMILY_XSI = "xnat:imageScanData"


class ReconstructionBase(SessionChild):
    FAMILY_XSI = "xnat:reconstructedImageData"


class AssessorBase(SessionChild, ExperimentBase):
    FAMILY_XSI = "xnat:imageAssessorData"

    def _containers(self) -> Sequence[str]:
        return SessionChild._containers(self)


class ResourceBase(XNATObject):
    """A resource (file folder). XNAT serves no JSON item for it: its fields are its listing row."""

    FAMILY_XSI = "xnat:abstractResource"

    @property
    def files(self) -> Listing:
        return self._listing("files", lambda: Listing(self._ctx, self._uri + "/files", FILES, owner=self))

    def _item(self) -> Item:
        row = self._fresh_row()
        if not row:
            owner_resources = self._uri.rsplit("/", 1)[0]
            rows = Listing(self._ctx, owner_resources, RESOURCES).rows()
            key = self._uri.rsplit("/", 1)[-1]
            row = next((r for r in rows if key in (r.get("label"), r.get("xnat_abstractresource_id"))), {})
            if not row:
                raise NotFound(f"No resource {key!r} in {owner_resources}")
        return Item(row.get("element_name") or self.FAMILY_XSI, dict(row))

    def _field_text(self, key: str) -> str | None:
        return self._item().text(key)

    def _containers(self) -> Sequence[str]:
        return (self._uri.rsplit("/", 1)[0],)

    def _files_changed(self) -> None:
        self._row.clear()
        self._ctx.invalidate(exact=[self._uri + "/files", *self._containers()])

    def download_dir(self, target: str | Path, *, progress: Progress | None = None) -> Path:
        """Download the resource's files as a zip and extract them safely under ``target``."""
        download_and_extract(self._ctx.session, self._uri + "/files", Path(target), progress=progress)
        return Path(target)

    def upload(self, source: str | Path | IO[bytes] | bytes, remote_path: str | None = None, *, overwrite: bool = False,
               progress: Progress | None = None, extract: bool = False, content: str | None = None,
               format: str | None = None, tags: str | None = None) -> File | None:
        """Stream a local file (path, binary file object, or bytes) to ``remote_path`` in this resource.

        Without ``overwrite`` an existing file is an error (:class:`~xnatfs.errors.Conflict`); XNAT
        itself would answer 200 and keep the old file. Returns the new :class:`File` (None with
        ``extract``, whose entries land at the resource root).
        """
        if remote_path is None:
            if not isinstance(source, (str, Path)):
                raise TypeError("remote_path is required when uploading from a file object")
            remote_path = Path(source).name
        self.put_file(source, remote_path, overwrite=overwrite, progress=progress, extract=extract, content=content,
                      format=format, tags=tags)
        return None if extract else self.files.refresh()[file_relpath(file_path(self._uri, remote_path))]

    def put_file(self, source: str | Path | IO[bytes] | bytes, remote_path: str, *, overwrite: bool = False,
                 progress: Progress | None = None, extract: bool = False, content: str | None = None,
                 format: str | None = None, tags: str | None = None) -> None:
        """The upload itself, one streamed ``PUT`` and no listing afterwards (what :meth:`upload` and the
        mount share): an existing file without ``overwrite`` is a :class:`~xnatfs.errors.Conflict`
        (XNAT answers 200 with ``{"duplicates": …}`` and keeps the old file); the read timeout grows
        with the size, since XNAT answers only once it has stored the file."""
        path = file_path(self._uri, remote_path)
        options = (("overwrite", "true" if overwrite else None), ("extract", "true" if extract else None),
                   ("content", content), ("format", format), ("tags", tags))
        params = [(key, value) for key, value in options if value is not None]
        handle, owned = open_upload_source(source)
        try:
            body = ProgressReader(handle, progress)
            if len(body) == 0:  # XNAT answers 400 to an empty PUT body (xnat-rest-spec §13.4)
                raise UploadError(f"{remote_path} is empty; XNAT does not accept empty files")
            resp = self._ctx.session.put(path, params=params, data=body,
                                         headers={"Content-Type": "application/octet-stream"},
                                         timeout=upload_timeout(self._ctx.settings.timeouts, len(body)))
        finally:
            if owned:
                handle.close()
            self._files_changed()
        if resp.content.lstrip().startswith(b"{") and b"duplicates" in resp.content:
            raise Conflict(f"{remote_path} exists on the server already and was not replaced (pass overwrite=True "
                           "to replace it)", status=resp.status_code, url=path)

    def upload_dir(self, directory: str | Path, *, overwrite: bool = False, progress: Progress | None = None,
                   prefix: str = "") -> list[str]:
        """Upload every file below ``directory`` (one streamed PUT each); returns the remote paths.

        Empty files are skipped (and logged): XNAT refuses an empty upload."""
        uploaded = []
        for local, relative in walk_files(Path(directory)):
            if local.stat().st_size == 0:
                log.warning("Skipping empty file %s: XNAT does not accept empty files", local)
                continue
            remote = f"{prefix.strip('/')}/{relative}" if prefix.strip("/") else relative
            self.upload(local, remote, overwrite=overwrite, progress=progress)
            uploaded.append(remote)
        return uploaded


#: xsi type → family base, for :func:`xnatfs.model.builder.build_registry`.
FAMILY_BASES: dict[str, type] = {
    "xnat:projectData": ProjectBase,
    "xnat:subjectData": SubjectBase,
    "xnat:experimentData": ExperimentBase,
    "xnat:imageSessionData": ImageSessionBase,
    "xnat:imageScanData": ScanBase,
    "xnat:reconstructedImageData": ReconstructionBase,
    "xnat:imageAssessorData": AssessorBase,
    "xnat:abstractResource": ResourceBase,
}


# -- listing kinds --------------------------------------------------------------------------------

def _build(listing: Listing, row: Row, family: type, uri: str, xsi: str | None, ident: str,
           default: type | None = None) -> Any:
    cls = listing._ctx.class_for(xsi, family.FAMILY_XSI, family, default)
    return cls(listing._ctx, uri, parent=listing.owner, row=row, xsi_type=xsi or None, id=ident)


def _make_project(listing: Listing, row: Row) -> ProjectBase:
    return _build(listing, row, ProjectBase, join("/data/projects", row["ID"]), "xnat:projectData", row["ID"])


def _make_subject(listing: Listing, row: Row) -> SubjectBase:
    return _build(listing, row, SubjectBase, join(listing.path, row["ID"]), "xnat:subjectData", row["ID"])


def _make_experiment(listing: Listing, row: Row) -> ExperimentBase:
    return _build(listing, row, ExperimentBase, join("/data/experiments", row["ID"]), row.get("xsiType"),
                  row["ID"], ImageSessionBase)


def _maker(family: type) -> Any:
    def make(listing: Listing, row: Row) -> Any:
        return _build(listing, row, family, join(listing.path, row["ID"]), row.get("xsiType"), row["ID"])
    return make


def _make_resource(listing: Listing, row: Row) -> ResourceBase:
    key = row.get("label") or row.get("xnat_abstractresource_id", "")
    return _build(listing, row, ResourceBase, join(listing.path, key), row.get("element_name"),
                  row.get("xnat_abstractresource_id") or key)


def _make_file(listing: Listing, row: Row) -> File:
    return File(listing._ctx, listing.owner, row)  # type: ignore[arg-type]


def _file_id(row: Row) -> str:
    try:
        return file_relpath(row.get("URI", ""))
    except Exception:  # noqa: BLE001 - a row without a files URI is keyed by its name
        return row.get("Name", "")


def _exists(listing: Listing, key: str) -> bool:
    return any(key in (listing.kind.id_of(row), row.get("label")) for row in listing.rows())


def _create(listing: Listing, key: str, xsi_type: str, family: type, fields: dict[str, Any],
            extra: Sequence[tuple[str, str]] = (), path: str | None = None) -> Any:
    """PUT a new object into ``listing`` and return it from the refreshed listing."""
    if _exists(listing, key):
        raise Conflict(f"{key!r} exists already in {listing.path}", url=listing.path)
    cls = listing._ctx.class_for(xsi_type, family.FAMILY_XSI, family)
    params = [("xsiType", xsi_type), *extra, *field_params(cls, xsi_type, fields)]
    resp = listing._ctx.session.put(path or join(listing.path, key), params=params)
    new_id = resp.text.strip() if len(resp.text.strip()) < 200 else ""
    listing.refresh()
    created = listing[new_id] if new_id and new_id in listing.keys() else listing[key]
    owner = [listing.owner.uri] if listing.owner is not None else []
    others = [path for path in created._containers() if path != listing.path]  # this one was just refreshed
    listing._ctx.invalidate(exact=[*others, *owner])
    return created


def _create_project(listing: Listing, id: str, **fields: Any) -> ProjectBase:
    fields.setdefault("name", id)
    fields.setdefault("secondary_ID", id)
    return _create(listing, id, "xnat:projectData", ProjectBase, fields)


def _create_subject(listing: Listing, label: str, **fields: Any) -> SubjectBase:
    return _create(listing, label, "xnat:subjectData", SubjectBase, fields, [("req_format", "qs")])


def _create_experiment(listing: Listing, label: str, xsi_type: str = "xnat:mrSessionData", *,
                       subject: str | None = None, **fields: Any) -> ExperimentBase:
    path = None
    if isinstance(listing.owner, ProjectBase):
        if not subject:
            raise TypeError("creating an experiment in a project needs subject=<label or ID>")
        path = join(listing.owner.uri, "subjects", subject, "experiments", label)
    return _create(listing, label, xsi_type, ExperimentBase, fields, [("req_format", "qs")], path)


def _create_scan(listing: Listing, id: str, xsi_type: str = "xnat:mrScanData", **fields: Any) -> ScanBase:
    return _create(listing, id, xsi_type, ScanBase, fields)


def _create_assessor(listing: Listing, label: str, xsi_type: str, **fields: Any) -> AssessorBase:
    return _create(listing, label, xsi_type, AssessorBase, fields, [("label", label), ("req_format", "qs")])


def _create_reconstruction(listing: Listing, id: str, xsi_type: str = "xnat:reconstructedImageData",
                           **fields: Any) -> ReconstructionBase:
    return _create(listing, id, xsi_type, ReconstructionBase, fields)


def _create_resource(listing: Listing, label: str, *, format: str | None = None, content: str | None = None,
                     tags: str | None = None, description: str | None = None) -> ResourceBase:
    if _exists(listing, label):
        raise Conflict(f"Resource {label!r} exists already in {listing.path}", url=listing.path)
    params = [(k, v) for k, v in (("format", format), ("content", content), ("tags", tags),
                                  ("description", description)) if v is not None]
    listing._ctx.session.put(join(listing.path, label), params=params)
    listing.refresh()
    return listing[label]


PROJECTS = ListingKind("projects", _make_project, secondary=("name", "secondary_ID"), create=_create_project)
SUBJECTS = ListingKind("subjects", _make_subject, secondary=("label",), create=_create_subject)
EXPERIMENTS = ListingKind("experiments", _make_experiment, secondary=("label",), create=_create_experiment)
SCANS = ListingKind("scans", _maker(ScanBase), secondary=("type",), create=_create_scan)
ASSESSORS = ListingKind("assessors", _maker(AssessorBase), secondary=("label",), create=_create_assessor)
RECONSTRUCTIONS = ListingKind("reconstructions", _maker(ReconstructionBase), create=_create_reconstruction)
RESOURCES = ListingKind("resources", _make_resource,
                        id_of=lambda row: row.get("xnat_abstractresource_id") or row.get("label", ""),
                        secondary=("label",), create=_create_resource)
FILES = ListingKind("files", _make_file, id_of=_file_id, secondary=("Name",))

__all__ = [
    "HasResources", "ProjectBase", "SubjectBase", "ExperimentBase", "ImageSessionBase", "ScanBase",
    "ReconstructionBase", "AssessorBase", "ResourceBase", "FAMILY_BASES",
    "PROJECTS", "SUBJECTS", "EXPERIMENTS", "SCANS", "ASSESSORS", "RECONSTRUCTIONS", "RESOURCES", "FILES",
]
