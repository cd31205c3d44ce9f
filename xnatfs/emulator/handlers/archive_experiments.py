"""Experiments (sessions and other subject assessors): lists, one experiment, create/update/delete
(spec §10; SRC ProjSubExptList, ExperimentListResource, SubjAssessmentResource, ExperimentResource).

* ``/projects/{P}[/subjects/{S}]/experiments``: root ``xnat:subjectAssessorData`` (or ``xsiType=``);
  default columns ``ID, project, date, xsiType, label, insert_date, xnat:subjectassessordata/id`` +
  ``URI`` = ``/data/experiments/<ID>``; paging.
* ``/experiments``: root ``xnat:experimentData`` (image assessors included), title
  "Matching experiments"; ``subject_ID, subject_label`` (``session_ID, session_label``) added when
  ``xsiType`` names a subject (image) assessor type.
* ``PUT`` creates (``xsiType`` or an XML body needed, else 417 "Need PUT Contents"; a subject named
  in the path that does not exist is created with that label) → 201 + ID, or updates → 200 + ID.
* ``POST`` to a project/subject list with an XML body creates; 409 "Specified experiment already exists."
"""

from __future__ import annotations

from typing import Any

from werkzeug.routing import Rule
from werkzeug.wrappers import Response

from xnatfs.emulator import resolve
from xnatfs.emulator.app import Context, data_rules
from xnatfs.emulator.handlers.archive_common import (Submission, accession, check_label, document_fields, empty,
                                                     existing_project_id, listing)
from xnatfs.emulator.handlers.archive_fields import joins_subject, record, scan_join_types
from xnatfs.emulator.handlers.archive_render import experiment_item, object_response
from xnatfs.emulator.handlers.archive_subjects import readable
from xnatfs.emulator.items import schema
from xnatfs.emulator.responses import HTTPError
from xnatfs.emulator.store import Experiment, Store, Subject

BASE_COLUMNS = [("ID", "ID"), ("project", "project"), ("date", "date"), ("xsiType", "xsiType"),
                ("label", "label"), ("insert_date", "insert_date")]


def experiment_records(store: Store, experiments: list[Experiment], project: str | None = None, *,
                       subject_fields: bool = True) -> list[dict[str, Any]]:
    """Listing records with the read-only subject/session columns filled in (``subject_label`` as
    ``project`` names the subject, when given) and, with ``subject_fields``, the subject's own fields
    as ``subject:<path>``. The subjects and sessions are read by ID, those of these experiments only,
    not every subject of the site."""
    subjects = store.subjects_by_id(e.subject_id for e in experiments)
    sessions = store.experiments_by_id(e.session_id for e in experiments if e.session_id)
    records = []
    for exp in experiments:
        subject = subjects.get(exp.subject_id)
        extra: dict[str, Any] = {"subject_label": store.label_in(subject, project) if subject else "",
                                 "subject_project": subject.project if subject else ""}
        if exp.session_id:
            session = sessions.get(exp.session_id)
            extra.update(session_label=session.label if session else "",
                         session_project=session.project if session else "")
        if subject and subject_fields:
            extra.update({f"subject:{key}": value for key, value in record(subject).items()})
        records.append(record(exp, **extra))
    return records


def join_scans(store: Store, records: list[dict[str, Any]], scan_types: list[str]) -> list[dict[str, Any]]:
    """One row per scan of each session (of any of ``scan_types``), its fields under
    ``scan:<type>:<path>``; an experiment without such scans keeps one row (an outer join, so
    pyxnat's ``array.scans`` drops the rows whose scan ID is empty)."""
    if not scan_types:
        return records
    sch = schema()
    joined = []
    for rec in records:
        rows = []
        for scan in store.list_scans(rec["ID"]):
            types = [t for t in scan_types if sch.is_a(scan.xsi_type, t) or scan.xsi_type == t]
            if types:
                fields = record(scan)
                rows.append(dict(rec, **{f"scan:{t}:{k}": v for t in types for k, v in fields.items()}))
        joined.extend(rows or [rec])
    return joined


