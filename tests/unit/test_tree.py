"""The mount's path tree over a fake metadata source: layout, names, costs, probes, prefetch."""

from __future__ import annotations

import json
import threading
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import replace

import pytest

from xnatfs.errors import NotFound
from xnatfs.vfs.nodes import XATTR_ID, XATTR_MD5, XATTR_URI, XATTR_XSITYPE, NodeKind
from xnatfs.model.records import FileInfo, ResourceInfo, XObject
from xnatfs.errors import NotADirectory
from xnatfs.vfs.tree import TreeSettings, VirtualTree

pytestmark = pytest.mark.unit

E1 = "/data/experiments/E1"


def resource(rid: str, label: str, owner_uri: str, scope: str) -> ResourceInfo:
    return ResourceInfo(rid, label, f"{owner_uri}/resources/{rid}", scope)


def files_of(rid: str, owner_uri: str, *paths: str, size: int = 100) -> list[FileInfo]:
    return [FileInfo(p, size + i, f"{owner_uri}/resources/{rid}/files/{p}", rid, md5=f"md5-{rid}-{i}")
            for i, p in enumerate(paths)]


def build_archive() -> dict:
    scans = (
        XObject("scan", "1", "1", "xnat:mrScanData", f"{E1}/scans/1", 1000.0, {"type": "T1"},
                resources=(resource("21", "DICOM", f"{E1}/scans/1", E1),), scope_uri=E1),
        XObject("scan", "2", "2", "xnat:mrScanData", f"{E1}/scans/2", 1000.0, {"type": "T2"},
                resources=(resource("22", "DICOM", f"{E1}/scans/2", E1),), scope_uri=E1),
    )
    assessor = XObject("assessor", "A1", "MR_1_QC", "xnat:qcAssessmentData", "/data/experiments/A1", 1000.0,
                       resources=(resource("31", "QC", "/data/experiments/A1", E1),), scope_uri=E1)
    recon = XObject("reconstruction", "R1", "R1", "xnat:reconstructedImageData", f"{E1}/reconstructions/R1",
                    1000.0, resources=(resource("41", "RECON", f"{E1}/reconstructions/R1", E1),), scope_uri=E1)
    session = XObject("experiment", "E1", "MR_1", "xnat:mrSessionData", E1, 1000.0,
                      {"date": "2024-01-15", "modality": "MR"}, {"sharing/share": ({"project": "OTHER"},)},
                      children={"scan": scans, "assessor": (assessor,), "reconstruction": (recon,)},
                      resources=(resource("51", "notes", E1, E1),), scope_uri=E1)
    subject_row = XObject("subject", "S1", "DEMO_001", "xnat:subjectData", "/data/subjects/S1", 500.0)
    subjects = [
        subject_row,
        XObject("subject", "S2", "a/b", "xnat:subjectData", "/data/subjects/S2", 500.0),
        XObject("subject", "S3", "dup", "xnat:subjectData", "/data/subjects/S3", 500.0),
        XObject("subject", "S4", "dup", "xnat:subjectData", "/data/subjects/S4", 500.0),
    ]
    subject_doc = replace(subject_row, fields={"gender": "male"}, children={"experiment": (session,)},
                          resources=(resource("61", "consent", "/data/subjects/S1", "/data/subjects/S1"),))
    project_row = XObject("project", "DEMO", "DEMO", "xnat:projectData", "/data/projects/DEMO", None)
    project_doc = replace(project_row, fields={"name": "Demo"},
                          resources=(resource("10", "protocols", "/data/projects/DEMO", "/data/projects/DEMO"),))
    files = {
        E1: files_of("21", f"{E1}/scans/1", "1.dcm", "2.dcm") + files_of("22", f"{E1}/scans/2", "sub/dir/x.dcm")
        + files_of("31", "/data/experiments/A1", "qc.txt") + files_of("41", f"{E1}/reconstructions/R1", "r.json")
        + files_of("51", E1, "notes.txt"),
        "/data/projects/DEMO": files_of("10", "/data/projects/DEMO", "protocol.txt", "docs/README.txt"),
        "/data/subjects/S1": files_of("61", "/data/subjects/S1", "consent.txt"),
    }
    return {"projects": [project_row], "project": project_doc, "subjects": subjects,
            "subject": {"S1": subject_doc}, "files": files}


