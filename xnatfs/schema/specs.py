"""Plain, frozen data describing the server's data types: the output of the XSD parser.

A :class:`ClassSpec` says what the model builder needs to make one Python class: the XNAT type
name (``xsi_type``), its Python class name, its XSD base type, its own simple fields
(:class:`FieldSpec`) and its own child collections (:class:`ChildSpec`). :class:`SchemaSpecs`
maps ``xsi_type`` → ``ClassSpec`` and answers inheritance questions.

Naming rules (the model layer relies on them):

* ``FieldSpec.xpath`` is the field's XML path relative to its object, with ``/`` between levels,
  exactly as XNAT spells it: it is both the key of the item JSON's ``data_fields``
  (``"UID"``, ``"series_description"``, ``"scanner/manufacturer"``) and, prefixed with the
  object's xsi type, the xpath a field update sends (``xnat:mrSessionData/scanner/manufacturer``).
* ``FieldSpec.name`` / ``ChildSpec.name`` is the Python attribute name:
  :func:`python_attribute_name` of the xpath (xnatpy's rule: ``UID`` → ``uid``,
  ``dcmPatientName`` → ``dcm_patient_name``, ``scanner/manufacturer`` → ``scanner_manufacturer``,
  keywords get a trailing ``_``). A wrapper element holding one repeating element collapses to the
  wrapper's name: ``ChildSpec(name="scans", xpath="scans/scan")``.
* ``ChildSpec.xpath`` is XNAT's ``children[].field`` in item JSON (``scans/scan``, ``demographics``).
* ``ClassSpec.class_name`` is :func:`python_class_name` of the xsi type (``xnat:mrSessionData`` →
  ``MrSessionData``, ``cat:catalog`` → ``CatCatalog``), made unique within one ``SchemaSpecs``.
* An anonymous complex type that repeats (``sharing/share``) gets XFT's name
  ``<owner xsi type>_<element>`` (``xnat:experimentData_share``).

Everything here is immutable, so one parsed ``SchemaSpecs`` can be shared by many connections.
Imports only the standard library.
"""

from __future__ import annotations

import keyword
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

#: Python type names a field value converts to (see ``xnatfs.model.fields``).
PYTHON_TYPE_NAMES = ("str", "int", "float", "bool", "date", "datetime", "time")

#: Built-in XSD types (local names) → Python type names; any other name counts as unknown (a string).
XSD_PYTHON_TYPES: dict[str, str] = {
    **dict.fromkeys(("string", "normalizedString", "token", "anyURI", "ID", "IDREF", "IDREFS", "NCName", "Name",
                     "QName", "NOTATION", "language", "NMTOKEN", "NMTOKENS", "ENTITY", "base64Binary", "hexBinary",
                     "duration", "gYear", "gYearMonth", "gMonth", "gMonthDay", "gDay", "anyType",
                     "anySimpleType"), "str"),
    **dict.fromkeys(("integer", "int", "long", "short", "byte", "nonNegativeInteger", "positiveInteger",
                     "nonPositiveInteger", "negativeInteger", "unsignedLong", "unsignedInt", "unsignedShort",
                     "unsignedByte"), "int"),
    **dict.fromkeys(("float", "double", "decimal"), "float"),
    "boolean": "bool", "date": "date", "dateTime": "datetime", "time": "time",
}

#: Prefixes for namespaces that no schema document binds to a prefix (xdat.xsd uses a default
#: namespace). security.xsd binds ``xdat`` to its own namespace, hence ``xdat:user``.
WELL_KNOWN_PREFIXES = {
    "http://nrg.wustl.edu/xnat": "xnat", "http://nrg.wustl.edu/xdat": "xdat", "http://nrg.wustl.edu/security": "xdat",
    "http://nrg.wustl.edu/catalog": "cat", "http://www.nbirn.net/prov": "prov",
}


