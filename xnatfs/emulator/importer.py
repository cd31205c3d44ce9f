"""XNAT's DICOM-zip importer and session archiver for the emulator (spec §15, §16.4).

Owns: turning an uploaded zip/tar/tar.gz of DICOM into prearchive sessions or archived experiments
(`import_upload`), and moving a prearchive session into the archive (`archive_session`), both
all-or-nothing: on any refusal the database and the data directory are as they were.

How an upload becomes sessions (XNAT's GradualDicomImporter + DicomZipImporter rules):
- a study (StudyInstanceUID) is a session, a series a scan (`dicomheaders.group_studies`); files keep
  their entry's base name under `SCANS/<scan ID>/DICOM/` (a clash within a scan gets `<SOP UID>.dcm`);
- project: the `project` parameter, else `dest`'s, else `PROJECT_ID`, if such a project exists; else
  the first existing project named by StudyDescription or AccessionNumber; else "Unassigned";
- subject label: `subject` / dest / `SUBJECT_ID`, else PatientName, else PatientID;
- session label: `session` / dest / `EXPT_LABEL`, else PatientID, else "dicom_upload";
  labels are cleaned as XNAT's `cleanValue` does (space and punctuation → "_"), so never a path;
- prearchive: one session per study at a fresh timestamp, or — as XNAT does — added to the existing
  prearchive session with the same project, StudyInstanceUID and name (unless an operation holds it);
  a `dest=/prearchive/projects/P/TS/F` names only the project (TS and F are not reused);
- archive (`dest=/archive…`): straight into the Store, never through the prearchive; the project must
  exist (XNAT would leave the data in "Unassigned" and fail; we refuse with 400 and keep nothing).

Archiving onto an existing experiment follows PrearcSessionArchiver: `overwrite=none` → 409 "Session
already exists, retry with overwrite enabled"; `append` merges but refuses files that already exist,
another modality, subject or study UID; `delete` also replaces files. A scan number already used by a
scan with another UID is refused (XNAT would renumber the incoming scan).
"""

from __future__ import annotations

import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Mapping

from xnatfs.emulator.dicomheaders import Series, Study, group_studies
from xnatfs.emulator.dicomzip import ArchiveError, open_archive
from xnatfs.emulator.prearchive import (BUSY, UNASSIGNED, PrearcSession, Prearchive, SessionDocument, files_under,
                                        read_document, read_header)
from xnatfs.emulator.responses import HTTPError
from xnatfs.emulator.store import Conflict, Experiment, Invalid, Scan, Store, Subject, md5_of

MAX_EXPANDED_BYTES = 64 * 1024 ** 3  # refuse archives that expand beyond this (zip bombs)
PRE_EXISTS = "Session already exists, retry with overwrite enabled"
SUBJECT_MOD = "Invalid modification of session subject via archive process."
UID_MOD = "Invalid modification of session UID via archive process."
MODALITY_MOD = "Invalid modification of session modality via archive process.  Data may require a manual merge."
HAS_FILES = "Session already exists with matching files."
_CLEAN = set(" `~@#$%^&*()+=[]{}|\\/?:;\"',.<>")
_FORMATS = ((".tar.gz", "tar.gz"), (".tgz", "tar.gz"), (".tar", "tar"), (".zip", "zip"))


def clean_label(value: str) -> str:
    """XnatImagesessiondata.cleanValue: spaces and punctuation become "_"."""
    return "".join("_" if c in _CLEAN or ord(c) < 32 else c for c in value.strip())


@dataclass(frozen=True)
class Destination:
    """The `dest` parameter: prearchive or archive, and the names it carries."""
    archive: bool
    project: str | None = None
    subject: str | None = None
    label: str | None = None


@dataclass
class ImportOptions:
    """The import service's parameters (parsed from the request by the services handler)."""
    destination: Destination | None
    project: str | None
    subject: str | None
    label: str | None
    overwrite: str = "none"  # none, append or delete
    overwrite_files: bool = False
    ignore_unparsable: bool = False
    visit: str = ""
    protocol: str = ""
    source: str = ""
    prevent_anon: str = "false"
    prevent_auto_commit: str = "false"


@dataclass(frozen=True)
class ArchiveTarget:
    project: str
    subject: str
    label: str

    @property
    def uri(self) -> str:
        return f"/data/archive/projects/{self.project}/subjects/{self.subject}/experiments/{self.label}"


