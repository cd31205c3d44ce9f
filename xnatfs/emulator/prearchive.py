"""The emulator's prearchive: XNAT's holding area for uploaded sessions before they are archived.

Owns: the `prearchive` table (in the Store's SQLite database) and the session folders on disk, laid
out as XNAT lays them out (spec §15, §16):

    <data_dir>/prearchive/<project or "Unassigned">/<timestamp>/<folder>/SCANS/<scan ID>/DICOM/<file>

(session-level resources would live in `<folder>/RESOURCES/<label>/`). Timestamps are
`yyyyMMdd_HHmmssSSS` and unique across the prearchive. Each row keeps XNAT's prearchive columns plus
the session "document" (xsi type, session fields, scans with their fields) that XNAT keeps as the
session XML next to the folder; `read_document` rebuilds it from the DICOM files on disk ("rebuild").

Rows are XNAT's `DatabaseSession` columns (`COLUMNS`), every value a string; `lastmod`, `uploaded` and
`scan_date` print as java.sql.Timestamp does (`2022-01-18 16:41:25.0`). Statuses are XNAT's
`PrearcStatus` names; `BUSY` ones lock a session against other operations.

Thread safety: rows change only under the Store's lock (`store.transaction()`); a folder is renamed or
removed only by the operation that holds the session's busy status.
"""

from __future__ import annotations

import json
import os
import shutil
import threading
import time
import weakref
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Iterable

from xnatfs.emulator.dicomheaders import Series, Study, read_instance
from xnatfs.emulator.store import Conflict, Invalid, NotFound, Store, natural_key

UNASSIGNED = "Unassigned"
STATUSES = ("READY", "RECEIVING", "BUILDING", "ARCHIVING", "MOVING", "DELETING", "ERROR", "CONFLICT",
            "SEPARATING", "RECEIVING_INTERRUPT", "QUEUED_ARCHIVING", "QUEUED_BUILDING", "QUEUED_DELETING",
            "QUEUED_MOVING", "QUEUED_SEPARATING")
#: Statuses of a session that an operation holds; XNAT refuses a second operation on it.
BUSY = frozenset({"RECEIVING", "BUILDING", "ARCHIVING", "MOVING", "DELETING", "SEPARATING", "QUEUED_ARCHIVING",
                  "QUEUED_BUILDING", "QUEUED_DELETING", "QUEUED_MOVING", "QUEUED_SEPARATING"})
#: XNAT's prearchive table columns, in order (DatabaseSession enum, spec §16.1).
COLUMNS = ("project", "timestamp", "lastmod", "uploaded", "scan_date", "scan_time", "subject", "folderName",
           "name", "tag", "status", "url", "autoarchive", "prevent_anon", "prevent_auto_commit", "SOURCE",
           "VISIT", "PROTOCOL", "TIMEZONE")
HEADER_BYTES = 1024 * 1024  # bytes of a stored file read to parse its DICOM header

SCHEMA = """
CREATE TABLE IF NOT EXISTS prearchive (project TEXT NOT NULL, timestamp TEXT NOT NULL, folder TEXT NOT NULL,
    name TEXT NOT NULL, subject TEXT NOT NULL, tag TEXT NOT NULL, status TEXT NOT NULL, uploaded TEXT NOT NULL,
    lastmod TEXT NOT NULL, scan_date TEXT NOT NULL, scan_time TEXT NOT NULL, autoarchive TEXT NOT NULL,
    prevent_anon TEXT NOT NULL, prevent_auto_commit TEXT NOT NULL, source TEXT NOT NULL, visit TEXT NOT NULL,
    protocol TEXT NOT NULL, timezone TEXT NOT NULL, document TEXT NOT NULL,
    PRIMARY KEY (project, timestamp, folder));
CREATE INDEX IF NOT EXISTS prearchive_study ON prearchive(project, tag, name);
CREATE UNIQUE INDEX IF NOT EXISTS prearchive_timestamp ON prearchive(timestamp, folder);
"""