class FakeSource:
    """The archive above in memory, like a caching source whose cache never expires.

    ``calls`` counts every call; ``loads`` counts distinct (method, argument) pairs, i.e. the
    requests a real source would send. ``delay`` slows every call (for prefetch tests).
    """

    def __init__(self) -> None:
        self.data = build_archive()
        self.calls: Counter[str] = Counter()
        self.loads: Counter[str] = Counter()
        self.seen: set[tuple[str, str]] = set()
        self.delay = 0.0
        self.lock = threading.Lock()
        #: what a caching source's changes() counts: bumped by a test that changes ``data``
        self.forgotten = 0

    def _count(self, name: str, key: str = "") -> None:
        with self.lock:
            self.calls[name] += 1
            if (name, key) not in self.seen:
                self.seen.add((name, key))
                self.loads[name] += 1
        if self.delay:
            time.sleep(self.delay)

    def projects(self) -> Sequence[XObject]:
        self._count("projects")
        return self.data["projects"]

    def project(self, project: XObject) -> XObject:
        self._count("project", project.id)
        return self.data["project"]

    def subjects(self, project: XObject) -> Sequence[XObject]:
        self._count("subjects", project.id)
        return self.data["subjects"]

    def subject(self, subject: XObject) -> XObject:
        self._count("subject", subject.id)
        doc = self.data["subject"].get(subject.id)
        if doc is None:
            return replace(subject, children={"experiment": ()}, resources=())
        return doc

    def experiments(self, subject: XObject) -> Sequence[XObject]:
        self._count("experiments", subject.id)
        return self.data.get("experiment_rows", ())

    def known_subject(self, subject: XObject) -> XObject | None:
        return None

    def experiments_in(self, project: str, *, load: bool = True) -> None:
        return None  # (a source without the project-wide listing: subjects' documents are read)

    def experiment(self, experiment: XObject) -> XObject:
        self._count("experiment", experiment.id)
        return self.data["experiment_doc"]

    def files(self, scope_uri: str) -> Sequence[FileInfo]:
        self._count("files", scope_uri)
        return self.data["files"].get(scope_uri, [])

    def document(self, obj: XObject, fmt: str) -> bytes:
        self._count("document", obj.uri + fmt)
        return f"<xml id='{obj.id}'/>".encode()

    def changes(self) -> int:
        return self.forgotten


@pytest.fixture
def source() -> FakeSource:
    return FakeSource()


@pytest.fixture
def tree(source: FakeSource) -> VirtualTree:
    tree = VirtualTree(source, TreeSettings(prefetch_workers=0), mount_time=42.0)
    yield tree
    tree.close()


SESSION = "/projects/DEMO/subjects/DEMO_001/experiments/MR_1"


def names(tree: VirtualTree, path: str) -> list[str]:
    return [node.name for node in tree.listdir(path)]


def test_layout_follows_the_design(tree: VirtualTree) -> None:
    assert names(tree, "/") == ["projects"]
    assert names(tree, "/projects") == ["DEMO"]
    assert names(tree, "/projects/DEMO") == ["xnat.json", "xnat.xml", "resources", "subjects"]
    assert names(tree, "/projects/DEMO/resources") == ["protocols"]
    assert names(tree, "/projects/DEMO/resources/protocols") == ["docs", "protocol.txt"]
    assert names(tree, "/projects/DEMO/resources/protocols/docs") == ["README.txt"]
    assert names(tree, "/projects/DEMO/subjects/DEMO_001") == ["xnat.json", "xnat.xml", "resources", "experiments"]
    assert names(tree, SESSION) == ["xnat.json", "xnat.xml", "resources", "scans", "assessors", "reconstructions"]
    assert names(tree, f"{SESSION}/scans") == ["1", "2"]
    assert names(tree, f"{SESSION}/scans/1/resources/DICOM") == ["1.dcm", "2.dcm"]
    assert names(tree, f"{SESSION}/scans/2/resources/DICOM/sub/dir") == ["x.dcm"]
    assert names(tree, f"{SESSION}/assessors") == ["MR_1_QC"]
    assert names(tree, f"{SESSION}/assessors/MR_1_QC/resources/QC") == ["qc.txt"]
    assert names(tree, f"{SESSION}/reconstructions/R1/resources/RECON") == ["r.json"]
    assert names(tree, f"{SESSION}/resources/notes") == ["notes.txt"]


