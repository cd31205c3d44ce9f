"""Single-object bodies: XNAT's ``items`` JSON and its XML documents, both driven by ``xnat.xsd``.

An archive object reaches this module as an :class:`Item`: its xsi type, a flat dict of field values
keyed by XML path relative to the object (``"date"``, ``"scanner/manufacturer"``,
``"demographics/gender"``, ``"PI/firstname"``) and explicit child collections keyed by their path
(``"scans/scan"``, ``"file"``, ``"resources/resource"``). The schema decides the rest, as XFT does
(spec §3.3, SRC ItemJSONBuilder / SAXWriter):

* ``format=json``: single-valued inline elements are flattened into ``data_fields`` with ``/``;
  elements with a named complex type (``demographics``, ``PI``, ``investigator``) become
  ``children`` entries of their own; values keep their schema types (integers, floats, booleans).
* ``format=xml``: the element named by the top-level ``xs:element`` of the type (``xnat:MRSession``),
  attributes and elements in schema order, ``xsi:type`` on polymorphic children, all namespace
  declarations and ``xsi:schemaLocation``.

The schema model is read once from the packaged ``schemas/xnat/xnat.xsd`` with a safe lxml parser.
"""

from __future__ import annotations

import datetime
import functools
import json
from dataclasses import dataclass, field
from importlib import resources
from typing import Any, Iterable

from lxml import etree

XS = "http://www.w3.org/2001/XMLSchema"
XSI = "http://www.w3.org/2001/XMLSchema-instance"
XNAT_NS = "http://nrg.wustl.edu/xnat"
NAMESPACES = {"xnat": XNAT_NS, "prov": "http://www.nbirn.net/prov", "xdat": "http://nrg.wustl.edu/xdat",
              "cat": "http://nrg.wustl.edu/catalog", "xsi": XSI}

#: Concrete types XNAT writes for elements declared with an abstract type.
CONCRETE_TYPES = {"xnat:abstractDemographicData": "xnat:demographicData",
                  "xnat:abstractResource": "xnat:resourceCatalog"}

_INT_TYPES = {"xs:integer", "xs:int", "xs:long", "xs:short", "xs:nonNegativeInteger", "xs:positiveInteger"}
_FLOAT_TYPES = {"xs:float", "xs:double", "xs:decimal"}

SAFE_PARSER = etree.XMLParser(resolve_entities=False, no_network=True, huge_tree=False)


# ---- the schema model ----------------------------------------------------------------------------
@dataclass
class ElementDef:
    name: str
    type: str | None  # a qualified type name, or None when inline
    inline: "TypeDef | None" = None
    many: bool = False


@dataclass
class TypeDef:
    name: str | None
    base: str | None = None
    text_type: str | None = None  # simpleContent base: the element carries text
    attributes: dict[str, str] = field(default_factory=dict)
    elements: list[ElementDef] = field(default_factory=list)


