"""The emulator's archive: SQLite rows plus file bytes on disk, kept across restarts.

Everything the REST handlers, the importer and the sample data read or write goes through `Store`,
so one place owns accession IDs, label uniqueness, cascading deletes and where bytes live on disk.

Layout under `data_dir`: `xnat.db` (SQLite) and `archive/resources/<resource id>/<relative path>`
(file bytes), `tmp/` (spooled uploads). Nothing is ever written outside `data_dir`: relative paths
are checked by `check_relative_path` before they touch the disk.

Thread safety: one SQLite connection shared by all threads, serialised by `store.lock` (an RLock).
Reads are short; `transaction()` holds the lock for its whole body, so an import is all-or-nothing
and no other thread sees half of it.

Public API (stable; other modules may add tables of their own through `transaction()`/`query()`):

    Store(data_dir)                                   opens or creates the archive
    store.lock, store.db                              the RLock and the sqlite3 connection
    store.transaction() -> ctx manager yielding db    all-or-nothing; nests (inner ones join)
    store.query(sql, args=()) -> list[sqlite3.Row]    a read under the lock
    store.close()

    Projects:  create_project(id, *, name=None, secondary_id=None, description="", fields=None, user="admin")
               get_project(id_or_alias) / list_projects() / update_project(id, fields) / delete_project(id)
    Subjects:  create_subject(project, label, fields=None, *, user="admin")            -> Subject (XNAT_S00001)
               get_subject(id) / find_subject(project, id_or_label) / list_subjects(project=None)
               update_subject(id, fields=None, *, label=None) / delete_subject(id)
    Experiments (sessions and assessors share the XNAT_E counter):
               create_experiment(project, subject_id, label, xsi_type="xnat:mrSessionData", fields=None,
                                 *, session_id=None, user="admin")                    -> Experiment
               create_assessor(session_id, label, xsi_type="xnat:qcAssessmentData", fields=None)
               get_experiment(id) / find_experiment(project, id_or_label, subject_id=None)
               list_experiments(project=None, subject_id=None, *, session_id=None, assessors=False,
                                xsi_type=None)
               update_experiment(id, fields=None, *, label=None) / delete_experiment(id)
    Scans:     create_scan(experiment_id, scan_id, xsi_type="xnat:mrScanData", fields=None) -> Scan
               get_scan(experiment_id, scan_id) / list_scans(experiment_id)
               update_scan(experiment_id, scan_id, fields) / delete_scan(experiment_id, scan_id)
    Reconstructions: create_reconstruction(experiment_id, recon_id, xsi_type=..., fields=None)
               get_reconstruction / list_reconstructions / update_reconstruction / delete_reconstruction
    Resources (owner = a Project, Subject, Experiment, Scan or Reconstruction object):
               create_resource(owner, label, *, format="", content="", tags="", description="") -> Resource
               get_resource(id) / find_resource(owner, id_or_label) / list_resources(owner)
               delete_resource(id)
    Files:     add_file(resource_id, relative_path, source: bytes | BinaryIO | Path, *, overwrite=False,
                        format="", content="", tags="", move=False, md5=None) -> FileRow
               get_file(resource_id, path) / list_files(resource_ids, prefix=None)
               delete_file(resource_id, path) -> int (removes a folder prefix too)
               file_stats(resource_id) -> (count, size)

Errors: `NotFound`, `Conflict`, `Invalid` (all subclasses of `StoreError`, each with `.status`).
Field dicts are keyed by XNAT field names ("date", "time", "UID", "modality", "type",
"series_description", "quality", "frames", "scanner", "gender", ...); custom fields
(`fields/field[name=x]/field`) live under the key "fields" as a dict.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import shutil
import sqlite3
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO, Iterator, Union

log = logging.getLogger(__name__)

SITE_ID = "XNAT"
CHUNK = 1024 * 1024


class StoreError(Exception):
    status = 400


class NotFound(StoreError):
    status = 404


class Conflict(StoreError):
    status = 409


class Invalid(StoreError):
    status = 400


def now_string() -> str:
    """XNAT's java.sql.Timestamp.toString() shape: 2023-09-27 17:31:21.352."""
    t = time.time()
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(t)) + ".%03d" % int((t % 1) * 1000)


def check_relative_path(path: str) -> str:
    """Refuse anything that could escape a resource folder; returns the normalised path."""
    if not path or "\0" in path or path.startswith("/") or "\\" in path:
        raise Invalid(f"Invalid file path: {path!r}")
    parts = path.split("/")
    if parts and parts[-1] == "":
        parts = parts[:-1]
    if any(p in ("", ".", "..") for p in parts) or not parts:
        raise Invalid(f"Invalid file path: {path!r}")
    return "/".join(parts)