def java_timestamp(epoch: float) -> str:
    """java.sql.Timestamp.toString() of a local time: `2022-01-18 16:41:25.0`, `… 16:41:25.352`."""
    millis = int(round((epoch % 1) * 1000)) % 1000
    fraction = f"{millis:03d}".rstrip("0") or "0"
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(int(epoch))) + "." + fraction


def scan_date(fields: dict[str, Any]) -> str:
    """The row's `scan_date`: the study date and time as a java Timestamp, or "" without a date."""
    date = str(fields.get("date") or "")
    if len(date) != 10:
        return ""
    clock = str(fields.get("time") or "00:00:00")[:8]
    return f"{date} {clock if len(clock) == 8 else '00:00:00'}.0"


@dataclass
class ScanDocument:
    id: str
    xsi_type: str
    fields: dict[str, str]


@dataclass
class SessionDocument:
    """What XNAT keeps in a prearchive session's XML: type, session fields and scans."""
    xsi_type: str = "xnat:mrSessionData"
    fields: dict[str, str] = field(default_factory=dict)
    scans: list[ScanDocument] = field(default_factory=list)

    @classmethod
    def of(cls, study: Study) -> SessionDocument:
        return cls(study.xsi_type, study.session_fields(),
                   [ScanDocument(s.scan_id, s.xsi_type, s.scan_fields()) for s in study.series])

    def to_json(self) -> str:
        return json.dumps({"xsi_type": self.xsi_type, "fields": self.fields,
                           "scans": [{"ID": s.id, "xsi_type": s.xsi_type, "fields": s.fields} for s in self.scans]})

    @classmethod
    def from_json(cls, text: str) -> SessionDocument:
        data = json.loads(text or "{}")
        return cls(data.get("xsi_type", "xnat:mrSessionData"), data.get("fields", {}),
                   [ScanDocument(s["ID"], s["xsi_type"], s.get("fields", {})) for s in data.get("scans", [])])

    def scan(self, scan_id: str) -> ScanDocument | None:
        return next((s for s in self.scans if s.id == scan_id), None)


@dataclass
class PrearcSession:
    """One prearchive row. `project` is a project ID or "Unassigned"; `folder` is XNAT's folderName."""
    project: str
    timestamp: str
    folder: str
    name: str
    subject: str = ""
    tag: str = ""
    status: str = "READY"
    uploaded: str = ""
    lastmod: str = ""
    scan_date: str = ""
    scan_time: str = ""
    autoarchive: str = ""
    prevent_anon: str = "false"
    prevent_auto_commit: str = "false"
    source: str = ""
    visit: str = ""
    protocol: str = ""
    timezone: str = ""
    document: SessionDocument = field(default_factory=SessionDocument)

    @property
    def key(self) -> tuple[str, str, str]:
        return self.project, self.timestamp, self.folder

    @property
    def url(self) -> str:
        """XNAT's `url` column: no `/data` prefix (xnatpy adds it)."""
        return f"/prearchive/projects/{self.project}/{self.timestamp}/{self.folder}"

    @property
    def uri(self) -> str:
        return "/data" + self.url

    def row(self) -> dict[str, str]:
        return {"project": self.project, "timestamp": self.timestamp, "lastmod": self.lastmod,
                "uploaded": self.uploaded, "scan_date": self.scan_date, "scan_time": self.scan_time,
                "subject": self.subject, "folderName": self.folder, "name": self.name, "tag": self.tag,
                "status": self.status, "url": self.url, "autoarchive": self.autoarchive,
                "prevent_anon": self.prevent_anon, "prevent_auto_commit": self.prevent_auto_commit,
                "SOURCE": self.source, "VISIT": self.visit, "PROTOCOL": self.protocol, "TIMEZONE": self.timezone}

    def describe(self, document: SessionDocument) -> None:
        """Take the scan date, time and study UID from a (re)built document."""
        self.document = document
        self.scan_date = scan_date(document.fields)
        self.scan_time = str(document.fields.get("time") or "")
        self.tag = str(document.fields.get("UID") or self.tag)


