"""``bids/<project>/``: a project as a BIDS dataset, read-only, made on demand from its scans.

::

    bids/<project>/
      dataset_description.json   Name, BIDSVersion, DatasetType raw, GeneratedBy xnatfs
      participants.tsv (+ .json) participant_id, sex, age (from the subject's XNAT demographics)
      README                     what this is and where it came from
      .xnatfs_excluded.tsv       every scan left out, with the reason (validators ignore dot-files)
      sub-<label>/[ses-<label>/]<datatype>/sub-<label>[_ses-<label>]_<entities>_<suffix>.nii.gz + .json

The plan (which scan goes where) comes from records only: the project's subjects, each subject's
document (its sessions with their scans and resources) and the project's optional ``BIDS`` resource
holding ``bidsmap.json`` (:mod:`xnatfs.vfs.bidsnames` maps series descriptions). Labels are made
BIDS-safe (letters and digits) and unique. A ``ses-`` level is used when some subject has more than
one session with mapped scans. Scans of one session that map to the same name get ``run-<n>`` in
scan order.

Images are converted when their datatype folder is listed or a name in it looked up (so sizes are
final): the ``.nii.gz`` (and ``.bval``/``.bvec``) are the NIfTI view's files
(:class:`~xnatfs.vfs.nifti_view.SeriesSource`, one conversion per series, shared); the ``.json`` is
dcm2niix's sidecar with what BIDS requires added (``TaskName`` for functional runs). A scan whose
conversion fails, or a diffusion scan without b-values, is left out of its folder with a log line.

The plan is cached for the metadata TTL. Thread-safe (the parts are).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import xnatfs
from xnatfs.cache.ttl import TTLCache
from xnatfs.errors import NotADirectory, NotFound
from xnatfs.model.records import EXPERIMENT, SCAN, XObject
from xnatfs.vfs.bidsnames import BidsmapError, BidsName, Bidsmap, Unmapped, bids_name, number_runs, \
    parse_bidsmap, unique_labels
from xnatfs.vfs.naming import split_path
from xnatfs.vfs.nifti_view import SeriesSource, dicom_resource
from xnatfs.vfs.nodes import FILE_MODE, Node, NodeKind, Stat, dir_stat, file_stat

log = logging.getLogger(__name__)

BIDS = "bids"
BIDS_VERSION = "1.9.0"
BIDSMAP_RESOURCE = "BIDS"
BIDSMAP_FILE = "bidsmap.json"
EXCLUDED_FILE = ".xnatfs_excluded.tsv"
#: subject documents read at once while planning a dataset
_DOCUMENT_WORKERS = 4
#: dcm2niix output suffix → the BIDS file's suffix (the sidecar is rewritten, the rest served as made)
_IMAGE_SUFFIXES = (".nii.gz", ".bval", ".bvec")


@dataclass(frozen=True)
class _Image:
    """One scan in the dataset: where it goes and what it is."""

    folder: str  # relative: sub-X[/ses-Y]/<datatype>
    stem: str
    name: BidsName
    scan: XObject


@dataclass
class _Plan:
    """A project's dataset: folders (relative path → child names), small files, images by folder."""

    mtime: float
    folders: dict[str, list[str]] = field(default_factory=dict)
    texts: dict[str, bytes] = field(default_factory=dict)
    images: dict[str, list[_Image]] = field(default_factory=dict)


