"""Who may see and change what: project accessibility, project roles and the guest user.

XNAT's model (``Permissions``, the project groups, ``ProjectAccessibilityResource``):

* a project is ``private``, ``protected`` or ``public``; a user is its ``owner``, ``member`` or
  ``collaborator`` (or nothing); site administrators may do everything;
* **listed** (``/data/projects``, the project document, its accessibility): public and protected
  projects to every logged-in user, public ones to the guest, private ones to their users only;
* **read** (subjects, experiments, scans, resources, files): users with a role, and everybody for a
  public project; a protected project's data is refused with 403;
* **edit** (create, update, upload, delete files): owners and members; **delete** a subject or an
  experiment, change accessibility or roles: owners.

A private project a user may not list is invisible: 404 with ProjectResource's text, as when it does
not exist. :func:`check_route` applies this to every archive route before its view runs, from the
route's URL variables, with one or two small queries; listings filter their rows with
:class:`Viewer`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from xnatfs.emulator.responses import HTTPError
from xnatfs.emulator.store import Experiment, Project, Store, Subject

if TYPE_CHECKING:  # the app imports this module
    from xnatfs.emulator.app import Context

LEVELS = ("private", "protected", "public")
DEFAULT_LEVEL = "protected"
GUEST = "guest"
#: ProjectResource's 404 text (it really says "experiment"); also what an invisible project gets.
PROJECT_NOT_FOUND = "Unable to find the specified experiment."

_PREFIX = re.compile(r"^/(?:data|REST)(?:/archive)?")
#: Rules under a project that concern the project itself, not its data (visible to whoever lists it).
_PROJECT_LEVEL = re.compile(r"^/projects/<project>(?:/(?:accessibility|users|<any\([^)]*\):setting>)(?:/.*)?)?$")
#: Rules whose DELETE removes a subject or an experiment (owners only), not a file or a scan.
_ITEM_DELETE = re.compile(r"/(?:subjects/<subject>|experiments/<experiment>)$")
#: Sharing routes (``…/projects/<dest>``, ``…/projects``): see handlers/archive_sharing.py.
_SHARING = re.compile(r"/(?:subjects/<subject>|experiments/<experiment>)/projects(?:/<dest>)?$")


def accessibility(project: Project) -> str:
    """``private``/``protected``/``public``; a project created without one is ``protected``."""
    level = (project.fields.get("settings") or {}).get("accessibility")
    return level if level in LEVELS else DEFAULT_LEVEL


@dataclass
class Viewer:
    """One user's view of the site: role lookups for many projects with one query."""

    user: str | None
    admin: bool
    roles: dict[str, str]

    @classmethod
    def of(cls, ctx: "Context") -> "Viewer":
        user = ctx.user
        roles = ctx.store.roles_of_user(user) if user and not ctx.is_admin and user != GUEST else {}
        return cls(user, ctx.is_admin, roles)

    @property
    def guest(self) -> bool:
        return self.user == GUEST

    def role(self, project: Project) -> str | None:
        return "admin" if self.admin else self.roles.get(project.id)

    def can_list(self, project: Project) -> bool:
        level = accessibility(project)
        if self.admin or self.role(project) or level == "public":
            return True
        return level == "protected" and not self.guest

    def can_read(self, project: Project) -> bool:
        return bool(self.role(project)) or accessibility(project) == "public"

    def can_edit(self, project: Project) -> bool:
        return self.role(project) in ("admin", "owner", "member")

    def can_delete(self, project: Project) -> bool:
        return self.role(project) in ("admin", "owner")

    def can_read_item(self, store: Store, item: Subject | Experiment) -> bool:
        """Readable through its home project or any project it is shared into."""
        for project_id in store.projects_of(item):
            project = store.get_project(project_id)
            if project is not None and self.can_read(project):
                return True
        return False


def visible_project(ctx: "Context", project_id: str) -> Project:
    """The project if this user may list it; 404 as if it did not exist otherwise."""
    project = ctx.store.get_project(project_id)
    if project is None or not Viewer.of(ctx).can_list(project):
        raise HTTPError(404, PROJECT_NOT_FOUND)
    return project


def require(ctx: "Context", project: Project, action: str) -> None:
    """403 unless this user may ``action`` (read, edit, delete) the project's data."""
    viewer = Viewer.of(ctx)
    if not viewer.can_list(project):
        raise HTTPError(404, PROJECT_NOT_FOUND)
    allowed = {"read": viewer.can_read, "edit": viewer.can_edit, "delete": viewer.can_delete}[action](project)
    if not allowed:
        raise HTTPError(403, forbidden_text(ctx, project, action))


def forbidden_text(ctx: "Context", project: Project, action: str) -> str:
    who = "The guest user" if ctx.is_guest else f"User {ctx.user}"
    verb = {"read": "read", "edit": "modify", "delete": "delete"}[action]
    return f"{who} does not have permission to {verb} data in project {project.id}."


def check_route(ctx: "Context", rule: str, values: dict[str, Any]) -> None:
    """Refuse an archive request the user may not make (see the module docstring); requests for
    objects that do not exist pass, so the view answers its own 404."""
    if ctx.is_admin or ctx.user is None:
        return
    path = _PREFIX.sub("", rule)
    method = ctx.request.method
    action = "read" if method in ("GET", "HEAD") else "edit"
    if method == "DELETE" and _ITEM_DELETE.search(path):
        action = "delete"
    if _SHARING.search(path):
        action = "read"  # sharing needs read here; the view checks the destination project
    store = ctx.store
    if path.startswith("/projects/<project>"):
        project = store.get_project(values["project"])
        if project is None:
            return
        if _PROJECT_LEVEL.match(path):
            if not Viewer.of(ctx).can_list(project):
                raise HTTPError(404, PROJECT_NOT_FOUND)
            return  # the project's own views check edits (owners)
        require(ctx, project, action)
    elif path.startswith("/subjects/<subject>"):
        _check_item(ctx, store.get_subject(values["subject"]), action)
    elif path.startswith("/experiments/<experiment>"):
        _check_item(ctx, store.get_experiment(values["experiment"]), action)


def _check_item(ctx: "Context", item: Subject | Experiment | None, action: str) -> None:
    """An object named by accession ID alone: read through any of its projects, change at home."""
    if item is None:
        return
    store = ctx.store
    viewer = Viewer.of(ctx)
    if action == "read":
        if not viewer.can_read_item(store, item):
            home = store.get_project(item.project)
            holders = [store.get_project(pid) for pid in store.projects_of(item)]
            listable = [p for p in holders if p is not None and viewer.can_list(p)]
            if home is not None and not listable:
                raise HTTPError(404, "Unable to find the specified experiment." if item.kind == "experiment"
                                else "Unable to find the specified subject.")
            raise HTTPError(403, forbidden_text(ctx, home, "read") if home else "Access denied.")
        return
    home = store.get_project(item.project)
    if home is not None:
        require(ctx, home, action)
