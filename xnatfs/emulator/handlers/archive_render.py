"""Archive objects → :class:`~xnatfs.emulator.items.Item` trees, and the single-object response.

What XNAT nests inside each object's document (spec §3.3, §9.2, §10.2, SRC ItemJSONBuilder):

* project: its fields, ``PI``, ``resources/resource``, ``fields/field``;
* subject: ``demographics``, ``resources/resource``, ``experiments/experiment`` (whole sessions),
  ``fields/field``;
* session: ``scans/scan`` (each with its resources as ``file``), ``reconstructions/reconstructedImage``
  and ``assessors/assessor`` (resources under ``out/file``), ``resources/resource``, ``fields/field``;
* resource entries carry ``xnat_abstractresource_id``, ``label``, ``file_count``, ``file_size``,
  ``format``, ``content`` and the catalog ``URI``.
"""

from __future__ import annotations

import html

from werkzeug.wrappers import Request, Response

from xnatfs.emulator.app import Context
from xnatfs.emulator.handlers.archive_fields import record
from xnatfs.emulator.items import Item, custom_field_items, items_document, java_date, xml_document
from xnatfs.emulator.responses import ITEM_VARIANTS, requested_format
from xnatfs.emulator.store import Experiment, Owner, Project, Reconstruction, Scan, Store, Subject

#: Record keys that are listing columns only, never data_fields.
_VIRTUAL = {"xsiType", "insert_date", "insert_user", "last_modified", "xnat_imagescandata_id",
            "xnat_reconstructedimagedata_id", "session_ID"}


def object_response(ctx: Context, item: Item) -> Response:
    """SecureResource.representItem: ``json`` → ``{"items": [...]}``, ``html`` → a report page, any
    other format → the XML document. Without ``format`` the variants are HTML then XML, so
    ``Accept: */*`` gets the page and ``Accept: text/xml`` the document (spec §3.1)."""
    fmt = requested_format(ctx.request, variants=ITEM_VARIANTS)
    if fmt == "json":
        return Response(items_document(item), mimetype="application/json")
    if fmt == "html":
        return Response(report_page(item), mimetype="text/html")
    return Response(xml_document(item, site_url(ctx.request, ctx.app.config.site_url)), mimetype="text/xml")


def report_page(item: Item) -> str:
    """A stand-in for XNAT's Turbine report screen (ItemHTMLRepresentation): the object's type,
    label and fields, and the labels of its children. Browsers get this; scripts ask for a format."""
    fields = item.fields
    name = html.escape(str(fields.get("label") or fields.get("ID") or fields.get("id") or ""))
    rows = "".join(f"<tr><th>{html.escape(str(k))}</th><td>{html.escape(str(v))}</td></tr>"
                   for k, v in fields.items() if v not in (None, ""))
    sections = "".join(
        f"<h4>{html.escape(path)}</h4><ul>" + "".join(
            f"<li>{html.escape(str(c.fields.get('label') or c.fields.get('ID') or c.xsi_type))}</li>"
            for c in children) + "</ul>"
        for path, children in item.children)
    return (f"<!DOCTYPE html>\n<html><head><title>XNAT - {html.escape(item.xsi_type)} {name}</title></head>"
            f"<body><h2>{html.escape(item.xsi_type)}: {name}</h2><table>{rows}</table>{sections}</body></html>\n")


def site_url(request: Request, configured: str = "") -> str:
    return configured or request.host_url.rstrip("/")


def _meta(insert_date: str | None) -> dict:
    start = java_date(insert_date)
    return {"start_date": start} if start else {}


def _fields(rec: dict) -> dict:
    return {k: v for k, v in rec.items() if k not in _VIRTUAL and v not in (None, "")}


def resource_items(store: Store, owner: Owner, io: str | None = None) -> list[Item]:
    """The resources of one owner (of one side, ``in``/``out``, when given) as ``xnat:resourceCatalog``
    items with their file statistics."""
    resources = store.list_resources(owner, io)
    stats = store.file_stats_many([r.id for r in resources])
    items = []
    for res in resources:
        count, size = stats.get(res.id, (0, 0))
        fields = {"xnat_abstractresource_id": res.id, "label": res.label, "file_count": count,
                  "file_size": size, "format": res.format, "content": res.content,
                  "description": res.description,
                  "URI": str(store.archive_dir / str(res.id) / f"{res.label}_catalog.xml")}
        item = Item(res.xsi_type, {k: v for k, v in fields.items() if v != ""})
        tags = [t.strip() for t in res.tags.split(",") if t.strip()]
        item.add_children("tags/tag", [Item("xnat:abstractResource_tag", _tag(t)) for t in tags])
        items.append(item)
    return items