def _typed(experiments: list[Experiment], root: str) -> list[Experiment]:
    sch = schema()
    return [e for e in experiments if sch.is_a(e.xsi_type, root) or e.xsi_type == root]


def list_project_experiments(ctx: Context, project: str, subject: str | None = None) -> Response:
    """A project's sessions, those shared into it included under their label there (``project``
    stays the home project; ``subject_label`` is the subject's label in this project)."""
    project_id = resolve.project(ctx.store, project).id
    subject_id = resolve.subject(ctx.store, subject, project_id).id if subject is not None else None
    root = ctx.request.args.get("xsiType") or "xnat:subjectAssessorData"
    found = ctx.store.experiments_in(project_id, subject_id)
    labels = {e.id: here for e, here in found}
    experiments = _typed([e for e, _ in found], root)
    columns = BASE_COLUMNS + [(f"{root.lower()}/id", "ID")]
    records = experiment_records(ctx.store, experiments, project_id,
                                 subject_fields=joins_subject(ctx.request.args, root))
    for rec in records:
        rec["label"] = labels.get(rec["ID"], rec["label"])
    records = join_scans(ctx.store, records, scan_join_types(ctx.request.args, root))
    return listing(ctx, "experiment", records, columns, root,
                   lambda r: f"/data/experiments/{r['ID']}", paging=True)


def list_all_experiments(ctx: Context) -> Response:
    root = ctx.request.args.get("xsiType") or "xnat:experimentData"
    experiments = readable(ctx, _typed(ctx.store.list_experiments(assessors=True), root))
    columns = list(BASE_COLUMNS)
    if schema().is_a(root, "xnat:subjectAssessorData"):
        columns += [("subject_ID", "subject_ID"), ("subject_label", "subject_label")]
    if schema().is_a(root, "xnat:imageAssessorData"):
        columns += [("session_ID", "session_ID"), ("session_label", "session_label")]
    records = experiment_records(ctx.store, experiments, subject_fields=joins_subject(ctx.request.args, root))
    records = join_scans(ctx.store, records, scan_join_types(ctx.request.args, root))
    return listing(ctx, "experiment", records, columns, root,
                   lambda r: f"/data/experiments/{r['ID']}", meta={"title": "Matching experiments"}, paging=True)


def get_experiment(ctx: Context, experiment: str, project: str | None = None, subject: str | None = None) -> Response:
    found = resolve.experiment(ctx.store, experiment, project, subject)
    return object_response(ctx, experiment_item(ctx.store, found))


def delete_experiment(ctx: Context, experiment: str, project: str | None = None,
                      subject: str | None = None) -> Response:
    """Delete the experiment, or, from a project it is only shared into, the share (``deleteItem``)."""
    found = resolve.experiment(ctx.store, experiment, project, subject)
    if project is not None and found.project != project:
        ctx.store.unshare(found, project)
    else:
        ctx.store.delete_experiment(found.id)
    return empty()


def put_experiment(ctx: Context, experiment: str, project: str | None = None, subject: str | None = None) -> Response:
    store = ctx.store
    if project is not None:
        project = existing_project_id(store, project)
        existing = store.find_experiment(project, experiment)
    else:
        existing = store.get_experiment(experiment)
    submission = Submission(ctx, "experiment", None, existing.xsi_type if existing else None)
    if existing is not None:
        return update_experiment(ctx, existing, submission)
    if submission.xsi_type is None:
        raise HTTPError(417, "Need PUT Contents")
    owner = project or submission.fields.get("project")
    if not owner:
        raise HTTPError(422, "Submitted experiment record must include the project attribute.")
    if project is None:
        owner = existing_project_id(store, owner)
    submission.check_unchanged("project", owner, 409, "Project must be modified through separate URI.")
    submission.pop("ID")
    label = submission.pop("label") or experiment
    check_label(label)
    with store.transaction():  # a subject made for this experiment goes away if the experiment fails
        subject_row = _subject_for(ctx, owner, subject, submission.pop("subject_ID"))
        created = store.create_experiment(owner, subject_row.id, label, submission.xsi_type, submission.fields,
                                          user=ctx.user or "admin")
        _create_scans(ctx, created, submission)
    return accession(created.id, created=True)


