"""GET on file routes: listings, one file, folders and zips (``FileList.represent``, spec §13.1–§13.3).

``<owner>/resources/{R}/files[/{path}]`` and ``<owner>/files[/{path}]`` share one view:

* no path → the listing (columns ``Name, Size, URI, collection, file_tags, file_format,
  file_content, cat_ID, digest``; title ``Files``; ``Columns`` carries ``serverRoot`` for ``URI``;
  no ``totalRecords``), or with ``format=zip`` an archive of every listed file;
* a path ending in ``/`` → the folder's entries (``recursive=false``: direct children only);
* any other path → that file (``format=zip`` wraps it unless it is a ``.zip`` already).

URIs: a single catalog named in the URL uses the URL's own owner path (``Scope.base_uri``); anything
spanning catalogs uses each catalog's ``resource_path`` (``files_scope.resource_base``).
Filters ``file_format=``/``file_content=`` (repeatable, ``NULL`` = empty) apply to listings and zips;
``locator=absolutePath|projectPath`` swaps the URI column for a disk path; ``accept-not-found=true``
turns a 404 into 204.
"""

from __future__ import annotations

import os
from collections.abc import Callable

from werkzeug.datastructures import MultiDict
from werkzeug.wrappers import Response

from xnatfs.emulator.app import Context
from xnatfs.emulator.handlers.files_download import send_file
from xnatfs.emulator.handlers.files_scope import Scope, resource_base, truthy
from xnatfs.emulator.handlers.files_zip import ZipItem, archive_response, zip_response
from xnatfs.emulator.responses import HTTPError, result_set
from xnatfs.emulator.store import FileRow, Resource, Store

FILE_COLUMNS = ("Name", "Size", "URI", "collection", "file_tags", "file_format", "file_content", "cat_ID", "digest")
LOCATORS = {"absolutepath": "absolutePath", "projectpath": "projectPath"}

Listed = tuple[Resource, FileRow, str]  # a file, its resource and its URI


def get_files(ctx: Context, scope: Scope, resource_spec: str | None, path: str | None) -> Response:
    """GET/HEAD on a files route; see the module docstring."""
    try:
        return _get_files(ctx, scope, resource_spec, path)
    except HTTPError as exc:
        if exc.status == 404 and truthy(ctx.request.args.get("accept-not-found")):
            return Response("", status=204)
        raise


def _get_files(ctx: Context, scope: Scope, resource_spec: str | None, path: str | None) -> Response:
    store, args = ctx.store, ctx.request.args
    is_zip = (args.get("format") or "").lower() == "zip"
    if resource_spec is not None:
        resources = scope.select_resources(store, resource_spec)
    else:
        resources = scope.all_resources(store, include_children=truthy(args.get("all")) and scope.kind == "experiment")
    single = resource_spec is not None and len(resources) == 1
    if single and not is_zip:
        base = scope.base_uri() + f"/resources/{resources[0].id}"
        bases = {resources[0].id: base}
    else:
        bases = {r.id: resource_base(store, r) for r in resources}
    by_id = {r.id: r for r in resources}

    if path and not path.endswith("/"):
        for resource in resources:
            row = store.get_file(resource.id, path)
            if row is not None:
                if is_zip and not row.name.lower().endswith(".zip"):
                    return archive_response([ZipItem(row.name, row.disk_path)], scope.download_name(), args)
                return send_file(ctx, row)
        raise HTTPError(404, "Unable to find catalog entry for given uri." if single else "Unable to find file.")

    rows = store.list_files([r.id for r in resources], prefix=path or None)
    if path and not truthy_default(args.get("recursive"), True):
        rows = [r for r in rows if "/" not in r.path[len(path):]]
    keep = entry_filter(args)
    listed = [(by_id[r.resource_id], r, f"{bases[r.resource_id]}/files/{r.path}") for r in rows if keep(r)]
    if is_zip:
        if path:  # a folder: entries named by their path in the catalog, as XNAT's fileList does
            items = [ZipItem(row.path, row.disk_path) for _, row, _ in listed]
            if not items:
                raise HTTPError(404, "Unable to find file.")
            return archive_response(items, scope.download_name(), args)
        return zip_response(args, scope, listed)
    return file_table(ctx, listed)


def file_table(ctx: Context, listed: list[Listed]) -> Response:
    """The ``Files`` ResultSet (``CatalogUtils.getEntryDetails`` rows)."""
    locator = LOCATORS.get((ctx.request.args.get("locator") or "").lower())
    columns = [locator if (c == "URI" and locator) else c for c in FILE_COLUMNS]
    rows = [file_row(ctx.store, resource, row, uri, locator) for resource, row, uri in listed]
    return result_set(ctx.request, rows, columns, meta={"title": "Files"},
                      column_props={"URI": {"serverRoot": ""}}, total_records=False)


def file_row(store: Store, resource: Resource, row: FileRow, uri: str, locator: str | None = None) -> dict:
    entry = {
        "Name": row.name, "Size": row.size, "URI": uri, "collection": resource.label, "file_tags": row.tags,
        "file_format": row.format, "file_content": row.content, "cat_ID": resource.id, "digest": row.md5,
    }
    if locator == "absolutePath":
        entry[locator] = str(row.disk_path)
    elif locator == "projectPath":
        entry[locator] = os.path.relpath(row.disk_path, store.data_dir)
    return entry


def entry_filter(args: MultiDict) -> Callable[[FileRow], bool]:
    """``FileList.buildFilter``: repeatable ``file_format``/``file_content``; ``NULL`` matches empty."""
    formats, contents = args.getlist("file_format"), args.getlist("file_content")

    def matches(value: str, wanted: list[str]) -> bool:
        return not wanted or any((w == "NULL" and not value) or w == value for w in wanted)

    return lambda row: matches(row.format, formats) and matches(row.content, contents)


def truthy_default(value: str | None, default: bool) -> bool:
    return default if value is None else truthy(value)
