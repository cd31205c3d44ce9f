"""The store's archive hierarchy: projects, subjects, experiments (sessions and assessors), scans and
reconstructions.

Owns accession IDs (`XNAT_S00001`, `XNAT_E00001`: sessions and assessors share the experiment
counter), label uniqueness within a project, how field updates merge (`merge_fields`) and cascading
deletes: a project takes its subjects, a subject its sessions and their assessors, an experiment its
assessors, scans and reconstructions, and each of them its resources (`ResourceFiles`). Scans and
reconstructions live in two tables of the same shape, served by one private helper per operation.
"""

from __future__ import annotations

import json
import sqlite3
from typing import Callable, Iterable, TypeVar

from xnatfs.emulator.store_files import ResourceFiles
from xnatfs.emulator.store_rows import (SITE_ID, ChildT, Conflict, Experiment, NotFound, Project, Reconstruction,
                                        Scan, Subject, child_from_row, experiment_from_row, merge_fields, natural_key,
                                        now_string, project_from_row, subject_from_row)

#: The table that holds each kind of experiment child.
_CHILD_TABLES: dict[type, str] = {Scan: "scans", Reconstruction: "reconstructions"}
#: The ``shares.kind`` of the rows of each shareable table.
_SHARE_KIND = {"subjects": "subject", "experiments": "experiment"}
RowT = TypeVar("RowT")


def _shared_lookup(table: str, kind: str, project: str, ref: str,
                   subject_id: str | None = None) -> tuple[str, list[str]]:
    """SQL and parameters for an object shared into ``project`` and named ``ref`` there: by its
    accession ID, by its label there, or by its own label when the share gives it none (of
    ``subject_id`` only, when given). Three index searches (shares by item, shares by label, the
    table by label, then its share: ``CROSS JOIN`` keeps that order), never a walk over every share
    of the project. The first match wins, in that order."""
    extra, extra_args = ("", []) if subject_id is None else (" AND t.subject_id=?", [subject_id])
    sql = (f"SELECT t.* FROM shares h JOIN {table} t ON t.id=h.item_id WHERE h.kind='{kind}' AND h.project=? "
           f"AND h.item_id=?{extra} UNION ALL "
           f"SELECT t.* FROM shares h JOIN {table} t ON t.id=h.item_id WHERE h.kind='{kind}' AND h.project=? "
           f"AND h.label=?{extra} UNION ALL "
           f"SELECT t.* FROM {table} t CROSS JOIN shares h ON h.kind='{kind}' AND h.item_id=t.id AND h.project=? "
           f"WHERE t.label=? AND h.label IS NULL{extra} LIMIT 1")
    return sql, [project, ref, *extra_args] * 3


