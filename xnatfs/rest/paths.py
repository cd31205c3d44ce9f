"""URL paths of XNAT's REST hierarchy: building, quoting, normalising and taking apart. Pure functions.

- IDs and labels are quoted as single path segments (``/`` and ``?`` inside a label cannot escape
  into the path or the query); file paths inside a resource keep their ``/``.
- XNAT serves every archive path twice, ``/data/…`` and ``/data/archive/…`` (and ``/REST/…`` from
  1.4); :func:`normalize` folds them to ``/data/…`` so caches and comparisons see one form
  (xnat-rest-spec §1, xnatpy-notes §2.2).
- A file's path inside its resource is what follows ``/resources/<id>/files/`` in its URI
  (xnat-rest-spec §13.1).
"""

from __future__ import annotations

import re
from urllib.parse import quote, unquote, urlsplit

from xnatfs.errors import ConfigError

_FILES_PART = re.compile(r"/resources/([^/]+)/files/(.+)$")


def quote_segment(value: str) -> str:
    """``value`` quoted as one path segment (everything but unreserved characters escaped)."""
    if value in ("", ".", ".."):
        raise ConfigError(f"Not a valid path segment: {value!r}")
    return quote(str(value), safe="")


def join(base: str, *segments: str) -> str:
    """``base`` followed by each segment, quoted: ``join('/data/projects', 'P 1')`` → ``/data/projects/P%201``."""
    return base.rstrip("/") + "".join("/" + quote_segment(s) for s in segments)


def check_relpath(path: str) -> str:
    """A relative file path inside a resource, checked: no leading ``/``, no ``.``/``..``/empty segment."""
    path = path.replace("\\", "/")
    parts = path.split("/")
    if not path or path.startswith("/") or any(p in ("", ".", "..") for p in parts):
        raise ConfigError(f"Not a valid relative file path: {path!r}")
    return path


#: what a URL path carries as it is (RFC 3986 pchar without ``%``): XNAT reads these as sent
_AS_SENT = "/!$&'()*,;=:@~"


def quote_relpath(path: str) -> str:
    """A checked relative file path, written so that XNAT reads it back as ``path``.

    XNAT's file resource (``FileList``) takes the rest of the URL as it was sent and decodes it (all of
    it, ``+`` included) only when it holds ``%20`` or ``%2B``. So a path with a space or a plus is
    quoted whole (XNAT then decodes it whole), and any other path is sent as it is, but for the few
    characters a URL cannot carry (``%``, ``?``, ``#``, non-ASCII…), which are escaped and which XNAT
    will not decode: such a name cannot be reached on a real XNAT unless it also has a space or a plus.
    """
    path = check_relpath(path)
    if " " in path or "+" in path:
        return quote(path, safe="/", errors="surrogateescape")
    return quote(path, safe=_AS_SENT, errors="surrogateescape")


def file_uri_from_listing(uri: str, name: str = "") -> tuple[str, str]:
    """``(path inside the resource, download path)`` of a file listing row's ``URI`` (and ``Name``).

    A server may print the path raw or URL-quoted; the ``Name`` column (the basename) tells which. The
    download path is the URI's ``…/files/`` prefix followed by the path written as XNAT reads it
    (:func:`quote_relpath`)."""
    match = _FILES_PART.search(uri.split("?", 1)[0])
    if match is None:
        raise ConfigError(f"Not a file URI: {uri[:200]!r}")
    raw = match.group(2)
    relpath = raw if raw.rsplit("/", 1)[-1] == name else unquote(raw, errors="surrogateescape")
    return relpath, normalize(uri[: match.start(2)] + quote_relpath(relpath))


def file_resource_key(uri: str) -> str:
    """The resource segment (ID or label) of a file URI (``…/resources/12/files/a.dcm`` → ``12``)."""
    match = _FILES_PART.search(uri.split("?", 1)[0])
    if match is None:
        raise ConfigError(f"Not a file URI: {uri[:200]!r}")
    return unquote(match.group(1))


def file_path(resource_uri: str, relpath: str) -> str:
    """The download/upload path of ``relpath`` inside the resource at ``resource_uri``."""
    return resource_uri.rstrip("/") + "/files/" + quote_relpath(relpath)


def normalize(uri: str) -> str:
    """A server path in the ``/data/…`` form: scheme and host dropped, ``/REST`` and ``/data/archive`` folded."""
    if "://" in uri:
        uri = urlsplit(uri).path
    if uri.startswith("/REST/") or uri == "/REST":
        uri = "/data" + uri[len("/REST"):]
    if uri.startswith("/data/archive/"):
        uri = "/data/" + uri[len("/data/archive/"):]
    return uri.rstrip("/") or "/"


def file_relpath(uri: str) -> str:
    """The path of a file inside its resource, from its URI (``…/resources/12/files/a/b.dcm`` → ``a/b.dcm``)."""
    match = _FILES_PART.search(urlsplit(uri).path if "://" in uri else uri.split("?", 1)[0])
    if match is None:
        raise ConfigError(f"Not a file URI: {uri[:200]!r}")
    return unquote(match.group(2))


def with_data_prefix(uri: str) -> str:
    """``uri`` with a leading ``/data`` (prearchive rows give ``/prearchive/…`` without it)."""
    uri = uri.strip()
    return uri if uri.startswith("/data/") else "/data" + (uri if uri.startswith("/") else "/" + uri)


def split_hierarchy(uri: str) -> list[tuple[str, str]]:
    """``/data/projects/P/subjects/S/experiments/E`` → ``[('projects','P'), ('subjects','S'), ('experiments','E')]``.

    Works on normalized ``/data`` paths; segments are unquoted. A trailing ``files/<path>`` keeps the
    whole remaining path as one value.
    """
    path = normalize(uri)
    if not path.startswith("/data/"):
        raise ConfigError(f"Not an XNAT /data path: {uri[:200]!r}")
    parts = path[len("/data/"):].split("/")
    pairs: list[tuple[str, str]] = []
    i = 0
    while i < len(parts):
        kind = parts[i]
        if kind == "files":
            pairs.append((kind, unquote("/".join(parts[i + 1:]))))
            break
        if i + 1 >= len(parts):
            pairs.append((kind, ""))
            break
        pairs.append((kind, unquote(parts[i + 1])))
        i += 2
    return pairs


__all__ = [
    "quote_segment", "join", "check_relpath", "quote_relpath", "file_path", "normalize", "file_relpath",
    "file_uri_from_listing", "file_resource_key",
    "with_data_prefix", "split_hierarchy",
]
