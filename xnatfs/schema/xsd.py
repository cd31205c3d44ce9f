"""XSD documents (bytes) → :class:`~xnatfs.schema.specs.SchemaSpecs`: pure, no network, no code text.

All documents of a set (``xnat``, ``xdat``, ``security``, ``catalog``, ``birn/birnprov``, plugins)
are indexed by ``{namespace}local`` name; then each named ``xs:complexType`` is walked with a
tag → handler table into one frozen ``ClassSpec``. complexContent extension gives the base type;
sequence/choice/all/group nest (a repeating compositor makes its elements repeat); a simple-typed
element or attribute is a ``FieldSpec`` (restrictions resolved to their built-in base); a single
element with an anonymous type is flattened with ``/`` paths as XNAT's ``data_fields`` are
(``scanner/manufacturer``); an element that repeats or names a complex type is a ``ChildSpec``, a
wrapper of one repeating element collapses (``scans/scan`` → ``scans``), and a repeating anonymous
type becomes the spec ``<owner>_<element>`` (XFT's name, ``xnat:experimentData_share``).

Prefixes are resolved through each document's own namespace map and shown with the prefix the
schema binds to its namespace (``xnat``, ``xdat``, ``cat``, ``prov``). An unknown type name is a
string, logged once per parse, never an error: 1.8's ``xnat.xsd`` uses ``xdat:LONGVARCHAR``, which
the 2016 ``xdat.xsd`` does not declare. XML goes through :func:`xnatfs.safexml.parse_xml` only.
Results are memoized by the input's sha256 in a bounded LRU, so a reconnect does not re-parse.
"""

from __future__ import annotations

import hashlib
import logging
import math
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from typing import NamedTuple

from cachetools import LRUCache
from lxml import etree

from xnatfs.errors import SchemaError, XNATError
from xnatfs.safexml import parse_xml
from xnatfs.schema.specs import (
    WELL_KNOWN_PREFIXES, XSD_PYTHON_TYPES, ChildSpec, ClassSpec, FieldSpec, SchemaSpecs, python_attribute_name,
    python_class_name,
)

log = logging.getLogger(__name__)

XS = "http://www.w3.org/2001/XMLSchema"

_PARSE_CACHE_SIZE = 8  # distinct schema sets remembered; a process rarely talks to more servers
_MAX_TYPE_DEPTH = 32  # simple-type restriction chains longer than this are treated as a cycle


def _q(local: str) -> str:
    return f"{{{XS}}}{local}"


class ParseCacheInfo(NamedTuple):
    hits: int
    misses: int
    size: int


class _Simple(NamedTuple):
    """A resolved simple type: its built-in base and the facets kept for information."""

    xsd_type: str = "xs:string"
    enumeration: tuple[str, ...] = ()
    max_length: int | None = None


_STRING = _Simple()


@dataclass
class _Decl:
    """A top-level declaration and the document (namespace map) it came from."""

    element: etree._Element
    target_ns: str


@dataclass
class _Scope:
    """Where the walk is: the spec being built, the path so far, and what that spec collects."""

    owner: str
    path: tuple[str, ...] = ()
    multiple: bool = False
    required: bool = True
    fields: list[FieldSpec] = field(default_factory=list)
    children: list[ChildSpec] = field(default_factory=list)
    base: str | None = None
    value_key: str = ""  # data_fields key of an xs:simpleContent text value


