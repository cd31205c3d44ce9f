"""The store's sharing and project roles: which projects a subject or experiment is shared into (under
which label), and who is an owner, member or collaborator of a project.

XNAT keeps a share as a child row of the shared item (``xnat:projectParticipant`` for subjects,
``xnat:experimentData_share`` for experiments: project + label) and a role as membership of one of
the project's three groups (``<P>_owner``, ``<P>_member``, ``<P>_collaborator``). Here both are
small tables (``shares``, ``project_users``) next to the archive's; the shared item keeps its home
project and label, and each share may give it another label in the destination project.
"""

from __future__ import annotations

from dataclasses import dataclass

from xnatfs.emulator.store_archive import ArchiveRecords
from xnatfs.emulator.store_rows import (Conflict, Experiment, NotFound, Subject, experiment_from_row,
                                        subject_from_row)

#: Role name → (group ID suffix, group display name), as XNAT names a project's groups.
ROLES = {"owner": "Owners", "member": "Members", "collaborator": "Collaborators"}


@dataclass(frozen=True)
class Share:
    kind: str        # "subject" | "experiment"
    item_id: str     # the accession ID of the shared item
    project: str     # the destination project
    label: str | None  # its label there (None: the item's own label)


class SharedRecords(ArchiveRecords):
    """Shares of subjects/experiments into other projects, and project roles."""

    # ---- sharing --------------------------------------------------------------------------------
    def share(self, item: Subject | Experiment, project: str, label: str | None) -> None:
        """Share ``item`` into ``project`` (409 when it lives or is shared there, or the label is taken)."""
        kind = item.kind
        table = "subjects" if kind == "subject" else "experiments"
        with self.transaction() as db:
            if self.get_project(project) is None:
                raise NotFound(f"Unable to identify project: {project}")
            if item.project == project or self._one(
                    "SELECT 1 FROM shares WHERE kind=? AND item_id=? AND project=?", (kind, item.id, project)):
                raise Conflict(f"Already assigned to project:{project}")
            wanted = label or item.label
            if self._one(f"SELECT 1 FROM {table} WHERE project=? AND label=?", (project, wanted)) or self._one(
                    "SELECT 1 FROM shares WHERE kind=? AND project=? AND label=?", (kind, project, wanted)):
                raise Conflict(f"Label already in use:{wanted}")
            db.execute("INSERT INTO shares VALUES (?,?,?,?)", (kind, item.id, project, label or None))

    def relabel_share(self, item: Subject | Experiment, project: str, label: str) -> None:
        with self.transaction() as db:
            db.execute("UPDATE shares SET label=? WHERE kind=? AND item_id=? AND project=?",
                       (label, item.kind, item.id, project))

    def unshare(self, item: Subject | Experiment, project: str) -> bool:
        """Remove the share of ``item`` into ``project`` (and, for a subject, of its experiments there)."""
        with self.transaction() as db:
            cur = db.execute("DELETE FROM shares WHERE kind=? AND item_id=? AND project=?",
                             (item.kind, item.id, project))
            if item.kind == "subject":
                db.execute("DELETE FROM shares WHERE kind='experiment' AND project=? AND item_id IN "
                           "(SELECT id FROM experiments WHERE subject_id=?)", (project, item.id))
            return cur.rowcount > 0

    def shares_of(self, item: Subject | Experiment) -> list[Share]:
        rows = self.query("SELECT * FROM shares WHERE kind=? AND item_id=? ORDER BY project", (item.kind, item.id))
        return [Share(r["kind"], r["item_id"], r["project"], r["label"]) for r in rows]

    def share_in(self, item: Subject | Experiment, project: str) -> Share | None:
        row = self._one("SELECT * FROM shares WHERE kind=? AND item_id=? AND project=?", (item.kind, item.id, project))
        return Share(row["kind"], row["item_id"], row["project"], row["label"]) if row else None

    def projects_of(self, item: Subject | Experiment) -> list[str]:
        """The home project first, then the projects it is shared into."""
        return [item.project] + [s.project for s in self.shares_of(item)]

    def label_in(self, item: Subject | Experiment, project: str | None) -> str:
        """The item's label as ``project`` sees it (its own label at home or without a share label)."""
        if project is None or project == item.project:
            return item.label
        found = self.share_in(item, project)
        return (found.label if found and found.label else item.label)

    def subjects_in(self, project: str) -> list[tuple[Subject, str]]:
        """Subjects owned by or shared into ``project``, each with its label there (listing order: ID)."""
        rows = self.query(
            "SELECT s.*, s.label AS here FROM subjects s WHERE s.project=? UNION ALL "
            "SELECT s.*, COALESCE(h.label, s.label) AS here FROM subjects s JOIN shares h "
            "ON h.kind='subject' AND h.item_id=s.id WHERE h.project=? ORDER BY id", (project, project))
        return [(subject_from_row(r), r["here"]) for r in rows]

    def experiments_in(self, project: str, subject_id: str | None = None) -> list[tuple[Experiment, str]]:
        """Sessions (not image assessors) owned by or shared into ``project``, with their label there."""
        extra, args = ("", []) if subject_id is None else (" AND e.subject_id=?", [subject_id])
        rows = self.query(
            "SELECT e.*, e.label AS here FROM experiments e WHERE e.project=? AND e.session_id IS NULL" + extra
            + " UNION ALL SELECT e.*, COALESCE(h.label, e.label) AS here FROM experiments e JOIN shares h "
            "ON h.kind='experiment' AND h.item_id=e.id WHERE h.project=? AND e.session_id IS NULL" + extra
            + " ORDER BY id", [project, *args, project, *args])
        return [(experiment_from_row(r), r["here"]) for r in rows]

    # ---- project roles --------------------------------------------------------------------------
    def set_role(self, project: str, login: str, role: str) -> None:
        """Make ``login`` an owner, member or collaborator of ``project`` (one role per user)."""
        if role not in ROLES:
            raise ValueError(f"unknown role {role!r}")
        with self.transaction() as db:
            db.execute("INSERT OR REPLACE INTO project_users VALUES (?,?,?)", (project, login, role))

    def remove_role(self, project: str, login: str, role: str | None = None) -> None:
        with self.transaction() as db:
            if role is None:
                db.execute("DELETE FROM project_users WHERE project=? AND login=?", (project, login))
            else:
                db.execute("DELETE FROM project_users WHERE project=? AND login=? AND role=?", (project, login, role))

    def role_of(self, project: str, login: str) -> str | None:
        row = self._one("SELECT role FROM project_users WHERE project=? AND login=?", (project, login))
        return row[0] if row else None

    def roles_of_user(self, login: str) -> dict[str, str]:
        """{project: role} for one user: what a listing needs in one query."""
        return {r[0]: r[1] for r in self.query("SELECT project, role FROM project_users WHERE login=?", (login,))}

    def project_roles(self, project: str) -> list[tuple[str, str]]:
        return [(r[0], r[1]) for r in self.query(
            "SELECT login, role FROM project_users WHERE project=? ORDER BY role DESC, login", (project,))]
