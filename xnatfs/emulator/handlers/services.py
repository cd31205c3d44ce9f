"""`/data/services/import`, `/data/services/archive` and `/data/services/prearchive/{move,delete,rebuild}`.

XNAT's Importer, Archiver and PrearchiveBatch* restlets (spec §15, §16.3, §16.4):
- import: the archive in the raw body (any body that is not multipart/form-data) or as the one file of
  a multipart form. A raw upload is named by the URL (`/services/import/study.zip`), else `upload` plus
  XNAT's extension for its Content-Type (`application/zip` → upload.zip, `application/x-tar` → .tar,
  `application/x-gtar` → .tar.gz, others none or `.unsupported`), and DICOM-zip reads only *.zip,
  *.tar, *.tar.gz and *.tgz, as XNAT does. The body is spooled to a temporary file
  in the data directory in 1 MiB chunks, never held in memory. The answer lists the created sessions
  as `text/uri-list`, CRLF after each URI (`format=txt`: one URI without a newline);
- archive: one `src` → 200 `text/uri-list` `/data/archive/projects/P/subjects/S/experiments/E\\r\\n`
  (303 to it with `redirect=true`); several → a ResultSet of their rows; a conflict → 409 and the
  session's status becomes CONFLICT;
- move/delete/rebuild: the rows of the named sessions as XNAT shows them once the operation is queued
  (status QUEUED_MOVING / QUEUED_DELETING / QUEUED_BUILDING), XML unless another format is asked for.
  The emulator then runs the operation at once (XNAT queues it), so `async` changes nothing.
`src` is a prearchive URI with or without `/data`; several `src` parameters are allowed.
"""

from __future__ import annotations

import tempfile
from typing import IO, Callable

from werkzeug.formparser import FormDataParser
from werkzeug.routing import Rule
from werkzeug.wrappers import Response

from xnatfs.emulator.app import Context, data_rules
from xnatfs.emulator.importer import (ArchiveTarget, Destination, ImportOptions, archive_session, clean_label,
                                      import_upload)
from xnatfs.emulator.prearchive import COLUMNS, UNASSIGNED, PrearcSession, Prearchive, prearchive_of
from xnatfs.emulator.responses import HTTPError, result_set, uri_list
from xnatfs.emulator.store import CHUNK

#: Content types XNAT knows for in-body uploads, with the file extension it gives the upload.
IN_BODY_TYPES = {"application/zip": ".zip", "application/x-tar": ".tar", "application/x-gtar": ".tar.gz",
                 "application/x-gzip": ".gzip", "application/octet-stream": "", "application/*": "",
                 "application/dicom": ".dcm", "application/xar": ".xar", "application/pdf": ".pdf",
                 "text/plain": ".txt", "text/*": ".txt", "text/xml": ".xml", "text/csv": ".csv"}
KNOWN_HANDLERS = ("DICOM-zip", "SI", "gradual-DICOM", "XAR", "inbox", "automation")


def routes() -> list[Rule]:
    table = [
        ("/services/import", import_service),
        ("/services/import/<path:name>", import_service),
        ("/services/archive", archive_service),
        ("/services/prearchive/move", move_service),
        ("/services/prearchive/delete", delete_service),
        ("/services/prearchive/rebuild", rebuild_service),
    ]
    return [rule for path, view in table for rule in data_rules(path, view, ["POST"], archive=False)]


# ---- parameters ------------------------------------------------------------------------------------
def parse_destination(dest: str | None) -> Destination | None:
    """`/prearchive[/projects/P[/TS[/F]]]` or `/archive[/projects/P[/subjects/S[/experiments/E]]]`."""
    if not dest:
        return None
    parts = [p for p in dest.split("/") if p]
    if parts[:1] in (["data"], ["REST"]):
        parts = parts[1:]
    if not parts or parts[0] not in ("prearchive", "archive") or (len(parts) > 1 and parts[1] != "projects"):
        raise HTTPError(400, "Parameter dest format error")
    if parts[0] == "prearchive":
        if len(parts) == 2 or len(parts) > 5:
            raise HTTPError(400, "Parameter dest format error")
        return Destination(False, parts[2] if len(parts) > 2 else None)
    names = dict(zip(parts[1::2], parts[2::2]))
    if len(parts) == 2 or len(parts) % 2 == 0 or set(names) - {"projects", "subjects", "experiments"}:
        raise HTTPError(400, "Parameter dest format error")
    return Destination(True, names.get("projects"), names.get("subjects"), names.get("experiments"))