# ---- the import service ---------------------------------------------------------------------------
def container_of(name: str) -> str:
    """DICOM-zip picks the container from the upload's file name (XNAT's Format.getFormat)."""
    lower = name.lower()
    for suffix, kind in _FORMATS:
        if lower.endswith(suffix):
            return kind
    raise ArchiveError(f"Unsupported format UNKNOWN: the upload {name!r} is not named *.zip, *.tar, *.tar.gz or "
                       "*.tgz (send Content-Type application/zip, application/x-tar or application/x-gtar)")


def import_upload(store: Store, prearchive: Prearchive, upload: BinaryIO, name: str,
                  options: ImportOptions) -> list[str]:
    """Import one uploaded archive; returns the created sessions' URIs (prearchive or archive)."""
    kind = container_of(name)
    with open_archive(upload, name_hint=name) as archive:
        if archive.format != kind:
            raise ArchiveError(f"The upload {name!r} is not a {kind} archive (it is a {archive.format} archive).")
        contents = archive.scan(max_bytes=MAX_EXPANDED_BYTES)
        if contents.unparsable and not options.ignore_unparsable:
            raise ArchiveError(f"unable to read DICOM object {contents.unparsable[0]}")
        studies = group_studies(contents.instances)
        to_archive = bool(options.destination and options.destination.archive)
        plans = [_plan(store, study, options, to_archive) for study in studies]
        staging = Path(tempfile.mkdtemp(prefix="import-", dir=store.tmp_dir))
        try:
            targets = {inst.entry: f"{n}/SCANS/{series.scan_id}/DICOM/{file_name}"
                       for n, study in enumerate(studies) for series in study.series
                       for inst, file_name in zip(series.instances, file_names(series))}
            archive.extract(targets, staging)
            folders = [staging / str(n) for n in range(len(studies))]
            if to_archive:
                return _commit_archive(store, folders, plans, options)
            return _commit_prearchive(prearchive, folders, plans, options)
        finally:
            shutil.rmtree(staging, ignore_errors=True)


@dataclass
class _Plan:
    study: Study
    project: str | None
    subject: str
    label: str


def _plan(store: Store, study: Study, options: ImportOptions, to_archive: bool) -> _Plan:
    first = study.first
    project = options.project if options.project and store.get_project(options.project) else None
    if project is None:
        project = next((p for p in (first.study_description, first.accession_number)
                        if p and store.get_project(p)), None)
    if to_archive and project is None:
        named = options.project or "(none given)"
        raise HTTPError(400, f"Unable to identify project {named}: sessions can only be archived into an "
                             "existing project")
    subject = options.subject or first.patient_name or first.patient_id
    label = clean_label(options.label or first.patient_id or "dicom_upload") or "dicom_upload"
    if to_archive and not clean_label(subject):
        raise HTTPError(400, "Unable to identify subject.")
    return _Plan(study, project, subject, label)


def file_names(series: Series) -> list[str]:
    """Each instance's file name in its scan folder: the entry's base name, unique within the scan."""
    names: list[str] = []
    for inst in series.instances:
        name = inst.entry.rsplit("/", 1)[-1].lstrip(".") or f"{inst.sop_uid}.dcm"
        candidate, n = name, 1
        while candidate in names:
            candidate = f"{inst.sop_uid}.dcm" if n == 1 else f"{inst.sop_uid}_{n}.dcm"
            n += 1
        names.append(candidate)
    return names


def _commit_prearchive(prearchive: Prearchive, folders: list[Path], plans: list[_Plan],
                       options: ImportOptions) -> list[str]:
    uris: list[str] = []
    undo: list[tuple[Path, Path | None]] = []  # (path written, backup of what it replaced)
    try:
        with prearchive.store.transaction():
            for folder, plan in zip(folders, plans):
                project = plan.project or UNASSIGNED
                existing = prearchive.find_study(project, plan.study.study_uid, plan.label)
                if existing is not None and existing.status not in BUSY:
                    _merge_into(prearchive, existing, folder, undo)
                    uris.append(existing.uri)
                    continue
                timestamp = prearchive.new_timestamp()
                target = prearchive.folder_path(project, timestamp, plan.label)
                target.parent.mkdir(parents=True, exist_ok=True)
                os.replace(folder, target)
                undo.append((target, None))
                session = PrearcSession(project, timestamp, plan.label, plan.label, subject=plan.subject,
                                        autoarchive="" if plan.project is None else "Manual",
                                        prevent_anon=options.prevent_anon,
                                        prevent_auto_commit=options.prevent_auto_commit, source=options.source,
                                        visit=options.visit, protocol=options.protocol)
                session.describe(SessionDocument.of(plan.study))
                prearchive.insert(session)
                uris.append(session.uri)
    except BaseException:
        for written, backup in reversed(undo):
            if backup is not None:
                os.replace(backup, written)
            elif written.is_dir():
                shutil.rmtree(written, ignore_errors=True)
                _prune(written.parent, prearchive.root)
            else:
                written.unlink(missing_ok=True)
                _prune(written.parent, prearchive.root)
        raise
    return uris