class BidsView:
    """``bids/``: one BIDS dataset per project (see module docstring)."""

    def __init__(self, series: SeriesSource, *, ttl: float, mount_time: float) -> None:
        self.series = series
        self.source = series.tree.source
        self.mount_time = mount_time
        self._plans: TTLCache = TTLCache(256, ttl)

    def clear(self) -> None:
        self._plans.clear()

    # -- area operations ------------------------------------------------------------------------------

    def lookup(self, path: str) -> Node:
        parts = split_path(path)
        if len(parts) == 1:
            return Node(NodeKind.COLLECTION, f"/{BIDS}", dir_stat(self.mount_time), collection=BIDS)
        project = self._project(parts[1])
        if len(parts) == 2:  # no plan needed (ls -l bids/ stays one request)
            return self._dir(f"/{BIDS}/{parts[1]}", self._mtime(project))
        plan = self._plan(project)
        rel = "/".join(parts[2:])
        if rel in plan.folders:
            return self._dir(path, plan.mtime)
        parent = "/".join(parts[2:-1])
        image = parent in plan.images and not parts[-1].startswith(".")  # probes convert nothing
        if parent in plan.folders and (parts[-1] in plan.folders[parent] or image):
            found = self._entries(path.rsplit("/", 1)[0], plan, parent).get(parts[-1])
            if found is not None:
                return found
        raise NotFound(f"No such entry: {path}")

    def listdir(self, path: str) -> list[Node]:
        parts = split_path(path)
        if len(parts) == 1:
            return [self._dir(f"/{BIDS}/{p.id}", self._mtime(p)) for p in self.source.projects()]
        plan = self._plan(self._project(parts[1]))
        rel = "/".join(parts[2:])
        if rel not in plan.folders:
            self.lookup(path)
            raise NotADirectory(path)
        return list(self._entries(path, plan, rel).values())

    # -- entries --------------------------------------------------------------------------------------

    def _mtime(self, project: XObject) -> float:
        """Every entry of a dataset has its project's time (from the projects listing)."""
        return project.mtime if project.mtime is not None else self.mount_time

    def _dir(self, path: str, mtime: float) -> Node:
        return Node(NodeKind.COLLECTION, path, dir_stat(mtime), collection=BIDS)

    def _entries(self, path: str, plan: _Plan, rel: str) -> dict[str, Node]:
        entries: dict[str, Node] = {}
        prefix = f"{rel}/" if rel else ""
        for name in plan.folders[rel]:
            child = prefix + name
            if child in plan.folders:
                entries[name] = self._dir(f"{path}/{name}", plan.mtime)
            elif child in plan.texts:
                data = plan.texts[child]
                entries[name] = Node(NodeKind.TEXT, f"{path}/{name}", Stat(FILE_MODE, len(data), plan.mtime), data=data)
        for image in plan.images.get(rel, ()):
            entries.update(self._image_nodes(path, image, plan.mtime))
        return entries

    def _image_nodes(self, path: str, image: _Image, mtime: float) -> dict[str, Node]:
        """The files of one image (converted now if it was not): none if conversion failed."""
        converted = self.series.convert(image.scan)
        if converted is None or not converted.ok:
            log.warning("BIDS view: scan %s (%s) left out of %s: its conversion failed", image.scan.id,
                        image.scan.fields.get("series_description", ""), image.folder)
            return {}
        nodes: dict[str, Node] = {}
        for suffix in _IMAGE_SUFFIXES:
            made = converted.named(suffix)
            if made:
                name = made[0]
                nodes[f"{image.stem}{suffix}"] = Node(NodeKind.DERIVED, f"{path}/{image.stem}{suffix}",
                                                      file_stat(dict(converted.files)[name], mtime),
                                                      local=converted.path(name))
        if image.name.datatype == "dwi" and not (f"{image.stem}.bval" in nodes and f"{image.stem}.bvec" in nodes):
            log.warning("BIDS view: diffusion scan %s left out of %s: dcm2niix found no b-values", image.scan.id,
                        image.folder)
            return {}
        sidecar = self._sidecar(converted.path(converted.named(".json")[0]) if converted.named(".json") else None,
                                image.name)
        nodes[f"{image.stem}.json"] = Node(NodeKind.TEXT, f"{path}/{image.stem}.json",
                                           Stat(FILE_MODE, len(sidecar), mtime), data=sidecar)
        return nodes

    @staticmethod
    def _sidecar(made: Path | None, name: BidsName) -> bytes:
        """dcm2niix's sidecar with what BIDS requires of this name (``TaskName`` for a functional run)."""
        data: dict = {}
        if made is not None:
            try:
                data = json.loads(made.read_text())
            except (OSError, ValueError):
                data = {}
        task = name.entity("task")
        if name.datatype == "func" and task:
            data["TaskName"] = task
        return (json.dumps(data, indent=2, sort_keys=False) + "\n").encode()

    # -- the plan -------------------------------------------------------------------------------------

    def _project(self, name: str) -> XObject:
        for project in self.source.projects():
            if project.id == name:
                return project
        raise NotFound(f"No such project: {name}")

    def _plan(self, project: XObject) -> _Plan:
        return self._plans.get_or_load(project.id, lambda: self._make_plan(project))

    def _bidsmap(self, project: XObject) -> tuple[Bidsmap | None, str]:
        """The project's ``BIDS/bidsmap.json``, or None; and a note for the excluded list if it is broken."""
        record = self.source.project(project)
        resource = next((r for r in record.resources or () if r.label == BIDSMAP_RESOURCE), None)
        if resource is None:
            return None, ""
        files = [f for f in self.source.files(resource.scope_uri)
                 if f.resource_id == resource.id and f.relpath == BIDSMAP_FILE]
        if not files:
            return None, ""
        try:
            return parse_bidsmap(self.series.converter.read_whole(files[0])), ""
        except BidsmapError as exc:
            log.warning("BIDS view of %s: %s; using the built-in names", project.id, exc)
            return None, str(exc)

    def _make_plan(self, project: XObject) -> _Plan:
        record = self.source.project(project)
        bidsmap, problem = self._bidsmap(project)
        rows = self.source.subjects(project)
        with ThreadPoolExecutor(max(1, min(_DOCUMENT_WORKERS, len(rows))), thread_name_prefix="xnatfs-bids") as pool:
            subjects = list(pool.map(self.source.subject, rows))  # one document each, a few at a time
        excluded: list[tuple[str, str, str, str]] = []
        if problem:
            excluded.append(("", "", "", f"{BIDSMAP_RESOURCE}/{BIDSMAP_FILE} ignored: {problem}"))
        # per subject: [(session, [(scan, BidsName)])]
        mapped: list[tuple[XObject, list[tuple[XObject, list[tuple[XObject, BidsName]]]]]] = []
        for subject in subjects:
            sessions = []
            for session in subject.children_of(EXPERIMENT) or ():
                scans = list(session.children_of(SCAN) or ())
                names: list[BidsName | Unmapped] = []
                for scan in scans:
                    if dicom_resource(scan) is None:
                        names.append(Unmapped("no DICOM resource"))
                        continue
                    description = str(scan.fields.get("series_description") or scan.fields.get("type") or "")
                    names.append(bids_name(description, str(scan.fields.get("modality") or "MR"), bidsmap))
                chosen = []
                for scan, name in zip(scans, number_runs(names)):
                    if isinstance(name, Unmapped):
                        excluded.append((subject.label, session.label, scan.id, name.reason))
                    else:
                        chosen.append((scan, name))
                if chosen:
                    sessions.append((session, chosen))
            if sessions:
                mapped.append((subject, sessions))
            else:
                excluded.append((subject.label, "", "", "no scan maps to a BIDS name"))
        with_sessions = any(len(sessions) > 1 for _, sessions in mapped)
        plan = _Plan(mtime=self._mtime(project))
        top = plan.folders.setdefault("", [])
        sub_labels = unique_labels([s.label for s, _ in mapped])
        participants = []
        for (subject, sessions), sub in zip(mapped, sub_labels):
            sub_dir = f"sub-{sub}"
            top.append(sub_dir)
            plan.folders[sub_dir] = []
            ses_labels = unique_labels([s.label for s, _ in sessions])
            for (session, chosen), ses in zip(sessions, ses_labels):
                base = sub_dir
                if with_sessions:
                    base = f"{sub_dir}/ses-{ses}"
                    plan.folders[sub_dir].append(f"ses-{ses}")
                    plan.folders[base] = []
                for scan, name in chosen:
                    folder = f"{base}/{name.datatype}"
                    if folder not in plan.folders:
                        plan.folders[folder] = []
                        plan.folders[base].append(name.datatype)
                    stem = name.stem(sub, ses if with_sessions else None)
                    plan.images.setdefault(folder, []).append(_Image(folder, stem, name, scan))
            participants.append(_participant(f"sub-{sub}", subject, sessions[0][0]))
        for name, data in (("dataset_description.json", _description(record)),
                           ("participants.tsv", _participants_tsv(participants)),
                           ("participants.json", _PARTICIPANTS_JSON),
                           ("README", _readme(record)),
                           (EXCLUDED_FILE, _excluded_tsv(excluded))):
            plan.texts[name] = data
            top.append(name)
        return plan


