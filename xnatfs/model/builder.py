"""Python classes from schema specs, one :class:`ClassRegistry` per connection; no source text, no exec.

xnatpy writes Python source from the XSD and ``exec``s it into a module whose global ``SESSION``
ties every class to one connection. Here each class is made with ``type(name, bases, namespace)``
from a frozen :class:`~xnatfs.schema.specs.ClassSpec`; its namespace holds a
:class:`~xnatfs.model.fields.FieldDescriptor` per own field, and inherited fields come through
ordinary Python inheritance, mirroring the XSD: the class for ``xnat:mrSessionData`` subclasses
the one for ``xnat:imageSessionData``, and so on up to ``xnat:experimentData``.

Hand-written behaviour enters through ``bases``: a mapping xsi type → a "family base" class
(e.g. ``{"xnat:experimentData": ExperimentBase, "xnat:imageScanData": ScanBase}``). The generated
class for that xsi type lists the family base first, so its methods win and every subtype
inherits them. A field whose name the family base already defines (a property, a method) gets no
descriptor: the hand-written attribute wins, and :func:`describe` says so. The root of every chain
also derives from :class:`GeneratedObject`.

Each class carries ``__xsi_type__``, ``__spec__`` (its ClassSpec), ``__fields__`` (the Python names
of all its fields, inherited included) and ``__children__`` (all its ChildSpecs). The registry is
an ordinary object the connection holds; two registries never share a class.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator, Mapping
from typing import Any, ClassVar

from xnatfs.model.fields import FieldDescriptor
from xnatfs.schema.specs import ChildSpec, ClassSpec, SchemaSpecs

log = logging.getLogger(__name__)

_MAX_REMEMBERED_UNKNOWN = 1024  # distinct unknown xsi types logged per registry; beyond that, silently


class _DefaultXsiType:
    """``obj.xsi_type`` defaults to the class's ``__xsi_type__``; a non-data descriptor, so an
    instance may store its own (the server can report a subtype the class stands in for)."""

    def __get__(self, instance: object, owner: type | None = None) -> Any:
        return getattr(owner if instance is None else type(instance), "__xsi_type__", None)


class GeneratedObject:
    """The minimal root of every generated class; the model's object base adds data and I/O.

    It provides only the class attributes the builder sets and a default ``xsi_type``. It does not
    implement ``_field_text`` / ``_set_field`` (see :class:`~xnatfs.model.fields.FieldHost`), so
    reading a field of a bare generated object raises ``AttributeError``.
    """

    __xsi_type__: ClassVar[str | None] = None
    __spec__: ClassVar[ClassSpec | None] = None
    __fields__: ClassVar[tuple[str, ...]] = ()
    __children__: ClassVar[tuple[ChildSpec, ...]] = ()
    xsi_type = _DefaultXsiType()


class ClassRegistry(Mapping[str, type]):
    """The classes of one connection, by xsi type; also by class name as attributes.

    ``registry["xnat:mrSessionData"]`` and ``registry.MrSessionData`` give the same class;
    iteration yields xsi types. :meth:`for_xsi_type` never fails. Immutable after building except
    for the set of unknown types already logged, which ``_lock`` guards.
    """

    def __init__(self, specs: SchemaSpecs, classes: Mapping[str, type], generic: type) -> None:
        self._specs = specs
        self._classes = dict(classes)
        self._by_name = {cls.__name__: cls for cls in self._classes.values()}
        self._generic = generic
        self._logged_unknown: set[str] = set()
        self._lock = threading.Lock()

    @property
    def specs(self) -> SchemaSpecs:
        return self._specs

    @property
    def generic(self) -> type:
        """The class for objects whose xsi type the schemas do not describe."""
        return self._generic

    def __getitem__(self, xsi_type: str) -> type:
        return self._classes[xsi_type]

    def __iter__(self) -> Iterator[str]:
        return iter(self._classes)

    def __len__(self) -> int:
        return len(self._classes)

    def __getattr__(self, name: str) -> type:
        by_name = self.__dict__.get("_by_name", {})
        if name in by_name:
            return by_name[name]
        raise AttributeError(f"no generated class named {name!r}")

    def __dir__(self) -> list[str]:
        return sorted({*super().__dir__(), *self._by_name})

    def __repr__(self) -> str:
        return f"<ClassRegistry of {len(self._classes)} classes>"

    def for_xsi_type(self, xsi_type: str | None, *, fallback: str | None = None) -> type:
        """The class for ``xsi_type``; an unknown type gets ``fallback``'s class, else :attr:`generic`.

        ``fallback`` is the type the caller knows the object has at least (an item of an experiment
        listing is an ``xnat:experimentData``). An unknown type is logged once; this never raises.
        """
        if xsi_type in self._classes:
            return self._classes[xsi_type]
        chosen = self._classes.get(fallback or "", self._generic)
        with self._lock:
            first_time = xsi_type not in self._logged_unknown and len(self._logged_unknown) < _MAX_REMEMBERED_UNKNOWN
            if first_time:
                self._logged_unknown.add(str(xsi_type))
        if first_time:
            log.warning("No schema describes xsi type %r; using %s", xsi_type, chosen.__name__)
        return chosen

    def describe(self, cls_or_xsi_type: type | str) -> str:
        """:func:`describe` for a class or an xsi type of this registry."""
        cls = self[cls_or_xsi_type] if isinstance(cls_or_xsi_type, str) else cls_or_xsi_type
        return describe(cls)


def build_registry(specs: SchemaSpecs, bases: Mapping[str, type] | None = None, *,
                   generic_base: type | None = None) -> ClassRegistry:
    """Make one class per spec (base types first) and return them as a new registry.

    ``bases`` maps xsi types to family base classes (see the module docstring); ``generic_base``
    is the base of the fallback class for unknown types. Nothing is cached between calls: each
    call returns new classes.
    """
    family = dict(bases or {})
    classes: dict[str, type] = {}
    in_progress: set[str] = set()

    def build(xsi_type: str) -> type:
        if xsi_type in classes:
            return classes[xsi_type]
        spec = specs[xsi_type]
        in_progress.add(xsi_type)
        base_xsi = spec.base_xsi_type
        parent = build(base_xsi) if base_xsi in specs and base_xsi not in in_progress else None
        classes[xsi_type] = _make_class(spec, specs, parent, family.get(xsi_type))
        in_progress.discard(xsi_type)
        return classes[xsi_type]

    for xsi_type in specs:
        build(xsi_type)
    generic_parents = (generic_base, GeneratedObject) if generic_base and not issubclass(
        generic_base, GeneratedObject) else (generic_base or GeneratedObject,)
    generic = type("GenericObject", generic_parents, {"__module__": __name__, "__doc__": "An object of a type "
                                                      "the server's schemas do not describe."})
    return ClassRegistry(specs, classes, generic)


def _make_class(spec: ClassSpec, specs: SchemaSpecs, parent: type | None, family_base: type | None) -> type:
    parents: list[type] = [cls for cls in (family_base, parent) if cls is not None]
    if not any(issubclass(cls, GeneratedObject) for cls in parents):
        parents.append(GeneratedObject)
    namespace: dict[str, Any] = {
        "__module__": __name__, "__qualname__": spec.class_name, "__doc__": spec.documentation or None,
        "__xsi_type__": spec.xsi_type, "__spec__": spec,
        "__fields__": tuple(field.name for field in specs.all_fields(spec.xsi_type)),
        "__children__": specs.all_children(spec.xsi_type),
    }
    for field in spec.fields:
        existing = _static_lookup(parents, field.name)
        if existing is not None and not isinstance(existing, FieldDescriptor):
            log.debug("%s.%s is hand-written; no generated descriptor", spec.class_name, field.name)
            continue
        namespace[field.name] = FieldDescriptor(field)
    try:
        return type(spec.class_name, tuple(parents), namespace)
    except TypeError as exc:  # an inconsistent MRO from a family base: keep the XSD chain, lose the family
        log.warning("Cannot combine %s with its family base for %s (%s); using the generated chain only",
                    spec.class_name, spec.xsi_type, exc)
        return type(spec.class_name, (parent or GeneratedObject,), namespace)


def _static_lookup(parents: list[type], name: str) -> Any:
    """The attribute ``name`` as the classes define it (no descriptor calls), or ``None``."""
    for parent in parents:
        for klass in parent.__mro__:
            if name in klass.__dict__:
                return klass.__dict__[name]
    return None


def describe(cls: type) -> str:
    """A readable summary of a generated class: its chain, fields with types and paths, children.

    Replaces xnatpy's ``source_code`` for debugging. A field marked ``(hand-written)`` is served
    by a family base attribute instead of a generated descriptor.
    """
    spec: ClassSpec | None = getattr(cls, "__spec__", None)
    if not isinstance(spec, ClassSpec):
        return f"{cls.__name__}: not a generated class"
    chain = [klass.__name__ for klass in cls.__mro__[1:] if isinstance(klass.__dict__.get("__spec__"), ClassSpec)]
    header = f"{cls.__name__} ({spec.xsi_type}"
    header += f", element {spec.element_name})" if spec.element_name else ")"
    lines = [header + (" abstract" if spec.abstract else "")]
    if chain:
        lines.append("  extends " + " -> ".join(chain))
    family = [klass.__name__ for klass in cls.__mro__ if klass.__dict__.get("__spec__") is None
              and klass not in (GeneratedObject, object)]
    if family:
        lines.append("  behaviour from " + ", ".join(family))
    if spec.documentation:
        lines.append(f"  {spec.documentation[:120]}")
    lines.append("  fields:")
    for name in cls.__fields__:
        attribute = _static_lookup([cls], name)
        if isinstance(attribute, FieldDescriptor):
            field = attribute.spec
            origin = "" if field.owner == spec.xsi_type else f"  from {field.owner}"
            required = " required" if field.required else ""
            lines.append(f"    {name}: {field.python_type_name}  [{field.xpath}, {field.xsd_type}{required}]{origin}")
        else:
            lines.append(f"    {name}: (hand-written)")
    if cls.__children__:
        lines.append("  children:")
        for child in cls.__children__:
            kind = f"list of {child.type_name}" if child.multiple else child.type_name
            lines.append(f"    {child.name}: {kind}  [{child.xpath}]")
    return "\n".join(lines)


__all__ = ["ClassRegistry", "GeneratedObject", "build_registry", "describe"]
