"""The server's XSD data model (L3): XSD bytes → plain class specs; no network of its own.

``specs`` holds the frozen value objects, ``xsd`` parses documents into them (memoized),
``loader`` fetches a server's documents through a caller-supplied ``fetch(path) -> bytes``.
"""

from __future__ import annotations

from xnatfs.schema.loader import load_server_specs
from xnatfs.schema.specs import ChildSpec, ClassSpec, FieldSpec, SchemaSpecs, python_attribute_name, python_class_name
from xnatfs.schema.xsd import parse_schemas

__all__ = [
    "ChildSpec", "ClassSpec", "FieldSpec", "SchemaSpecs", "load_server_specs", "parse_schemas",
    "python_attribute_name", "python_class_name",
]