def overwrite_mode(value: str | None) -> str:
    """XNAT's overwrite parameter: none (default), append, delete (`override` is an old name for it)."""
    mode = (value or "none").lower()
    if mode == "override":
        return "delete"
    if mode not in ("none", "append", "delete"):
        raise HTTPError(400, "Overwrite flag was not set to a valid option. ('append' or 'delete')")
    return mode


def import_options(params: dict[str, str]) -> ImportOptions:
    """XNAT's precedence (DicomZipImporter): lower-case alias > `dest` > upper-case name."""
    dest = parse_destination(params.get("dest"))

    def pick(alias: str, upper: str, from_dest: str | None) -> str | None:
        return params.get(alias) or from_dest or params.get(upper) or None

    return ImportOptions(
        dest, pick("project", "PROJECT_ID", dest.project if dest else None),
        pick("subject", "SUBJECT_ID", dest.subject if dest else None),
        pick("session", "EXPT_LABEL", dest.label if dest else None),
        overwrite_mode(params.get("overwrite")), _true(params.get("overwrite_files")),
        _true(params.get("Ignore-Unparsable")), params.get("VISIT", ""), params.get("SUBTYPE", ""),
        params.get("SOURCE", ""), str(_true(params.get("prevent_anon"))).lower(),
        str(_true(params.get("prevent_auto_commit"))).lower())


def _true(value: str | None) -> bool:
    return str(value or "").lower() == "true"


# ---- import ---------------------------------------------------------------------------------------
def import_service(ctx: Context, name: str | None = None) -> Response:
    request = ctx.request
    params = request.args.to_dict()
    with tempfile.TemporaryFile(dir=ctx.store.tmp_dir) as spool:
        upload_name = _receive(ctx, spool, params, name)  # first, so that a refusal never leaves a body unread
        handler = params.get("import-handler")
        if handler is not None and handler not in KNOWN_HANDLERS:
            raise HTTPError(404, f"Unknown importer implementation specified: {handler}")
        if handler not in (None, "DICOM-zip", "SI"):
            raise HTTPError(400, f"The import handler {handler} is not supported by this emulator (use DICOM-zip).")
        if "src" in params:
            raise HTTPError(404, "Unknown src file.")
        options = import_options(params)
        spool.seek(0)
        uris = import_upload(ctx.store, prearchive_of(ctx.store), spool, upload_name, options)
    return uri_list(request, uris)


def _receive(ctx: Context, spool: IO[bytes], params: dict[str, str], name: str | None) -> str:
    """Spool the one uploaded file; returns its name. Multipart form fields become parameters."""
    request = ctx.request
    mimetype = request.mimetype
    if mimetype == "multipart/form-data" and _true(params.get("inbody")):
        raise HTTPError(406, "In-body File posts must include the file directly as the body of the message "
                             "(not as part of multi-part form data).")
    if mimetype != "multipart/form-data":
        size = 0
        while chunk := request.stream.read(CHUNK):
            spool.write(chunk)
            size += len(chunk)
        if size == 0 and mimetype != "application/zip":
            raise HTTPError(400, "In-body File posts must include the file directly as the body of the message. "
                                 "In this case, the request entity size is 0 but the media type is not "
                                 "application/zip (i.e. streaming compressed upload).")
        return name or "upload" + IN_BODY_TYPES.get(mimetype, ".unsupported")
    parts: list[str] = []

    def factory(total_content_length, content_type, filename, content_length=None):  # type: ignore[no-untyped-def]
        parts.append(filename or "")
        return spool if len(parts) == 1 else tempfile.TemporaryFile(dir=ctx.store.tmp_dir)

    _, form, uploaded = FormDataParser(stream_factory=factory).parse_from_environ(request.environ)
    for key, value in form.items():
        if key == "reference":
            raise HTTPError(400, "multi-part form posts may not be used to upload files via reference.")
        params.setdefault(key, value)
    for _, item in uploaded.items(multi=True):
        if item.stream is not spool:
            item.stream.close()
    if len(parts) > 1:
        raise HTTPError(400, "Importer is limited to one uploaded resource at a time.")
    if not parts:
        raise HTTPError(400, "Unable to identify upload format.")
    return parts[0].replace("\\", "/").rsplit("/", 1)[-1] or "upload"