class Schema:
    """Complex types of ``xnat.xsd`` (with their extension chains) and its top-level elements.

    The schema never changes once read, so what is derived from a type (its chain of bases, its
    merged attributes and elements) is computed once per type and kept: every document and listing
    asks for them again (a subject document walks about sixty elements). Callers must not change
    what they get back.
    """

    def __init__(self, root: etree._Element) -> None:
        self.types: dict[str, TypeDef] = {}
        self.element_of_type: dict[str, str] = {}
        self.type_of_element: dict[str, str] = {}
        self._derived: dict[tuple[str, str | None, int], Any] = {}
        for node in root:
            if node.tag == f"{{{XS}}}complexType":
                name = "xnat:" + node.get("name")
                self.types[name] = _parse_type(node, name)
            elif node.tag == f"{{{XS}}}element" and node.get("type"):
                self.element_of_type.setdefault(node.get("type"), node.get("name"))
                self.type_of_element[node.get("name")] = node.get("type")

    def _once(self, what: str, type_name: str | None, inline: TypeDef | None, make: Any) -> Any:
        """``make()`` the first time ``what`` is asked of this type (or inline type), then the same
        object. Inline types are keyed by identity: they live as long as the schema."""
        key = (what, type_name, id(inline) if inline is not None else 0)
        found = self._derived.get(key)
        if found is None:
            found = self._derived[key] = make()
        return found

    def chain(self, type_name: str | None) -> list[TypeDef]:
        """The type and its bases, base first."""
        def make() -> list[TypeDef]:
            out: list[TypeDef] = []
            current = type_name
            while current in self.types and len(out) < 20:
                td = self.types[current]
                out.insert(0, td)
                current = td.base
            return out

        return self._once("chain", type_name, None, make)

    def is_a(self, type_name: str, base: str) -> bool:
        return any(td.name == base for td in self.chain(type_name))

    def attributes(self, type_name: str | None, inline: TypeDef | None = None) -> dict[str, str]:
        def make() -> dict[str, str]:
            merged: dict[str, str] = {}
            for td in ([inline] if inline else self.chain(type_name)):
                merged.update(td.attributes)
            return merged

        return self._once("attributes", type_name, inline, make)

    def elements(self, type_name: str | None, inline: TypeDef | None = None) -> list[ElementDef]:
        return self._once("elements", type_name, inline, lambda: [
            el for td in ([inline] if inline else self.chain(type_name)) for el in td.elements])

    def text_type(self, type_name: str | None, inline: TypeDef | None = None) -> str | None:
        for td in reversed([inline] if inline else self.chain(type_name)):
            if td.text_type:
                return td.text_type
        return None

    def element(self, type_name: str | None, name: str, inline: TypeDef | None = None) -> ElementDef | None:
        return next((el for el in self.elements(type_name, inline) if el.name == name), None)

    def field_type(self, type_name: str, path: str) -> str | None:
        """The simple type of a field path (``"scanner/manufacturer"``), or None if unknown."""
        return self._walk(type_name, path)[1]

    def canonical_path(self, type_name: str, path: str) -> str:
        """A path with the schema's spelling of each name (XFT matches field names case-insensitively)."""
        return self._walk(type_name, path)[0]

    def _walk(self, type_name: str, path: str) -> tuple[str, str | None]:
        current, inline = CONCRETE_TYPES.get(type_name, type_name), None
        parts = path.split("/")
        for index, part in enumerate(parts):
            last = index == len(parts) - 1
            attributes = self.attributes(current, inline) if last else {}
            elements = {el.name: el for el in self.elements(current, inline)}
            name = _spelling(part, list(attributes) + list(elements))
            if name is None:
                return "/".join(parts), None
            parts[index] = name
            if name in attributes and name not in elements:
                return "/".join(parts), attributes[name]
            el = elements[name]
            if el.inline is not None:
                current, inline = None, el.inline
            elif el.type in self.types:
                current, inline = CONCRETE_TYPES.get(el.type, el.type), None
            else:
                return "/".join(parts), (el.type if last else None)
            if last:
                return "/".join(parts), self.text_type(current, inline)
        return "/".join(parts), None

    def is_item_element(self, el: ElementDef) -> bool:
        """XFT keeps an element in a separate item (a JSON child) when it is a named complex type."""
        return el.type in self.types

    def root_tag(self, xsi_type: str) -> str:
        """``xnat:mrSessionData`` → ``xnat:MRSession`` (the top-level element of that type)."""
        name = self.element_of_type.get(xsi_type)
        if name:
            return f"xnat:{name}"
        prefix, _, local = xsi_type.partition(":")
        local = local[:-4] if local.endswith("Data") else local
        return f"{prefix}:{local[:1].upper()}{local[1:]}"

    def type_of_root(self, tag: str) -> str | None:
        """``MRSession`` → ``xnat:mrSessionData``."""
        return self.type_of_element.get(tag)


def _spelling(name: str, known: list[str]) -> str | None:
    if name in known:
        return name
    return next((k for k in known if k.lower() == name.lower()), None)


def _parse_type(node: etree._Element, name: str | None) -> TypeDef:
    td = TypeDef(name)
    _collect(node, td)
    return td


def _collect(node: etree._Element, td: TypeDef) -> None:
    for child in node:
        tag = etree.QName(child).localname if isinstance(child.tag, str) else ""
        if tag in ("sequence", "choice", "all", "complexContent"):
            _collect(child, td)
        elif tag == "simpleContent":
            ext = child[0] if len(child) else None
            for sub in child:
                if isinstance(sub.tag, str) and etree.QName(sub).localname in ("extension", "restriction"):
                    ext = sub
            if ext is not None:
                td.text_type = ext.get("base", "xs:string")
                _collect(ext, td)
        elif tag in ("extension", "restriction"):
            td.base = child.get("base")
            _collect(child, td)
        elif tag == "element" and child.get("name"):
            inline_complex = child.find(f"{{{XS}}}complexType")
            el = ElementDef(child.get("name"), child.get("type"),
                            many=child.get("maxOccurs", "1") not in ("0", "1"))
            if inline_complex is not None:
                el.inline = _parse_type(inline_complex, None)
            elif el.type is None:
                el.type = _restriction_base(child)
            td.elements.append(el)
        elif tag == "attribute" and child.get("name"):
            td.attributes[child.get("name")] = child.get("type") or _restriction_base(child)