def _merge_into(prearchive: Prearchive, session: PrearcSession, staged: Path,
                undo: list[tuple[Path, Path | None]]) -> None:
    """Add a staged study's files to an existing prearchive session (XNAT's same-study rule)."""
    folder = prearchive.path_of(session)
    uid_of = {}
    for scan_dir in (folder / "SCANS").iterdir() if (folder / "SCANS").is_dir() else []:
        first = next((read_header(p, p.name) for p in files_under(scan_dir)), None)
        uid_of[scan_dir.name] = first.series_uid if first else ""
    backups = staged.parent / f"{staged.name}.replaced"
    for scan_dir in sorted((staged / "SCANS").iterdir()):
        files = files_under(scan_dir)
        series_uid = read_header(files[0], files[0].name).series_uid  # staged files are DICOM
        scan_id = next((i for i, u in uid_of.items() if u == series_uid), None) or _free_id(scan_dir.name, uid_of)
        uid_of[scan_id] = series_uid
        for path in files:
            target = folder / "SCANS" / scan_id / path.relative_to(scan_dir)
            backup = None
            if target.exists():
                incoming = read_header(path, path.name)
                present = read_header(target, target.name)
                if present is not None and incoming is not None and present.sop_uid == incoming.sop_uid:
                    backup = backups / scan_id / target.name
                    backup.parent.mkdir(parents=True, exist_ok=True)
                    os.replace(target, backup)
                else:
                    target = target.with_name(f"{incoming.sop_uid if incoming else path.name}.dcm")
            target.parent.mkdir(parents=True, exist_ok=True)
            os.replace(path, target)
            undo.append((target, backup))
    document = read_document(folder)
    if document is not None:
        session.describe(document)
    session.status = "READY"
    prearchive.save(session)


def _free_id(wanted: str, taken: Mapping[str, str]) -> str:
    candidate, n = wanted, 1
    while candidate in taken:
        n += 1
        candidate = f"{wanted}-{n}"
    return candidate


def _commit_archive(store: Store, folders: list[Path], plans: list[_Plan], options: ImportOptions) -> list[str]:
    md5s = {path: md5_of(path) for folder in folders for path in files_under(folder)}
    uris = []
    with store.transaction():
        for folder, plan in zip(folders, plans):
            target = ArchiveTarget(plan.project or "", clean_label(plan.subject), plan.label)
            commit_to_archive(store, folder, SessionDocument.of(plan.study), target, mode=options.overwrite,
                              overwrite_files=options.overwrite_files, md5s=md5s)
            uris.append(target.uri)
    return uris


# ---- archiving ------------------------------------------------------------------------------------
def commit_to_archive(store: Store, folder: Path, document: SessionDocument, target: ArchiveTarget, *,
                      mode: str, overwrite_files: bool, md5s: Mapping[Path, str]) -> Experiment:
    """Store a session folder (`SCANS/<id>/<resource>/…`, `RESOURCES/<label>/…`) as an experiment.

    Files are moved out of `folder` (it must be a private staging copy). Call inside a transaction.
    """
    if store.get_project(target.project) is None:
        raise Invalid(f"unable to identify destination project {target.project}")
    replace_files = mode == "delete" or overwrite_files
    subject = store.find_subject(target.project, target.subject)
    experiment = store.find_experiment(target.project, target.label)
    if experiment is not None:
        _check_merge(store, experiment, folder, document, subject, mode, replace_files)
        store.update_experiment(experiment.id, dict(document.fields))
    else:
        if subject is None:
            subject = store.create_subject(target.project, target.subject)
        experiment = store.create_experiment(target.project, subject.id, target.label, document.xsi_type,
                                             dict(document.fields))
    scan_type = document.xsi_type.replace("SessionData", "ScanData")
    for scan_dir in _subdirs(folder / "SCANS"):
        described = document.scan(scan_dir.name)
        fields = dict(described.fields) if described else {}
        scan = store.get_scan(experiment.id, scan_dir.name)
        if scan is None:
            scan = store.create_scan(experiment.id, scan_dir.name, described.xsi_type if described else scan_type,
                                     fields)
        elif fields:
            scan = store.update_scan(experiment.id, scan.id, fields)
        for resource_dir in _subdirs(scan_dir):
            _store_resource(store, scan, resource_dir, replace_files, md5s)
    for resource_dir in _subdirs(folder / "RESOURCES"):
        _store_resource(store, experiment, resource_dir, replace_files, md5s)
    return experiment