# ---- archive ----------------------------------------------------------------------------------------
def _params(ctx: Context) -> tuple[dict[str, str], list[str]]:
    """Query and form-body parameters (XNAT loads both) and the `src` sessions (it may repeat; 404 when none)."""
    merged = {**ctx.request.form.to_dict(), **ctx.request.args.to_dict()}
    sources = ctx.request.args.getlist("src") + ctx.request.form.getlist("src")
    if not sources:
        raise HTTPError(404, "Unknown prearchive session.")
    return merged, sources


def parse_src(src: str) -> tuple[str, str, str]:
    """`[/data|/REST]/prearchive/projects/P/TS/F` → (P, TS, F); an archive URI or garbage → 400."""
    parts = [p for p in src.split("?")[0].split("/") if p]
    if parts[:1] in (["data"], ["REST"]):
        parts = parts[1:]
    if len(parts) == 5 and parts[:2] == ["prearchive", "projects"]:
        return parts[2], parts[3], parts[4]
    raise HTTPError(400, f"Invalid src URI ({src})")


def _sessions(ctx: Context, sources: list[str]) -> list[PrearcSession]:
    prearchive = prearchive_of(ctx.store)
    keys = [parse_src(src) for src in sources]
    missing = sorted({p for p, _, _ in keys if p != UNASSIGNED and ctx.store.get_project(p) is None})
    if missing:
        raise HTTPError(404, f"One or more specified projects does not exist: {', '.join(missing)}.")
    if not ctx.is_admin and any(p == UNASSIGNED for p, _, _ in keys):
        raise HTTPError(403, f"Invalid permissions for user {ctx.user} to modify prearchive sessions in one or "
                             f"more projects: {UNASSIGNED}")
    sessions = []
    for project, timestamp, folder in keys:
        session = prearchive.get(project, timestamp, folder)
        if session is None:
            raise HTTPError(404, f"No prearchive resource with session {folder} and timestamp {timestamp} "
                                 f"exists in the project {project}")
        sessions.append(session)
    return sessions


def archive_service(ctx: Context) -> Response:
    params, sources = _params(ctx)
    prearchive = prearchive_of(ctx.store)
    mode = overwrite_mode(params.get("overwrite"))
    overwrite_files = _true(params.get("overwrite_files"))
    keys = [parse_src(src) for src in sources]
    if any(project == UNASSIGNED for project, _, _ in keys):
        raise HTTPError(400, "Cannot archive sessions from the Unassigned folder.")
    sessions = []
    for key in keys:
        session = prearchive.get(*key)
        if session is None:
            raise HTTPError(404, f"/prearchive/projects/{'/'.join(key)} not found.")
        sessions.append(session)
    dest = parse_destination(params.get("dest")) if params.get("dest") else None
    if dest is not None and not dest.archive:
        raise HTTPError(400, f"Invalid _destination URI ({params['dest']})")
    if len(sessions) == 1:
        target = _target(sessions[0], params, dest)
        archive_session(ctx.store, prearchive, sessions[0], target, mode=mode, overwrite_files=overwrite_files)
        if params.get("redirect", "").lower() == "true":
            site = ctx.app.config.site_url or ctx.request.host_url.rstrip("/")
            return Response("", status=303, headers={"Location": site + target.uri})
        return Response(target.uri + "\r\n", mimetype="text/uri-list")
    rows = _queued(sessions, "QUEUED_ARCHIVING")
    for session in sessions:
        try:
            archive_session(ctx.store, prearchive, session, _target(session, params, dest), mode=mode,
                            overwrite_files=overwrite_files)
        except Exception:  # noqa: BLE001 - a batch reports through each session's status, as XNAT does
            continue
    return result_set(ctx.request, rows, COLUMNS, total_records=False, default="xml")


