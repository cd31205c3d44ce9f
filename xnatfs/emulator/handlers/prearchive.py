"""`/data/prearchive…` routes: listings, one session, its scans, resources and files (spec §16.1, §16.2).

Shapes follow XNAT's PrearcSessionListResource, PrearcSessionResource, PrearcScansListResource,
PrearcScanResourceList, PrearcSessionResourcesList and the *ResourceFiles classes:
- listings are ResultSets with XNAT's prearchive columns and no meta (no `totalRecords`);
- one session: `format=json` → that one row; `format=xml` (the default) → the session document;
  `format=zip` → a zip of the session folder; other formats → 400 "Requested type … is not supported";
  `POST ?action=commit|build|reset-status|set-status|move`; `DELETE` removes it;
- scans: `ID, xsiType, series_description`; a scan's resources: `label, file_count, file_size`;
  session resources: `category, cat_id, label, file_count, file_size`; files: `Name, Size, URI`
  (URI = the listing's path + "/" + the file's path); a scan or resource itself only as `format=zip`.

Permissions (the emulator has no project roles): every user sees every project's sessions; the
"Unassigned" sessions, `?tag=` searches and `PUT /data/prearchive` (refresh) are for administrators.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Iterable

from werkzeug.routing import Rule
from werkzeug.wrappers import Response

from xnatfs.emulator.app import Context, data_rules
from xnatfs.emulator.handlers import files_download
from xnatfs.emulator.handlers.files_zip import ZipItem, archive_response
from xnatfs.emulator.items import Item, xml_document
from xnatfs.emulator.prearchive import (COLUMNS, UNASSIGNED, PrearcSession, files_under, prearchive_of,
                                        read_document)
from xnatfs.emulator.responses import FORMAT_MEDIA_TYPES, HTTPError, requested_format, result_set, text
from xnatfs.emulator.store import FileRow

SESSION = "/prearchive/projects/<project>/<timestamp>/<folder>"
_ACTIONS = ("build", "commit", "reset-status", "set-status", "move")


def routes() -> list[Rule]:
    table = [
        ("/prearchive", list_sessions, ["GET", "PUT"]),
        ("/prearchive/projects", list_sessions, ["GET"]),
        ("/prearchive/projects/<project>", list_sessions, ["GET"]),
        (SESSION, one_session, ["GET", "POST", "DELETE"]),
        (SESSION + "/scans", list_scans, ["GET"]),
        (SESSION + "/scans/<scan>", one_scan, ["GET", "DELETE"]),
        (SESSION + "/scans/<scan>/resources", list_scan_resources, ["GET"]),
        (SESSION + "/scans/<scan>/resources/<resource>", one_resource, ["GET"]),
        (SESSION + "/scans/<scan>/resources/<resource>/files", files, ["GET"]),
        (SESSION + "/scans/<scan>/resources/<resource>/files/<path:filepath>", files, ["GET"]),
        (SESSION + "/resources", list_session_resources, ["GET"]),
        (SESSION + "/resources/<resource>", one_resource, ["GET", "DELETE"]),
        (SESSION + "/resources/<resource>/files", files, ["GET"]),
        (SESSION + "/resources/<resource>/files/<path:filepath>", files, ["GET"]),
    ]
    return [rule for path, view, methods in table for rule in data_rules(path, view, methods, archive=False)]


# ---- listings -------------------------------------------------------------------------------------
def list_sessions(ctx: Context, project: str | None = None) -> Response:
    prearchive = prearchive_of(ctx.store)
    if ctx.request.method == "PUT":
        if not ctx.is_admin:
            raise HTTPError(403, "Only site or data administrators can request a rebuild of the prearchive.")
        for session in prearchive.list():
            prearchive.rebuild(session)
        return text("")
    tag = ctx.request.args.get("tag")
    if tag and not ctx.is_admin:
        raise HTTPError(403, "Only site or data administrators and reviewers can query by tag")
    if project:
        wanted = [p.strip() for p in project.split(",") if p.strip()]
        for name in wanted:
            if not ctx.is_admin and (name == UNASSIGNED or ctx.store.get_project(name) is None):
                raise HTTPError(403, f"The current user does not have access to the requested project: {name}")
        projects: list[str] | None = wanted
    else:
        projects = None if ctx.is_admin else [p.id for p in ctx.store.list_projects()]
    sessions = prearchive.list(None if tag else projects, tag=tag)
    return result_set(ctx.request, [s.row() for s in sessions], COLUMNS, total_records=False)


def _session(ctx: Context, project: str, timestamp: str, folder: str) -> PrearcSession:
    if project == UNASSIGNED and not ctx.is_admin:
        raise HTTPError(403, f"The current user does not have access to the requested project: {project}")
    return prearchive_of(ctx.store).require(project, timestamp, folder)


def list_scans(ctx: Context, project: str, timestamp: str, folder: str) -> Response:
    session = _session(ctx, project, timestamp, folder)
    rows = [{"ID": s.id, "xsiType": s.xsi_type, "series_description": s.fields.get("series_description", "")}
            for s in session.document.scans]
    return result_set(ctx.request, rows, ["ID", "xsiType", "series_description"], total_records=False)


def list_scan_resources(ctx: Context, project: str, timestamp: str, folder: str, scan: str) -> Response:
    session = _session(ctx, project, timestamp, folder)
    prearchive = prearchive_of(ctx.store)
    if scan not in prearchive.scan_ids(session):
        raise HTTPError(404, "Not Found")
    rows = [{"label": label, **_stats(prearchive.resource_dir(session, scan, label))}
            for label in prearchive.resource_labels(session, scan)]
    return result_set(ctx.request, rows, ["label", "file_count", "file_size"], total_records=False)


def list_session_resources(ctx: Context, project: str, timestamp: str, folder: str) -> Response:
    session = _session(ctx, project, timestamp, folder)
    prearchive = prearchive_of(ctx.store)
    rows = [{"category": "scans", "cat_id": scan, "label": label,
             **_stats(prearchive.resource_dir(session, scan, label))}
            for scan in prearchive.scan_ids(session) for label in prearchive.resource_labels(session, scan)]
    rows += [{"category": "resources", "cat_id": "", "label": label,
              **_stats(prearchive.resource_dir(session, None, label))}
             for label in prearchive.resource_labels(session, None)]
    return result_set(ctx.request, rows, ["category", "cat_id", "label", "file_count", "file_size"],
                      total_records=False)


def _stats(folder: Path) -> dict[str, int]:
    found = files_under(folder)
    return {"file_count": len(found), "file_size": sum(p.stat().st_size for p in found)}


def files(ctx: Context, project: str, timestamp: str, folder: str, resource: str, scan: str | None = None,
          filepath: str | None = None) -> Response:
    session = _session(ctx, project, timestamp, folder)
    prearchive = prearchive_of(ctx.store)
    if scan is not None and scan not in prearchive.scan_ids(session):
        raise HTTPError(404, "Not Found")
    base = prearchive.resource_dir(session, scan, resource)
    if not base.is_dir():
        raise HTTPError(404, "Not Found")
    if filepath:
        wanted = (base / filepath).resolve()
        if not wanted.is_relative_to(base.resolve()) or wanted not in {p.resolve() for p in files_under(base)}:
            raise HTTPError(404, "Unable to find file.")
        return send_file(ctx, wanted)
    listing = ctx.request.path.rstrip("/")
    rows = [{"Name": p.name, "Size": p.stat().st_size, "URI": f"{listing}/{p.relative_to(base).as_posix()}"}
            for p in files_under(base)]
    return result_set(ctx.request, rows, ["Name", "Size", "URI"], total_records=False)


# ---- one session, scan or resource ----------------------------------------------------------------
def one_session(ctx: Context, project: str, timestamp: str, folder: str) -> Response:
    session = _session(ctx, project, timestamp, folder)
    prearchive = prearchive_of(ctx.store)
    method = ctx.request.method
    if method == "DELETE":
        prearchive.delete(session)
        return text("")
    if method == "POST":
        return _post_action(ctx, session)
    fmt = requested_format(ctx.request, "xml")
    if fmt == "json":
        return result_set(ctx.request, [session.row()], COLUMNS, total_records=False, default="json")
    if fmt == "xml":
        return Response(session_xml(session, prearchive.path_of(session), _site_url(ctx)), mimetype="text/xml")
    if fmt == "zip":
        path = prearchive.path_of(session)
        entries = ((f"{folder}/{p.relative_to(path).as_posix()}", p) for p in files_under(path))
        return zip_response(ctx, entries, folder)
    raise HTTPError(400, f"Requested type {FORMAT_MEDIA_TYPES.get(fmt, fmt)} is not supported")


def one_scan(ctx: Context, project: str, timestamp: str, folder: str, scan: str) -> Response:
    session = _session(ctx, project, timestamp, folder)
    prearchive = prearchive_of(ctx.store)
    if scan not in prearchive.scan_ids(session):
        raise HTTPError(404, f"Unknown scan {scan}")
    scan_dir = prearchive.path_of(session) / "SCANS" / scan
    if ctx.request.method == "DELETE":
        shutil.rmtree(scan_dir)
        session.document.scans = [s for s in session.document.scans if s.id != scan]
        prearchive.save(session)
        return text("")
    return _zip_folder(ctx, scan_dir)


def one_resource(ctx: Context, project: str, timestamp: str, folder: str, resource: str,
                 scan: str | None = None) -> Response:
    session = _session(ctx, project, timestamp, folder)
    prearchive = prearchive_of(ctx.store)
    base = prearchive.resource_dir(session, scan, resource)
    if not base.is_dir():
        raise HTTPError(404, f"Unknown resource {resource}")
    if ctx.request.method == "DELETE":
        shutil.rmtree(base)
        return text("")
    return _zip_folder(ctx, base)


def _zip_folder(ctx: Context, folder: Path) -> Response:
    fmt = requested_format(ctx.request, "xml")
    if fmt != "zip":
        raise HTTPError(400, f"Requested type {FORMAT_MEDIA_TYPES.get(fmt, fmt)} is not supported")
    return zip_response(ctx, ((f"{folder.name}/{p.relative_to(folder).as_posix()}", p) for p in files_under(folder)),
                        folder.name)


def _post_action(ctx: Context, session: PrearcSession) -> Response:
    prearchive = prearchive_of(ctx.store)
    params = {**ctx.request.form.to_dict(), **ctx.request.args.to_dict()}
    action = params.get("action")
    if action not in _ACTIONS:
        if action is None:
            raise HTTPError(400, f"No action parameter was specified for the request by user {ctx.user}")
        raise HTTPError(400, f"User {ctx.user} requested an unsupported action on prearchive session: {action}")
    if action == "set-status":
        prearchive.set_status(session, params.get("status", ""))
        return text("")
    if action == "move":
        new_project = params.get("newProject") or ""
        if ctx.store.get_project(new_project) is None:
            raise HTTPError(403, "Unable to modify session data for destination project.")
        if not prearchive.claim(session, "MOVING"):
            raise HTTPError(409, "session document locked")
        try:
            moved = prearchive.move(session, new_project)
        finally:
            current = prearchive.get(*session.key) or prearchive.get(new_project, session.timestamp, session.folder)
            if current is not None:
                prearchive.set_status(current, "READY")
        return Response(moved.uri, status=301, mimetype="text/uri-list")
    if action in ("build", "commit"):
        if not prearchive.claim(session, "BUILDING"):
            raise HTTPError(409, "session document locked")
        prearchive.rebuild(session)
    else:  # reset-status: XNAT re-derives the status from the session document
        prearchive.set_status(session, "READY" if read_document(prearchive.path_of(session)) else "ERROR")
    return Response(session.uri, mimetype="text/uri-list")


# ---- bodies ---------------------------------------------------------------------------------------
def session_xml(session: PrearcSession, path: Path, site_url: str) -> bytes:
    """The session document XNAT keeps next to a prearchive folder (`<folder>.xml`)."""
    document = session.document
    fields = {**document.fields, "label": session.name, "prearchivePath": str(path)}
    if session.project != UNASSIGNED:
        fields["project"] = session.project
    if session.subject:
        fields["subject_ID"] = session.subject
    item = Item(document.xsi_type, fields)
    item.add_children("scans/scan", [Item(s.xsi_type, {"ID": s.id, **s.fields}) for s in document.scans])
    return xml_document(item, site_url)


def _site_url(ctx: Context) -> str:
    return ctx.app.config.site_url or ctx.request.host_url.rstrip("/")


def send_file(ctx: Context, path: Path) -> Response:
    """One file as the archive's file routes send it (type by extension, attachment, Range)."""
    stat = path.stat()
    return files_download.send_file(ctx, FileRow(0, 0, path.name, stat.st_size, "", stat.st_mtime, "", "", "",
                                                 folder=path.parent))


def zip_response(ctx: Context, entries: Iterable[tuple[str, Path]], name: str) -> Response:
    """XNAT's ZipRepresentation of a folder: `<folder name>/<path>` entries, streamed."""
    items = [ZipItem(arcname, path) for arcname, path in entries]
    return archive_response(items, name, ctx.request.args.to_dict())