def test_files_have_true_sizes_modes_and_xattrs(tree: VirtualTree) -> None:
    node = tree.lookup(f"{SESSION}/scans/1/resources/DICOM/2.dcm")
    assert node.kind is NodeKind.FILE
    assert node.stat.size == 101 and node.stat.mode == 0o100444 and node.stat.mtime == 1000.0
    assert node.xattrs[XATTR_MD5] == "md5-21-1"
    assert node.xattrs[XATTR_URI] == f"{E1}/scans/1/resources/21/files/2.dcm"
    scan = tree.lookup(f"{SESSION}/scans/1")
    assert scan.stat.mode == 0o40555
    assert scan.xattrs == {XATTR_ID: "1", XATTR_XSITYPE: "xnat:mrScanData", XATTR_URI: f"{E1}/scans/1"}
    res = tree.lookup(f"{SESSION}/scans/1/resources/DICOM")
    assert res.xattrs[XATTR_ID] == "21" and res.xattrs[XATTR_URI] == f"{E1}/scans/1/resources/21"


def test_listing_costs_one_request_and_stat_of_entries_none(tree: VirtualTree, source: FakeSource) -> None:
    tree.listdir(f"{SESSION}/scans/1/resources/DICOM")
    assert source.loads == {"projects": 1, "subjects": 1, "subject": 1, "files": 1}
    for path in (f"{SESSION}/scans/1/resources/DICOM", "/projects", "/projects/DEMO/subjects/DEMO_001/experiments",
                 f"{SESSION}/scans", f"{SESSION}/scans/2", f"{SESSION}/scans/2/resources/DICOM/sub"):
        for node in tree.listdir(path):
            if node.kind is not NodeKind.DOCUMENT:
                tree.lookup(node.path)
    assert source.loads == {"projects": 1, "subjects": 1, "subject": 1, "files": 1}


def test_one_subject_document_describes_sessions_scans_and_resources(tree: VirtualTree, source: FakeSource) -> None:
    for path in (f"{SESSION}/scans", f"{SESSION}/assessors", f"{SESSION}/reconstructions", f"{SESSION}/resources",
                 f"{SESSION}/scans/1/resources", f"{SESSION}/scans/1/resources/DICOM",
                 f"{SESSION}/scans/2/resources/DICOM/sub", f"{SESSION}/assessors/MR_1_QC/resources/QC"):
        tree.listdir(path)
    assert source.loads == {"projects": 1, "subjects": 1, "subject": 1, "files": 1}


def test_labels_that_are_not_names_are_escaped_and_collisions_get_ids(tree: VirtualTree) -> None:
    assert names(tree, "/projects/DEMO/subjects") == ["DEMO_001", "a%2Fb", "dup~S3", "dup~S4"]
    assert tree.lookup("/projects/DEMO/subjects/a%2Fb").xattrs[XATTR_ID] == "S2"
    assert tree.lookup("/projects/DEMO/subjects/dup~S4").obj.id == "S4"


def test_missing_paths_raise_not_found(tree: VirtualTree) -> None:
    for path in ("/nope", "/projects/NOPE", f"{SESSION}/scans/9", f"{SESSION}/scans/1/resources/DICOM/9.dcm",
                 f"{SESSION}/scans/1/resources/DICOM/1.dcm/below"):
        with pytest.raises(NotFound):
            tree.lookup(path)
    with pytest.raises(NotADirectory):
        tree.listdir(f"{SESSION}/scans/1/resources/DICOM/1.dcm")


def test_probe_names_cost_no_call(tree: VirtualTree, source: FakeSource) -> None:
    for path in ("/.Trash-0", "/projects/.DS_Store", "/projects/DEMO/subjects/.hidden",
                 f"{SESSION}/scans/1/resources/DICOM/._1.dcm", "/projects/DEMO/desktop.ini", "/.git"):
        with pytest.raises(NotFound):
            tree.lookup(path)
    assert sum(source.calls.values()) == 0


