"""The store's resources and their files: catalog rows plus the file bytes under `archive/resources/`.

Owns which objects may own a resource (`ResourceFiles.owner_key`), resource label uniqueness per
owner, where a file's bytes live on disk (`archive/resources/<resource id>/<relative path>`), and
how they get there: written through a `.part` file or renamed from a spooled upload, md5 computed
on the way, inside the caller's transaction so a failed import leaves no bytes behind. Relative
paths are checked by `check_relative_path` (and again against the resource folder) before they
touch the disk, so nothing is ever written outside `data_dir`.

Also the byte-copying helpers the upload spool and the importer share with it (`CHUNK`,
`copy_stream`, `md5_of`), so one piece of code decides how bytes are copied and summed.
"""

from __future__ import annotations

import hashlib
import os
import sqlite3
from pathlib import Path
from typing import IO, BinaryIO

from xnatfs.emulator.store_db import StoreDatabase
from xnatfs.emulator.store_rows import (Conflict, Experiment, FileRow, Invalid, NotFound, Owner, Project,
                                        Reconstruction, Resource, Scan, Subject, resource_from_row)

#: Bytes copied per read when bytes are streamed to or from disk.
CHUNK = 1024 * 1024
#: The ``files`` columns in ``FileRow``'s field order, so a row becomes one without a lookup by name
#: per field (listings build thousands).
FILE_COLUMNS = ("id, resource_id, path, size, md5, mtime, COALESCE(format, ''), COALESCE(content, ''), "
                "COALESCE(tags, '')")


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


def copy_stream(source: BinaryIO | IO[bytes], out: BinaryIO | IO[bytes]) -> tuple[int, str]:
    """Copy `source` to `out` in `CHUNK` pieces; returns (bytes copied, md5 hex digest)."""
    digest, size = hashlib.md5(), 0
    while chunk := source.read(CHUNK):
        out.write(chunk)
        digest.update(chunk)
        size += len(chunk)
    return size, digest.hexdigest()


def md5_of(path: Path) -> str:
    """The md5 hex digest of a file's bytes, read in pieces."""
    with open(path, "rb") as f:
        return hashlib.file_digest(f, "md5").hexdigest()


def prefix_bounds(prefix: str) -> tuple[str, str | None]:
    """``(low, high)`` with ``low <= path < high`` exactly for the paths starting with ``prefix``
    (``high`` None: no upper bound). A range on the ``(resource_id, path)`` index finds a folder's
    files without reading the rest of the resource, as ``LIKE 'prefix%'`` cannot: SQLite runs that
    over every path of the resource (its LIKE ignores case, so it cannot use a case-sensitive index,
    and would match ``DIR/x`` for ``dir/``; file paths are case-sensitive). Text compares by UTF-8
    bytes, whose order is code point order, so the next code point after the last one bounds it."""
    if not prefix:
        return "", None
    last = ord(prefix[-1]) + 1
    if 0xD800 <= last <= 0xDFFF:  # surrogates cannot be stored; the next storable code point
        last = 0xE000
    if last > 0x10FFFF:
        return prefix, None
    return prefix, prefix[:-1] + chr(last)