class _SchemaSet:
    """One parse run over a set of documents: indexes, prefix table, output specs, unknown names."""

    def __init__(self) -> None:
        kinds = ("complexType", "simpleType", "element", "group", "attributeGroup", "attribute")
        self.declared: dict[str, dict[str, _Decl]] = {kind: {} for kind in kinds}  # kind → {uri}name → decl
        self.complex_types = self.declared["complexType"]
        self.prefixes: dict[str, str] = {}
        self.unknown_types: set[str] = set()
        self.specs: dict[str, ClassSpec] = {}
        self.handlers: dict[str, Callable[[etree._Element, _Scope], None]] = {
            _q("sequence"): self._compositor, _q("choice"): self._compositor, _q("all"): self._compositor,
            _q("group"): self._compositor, _q("element"): self._element, _q("attribute"): self._attribute,
            _q("attributeGroup"): self._attribute_group_ref, _q("complexContent"): self._derivation,
            _q("simpleContent"): self._derivation,
        }

    # -- indexing -----------------------------------------------------------------------------
    def add_document(self, root: etree._Element) -> None:
        tns = root.get("targetNamespace", "")
        own = [prefix for prefix, uri in root.nsmap.items() if prefix and uri == tns]
        if own and tns not in self.prefixes:
            self.prefixes[tns] = own[0]
        for child in root:
            if not isinstance(child.tag, str) or not child.tag.startswith(f"{{{XS}}}") or not child.get("name"):
                continue
            table = self.declared.get(etree.QName(child).localname)
            if table is not None:
                table.setdefault(f"{{{tns}}}{child.get('name')}", _Decl(child, tns))

    def finish_prefixes(self, roots: list[etree._Element]) -> None:
        """Give every target namespace a prefix: its own, another document's, a well-known one."""
        for root in roots:
            tns = root.get("targetNamespace", "")
            if tns in self.prefixes:
                continue
            others = [p for r in roots for p, uri in r.nsmap.items() if p and uri == tns]
            self.prefixes[tns] = others[0] if others else WELL_KNOWN_PREFIXES.get(tns) or (
                tns.rstrip("/").rsplit("/", 1)[-1] or "ns")
        for root in roots:  # namespaces no document defines (xs, a missing plugin's): for messages
            for prefix, uri in root.nsmap.items():
                if prefix:
                    self.prefixes.setdefault(uri, prefix)

    def resolve_qname(self, context: etree._Element, qname: str) -> str:
        """``prefix:local`` in the scope of ``context`` → ``{uri}local``; unbound prefix → ``{?prefix}local``."""
        prefix, _, local = qname.rpartition(":")
        uri = context.nsmap.get(prefix or None)
        return f"{{{uri}}}{local}" if uri is not None else f"{{?{prefix}}}{local}"

    def xsi_name(self, clark: str) -> str:
        uri, _, local = clark[1:].partition("}")
        return f"{self.prefixes.get(uri, uri.lstrip('?'))}:{local}" if uri else local

    # -- simple types ---------------------------------------------------------------------------
    def simple_type(self, clark: str, depth: int = 0) -> _Simple:
        """A type name → its built-in base and facets; an unknown name counts as xs:string."""
        if clark.startswith(f"{{{XS}}}") and clark[len(XS) + 2:] in XSD_PYTHON_TYPES:
            return _Simple(f"xs:{clark[len(XS) + 2:]}")
        if clark in self.declared["simpleType"] and depth < _MAX_TYPE_DEPTH:
            return self.restriction(self.declared["simpleType"][clark].element.find(_q("restriction")), depth + 1)
        self.unknown_types.add(self.xsi_name(clark))
        return _STRING

    def restriction(self, restriction: etree._Element | None, depth: int = 0) -> _Simple:
        """An xs:restriction (of a simple type or simple content); none (xs:list, xs:union) is text."""
        if restriction is None:
            return _STRING
        inner = restriction.find(f"{_q('simpleType')}/{_q('restriction')}")
        base = (self.simple_type(self.resolve_qname(restriction, restriction.get("base", "")), depth + 1)
                if restriction.get("base") else self.restriction(inner, depth + 1) if inner is not None else _STRING)
        enumeration = tuple(e.get("value", "") for e in restriction.findall(_q("enumeration")))
        length = restriction.find(_q("maxLength"))
        max_length = int(length.get("value", "")) if length is not None and length.get("value", "").isdigit() else None
        return _Simple(base.xsd_type, enumeration or base.enumeration, max_length or base.max_length)

    # -- the walk -------------------------------------------------------------------------------
    def walk(self, node: etree._Element, scope: _Scope) -> None:
        for child in node:
            handler = self.handlers.get(child.tag) if isinstance(child.tag, str) else None
            if handler is not None:
                handler(child, scope)

    def _compositor(self, node: etree._Element, scope: _Scope) -> None:
        """xs:sequence / xs:choice / xs:all, or an xs:group reference (walks the group's content)."""
        content = node
        if node.tag == _q("group"):
            decl = self.declared["group"].get(self.resolve_qname(node, node.get("ref", "")))
            if decl is None:
                log.warning("xs:group %s is not declared; its elements are left out", node.get("ref"))
                return
            content = decl.element
        options = len([c for c in node if isinstance(c.tag, str) and c.tag != _q("annotation")])
        required = scope.required and _min_occurs(node) > 0 and not (node.tag == _q("choice") and options > 1)
        self.walk(content, _Scope(scope.owner, scope.path, scope.multiple or _max_occurs(node) > 1, required,
                                  scope.fields, scope.children, value_key=scope.value_key))

    def _attribute_group_ref(self, node: etree._Element, scope: _Scope) -> None:
        decl = self.declared["attributeGroup"].get(self.resolve_qname(node, node.get("ref", "")))
        if decl is not None:
            self.walk(decl.element, scope)

    def _derivation(self, node: etree._Element, scope: _Scope) -> None:
        """xs:complexContent / xs:simpleContent: an extension or restriction of a base type."""
        for derived in node:
            if derived.tag not in (_q("extension"), _q("restriction")):
                continue
            base = self.resolve_qname(derived, derived.get("base", "xs:anyType"))
            if base in self.complex_types:
                scope.base = self.xsi_name(base)
            elif node.tag == _q("simpleContent"):  # a text value of a simple type, plus attributes
                simple = self.restriction(derived) if derived.tag == _q("restriction") else self.simple_type(base)
                scope.fields.append(_field(scope.value_key, simple, scope, required=False, attribute=False))
            self.walk(derived, scope)

    def _attribute(self, node: etree._Element, scope: _Scope) -> None:
        decl = node
        if node.get("ref"):
            found = self.declared["attribute"].get(self.resolve_qname(node, node.get("ref", "")))
            decl = found.element if found else node
        name = node.get("name") or node.get("ref", "").rpartition(":")[2]
        scope.fields.append(_field("/".join((*scope.path, name)), self._declared_simple_type(decl), scope,
                                   required=scope.required and node.get("use") == "required", attribute=True,
                                   doc=_documentation(node)))

    def _declared_simple_type(self, decl: etree._Element) -> _Simple:
        if decl.get("type"):
            return self.simple_type(self.resolve_qname(decl, decl.get("type", "")))
        return self.restriction(decl.find(f"{_q('simpleType')}/{_q('restriction')}"))

    def _element(self, node: etree._Element, scope: _Scope) -> None:
        decl, name = node, node.get("name", "")
        if node.get("ref"):
            ref = self.resolve_qname(node, node.get("ref", ""))
            found = self.declared["element"].get(ref)
            decl, name = (found.element if found else node), ref.rpartition("}")[2]
        multiple = scope.multiple or _max_occurs(node) > 1
        required = scope.required and _min_occurs(node) > 0
        path = "/".join((*scope.path, name))
        inline_complex = decl.find(_q("complexType"))
        type_ref = self.resolve_qname(decl, decl.get("type", "")) if decl.get("type") else None
        if type_ref in self.complex_types:
            scope.children.append(ChildSpec(python_attribute_name(path), path, self.xsi_name(type_ref), multiple,
                                            scope.owner))
        elif inline_complex is not None and multiple:
            xsi_type = f"{scope.owner}_{name}"
            self.add_class(xsi_type, inline_complex, annotated=decl, anonymous=True)
            scope.children.append(ChildSpec(python_attribute_name(path), path, xsi_type, True, scope.owner))
        elif inline_complex is not None:
            self._flatten(inline_complex, _Scope(scope.owner, (*scope.path, name), False, required, value_key=path),
                          scope)
        else:
            simple = self._declared_simple_type(decl)
            if multiple:
                scope.children.append(ChildSpec(python_attribute_name(path), path, simple.xsd_type, True,
                                                scope.owner, simple=True))
            else:
                scope.fields.append(_field(path, simple, scope, required=required, attribute=False,
                                           doc=_documentation(node)))

    def _flatten(self, complex_type: etree._Element, inner: _Scope, outer: _Scope) -> None:
        """A single element with an anonymous type: its members join the parent under ``name/``."""
        self.walk(complex_type, inner)
        if inner.base:  # an anonymous extension of a named complex type: keep it as one nested object
            outer.children.append(ChildSpec(python_attribute_name(inner.value_key), inner.value_key, inner.base,
                                            False, outer.owner))
        wrapper_of_one = not inner.fields and len(inner.children) == 1 and inner.children[0].multiple
        if wrapper_of_one:  # xnatpy's pruning: scans/scan is the listing ``scans``
            only = inner.children[0]
            inner.children[0] = ChildSpec(python_attribute_name(inner.value_key), only.xpath, only.type_name, True,
                                          only.owner, only.simple)
        outer.fields.extend(inner.fields)
        outer.children.extend(inner.children)

    def add_class(self, xsi_type: str, complex_type: etree._Element, *, annotated: etree._Element | None = None,
                  anonymous: bool = False, namespace: str = "") -> None:
        """One ClassSpec; a text value (xs:simpleContent) is keyed by the element name for an
        anonymous type (``share`` of ``xnat:experimentData_share``), else by the type's local name."""
        if xsi_type in self.specs:
            log.info("XSD type %s is declared twice; keeping the first", xsi_type)
            return
        value_key = annotated.get("name", "") if annotated is not None else xsi_type.rpartition(":")[2]
        scope = _Scope(xsi_type, value_key=value_key)
        self.specs[xsi_type] = ClassSpec(xsi_type, "", None)  # placeholder: stops recursion on itself
        self.walk(complex_type, scope)
        xdat_element = _xdat_element(annotated if annotated is not None else complex_type)
        self.specs[xsi_type] = ClassSpec(
            xsi_type=xsi_type, class_name=python_class_name(xsi_type), base_xsi_type=scope.base,
            fields=_unique(scope.fields, xsi_type), children=_unique(scope.children, xsi_type),
            abstract="true" in (complex_type.get("abstract"), xdat_element.get("abstract")),
            anonymous=anonymous, display_identifier=xdat_element.get("displayIdentifiers"),
            namespace=namespace, documentation=_documentation(complex_type) or _documentation(annotated))