def _check_merge(store: Store, existing: Experiment, folder: Path, document: SessionDocument,
                 subject: Subject | None, mode: str, replace_files: bool) -> None:
    if mode == "none":
        raise Conflict(PRE_EXISTS)
    if existing.xsi_type != document.xsi_type:
        raise Conflict(MODALITY_MOD)
    if subject is None or subject.id != existing.subject_id:
        raise Conflict(f"{SUBJECT_MOD}: {existing.label} Already Exists for another Subject")
    old_uid, new_uid = existing.fields.get("UID"), document.fields.get("UID")
    if mode == "append" and old_uid and new_uid and old_uid != new_uid:
        raise Conflict(UID_MOD)
    present = store.list_scans(existing.id)
    for scan_dir in _subdirs(folder / "SCANS"):
        described = document.scan(scan_dir.name)
        uid = described.fields.get("UID") if described else None
        same_id = next((s for s in present if s.id == scan_dir.name), None)
        if same_id is not None and uid and same_id.fields.get("UID") not in (None, "", uid):
            raise Conflict(f"Session already contains a scan ({same_id.id}) with the same number, but a "
                           "different UID.")
        same_uid = next((s for s in present if uid and s.fields.get("UID") == uid and s.id != scan_dir.name), None)
        if same_uid is not None and mode != "delete":
            raise Conflict(f"Session already contains a scan with the same UID, but a different number "
                           f"({same_uid.id}).")
        if same_id is not None and not replace_files:
            for resource_dir in _subdirs(scan_dir):
                resource = store.find_resource(same_id, resource_dir.name)
                if resource and any(store.get_file(resource.id, str(p.relative_to(resource_dir)))
                                    for p in files_under(resource_dir)):
                    raise Conflict(HAS_FILES)


def _store_resource(store: Store, owner: Scan | Experiment, resource_dir: Path, replace_files: bool,
                    md5s: Mapping[Path, str]) -> None:
    dicom = resource_dir.name in ("DICOM", "secondary")
    kind = {"format": "DICOM", "content": "RAW" if resource_dir.name == "DICOM" else "secondary"} if dicom else {}
    resource = store.find_resource(owner, resource_dir.name) or store.create_resource(owner, resource_dir.name,
                                                                                         **kind)
    for path in files_under(resource_dir):
        relative = str(path.relative_to(resource_dir))
        if store.get_file(resource.id, relative) and not replace_files:
            raise Conflict(HAS_FILES)
        store.add_file(resource.id, relative, path, overwrite=replace_files, move=True, md5=md5s.get(path),
                       **kind)


def archive_session(store: Store, prearchive: Prearchive, session: PrearcSession, target: ArchiveTarget, *,
                    mode: str, overwrite_files: bool) -> Experiment:
    """Archive one prearchive session (XNAT's Archiver for a single `src`); the session is removed after.

    Refusals leave the files where they were and set the session's status to CONFLICT (409) or ERROR.
    """
    if not prearchive.claim(session, "ARCHIVING"):
        raise HTTPError(403, "Operation already in progress on this prearchive entry.")
    staging = Path(tempfile.mkdtemp(prefix="archive-", dir=store.tmp_dir))
    try:
        _link_tree(prearchive.path_of(session), staging / "session")
        md5s = {path: md5_of(path) for path in files_under(staging / "session")}
        with store.transaction():
            experiment = commit_to_archive(store, staging / "session", session.document, target, mode=mode,
                                           overwrite_files=overwrite_files, md5s=md5s)
    except BaseException as exc:
        prearchive.set_status(session, "CONFLICT" if getattr(exc, "status", None) == 409 else "ERROR")
        raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    prearchive.delete(session)
    return experiment


def _link_tree(source: Path, target: Path) -> None:
    """A private copy of a folder made of hard links (a real copy where links are not possible)."""
    for path in files_under(source):
        dest = target / path.relative_to(source)
        dest.parent.mkdir(parents=True, exist_ok=True)
        try:
            os.link(path, dest)
        except OSError:
            shutil.copy2(path, dest)


def _subdirs(path: Path) -> list[Path]:
    return sorted((p for p in path.iterdir() if p.is_dir()), key=lambda p: p.name) if path.is_dir() else []


def _prune(path: Path, root: Path) -> None:
    while path != root and path.is_relative_to(root):
        try:
            path.rmdir()
        except OSError:
            return
        path = path.parent
