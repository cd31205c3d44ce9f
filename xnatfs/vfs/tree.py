"""Path → node over a :class:`~xnatfs.model.records.MetadataSource`: the layout of DESIGN.md §2.

::

    /projects/<ID>/{xnat.json, xnat.xml, resources/, subjects/}
      subjects/<label>/{xnat.json, xnat.xml, resources/, experiments/}
        experiments/<label>/{xnat.json, xnat.xml, resources/, scans/, assessors/, reconstructions/}
          scans/<ID>/{xnat.json, xnat.xml, resources/}
          assessors/<label>/… reconstructions/<ID>/…
    …/resources/<label>/<file path, sub-folders kept>

How it stays cheap (issue 6 item 4):

- A directory is listed from at most one source call that is not already cached, and the nodes of a
  listing carry their final attributes, so ``stat`` of its entries costs nothing. The exception is
  a document's size, which needs that document: ``xnat.json`` of a project or subject (its
  document also lists its resources and experiments, so it is fetched anyway when one descends) and
  ``xnat.xml`` (one request each, prefetched, see below).
- One request describes a whole level: a subject's document nests its experiments with their scans,
  assessors, reconstructions and resources, and one merged file listing per session gives the files
  of all its resources.
- Listings derived from source records are memoised by the identity of those records: while the
  source keeps a record cached, the listing is reused; when the record is reloaded, the listing is
  rebuilt. The source's TTL is therefore the only clock.
- After a collection (``subjects/``, ``experiments/``, …; not ``projects/``) is listed, what its
  children will need is prefetched in parallel by a small bounded thread pool (at most
  ``prefetch_limit`` children per listing; a bigger directory is not prefetched, so opening it in a
  file manager stays cheap).
  The first ``xnat.xml`` that is sized in a collection (``ls -l``, ``find -ls``) prefetches those
  of its siblings the same way; a plain ``ls`` or ``find`` never fetches them.
- A program that walks a large collection in listing order (``find``, ``du``, ``rsync``) has the
  objects ahead of it warmed, and that work goes before the guesses above
  (:mod:`xnatfs.vfs.workpool`): ``find -maxdepth 3`` over 1,000 subjects need not wait behind the
  session file listings that each subject's fresh ``experiments/`` listing queues.
- Names that desktops probe in every directory (``.Trash-1000``, ``.DS_Store`` …) are answered with
  ENOENT without a request, unless the listing that would hold them is already in memory.

Nothing here writes; the root is a table of top-level folders so that ``import/`` and
``prearchive/`` can be added as further entries.

Thread-safe: the memo is a locked TTL cache, the source is thread-safe, the pool is bounded.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from xnatfs.cache.derived import DerivedCache
from xnatfs.cache.ttl import TTLCache
from xnatfs.errors import NotADirectory, NotFound, XNATError
from xnatfs.vfs.documents import object_json
from xnatfs.vfs.filetree import resource_tree
from xnatfs.vfs.workpool import GUESS, URGENT, WorkPool
from xnatfs.vfs.naming import is_probe_name, join_path, split_path, unique_names
from xnatfs.vfs.nodes import (
    JSON_DOCUMENT,
    XML_DOCUMENT,
    Node,
    NodeKind,
    dir_stat,
    file_stat,
    object_xattrs,
    resource_xattrs,
)
from xnatfs.model.records import (
    ASSESSOR,
    EXPERIMENT,
    PROJECT,
    RECONSTRUCTION,
    SCAN,
    SUBJECT,
    MetadataSource,
    XObject,
)

log = logging.getLogger(__name__)

#: listings kept as lists for their callers (VirtualTree.listdir)
LISTS_KEPT = 16

RESOURCES = "resources"
#: an assessor's or reconstruction's input resources (its ``resources/`` are the output ones)
INPUTS = "in"
#: the collection folders that list resources, and which resources each shows
RESOURCE_FOLDERS = {RESOURCES: lambda r: r.role != "in", INPUTS: lambda r: r.role == "in"}
#: collection folder name → the object kind it holds
COLLECTION_KINDS = {"projects": PROJECT, "subjects": SUBJECT, "experiments": EXPERIMENT, "scans": SCAN,
                    "assessors": ASSESSOR, "reconstructions": RECONSTRUCTION}
#: object kind → the collection folders inside such an object (after xnat.json, xnat.xml)
OBJECT_FOLDERS = {
    PROJECT: (RESOURCES, "subjects"),
    SUBJECT: (RESOURCES, "experiments"),
    EXPERIMENT: (RESOURCES, "scans", "assessors", "reconstructions"),
    SCAN: (RESOURCES,),
    ASSESSOR: (RESOURCES, INPUTS),
    RECONSTRUCTION: (RESOURCES, INPUTS),
}
#: collections whose fresh listing warms nothing: resources (their files come with the session's
#: listing), and the projects: a user opens one of them, and warming every project's document and
#: subject listing cost a site of 50 projects 100 requests at the first ``ls`` of the mount
UNGUESSED = frozenset({*RESOURCE_FOLDERS, "projects"})
#: object kinds named by ID rather than label in their collection folder
NAMED_BY_ID = frozenset({PROJECT, SCAN, RECONSTRUCTION})
#: the top-level folders of the mount
TOP_LEVEL = ("projects",)


@dataclass(frozen=True)
class TreeSettings:
    """Memo size and TTL (seconds; match the source's), and the prefetch pool's bounds."""

    ttl: float = 60.0
    maxsize: int = 20_000
    prefetch_workers: int = 8
    prefetch_limit: int = 256
    prefetch_documents: bool = True
    #: in a collection too large to warm whole, how many objects past the one a program is visiting
    #: are warmed once it visits them in listing order (find, du, rsync over 1,000 subjects)
    walk_ahead: int = 64
    #: how long a resolved path is reused without walking its listings again (at most ``ttl``; see
    #: VirtualTree.lookup)
    resolved_ttl: float = 5.0


@dataclass(frozen=True)
class _Listing:
    """A directory's entries (name → node), derived from ``inputs`` (records compared by identity)."""

    inputs: tuple[Any, ...]
    entries: Mapping[str, Node]
    #: for a resource: every folder of its file tree, by folder path ("" is the resource itself)
    folders: Mapping[str, Mapping[str, Node]] | None = None


class VirtualTree:
    """Resolves mount paths to :class:`Node` objects and lists directories (see module docstring)."""

    def __init__(self, source: MetadataSource, settings: TreeSettings | None = None, *,
                 mount_time: float | None = None) -> None:
        self.source = source
        self.settings = settings or TreeSettings()
        self.mount_time = time.time() if mount_time is None else mount_time
        self._memo = TTLCache(self.settings.maxsize, self.settings.ttl)
        #: the listings last handed out, as lists (see listdir)
        self._lists: DerivedCache[Mapping[str, Node], list[Node]] = DerivedCache(LISTS_KEPT)
        self._documents_prefetched = TTLCache(self.settings.maxsize, self.settings.ttl)
        #: large collection path → its walk (see _walk_ahead)
        self._walks = TTLCache(1024, self.settings.ttl)
        #: path → (the source's changes() when it was resolved, its node); see lookup
        self._resolved = TTLCache(self.settings.maxsize, min(self.settings.ttl, self.settings.resolved_ttl))
        self._pool = WorkPool(self.settings.prefetch_workers, "xnatfs-prefetch")
        self._queued = threading.BoundedSemaphore(max(1, 4 * self.settings.prefetch_limit))
        self._closed = False
        self.root = Node(NodeKind.ROOT, "/", dir_stat(self.mount_time))

    def close(self) -> None:
        """Stop prefetching (queued work is dropped; running requests finish within their timeout)."""
        self._closed = True
        self._pool.close()

    # -- public -----------------------------------------------------------------------------------

    def lookup(self, path: str) -> Node:
        """The node at ``path`` (a document with its true size); :class:`NotFound` if there is none.

        A path resolved in the last :attr:`TreeSettings.resolved_ttl` seconds is answered at once, as
        long as the source has forgotten nothing since: programs that read a series open each file
        several times (dcm2niix: four), and walking a dozen listings from the root for each open cost
        more than the rest of the open. The kernel keeps what it was told for the whole TTL anyway.
        A path not resolved yet starts from its parent's resolution, so the first open of each file of
        a series walks one listing, not a dozen.
        """
        changes = self.source.changes()
        resolved = self._resolved.get(path)
        if resolved is not None and resolved[0] == changes:
            return resolved[1]
        parts = split_path(path)
        if parts and is_probe_name(parts[-1]):
            return self._lookup_probe(parts)
        if not parts:
            return self.root
        parent = self.lookup(join_path(parts[:-1])) if len(parts) > 1 else self.root
        node = self._child(parent, parts[-1])
        if node.kind is NodeKind.DOCUMENT:
            node = self._sized_document(node)
        self._resolved.set(path, (changes, node))
        return node

    def listdir(self, path: str) -> list[Node]:
        """The entries of the directory at ``path``, in a stable order (documents have no size yet): the
        same list while the listing is unchanged (:mod:`xnatfs.cache.derived`; not to be changed)."""
        node = self.lookup(path)
        if not node.is_dir:
            raise NotADirectory(path)
        if node.kind is NodeKind.OBJECT and node.obj is not None and node.obj.kind == EXPERIMENT:
            self._walk_sessions_ahead(node)
        static = self._static_entries(node)
        if static is not None:  # (made anew at each call: nothing to keep)
            return list(static.values())
        return self._lists.get(self._listing(node), _values)

    def document_bytes(self, node: Node) -> bytes:
        """The content of an ``xnat.json`` / ``xnat.xml`` node."""
        if node.kind is not NodeKind.DOCUMENT or node.obj is None:
            raise ValueError(f"not a document: {node.path}")
        if node.document == "json":
            return object_json(self._complete(node.obj))
        return self.source.document(node.obj, "xml")

    # -- resolution -------------------------------------------------------------------------------

    def _child(self, node: Node, name: str) -> Node:
        if not node.is_dir:
            raise NotFound(f"Not a directory: {node.path}")
        entries = self._listing(node)
        child = entries.get(name)
        if child is None:
            raise NotFound(f"No such entry: {join_path([*split_path(node.path), name])}")
        if child.kind is NodeKind.OBJECT and len(entries) > self.settings.prefetch_limit:
            self._walk_ahead(node, entries, name)
        return child

    def _lookup_probe(self, parts: list[str]) -> Node:
        """A probe name: answered from memory only (static folders and memoised listings)."""
        node = self.root
        for name in parts:
            entries = self._static_entries(node)
            if entries is None:
                memo = self._memo.get(self._memo_key(node))
                entries = None if memo is None else self._entries_of(memo, node)
            child = None if entries is None else entries.get(name)
            if child is None:
                raise NotFound(f"No such entry (probe): {join_path(parts)}")
            node = child
        return node

    def _memo_key(self, node: Node) -> str:
        if node.kind is NodeKind.FOLDER:
            return _resource_path(node)
        return node.path

    @staticmethod
    def _entries_of(memo: _Listing, node: Node) -> Mapping[str, Node] | None:
        if node.kind is NodeKind.FOLDER:
            return (memo.folders or {}).get(node.folder)
        return memo.entries

    def _listing(self, node: Node) -> Mapping[str, Node]:
        static = self._static_entries(node)
        if static is not None:
            return static
        key = self._memo_key(node)
        owner = node
        if node.kind is NodeKind.FOLDER:
            owner = self.lookup(key)
        inputs = self._inputs(owner)
        memo = self._memo.get(key)
        if memo is None or len(memo.inputs) != len(inputs) or any(a is not b for a, b in zip(memo.inputs, inputs)):
            memo = self._build(owner, inputs)
            self._memo.set(key, memo)
            self._prefetch_children(owner, memo)
        entries = self._entries_of(memo, node)
        if entries is None:
            raise NotFound(f"No such folder: {node.path}")
        return entries

    # -- static folders (no request) ---------------------------------------------------------------

    def _static_entries(self, node: Node) -> Mapping[str, Node] | None:
        """Entries of the root and of object folders, which are fixed by the layout; None otherwise."""
        if node.kind is NodeKind.ROOT:
            return {name: Node(NodeKind.COLLECTION, f"/{name}", dir_stat(self.mount_time), collection=name)
                    for name in TOP_LEVEL}
        if node.kind is not NodeKind.OBJECT or node.obj is None:
            return None
        obj = node.obj
        mtime = self._mtime(obj)
        entries: dict[str, Node] = {}
        for name, document in ((JSON_DOCUMENT, "json"), (XML_DOCUMENT, "xml")):
            entries[name] = Node(NodeKind.DOCUMENT, f"{node.path}/{name}", file_stat(0, mtime), obj=obj,
                                 document=document)
        for name in OBJECT_FOLDERS[obj.kind]:
            entries[name] = Node(NodeKind.COLLECTION, f"{node.path}/{name}", dir_stat(mtime),
                                 {"user.xnat.uri": f"{obj.uri}/{name}"}, obj=obj, collection=name)
        return entries

    # -- listings from records -------------------------------------------------------------------

    def _inputs(self, node: Node) -> tuple[Any, ...]:
        """The source records a listing is derived from (each one cached call, or one request)."""
        source = self.source
        if node.kind is NodeKind.COLLECTION:
            owner = node.obj
            if node.collection == "projects":
                return (source.projects(),)
            assert owner is not None
            if node.collection in RESOURCE_FOLDERS:
                if owner.kind == SUBJECT and owner.listed_resources is not None:
                    return (owner,)  # the subject listing named its resources
                return (self._complete(owner),)
            if node.collection == "subjects":
                return (source.subjects(owner),)
            if node.collection == "experiments":
                subject = source.known_subject(owner)
                if subject is None and owner.project:
                    # a walk over a large collection of subjects lists their sessions from the project's
                    # one listing; a path looked up on its own takes the subject's document, which also
                    # describes the sessions' scans and resources (one request less below)
                    by_subject = source.experiments_in(owner.project, load=self._walking_over(node))
                    if by_subject is not None:
                        return (by_subject,)
                if subject is None:
                    subject = source.subject(owner)
                if subject.children_of(EXPERIMENT) is None:
                    return (subject, source.experiments(owner))
                return (subject,)
            return (self._complete(owner),)
        if node.kind is NodeKind.RESOURCE:
            assert node.resource is not None
            return (source.files(node.resource.scope_uri),)
        raise NotFound(f"Not a directory: {node.path}")

    def _build(self, node: Node, inputs: tuple[Any, ...]) -> _Listing:
        if node.kind is NodeKind.RESOURCE:
            return self._build_resource(node, inputs)
        if node.collection in RESOURCE_FOLDERS:
            owner = inputs[0]
            shown = RESOURCE_FOLDERS[node.collection]
            listed = owner.resources if owner.resources is not None else owner.listed_resources
            resources = [r for r in listed or () if shown(r)]
            names = unique_names([(r.label or r.id, r.id) for r in resources])
            mtime = self._mtime(owner)
            entries = {name: Node(NodeKind.RESOURCE, f"{node.path}/{name}", dir_stat(mtime), resource_xattrs(r),
                                  obj=owner, resource=r) for name, r in zip(names, resources)}
            return _Listing(inputs, entries)
        kind = COLLECTION_KINDS[node.collection]
        objects = self._collection_objects(node, kind, inputs)
        by_id = kind in NAMED_BY_ID
        names = unique_names([((o.id if by_id else o.label) or o.id, o.id) for o in objects])
        entries = {name: Node(NodeKind.OBJECT, f"{node.path}/{name}", dir_stat(self._mtime(o)),
                              object_xattrs(o), obj=o) for name, o in zip(names, objects)}
        return _Listing(inputs, entries)

    @staticmethod
    def _collection_objects(node: Node, kind: str, inputs: tuple[Any, ...]) -> Sequence[XObject]:
        if node.collection in ("projects", "subjects"):
            return inputs[0]
        if node.collection == "experiments":
            if isinstance(inputs[0], Mapping):  # the project's sessions by subject
                return inputs[0].get(node.obj.id, ()) if node.obj is not None else ()
            nested = inputs[0].children_of(EXPERIMENT)
            return nested if nested is not None else inputs[1]
        return inputs[0].children_of(kind) or ()

    def _build_resource(self, node: Node, inputs: tuple[Any, ...]) -> _Listing:
        assert node.resource is not None
        folders = resource_tree(node, [f for f in inputs[0] if f.resource_id == node.resource.id])
        return _Listing(inputs, folders[""], folders)

    # -- documents and records ----------------------------------------------------------------------

    def _complete(self, obj: XObject) -> XObject:
        """The object's record with fields, resources and children (a request if not cached)."""
        if obj.kind == PROJECT:
            return self.source.project(obj)
        if obj.kind == SUBJECT:
            return self.source.subject(obj)
        if obj.is_complete:
            return obj
        if obj.kind == EXPERIMENT:
            return self.source.experiment(obj)
        raise NotFound(f"No document for {obj.kind} {obj.id}")

    def _sized_document(self, node: Node) -> Node:
        if node.document == "xml":
            self._prefetch_sibling_documents(node)
        data = self.document_bytes(node)
        return Node(NodeKind.DOCUMENT, node.path, file_stat(len(data), node.stat.mtime), node.xattrs,
                    obj=node.obj, document=node.document)

    def _mtime(self, obj: XObject) -> float:
        return obj.mtime if obj.mtime is not None else self.mount_time

    # -- prefetch ---------------------------------------------------------------------------------

    def _prefetch_children(self, node: Node, memo: _Listing) -> None:
        """Warm what the objects of a fresh collection listing will need next (bounded, best effort)."""
        if node.kind is not NodeKind.COLLECTION or node.collection in UNGUESSED or self._closed:
            return
        objects = [n.obj for n in memo.entries.values() if n.obj is not None]
        if not objects or len(objects) > self.settings.prefetch_limit or self.settings.prefetch_workers <= 0:
            return
        if self._in_large_collection(node):
            return  # (a walk over it is warmed ahead instead: _walk_sessions_ahead)
        for obj in objects:
            self._submit(self._warm, obj)

    def _walk_ahead(self, node: Node, entries: Mapping[str, Node], name: str) -> None:
        """A program visits the objects of a large collection in listing order (``find``, ``du``,
        ``rsync`` go in readdir order, which is this order): warm the next :attr:`TreeSettings.walk_ahead`
        objects, so their documents arrive in parallel instead of one round trip at a time. A visit out
        of order (``cd`` into one subject) warms nothing; a walk never warms an object twice."""
        if self.settings.walk_ahead <= 0 or self.settings.prefetch_workers <= 0 or self._closed:
            return
        walk = self._walks.get(node.path)
        if walk is None or walk.entries is not entries:
            walk = _Walk(entries, {n: i for i, n in enumerate(entries)})
            self._walks.set(node.path, walk)
        with walk.lock:
            index = walk.positions[name]
            sequential = walk.last is not None and 0 < index - walk.last <= 2
            if index != walk.last:
                walk.last = index
            if not sequential:
                return
            start, end = max(index + 1, walk.warmed), min(len(walk.order), index + 1 + self.settings.walk_ahead)
            walk.warmed = max(walk.warmed, end)
        for ahead in walk.order[start:end]:
            if ahead.obj is not None:
                self._submit(self._warm_ahead, ahead.obj, priority=URGENT)

    def _in_large_collection(self, node: Node) -> bool:
        """Whether the object owning the collection ``node`` is one of a collection too large to warm
        (``…/subjects/<S>/experiments`` of a project of 1,000 subjects): guessing what each of its
        collections' children needs would cost a request per session of the project for a walk that
        may never go below them (``find -maxdepth 3``)."""
        memo = self._memo.get(_owner_collection(node))
        return memo is not None and len(memo.entries) > self.settings.prefetch_limit

    def _walk_sessions_ahead(self, session: Node) -> None:
        """A walk over a large collection of subjects goes below them (``find`` without ``-maxdepth``,
        ``rsync``): once it lists a session, warm the sessions (document and file listing) of the
        :attr:`TreeSettings.walk_ahead` subjects ahead of it, from the project's session listing."""
        subject_path = session.path.rsplit("/", 2)[0]
        collection, _, name = subject_path.rpartition("/")
        walk = self._walks.get(collection)
        if walk is None or self.settings.walk_ahead <= 0 or self.settings.prefetch_workers <= 0 or self._closed:
            return
        with walk.lock:
            index = walk.positions.get(name)
            if index is None or walk.last != index:
                return  # not where the walk is
            start = max(index + 1, walk.sessions_warmed)
            end = min(len(walk.order), index + 1 + self.settings.walk_ahead)
            walk.sessions_warmed = max(walk.sessions_warmed, end)
        subjects = [subject.obj for subject in walk.order[start:end] if subject.obj is not None]
        self._submit(self._warm_sessions_of, subjects, priority=URGENT)

    def _warm_sessions_of(self, subjects: list[XObject]) -> None:
        """Queue the warming of each session of ``subjects`` (on the pool: the session listing may need
        its request)."""
        for subject in subjects:
            by_subject = self.source.experiments_in(subject.project) if subject.project else None
            for session in (by_subject or {}).get(subject.id, ()):
                self._submit(self._warm, session, priority=URGENT)

    def _prefetch_sibling_documents(self, node: Node) -> None:
        """Someone sizes an ``xnat.xml`` (``ls -l``, ``find -ls``): fetch those of its object's siblings
        in parallel, once per collection listing. A plain ``ls`` or ``find`` never pays for them."""
        collection = node.path.rsplit("/", 2)[0]
        memo = self._memo.get(collection)
        if memo is None or not self.settings.prefetch_documents or self.settings.prefetch_workers <= 0:
            return
        if len(memo.entries) > self.settings.prefetch_limit or self._documents_prefetched.get(collection) is memo:
            return
        self._documents_prefetched.set(collection, memo)
        for sibling in memo.entries.values():
            if sibling.obj is not None and sibling.obj is not node.obj:
                self._submit(self.source.document, sibling.obj, "xml")

    def _walking_over(self, collection: Node) -> bool:
        """Whether a program walks the large collection that holds the owner of ``collection`` (in
        listing order, :meth:`_walk_ahead`)."""
        walk = self._walks.get(_owner_collection(collection))
        return walk is not None and walk.warmed > 0

    def _warm_ahead(self, obj: XObject) -> None:
        """What a walk needs of an object ahead of it: of a subject whose listing named its resources,
        only the project's session listing (one request for the whole walk); else :meth:`_warm`."""
        if obj.kind == SUBJECT and obj.listed_resources is not None and obj.project:
            if self.source.experiments_in(obj.project) is not None:
                return
        self._warm(obj)

    def _warm(self, obj: XObject) -> None:
        source = self.source
        if obj.kind == PROJECT:
            source.project(obj)
            source.subjects(obj)
        elif obj.kind == SUBJECT:
            subject = source.subject(obj)
            if subject.children_of(EXPERIMENT) is None:
                source.experiments(obj)
        elif obj.kind == EXPERIMENT:
            complete = self._complete(obj)
            source.files(complete.scope_uri or complete.uri)

    def _submit(self, fn: Callable[..., Any], *args: Any, priority: int = GUESS) -> None:
        """Queue a prefetch: ``URGENT`` for what a walk needs next, ``GUESS`` for what a listing's
        children might need (xnatfs.vfs.workpool runs the urgent first)."""
        if self._closed or self.settings.prefetch_workers <= 0 or not self._queued.acquire(blocking=False):
            return
        if not self._pool.submit(priority, self._run_prefetch, fn, args):
            self._queued.release()

    def _run_prefetch(self, fn: Callable[..., Any], args: tuple[Any, ...]) -> None:
        try:
            _quietly(fn, *args)
        finally:
            self._queued.release()


class _Walk:
    """Where a program is in a large collection's listing, and how far ahead it was warmed."""

    def __init__(self, entries: Mapping[str, Node], positions: dict[str, int]) -> None:
        self.entries = entries
        self.positions = positions
        self.order = list(entries.values())
        self.last: int | None = None
        self.warmed = 0
        #: for a collection of subjects: how far ahead their sessions were warmed
        self.sessions_warmed = 0
        self.lock = threading.Lock()


def _quietly(fn: Callable[..., Any], *args: Any) -> None:
    """Run a prefetch; a failure is the foreground request's to report, so it is only debug-logged."""
    try:
        fn(*args)
    except XNATError as exc:
        log.debug("prefetch %s failed: %s", getattr(fn, "__name__", fn), exc)


def _owner_collection(collection: Node) -> str:
    """The path of the collection that holds the owner of ``collection`` (``…/subjects`` for
    ``…/subjects/<S>/experiments``)."""
    return collection.path.rsplit("/", 2)[0]


def _values(entries: Mapping[str, Node]) -> list[Node]:
    return list(entries.values())


def _resource_path(node: Node) -> str:
    """The path of the resource a FOLDER node lies in."""
    return node.path[: len(node.path) - len(node.folder) - 1]


__all__ = ["VirtualTree", "TreeSettings", "TOP_LEVEL", "COLLECTION_KINDS", "OBJECT_FOLDERS"]
