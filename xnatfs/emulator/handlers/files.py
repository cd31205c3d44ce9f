"""Routes for resources and files under every resource owner (spec §12–§13).

For each path in ``resolve.OWNER_PATTERNS`` (project, subject, experiment in its three spellings,
scan, reconstruction and assessor with optional ``/in|/out``), under ``/data``, ``/REST`` and their
``/archive`` twins:

    <owner>/resources                           GET              list          files_resources
    <owner>/resources/{R}                       GET PUT POST DELETE  catalog   files_resources
    <owner>/resources/{R}/files[/{path}]        GET PUT POST DELETE  files     files_listing / files_upload
    <owner>/files[/{path}]                      GET              all resources merged

Restlet matched ``.../files`` by prefix; here ``<path:path>`` keeps everything after ``/files/``,
including a trailing ``/`` (a folder listing). That is 504 rules; werkzeug compiles a URL *builder*
for every rule (about 1 ms each), which the emulator never uses, so the rules are
:class:`MatchOnlyRule` and the whole table binds in tens of milliseconds. The handlers live in the
``files_*`` modules:
``files_scope`` (what a URL names), ``files_resources``, ``files_listing`` (+ ``files_download``,
``files_zip``), ``files_upload`` (+ ``files_spool``).
"""

from __future__ import annotations

import urllib.parse
from collections.abc import Callable

from werkzeug.routing import Rule
from werkzeug.wrappers import Response

from xnatfs.emulator.app import Context, data_rules
from xnatfs.emulator.handlers import files_resources
from xnatfs.emulator.handlers.files_listing import get_files
from xnatfs.emulator.handlers.files_scope import resolve_scope
from xnatfs.emulator.handlers.files_upload import delete_file, upload
from xnatfs.emulator.resolve import OWNER_PATTERNS


def _rules(path: str, view: Callable[..., Response], methods: list[str]) -> list[Rule]:
    return data_rules(path, view, methods)


def xnat_file_path(ctx: Context, path: str | None) -> str | None:
    """The file path as XNAT's ``FileList`` reads it: the URL's remaining part *as sent*, decoded
    (``URLDecoder``: ``%XX`` and ``+`` → space) only when it holds ``%20`` or ``%2B`` (case-sensitive).
    werkzeug has decoded ``path`` already, so the raw one is cut from ``RAW_URI`` (werkzeug's and
    gunicorn's name for the request target) by counting the segments before it. With the
    ``legacy_paths`` switch (or without a raw URI) the decoded path is kept, as before."""
    if path is None or ctx.app.config.legacy_paths:
        return path
    environ = ctx.request.environ
    raw = environ.get("RAW_URI") or environ.get("REQUEST_URI")
    if not raw:
        return path
    raw = raw.encode("latin-1", "replace").decode("utf-8", "replace")  # undo WSGI's latin-1 "dance"
    raw = raw.split("?", 1)[0].split("#", 1)[0]
    if "://" in raw:  # absolute-form request target
        raw = "/" + raw.split("://", 1)[1].partition("/")[2]
    decoded_full = ctx.request.path
    if not decoded_full.endswith(path):
        return path
    depth = decoded_full[:len(decoded_full) - len(path)].count("/")
    remaining = "/".join(raw.split("/")[depth:])
    if "%20" in remaining or "%2B" in remaining:
        return urllib.parse.unquote_plus(remaining, errors="replace")
    return remaining


def resource_files(ctx: Context, resource: str, path: str | None = None, **values: str) -> Response:
    """``<owner>/resources/{R}/files[/{path}]``: list, download, zip, upload or delete."""
    path = xnat_file_path(ctx, path)
    scope = resolve_scope(ctx.store, values, ctx.app.config.merged_in_out)
    method = ctx.request.method
    if method in ("PUT", "POST"):
        return upload(ctx, scope, resource, path)
    if method == "DELETE":
        return delete_file(ctx, scope, resource, path)
    return get_files(ctx, scope, resource, path)


def owner_files(ctx: Context, path: str | None = None, **values: str) -> Response:
    """``<owner>/files[/{path}]``: every resource of the owner merged (GET only)."""
    path = xnat_file_path(ctx, path)
    return get_files(ctx, resolve_scope(ctx.store, values, ctx.app.config.merged_in_out), None, path)


def routes() -> list[Rule]:
    rules: list[Rule] = []
    for owner in OWNER_PATTERNS:
        rules += _rules(f"{owner}/resources", files_resources.list_resources, ["GET"])
        rules += _rules(f"{owner}/resources/<resource>", files_resources.resource, ["GET", "PUT", "POST", "DELETE"])
        for suffix in ("/files", "/files/<path:path>"):
            rules += _rules(f"{owner}/resources/<resource>{suffix}", resource_files, ["GET", "PUT", "POST", "DELETE"])
            rules += _rules(f"{owner}{suffix}", owner_files, ["GET"])
    return rules
