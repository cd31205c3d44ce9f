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

_FILES_PART = re.compile(r"/resources/[^/]+/files/(.+)$")


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


def quote_relpath(path: str) -> str:
    """A checked relative file path with each segment quoted and ``/`` kept."""
    return "/".join(quote(p, safe="") for p in check_relpath(path).split("/"))


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
    return unquote(match.group(1))


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
    "with_data_prefix", "split_hierarchy",
]
