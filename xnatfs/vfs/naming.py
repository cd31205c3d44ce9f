"""File names for XNAT labels: safe, reversible, unique within a directory. Pure functions.

XNAT labels and file paths are text that may not be a valid file name: ``/`` and NUL cannot appear
in one, ``.`` and ``..`` mean something else, and text that came from non-UTF-8 bytes (Python's
``surrogateescape``) or holds lone surrogates cannot be encoded. :func:`encode_name` escapes exactly
those characters with ``%XX`` escapes, so ordinary labels (including any non-ASCII text) keep their names:

- ``/`` → ``%2F``, NUL → ``%00``; a name that is ``.`` or ``..`` → ``%2E`` / ``%2E%2E``;
- a surrogate-escaped byte (U+DC80–U+DCFF) → ``%XX`` of that byte; any other lone surrogate →
  ``%uXXXX``;
- control characters (issue 18: a ``\n`` in a name breaks ``ls`` output and scripts, a bidi control
  makes ``evil\u202etxt.exe`` show as ``evilexe.txt``): C0 and DEL → ``%XX`` (``\n`` → ``%0A``), C1
  controls and bidi controls (U+061C, U+200E/F, U+202A–E, U+2066–9) → ``%uXXXX``;
- a ``%`` is escaped (``%25``) only where :func:`decode_name` would otherwise read an escape, that
  is before two hex digits or before ``u`` and four hex digits; ``50%`` stays ``50%``.

:func:`decode_name` inverts it: ``decode_name(encode_name(label)) == label`` for every string.

Collisions (two objects whose names encode the same, or an empty label) are resolved by
:func:`unique_names`: every member of a colliding group gets ``~<ID>`` appended, so a name does not
depend on which object the server lists first. A name longer than 255 bytes (UTF-8), which no Linux
file system can hold (a 70,000-character label made listing its whole folder fail with EIO), is
shortened by :func:`unique_names` to ``<start>…~<ID>`` within 255 bytes; the full label stays in
``xnat.json`` and the ``user.xnat.*`` attributes.

File managers and tools probe for names such as ``.Trash-1000`` or ``desktop.ini`` in every
directory; :func:`is_probe_name` recognises them so the tree can answer without asking the server.

Imports the standard library only.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence

#: Appended between a label and an ID when two entries would share a name.
COLLISION_SEPARATOR = "~"
#: Marks a name shortened to fit :data:`MAX_NAME_BYTES`.
SHORTENED = "…"
#: NAME_MAX of Linux file systems, in bytes.
MAX_NAME_BYTES = 255
#: Bidirectional-text controls (they reorder how a name is shown): escaped as ``%uXXXX``.
_BIDI = frozenset([0x061C, 0x200E, 0x200F, *range(0x202A, 0x202F), *range(0x2066, 0x206A)])

_HEX2 = re.compile(r"[0-9A-Fa-f]{2}")
_UHEX4 = re.compile(r"u[0-9A-Fa-f]{4}")
_ESCAPE = re.compile(r"%(?:u([0-9A-Fa-f]{4})|([0-9A-Fa-f]{2}))")

#: Exact names probed by desktops, shells and tools (case-insensitive match).
PROBE_NAMES = frozenset({
    ".trash", ".ds_store", ".hidden", "desktop.ini", "autorun.inf", ".git", "__pycache__",
    ".xdg-volume-info", ".directory", ".localized", "folder.jpg", "folder.png", ".svn", ".hg",
    ".metadata_never_index", ".spotlight-v100", ".fseventsd", ".volumeicon.icns",
})
#: Name prefixes probed the same way (``.Trash-1000``, AppleDouble ``._name``).
PROBE_PREFIXES = (".trash-", "._")


def _needs_percent_escape(text: str, index: int) -> bool:
    """True if the ``%`` at ``index`` would be read as an escape by :func:`decode_name`."""
    rest = text[index + 1:index + 6]
    return bool(_HEX2.match(rest) or _UHEX4.match(rest))


def encode_name(label: str) -> str:
    """``label`` as a file name (see the module docstring); the empty string stays empty."""
    if label == ".":
        return "%2E"
    if label == "..":
        return "%2E%2E"
    out: list[str] = []
    for i, char in enumerate(label):
        code = ord(char)
        if char == "/":
            out.append("%2F")
        elif char == "\0":
            out.append("%00")
        elif char == "%":
            out.append("%25" if _needs_percent_escape(label, i) else "%")
        elif code < 0x20 or code == 0x7F:
            out.append(f"%{code:02X}")
        elif 0x80 <= code <= 0x9F or code in _BIDI:
            out.append(f"%u{code:04X}")
        elif 0xDC80 <= code <= 0xDCFF:
            out.append(f"%{code - 0xDC00:02X}")
        elif 0xD800 <= code <= 0xDFFF:
            out.append(f"%u{code:04X}")
        else:
            out.append(char)
    return "".join(out)


def decode_name(name: str) -> str:
    """The label a file name stands for: the inverse of :func:`encode_name`.

    ``%XX`` below 0x80 is that ASCII character; from 0x80 it is the surrogate-escaped byte, so a
    label that held undecodable bytes gets them back; ``%uXXXX`` is that code point.
    """
    if "%" not in name:
        return name

    def unescape(match: re.Match[str]) -> str:
        if match.group(1) is not None:
            return chr(int(match.group(1), 16))
        value = int(match.group(2), 16)
        return chr(value) if value < 0x80 else chr(0xDC00 + value)

    return _ESCAPE.sub(unescape, name)


def unique_names(entries: Sequence[tuple[str, str]]) -> list[str]:
    """File names for ``(label, id)`` pairs, in the same order, all distinct.

    A label that encodes to a name no other entry has keeps that name. Every entry of a colliding
    group is named ``<name>~<id>``, an entry with an empty label just ``<id>``. A generated name
    never takes a name that some label has on its own; if it is still taken, ``~2``, ``~3`` …
    follow, in input order.
    """
    encoded = [encode_name(label) for label, _ in entries]
    counts: dict[str, int] = {}
    for name in encoded:
        counts[name] = counts.get(name, 0) + 1
    names: list[str | None] = [name if name and counts[name] == 1 else None for name in encoded]
    taken = {name for name in names if name is not None}
    for i, ((_label, ident), name) in enumerate(zip(entries, encoded)):
        if names[i] is not None:
            continue
        suffix = encode_name(ident) if ident else ""
        base = (f"{name}{COLLISION_SEPARATOR}{suffix}" if suffix else name) if name else (suffix or "%00")
        candidate, n = base, 1
        while candidate in taken:
            n += 1
            candidate = f"{base}{COLLISION_SEPARATOR}{n}"
        taken.add(candidate)
        names[i] = candidate
    return [_fit(name, ident) for name, (_label, ident) in zip(names, entries) if name is not None]


def _fit(name: str, ident: str) -> str:
    """``name``, or if it is longer than 255 bytes its start shortened to ``<start>…~<ID>`` (255 bytes)."""
    if len(name.encode("utf-8", "surrogateescape")) <= MAX_NAME_BYTES:
        return name
    tail = f"{SHORTENED}{COLLISION_SEPARATOR}{encode_name(ident)}" if ident else SHORTENED
    room = MAX_NAME_BYTES - len(tail.encode("utf-8", "surrogateescape"))
    start = name.encode("utf-8", "surrogateescape")[:max(room, 0)].decode("utf-8", "ignore")
    return (start + tail)[:MAX_NAME_BYTES] if room > 0 else encode_name(ident)[:MAX_NAME_BYTES]


def is_probe_name(name: str) -> bool:
    """True for names that desktops and tools look for in every directory (``.Trash-1000``, ``._x``)."""
    lowered = name.lower()
    return lowered in PROBE_NAMES or lowered.startswith(PROBE_PREFIXES)


#: Names programs give a file they write and then rename to its real name: rsync's ``.<name>.XXXXXX``,
#: GIO's (gedit, Nautilus) ``.goutputstream-XXXXXX``, Python's ``tempfile`` (``tmpXXXXXXXX``) and ``*.tmp``.
_TEMPORARY = re.compile(r"\..+\.[A-Za-z0-9]{6}|\.goutputstream-[A-Za-z0-9]{6}|tmp[a-z0-9_]{8}|.+\.tmp")


def is_temporary_name(name: str) -> bool:
    """Whether ``name`` is a temporary file's, to be uploaded under the name it is renamed to."""
    return _TEMPORARY.fullmatch(name) is not None


def split_path(path: str) -> list[str]:
    """``/a/b/c`` → ``['a', 'b', 'c']``; ``/`` → ``[]``. Empty segments are dropped."""
    return [part for part in path.split("/") if part]


def join_path(parts: Iterable[str]) -> str:
    """The inverse of :func:`split_path`: ``['a', 'b']`` → ``/a/b``."""
    return "/" + "/".join(parts)


__all__ = ["encode_name", "decode_name", "unique_names", "is_probe_name", "is_temporary_name", "split_path", "join_path",
           "COLLISION_SEPARATOR", "PROBE_NAMES", "PROBE_PREFIXES", "MAX_NAME_BYTES", "SHORTENED"]