def test_probe_names_are_found_in_a_listing_already_in_memory(tree: VirtualTree, source: FakeSource) -> None:
    source.data["files"][E1].append(FileInfo(".hidden", 7, f"{E1}/scans/1/resources/21/files/.hidden", "21"))
    path = f"{SESSION}/scans/1/resources/DICOM"
    assert ".hidden" in names(tree, path)
    calls = sum(source.calls.values())
    assert tree.lookup(f"{path}/.hidden").stat.size == 7
    assert sum(source.calls.values()) == calls


def test_documents_have_true_sizes_and_content(tree: VirtualTree, source: FakeSource) -> None:
    node = tree.lookup(f"{SESSION}/xnat.json")
    data = tree.document_bytes(node)
    assert node.stat.size == len(data) and node.stat.mode == 0o100444
    doc = json.loads(data)
    assert doc["ID"] == "E1" and doc["xsiType"] == "xnat:mrSessionData" and doc["fields"]["modality"] == "MR"
    assert doc["children"] == {"sharing/share": [{"project": "OTHER"}]}
    xml = tree.lookup(f"{SESSION}/scans/2/xnat.xml")
    assert xml.stat.size == len(b"<xml id='2'/>")
    assert tree.document_bytes(xml) == b"<xml id='2'/>"
    project = json.loads(tree.document_bytes(tree.lookup("/projects/DEMO/xnat.json")))
    assert project["fields"] == {"name": "Demo"}


def test_reloaded_record_rebuilds_the_listing(tree: VirtualTree, source: FakeSource) -> None:
    assert "S5" not in names(tree, "/projects/DEMO/subjects")
    source.data["subjects"] = [*source.data["subjects"],
                               XObject("subject", "S5", "NEW", "xnat:subjectData", "/data/subjects/S5")]
    assert "NEW" in names(tree, "/projects/DEMO/subjects")


def test_an_unchanged_listing_is_the_same_list_and_a_changed_one_a_new_list(tree: VirtualTree,
                                                                           source: FakeSource) -> None:
    """The layers above recognise an unchanged listing by identity (xnatfs.cache.derived)."""
    first = tree.listdir("/projects/DEMO/subjects")
    assert tree.listdir("/projects/DEMO/subjects") is first
    source.data["subjects"] = [*source.data["subjects"],
                               XObject("subject", "S5", "NEW", "xnat:subjectData", "/data/subjects/S5")]
    changed = tree.listdir("/projects/DEMO/subjects")
    assert changed is not first and "NEW" in [n.name for n in changed] and "NEW" not in [n.name for n in first]


def test_subject_document_without_nested_experiments_falls_back_to_listing(tree: VirtualTree,
                                                                           source: FakeSource) -> None:
    doc = source.data["subject"]["S1"]
    session = doc.children["experiment"][0]
    source.data["subject"]["S1"] = replace(doc, children=None)
    source.data["experiment_rows"] = [replace(session, children=None, resources=None)]
    source.data["experiment_doc"] = session
    assert names(tree, f"{SESSION}/scans") == ["1", "2"]
    assert source.calls["experiments"] >= 1 and source.calls["experiment"] >= 1


def test_listing_a_collection_prefetches_children_in_parallel(source: FakeSource) -> None:
    source.delay = 0.05
    tree = VirtualTree(source, TreeSettings(prefetch_workers=4), mount_time=0.0)
    try:
        tree.listdir("/projects/DEMO/subjects")
        deadline = time.monotonic() + 5
        while source.calls["subject"] < 4 and time.monotonic() < deadline:
            time.sleep(0.01)
        assert source.calls["subject"] == 4
        assert source.calls["document"] == 0  # documents only once someone sizes one
    finally:
        tree.close()


def test_sizing_one_xml_document_prefetches_its_siblings(source: FakeSource) -> None:
    tree = VirtualTree(source, TreeSettings(prefetch_workers=4), mount_time=0.0)
    try:
        tree.listdir(f"{SESSION}/scans")
        tree.listdir(f"{SESSION}/scans/1")
        assert source.loads["document"] == 0
        assert tree.lookup(f"{SESSION}/scans/1/xnat.xml").stat.size == len(b"<xml id='1'/>")
        deadline = time.monotonic() + 5
        while source.loads["document"] < 2 and time.monotonic() < deadline:
            time.sleep(0.01)
        assert {key for name, key in source.seen if name == "document"} == {f"{E1}/scans/1xml", f"{E1}/scans/2xml"}
    finally:
        tree.close()


