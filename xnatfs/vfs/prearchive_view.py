"""``prearchive/<project>/<timestamp>/<session>/``: a read-only view of XNAT's prearchive.

::

    /prearchive/<project>/<timestamp>/<session>/
        xnat.json                          the session's prearchive row (status, subject, tag, …)
        scans/<scan ID>/xnat.json          the scan's row (ID, xsiType, series_description)
        scans/<scan ID>/resources/<label>/<file path>
        resources/<label>/<file path>      session-level resources

Requests (xnat-rest-spec §16.1–§16.2), each cached for the metadata TTL, so a session's status in
``xnat.json`` is at most one TTL old:

==============================  =============================================================
``/prearchive``, ``<project>``,  ``GET /data/prearchive/projects?format=json`` (one listing of
``<timestamp>``                  every session the user can see; projects without sessions
                                 have no folder)
``<session>/scans``              ``GET <session>/scans?format=json``
``…/resources``                  ``GET <session>/resources?format=json`` (scan and session
                                 resources of the whole session in one answer)
``…/resources/<label>/``         ``GET <resource>/files?format=json`` (``Name, Size, URI``)
==============================  =============================================================

Files are :class:`~xnatfs.vfs.nodes.NodeKind.FILE` nodes like the archive's, so they are read the
same way (ranged streaming, on-disk cache); ``xnat.json`` is a ``TEXT`` node. Names go through
:mod:`xnatfs.vfs.naming`. Times: the session's ``lastmod`` (else ``uploaded``), read as UTC.

Thread-safe: the caches are locked; everything else is derived per call.
"""

from __future__ import annotations

import json
import zlib
from collections.abc import Mapping
from typing import Any
from urllib.parse import quote, unquote

from xnatfs.cache.ttl import TTLCache
from xnatfs.errors import NotFound
from xnatfs.model.catalog import Catalog, row_epoch
from xnatfs.model.records import ResourceInfo
from xnatfs.vfs.filetree import resource_tree
from xnatfs.vfs.naming import decode_name, encode_name, is_probe_name, split_path, unique_names
from xnatfs.vfs.nodes import FILE_MODE, JSON_DOCUMENT, XATTR_URI, Node, NodeKind, Stat, dir_stat

PREARCHIVE = "prearchive"
XATTR_STATUS = "user.xnat.status"
Row = Mapping[str, str]


def row_time(row: Row) -> float | None:
    """``lastmod`` (else ``uploaded``) of a prearchive row as epoch seconds."""
    return row_epoch(row, "lastmod", "uploaded")


def json_bytes(doc: Mapping[str, Any]) -> bytes:
    return (json.dumps(dict(doc), indent=2, sort_keys=True, ensure_ascii=False) + "\n").encode("utf-8", "replace")


