"""Projects: ``/data/projects`` and ``/data/projects/{ID}`` (spec §8; SRC ProjectListResource, ProjectResource).

* ``GET /projects``: default columns ``ID, secondary_ID, name, description, pi_firstname,
  pi_lastname`` + ``URI`` (``/data/projects/<ID>``), meta ``totalRecords``.
* ``PUT /projects/{ID}``: create (site administrators only; ID of letters, digits, ``_`` and ``-``)
  or update from query fields and/or an XML body; 200 with an empty body.
* ``POST /projects``: create from an XML body; 409 "Project already exists."; 200 with ``Location``.
* ``DELETE /projects/{ID}[?removeFiles=true]``: 200, empty.
* ``?accessibility=public|protected|private`` on a PUT sets the access level (archive_project_settings).
"""

from __future__ import annotations

from werkzeug.routing import Rule
from werkzeug.wrappers import Response

from xnatfs.emulator import resolve
from xnatfs.emulator.access import Viewer
from xnatfs.emulator.app import Context, data_rules
from xnatfs.emulator.handlers.archive_common import VALID_LABEL, Submission, empty, listing
from xnatfs.emulator.handlers.archive_fields import record
from xnatfs.emulator.handlers.archive_project_settings import accessibility_param, save
from xnatfs.emulator.handlers.archive_render import object_response, project_item, site_url
from xnatfs.emulator.responses import HTTPError

PROJECT_TYPE = "xnat:projectData"
DEFAULT_COLUMNS = [("ID", "ID"), ("secondary_ID", "secondary_ID"), ("name", "name"),
                   ("description", "description"), ("pi_firstname", "PI/firstname"),
                   ("pi_lastname", "PI/lastname")]


def list_projects(ctx: Context) -> Response:
    """Projects this user may list: public and protected ones, and private ones they have a role in
    (a guest: public ones only)."""
    viewer = Viewer.of(ctx)
    records = [record(p) for p in ctx.store.list_projects() if viewer.can_list(p)]
    return listing(ctx, "project", records, DEFAULT_COLUMNS, PROJECT_TYPE, lambda r: f"/data/projects/{r['ID']}")


def get_project(ctx: Context, project: str) -> Response:
    return object_response(ctx, project_item(ctx.store, resolve.project(ctx.store, project)))


def put_project(ctx: Context, project: str) -> Response:
    submission = Submission(ctx, "project", PROJECT_TYPE)
    existing = ctx.store.get_project(project)
    if existing is None:
        _create(ctx, project, submission)
    else:
        if not Viewer.of(ctx).can_delete(existing):  # canEditProject: the project's owners
            raise HTTPError(403, f"User {ctx.user} doesn't have permission to edit the project {existing.id}")
        submission.check_unchanged("ID", existing.id, 400, "ID cannot be modified")
        _check_conflicts(ctx, existing.id, submission.fields)
        access = accessibility_param(ctx.request.args.get("accessibility"))
        ctx.store.update_project(existing.id, submission.fields)
        if access:
            save(ctx.store, ctx.store.get_project(existing.id), **access)
    return empty()


def post_project(ctx: Context) -> Response:
    submission = Submission(ctx, "project", PROJECT_TYPE)
    if submission.document is None:
        raise HTTPError(417, "Need POST Contents")
    project_id = submission.fields.get("ID") or ""
    if ctx.store.get_project(project_id) is not None:
        raise HTTPError(409, "Project already exists.")
    _create(ctx, project_id, submission)
    url = f"{site_url(ctx.request, ctx.app.config.site_url)}/data/projects/{project_id}"
    return Response(url, mimetype="text/plain", headers={"Location": url})


def delete_project(ctx: Context, project: str) -> Response:
    found = resolve.project(ctx.store, project)
    if ctx.is_guest or not Viewer.of(ctx).can_delete(found):
        raise HTTPError(403, "User account doesn't have permission to delete this project.")
    ctx.store.delete_project(found.id)
    return empty()


def _create(ctx: Context, project_id: str, submission: Submission) -> None:
    if not ctx.is_admin:
        raise HTTPError(403, "Only site administrators can create projects.")
    if not VALID_LABEL.match(project_id):
        raise HTTPError(417, "Invalid character in project ID.")
    fields = submission.fields
    body_id = fields.pop("ID", None)
    if body_id not in (None, "", project_id):
        raise HTTPError(417, f"Project ID in the document ({body_id}) does not match the URL ({project_id}).")
    _check_conflicts(ctx, project_id, fields)
    fields.pop("settings", None)
    access = accessibility_param(ctx.request.args.get("accessibility"))
    if access:
        fields["settings"] = access
    secondary_id = fields.pop("secondary_ID", None) or fields.pop("secondary_id", None)
    ctx.store.create_project(project_id, name=fields.pop("name", None), secondary_id=secondary_id,
                             description=fields.pop("description", "") or "", fields=fields,
                             user=ctx.user or "admin")
    ctx.store.set_role(project_id, ctx.user or "admin", "owner")  # the creator owns the project


def _check_conflicts(ctx: Context, project_id: str, fields: dict) -> None:
    """ID, secondary_ID and name must each be unique across projects (SRC ProjectResource)."""
    wanted = {v for k, v in fields.items() if k in ("name", "secondary_ID", "secondary_id") and v}
    wanted.add(project_id)
    clashes = [p.id for p in ctx.store.list_projects() if p.id != project_id
               and wanted & {p.id, p.name, p.secondary_id}]
    if clashes:
        raise HTTPError(409, f"Requested new project conflicts with existing projects: {', '.join(clashes)}")


def routes() -> list[Rule]:
    return [
        *data_rules("/projects", list_projects, ["GET"]),
        *data_rules("/projects", post_project, ["POST"]),
        *data_rules("/projects/<project>", get_project, ["GET"]),
        *data_rules("/projects/<project>", put_project, ["PUT"]),
        *data_rules("/projects/<project>", delete_project, ["DELETE"]),
    ]