def test_big_collections_are_not_prefetched(source: FakeSource) -> None:
    tree = VirtualTree(source, TreeSettings(prefetch_workers=4, prefetch_limit=3), mount_time=0.0)
    try:
        tree.listdir("/projects/DEMO/subjects")  # 4 subjects > 3: nothing prefetched
        time.sleep(0.1)
        assert source.calls["subject"] == 0
        assert not [key for name, key in source.seen if name == "document" and "/subjects/" in key]
    finally:
        tree.close()


def test_a_walk_in_listing_order_through_a_big_collection_warms_the_objects_ahead(source: FakeSource) -> None:
    """``find`` over 1,000 subjects: once a program visits a big collection's objects in order, the next
    ones are fetched in parallel ahead of it (issue 13); a visit out of order fetches nothing ahead."""
    tree = VirtualTree(source, TreeSettings(prefetch_workers=4, prefetch_limit=3, walk_ahead=2), mount_time=0.0)
    try:
        subjects = names(tree, "/projects/DEMO/subjects")  # 4 subjects > 3: none prefetched on listing
        tree.listdir(f"/projects/DEMO/subjects/{subjects[3]}/resources")  # a visit (cd) out of order
        tree.listdir(f"/projects/DEMO/subjects/{subjects[0]}/resources")
        time.sleep(0.1)
        assert source.loads["subject"] == 2  # the two visited, nothing ahead
        tree.lookup(f"/projects/DEMO/subjects/{subjects[1]}")  # the next one in order: a walk
        deadline = time.monotonic() + 5
        while ("subject", "S3") not in source.seen and time.monotonic() < deadline:
            time.sleep(0.01)
        assert ("subject", "S3") in source.seen  # subject 2 (S3) warmed before anyone visited it
        assert ("subject", "S2") not in source.seen  # looking one up costs nothing; warming starts after it
        assert source.loads["subject"] == 3  # and S4, visited already, was not fetched again
        tree.listdir(f"/projects/DEMO/subjects/{subjects[2]}/resources")
        assert source.loads["subject"] == 3
    finally:
        tree.close()


def test_a_resolved_path_is_reused_until_the_source_forgets_something(tree: VirtualTree, source: FakeSource) -> None:
    path = f"{SESSION}/scans/1/resources/DICOM/1.dcm"
    node = tree.lookup(path)
    before = sum(source.calls.values())
    for _ in range(5):
        assert tree.lookup(path) is node  # a program opening one file again and again
    assert sum(source.calls.values()) == before
    source.data["files"][E1] = [f for f in source.data["files"][E1] if f.relpath != "1.dcm"]
    assert tree.lookup(path) is node  # the source has not forgotten its listing: neither has the tree
    source.forgotten += 1  # a write or a refresh made the source forget
    with pytest.raises(NotFound):
        tree.lookup(path)


def test_resolved_paths_are_not_kept_when_caching_is_off(source: FakeSource) -> None:
    tree = VirtualTree(source, TreeSettings(ttl=0, prefetch_workers=0), mount_time=0.0)
    path = f"{SESSION}/scans/1/resources/DICOM/1.dcm"
    tree.lookup(path)
    source.data["files"][E1] = [f for f in source.data["files"][E1] if f.relpath != "1.dcm"]
    with pytest.raises(NotFound):
        tree.lookup(path)