def update_experiment(ctx: Context, existing: Experiment, submission: Submission) -> Response:
    """Shared by sessions and assessors: rename, or field update (200 + ID)."""
    if submission.rename is not None:
        if submission.rename != existing.label:
            check_label(submission.rename)
            ctx.store.update_experiment(existing.id, label=submission.rename)
        return empty()
    submission.check_identity(existing)
    subject_ref = submission.pop("subject_ID")
    if subject_ref and subject_ref != existing.subject_id:
        moved = ctx.store.find_subject(existing.project, subject_ref)
        if moved is None:
            raise HTTPError(404, f"Unable to identify subject {subject_ref}")
        submission.fields["subject_ID"] = moved.id
    if submission.fields:
        ctx.store.update_experiment(existing.id, submission.fields)
    return accession(existing.id, created=False)


def post_experiment(ctx: Context, project: str, subject: str | None = None) -> Response:
    submission = Submission(ctx, "experiment", None)
    if submission.document is None:
        raise HTTPError(417, "Need POST Contents")
    project_id = existing_project_id(ctx.store, project)
    label = submission.fields.get("label") or submission.fields.get("ID") or ""
    if label and ctx.store.find_experiment(project_id, label) is not None:
        raise HTTPError(409, "Specified experiment already exists.")
    submission.pop("ID")
    submission.pop("project")
    submission.pop("label")
    check_label(label)
    with ctx.store.transaction():
        subject_row = _subject_for(ctx, project_id, subject, submission.pop("subject_ID"))
        created = ctx.store.create_experiment(project_id, subject_row.id, label, submission.xsi_type or "",
                                              submission.fields, user=ctx.user or "admin")
        _create_scans(ctx, created, submission)
    url = f"{ctx.request.base_url.rstrip('/')}/{created.id}"
    return Response(url, mimetype="text/plain", headers={"Location": url})


def _subject_for(ctx: Context, project: str, path_subject: str | None, field_subject: str | None) -> Subject:
    """The experiment's subject: from the path (created with that label when missing, as the docs
    say) or from ``subject_ID``; 422 when neither names one."""
    store = ctx.store
    if path_subject is not None:
        return store.find_subject(project, path_subject) or store.create_subject(
            project, path_subject, user=ctx.user or "admin")
    if not field_subject:
        raise HTTPError(422, "Submitted experiment record must include the subject.")
    found = store.find_subject(project, field_subject) or store.get_subject(field_subject)
    if found is None:
        raise HTTPError(404, f"Unable to identify subject {field_subject}")
    return found


def _create_scans(ctx: Context, session: Experiment, submission: Submission) -> None:
    """Scans carried by a session XML document."""
    for scan_doc in (submission.document.children.get("scans/scan", []) if submission.document else []):
        fields = document_fields(scan_doc, "scan")
        scan_id = str(fields.pop("ID", "") or "")
        if scan_id:
            fields.pop("image_session_ID", None)
            ctx.store.create_scan(session.id, scan_id, scan_doc.xsi_type, fields)


def routes() -> list[Rule]:
    rules = [
        *data_rules("/projects/<project>/experiments", list_project_experiments, ["GET"]),
        *data_rules("/projects/<project>/subjects/<subject>/experiments", list_project_experiments, ["GET"]),
        *data_rules("/projects/<project>/experiments", post_experiment, ["POST"]),
        *data_rules("/projects/<project>/subjects/<subject>/experiments", post_experiment, ["POST"]),
        *data_rules("/experiments", list_all_experiments, ["GET"]),
    ]
    for path in resolve.EXPERIMENT_PATHS:
        for view, method in ((get_experiment, "GET"), (put_experiment, "PUT"), (delete_experiment, "DELETE")):
            rules += data_rules(path, view, [method])
    return rules
