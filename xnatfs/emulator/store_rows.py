"""What the emulator's store hands out: its row objects, its errors, and the small value rules they share.

Owns the dataclasses one SQLite row becomes (`Project`, `Subject`, `Experiment`, `Scan` and
`Reconstruction` on their common `ExperimentChild`, `Resource`, `FileRow`), the functions that
build them from `sqlite3.Row`s, the store's errors (`StoreError` and its `NotFound`/`Conflict`/
`Invalid`, each with the HTTP `.status` a handler answers with), and the value rules every table
follows: XNAT's timestamp text (`now_string`), how a field update merges into stored fields
(`merge_fields`) and the natural order of scan IDs (`natural_key`). Kept apart from the SQL so the
handlers, the importer and the prearchive can name these types without reading how they are stored.

Import them from `xnatfs.emulator.store`, which re-exports all of this.
"""

from __future__ import annotations

import functools
import json
import sqlite3
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar, Union

#: The site ID that prefixes accession numbers (XNAT_S00001, XNAT_E00001).
SITE_ID = "XNAT"


class StoreError(Exception):
    status = 400


class NotFound(StoreError):
    status = 404


class Conflict(StoreError):
    status = 409


class Invalid(StoreError):
    status = 400


def now_string() -> str:
    """The server's local time, no zone, as XNAT's listings print a timestamp: 2023-09-27 17:31:21.352
    (XNAT's PostgreSQL text drops trailing zeros, 0-6 digits; kept at 3 here, one of those forms)."""
    t = time.time()
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(t)) + ".%03d" % int((t % 1) * 1000)


def merge_fields(old: dict, new: dict) -> dict:
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


def natural_key(text: str) -> tuple:
    """Sort key putting numeric IDs first in numeric order ("2" < "10"), then the rest by text."""
    return (0, int(text), "") if text.isdigit() else (1, 0, text)


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
class ExperimentChild:
    """What scans and reconstructions share: their tables have the same columns."""
    pk: int
    experiment_id: str
    id: str
    xsi_type: str
    fields: dict
    insert_date: str
    kind = "child"


@dataclass
class Scan(ExperimentChild):
    kind = "scan"

    @property
    def type(self) -> str:
        return str(self.fields.get("type", ""))


@dataclass
class Reconstruction(ExperimentChild):
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
    io: str = ""  # "in" or "out" for assessor and reconstruction resources, else ""
    xsi_type: str = "xnat:resourceCatalog"
    kind = "resource"


@dataclass
class FileRow:
    """One file of a resource. Its bytes are at ``folder / path``; ``disk_path`` is built only when
    asked for, because listings of thousands of rows mostly never need it (a ``Path`` join costs
    more than the rest of a row)."""

    id: int
    resource_id: int
    path: str
    size: int
    md5: str
    mtime: float
    format: str
    content: str
    tags: str
    folder: Path = field(repr=False, default=Path())

    @property
    def name(self) -> str:
        return self.path.rsplit("/", 1)[-1]

    @functools.cached_property
    def disk_path(self) -> Path:
        return self.folder / self.path


Owner = Union[Project, Subject, Experiment, Scan, Reconstruction]


#: A scan or a reconstruction, in functions that serve both.
ChildT = TypeVar("ChildT", Scan, Reconstruction)


def _fields(row: sqlite3.Row) -> dict:
    return json.loads(row["fields"] or "{}")


def project_from_row(row: sqlite3.Row) -> Project:
    return Project(row["id"], row["name"] or "", row["secondary_id"] or "", row["description"] or "",
                   _fields(row), row["insert_date"], row["insert_user"])


def subject_from_row(row: sqlite3.Row) -> Subject:
    return Subject(row["id"], row["project"], row["label"], _fields(row), row["insert_date"], row["insert_user"])


def experiment_from_row(row: sqlite3.Row) -> Experiment:
    return Experiment(row["id"], row["project"], row["subject_id"], row["label"], row["xsi_type"],
                      _fields(row), row["insert_date"], row["insert_user"], row["session_id"])


def child_from_row(row: sqlite3.Row, cls: type[ChildT]) -> ChildT:
    """A row of `scans` or `reconstructions` (the same columns) as a `cls`."""
    return cls(row["pk"], row["experiment_id"], row["id"], row["xsi_type"], _fields(row), row["insert_date"])


def resource_from_row(row: sqlite3.Row) -> Resource:
    return Resource(row["id"], row["owner_kind"], row["owner_ref"], row["experiment_id"], row["label"],
                    row["format"] or "", row["content"] or "", row["tags"] or "", row["description"] or "",
                    row["io"] if "io" in row.keys() else "")