def _min_occurs(node: etree._Element) -> int:
    return int(node.get("minOccurs", "1")) if node.get("minOccurs", "1").isdigit() else 1


def _max_occurs(node: etree._Element) -> float:
    value = node.get("maxOccurs", "1")
    return math.inf if value == "unbounded" else (int(value) if value.isdigit() else 1)


def _field(xpath: str, simple: _Simple, scope: _Scope, *, required: bool, attribute: bool, doc: str = "") -> FieldSpec:
    python_type = XSD_PYTHON_TYPES.get(simple.xsd_type.removeprefix("xs:"), "str")
    return FieldSpec(python_attribute_name(xpath), xpath, simple.xsd_type, python_type, required, scope.owner,
                     attribute, simple.enumeration, simple.max_length, doc)


def _unique(members: list, owner: str) -> tuple:
    """Drop members whose Python name repeats (first wins); a schema quirk, logged at debug level."""
    seen: dict[str, object] = {}
    for member in members:
        if member.name in seen:
            log.debug("%s: member %s repeats as %s; keeping the first", owner, member.xpath, member.name)
            continue
        seen[member.name] = member
    return tuple(seen.values())


def _documentation(node: etree._Element | None) -> str:
    if node is None:
        return ""
    doc = node.find(f"{_q('annotation')}/{_q('documentation')}")
    text = " ".join((doc.text or "").split()) if doc is not None else ""
    return text[:500]