def _tag(text: str) -> dict:
    name, sep, value = text.partition("=") if "=" in text else text.partition(":")
    return {"tag": value, "name": name} if sep else {"tag": text}


def project_item(store: Store, project: Project) -> Item:
    item = Item("xnat:projectData", _fields(record(project)), meta=_meta(project.insert_date))
    item.add_children("resources/resource", resource_items(store, project))
    item.add_children("fields/field", custom_field_items(item.xsi_type, project.fields.get("fields")))
    return item


def subject_item(store: Store, subject: Subject) -> Item:
    item = Item("xnat:subjectData", _fields(record(subject)), meta=_meta(subject.insert_date))
    item.add_children("sharing/share", [
        Item("xnat:projectParticipant", {k: v for k, v in (("label", share.label), ("project", share.project),
                                                           ("subject_ID", subject.id)) if v})
        for share in store.shares_of(subject)])
    item.add_children("resources/resource", resource_items(store, subject))
    item.add_children("experiments/experiment",
                      [experiment_item(store, e) for e in store.list_experiments(subject_id=subject.id)])
    item.add_children("fields/field", custom_field_items(item.xsi_type, subject.fields.get("fields")))
    return item


def experiment_item(store: Store, experiment: Experiment) -> Item:
    """A session (or any experiment); an image assessor is rendered by :func:`assessor_item`."""
    if experiment.session_id:
        return assessor_item(store, experiment)
    rec = record(experiment)
    rec["id"] = experiment.id  # recorded XNAT output carries both ID and id (spec §3.3)
    item = Item(experiment.xsi_type, _fields(rec), meta=_meta(experiment.insert_date),
                base_type="xnat:imageSessionData")
    session = experiment
    item.add_children("sharing/share", share_items(store, experiment))
    item.add_children("scans/scan", [scan_item(store, s, session) for s in store.list_scans(session.id)])
    item.add_children("reconstructions/reconstructedImage",
                      [recon_item(store, r) for r in store.list_reconstructions(session.id)])
    item.add_children("assessors/assessor",
                      [assessor_item(store, a) for a in store.list_experiments(session_id=session.id)])
    item.add_children("resources/resource", resource_items(store, experiment))
    item.add_children("fields/field", custom_field_items(item.xsi_type, experiment.fields.get("fields")))
    return item


def share_items(store: Store, experiment: Experiment) -> list[Item]:
    """``sharing/share`` of an experiment: the projects it is shared into, with its label there."""
    return [Item("xnat:experimentData_share",
                 {k: v for k, v in (("label", share.label), ("project", share.project)) if v})
            for share in store.shares_of(experiment)]


def assessor_item(store: Store, assessor: Experiment) -> Item:
    rec = record(assessor)
    rec.pop("subject_ID")  # an image assessor belongs to its session, not directly to the subject
    rec["id"] = assessor.id
    item = Item(assessor.xsi_type, _fields(rec), meta=_meta(assessor.insert_date), base_type="xnat:imageAssessorData")
    item.add_children("in/file", resource_items(store, assessor, "in"))
    item.add_children("out/file", resource_items(store, assessor, "out"))
    for path, entries in assessor.fields.items():  # the assessor's own child items, e.g. "scans/scan"
        if isinstance(entries, list):
            element_type = f"{assessor.xsi_type}_{path.rsplit('/', 1)[-1]}"  # XFT's name, as "…_field"
            item.add_children(path, [Item(element_type, dict(entry)) for entry in entries if isinstance(entry, dict)])
    item.add_children("fields/field", custom_field_items(item.xsi_type, assessor.fields.get("fields")))
    return item


def scan_item(store: Store, scan: Scan, session: Experiment | None = None) -> Item:
    session = session or store.get_experiment(scan.experiment_id)
    rec = record(scan, project=session.project if session else None)
    rec["xnat_imagescandata_id"] = scan.pk
    item = Item(scan.xsi_type, _fields(rec) | {"xnat_imagescandata_id": scan.pk}, meta=_meta(scan.insert_date),
                base_type="xnat:imageScanData")
    item.add_children("file", resource_items(store, scan))
    return item


def recon_item(store: Store, recon: Reconstruction) -> Item:
    rec = _fields(record(recon)) | {"xnat_reconstructedimagedata_id": recon.pk}
    item = Item(recon.xsi_type, rec, meta=_meta(recon.insert_date), base_type="xnat:reconstructedImageData")
    item.add_children("in/file", resource_items(store, recon, "in"))
    item.add_children("out/file", resource_items(store, recon, "out"))
    return item