class ResourceFiles(StoreDatabase):
    """Resources (catalogs) of any archive object and the files in them."""

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

    @staticmethod
    def default_io(owner: Owner, io: str | None) -> str:
        """The side a resource of ``owner`` lives on: assessors and reconstructions have ``in`` and
        ``out`` lists (``out`` unless named, as XNAT's ``/resources`` without a side means ``out``);
        every other owner has one list (``""``)."""
        if isinstance(owner, Reconstruction) or (isinstance(owner, Experiment) and owner.session_id):
            return io if io in ("in", "out") else "out"
        return ""

    def create_resource(self, owner: Owner, label: str, *, format: str = "", content: str = "",
                        tags: str = "", description: str = "", io: str | None = None) -> Resource:
        kind, ref, experiment_id = self.owner_key(owner)
        side = self.default_io(owner, io)
        with self.transaction() as db:
            if self._one("SELECT 1 FROM resources WHERE owner_kind=? AND owner_ref=? AND io=? AND label=?",
                         (kind, ref, side, label)):
                raise Conflict("Specified resource already exists.")
            cur = db.execute("INSERT INTO resources(owner_kind, owner_ref, experiment_id, label, format, "
                             "content, tags, description, io) VALUES (?,?,?,?,?,?,?,?,?)",
                             (kind, ref, experiment_id, label, format, content, tags, description, side))
            rid = cur.lastrowid
        return self.get_resource(rid)  # type: ignore[arg-type,return-value]

    def get_resource(self, id: int) -> Resource | None:
        row = self._one("SELECT * FROM resources WHERE id=?", (id,))
        return resource_from_row(row) if row else None

    def find_resource(self, owner: Owner, id_or_label: str, io: str | None = None) -> Resource | None:
        """A resource of ``owner`` by label or numeric ID; ``io`` limits it to one side (None: any)."""
        kind, ref, _ = self.owner_key(owner)
        side_sql, side_args = ("", ()) if io is None else (" AND io=?", (io,))
        row = self._one("SELECT * FROM resources WHERE owner_kind=? AND owner_ref=? AND label=?" + side_sql
                        + " ORDER BY id", (kind, ref, id_or_label, *side_args))
        if row is None and id_or_label.isdigit():
            row = self._one("SELECT * FROM resources WHERE owner_kind=? AND owner_ref=? AND id=?" + side_sql,
                            (kind, ref, int(id_or_label), *side_args))
        return resource_from_row(row) if row else None

    def list_resources(self, owner: Owner, io: str | None = None) -> list[Resource]:
        """The resources of ``owner``; ``io`` limits them to one side (None: both)."""
        kind, ref, _ = self.owner_key(owner)
        side_sql, side_args = ("", ()) if io is None else (" AND io=?", (io,))
        rows = self.query("SELECT * FROM resources WHERE owner_kind=? AND owner_ref=?" + side_sql + " ORDER BY id",
                          (kind, ref, *side_args))
        return [resource_from_row(r) for r in rows]

    def resources_of_subjects(self, subject_ids: list[str]) -> dict[str, list[tuple[Resource, int, int]]]:
        """The resources of each of these subjects with their (file count, total size), by subject ID:
        a subject listing joined with its resources reads them in one query per 500 subjects."""
        found: dict[str, list[tuple[Resource, int, int]]] = {}
        for row in self.query_in("SELECT * FROM resources WHERE owner_kind='subject' AND owner_ref IN ({marks}) "
                                 "ORDER BY id", subject_ids):
            found.setdefault(row["owner_ref"], []).append(
                (resource_from_row(row), int(row["file_count"]), int(row["file_size"])))
        return found

    def list_resources_of_experiment(self, experiment_id: str, kinds: tuple[str, ...]) -> list[Resource]:
        """Resources of an experiment and/or its scans and reconstructions, in one query."""
        marks = ",".join("?" * len(kinds))
        rows = self.query(f"SELECT * FROM resources WHERE experiment_id=? AND owner_kind IN ({marks}) "
                          "ORDER BY id", (experiment_id, *kinds))
        return [resource_from_row(r) for r in rows]

    def delete_resource(self, id: int) -> None:
        with self.transaction() as db:
            # the resource row first: the counters' trigger then has no row to update per file deleted
            db.execute("DELETE FROM resources WHERE id=?", (id,))
            db.execute("DELETE FROM files WHERE resource_id=?", (id,))
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

    def _under(self, resource_ids: list[int], prefix: str | None, columns: str = FILE_COLUMNS,
               limit: str = "") -> list[sqlite3.Row]:
        """Rows of some resources (by resource ID, then path) whose path starts with ``prefix``
        (None: all), found by ranges on the ``(resource_id, path)`` index."""
        marks = ",".join("?" * len(resource_ids))
        sql = f"SELECT {columns} FROM files WHERE resource_id IN ({marks})"
        args: list[int | str] = list(resource_ids)
        low, high = prefix_bounds(prefix or "")
        if low:
            sql += " AND path>=?"
            args.append(low)
        if high is not None:
            sql += " AND path<?"
            args.append(high)
        rows = self.query(sql + " ORDER BY resource_id, path" + limit, args)
        if prefix and high is None:
            rows = [r for r in rows if r["path"].startswith(prefix)]
        return rows

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
            if self._under([resource_id], relative_path + "/", "path", " LIMIT 1"):
                raise Conflict(f"A folder exists at {relative_path}")
            target.parent.mkdir(parents=True, exist_ok=True)
            if target.parent.exists() and not target.parent.is_dir():
                raise Conflict(f"A file exists where a folder is needed: {relative_path}")
            size, digest = self._write(target, source, move=move, md5=md5)
            if existing is None:
                self._new_files.append(target)
            mtime = target.stat().st_mtime
            # an upsert, not INSERT OR REPLACE: its delete would not fire the counters' trigger
            db.execute("INSERT INTO files(resource_id, path, size, md5, mtime, format, content, tags) "
                       "VALUES (?,?,?,?,?,?,?,?) ON CONFLICT(resource_id, path) DO UPDATE SET size=excluded.size, "
                       "md5=excluded.md5, mtime=excluded.mtime, format=excluded.format, content=excluded.content, "
                       "tags=excluded.tags",
                       (resource_id, relative_path, size, digest, mtime, format, content, tags))
        return self.get_file(resource_id, relative_path)  # type: ignore[return-value]

    @staticmethod
    def _write(target: Path, source: bytes | BinaryIO | Path, *, move: bool, md5: str | None) -> tuple[int, str]:
        if isinstance(source, Path) and move:
            if md5 is None:
                md5 = md5_of(source)
            os.replace(source, target)
            return target.stat().st_size, md5
        tmp = target.with_name(f".{target.name}.part")
        with open(tmp, "wb") as out:
            if isinstance(source, (bytes, bytearray, memoryview)):
                out.write(source)
                size, digest = len(source), hashlib.md5(source).hexdigest()
            elif isinstance(source, Path):
                with open(source, "rb") as stream:
                    size, digest = copy_stream(stream, out)
            else:
                size, digest = copy_stream(source, out)
        os.replace(tmp, target)
        return size, digest

    def get_file(self, resource_id: int, path: str) -> FileRow | None:
        row = self._one(f"SELECT {FILE_COLUMNS} FROM files WHERE resource_id=? AND path=?", (resource_id, path))
        return FileRow(*row, self.archive_dir / str(resource_id)) if row else None

    def list_files(self, resource_ids: list[int] | int, prefix: str | None = None) -> list[FileRow]:
        """The files of some resources (by resource ID, then path), those under ``prefix`` only when
        given (a case-sensitive path prefix, e.g. a folder ``dir/``)."""
        ids = [resource_ids] if isinstance(resource_ids, int) else list(resource_ids)
        if not ids:
            return []
        folders = {rid: self.archive_dir / str(rid) for rid in ids}
        return [FileRow(*r, folders[r[1]]) for r in self._under(ids, prefix)]

    def delete_file(self, resource_id: int, path: str) -> int:
        """Remove a file or everything under a folder path; returns how many entries went."""
        path = path.rstrip("/")
        with self.transaction() as db:
            rows = self.list_files(resource_id, path + "/")
            one = self.get_file(resource_id, path)
            if one:
                rows.append(one)
            for row in rows:
                db.execute("DELETE FROM files WHERE id=?", (row.id,))
                self._pending_unlinks.append(row.disk_path)
        return len(rows)

    def file_stats(self, resource_id: int) -> tuple[int, int]:
        """(file count, total size) of a resource: its counters (store_db.TRIGGERS), not a count."""
        row = self._one("SELECT file_count, file_size FROM resources WHERE id=?", (resource_id,))
        return (int(row[0]), int(row[1])) if row else (0, 0)

    def file_stats_many(self, resource_ids: list[int]) -> dict[int, tuple[int, int]]:
        if not resource_ids:
            return {}
        marks = ",".join("?" * len(resource_ids))
        rows = self.query(f"SELECT id, file_count, file_size FROM resources WHERE id IN ({marks})", resource_ids)
        return {r[0]: (int(r[1]), int(r[2])) for r in rows}
