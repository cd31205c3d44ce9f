"""Project settings reached by path: accessibility, prearchive and quarantine codes, current arc
(spec §8.2–8.3; SRC ProjectResource ``filepath`` branches, ProjectAccessibilityResource). pyxnat's
``Project.accessibility()``, ``prearchive_code()``, ``quarantine_code()``, ``current_arc()`` and
their setters call exactly these.

* ``GET /projects/{P}/accessibility`` → ``text/plain`` ``public|protected|private``;
  ``PUT …/accessibility/{level}`` sets it and answers the new value (returnDefaultRepresentation).
  A project created without ``?accessibility=`` is ``protected`` (ProjectResource.handlePut).
* ``GET /projects/{P}/prearchive_code|quarantine_code|current_arc`` → the value as text, in the
  project's negotiated media type (HTML for ``Accept: */*``, as ``DefaultProjectHandler`` does);
  ``PUT …/{setting}/{value}`` → 200, empty. Codes are integers (``true``/``false`` → 1/0, anything
  else 400 "Prearchive code must be an integer.", XNAT's text for both codes); ``scan_type_mapping``
  takes ``true``/``false``. A DELETE on any of these paths is a 400, as XNAT answers.

The values live in the project's fields under ``"settings"`` (a dict, so never a listing column).
"""

from __future__ import annotations

from werkzeug.routing import Rule
from werkzeug.wrappers import Response

from xnatfs.emulator import resolve
from xnatfs.emulator.access import Viewer
from xnatfs.emulator.app import Context, data_rules
from xnatfs.emulator.handlers.archive_common import empty
from xnatfs.emulator.responses import FORMAT_MEDIA_TYPES, ITEM_VARIANTS, HTTPError, requested_format
from xnatfs.emulator.store import Project, Store

ACCESS_LEVELS = ("public", "protected", "private")
DEFAULTS = {"accessibility": "protected", "prearchive_code": "0", "quarantine_code": "0",
            "current_arc": "arc001", "scan_type_mapping": "true"}
_CODES = ("prearchive_code", "quarantine_code")
_SETTINGS = "any(prearchive_code, quarantine_code, current_arc, scan_type_mapping)"


def settings_of(project: Project) -> dict[str, str]:
    return {**DEFAULTS, **(project.fields.get("settings") or {})}


def save(store: Store, project: Project, **changes: str) -> None:
    store.update_project(project.id, {"settings": {**(project.fields.get("settings") or {}), **changes}})


def accessibility_param(value: str | None) -> dict[str, str]:
    """``PUT /projects/{P}?accessibility=…`` on creation → the settings to store."""
    if value is None:
        return {}
    if value not in ACCESS_LEVELS:
        raise HTTPError(400, f"Invalid accessibility: {value}")
    return {"accessibility": value}


def get_accessibility(ctx: Context, project: str) -> Response:
    found = resolve.project(ctx.store, project)
    requested_format(ctx.request, variants=("txt",))  # the only variant: a 406 for other Accepts
    return Response(settings_of(found)["accessibility"], mimetype="text/plain")


def put_accessibility(ctx: Context, project: str, level: str) -> Response:
    found = _editable(ctx, project)
    save(ctx.store, found, **accessibility_param(level))
    return Response(level, mimetype="text/plain")


def get_setting(ctx: Context, project: str, setting: str) -> Response:
    found = resolve.project(ctx.store, project)
    fmt = requested_format(ctx.request, variants=ITEM_VARIANTS)
    return Response(settings_of(found)[setting], mimetype=FORMAT_MEDIA_TYPES.get(fmt, "text/xml"))


def put_setting(ctx: Context, project: str, setting: str, value: str) -> Response:
    found = _editable(ctx, project)
    if setting in _CODES:
        if value in ("true", "false"):
            value = "1" if value == "true" else "0"
        try:
            value = str(int(value))
        except ValueError as exc:
            raise HTTPError(400, "Prearchive code must be an integer.") from exc
    elif setting == "scan_type_mapping" and value not in ("true", "false"):
        return empty()  # XNAT ignores other values
    save(ctx.store, found, **{setting: value})
    return empty()


def _editable(ctx: Context, project: str) -> Project:
    """The project, if this user may change it: a site administrator or an owner (``canDelete``)."""
    found = resolve.project(ctx.store, project)
    if not Viewer.of(ctx).can_delete(found):
        raise HTTPError(403, "User account doesn't have permission to edit this project.")
    return found


def refuse(ctx: Context, project: str, **_: str) -> Response:
    resolve.project(ctx.store, project)
    raise HTTPError(400, "Bad Request")


def routes() -> list[Rule]:
    return [
        *data_rules("/projects/<project>/accessibility", get_accessibility, ["GET"]),
        *data_rules("/projects/<project>/accessibility/<level>", put_accessibility, ["PUT"]),
        *data_rules(f"/projects/<project>/<{_SETTINGS}:setting>", get_setting, ["GET"]),
        *data_rules(f"/projects/<project>/<{_SETTINGS}:setting>/<path:value>", put_setting, ["PUT"]),
        *data_rules(f"/projects/<project>/<{_SETTINGS}:setting>", refuse, ["DELETE"]),
        *data_rules(f"/projects/<project>/<{_SETTINGS}:setting>/<path:value>", refuse, ["DELETE"]),
    ]