@dataclass
class Project:
    id: str
    name: str
    secondary_id: str
    description: str
    fields: dict
    insert_date: str
    insert_user: str
    kind = "project"


@dataclass
class Subject:
    id: str
    project: str
    label: str
    fields: dict
    insert_date: str
    insert_user: str
    kind = "subject"


@dataclass
class Experiment:
    id: str
    project: str
    subject_id: str
    label: str
    xsi_type: str
    fields: dict
    insert_date: str
    insert_user: str
    session_id: str | None = None  # set for image assessors: the assessed session
    kind = "experiment"


@dataclass
class Scan:
    pk: int
    experiment_id: str
    id: str
    xsi_type: str
    fields: dict
    insert_date: str
    kind = "scan"

    @property
    def type(self) -> str:
        return str(self.fields.get("type", ""))


@dataclass
class Reconstruction:
    pk: int
    experiment_id: str
    id: str
    xsi_type: str
    fields: dict
    insert_date: str
    kind = "reconstruction"


@dataclass
class Resource:
    id: int
    owner_kind: str
    owner_ref: str
    experiment_id: str | None
    label: str
    format: str
    content: str
    tags: str
    description: str
    xsi_type: str = "xnat:resourceCatalog"
    kind = "resource"


@dataclass
class FileRow:
    id: int
    resource_id: int
    path: str
    size: int
    md5: str
    mtime: float
    format: str
    content: str
    tags: str
    disk_path: Path = field(repr=False, default=Path())

    @property
    def name(self) -> str:
        return self.path.rsplit("/", 1)[-1]


Owner = Union[Project, Subject, Experiment, Scan, Reconstruction]

SCHEMA = """
CREATE TABLE IF NOT EXISTS counters (name TEXT PRIMARY KEY, value INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS projects (id TEXT PRIMARY KEY, name TEXT, secondary_id TEXT, description TEXT,
    fields TEXT, insert_date TEXT, insert_user TEXT);
CREATE TABLE IF NOT EXISTS subjects (id TEXT PRIMARY KEY, project TEXT NOT NULL, label TEXT NOT NULL,
    fields TEXT, insert_date TEXT, insert_user TEXT, UNIQUE(project, label));
CREATE TABLE IF NOT EXISTS experiments (id TEXT PRIMARY KEY, project TEXT NOT NULL, subject_id TEXT NOT NULL,
    label TEXT NOT NULL, xsi_type TEXT NOT NULL, fields TEXT, insert_date TEXT, insert_user TEXT,
    session_id TEXT, UNIQUE(project, label));
CREATE INDEX IF NOT EXISTS experiments_subject ON experiments(subject_id);
CREATE INDEX IF NOT EXISTS experiments_session ON experiments(session_id);
CREATE TABLE IF NOT EXISTS scans (pk INTEGER PRIMARY KEY AUTOINCREMENT, experiment_id TEXT NOT NULL,
    id TEXT NOT NULL, xsi_type TEXT NOT NULL, fields TEXT, insert_date TEXT, UNIQUE(experiment_id, id));
CREATE TABLE IF NOT EXISTS reconstructions (pk INTEGER PRIMARY KEY AUTOINCREMENT, experiment_id TEXT NOT NULL,
    id TEXT NOT NULL, xsi_type TEXT NOT NULL, fields TEXT, insert_date TEXT, UNIQUE(experiment_id, id));
CREATE TABLE IF NOT EXISTS resources (id INTEGER PRIMARY KEY AUTOINCREMENT, owner_kind TEXT NOT NULL,
    owner_ref TEXT NOT NULL, experiment_id TEXT, label TEXT NOT NULL, format TEXT, content TEXT, tags TEXT,
    description TEXT, UNIQUE(owner_kind, owner_ref, label));
CREATE INDEX IF NOT EXISTS resources_experiment ON resources(experiment_id, owner_kind);
CREATE TABLE IF NOT EXISTS files (id INTEGER PRIMARY KEY AUTOINCREMENT, resource_id INTEGER NOT NULL,
    path TEXT NOT NULL, size INTEGER NOT NULL, md5 TEXT NOT NULL, mtime REAL NOT NULL, format TEXT,
    content TEXT, tags TEXT, UNIQUE(resource_id, path));
"""