def _target(session: PrearcSession, params: dict[str, str], dest) -> ArchiveTarget:  # type: ignore[no-untyped-def]
    """Project, subject and label: parameters, then `dest`, then the prearchive session's own."""
    project = params.get("project") or params.get("PROJECT_ID") or (dest.project if dest else None) or session.project
    subject = (params.get("subject") or params.get("SUBJECT_ID") or (dest.subject if dest else None)
               or session.subject or session.document.fields.get("dcmPatientName", ""))
    label = (params.get("session") or params.get("EXPT_LABEL") or params.get("label")
             or (dest.label if dest else None) or session.name or session.folder)
    if not clean_label(subject):
        raise HTTPError(400, "Unable to identify subject.")
    return ArchiveTarget(project, clean_label(subject), clean_label(label))


def _queued(sessions: list[PrearcSession], status: str) -> list[dict[str, str]]:
    rows = []
    for session in sessions:
        row = session.row()
        row["status"] = status
        rows.append(row)
    return rows


# ---- move, delete, rebuild -----------------------------------------------------------------------------
def _batch(ctx: Context, status: str, operation: Callable[[Prearchive, PrearcSession, dict[str, str]], None],
           check: Callable[[Prearchive, PrearcSession, dict[str, str]], None] | None = None) -> Response:
    params, sources = _params(ctx)
    prearchive = prearchive_of(ctx.store)
    sessions = _sessions(ctx, sources)
    for session in sessions:
        if check is not None:
            check(prearchive, session, params)
    rows = _queued(sessions, status)
    for session in sessions:
        if not prearchive.claim(session, status):
            raise HTTPError(403, f"Can't modify session {session.folder} and timestamp {session.timestamp} in "
                                 f"project {session.project} as it has an invalid status")
        try:
            operation(prearchive, session, params)
        except BaseException:
            if prearchive.get(*session.key) is not None:
                prearchive.set_status(session, "ERROR")
            raise
    return result_set(ctx.request, rows, COLUMNS, total_records=False, default="xml")


def move_service(ctx: Context) -> Response:
    def check(prearchive: Prearchive, session: PrearcSession, params: dict[str, str]) -> None:
        new_project = params.get("newProject")
        if not new_project:
            raise HTTPError(400, f"No project specified to move session {session.folder} and timestamp "
                                 f"{session.timestamp}")
        if new_project != UNASSIGNED and ctx.store.get_project(new_project) is None:
            raise HTTPError(404, f"One or more specified projects does not exist: {new_project}.")
        if new_project != session.project and (
                prearchive.get(new_project, session.timestamp, session.folder) is not None
                or prearchive.folder_path(new_project, session.timestamp, session.folder).exists()):
            raise HTTPError(409, f"A prearchive resource with session {session.folder} and timestamp "
                                 f"{session.timestamp} already exists in the project {new_project}")

    def move(prearchive: Prearchive, session: PrearcSession, params: dict[str, str]) -> None:
        moved = session
        if params["newProject"] != session.project:
            moved = prearchive.move(session, params["newProject"])
        prearchive.set_status(moved, "READY")

    return _batch(ctx, "QUEUED_MOVING", move, check)


def delete_service(ctx: Context) -> Response:
    return _batch(ctx, "QUEUED_DELETING", lambda prearchive, session, _: prearchive.delete(session))


def rebuild_service(ctx: Context) -> Response:
    return _batch(ctx, "QUEUED_BUILDING", lambda prearchive, session, _: prearchive.rebuild(session) and None)
