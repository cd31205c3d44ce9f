"""A resource's files as folders: relative paths (``docs/README.txt``) → a tree of nodes. Pure.

Sub-folders come first in each folder, sorted; files keep the listing's order. Names go through
:func:`~xnatfs.vfs.naming.unique_names`, so a file and a folder of the same name (possible in an XNAT
catalog) both stay reachable (``name~folder``, ``name~file``).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from xnatfs.vfs.naming import unique_names
from xnatfs.vfs.nodes import Node, NodeKind, dir_stat, file_stat, file_xattrs
from xnatfs.model.records import FileInfo


def resource_tree(node: Node, files: Sequence[FileInfo]) -> dict[str, dict[str, Node]]:
    """Every folder of the resource ``node``'s file tree by its (encoded) path, ``""`` the resource itself.

    Files and folders get the resource's modification time (XNAT's file listings carry none).
    """
    resource = node.resource
    assert resource is not None
    mtime = node.stat.mtime
    tree: dict[tuple[str, ...], tuple[dict[str, Any], list[FileInfo]]] = {(): ({}, [])}
    for info in files:
        parts = tuple(p for p in info.relpath.split("/") if p)
        if not parts:
            continue
        for depth in range(1, len(parts)):
            folder = parts[:depth]
            if folder not in tree:
                tree[folder] = ({}, [])
                tree[folder[:-1]][0][folder[-1]] = folder
        tree[parts[:-1]][1].append(info)
    folders: dict[str, dict[str, Node]] = {}
    encoded: dict[tuple[str, ...], str] = {(): ""}
    for folder in sorted(tree, key=len):
        subfolders, folder_files = tree[folder]
        sub_items = sorted(subfolders)
        labels = [(name, "folder") for name in sub_items] + [(f.relpath.rsplit("/", 1)[-1], "file")
                                                             for f in folder_files]
        names = unique_names(labels)
        prefix = encoded[folder]
        base = node.path + (f"/{prefix}" if prefix else "")
        entries: dict[str, Node] = {}
        for name, sub in zip(names, sub_items):
            child = (*folder, sub)
            encoded[child] = f"{prefix}/{name}" if prefix else name
            entries[name] = Node(NodeKind.FOLDER, f"{base}/{name}", dir_stat(mtime), obj=node.obj,
                                 resource=resource, folder=encoded[child])
        for name, info in zip(names[len(sub_items):], folder_files):
            entries[name] = Node(NodeKind.FILE, f"{base}/{name}", file_stat(info.size, mtime), file_xattrs(info),
                                 obj=node.obj, resource=resource, file=info)
        folders[prefix] = entries
    return folders


__all__ = ["resource_tree"]