class PrearchiveView:
    """The ``/prearchive`` tree (see the module docstring)."""

    def __init__(self, catalog: Catalog, *, ttl: float = 60.0, maxsize: int = 2_000, mount_time: float = 0.0) -> None:
        self.catalog = catalog
        self.mount_time = mount_time
        #: resource uri -> (the file records it was built from, its folders)
        self._trees = TTLCache(maxsize, ttl)

    def clear(self) -> None:
        self._trees.clear()

    def _rows(self, path: str) -> tuple[Row, ...]:
        return self.catalog.prearchive_rows(path)

    def sessions(self) -> tuple[Row, ...]:
        return self._rows("/data/prearchive/projects")

    # -- the tree ------------------------------------------------------------------------------------

    def lookup(self, path: str) -> Node:
        parts = split_path(path)
        if parts[:1] != [PREARCHIVE]:
            raise NotFound(f"Not in the prearchive: {path}")
        if parts and is_probe_name(parts[-1]) and len(parts) <= 4:
            raise NotFound(f"No such entry (probe): {path}")
        node = self._dir("/" + PREARCHIVE, self.mount_time)
        for name in parts[1:]:
            entry = self._entries(node).get(name)
            if entry is None:
                raise NotFound(f"No such entry: {path}")
            node = entry
        return node

    def listdir(self, path: str) -> list[Node]:
        node = self.lookup(path)
        if not node.is_dir:
            raise NotFound(f"Not a directory: {path}")
        return list(self._entries(node).values())

    # -- levels --------------------------------------------------------------------------------------

    def _dir(self, path: str, mtime: float | None, collection: str = PREARCHIVE, **extra: Any) -> Node:
        return Node(NodeKind.COLLECTION, path, dir_stat(mtime if mtime is not None else self.mount_time),
                    collection=collection, **extra)

    def _entries(self, node: Node) -> Mapping[str, Node]:
        depth = len(split_path(node.path))
        if node.kind is NodeKind.RESOURCE or node.kind is NodeKind.FOLDER:
            return self._files(node)
        if depth <= 3:
            return self._session_levels(node, depth)
        return self._inside_session(node)

    def _session_levels(self, node: Node, depth: int) -> dict[str, Node]:
        """``/prearchive`` → projects → timestamps → sessions, all from the one sessions listing."""
        parts = split_path(node.path)
        groups: dict[str, list[Row]] = {}
        for row in self.sessions():
            url = row.get("url", "")
            pieces = url.split("/")  # /data/prearchive/projects/P/TS/F
            if len(pieces) < 7:
                continue
            project, timestamp, folder = (unquote(p) for p in pieces[4:7])
            key = (project, timestamp, folder)[depth - 1]
            if list(map(encode_name, (project, timestamp, folder)))[: depth - 1] != parts[1:depth]:
                continue
            groups.setdefault(key, []).append(row)
        entries: dict[str, Node] = {}
        for key in sorted(groups):
            rows = groups[key]
            name = encode_name(key)
            child = f"{node.path}/{name}"
            mtime = max((t for t in map(row_time, rows) if t is not None), default=None)
            if depth < 3:
                entries[name] = self._dir(child, mtime)
            else:
                row = rows[0]
                uri = row.get("url", "")
                entries[name] = self._dir(child, mtime, "session", obj=None, folder=uri,
                                          xattrs={XATTR_URI: uri, XATTR_STATUS: row.get("status", "")},
                                          data=json_bytes({**row, "URI": uri}))
        return entries

    def _inside_session(self, node: Node) -> dict[str, Node]:
        """A session folder and the folders below it down to one resource's label."""
        parts = split_path(node.path)
        session_path = "/" + "/".join(parts[:4])
        session = node if len(parts) == 4 else self.lookup(session_path)
        uri = session.folder
        mtime = session.stat.mtime
        rest = parts[4:]
        if not rest:
            return {JSON_DOCUMENT: _text(f"{node.path}/{JSON_DOCUMENT}", session.data, mtime),
                    "scans": self._dir(f"{node.path}/scans", mtime, "scans", folder=uri),
                    "resources": self._dir(f"{node.path}/resources", mtime, "resources", folder=uri)}
        if rest == ["scans"]:
            rows = self._rows(f"{uri}/scans")
            names = unique_names([(r.get("ID", ""), r.get("ID", "")) for r in rows])
            return {name: self._dir(f"{node.path}/{name}", mtime, "scan", folder=uri, data=json_bytes(r),
                                    xattrs={XATTR_URI: f"{uri}/scans/{quote(r.get('ID', ''), safe='')}"})
                    for name, r in zip(names, rows)}
        if len(rest) == 2 and rest[0] == "scans":
            return {JSON_DOCUMENT: _text(f"{node.path}/{JSON_DOCUMENT}", node.data, mtime),
                    "resources": self._dir(f"{node.path}/resources", mtime, "resources", folder=uri)}
        if rest == ["resources"] or (len(rest) == 3 and rest[0] == "scans" and rest[2] == "resources"):
            scan = decode_name(rest[1]) if len(rest) == 3 else None
            return self._resources(node, uri, scan, mtime)
        raise NotFound(f"No such entry: {node.path}")

    def _resources(self, node: Node, session_uri: str, scan: str | None, mtime: float) -> dict[str, Node]:
        def wanted(row: Row) -> bool:
            if scan is None:
                return row.get("category") == "resources"
            return row.get("category") == "scans" and row.get("cat_id") == scan

        rows = [r for r in self._rows(f"{session_uri}/resources") if wanted(r)]
        labels = [r.get("label", "") for r in rows]
        names = unique_names([(label, label) for label in labels])
        base = f"{session_uri}/scans/{quote(scan, safe='')}" if scan is not None else session_uri
        entries = {}
        for name, label in zip(names, labels):
            res_uri = f"{base}/resources/{quote(label, safe='')}"
            info = ResourceInfo(label, label, res_uri, session_uri)
            entries[name] = Node(NodeKind.RESOURCE, f"{node.path}/{name}", dir_stat(mtime), {XATTR_URI: res_uri},
                                 resource=info)
        return entries

    def _files(self, node: Node) -> Mapping[str, Node]:
        """A prearchive resource's file tree (one request per resource and TTL)."""
        resource_path = node.path if node.kind is NodeKind.RESOURCE else node.path[: len(node.path) - len(node.folder) - 1]
        resource_node = node if node.kind is NodeKind.RESOURCE else self.lookup(resource_path)
        info = resource_node.resource
        assert info is not None
        files = self.catalog.prearchive_files(info)
        memo = self._trees.get(info.uri)
        if memo is None or memo[0] is not files:
            memo = (files, resource_tree(resource_node, list(files)))
            self._trees.set(info.uri, memo)
        folders = memo[1]
        entries = folders.get(node.folder if node.kind is NodeKind.FOLDER else "")
        if entries is None:
            raise NotFound(f"No such folder: {node.path}")
        return entries


def _text(path: str, data: bytes, mtime: float) -> Node:
    """An ``xnat.json``: its time's microseconds are a checksum of its content, so that the kernel (which
    keeps a file's pages while its size and time are unchanged) sees a status that changed in place."""
    return Node(NodeKind.TEXT, path, Stat(FILE_MODE, len(data), int(mtime) + zlib.crc32(data) % 10**6 / 1e6),
                data=data)


__all__ = ["PrearchiveView", "PREARCHIVE", "XATTR_STATUS", "row_time"]