class ArchiveRecords(ResourceFiles):
    """Projects, subjects, experiments, scans and reconstructions, each owning resources."""

    def is_empty(self) -> bool:
        return self._one("SELECT 1 FROM projects LIMIT 1") is None

    def _check_label_free(self, table: str, project: str, label: str) -> None:
        """Subject labels and experiment labels are each unique within a project (409 otherwise)."""
        if self._one(f"SELECT 1 FROM {table} WHERE project=? AND label=?", (project, label)) or self._one(
                "SELECT 1 FROM shares WHERE kind=? AND project=? AND label=?", (_SHARE_KIND[table], project, label)):
            raise Conflict("Specified label is already in use.")

    def _relabel(self, table: str, item: Subject | Experiment, label: str | None) -> None:
        """Give a subject or experiment a new label (None or its own label: nothing to do)."""
        if label is None or label == item.label:
            return
        with self.transaction() as db:
            self._check_label_free(table, item.project, label)
            db.execute(f"UPDATE {table} SET label=? WHERE id=?", (label, item.id))

    # ---- projects -------------------------------------------------------------------------------
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
        return project_from_row(row) if row else None

    def list_projects(self) -> list[Project]:
        return [project_from_row(r) for r in self.query("SELECT * FROM projects ORDER BY id")]

    def update_project(self, id: str, fields: dict) -> Project:
        with self.transaction() as db:
            project = self.get_project(id)
            if project is None:
                raise NotFound("Unable to find the specified experiment.")
            for key in ("name", "secondary_ID", "secondary_id", "description"):
                if key in fields:
                    project_key = "secondary_id" if key.lower() == "secondary_id" else key
                    setattr(project, project_key, fields.pop(key))
            merged = merge_fields(project.fields, fields)
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
            db.execute("DELETE FROM shares WHERE project=?", (id,))
            db.execute("DELETE FROM project_users WHERE project=?", (id,))
            db.execute("DELETE FROM projects WHERE id=?", (id,))

    # ---- subjects -------------------------------------------------------------------------------
    def create_subject(self, project: str, label: str, fields: dict | None = None, *,
                       user: str = "admin") -> Subject:
        with self.transaction() as db:
            if self.get_project(project) is None:
                raise NotFound(f"Unable to identify project {project}")
            self._check_label_free("subjects", project, label)
            sid = f"{SITE_ID}_S{self._next_id('subject'):05d}"
            db.execute("INSERT INTO subjects VALUES (?,?,?,?,?,?)",
                       (sid, project, label, json.dumps(fields or {}), now_string(), user))
        return self.get_subject(sid)  # type: ignore[return-value]

    def get_subject(self, id: str) -> Subject | None:
        row = self._one("SELECT * FROM subjects WHERE id=?", (id,))
        return subject_from_row(row) if row else None

    def find_subject(self, project: str, id_or_label: str) -> Subject | None:
        """A subject of ``project`` by accession ID or label, or one shared into it by ID or by its label
        there (``GetSubjectByProjectIdentifier``); the subject keeps its home project and label."""
        row = self._one("SELECT * FROM subjects WHERE project=? AND (id=? OR label=?) "
                        "ORDER BY id=? DESC LIMIT 1", (project, id_or_label, id_or_label, id_or_label))
        if row is None:
            row = self._one(*_shared_lookup("subjects", "subject", project, id_or_label))
        return subject_from_row(row) if row else None

    def subjects_by_id(self, ids: Iterable[str]) -> dict[str, Subject]:
        """The subjects with these accession IDs (missing ones left out), a few at a time."""
        return {s.id: s for s in self._by_id("subjects", ids, subject_from_row)}

    def experiments_by_id(self, ids: Iterable[str]) -> dict[str, Experiment]:
        """The experiments with these accession IDs (missing ones left out), a few at a time."""
        return {e.id: e for e in self._by_id("experiments", ids, experiment_from_row)}

    def _by_id(self, table: str, ids: Iterable[str], from_row: Callable[[sqlite3.Row], RowT]) -> list[RowT]:
        rows = self.query_in(f"SELECT * FROM {table} WHERE id IN ({{marks}})", sorted(set(ids)))
        return [from_row(r) for r in rows]

    def list_subjects(self, project: str | None = None) -> list[Subject]:
        if project is None:
            rows = self.query("SELECT * FROM subjects ORDER BY id")
        else:
            rows = self.query("SELECT * FROM subjects WHERE project=? ORDER BY id", (project,))
        return [subject_from_row(r) for r in rows]

    def update_subject(self, id: str, fields: dict | None = None, *, label: str | None = None) -> Subject:
        with self.transaction() as db:
            subject = self.get_subject(id)
            if subject is None:
                raise NotFound("Unable to find the specified subject.")
            self._relabel("subjects", subject, label)
            if fields:
                db.execute("UPDATE subjects SET fields=? WHERE id=?",
                           (json.dumps(merge_fields(subject.fields, fields)), id))
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
            db.execute("DELETE FROM shares WHERE kind='subject' AND item_id=?", (id,))
            db.execute("DELETE FROM subjects WHERE id=?", (id,))

    # ---- experiments and assessors ---------------------------------------------------------------
    def create_experiment(self, project: str, subject_id: str, label: str,
                          xsi_type: str = "xnat:mrSessionData", fields: dict | None = None, *,
                          session_id: str | None = None, user: str = "admin") -> Experiment:
        with self.transaction() as db:
            if self.get_project(project) is None:
                raise NotFound(f"Unable to identify project {project}")
            if self.get_subject(subject_id) is None:
                raise NotFound(f"Unable to identify subject {subject_id}")
            self._check_label_free("experiments", project, label)
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
        return experiment_from_row(row) if row else None

    def find_experiment(self, project: str, id_or_label: str,
                        subject_id: str | None = None) -> Experiment | None:
        sql = "SELECT * FROM experiments WHERE project=? AND (id=? OR label=?)"
        args: list = [project, id_or_label, id_or_label]
        if subject_id is not None:
            sql += " AND subject_id=?"
            args.append(subject_id)
        row = self._one(sql + " ORDER BY id=? DESC LIMIT 1", args + [id_or_label])
        if row is None:
            row = self._one(*_shared_lookup("experiments", "experiment", project, id_or_label, subject_id))
        return experiment_from_row(row) if row else None

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
        return [experiment_from_row(r) for r in self.query(f"SELECT * FROM experiments{where} ORDER BY id", args)]

    def update_experiment(self, id: str, fields: dict | None = None, *, label: str | None = None) -> Experiment:
        with self.transaction() as db:
            experiment = self.get_experiment(id)
            if experiment is None:
                raise NotFound("Unable to find the specified experiment.")
            self._relabel("experiments", experiment, label)
            if fields:
                fields = dict(fields)
                subject_id = fields.pop("subject_ID", None)
                if subject_id and subject_id != experiment.subject_id:
                    db.execute("UPDATE experiments SET subject_id=? WHERE id=?", (subject_id, id))
                db.execute("UPDATE experiments SET fields=? WHERE id=?",
                           (json.dumps(merge_fields(experiment.fields, fields)), id))
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
            db.execute("DELETE FROM shares WHERE kind='experiment' AND item_id=?", (id,))
            db.execute("DELETE FROM experiments WHERE id=?", (id,))

    # ---- scans and reconstructions ----------------------------------------------------------------
    def create_scan(self, experiment_id: str, scan_id: str, xsi_type: str = "xnat:mrScanData",
                    fields: dict | None = None) -> Scan:
        return self._create_child(Scan, experiment_id, scan_id, xsi_type, fields)

    def get_scan(self, experiment_id: str, scan_id: str) -> Scan | None:
        return self._get_child(Scan, experiment_id, scan_id)

    def get_scan_by_pk(self, pk: int) -> Scan | None:
        row = self._one("SELECT * FROM scans WHERE pk=?", (pk,))
        return child_from_row(row, Scan) if row else None

    def list_scans(self, experiment_id: str) -> list[Scan]:
        """An experiment's scans in natural ID order ("2" before "10")."""
        return sorted(self._list_children(Scan, experiment_id), key=lambda s: natural_key(s.id))

    def update_scan(self, experiment_id: str, scan_id: str, fields: dict,
                    xsi_type: str | None = None) -> Scan:
        return self._update_child(Scan, experiment_id, scan_id, fields, xsi_type)

    def delete_scan(self, experiment_id: str, scan_id: str) -> None:
        self._delete_child(Scan, experiment_id, scan_id)

    def create_reconstruction(self, experiment_id: str, recon_id: str,
                              xsi_type: str = "xnat:reconstructedImageData",
                              fields: dict | None = None) -> Reconstruction:
        return self._create_child(Reconstruction, experiment_id, recon_id, xsi_type, fields)

    def get_reconstruction(self, experiment_id: str, recon_id: str) -> Reconstruction | None:
        return self._get_child(Reconstruction, experiment_id, recon_id)

    def list_reconstructions(self, experiment_id: str) -> list[Reconstruction]:
        """An experiment's reconstructions in the order they were created."""
        return self._list_children(Reconstruction, experiment_id)

    def update_reconstruction(self, experiment_id: str, recon_id: str, fields: dict) -> Reconstruction:
        return self._update_child(Reconstruction, experiment_id, recon_id, fields)

    def delete_reconstruction(self, experiment_id: str, recon_id: str) -> None:
        self._delete_child(Reconstruction, experiment_id, recon_id)

    def _create_child(self, cls: type[ChildT], experiment_id: str, child_id: str, xsi_type: str,
                      fields: dict | None) -> ChildT:
        table = _CHILD_TABLES[cls]
        with self.transaction() as db:
            if self.get_experiment(experiment_id) is None:
                raise NotFound("Specified image session doesn't exist.")
            if self._one(f"SELECT 1 FROM {table} WHERE experiment_id=? AND id=?", (experiment_id, child_id)):
                raise Conflict(f"Specified {cls.kind} already exists.")
            cur = db.execute(f"INSERT INTO {table}(experiment_id, id, xsi_type, fields, insert_date) "
                             "VALUES (?,?,?,?,?)",
                             (experiment_id, child_id, xsi_type, json.dumps(fields or {}), now_string()))
            row = db.execute(f"SELECT * FROM {table} WHERE pk=?", (cur.lastrowid,)).fetchone()
        return child_from_row(row, cls)

    def _get_child(self, cls: type[ChildT], experiment_id: str, child_id: str) -> ChildT | None:
        row = self._one(f"SELECT * FROM {_CHILD_TABLES[cls]} WHERE experiment_id=? AND id=?",
                        (experiment_id, child_id))
        return child_from_row(row, cls) if row else None

    def _list_children(self, cls: type[ChildT], experiment_id: str) -> list[ChildT]:
        rows = self.query(f"SELECT * FROM {_CHILD_TABLES[cls]} WHERE experiment_id=? ORDER BY pk", (experiment_id,))
        return [child_from_row(r, cls) for r in rows]

    def _existing_child(self, cls: type[ChildT], experiment_id: str, child_id: str) -> ChildT:
        child = self._get_child(cls, experiment_id, child_id)
        if child is None:
            raise NotFound(f"Unable to find the specified {cls.kind}.")
        return child

    def _update_child(self, cls: type[ChildT], experiment_id: str, child_id: str, fields: dict,
                      xsi_type: str | None = None) -> ChildT:
        """Merge `fields` into the child's; a new `xsi_type` replaces its type (None keeps it)."""
        with self.transaction() as db:
            child = self._existing_child(cls, experiment_id, child_id)
            db.execute(f"UPDATE {_CHILD_TABLES[cls]} SET fields=?, xsi_type=? WHERE pk=?",
                       (json.dumps(merge_fields(child.fields, fields)), xsi_type or child.xsi_type, child.pk))
        return self._get_child(cls, experiment_id, child_id)  # type: ignore[return-value]

    def _delete_child(self, cls: type[ChildT], experiment_id: str, child_id: str) -> None:
        with self.transaction() as db:
            child = self._existing_child(cls, experiment_id, child_id)
            self._delete_resources_of(cls.kind, str(child.pk))
            db.execute(f"DELETE FROM {_CHILD_TABLES[cls]} WHERE pk=?", (child.pk,))
