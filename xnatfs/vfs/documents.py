"""``xnat.json``: an object's fields as a small, stable JSON document. Pure functions.

The document is rendered from the object's record, which came from the server's JSON (for scans,
assessors and reconstructions: from their session's document, so no request of their own). Keys:
``ID``, ``label``, ``xsiType``, ``URI``, ``fields`` (XNAT's ``data_fields``, sorted) and, when the
server sent them, the object's other child records (``demographics``, ``sharing/share``,
``fields/field``, ``parameters/addParam`` …) under ``children``. The objects below it (scans,
resources …) are not repeated: they are the directories next to the document.

Rendering is deterministic (sorted keys), so the same record always gives the same bytes and size.
``xnat.xml`` is the server's own XML document and is not rendered here.
"""

from __future__ import annotations

import json
from typing import Any

from xnatfs.model.records import XObject


def object_json(obj: XObject) -> bytes:
    """The ``xnat.json`` bytes for ``obj`` (UTF-8, indented, newline-terminated)."""
    doc: dict[str, Any] = {
        "ID": obj.id,
        "label": obj.label,
        "xsiType": obj.xsi_type,
        "URI": obj.uri,
        "fields": dict(obj.fields),
    }
    if obj.extra:
        doc["children"] = {name: [dict(item) for item in items] for name, items in obj.extra.items()}
    text = json.dumps(doc, indent=2, sort_keys=True, ensure_ascii=False, default=str)
    return text.encode("utf-8", "surrogateescape") + b"\n"


__all__ = ["object_json"]
