"""Uploading and deleting files (``FileList.handlePost`` / ``handleDelete``, spec §13.4–§13.5).

``PUT`` and ``POST`` on ``<owner>/resources/{R}/files[/{path}]`` are the same operation:

* a raw body (any content type but multipart; ``inbody=true`` also makes a urlencoded body a
  file) is stored at ``{path}``, or at ``upload<ext>`` derived from the content type;
* ``multipart/form-data``: every file part is stored under its file name (inside ``{path}`` when the
  URL names a folder or several parts arrive, at ``{path}`` when it names one file); form fields
  count as parameters; with ``inbody=true`` → 406;
* ``extract=true`` and an archive name (``.zip``, ``.tar``, ``.tar.gz``, ``.tgz``) unpacks it into the
  resource root instead of storing it;
* the resource is created when missing; an existing path is replaced only with ``overwrite=true``,
  otherwise left alone and reported as XNAT 1.8 does: 200 with ``{"duplicates": [...]}``;
* ``format``/``content``/``tags`` become the entries' metadata.

Bodies are spooled to ``store.tmp_dir`` in chunks (``files_spool``) and renamed into place, so
memory does not grow with the upload. Paths are checked before anything is
written: ``..``, an absolute path or a backslash → 400, nothing written outside the data dir.
"""

from __future__ import annotations

import json
import os
import posixpath
import tempfile
from collections.abc import Iterable
from pathlib import Path
from typing import IO

from werkzeug.datastructures import MultiDict
from werkzeug.formparser import FormDataParser
from werkzeug.wrappers import Response

from xnatfs.emulator.app import Context
from xnatfs.emulator.handlers.files_resources import check_label, joined_tags
from xnatfs.emulator.handlers.files_scope import Scope, truthy
from xnatfs.emulator.handlers.files_spool import Spooled, archive_kind, spool, unpack
from xnatfs.emulator.responses import HTTPError
from xnatfs.emulator.store import Conflict, Invalid, Owner, Resource, Store, check_relative_path

IN_BODY_MULTIPART = ("In-body File posts must include the file directly as the body of the message "
                     "(not as part of multi-part form data).")
#: ``RequestUtil.supported_upload_types``: the name of a raw upload without a path in the URL.
UPLOAD_EXTENSIONS = {
    "text/plain": ".txt", "text/xml": ".xml", "text/csv": ".csv", "application/dicom": ".dcm",
    "application/zip": ".zip", "application/x-gtar": ".tar.gz", "application/x-tar": ".tar",
    "application/pdf": ".pdf", "image/jpeg": ".jpeg", "image/png": ".png", "image/gif": ".gif",
}


def upload(ctx: Context, scope: Scope, resource_spec: str, path: str | None) -> Response:
    """PUT/POST a file (see module docstring)."""
    request = ctx.request
    params = MultiDict(request.args)
    owner = scope.owner
    if path:
        _check_path(path.rstrip("/") if path.endswith("/") else path)
    spooled: list[Spooled] = []
    try:
        if request.mimetype == "multipart/form-data":
            if truthy(params.get("inbody")):
                raise HTTPError(406, IN_BODY_MULTIPART)
            spooled, form = _spool_multipart(ctx)
            for key, values in form.lists():
                if key not in params:
                    params.setlist(key, values)
            spooled = _destinations(spooled, path)
        elif request.mimetype == "application/x-www-form-urlencoded" and not truthy(params.get("inbody")):
            raise HTTPError(400, f"You tried to {request.method} a payload to this service, but didn't provide any "
                                 "data. If you think you sent data to upload, you can try to "
                                 f"{request.method} with the query-string parameter inbody=true or use "
                                 "multipart/form-data encoding.")
        else:
            derived = "upload" + UPLOAD_EXTENSIONS.get(request.mimetype, "")
            name = (path + derived if path.endswith("/") else path) if path else derived
            spooled = [spool(request.stream, ctx.store.tmp_dir, name)]
        if not spooled or all(s.size == 0 for s in spooled):
            raise HTTPError(400, f"You tried to {request.method} to this service, but didn't provide any data "
                                 "(found request entity size of 0). Please check the format of your service request.")
        spooled = expand_archives(spooled, params, ctx.store.tmp_dir)
        resource = _resource_for_upload(ctx, owner, scope, resource_spec, params)
        duplicates = store_uploads(ctx.store, resource, spooled, params)
    finally:
        for item in spooled:
            item.discard()
    if duplicates and not truthy(params.get("overwrite")):
        return Response(json.dumps({"duplicates": duplicates}), content_type="text/html")
    return Response("", content_type="text/plain")


def delete_file(ctx: Context, scope: Scope, resource_spec: str, path: str | None) -> Response:
    """DELETE a file, or every file under a folder path; 404 "No matched files" (204 if asked)."""
    removed = 0
    if path:
        for resource in scope.select_resources(ctx.store, resource_spec):
            removed += ctx.store.delete_file(resource.id, path)
    if removed == 0:
        if truthy(ctx.request.args.get("accept-not-found")):
            return Response("", status=204)
        raise HTTPError(404, "No matched files")
    return Response("", content_type="text/plain")


