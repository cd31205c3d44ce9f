"""Subjects: ``/data/projects/{P}/subjects[/{S}]`` and ``/data/subjects[/{ID}]`` (spec §9; SRC
ProjectSubjectList, SubjectListResource, SubjectResource).

* Lists: default columns ``ID, project, label, insert_date, insert_user`` + ``URI`` =
  ``/data/subjects/<ID>``; ``limit``/``offset`` paging (``totalRecords`` omitted once paged).
  Columns naming the subject's resources (``xnat:subjectData/resources/resource/label`` …) join them
  as XNAT's QueryOrganizer joins a multi-valued path: one row per resource, and one row with those
  columns empty for a subject without resources (:func:`join_resources`).
* ``PUT``: ``{S}`` is an accession ID or a label in ``{P}``; a new subject gets ``{S}`` (or
  ``label=``/``xnat:subjectData/label=``) as its label → 201 with the new ID; an update → 200 with
  the ID; ``?label=NEW`` on an existing subject renames it (200, empty, nothing else saved).
* ``DELETE``: 200, empty.
"""

from __future__ import annotations

from werkzeug.routing import Rule
from werkzeug.wrappers import Response

from xnatfs.emulator import resolve
from xnatfs.emulator.access import Viewer
from xnatfs.emulator.app import Context, data_rules
from xnatfs.emulator.handlers.archive_common import Submission, accession, empty, existing_project_id, listing
from xnatfs.emulator.handlers.archive_fields import path_of, record
from xnatfs.emulator.handlers.archive_render import object_response, subject_item
from xnatfs.emulator.responses import HTTPError
from xnatfs.emulator.store import Store, Subject

SUBJECT_TYPE = "xnat:subjectData"
DEFAULT_COLUMNS = [("ID", "ID"), ("project", "project"), ("label", "label"), ("insert_date", "insert_date"),
                   ("insert_user", "insert_user")]
#: the record paths of a subject's resources in a listing (``xnat:subjectData/resources/resource/<name>``)
RESOURCE_PATH = "resources/resource/"


def list_subjects(ctx: Context, project: str | None = None) -> Response:
    """A project's subjects, those shared into it included under their label there (their
    ``project`` column stays the home project, as ProjectSubjectList prints it); ``/subjects``: every
    subject this user may read."""
    if project is not None:
        project = resolve.project(ctx.store, project).id
        records = [record(s, label=here) for s, here in ctx.store.subjects_in(project)]
    else:
        records = [record(s) for s in readable(ctx, ctx.store.list_subjects())]
    if _names_resources(ctx.request.args.get("columns") or ""):
        records = join_resources(ctx.store, records)
    return listing(ctx, "subject", records, DEFAULT_COLUMNS, SUBJECT_TYPE,
                   lambda r: f"/data/subjects/{r['ID']}", paging=True)


def _names_resources(columns: str) -> bool:
    return any((path_of("subject", name.strip(), SUBJECT_TYPE) or "").startswith(RESOURCE_PATH)
               for name in columns.split(","))


def join_resources(store: Store, records: list[dict]) -> list[dict]:
    """One row per resource of each subject, its fields under ``resources/resource/<name>``; a subject
    without resources keeps one row (an outer join)."""
    by_subject = store.resources_of_subjects([rec["ID"] for rec in records])
    joined = []
    for rec in records:
        rows = []
        for res, count, size in by_subject.get(rec["ID"], ()):
            fields = {"xnat_abstractresource_id": res.id, "label": res.label, "format": res.format,
                      "content": res.content, "description": res.description, "file_count": count,
                      "file_size": size}
            rows.append(dict(rec, **{RESOURCE_PATH + name: value for name, value in fields.items()}))
        joined.extend(rows or [rec])
    return joined


def get_subject(ctx: Context, subject: str, project: str | None = None) -> Response:
    return object_response(ctx, subject_item(ctx.store, resolve.subject(ctx.store, subject, project)))


def put_subject(ctx: Context, subject: str, project: str | None = None) -> Response:
    submission = Submission(ctx, "subject", SUBJECT_TYPE)
    if project is not None:
        project = existing_project_id(ctx.store, project)
        existing = ctx.store.find_subject(project, subject)
    else:
        existing = ctx.store.get_subject(subject)
    if existing is not None:
        return _update(ctx, existing, submission)
    owner = project or submission.fields.get("project")
    if not owner:
        raise HTTPError(422, "Submitted subject record must include the project attribute.")
    if project is not None:
        submission.check_unchanged("project", project, 409, "Project must be modified through separate URI.")
    else:
        submission.pop("project")
        existing_project_id(ctx.store, owner)
    submission.pop("ID")
    label = submission.pop("label") or subject
    created = ctx.store.create_subject(owner, label, submission.fields, user=ctx.user or "admin")
    return accession(created.id, created=True)


def _update(ctx: Context, existing: Subject, submission: Submission) -> Response:
    if submission.rename is not None:
        if submission.rename != existing.label:
            ctx.store.update_subject(existing.id, label=submission.rename)
        return empty()
    submission.check_identity(existing)
    if submission.fields:
        ctx.store.update_subject(existing.id, submission.fields)
    return accession(existing.id, created=False)


def delete_subject(ctx: Context, subject: str, project: str | None = None) -> Response:
    """Delete the subject, or, from a project it is only shared into, the share (``deleteItem``)."""
    found = resolve.subject(ctx.store, subject, project)
    if project is not None and found.project != project:
        ctx.store.unshare(found, project)
    else:
        ctx.store.delete_subject(found.id)
    return empty()


def readable(ctx: Context, items: list) -> list:
    """The subjects or experiments this user may read (through their home or a shared project)."""
    if ctx.is_admin:
        return items
    viewer = Viewer.of(ctx)
    projects = {p.id: viewer.can_read(p) for p in ctx.store.list_projects()}
    shared: dict[str, set[str]] = {}
    kind = items[0].kind if items else "subject"
    for row in ctx.store.query("SELECT item_id, project FROM shares WHERE kind=?", (kind,)):
        shared.setdefault(row[0], set()).add(row[1])
    return [i for i in items if projects.get(i.project) or any(projects.get(p) for p in shared.get(i.id, ()))]


def routes() -> list[Rule]:
    return [
        *data_rules("/projects/<project>/subjects", list_subjects, ["GET"]),
        *data_rules("/subjects", list_subjects, ["GET"]),
        *[rule for path in resolve.SUBJECT_PATHS for view, method in (
            (get_subject, "GET"), (put_subject, "PUT"), (delete_subject, "DELETE"))
          for rule in data_rules(path, view, [method])],
    ]