_DB_COLUMNS = ("project", "timestamp", "folder", "name", "subject", "tag", "status", "uploaded", "lastmod",
               "scan_date", "scan_time", "autoarchive", "prevent_anon", "prevent_auto_commit", "source",
               "visit", "protocol", "timezone")


def check_component(value: str, what: str) -> str:
    """A single path segment (project, timestamp, folder, scan, resource) that cannot escape a folder."""
    if not value or value in (".", "..") or any(c in value for c in "/\\\0") or value != value.strip():
        raise Invalid(f"Invalid prearchive {what}: {value!r}")
    return value


class Prearchive:
    """The prearchive of one Store: use `prearchive_of(store)` to get the shared instance."""

    def __init__(self, store: Store) -> None:
        self._store = weakref.ref(store)  # prearchive_of's cache must not keep its key alive
        self.root = store.data_dir / "prearchive"
        self.root.mkdir(parents=True, exist_ok=True)
        self._clock_lock = threading.Lock()
        self._last_ms = 0
        with store.transaction() as db:
            for statement in filter(str.strip, SCHEMA.split(";")):
                db.execute(statement)

    @property
    def store(self) -> Store:
        store = self._store()
        if store is None:
            raise RuntimeError("the Store of this prearchive was closed and collected")
        return store

    # ---- identity -----------------------------------------------------------------------------------
    def new_timestamp(self) -> str:
        """A fresh `yyyyMMdd_HHmmssSSS`, never handed out before by this prearchive."""
        with self._clock_lock:
            ms = max(int(time.time() * 1000), self._last_ms + 1)
            while True:
                stamp = time.strftime("%Y%m%d_%H%M%S", time.localtime(ms // 1000)) + f"{ms % 1000:03d}"
                taken = self.store.query("SELECT 1 FROM prearchive WHERE timestamp=? LIMIT 1", (stamp,))
                if not taken and not any((d / stamp).exists() for d in self.root.iterdir()):
                    self._last_ms = ms
                    return stamp
                ms += 1

    def folder_path(self, project: str, timestamp: str, folder: str) -> Path:
        path = (self.root / check_component(project, "project") / check_component(timestamp, "timestamp")
                / check_component(folder, "session"))
        if not path.resolve().is_relative_to(self.root.resolve()):
            raise Invalid(f"Invalid prearchive session: {project}/{timestamp}/{folder}")
        return path

    def path_of(self, session: PrearcSession) -> Path:
        return self.folder_path(*session.key)

    # ---- rows ---------------------------------------------------------------------------------------
    @staticmethod
    def _session(row: Any) -> PrearcSession:
        values = {name: row[name] for name in _DB_COLUMNS}
        return PrearcSession(**values, document=SessionDocument.from_json(row["document"]))

    def get(self, project: str, timestamp: str, folder: str) -> PrearcSession | None:
        rows = self.store.query("SELECT * FROM prearchive WHERE project=? AND timestamp=? AND folder=?",
                                (project, timestamp, folder))
        return self._session(rows[0]) if rows else None

    def require(self, project: str, timestamp: str, folder: str) -> PrearcSession:
        session = self.get(project, timestamp, folder)
        if session is None:
            raise NotFound("Unable to locate prearc resource.")
        return session

    def find_study(self, project: str, tag: str, name: str) -> PrearcSession | None:
        """The session XNAT adds more files of the same study to (same project, StudyInstanceUID, name)."""
        rows = self.store.query("SELECT * FROM prearchive WHERE project=? AND tag=? AND name=? "
                                "ORDER BY timestamp LIMIT 1", (project, tag, name))
        return self._session(rows[0]) if rows else None

    def list(self, projects: Iterable[str] | None = None, *, tag: str | None = None) -> list[PrearcSession]:
        sql, args = "SELECT * FROM prearchive", []
        clauses = []
        if projects is not None:
            wanted = list(projects)
            if not wanted:
                return []
            clauses.append(f"project IN ({','.join('?' * len(wanted))})")
            args += wanted
        if tag:
            clauses.append("tag=?")
            args.append(tag)
        if clauses:
            sql += " WHERE " + " AND ".join(clauses)
        return [self._session(r) for r in self.store.query(sql + " ORDER BY project, timestamp, folder", args)]

    def insert(self, session: PrearcSession) -> None:
        now = java_timestamp(time.time())
        session.uploaded = session.uploaded or now
        session.lastmod = session.lastmod or now
        values = [getattr(session, name) for name in _DB_COLUMNS] + [session.document.to_json()]
        with self.store.transaction() as db:
            if self.get(*session.key):
                raise Conflict(f"A prearchive session {session.url} already exists.")
            db.execute(f"INSERT INTO prearchive({','.join(_DB_COLUMNS)}, document) "
                       f"VALUES ({','.join('?' * (len(_DB_COLUMNS) + 1))})", values)

    def save(self, session: PrearcSession, *, key: tuple[str, str, str] | None = None) -> None:
        """Write a changed row back (`key`: where it was, if its project/timestamp/folder changed)."""
        session.lastmod = java_timestamp(time.time())
        assignments = ",".join(f"{name}=?" for name in _DB_COLUMNS) + ",document=?"
        values = [getattr(session, name) for name in _DB_COLUMNS] + [session.document.to_json()]
        with self.store.transaction() as db:
            cur = db.execute(f"UPDATE prearchive SET {assignments} WHERE project=? AND timestamp=? AND folder=?",
                             values + list(key or session.key))
            if cur.rowcount != 1:
                raise NotFound("Unable to locate prearc resource.")

    def claim(self, session: PrearcSession, status: str) -> bool:
        """Set a busy status unless another operation holds the session (XNAT's setStatus lock)."""
        with self.store.transaction() as db:
            current = self.get(*session.key)
            if current is None:
                raise NotFound("Unable to locate prearc resource.")
            if current.status in BUSY:
                return False
            db.execute("UPDATE prearchive SET status=?, lastmod=? WHERE project=? AND timestamp=? AND folder=?",
                       (status, java_timestamp(time.time()), *session.key))
        session.status = status
        return True

    def set_status(self, session: PrearcSession, status: str) -> None:
        if status not in STATUSES and status.lstrip("_") not in STATUSES:
            raise Invalid(f"Invalid prearchive status: {status}")
        with self.store.transaction() as db:
            cur = db.execute("UPDATE prearchive SET status=?, lastmod=? WHERE project=? AND timestamp=? "
                             "AND folder=?", (status, java_timestamp(time.time()), *session.key))
            if cur.rowcount != 1:
                raise NotFound("Unable to locate prearc resource.")
        session.status = status

    # ---- whole-session operations ---------------------------------------------------------------------
    def delete(self, session: PrearcSession) -> None:
        """Remove the row and the folder (and the timestamp folder once empty)."""
        path = self.path_of(session)
        with self.store.transaction() as db:
            db.execute("DELETE FROM prearchive WHERE project=? AND timestamp=? AND folder=?", session.key)
        shutil.rmtree(path, ignore_errors=True)
        _remove_if_empty(path.parent)

    def move(self, session: PrearcSession, new_project: str) -> PrearcSession:
        """Move a session to another project's prearchive (same timestamp and folder)."""
        check_component(new_project, "project")
        moved = replace(session, project=new_project)
        if self.get(*moved.key) is not None or self.path_of(moved).exists():
            raise Conflict(f"A prearchive resource with session {session.folder} and timestamp "
                           f"{session.timestamp} already exists in the project {new_project}")
        source, target = self.path_of(session), self.path_of(moved)
        target.parent.mkdir(parents=True, exist_ok=True)
        os.replace(source, target)
        try:
            moved.autoarchive = "Manual" if new_project != UNASSIGNED else ""
            self.save(moved, key=session.key)
        except BaseException:
            os.replace(target, source)
            raise
        finally:
            _remove_if_empty(target.parent)
        _remove_if_empty(source.parent)
        return moved

    def rebuild(self, session: PrearcSession) -> PrearcSession:
        """Re-read the DICOM headers on disk into the session document; READY, or ERROR if none."""
        document = read_document(self.path_of(session))
        if document is None:
            session.status = "ERROR"
            session.document = SessionDocument(session.document.xsi_type, session.document.fields, [])
        else:
            session.describe(document)
            session.status = "READY"
        self.save(session)
        return session

    # ---- the folder -------------------------------------------------------------------------------------
    def scan_ids(self, session: PrearcSession) -> list[str]:
        scans = self.path_of(session) / "SCANS"
        ids = [p.name for p in scans.iterdir() if p.is_dir()] if scans.is_dir() else []
        order = [s.id for s in session.document.scans]
        return sorted(ids, key=lambda i: (order.index(i) if i in order else len(order), natural_key(i)))

    def resource_dir(self, session: PrearcSession, scan_id: str | None, label: str) -> Path:
        base = self.path_of(session)
        base = base / "SCANS" / check_component(scan_id, "scan") if scan_id is not None else base / "RESOURCES"
        return base / check_component(label, "resource")

    def resource_labels(self, session: PrearcSession, scan_id: str | None) -> list[str]:
        base = self.path_of(session)
        base = base / "SCANS" / check_component(scan_id, "scan") if scan_id is not None else base / "RESOURCES"
        return sorted(p.name for p in base.iterdir() if p.is_dir()) if base.is_dir() else []


def prearchive_of(store: Store) -> Prearchive:
    """The one Prearchive object of a Store (created on first use)."""
    with _INSTANCES_LOCK:
        found = _INSTANCES.get(store)
        if found is None:
            found = _INSTANCES[store] = Prearchive(store)
        return found


_INSTANCES: weakref.WeakKeyDictionary[Store, Prearchive] = weakref.WeakKeyDictionary()
_INSTANCES_LOCK = threading.Lock()


def files_under(folder: Path) -> list[Path]:
    """Every regular file below a folder, sorted; symlinks are not followed."""
    if not folder.is_dir():
        return []
    found = []
    for dirpath, dirnames, filenames in os.walk(folder):
        dirnames.sort()
        found += [Path(dirpath) / name for name in sorted(filenames) if not name.startswith(".")]
    return [p for p in found if p.is_file() and not p.is_symlink()]


def read_header(path: Path, entry: str):  # type: ignore[no-untyped-def]
    """The `DicomInstance` of a stored file, or None when it is not DICOM."""
    with open(path, "rb") as f:
        head = f.read(HEADER_BYTES)
    return read_instance(entry, head, path.stat().st_size)


def read_document(folder: Path) -> SessionDocument | None:
    """Rebuild a session document from `SCANS/<id>/<resource>/…` DICOM files; None if there are none."""
    series = []
    scans = folder / "SCANS"
    for scan_dir in sorted((p for p in scans.iterdir() if p.is_dir()), key=lambda p: natural_key(p.name)) \
            if scans.is_dir() else []:
        instances = [i for i in (read_header(p, str(p.relative_to(folder))) for p in files_under(scan_dir)) if i]
        if instances:
            instances.sort(key=lambda i: (i.instance_number is None, i.instance_number or 0, i.entry))
            series.append(Series(scan_dir.name, instances[0].series_uid, instances))
    if not series:
        return None
    return SessionDocument.of(Study(series[0].first.study_uid, series))


def _remove_if_empty(path: Path) -> None:
    try:
        path.rmdir()
    except OSError:
        pass