def _restriction_base(node: etree._Element) -> str:
    restriction = node.find(f"{{{XS}}}simpleType/{{{XS}}}restriction")
    return restriction.get("base", "xs:string") if restriction is not None else "xs:string"


@functools.lru_cache(maxsize=1)
def schema() -> Schema:
    path = resources.files("xnatfs.emulator") / "schemas" / "xnat" / "xnat.xsd"
    return Schema(etree.fromstring(path.read_bytes(), SAFE_PARSER))


# ---- items ---------------------------------------------------------------------------------------
@dataclass
class Item:
    """One XFT item: xsi type, flat field values (paths relative to it) and child collections."""

    xsi_type: str
    fields: dict[str, Any]
    children: list[tuple[str, list["Item"]]] = field(default_factory=list)
    meta: dict[str, Any] = field(default_factory=dict)
    #: The type whose schema shapes the item when ``xsi_type`` is not in xnat.xsd (a plugin type).
    base_type: str | None = None

    @property
    def schema_type(self) -> str:
        return self.xsi_type if self.xsi_type in schema().types or not self.base_type else self.base_type

    def add_children(self, path: str, items: Iterable["Item"]) -> None:
        items = list(items)
        if items:
            self.children.append((path, items))


def custom_field_items(owner_type: str, custom: dict[str, Any] | None) -> list[Item]:
    """``fields/field`` entries (custom variables) of an object, as XNAT shows them."""
    base = "xnat:subjectData" if owner_type == "xnat:subjectData" else (
        "xnat:projectData" if owner_type == "xnat:projectData" else "xnat:experimentData")
    return [Item(f"{base}_field", {"field": value, "name": name}) for name, value in (custom or {}).items()]


def java_date(timestamp: str | None) -> str | None:
    """``2020-09-15 16:13:33.35`` (the server's local time) → ``Tue Sep 15 16:13:33 AEST 2020``: Java's
    ``Date.toString``, which prints the JVM's default zone (from ``TZ``) by its abbreviation, as the
    ``meta.start_date`` of XNAT's item JSON does."""
    if not timestamp:
        return None
    text = timestamp[:19]
    try:
        if len(text) == 19 and text[10] == " ":  # the store's own form: fromisoformat is 20x faster
            local = datetime.datetime.fromisoformat(text).astimezone()
        else:
            local = datetime.datetime.strptime(text, "%Y-%m-%d %H:%M:%S").astimezone()
    except ValueError:
        return None
    return local.strftime("%a %b %d %H:%M:%S ") + (local.tzname() or "UTC") + local.strftime(" %Y")


def typed(value: Any, simple_type: str | None) -> Any:
    """A field value in its schema type (ItemJSONBuilder keeps Java types, spec §3.3)."""
    if not isinstance(value, str) or simple_type is None:
        return value
    try:
        if simple_type in _INT_TYPES:
            return int(value)
        if simple_type in _FLOAT_TYPES:
            return float(value)
    except ValueError:
        return value
    if simple_type == "xs:boolean" and value.lower() in ("true", "false", "1", "0"):
        return value.lower() in ("true", "1")
    return value


def item_json(item: Item) -> dict[str, Any]:
    """One entry of the ``items`` list: ``meta``, ``data_fields``, ``children``."""
    sch = schema()
    data_fields: dict[str, Any] = {}
    grouped: dict[str, dict[str, Any]] = {}
    shape = item.schema_type
    for path, value in item.fields.items():
        if value is None:
            continue
        head, _, rest = path.partition("/")
        el = sch.element(shape, head) if rest else None
        if el is not None and sch.is_item_element(el) and not el.many:
            grouped.setdefault(head, {})[rest] = value
        else:
            data_fields[path] = typed(value, sch.field_type(shape, path))
    children = []
    for head, sub in grouped.items():
        el = sch.element(shape, head)
        sub_type = CONCRETE_TYPES.get(el.type, el.type) if el else "xnat:" + head
        children.append({"field": head, "items": [item_json(Item(sub_type, sub))]})
    for path, items in item.children:
        children.append({"field": path, "items": [item_json(child) for child in items]})
    meta = {"isHistory": False, "xsi:type": item.xsi_type, **item.meta}
    return {"children": children, "meta": meta, "data_fields": data_fields}