def _xdat_element(node: etree._Element) -> etree._Element:
    """XNAT's ``<xdat:element …>`` annotation of a type or element (any namespace), or an empty one."""
    for appinfo in node.iterfind(f"{_q('annotation')}/{_q('appinfo')}"):
        for child in appinfo:
            if isinstance(child.tag, str) and etree.QName(child).localname == "element":
                return child
    return etree.Element("none")


# -- entry point and memo ---------------------------------------------------------------------------
_parse_cache: LRUCache[str, SchemaSpecs] = LRUCache(maxsize=_PARSE_CACHE_SIZE)
_parse_cache_lock = threading.Lock()  # cachetools caches are not thread-safe; this guards the three below
_parse_stats = {"hits": 0, "misses": 0}


def documents_digest(documents: Mapping[str, bytes]) -> str:
    """sha256 over the documents in order (names and lengths included, so no two inputs collide)."""
    digest = hashlib.sha256()
    for name, data in documents.items():
        digest.update(f"{name}\0{len(data)}\0".encode())
        digest.update(data)
    return digest.hexdigest()


def parse_schemas(documents: Mapping[str, bytes], *, lenient: bool = False) -> SchemaSpecs:
    """Parse a set of XSD documents (name → bytes, e.g. ``{"xnat": b"<xs:schema…"}``) into specs.

    Malformed XML raises :class:`~xnatfs.errors.SchemaError` naming the document; with
    ``lenient=True`` such a document is logged and skipped instead, and listed in
    ``SchemaSpecs.skipped``. Results are memoized by :func:`documents_digest` (bounded LRU), so the
    same set is parsed once per process; the returned object is immutable and shared.
    """
    digest = documents_digest(documents)
    with _parse_cache_lock:
        cached = _parse_cache.get(digest)
        _parse_stats["hits" if cached is not None else "misses"] += 1
    if cached is None:
        cached = _parse_uncached(documents, digest)
        with _parse_cache_lock:
            _parse_cache[digest] = cached
    if cached.skipped and not lenient:
        raise SchemaError(f"Schema document {cached.skipped[0]!r} is not well-formed XML")
    return cached


