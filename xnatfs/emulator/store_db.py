"""The store's plumbing: where the archive lives on disk, its SQLite tables, its lock and transactions.

Owns `data_dir`'s layout (`xnat.db`, `archive/resources/`, `tmp/`), the table definitions
(`SCHEMA`), the one SQLite connection every thread shares under `lock` (an RLock), all-or-nothing
`transaction()`s that also undo the files written inside them and delay the removal of files they
delete until the commit, and the accession counters. `StoreDatabase` is the base the store's
resource/file and archive halves (`store_files`, `store_archive`) build on; `Store` is the class to use.
"""

from __future__ import annotations

import contextlib
import shutil
import sqlite3
import threading
from pathlib import Path
from typing import Iterator, Sequence

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
    description TEXT, io TEXT NOT NULL DEFAULT '', file_count INTEGER NOT NULL DEFAULT 0,
    file_size INTEGER NOT NULL DEFAULT 0, UNIQUE(owner_kind, owner_ref, io, label));
CREATE INDEX IF NOT EXISTS resources_experiment ON resources(experiment_id, owner_kind);
CREATE TABLE IF NOT EXISTS files (id INTEGER PRIMARY KEY AUTOINCREMENT, resource_id INTEGER NOT NULL,
    path TEXT NOT NULL, size INTEGER NOT NULL, md5 TEXT NOT NULL, mtime REAL NOT NULL, format TEXT,
    content TEXT, tags TEXT, UNIQUE(resource_id, path));
CREATE TABLE IF NOT EXISTS shares (kind TEXT NOT NULL, item_id TEXT NOT NULL, project TEXT NOT NULL,
    label TEXT, PRIMARY KEY(kind, item_id, project));
CREATE INDEX IF NOT EXISTS shares_project_label ON shares(kind, project, label);
CREATE INDEX IF NOT EXISTS subjects_label ON subjects(label);
CREATE INDEX IF NOT EXISTS experiments_label ON experiments(label);
CREATE TABLE IF NOT EXISTS project_users (project TEXT NOT NULL, login TEXT NOT NULL, role TEXT NOT NULL,
    PRIMARY KEY(project, login));
CREATE INDEX IF NOT EXISTS project_users_login ON project_users(login);
"""
#: A resource's file count and total size, kept by the database itself on every write to ``files``,
#: as XNAT keeps them in its catalog rows: a resource listing or a document shows them without
#: counting the files (thousands in a series) on every request. Created after ``_upgrade`` has added
#: the columns to an older archive.
TRIGGERS = """
CREATE TRIGGER IF NOT EXISTS files_added AFTER INSERT ON files BEGIN
    UPDATE resources SET file_count=file_count+1, file_size=file_size+NEW.size WHERE id=NEW.resource_id;
END;
CREATE TRIGGER IF NOT EXISTS files_removed AFTER DELETE ON files BEGIN
    UPDATE resources SET file_count=file_count-1, file_size=file_size-OLD.size WHERE id=OLD.resource_id;
END;
CREATE TRIGGER IF NOT EXISTS files_changed AFTER UPDATE OF resource_id, size ON files BEGIN
    UPDATE resources SET file_count=file_count-1, file_size=file_size-OLD.size WHERE id=OLD.resource_id;
    UPDATE resources SET file_count=file_count+1, file_size=file_size+NEW.size WHERE id=NEW.resource_id;
END;
"""
#: Every lookup that answers for one object (a file of a resource, a subject of a project, a user's
#: roles) is a search on one of these indexes, so its cost does not grow with the size of the
#: resource, project or site around it; ``tests/emulator/test_request_cost.py`` checks the query plans.


#: values per ``IN (...)`` query (SQLite's limit on parameters is 999 in old builds)
IN_BATCH = 500


class StoreDatabase:
    """Opens or creates the archive under `data_dir`; see the module docstring."""

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
        self._upgrade()
        self.db.executescript(TRIGGERS)
        self._depth = 0
        self._pending_unlinks: list[Path] = []
        self._new_files: list[Path] = []

    def _upgrade(self) -> None:
        """Archives written before assessor/reconstruction ``in``/``out`` resources were kept apart
        lack ``resources.io``; add it (their resources are all ``out``, XNAT's default). Older
        archives also lack the file counters (counted once here, kept by ``TRIGGERS`` from then on)
        and carry an index the schema has replaced; drop it."""
        columns = {row[1] for row in self.db.execute("PRAGMA table_info(resources)")}
        if "io" not in columns:
            self.db.execute("ALTER TABLE resources ADD COLUMN io TEXT NOT NULL DEFAULT ''")
        if "file_count" not in columns:
            self.db.execute("ALTER TABLE resources ADD COLUMN file_count INTEGER NOT NULL DEFAULT 0")
            self.db.execute("ALTER TABLE resources ADD COLUMN file_size INTEGER NOT NULL DEFAULT 0")
            self.db.execute("UPDATE resources SET "
                            "file_count=(SELECT COUNT(*) FROM files WHERE resource_id=resources.id), "
                            "file_size=(SELECT COALESCE(SUM(size), 0) FROM files WHERE resource_id=resources.id)")
        self.db.execute("DROP INDEX IF EXISTS shares_project")  # now the prefix of shares_project_label

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

    def query_in(self, sql: str, values: Sequence[str]) -> list[sqlite3.Row]:
        """``sql`` with its ``{marks}`` placeholder filled for ``values`` (``… IN ({marks})``), run for
        :data:`IN_BATCH` values at a time; the rows of every batch, in order."""
        rows: list[sqlite3.Row] = []
        for start in range(0, len(values), IN_BATCH):
            batch = values[start:start + IN_BATCH]
            rows += self.query(sql.format(marks=",".join("?" * len(batch))), batch)
        return rows

    def _one(self, sql: str, args: tuple | list = ()) -> sqlite3.Row | None:
        with self.lock:
            return self.db.execute(sql, args).fetchone()

    def _next_id(self, name: str) -> int:
        with self.transaction() as db:
            row = db.execute("SELECT value FROM counters WHERE name=?", (name,)).fetchone()
            value = (row[0] if row else 0) + 1
            db.execute("INSERT OR REPLACE INTO counters(name, value) VALUES (?, ?)", (name, value))
            return value
