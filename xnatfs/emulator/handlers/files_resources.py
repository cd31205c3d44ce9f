"""Resources (XNAT's file catalogs): list, catalog document, create and delete (spec §12).

* ``GET <owner>/resources`` — ``CatalogResourceList``: fixed columns (``columns=`` ignored), no
  ``ID``/``URI`` (xnatpy patches those in itself), title ``Resources``; ``all=true`` on an experiment
  adds its scans', reconstructions' and assessors' resources.
* ``GET <owner>/resources/{R}`` — ``CatalogResource``: the catalog XML, always ``text/xml``
  whatever ``format=`` says; xnatpy recognises it by its first bytes, so the declaration is written
  exactly as XNAT's serializer writes it.
* ``PUT``/``POST <owner>/resources/{label}`` — create (``format``, ``content``, ``tags``,
  ``description`` from the query); 200 with an empty body; 409 when the label exists.
* ``DELETE <owner>/resources/{R}`` — the resource and its files. A resource that does not exist
  answers 200 with nothing done: XNAT's handler returns early without setting a status.
"""

from __future__ import annotations

from lxml import etree
from werkzeug.wrappers import Response

from xnatfs.emulator.app import Context
from xnatfs.emulator.handlers.files_scope import Scope, resolve_scope, resource_category, truthy
from xnatfs.emulator.responses import HTTPError, result_set
from xnatfs.emulator.store import Conflict, FileRow, Resource, Store

RESOURCE_COLUMNS = ("xnat_abstractresource_id", "label", "element_name", "category", "cat_id", "cat_desc",
                    "file_count", "file_size", "tags", "content", "format")

CAT_NS = "http://nrg.wustl.edu/catalog"
XSI_NS = "http://www.w3.org/2001/XMLSchema-instance"
XML_DECLARATION = '<?xml version="1.0" encoding="UTF-8"?>\n'


def resource_rows(store: Store, resources: list[Resource], *, widened: bool = False) -> list[dict]:
    """One ``CatalogUtils.populateTable`` row per resource; counts and sizes from the file table."""
    stats = store.file_stats_many([r.id for r in resources])
    rows = []
    for resource in resources:
        category, cat_id, cat_desc = resource_category(store, resource, widened=widened)
        count, size = stats.get(resource.id, (0, 0))
        rows.append({
            "xnat_abstractresource_id": resource.id, "label": resource.label,
            "element_name": resource.xsi_type, "category": category, "cat_id": cat_id, "cat_desc": cat_desc,
            "file_count": count, "file_size": size, "tags": resource.tags,
            "content": resource.content, "format": resource.format,
        })
    return rows


def list_resources(ctx: Context, **values: str) -> Response:
    scope = resolve_scope(ctx.store, values, ctx.app.config.merged_in_out)
    widened = truthy(ctx.request.args.get("all")) and scope.kind == "experiment"
    resources = scope.all_resources(ctx.store, include_children=widened)
    rows = resource_rows(ctx.store, resources, widened=widened)
    return result_set(ctx.request, rows, RESOURCE_COLUMNS, meta={"title": "Resources"})


def resource(ctx: Context, resource: str, **values: str) -> Response:
    scope = resolve_scope(ctx.store, values, ctx.app.config.merged_in_out)
    method = ctx.request.method
    if method in ("GET", "HEAD"):
        found = scope.select_resources(ctx.store, resource)
        if not found:
            raise HTTPError(404, "Unable to find the specified catalog.")
        return Response(catalog_xml(found[0], ctx.store.list_files(found[0].id)), content_type="text/xml")
    if method in ("PUT", "POST"):
        create_resource(ctx, scope, resource)
        return Response("", content_type="text/plain")
    for found in scope.select_resources(ctx.store, resource):
        ctx.store.delete_resource(found.id)
    return Response("", content_type="text/plain")


def create_resource(ctx: Context, scope: Scope, label: str) -> Resource:
    """``CatalogResource.handlePost``: a new, empty catalog labelled ``label`` (409 if it exists)."""
    if scope.select_resources(ctx.store, label):
        raise HTTPError(409, "Specified resource already exists.")
    check_label(label)
    args = ctx.request.args
    try:
        return ctx.store.create_resource(scope.owner, label, format=args.get("format", ""),
                                         content=args.get("content", ""), tags=joined_tags(args.getlist("tags")),
                                         description=args.get("description", ""), io=scope.create_side)
    except Conflict as exc:
        raise HTTPError(409, "Specified resource already exists.") from exc


def check_label(label: str) -> None:
    """Labels name catalogs, never disk paths, but "." and ".." would make confusing URIs."""
    if label in (".", "..") or not label.strip():
        raise HTTPError(400, f"Invalid resource label: {label!r}")


def joined_tags(values: list[str]) -> str:
    """Repeated ``tags=`` parameters, each possibly a comma list, as one comma-joined string."""
    tags = [t.strip() for value in values for t in value.split(",")]
    return ",".join(t for t in tags if t)


def catalog_xml(resource: Resource, files: list[FileRow]) -> bytes:
    """The ``cat:Catalog`` document XNAT keeps next to a resource's files (``catalog.xsd``)."""
    nsmap = {"cat": CAT_NS, "xsi": XSI_NS}
    root = etree.Element(f"{{{CAT_NS}}}Catalog", nsmap=nsmap)
    root.set("ID", resource.label)
    if resource.description:
        root.set("description", resource.description)
    entries = etree.SubElement(root, f"{{{CAT_NS}}}entries")
    for row in files:
        entry = etree.SubElement(entries, f"{{{CAT_NS}}}entry")
        entry.set("URI", row.path)
        entry.set("ID", row.path)
        entry.set("name", row.name)
        if row.format:
            entry.set("format", row.format)
        if row.content:
            entry.set("content", row.content)
        entry.set("digest", row.md5)
        if row.tags:
            tags = etree.SubElement(entry, f"{{{CAT_NS}}}tags")
            for tag in row.tags.split(","):
                etree.SubElement(tags, f"{{{CAT_NS}}}tag").text = tag
    return XML_DECLARATION.encode() + etree.tostring(root, encoding="UTF-8", xml_declaration=False, pretty_print=True)
