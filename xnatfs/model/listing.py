"""Listing: the objects of one REST collection, indexed by ID or label, cached with a TTL.

A listing is one ``GET <path>?format=json`` (a ResultSet); each row becomes an object without
further requests. Indexing follows xnatpy (xnatpy-notes §1.4), without its failure modes:

- ``listing[key]`` matches the ID first, then the secondary keys (``label``, ``name``, ``type``…);
  a secondary key shared by several rows raises :class:`AmbiguousLabelError` naming their IDs;
  no match raises :class:`NotFound` (a ``LookupError``). ``listing[0]`` / ``listing[1:3]`` index rows
  in server order.
- ``len``, iteration (objects), ``keys()`` (IDs), ``values()``, ``items()``, ``get()``, ``in``.
- ``filter(**patterns)`` keeps rows whose columns match shell patterns (``fnmatch``), on the client; a
  column the default listing lacks (``modality``) is asked for with ``columns=``, and one the server
  does not know raises ``ValueError`` instead of matching nothing.
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


def resultset_rows(body: Any) -> tuple[Row, ...]:
    """The rows of a ResultSet body (the parser whose result the metadata cache keeps)."""
    return parse_resultset(body).rows


class _Memo:
    """Objects made from one fetched tuple of rows, with ID and secondary-key indexes."""

    def __init__(self, rows: tuple[Row, ...], kind: ListingKind, objects: list[Any]) -> None:
        self.rows = rows
        self.objects = objects
        self.ids = [kind.id_of(row) for row in rows]
        self.by_id: dict[str, int] = {}
        for position, ident in enumerate(self.ids):
            self.by_id.setdefault(ident, position)
        self.by_secondary: list[tuple[str, dict[str, list[int]]]] = []
        for column in kind.secondary:
            index: dict[str, list[int]] = {}
            for position, row in enumerate(rows):
                if row.get(column):
                    index.setdefault(row[column], []).append(position)
            self.by_secondary.append((column, index))


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
        self._memo_cache: _Memo | None = None
        self._filtered_from: tuple[Row, ...] | None = None
        self._filtered: tuple[Row, ...] = ()

    def __repr__(self) -> str:
        where = f" of {self.owner!r}" if self.owner is not None else ""
        filt = f" filtered by {self._patterns}" if self._patterns else ""
        return f"<Listing {self.kind.noun}{where}{filt}>"

    # -- rows and objects ---------------------------------------------------------------------------

    def rows(self) -> tuple[Row, ...]:
        """The rows of the collection (parsed once per fetch, cached with a TTL), after :meth:`filter`."""
        rows = self._ctx.get_json_cached(self.path, list(self.kind.params), parse=resultset_rows)
        if not self._patterns:
            return rows
        missing = _missing_columns(rows, self._patterns)
        if missing:
            rows = self._rows_with_columns(rows, missing)
        with self._lock:
            if rows is self._filtered_from:
                return self._filtered
        filtered = tuple(r for r in rows if self._matches(r))
        with self._lock:
            self._filtered_from, self._filtered = rows, filtered
        return filtered

    def _rows_with_columns(self, rows: tuple[Row, ...], missing: list[str]) -> tuple[Row, ...]:
        """The rows again, with the columns a filter needs that the default listing lacks.

        XNAT's listings carry a few default columns (an experiment's row has no ``modality``), but take
        ``columns=`` with any field's shortcut or XML path; a column XNAT does not know it silently
        drops, so one still missing is a field this listing cannot be filtered on: say so, rather than
        match nothing (issue 17 item 7).
        """
        present = [c for c in rows[0] if c != "URI"]
        params = [(k, v) for k, v in self.kind.params if k != "columns"]
        params.append(("columns", ",".join(present + missing)))
        wider = self._ctx.get_json_cached(self.path, params, parse=resultset_rows)
        still = _missing_columns(wider, self._patterns)
        if still:
            known = ", ".join(sorted({c for r in wider for c in r}))
            raise ValueError(f"{self.kind.noun} in {self.path} cannot be filtered on {', '.join(map(repr, still))}: "
                             f"the server's listing has no such column (it has {known})")
        return wider

    def _matches(self, row: Row) -> bool:
        return all(fnmatch.fnmatchcase(row.get(column, ""), pattern) for column, pattern in self._patterns.items())

    def _memo(self) -> _Memo:
        """Objects and lookup tables for the current rows, rebuilt only when the rows were fetched again."""
        rows = self.rows()
        with self._lock:
            memo = self._memo_cache
            if memo is not None and memo.rows is rows:
                return memo
        memo = _Memo(rows, self.kind, [self.kind.make(self, row) for row in rows])
        with self._lock:
            self._memo_cache = memo
        return memo

    def __len__(self) -> int:
        return len(self.rows())

    def __iter__(self) -> Iterator[Any]:
        return iter(self._memo().objects)

    def __bool__(self) -> bool:
        return len(self) > 0

    def keys(self) -> list[str]:
        """The IDs, in server order."""
        return list(self._memo().ids)

    def values(self) -> list[Any]:
        return list(self._memo().objects)

    def items(self) -> list[tuple[str, Any]]:
        memo = self._memo()
        return list(zip(memo.ids, memo.objects))

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
            return self._memo().objects[key]
        return self._find(str(key))

    def get(self, key: str, default: Any = None) -> Any:
        """The object with ID or label ``key``, or ``default``; an ambiguous label still raises."""
        try:
            return self._find(key)
        except NotFound:
            return default

    def _find(self, key: str) -> Any:
        memo = self._memo()
        found = memo.by_id.get(key)
        if found is not None:
            return memo.objects[found]
        for column, index in memo.by_secondary:
            positions = index.get(key)
            if not positions:
                continue
            if len(positions) == 1:
                return memo.objects[positions[0]]
            ids = ", ".join(memo.ids[i] for i in positions)
            raise AmbiguousLabelError(f"{len(positions)} {self.kind.noun} have {column} {key!r} in {self.path} "
                                      f"(IDs {ids}); index by ID instead")
        noun = self.kind.noun[:-1] if self.kind.noun.endswith("s") else self.kind.noun
        raise NotFound(f"No {noun} with ID or {'/'.join(self.kind.secondary) or 'ID'} {key!r} in {self.path}")

    # -- views and changes --------------------------------------------------------------------------

    def filter(self, patterns: Mapping[str, str] | None = None, **more: str) -> Listing:
        """A view of the rows whose columns match all shell ``patterns`` (``label="S*"``)."""
        merged = {**self._patterns, **dict(patterns or {}), **more}
        return Listing(self._ctx, self.path, self.kind, owner=self.owner, patterns=merged)

    def refresh(self) -> Listing:
        """Forget the cached rows; the next access asks the server."""
        self._ctx.invalidate(exact=[self.path])
        with self._lock:
            self._memo_cache = None
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


def _missing_columns(rows: Sequence[Row], patterns: Mapping[str, str]) -> list[str]:
    """The filtered columns that no row has (none when there are no rows: nothing to match anyway)."""
    if not rows:
        return []
    return [column for column in patterns if not any(column in row for row in rows)]


__all__ = ["Listing", "ListingKind"]