def items_document(item: Item) -> str:
    """The body of ``GET <object>?format=json``."""
    return json.dumps({"items": [item_json(item)]})


def xml_document(item: Item, site_url: str) -> bytes:
    """The body of ``GET <object>?format=xml``: the XNAT XML document of the item."""
    sch = schema()
    nsmap = {k: v for k, v in NAMESPACES.items()}
    prefix, _, local = sch.root_tag(item.xsi_type).partition(":")
    namespace = NAMESPACES.get(prefix, f"http://nrg.wustl.edu/{prefix}")
    nsmap.setdefault(prefix, namespace)
    root = etree.Element(f"{{{namespace}}}{local}", nsmap=nsmap)
    if item.schema_type != item.xsi_type:
        root.set(f"{{{XSI}}}type", item.xsi_type)
    _fill(root, item.schema_type, None, item.fields, _children_map(item.children))
    locations = f"{XNAT_NS} {site_url.rstrip('/')}/schemas/xnat/xnat.xsd"
    root.set(f"{{{XSI}}}schemaLocation", locations)
    # Java's serializer writes the declaration with double quotes (SAXWriter: STANDALONE=yes, INDENT=yes).
    body = etree.tostring(root, encoding="UTF-8", pretty_print=True)
    return b'<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n' + body


def _children_map(children: list[tuple[str, list[Item]]]) -> dict[str, list[Item]]:
    merged: dict[str, list[Item]] = {}
    for path, items in children:
        merged.setdefault(path, []).extend(items)
    return merged


def _text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _fill(node: etree._Element, type_name: str | None, inline: TypeDef | None, fields: dict[str, Any],
          children: dict[str, list[Item]]) -> None:
    """Write attributes and sub-elements of one element, in schema order."""
    sch = schema()
    for name in sch.attributes(type_name, inline):
        if fields.get(name) not in (None, ""):
            node.set(name, _text(fields[name]))
    nested_fields, nested_children = _by_head(fields), _by_head(children)
    for el in sch.elements(type_name, inline):
        if el.name in children:
            for child in children[el.name]:
                sub = etree.SubElement(node, f"{{{XNAT_NS}}}{el.name}")
                if (child.xsi_type in sch.types or child.base_type) and child.xsi_type != el.type:
                    sub.set(f"{{{XSI}}}type", child.xsi_type)
                child_type = child.schema_type if child.schema_type in sch.types else el.type
                _fill_element(sub, el, child_type, child.fields.get(el.name), child.fields,
                              _children_map(child.children))
            continue
        sub_fields = nested_fields.get(el.name, {})
        sub_children = nested_children.get(el.name, {})
        text = fields.get(el.name)
        if not sub_fields and not sub_children and text in (None, ""):
            continue
        sub = etree.SubElement(node, f"{{{XNAT_NS}}}{el.name}")
        concrete = CONCRETE_TYPES.get(el.type or "", el.type)
        if concrete != el.type:
            sub.set(f"{{{XSI}}}type", concrete)  # type: ignore[arg-type]
        _fill_element(sub, el, concrete, text, sub_fields, sub_children)


def _by_head(values: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """``{"scanner/manufacturer": v}`` → ``{"scanner": {"manufacturer": v}}``: the paths below each
    element, grouped once per element written instead of once per element of the schema."""
    grouped: dict[str, dict[str, Any]] = {}
    for key, value in values.items():
        head, sep, rest = key.partition("/")
        if sep:
            grouped.setdefault(head, {})[rest] = value
    return grouped


def _fill_element(sub: etree._Element, el: ElementDef, type_name: str | None, text: Any,
                  fields: dict[str, Any], children: dict[str, list[Item]]) -> None:
    sch = schema()
    complex_type = el.inline is not None or type_name in sch.types
    if not complex_type or sch.text_type(type_name if el.inline is None else None, el.inline):
        if text not in (None, ""):
            sub.text = _text(text)
    if complex_type:
        _fill(sub, type_name if el.inline is None else None, el.inline, fields, children)
