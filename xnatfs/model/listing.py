"""Listing: the objects of one REST collection, indexed by ID or label, cached with a TTL.

A listing is one ``GET <path>?format=json`` (a ResultSet); each row becomes an object without
further requests. Indexing follows xnatpy (xnatpy-notes §1.4), without its failure modes:

- ``listing[key]`` matches the ID first, then the secondary keys (``label``, ``name``, ``type``…);
  a secondary key shared by several rows raises :class:`AmbiguousLabelError` naming their IDs;
  no match raises :class:`NotFound` (a ``LookupError``). ``listing[0]`` / ``listing[1:3]`` index rows
  in server order.
- ``len``, iteration (objects), ``keys()`` (IDs), ``values()``, ``items()``, ``get()``, ``in``.
- ``filter(**patterns)`` keeps rows whose columns match shell patterns (``fnmatch``), on the client.
- ``refresh()`` forgets the cached rows; ``create(…)`` is the kind's creation call.

What differs per collection (how to read a row's ID, which keys are secondary, how to make an
object, how to create one) is a :class:`ListingKind`, defined next to the object families.
Objects are memoised per fetched ResultSet, so ``listing["S1"] is listing[0]`` while the rows are
cached.
"""

from __future__ import annotations

import fnmatch
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from xnatfs.errors import AmbiguousLabelError, NotFound
from xnatfs.rest.resultset import Row, parse_resultset

if TYPE_CHECKING:
    from xnatfs.model.base import ModelContext, XNATObject


@dataclass(frozen=True)
class ListingKind:
    """How one kind of collection (subjects, scans, files…) maps rows to objects."""

    noun: str
    make: Callable[[Listing, Row], Any]
    id_of: Callable[[Row], str] = lambda row: row.get("ID", "")
    secondary: tuple[str, ...] = ()
    params: tuple[tuple[str, str], ...] = ()
    create: Callable[..., Any] | None = None
    extra: Mapping[str, Any] = field(default_factory=dict)


class Listing:
    """The objects at ``path`` (see the module docstring). Thread-safe; rows come from the TTL cache."""

    def __init__(self, ctx: ModelContext, path: str, kind: ListingKind, *, owner: XNATObject | None = None,
                 patterns: Mapping[str, str] | None = None) -> None:
        self._ctx = ctx
        self.path = path
        self.kind = kind
        self.owner = owner
        self._patterns = dict(patterns or {})
        self._lock = threading.Lock()
        self._memo_rows: tuple[Row, ...] | None = None
        self._memo: list[Any] = []

    def __repr__(self) -> str:
        where = f" of {self.owner!r}" if self.owner is not None else ""
        filt = f" filtered by {self._patterns}" if self._patterns else ""
        return f"<Listing {self.kind.noun}{where}{filt}>"

    # -- rows and objects ---------------------------------------------------------------------------

    def rows(self) -> tuple[Row, ...]:
        """The rows of the collection (cached with a TTL), after :meth:`filter` patterns."""
        body = self._ctx.get_json_cached(self.path, list(self.kind.params))
        rows = parse_resultset(body, what=f"{self.kind.noun} listing").rows
        if self._patterns:
            rows = tuple(r for r in rows if self._matches(r))
        return rows

    def _matches(self, row: Row) -> bool:
        return all(fnmatch.fnmatchcase(row.get(column, ""), pattern) for column, pattern in self._patterns.items())

    def _objects(self) -> tuple[tuple[Row, ...], list[Any]]:
        rows = self.rows()
        with self._lock:
            if rows is not self._memo_rows and rows != self._memo_rows:
                self._memo = [self.kind.make(self, row) for row in rows]
                self._memo_rows = rows
            return self._memo_rows, list(self._memo)

    def __len__(self) -> int:
        return len(self.rows())

    def __iter__(self) -> Iterator[Any]:
        return iter(self._objects()[1])

    def __bool__(self) -> bool:
        return len(self) > 0

    def keys(self) -> list[str]:
        """The IDs, in server order."""
        return [self.kind.id_of(row) for row in self.rows()]

    def values(self) -> list[Any]:
        return self._objects()[1]

    def items(self) -> list[tuple[str, Any]]:
        rows, objects = self._objects()
        return [(self.kind.id_of(row), obj) for row, obj in zip(rows, objects)]

    def __contains__(self, key: object) -> bool:
        if not isinstance(key, str):
            return any(obj == key for obj in self)
        try:
            self[key]
        except NotFound:
            return False
        except AmbiguousLabelError:
            return True
        return True

    def __getitem__(self, key: str | int | slice) -> Any:
        if isinstance(key, (int, slice)):
            return self._objects()[1][key]
        return self._find(str(key))

    def get(self, key: str, default: Any = None) -> Any:
        """The object with ID or label ``key``, or ``default``; an ambiguous label still raises."""
        try:
            return self._find(key)
        except NotFound:
            return default

    def _find(self, key: str) -> Any:
        rows, objects = self._objects()
        for row, obj in zip(rows, objects):
            if self.kind.id_of(row) == key:
                return obj
        for column in self.kind.secondary:
            found = [(row, obj) for row, obj in zip(rows, objects) if row.get(column) == key]
            if len(found) == 1:
                return found[0][1]
            if len(found) > 1:
                ids = ", ".join(self.kind.id_of(row) for row, _ in found)
                raise AmbiguousLabelError(f"{len(found)} {self.kind.noun} have {column} {key!r} in {self.path} "
                                          f"(IDs {ids}); index by ID instead")
        raise NotFound(f"No {self.kind.noun[:-1] if self.kind.noun.endswith('s') else self.kind.noun} "
                       f"with ID or {'/'.join(self.kind.secondary) or 'ID'} {key!r} in {self.path}")

    # -- views and changes --------------------------------------------------------------------------

    def filter(self, patterns: Mapping[str, str] | None = None, **more: str) -> Listing:
        """A view of the rows whose columns match all shell ``patterns`` (``label="S*"``)."""
        merged = {**self._patterns, **dict(patterns or {}), **more}
        return Listing(self._ctx, self.path, self.kind, owner=self.owner, patterns=merged)

    def refresh(self) -> Listing:
        """Forget the cached rows; the next access asks the server."""
        self._ctx.invalidate(exact=[self.path])
        with self._lock:
            self._memo_rows = None
            self._memo = []
        return self

    def create(self, *args: Any, **kwargs: Any) -> Any:
        """Create an object in this collection (arguments depend on the collection) and return it."""
        if self.kind.create is None:
            raise TypeError(f"{self.kind.noun} cannot be created through a listing")
        return self.kind.create(self, *args, **kwargs)

    def tabulate(self, columns: Sequence[str] | None = None) -> list[dict[str, str]]:
        """The raw rows (optionally only ``columns``), for printing or pandas."""
        rows = self.rows()
        if columns is None:
            return [dict(r) for r in rows]
        return [{c: r.get(c, "") for c in columns} for r in rows]


__all__ = ["Listing", "ListingKind"]