class Store:
    """SQLite + files; see the module docstring for the API."""

    def __init__(self, data_dir: Path | str) -> None:
        self.data_dir = Path(data_dir).resolve()
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.archive_dir = self.data_dir / "archive" / "resources"
        self.archive_dir.mkdir(parents=True, exist_ok=True)
        self.tmp_dir = self.data_dir / "tmp"
        self.tmp_dir.mkdir(parents=True, exist_ok=True)
        self.lock = threading.RLock()
        self.db = sqlite3.connect(
            str(self.data_dir / "xnat.db"), check_same_thread=False, isolation_level=None
        )
        self.db.row_factory = sqlite3.Row
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute("PRAGMA synchronous=NORMAL")
        self.db.executescript(SCHEMA)
        self._depth = 0
        self._pending_unlinks: list[Path] = []
        self._new_files: list[Path] = []

    # ---- plumbing -------------------------------------------------------------------------------
    def close(self) -> None:
        with self.lock:
            self.db.close()

    @contextlib.contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """All-or-nothing: rows roll back, files written inside are removed on failure."""
        with self.lock:
            if self._depth:
                self._depth += 1
                try:
                    yield self.db
                finally:
                    self._depth -= 1
                return
            self._depth = 1
            self._pending_unlinks, self._new_files = [], []
            self.db.execute("BEGIN IMMEDIATE")
            try:
                yield self.db
            except BaseException:
                self.db.execute("ROLLBACK")
                for path in self._new_files:
                    path.unlink(missing_ok=True)
                raise
            else:
                self.db.execute("COMMIT")
                for path in self._pending_unlinks:
                    if path.is_dir():
                        shutil.rmtree(path, ignore_errors=True)
                    else:
                        path.unlink(missing_ok=True)
            finally:
                self._depth = 0
                self._pending_unlinks, self._new_files = [], []

    def query(self, sql: str, args: tuple | list = ()) -> list[sqlite3.Row]:
        with self.lock:
            return self.db.execute(sql, args).fetchall()

    def _one(self, sql: str, args: tuple | list = ()) -> sqlite3.Row | None:
        with self.lock:
            return self.db.execute(sql, args).fetchone()

    def _next_id(self, name: str) -> int:
        with self.transaction() as db:
            row = db.execute("SELECT value FROM counters WHERE name=?", (name,)).fetchone()
            value = (row[0] if row else 0) + 1
            db.execute("INSERT OR REPLACE INTO counters(name, value) VALUES (?, ?)", (name, value))
            return value

    # ---- projects -------------------------------------------------------------------------------
    def _project(self, row: sqlite3.Row) -> Project:
        return Project(row["id"], row["name"] or "", row["secondary_id"] or "", row["description"] or "",
                       json.loads(row["fields"] or "{}"), row["insert_date"], row["insert_user"])

    def create_project(self, id: str, *, name: str | None = None, secondary_id: str | None = None,
                       description: str = "", fields: dict | None = None, user: str = "admin") -> Project:
        with self.transaction() as db:
            if self.get_project(id):
                raise Conflict("Project already exists.")
            db.execute("INSERT INTO projects VALUES (?,?,?,?,?,?,?)",
                       (id, name or id, secondary_id or id, description, json.dumps(fields or {}),
                        now_string(), user))
        return self.get_project(id)  # type: ignore[return-value]

    def get_project(self, id_or_alias: str) -> Project | None:
        row = self._one("SELECT * FROM projects WHERE id=?", (id_or_alias,))
        return self._project(row) if row else None

    def list_projects(self) -> list[Project]:
        return [self._project(r) for r in self.query("SELECT * FROM projects ORDER BY id")]

    def update_project(self, id: str, fields: dict) -> Project:
        with self.transaction() as db:
            project = self.get_project(id)
            if project is None:
                raise NotFound("Unable to find the specified experiment.")
            for key in ("name", "secondary_ID", "secondary_id", "description"):
                if key in fields:
                    project_key = "secondary_id" if key.lower() == "secondary_id" else key
                    setattr(project, project_key, fields.pop(key))
            merged = _merge(project.fields, fields)
            db.execute("UPDATE projects SET name=?, secondary_id=?, description=?, fields=? WHERE id=?",
                       (project.name, project.secondary_id, project.description, json.dumps(merged), id))
        return self.get_project(id)  # type: ignore[return-value]

    def delete_project(self, id: str) -> None:
        with self.transaction() as db:
            if self.get_project(id) is None:
                raise NotFound("Unable to find the specified experiment.")
            for subject in self.list_subjects(id):
                self.delete_subject(subject.id)
            self._delete_resources_of("project", id)
            db.execute("DELETE FROM projects WHERE id=?", (id,))

    # ---- subjects -------------------------------------------------------------------------------
    def _subject(self, row: sqlite3.Row) -> Subject:
        return Subject(row["id"], row["project"], row["label"], json.loads(row["fields"] or "{}"),
                       row["insert_date"], row["insert_user"])

    def create_subject(self, project: str, label: str, fields: dict | None = None, *,
                       user: str = "admin") -> Subject:
        with self.transaction() as db:
            if self.get_project(project) is None:
                raise NotFound(f"Unable to identify project {project}")
            if self._one("SELECT 1 FROM subjects WHERE project=? AND label=?", (project, label)):
                raise Conflict("Specified label is already in use.")
            sid = f"{SITE_ID}_S{self._next_id('subject'):05d}"
            db.execute("INSERT INTO subjects VALUES (?,?,?,?,?,?)",
                       (sid, project, label, json.dumps(fields or {}), now_string(), user))
        return self.get_subject(sid)  # type: ignore[return-value]

    def get_subject(self, id: str) -> Subject | None:
        row = self._one("SELECT * FROM subjects WHERE id=?", (id,))
        return self._subject(row) if row else None

    def find_subject(self, project: str, id_or_label: str) -> Subject | None:
        row = self._one("SELECT * FROM subjects WHERE project=? AND (id=? OR label=?) "
                        "ORDER BY id=? DESC LIMIT 1", (project, id_or_label, id_or_label, id_or_label))
        return self._subject(row) if row else None

    def list_subjects(self, project: str | None = None) -> list[Subject]:
        if project is None:
            rows = self.query("SELECT * FROM subjects ORDER BY id")
        else:
            rows = self.query("SELECT * FROM subjects WHERE project=? ORDER BY id", (project,))
        return [self._subject(r) for r in rows]

    def update_subject(self, id: str, fields: dict | None = None, *, label: str | None = None) -> Subject:
        with self.transaction() as db:
            subject = self.get_subject(id)
            if subject is None:
                raise NotFound("Unable to find the specified subject.")
            if label is not None and label != subject.label:
                if self._one("SELECT 1 FROM subjects WHERE project=? AND label=?", (subject.project, label)):
                    raise Conflict("Specified label is already in use.")
                db.execute("UPDATE subjects SET label=? WHERE id=?", (label, id))
            if fields:
                db.execute("UPDATE subjects SET fields=? WHERE id=?",
                           (json.dumps(_merge(subject.fields, fields)), id))
        return self.get_subject(id)  # type: ignore[return-value]

    def delete_subject(self, id: str) -> None:
        with self.transaction() as db:
            if self.get_subject(id) is None:
                raise NotFound("Unable to find the specified subject.")
            for experiment in self.list_experiments(subject_id=id, assessors=True):
                if experiment.session_id is None:
                    self.delete_experiment(experiment.id)
            for experiment in self.list_experiments(subject_id=id, assessors=True):
                self.delete_experiment(experiment.id)
            self._delete_resources_of("subject", id)
            db.execute("DELETE FROM subjects WHERE id=?", (id,))

    # ---- experiments and assessors ---------------------------------------------------------------
    def _experiment(self, row: sqlite3.Row) -> Experiment:
        return Experiment(row["id"], row["project"], row["subject_id"], row["label"], row["xsi_type"],
                          json.loads(row["fields"] or "{}"), row["insert_date"], row["insert_user"],
                          row["session_id"])

    def create_experiment(self, project: str, subject_id: str, label: str,
                          xsi_type: str = "xnat:mrSessionData", fields: dict | None = None, *,
                          session_id: str | None = None, user: str = "admin") -> Experiment:
        with self.transaction() as db:
            if self.get_project(project) is None:
                raise NotFound(f"Unable to identify project {project}")
            if self.get_subject(subject_id) is None:
                raise NotFound(f"Unable to identify subject {subject_id}")
            if self._one("SELECT 1 FROM experiments WHERE project=? AND label=?", (project, label)):
                raise Conflict("Specified label is already in use.")
            eid = f"{SITE_ID}_E{self._next_id('experiment'):05d}"
            db.execute("INSERT INTO experiments VALUES (?,?,?,?,?,?,?,?,?)",
                       (eid, project, subject_id, label, xsi_type, json.dumps(fields or {}),
                        now_string(), user, session_id))
        return self.get_experiment(eid)  # type: ignore[return-value]

    def create_assessor(self, session_id: str, label: str, xsi_type: str = "xnat:qcAssessmentData",
                        fields: dict | None = None, *, user: str = "admin") -> Experiment:
        session = self.get_experiment(session_id)
        if session is None:
            raise NotFound("Specified image session doesn't exist.")
        return self.create_experiment(session.project, session.subject_id, label, xsi_type, fields,
                                      session_id=session_id, user=user)

    def get_experiment(self, id: str) -> Experiment | None:
        row = self._one("SELECT * FROM experiments WHERE id=?", (id,))
        return self._experiment(row) if row else None

    def find_experiment(self, project: str, id_or_label: str,
                        subject_id: str | None = None) -> Experiment | None:
        sql = "SELECT * FROM experiments WHERE project=? AND (id=? OR label=?)"
        args: list = [project, id_or_label, id_or_label]
        if subject_id is not None:
            sql += " AND subject_id=?"
            args.append(subject_id)
        row = self._one(sql + " ORDER BY id=? DESC LIMIT 1", args + [id_or_label])
        return self._experiment(row) if row else None

    def list_experiments(self, project: str | None = None, subject_id: str | None = None, *,
                         session_id: str | None = None, assessors: bool = False,
                         xsi_type: str | None = None) -> list[Experiment]:
        clauses, args = [], []
        for column, value in (("project", project), ("subject_id", subject_id),
                              ("session_id", session_id), ("xsi_type", xsi_type)):
            if value is not None:
                clauses.append(f"{column}=?")
                args.append(value)
        if session_id is None and not assessors:
            clauses.append("session_id IS NULL")
        where = (" WHERE " + " AND ".join(clauses)) if clauses else ""
        return [self._experiment(r) for r in self.query(f"SELECT * FROM experiments{where} ORDER BY id", args)]

    def update_experiment(self, id: str, fields: dict | None = None, *, label: str | None = None) -> Experiment:
        with self.transaction() as db:
            experiment = self.get_experiment(id)
            if experiment is None:
                raise NotFound("Unable to find the specified experiment.")
            if label is not None and label != experiment.label:
                if self._one("SELECT 1 FROM experiments WHERE project=? AND label=?",
                             (experiment.project, label)):
                    raise Conflict("Specified label is already in use.")
                db.execute("UPDATE experiments SET label=? WHERE id=?", (label, id))
            if fields:
                fields = dict(fields)
                subject_id = fields.pop("subject_ID", None)
                if subject_id and subject_id != experiment.subject_id:
                    db.execute("UPDATE experiments SET subject_id=? WHERE id=?", (subject_id, id))
                db.execute("UPDATE experiments SET fields=? WHERE id=?",
                           (json.dumps(_merge(experiment.fields, fields)), id))
        return self.get_experiment(id)  # type: ignore[return-value]

    def delete_experiment(self, id: str) -> None:
        with self.transaction() as db:
            if self.get_experiment(id) is None:
                raise NotFound("Unable to find the specified experiment.")
            for assessor in self.list_experiments(session_id=id):
                self.delete_experiment(assessor.id)
            for scan in self.list_scans(id):
                self.delete_scan(id, scan.id)
            for recon in self.list_reconstructions(id):
                self.delete_reconstruction(id, recon.id)
            self._delete_resources_of("experiment", id)
            db.execute("DELETE FROM experiments WHERE id=?", (id,))

    # ---- scans and reconstructions ----------------------------------------------------------------
    def _scan(self, row: sqlite3.Row, cls: type = Scan):  # type: ignore[no-untyped-def]
        return cls(row["pk"], row["experiment_id"], row["id"], row["xsi_type"],
                   json.loads(row["fields"] or "{}"), row["insert_date"])

    def create_scan(self, experiment_id: str, scan_id: str, xsi_type: str = "xnat:mrScanData",
                    fields: dict | None = None) -> Scan:
        return self._create_child("scans", Scan, experiment_id, scan_id, xsi_type, fields)

    def get_scan(self, experiment_id: str, scan_id: str) -> Scan | None:
        row = self._one("SELECT * FROM scans WHERE experiment_id=? AND id=?", (experiment_id, scan_id))
        return self._scan(row) if row else None

    def get_scan_by_pk(self, pk: int) -> Scan | None:
        row = self._one("SELECT * FROM scans WHERE pk=?", (pk,))
        return self._scan(row) if row else None

    def list_scans(self, experiment_id: str) -> list[Scan]:
        rows = self.query("SELECT * FROM scans WHERE experiment_id=? ORDER BY pk", (experiment_id,))
        return sorted((self._scan(r) for r in rows), key=lambda s: _natural(s.id))

    def update_scan(self, experiment_id: str, scan_id: str, fields: dict,
                    xsi_type: str | None = None) -> Scan:
        with self.transaction() as db:
            scan = self.get_scan(experiment_id, scan_id)
            if scan is None:
                raise NotFound("Unable to find the specified scan.")
            db.execute("UPDATE scans SET fields=?, xsi_type=? WHERE pk=?",
                       (json.dumps(_merge(scan.fields, fields)), xsi_type or scan.xsi_type, scan.pk))
        return self.get_scan(experiment_id, scan_id)  # type: ignore[return-value]

    def delete_scan(self, experiment_id: str, scan_id: str) -> None:
        with self.transaction() as db:
            scan = self.get_scan(experiment_id, scan_id)
            if scan is None:
                raise NotFound("Unable to find the specified scan.")
            self._delete_resources_of("scan", str(scan.pk))
            db.execute("DELETE FROM scans WHERE pk=?", (scan.pk,))

    def create_reconstruction(self, experiment_id: str, recon_id: str,
                              xsi_type: str = "xnat:reconstructedImageData",
                              fields: dict | None = None) -> Reconstruction:
        return self._create_child("reconstructions", Reconstruction, experiment_id, recon_id, xsi_type, fields)

    def get_reconstruction(self, experiment_id: str, recon_id: str) -> Reconstruction | None:
        row = self._one("SELECT * FROM reconstructions WHERE experiment_id=? AND id=?", (experiment_id, recon_id))
        return self._scan(row, Reconstruction) if row else None

    def list_reconstructions(self, experiment_id: str) -> list[Reconstruction]:
        rows = self.query("SELECT * FROM reconstructions WHERE experiment_id=? ORDER BY pk", (experiment_id,))
        return [self._scan(r, Reconstruction) for r in rows]

    def update_reconstruction(self, experiment_id: str, recon_id: str, fields: dict) -> Reconstruction:
        with self.transaction() as db:
            recon = self.get_reconstruction(experiment_id, recon_id)
            if recon is None:
                raise NotFound("Unable to find the specified reconstruction.")
            db.execute("UPDATE reconstructions SET fields=? WHERE pk=?",
                       (json.dumps(_merge(recon.fields, fields)), recon.pk))
        return self.get_reconstruction(experiment_id, recon_id)  # type: ignore[return-value]

    def delete_reconstruction(self, experiment_id: str, recon_id: str) -> None:
        with self.transaction() as db:
            recon = self.get_reconstruction(experiment_id, recon_id)
            if recon is None:
                raise NotFound("Unable to find the specified reconstruction.")
            self._delete_resources_of("reconstruction", str(recon.pk))
            db.execute("DELETE FROM reconstructions WHERE pk=?", (recon.pk,))

    def _create_child(self, table: str, cls: type, experiment_id: str, child_id: str, xsi_type: str,
                      fields: dict | None):  # type: ignore[no-untyped-def]
        with self.transaction() as db:
            if self.get_experiment(experiment_id) is None:
                raise NotFound("Specified image session doesn't exist.")
            if self._one(f"SELECT 1 FROM {table} WHERE experiment_id=? AND id=?", (experiment_id, child_id)):
                raise Conflict(f"Specified {table[:-1]} already exists.")
            cur = db.execute(f"INSERT INTO {table}(experiment_id, id, xsi_type, fields, insert_date) "
                             "VALUES (?,?,?,?,?)",
                             (experiment_id, child_id, xsi_type, json.dumps(fields or {}), now_string()))
            row = db.execute(f"SELECT * FROM {table} WHERE pk=?", (cur.lastrowid,)).fetchone()
        return self._scan(row, cls)

    # ---- resources ------------------------------------------------------------------------------
    @staticmethod
    def owner_key(owner: Owner) -> tuple[str, str, str | None]:
        """(owner_kind, owner_ref, experiment_id) of a resource owner."""
        if isinstance(owner, Project):
            return "project", owner.id, None
        if isinstance(owner, Subject):
            return "subject", owner.id, None
        if isinstance(owner, Experiment):
            return "experiment", owner.id, owner.id
        if isinstance(owner, Scan):
            return "scan", str(owner.pk), owner.experiment_id
        if isinstance(owner, Reconstruction):
            return "reconstruction", str(owner.pk), owner.experiment_id
        raise TypeError(f"not a resource owner: {owner!r}")

    def _resource(self, row: sqlite3.Row) -> Resource:
        return Resource(row["id"], row["owner_kind"], row["owner_ref"], row["experiment_id"], row["label"],
                        row["format"] or "", row["content"] or "", row["tags"] or "", row["description"] or "")

    def create_resource(self, owner: Owner, label: str, *, format: str = "", content: str = "",
                        tags: str = "", description: str = "") -> Resource:
        kind, ref, experiment_id = self.owner_key(owner)
        with self.transaction() as db:
            if self._one("SELECT 1 FROM resources WHERE owner_kind=? AND owner_ref=? AND label=?",
                         (kind, ref, label)):
                raise Conflict("Specified resource already exists.")
            cur = db.execute("INSERT INTO resources(owner_kind, owner_ref, experiment_id, label, format, "
                             "content, tags, description) VALUES (?,?,?,?,?,?,?,?)",
                             (kind, ref, experiment_id, label, format, content, tags, description))
            rid = cur.lastrowid
        return self.get_resource(rid)  # type: ignore[arg-type,return-value]

    def get_resource(self, id: int) -> Resource | None:
        row = self._one("SELECT * FROM resources WHERE id=?", (id,))
        return self._resource(row) if row else None

    def find_resource(self, owner: Owner, id_or_label: str) -> Resource | None:
        kind, ref, _ = self.owner_key(owner)
        row = self._one("SELECT * FROM resources WHERE owner_kind=? AND owner_ref=? AND label=?",
                        (kind, ref, id_or_label))
        if row is None and id_or_label.isdigit():
            row = self._one("SELECT * FROM resources WHERE owner_kind=? AND owner_ref=? AND id=?",
                            (kind, ref, int(id_or_label)))
        return self._resource(row) if row else None

    def list_resources(self, owner: Owner) -> list[Resource]:
        kind, ref, _ = self.owner_key(owner)
        rows = self.query("SELECT * FROM resources WHERE owner_kind=? AND owner_ref=? ORDER BY id", (kind, ref))
        return [self._resource(r) for r in rows]

    def list_resources_of_experiment(self, experiment_id: str, kinds: tuple[str, ...]) -> list[Resource]:
        """Resources of an experiment and/or its scans and reconstructions, in one query."""
        marks = ",".join("?" * len(kinds))
        rows = self.query(f"SELECT * FROM resources WHERE experiment_id=? AND owner_kind IN ({marks}) "
                          "ORDER BY id", (experiment_id, *kinds))
        return [self._resource(r) for r in rows]

    def delete_resource(self, id: int) -> None:
        with self.transaction() as db:
            db.execute("DELETE FROM files WHERE resource_id=?", (id,))
            db.execute("DELETE FROM resources WHERE id=?", (id,))
            self._pending_unlinks.append(self.archive_dir / str(id))

    def _delete_resources_of(self, kind: str, ref: str) -> None:
        for row in self.query("SELECT id FROM resources WHERE owner_kind=? AND owner_ref=?", (kind, ref)):
            self.delete_resource(row["id"])

    # ---- files ----------------------------------------------------------------------------------
    def disk_path(self, resource_id: int, relative_path: str) -> Path:
        path = (self.archive_dir / str(resource_id) / check_relative_path(relative_path))
        root = self.archive_dir / str(resource_id)
        if not path.resolve().is_relative_to(root.resolve()):
            raise Invalid(f"Invalid file path: {relative_path!r}")
        return path

    def _file(self, row: sqlite3.Row) -> FileRow:
        return FileRow(row["id"], row["resource_id"], row["path"], row["size"], row["md5"], row["mtime"],
                       row["format"] or "", row["content"] or "", row["tags"] or "",
                       self.archive_dir / str(row["resource_id"]) / row["path"])

    def add_file(self, resource_id: int, relative_path: str, source: bytes | BinaryIO | Path, *,
                 overwrite: bool = False, format: str = "", content: str = "", tags: str = "",
                 move: bool = False, md5: str | None = None) -> FileRow:
        """Store bytes at relative_path in a resource; `move=True` renames a spooled Path into place."""
        relative_path = check_relative_path(relative_path)
        target = self.disk_path(resource_id, relative_path)
        with self.transaction() as db:
            if self.get_resource(resource_id) is None:
                raise NotFound("Unable to find the specified catalog.")
            existing = self.get_file(resource_id, relative_path)
            if existing and not overwrite:
                raise Conflict(f"File already exists: {relative_path}")
            if self._one("SELECT 1 FROM files WHERE resource_id=? AND path LIKE ? ESCAPE '\\'",
                         (resource_id, _like_prefix(relative_path + "/"))):
                raise Conflict(f"A folder exists at {relative_path}")
            target.parent.mkdir(parents=True, exist_ok=True)
            if target.parent.exists() and not target.parent.is_dir():
                raise Conflict(f"A file exists where a folder is needed: {relative_path}")
            size, digest = self._write(target, source, move=move, md5=md5)
            if existing is None:
                self._new_files.append(target)
            mtime = target.stat().st_mtime
            db.execute("INSERT OR REPLACE INTO files(resource_id, path, size, md5, mtime, format, content, tags) "
                       "VALUES (?,?,?,?,?,?,?,?)",
                       (resource_id, relative_path, size, digest, mtime, format, content, tags))
        return self.get_file(resource_id, relative_path)  # type: ignore[return-value]

    def _write(self, target: Path, source: bytes | BinaryIO | Path, *, move: bool,
               md5: str | None) -> tuple[int, str]:
        if isinstance(source, Path) and move:
            if md5 is None:
                md5 = _md5_of(source)
            os.replace(source, target)
            return target.stat().st_size, md5
        tmp = target.with_name(f".{target.name}.part")
        digest = hashlib.md5()
        size = 0
        with open(tmp, "wb") as out:
            if isinstance(source, (bytes, bytearray, memoryview)):
                out.write(source)
                digest.update(source)
                size = len(source)
            else:
                stream = open(source, "rb") if isinstance(source, Path) else source
                try:
                    while chunk := stream.read(CHUNK):
                        out.write(chunk)
                        digest.update(chunk)
                        size += len(chunk)
                finally:
                    if isinstance(source, Path):
                        stream.close()
        os.replace(tmp, target)
        return size, digest.hexdigest()

    def get_file(self, resource_id: int, path: str) -> FileRow | None:
        row = self._one("SELECT * FROM files WHERE resource_id=? AND path=?", (resource_id, path))
        return self._file(row) if row else None

    def list_files(self, resource_ids: list[int] | int, prefix: str | None = None) -> list[FileRow]:
        ids = [resource_ids] if isinstance(resource_ids, int) else list(resource_ids)
        if not ids:
            return []
        marks = ",".join("?" * len(ids))
        sql, args = f"SELECT * FROM files WHERE resource_id IN ({marks})", list(ids)
        if prefix:
            sql += " AND path LIKE ? ESCAPE '\\'"
            args.append(_like_prefix(prefix))
        return [self._file(r) for r in self.query(sql + " ORDER BY resource_id, path", args)]

    def delete_file(self, resource_id: int, path: str) -> int:
        """Remove a file or everything under a folder path; returns how many entries went."""
        path = path.rstrip("/")
        with self.transaction() as db:
            rows = [r for r in self.list_files(resource_id, path + "/")]
            one = self.get_file(resource_id, path)
            if one:
                rows.append(one)
            for row in rows:
                db.execute("DELETE FROM files WHERE id=?", (row.id,))
                self._pending_unlinks.append(row.disk_path)
        return len(rows)

    def file_stats(self, resource_id: int) -> tuple[int, int]:
        row = self._one("SELECT COUNT(*), COALESCE(SUM(size), 0) FROM files WHERE resource_id=?", (resource_id,))
        return int(row[0]), int(row[1])  # type: ignore[index]

    def file_stats_many(self, resource_ids: list[int]) -> dict[int, tuple[int, int]]:
        if not resource_ids:
            return {}
        marks = ",".join("?" * len(resource_ids))
        rows = self.query(f"SELECT resource_id, COUNT(*), SUM(size) FROM files WHERE resource_id IN ({marks}) "
                          "GROUP BY resource_id", resource_ids)
        return {r[0]: (int(r[1]), int(r[2] or 0)) for r in rows}

    def is_empty(self) -> bool:
        return self._one("SELECT 1 FROM projects LIMIT 1") is None


def _merge(old: dict, new: dict) -> dict:
    """Field update: "NULL" clears a field (xnatpy sends it), nested "fields" dicts merge."""
    merged = dict(old)
    for key, value in new.items():
        if key == "fields" and isinstance(value, dict):
            custom = dict(merged.get("fields") or {})
            custom.update(value)
            merged["fields"] = {k: v for k, v in custom.items() if v != "NULL"}
        elif value == "NULL" or value is None:
            merged.pop(key, None)
        else:
            merged[key] = value
    return merged


def _like_prefix(prefix: str) -> str:
    return prefix.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"


def _md5_of(path: Path) -> str:
    digest = hashlib.md5()
    with open(path, "rb") as f:
        while chunk := f.read(CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def _natural(text: str) -> tuple:
    return (0, int(text), "") if text.isdigit() else (1, 0, text)