def parse_cache_info() -> ParseCacheInfo:
    """Hits, misses and current size of the parse memo (for tests and diagnostics)."""
    with _parse_cache_lock:
        return ParseCacheInfo(_parse_stats["hits"], _parse_stats["misses"], len(_parse_cache))


def _parse_uncached(documents: Mapping[str, bytes], digest: str) -> SchemaSpecs:
    schema_set = _SchemaSet()
    roots: list[etree._Element] = []
    skipped: list[str] = []
    for name, data in documents.items():
        try:
            root = parse_xml(data, what=f"schema document {name!r}")
        except XNATError as exc:
            log.warning("Skipping schema document %r: %s", name, exc)
            skipped.append(name)
            continue
        if root.tag != _q("schema"):
            log.warning("Skipping schema document %r: its root is %s, not xs:schema", name, root.tag)
            skipped.append(name)
            continue
        roots.append(root)
        schema_set.add_document(root)
    schema_set.finish_prefixes(roots)
    for clark, decl in schema_set.complex_types.items():
        schema_set.add_class(schema_set.xsi_name(clark), decl.element, namespace=decl.target_ns)
    elements: dict[str, str] = {}
    for clark, decl in schema_set.declared["element"].items():
        type_name = decl.element.get("type")
        if type_name and schema_set.resolve_qname(decl.element, type_name) in schema_set.complex_types:
            elements[schema_set.xsi_name(clark)] = schema_set.xsi_name(
                schema_set.resolve_qname(decl.element, type_name))
    for unknown in sorted(schema_set.unknown_types):
        log.warning("Unknown XSD type %s: its fields are treated as strings", unknown)
    return SchemaSpecs(_finish_classes(schema_set.specs, elements), tuple(documents), tuple(skipped), digest, elements)


def _finish_classes(specs: dict[str, ClassSpec], elements: dict[str, str]) -> dict[str, ClassSpec]:
    """Attach element names (first element per type) and make class names unique (first wins)."""
    element_of: dict[str, str] = {}
    for element_name, xsi_type in elements.items():
        element_of.setdefault(xsi_type, element_name)
    taken: set[str] = set()
    finished: dict[str, ClassSpec] = {}
    for xsi_type, spec in specs.items():
        class_name, number = spec.class_name, 1
        while class_name in taken:
            number += 1
            class_name = f"{spec.class_name}{number}"
        if number > 1:
            log.debug("Class name %s is taken; %s becomes %s", spec.class_name, xsi_type, class_name)
        taken.add(class_name)
        finished[xsi_type] = replace(spec, class_name=class_name, element_name=element_of.get(xsi_type))
    return finished


__all__ = ["parse_schemas", "parse_cache_info", "documents_digest", "ParseCacheInfo", "XS"]