def python_attribute_name(xml_name: str) -> str:
    """The snake_case attribute name for an XML name or path (xnatpy's ``pythonize_attribute_name``).

    Runs of capitals stay together (``subject_ID`` → ``subject_id``, ``PI`` → ``pi``); anything
    that is not a letter or digit (``/``, ``-``, ``:``) becomes ``_``; keywords get a trailing ``_``;
    a leading digit gets an ``f_`` prefix so the result is always an identifier.
    """
    name = re.sub(r"[^0-9a-zA-Z]+", "_", xml_name)
    name = re.sub(r"[A-Z]+", lambda match: "_" + match.group(0).lower(), name)
    name = re.sub(r"__+", "_", name).lstrip("_") or "field"
    if name[0].isdigit():
        name = "f_" + name
    if keyword.iskeyword(name):  # hard keywords only: ``obj.type`` and ``obj.match`` are fine
        name += "_"
    return name


def python_class_name(xsi_type: str) -> str:
    """The PascalCase class name for an xsi type (xnatpy's ``pythonize_class_name``).

    The ``xnat`` prefix is dropped, other prefixes are kept: ``xnat:mrSessionData`` →
    ``MrSessionData``, ``xnat:experimentData_share`` → ``ExperimentDataShare``, ``xdat:user`` →
    ``XdatUser``.
    """
    parts = [part for part in re.split(r"[\-_\W:/]+", xsi_type) if part]
    if parts and parts[0].lower() == "xnat" and len(parts) > 1:
        parts = parts[1:]
    name = "".join(part[0].upper() + part[1:] for part in parts) or "Unnamed"
    if name[0].isdigit():
        name = "T" + name
    return name


@dataclass(frozen=True)
class FieldSpec:
    """One simple (text-valued) field of a type.

    ``xsd_type`` is the resolved built-in type (``xs:string``; an unknown type name counts as
    ``xs:string``), ``python_type_name`` one of :data:`PYTHON_TYPE_NAMES`. ``owner`` is the xsi
    type that declares the field (an inherited field keeps its declaring type). ``enumeration``
    and ``max_length`` are the XSD facets, kept for information: servers accept site-configured
    values outside them (scan quality labels), so nothing enforces them.
    """

    name: str
    xpath: str
    xsd_type: str
    python_type_name: str
    required: bool = False
    owner: str = ""
    is_attribute: bool = False
    enumeration: tuple[str, ...] = ()
    max_length: int | None = None
    documentation: str = ""

    def put_xpath(self, xsi_type: str) -> str:
        """The xpath a field update sends for an object of ``xsi_type`` (``xnat:mrSessionData/date``).

        XNAT addresses an inherited field through the object's own type, so this takes the
        object's xsi type, not ``owner``.
        """
        return f"{xsi_type}/{self.xpath}"


@dataclass(frozen=True)
class ChildSpec:
    """A nested object or a collection of them inside a type.

    ``xpath`` is the path relative to the parent and is XNAT's ``children[].field`` value in item
    JSON (``scans/scan``, ``sharing/share``, ``demographics``). ``type_name`` is the xsi type of
    the items (``xnat:imageScanData``), or a built-in type name such as ``xs:string`` when
    ``simple`` is true (a repeated plain value). ``multiple`` is true for maxOccurs > 1.
    """

    name: str
    xpath: str
    type_name: str
    multiple: bool
    owner: str = ""
    simple: bool = False


@dataclass(frozen=True)
class ClassSpec:
    """Everything the model builder needs to make one class.

    ``fields`` and ``children`` are the type's *own* members; use :meth:`SchemaSpecs.all_fields`
    for the inherited ones too. ``element_name`` is the top-level XML element for the type
    (``xnat:MRSession``) or ``None``. ``display_identifier`` comes from XNAT's
    ``<xdat:element displayIdentifiers=…>`` annotation (``label`` for experiments).
    """

    xsi_type: str
    class_name: str
    base_xsi_type: str | None
    fields: tuple[FieldSpec, ...] = ()
    children: tuple[ChildSpec, ...] = ()
    element_name: str | None = None
    abstract: bool = False
    anonymous: bool = False
    display_identifier: str | None = None
    namespace: str = ""
    documentation: str = ""


