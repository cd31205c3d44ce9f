"""A project's users and their roles (SRC ProjectUserListResource, ProjectMemberResource).

* ``GET /projects/{P}/users`` → ResultSet ``GROUP_ID, displayname, login, firstname, lastname,
  email`` (title "Projects", sic; ``totalRecords``), owners first as XNAT's ``ORDER BY g.id DESC``
  does; site administrators, owners and members only, else 403 "Access Denied: Only project owners
  and site managers can access user resources."
* ``PUT|DELETE /projects/{P}/users/{GROUP}/{USER}`` → add to / remove from the group; ``GROUP`` is
  the group ID (``P_owner``), the role (``owner``) or the display name (``Owners``), anything else
  404; ``USER`` a login, a numeric user ID or a comma list. Owners and administrators only (403).
  The answer is the user table, as ``returnDefaultRepresentation`` gives; unknown users are skipped
  (XNAT e-mails them an invitation); the guest user → 412.
"""

from __future__ import annotations

from werkzeug.routing import Rule
from werkzeug.wrappers import Response

from xnatfs.emulator.access import GUEST, Viewer, visible_project
from xnatfs.emulator.app import Context, data_rules
from xnatfs.emulator.responses import HTTPError, result_set
from xnatfs.emulator.store import ROLES, Project

COLUMNS = ["GROUP_ID", "displayname", "login", "firstname", "lastname", "email"]


def group_role(project: Project, group: str) -> str:
    """The role a ``{GROUP}`` segment names (``findGroup``: ID, ``P_`` + ID, or display name)."""
    for role, display in ROLES.items():
        if group in (f"{project.id}_{role}", role, display):
            return role
    raise HTTPError(404, f"{project.id}: {group}")


def user_table(ctx: Context, project: Project) -> Response:
    users = sorted(ctx.app.config.users)
    rows = [{"GROUP_ID": f"{project.id}_{role}", "displayname": ROLES[role], "login": login, "firstname": login,
             "lastname": login, "email": f"{login}@localhost"}
            for login, role in ctx.store.project_roles(project.id)]
    rows.sort(key=lambda r: r["GROUP_ID"], reverse=True)
    rows = [r for r in rows if r["login"] in users]
    return result_set(ctx.request, rows, COLUMNS, meta={"title": "Projects"})


def list_users(ctx: Context, project: str) -> Response:
    found = visible_project(ctx, project)
    if not Viewer.of(ctx).can_edit(found):
        raise HTTPError(403, "Access Denied: Only project owners and site managers can access user resources.")
    return user_table(ctx, found)


def change_member(ctx: Context, project: str, group: str, user: str) -> Response:
    found = visible_project(ctx, project)
    role = group_role(found, group)
    if not Viewer.of(ctx).can_delete(found):
        raise HTTPError(403, "Forbidden")
    known = ctx.app.config.users
    for login in (u.strip() for u in user.split(",")):
        if login == GUEST:
            raise HTTPError(412, "Precondition Failed")
        login = _login_of(known, login)
        if login is None:
            continue
        if ctx.request.method == "PUT":
            ctx.store.set_role(found.id, login, role)
        else:
            ctx.store.remove_role(found.id, login, role)
    return user_table(ctx, found)


def _login_of(known: dict[str, str], user: str) -> str | None:
    """A login, or the 1-based ``xdat_user_id`` that ``/data/users`` lists for it."""
    if user in known:
        return user
    logins = sorted(known)
    if user.isdigit() and 0 < int(user) <= len(logins):
        return logins[int(user) - 1]
    return None


def routes() -> list[Rule]:
    return [
        *data_rules("/projects/<project>/users", list_users, ["GET"]),
        *data_rules("/projects/<project>/users/<group>/<user>", change_member, ["PUT", "DELETE"]),
    ]
