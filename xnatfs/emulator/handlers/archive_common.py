"""Pieces every archive handler shares: the answers of PUT/DELETE, the fields of a create/update
request (query string and XML body merged) and what an update may not change, the project a PUT
names, label rules and listing rows.

Answers (spec §8.3, §9.3, §10.3, §11.1): a created subject/experiment/assessor → 201 with its
accession ID as ``text/plain``; an update → 200 with the ID; projects, scans, reconstructions,
renames and deletes → 200 with an empty body.
"""

from __future__ import annotations

import re
from typing import Any, Callable, Iterable

from werkzeug.wrappers import Response

from xnatfs.emulator.app import Context
from xnatfs.emulator.handlers.archive_fields import (convert, fields_from_query, filter_records, listing_columns,
                                                     store_key)
from xnatfs.emulator.handlers.archive_xmlbody import XmlDocument, read_xml_body
from xnatfs.emulator.items import schema
from xnatfs.emulator.responses import HTTPError, result_set
from xnatfs.emulator.store import Experiment, Store, Subject

VALID_LABEL = re.compile(r"^[A-Za-z0-9_-]+$")


def empty(status: int = 200) -> Response:
    return Response("", status=status, mimetype="text/plain")


def accession(object_id: str, created: bool) -> Response:
    return Response(object_id, status=201 if created else 200, mimetype="text/plain")


class Submission:
    """The fields of one create/update request: XML body (if any) overlaid by the query string."""

    def __init__(self, ctx: Context, kind: str, default_type: str | None, existing_type: str | None = None) -> None:
        """``default_type`` is the type of a new object when nothing names one; ``existing_type`` the
        type of the object being updated (used to read the query's field names and dates)."""
        request = ctx.request
        self.document: XmlDocument | None = read_xml_body(request)
        self.query_type = request.args.get("xsiType")
        self.xsi_type = self.query_type or (self.document.xsi_type if self.document else None) or default_type
        # the schema type that reads the field names: a plugin type falls back to what it extends
        shape = next((t for t in (self.xsi_type, existing_type) if t in schema().types), "xnat:experimentData")
        self.fields: dict[str, Any] = {}
        if self.document is not None:
            self.fields.update(document_fields(self.document, kind, shape))
        query = fields_from_query(request.args, kind, shape)
        custom = query.pop("fields", None)
        self.fields.update(query)
        if custom:
            self.fields.setdefault("fields", {}).update(custom)
        #: A plain ``label=`` parameter on an existing object renames it (and nothing else is saved).
        self.rename = request.args.get("label")

    def pop(self, key: str, default: Any = None) -> Any:
        return self.fields.pop(key, default)

    def check_unchanged(self, key: str, current: str, status: int, message: str) -> None:
        value = self.fields.pop(key, None)
        if value not in (None, "") and value != current:
            raise HTTPError(status, message)

    def check_identity(self, existing: Subject | Experiment) -> None:
        """An update may repeat a subject's or experiment's ID, project and label, not change them."""
        self.check_unchanged("ID", existing.id, 400, "ID cannot be modified")
        self.check_unchanged("project", existing.project, 409, "Project must be modified through separate URI.")
        self.check_unchanged("label", existing.label, 400, "Label must be modified through separate URI.")


def existing_project_id(store: Store, project: str) -> str:
    """The ID of the project a create names; 404 as XNAT's create paths word it."""
    found = store.get_project(project)
    if found is None:
        raise HTTPError(404, f"Unable to identify project {project}")
    return found.id


def document_fields(document: XmlDocument, kind: str, shape: str | None = None) -> dict[str, Any]:
    """Store fields of a parsed XML document (``shape``: the schema type to read it with)."""
    shape = document.xsi_type if document.xsi_type in schema().types else (shape or document.xsi_type)
    fields = {store_key(kind, path): convert(shape, path, value)
              for path, value in document.fields.items()}
    if document.custom:
        fields["fields"] = dict(document.custom)
    return fields


def check_label(label: str, what: str = "experiment") -> None:
    if not VALID_LABEL.match(label):
        raise HTTPError(417, f"Invalid character in {what} label.")


def listing(ctx: Context, kind: str, records: list[dict], default: Iterable[tuple[str, str]], root_type: str,
            uri: Callable[[dict], str], *, meta: dict | None = None, paging: bool = False) -> Response:
    """A ResultSet of archive records: ``columns=``, field filters, ``URI`` and every value a string."""
    records = filter_records(ctx.request.args, kind, records, root_type)
    columns = listing_columns(ctx.request.args, kind, list(default), root_type)
    rows = []
    for rec in records:
        rec = dict(rec, URI=uri(rec))
        rows.append({name: rec.get(path) for name, path in columns})
    return result_set(ctx.request, rows, [name for name, _ in columns], meta=meta, paging=paging)