class ProjectListingSource(FakeSource):
    """A project of ``count`` subjects with one session each, whose subject listing names each subject's
    resources and whose session listing covers the whole project (XNAT's joined listings)."""

    def __init__(self, count: int = 10) -> None:
        super().__init__()
        self.sessions = {}
        subjects = []
        for i in range(count):
            sid, uri = f"S{i}", f"/data/subjects/S{i}"
            subjects.append(XObject("subject", sid, f"SUBJ_{i:02d}", "xnat:subjectData", uri, 500.0, project="DEMO",
                                    listed_resources=(resource(f"9{i}", "notes", uri, uri),)))
            scan = XObject("scan", "1", "1", "xnat:mrScanData", f"/data/experiments/E{i}/scans/1", 1000.0,
                           resources=(), scope_uri=f"/data/experiments/E{i}")
            self.sessions[sid] = XObject("experiment", f"E{i}", f"SUBJ_{i:02d}_MR", "xnat:mrSessionData",
                                         f"/data/experiments/E{i}", 1000.0, project="DEMO")
            self.data.setdefault("session_docs", {})[f"E{i}"] = replace(
                self.sessions[sid], children={"scan": (scan,)}, resources=())
        self.data["subjects"] = subjects
        self.by_subject = {sid: (session,) for sid, session in self.sessions.items()}
        self.listed = False

    def experiments_in(self, project: str, *, load: bool = True) -> dict | None:
        if not load and not self.listed:
            return None
        self._count("experiments_in", project)
        self.listed = True
        return self.by_subject

    def subject(self, subject: XObject) -> XObject:
        self._count("subject", subject.id)
        return replace(subject, children={"experiment": (replace(
            self.data["session_docs"][self.sessions[subject.id].id], project="DEMO"),)}, resources=())

    def experiment(self, experiment: XObject) -> XObject:
        self._count("experiment", experiment.id)
        return self.data["session_docs"][experiment.id]


def walk(tree: VirtualTree, depth: int) -> list[str]:
    """``find /projects/DEMO/subjects -maxdepth <depth> -type d``: listing order, depth first."""
    seen = []
    def visit(path: str, level: int) -> None:
        for entry in tree.listdir(path):  # (find takes each entry's type from the listing)
            if entry.is_dir:
                seen.append(f"{path}/{entry.name}")
                if level < depth:
                    tree.lookup(f"{path}/{entry.name}")
                    visit(f"{path}/{entry.name}", level + 1)
    visit("/projects/DEMO/subjects", 1)
    return seen


def test_a_walk_over_a_large_project_lists_sessions_and_resources_from_the_project_listings() -> None:
    """Issue 13: ``find -maxdepth 3`` over a project too large to warm reads the project's one session
    listing and the resources its subject listing named, not a document per subject; no session is
    guessed ahead, since the walk may never go below them."""
    source = ProjectListingSource(10)
    tree = VirtualTree(source, TreeSettings(prefetch_workers=4, prefetch_limit=3, walk_ahead=3), mount_time=0.0)
    try:
        seen = walk(tree, 3)
        time.sleep(0.2)
        assert {p.rsplit("/", 1)[1] for p in seen if "/experiments/" in p} == {f"SUBJ_{i:02d}_MR" for i in range(10)}
        assert sum(p.endswith("/resources/notes") for p in seen) == 10
        assert source.loads["experiments_in"] == 1
        assert source.loads["subject"] <= 2  # the walk's first subjects, before it was seen to be one
        assert source.loads["experiment"] == 0 and source.loads["files"] == 0, source.loads
    finally:
        tree.close()


def test_a_walk_below_the_sessions_warms_those_of_the_subjects_ahead() -> None:
    source = ProjectListingSource(10)
    source.delay = 0.01
    tree = VirtualTree(source, TreeSettings(prefetch_workers=4, prefetch_limit=3, walk_ahead=3), mount_time=0.0)
    try:
        walk(tree, 5)
        assert source.loads["experiments_in"] == 1
        assert source.loads["subject"] + source.loads["experiment"] <= 10 + 2  # each session described once
        warmed_ahead = [key for name, key in source.seen if name == "files"]
        assert len(warmed_ahead) >= 5, source.seen  # the sessions' file listings, fetched ahead of the walk
    finally:
        tree.close()


def test_a_session_looked_up_on_its_own_comes_with_its_subjects_document() -> None:
    """A path looked up cold (``ls -l`` of a series) takes the subject's document, which also describes
    the session's scans: no project listing and no session document on the way."""
    source = ProjectListingSource(10)
    tree = VirtualTree(source, TreeSettings(prefetch_workers=0, prefetch_limit=3), mount_time=0.0)
    try:
        assert names(tree, "/projects/DEMO/subjects/SUBJ_04/experiments/SUBJ_04_MR/scans") == ["1"]
        assert source.loads["subject"] == 1 and source.loads["experiments_in"] == 0
        assert source.loads["experiment"] == 0
        assert names(tree, "/projects/DEMO/subjects/SUBJ_04/resources") == ["notes"]
        assert source.loads["subject"] == 1  # the resources came with the subject listing
    finally:
        tree.close()