@dataclass(frozen=True)
class SchemaSpecs(Mapping[str, ClassSpec]):
    """All types of a schema set, by xsi type; immutable and safe to share between connections.

    ``documents`` names the schema documents that went in, ``skipped`` those that could not be
    parsed, ``digest`` is the sha256 of the input (the parse cache key).
    """

    classes: Mapping[str, ClassSpec]
    documents: tuple[str, ...] = ()
    skipped: tuple[str, ...] = ()
    digest: str = ""
    elements: Mapping[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        object.__setattr__(self, "classes", MappingProxyType(dict(self.classes)))
        object.__setattr__(self, "elements", MappingProxyType(dict(self.elements)))

    def __getitem__(self, xsi_type: str) -> ClassSpec:
        return self.classes[xsi_type]

    def __iter__(self) -> Iterator[str]:
        return iter(self.classes)

    def __len__(self) -> int:
        return len(self.classes)

    def __hash__(self) -> int:
        return hash((self.digest, len(self.classes)))

    def __repr__(self) -> str:
        return f"SchemaSpecs({len(self.classes)} types from {', '.join(self.documents) or 'no documents'})"

    def ancestors(self, xsi_type: str) -> tuple[str, ...]:
        """The base types of ``xsi_type``, nearest first, excluding itself; stops at an unknown type.

        ``ancestors("xnat:mrSessionData")`` → ``("xnat:imageSessionData",
        "xnat:subjectAssessorData", "xnat:experimentData")``. A base named in the XSD but missing
        from the set ends the chain (it is still listed); a cycle is cut.
        """
        chain: list[str] = []
        seen = {xsi_type}
        spec = self.classes.get(xsi_type)
        while spec is not None and spec.base_xsi_type and spec.base_xsi_type not in seen:
            chain.append(spec.base_xsi_type)
            seen.add(spec.base_xsi_type)
            spec = self.classes.get(spec.base_xsi_type)
        return tuple(chain)

    def is_a(self, xsi_type: str, ancestor: str) -> bool:
        """True if ``xsi_type`` is ``ancestor`` or derives from it."""
        return xsi_type == ancestor or ancestor in self.ancestors(xsi_type)

    def all_fields(self, xsi_type: str) -> tuple[FieldSpec, ...]:
        """Inherited and own fields, base-most first; a subtype's field replaces a same-named one."""
        merged: dict[str, FieldSpec] = {}
        for spec in self._lineage(xsi_type):
            for field_spec in spec.fields:
                merged.pop(field_spec.name, None)
                merged[field_spec.name] = field_spec
        return tuple(merged.values())

    def all_children(self, xsi_type: str) -> tuple[ChildSpec, ...]:
        """Inherited and own children, base-most first; a subtype's child replaces a same-named one."""
        merged: dict[str, ChildSpec] = {}
        for spec in self._lineage(xsi_type):
            for child in spec.children:
                merged.pop(child.name, None)
                merged[child.name] = child
        return tuple(merged.values())

    def by_class_name(self, class_name: str) -> ClassSpec | None:
        """The spec whose ``class_name`` is ``class_name``, or ``None``."""
        for spec in self.classes.values():
            if spec.class_name == class_name:
                return spec
        return None

    def _lineage(self, xsi_type: str) -> list[ClassSpec]:
        """Specs from the root-most known ancestor down to ``xsi_type`` itself."""
        chain = [xsi_type, *self.ancestors(xsi_type)]
        return [self.classes[name] for name in reversed(chain) if name in self.classes]


__all__ = [
    "PYTHON_TYPE_NAMES", "XSD_PYTHON_TYPES", "WELL_KNOWN_PREFIXES", "FieldSpec", "ChildSpec", "ClassSpec", "SchemaSpecs",
    "python_attribute_name", "python_class_name",
]