def _description(project: XObject) -> bytes:
    name = str(project.fields.get("name") or project.id)
    return (json.dumps({
        "Name": name, "BIDSVersion": BIDS_VERSION, "DatasetType": "raw",
        "GeneratedBy": [{"Name": "xnatfs", "Version": xnatfs.__version__,
                         "Description": f"A view of XNAT project {project.id}, converted by dcm2niix on demand"}],
    }, indent=2) + "\n").encode()


def _readme(project: XObject) -> bytes:
    text = str(project.fields.get("description") or "")
    return (f"XNAT project {project.id}: {project.fields.get('name') or project.id}\n\n{text}\n\n"
            "This dataset is a read-only view made by xnatfs from the project's DICOM scans; scans that map to no "
            f"BIDS name are listed in {EXCLUDED_FILE}.\n").encode()


_PARTICIPANTS_JSON = (json.dumps({
    "sex": {"Description": "sex of the participant, from XNAT's demographics",
            "Levels": {"M": "male", "F": "female", "O": "other"}},
    "age": {"Description": "age of the participant at the first session, from XNAT's demographics",
            "Units": "year"},
}, indent=2) + "\n").encode()


def _participant(label: str, subject: XObject, session: XObject) -> tuple[str, str, str]:
    demographics: Mapping = next(iter(subject.extra.get("demographics", ())), {})
    gender = str(demographics.get("gender") or subject.fields.get("gender") or "").lower()
    sex = {"male": "M", "m": "M", "female": "F", "f": "F", "other": "O", "o": "O"}.get(gender, "n/a")
    age = demographics.get("age") or subject.fields.get("age")
    yob = demographics.get("yob") or subject.fields.get("yob")
    if age in (None, "") and yob not in (None, ""):
        year = str(session.fields.get("date") or "")[:4]
        try:
            age = int(year) - int(str(yob))
        except ValueError:
            age = None
    return label, sex, "n/a" if age in (None, "") else str(age)


def _participants_tsv(rows: list[tuple[str, str, str]]) -> bytes:
    lines = ["participant_id\tsex\tage"] + ["\t".join(row) for row in rows]
    return ("\n".join(lines) + "\n").encode()


def _excluded_tsv(rows: list[tuple[str, str, str, str]]) -> bytes:
    def clean(text: str) -> str:
        return " ".join(str(text).split())
    lines = ["subject\tsession\tscan\treason"] + ["\t".join(clean(c) for c in row) for row in rows]
    return ("\n".join(lines) + "\n").encode()


__all__ = ["BidsView", "BIDS", "BIDS_VERSION", "EXCLUDED_FILE", "BIDSMAP_RESOURCE", "BIDSMAP_FILE"]

