"""Sharing subjects and experiments into other projects (SRC SubjectResource, SubjAssessmentResource,
ExperimentResource: the ``projects/{DEST}`` remaining path).

* ``PUT <subject or experiment>/projects/{DEST}[?label=L]`` → shared into ``DEST`` under ``L`` (its
  own label when omitted); the answer is the item's document (``returnDefaultRepresentation``).
  Again with another ``label=`` relabels the share. 404 "Unable to identify project: DEST";
  409 "Already assigned to project:DEST" (its home, or shared there already with that label);
  409 "Label already in use:L"; 403 without the right to create in ``DEST``. ``primary=true``
  (moving the item) is not emulated: 501.
* ``DELETE <…>/projects/{DEST}`` → the share removed (``deleteItem`` with the project from the
  path), as ``DELETE /projects/DEST/subjects/L`` also does; 404 when it is not shared there.
* ``GET <…>/projects`` → the projects holding the item: ``label, ID, Secondary_ID, Name``
  (``representProjectsForArchivableItem``), home first.

A subject's shares do not share its experiments: each is shared on its own, and listings of
``DEST`` show only what was shared into it.
"""

from __future__ import annotations

from werkzeug.routing import Rule
from werkzeug.wrappers import Response

from xnatfs.emulator import resolve
from xnatfs.emulator.access import Viewer, require
from xnatfs.emulator.app import Context, data_rules
from xnatfs.emulator.handlers.archive_render import experiment_item, object_response, subject_item
from xnatfs.emulator.responses import HTTPError, result_set
from xnatfs.emulator.store import Experiment, Subject


def _item(ctx: Context, values: dict[str, str]) -> Subject | Experiment:
    project = values.get("project")
    if "experiment" in values:
        return resolve.experiment(ctx.store, values["experiment"], project, values.get("subject"))
    return resolve.subject(ctx.store, values["subject"], project)


def _destination(ctx: Context, dest: str):  # type: ignore[no-untyped-def]
    found = ctx.store.get_project(dest)
    if found is None or not Viewer.of(ctx).can_list(found):
        raise HTTPError(404, f"Unable to identify project: {dest}")
    return found


def share(ctx: Context, dest: str, **values: str) -> Response:
    item = _item(ctx, values)
    if ctx.request.args.get("primary", "").lower() == "true":
        raise HTTPError(501, "Changing the primary project is not emulated.")
    project = _destination(ctx, dest)
    kind = "experiments" if item.kind == "experiment" else "subjects"
    if not Viewer.of(ctx).can_edit(project):
        raise HTTPError(403, f"Specified user account has insufficient create privileges for {kind} in the "
                             f"{project.id} project.")
    label = ctx.request.args.get("label") or None
    existing = ctx.store.share_in(item, project.id)
    if existing is not None and label is not None and label != (existing.label or item.label):
        if ctx.store.find_subject(project.id, label) if item.kind == "subject" else \
                ctx.store.find_experiment(project.id, label):
            raise HTTPError(409, f"Label already in use:{label}")
        ctx.store.relabel_share(item, project.id, label)
    else:
        ctx.store.share(item, project.id, label)  # 404/409 from the store
    render = experiment_item if isinstance(item, Experiment) else subject_item
    return object_response(ctx, render(ctx.store, item))  # type: ignore[arg-type]


def unshare(ctx: Context, dest: str, **values: str) -> Response:
    item = _item(ctx, values)
    project = _destination(ctx, dest)
    if project.id == item.project:
        raise HTTPError(400, f"{project.id} is the home project; delete the item instead.")
    require(ctx, project, "delete")
    if not ctx.store.unshare(item, project.id):
        raise HTTPError(404, f"Not shared into project: {project.id}")
    return Response("", mimetype="text/plain")


def projects_of(ctx: Context, **values: str) -> Response:
    item = _item(ctx, values)
    rows = []
    for project_id in ctx.store.projects_of(item):
        project = ctx.store.get_project(project_id)
        if project is not None:
            rows.append({"label": ctx.store.label_in(item, project_id), "ID": project.id,
                         "Secondary_ID": project.secondary_id, "Name": project.name})
    return result_set(ctx.request, rows, ["label", "ID", "Secondary_ID", "Name"], meta={"title": "Projects"})


def routes() -> list[Rule]:
    rules: list[Rule] = []
    for path in (*resolve.SUBJECT_PATHS, *resolve.EXPERIMENT_PATHS):
        rules += data_rules(f"{path}/projects/<dest>", share, ["PUT"])
        rules += data_rules(f"{path}/projects/<dest>", unshare, ["DELETE"])
        rules += data_rules(f"{path}/projects", projects_of, ["GET"])
    return rules