def expand_archives(spooled: list[Spooled], params: MultiDict, tmp_dir: Path) -> list[Spooled]:
    """With ``extract=true``, replace each archive by its members (all checked before any is kept)."""
    if not truthy(params.get("extract")):
        return spooled
    expanded: list[Spooled] = []
    try:
        for item in spooled:
            if archive_kind(item.name):
                expanded.extend(unpack(item.path, item.name, tmp_dir))
                item.discard()
            else:
                expanded.append(item)
    except BaseException:
        for item in expanded + spooled:
            item.discard()
        raise
    return expanded


def store_uploads(store: Store, resource: Resource, spooled: Iterable[Spooled], params: MultiDict) -> list[str]:
    """Move spooled files into ``resource``; returns the paths left alone because they exist."""
    overwrite = truthy(params.get("overwrite"))
    meta = dict(format=params.get("format", ""), content=params.get("content", ""),
                tags=joined_tags(params.getlist("tags")))
    duplicates: list[str] = []
    for item in spooled:
        _store_one(store, resource, item, overwrite, meta, duplicates)
    return duplicates


def _store_one(store: Store, resource: Resource, item: Spooled, overwrite: bool, meta: dict,
               duplicates: list[str]) -> None:
    if store.get_file(resource.id, item.name) is not None and not overwrite:
        duplicates.append(item.name)
        return
    try:
        store.add_file(resource.id, item.name, item.path, overwrite=overwrite, move=True, md5=item.md5, **meta)
    except Conflict as exc:
        if store.get_file(resource.id, item.name) is not None and not overwrite:
            duplicates.append(item.name)  # another request stored it meanwhile
            return
        raise HTTPError(409, str(exc)) from exc


def _resource_for_upload(ctx: Context, owner: Owner, scope: Scope, resource_spec: str,
                         params: MultiDict) -> Resource:
    """The named resource, created (label = ``{R}``) when missing, as ``ResourceModifierA.addFile`` does."""
    found = scope.select_resources(ctx.store, resource_spec)
    if found:
        return found[0]
    check_label(resource_spec)
    try:
        return ctx.store.create_resource(owner, resource_spec, format=params.get("format", ""),
                                         content=params.get("content", ""), description=params.get("description", ""),
                                         io=scope.create_side)
    except Conflict:
        found = scope.select_resources(ctx.store, resource_spec)
        if not found:
            raise
        return found[0]


def _spool_multipart(ctx: Context) -> tuple[list[Spooled], MultiDict]:
    """Parse a multipart body with every file part written straight to ``tmp_dir``."""
    created: list[Path] = []

    def stream_factory(total_content_length: int | None, content_type: str | None, filename: str | None,
                       content_length: int | None = None) -> IO[bytes]:
        handle = tempfile.NamedTemporaryFile(dir=ctx.store.tmp_dir, prefix="part-", delete=False)
        created.append(Path(handle.name))
        return handle  # type: ignore[return-value]

    parser = FormDataParser(stream_factory=stream_factory, max_form_memory_size=1024 * 1024)
    try:
        _, form, files = parser.parse_from_environ(ctx.request.environ)
        if "reference" in form:
            raise HTTPError(400, "multi-part form posts may not be used to upload files via reference.")
        spooled = []
        for _, storage in files.items(multi=True):
            storage.stream.close()
            spooled.append(Spooled(_part_name(storage.filename), Path(storage.stream.name),
                                   os.path.getsize(storage.stream.name), None))
    except BaseException:
        for path in created:
            path.unlink(missing_ok=True)
        raise
    for path in created:  # parts werkzeug opened but did not hand back
        if all(s.path != path for s in spooled):
            path.unlink(missing_ok=True)
    return spooled, form


def _part_name(filename: str | None) -> str:
    """``getFileWritersAndLoadParams`` + ``storeCatalogEntry``: the part's file name, folders dropped."""
    name = posixpath.basename((filename or "").replace("\\", "/"))
    if not name or name in (".", ".."):
        raise HTTPError(400, "multi-part form posts must contain the file name of the uploaded file.")
    return name


def _destinations(spooled: list[Spooled], path: str | None) -> list[Spooled]:
    """Where each multipart file goes: ``{path}`` for one part and a file path, else inside ``{path}``."""
    if not path:
        return spooled
    if len(spooled) == 1 and not path.endswith("/"):
        spooled[0].name = path
        return spooled
    for item in spooled:
        item.name = f"{path.rstrip('/')}/{item.name}"
        _check_path(item.name)
    return spooled


def _check_path(path: str) -> None:
    try:
        check_relative_path(path)
    except Invalid as exc:
        raise HTTPError(400, str(exc)) from exc
