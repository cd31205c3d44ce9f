"""The emulator at real sizes (issue 13): the work one request does must not grow with the size of the
resource, project or site around the object it answers for, and big zips must stream.

No timing is asserted. Each request is sent twice through the WSGI app (no sockets), once for an
object in a small container and once for the same kind of object in a large one, while the store's
SQLite connection counts what it runs: the SQL statements (``set_trace_callback``) and the virtual
machine instructions (``set_progress_handler`` every instruction). An indexed lookup runs the same
instructions however big the index (give or take one step at the end of a range); a query that
walks a resource's files, a project's subjects or its shares runs more, and so does a handler that
fetches every row to pick one in Python. Every statement run is also checked with
``EXPLAIN QUERY PLAN``: no full scan of an archive table.
"""

from __future__ import annotations

import base64
import contextlib
import io
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from werkzeug.test import EnvironBuilder

from xnatfs.emulator.handlers.files_download import CHUNK
from xnatfs.emulator.server import EmulatorServer
from xnatfs.emulator.store import Store

pytestmark = pytest.mark.emulator

SMALL_FILES, BIG_FILES = 3, 400
MANY_SUBJECTS, MANY_SHARES = 150, 60
#: Tables whose full scan would make a request's cost grow with the archive.
ARCHIVE_TABLES = ("files", "resources", "subjects", "experiments", "scans", "reconstructions", "shares",
                  "project_users")


@dataclass
class Work:
    """What the store's connection ran while it was being watched."""

    statements: list[str] = field(default_factory=list)
    steps: int = 0

    def step(self) -> int:
        self.steps += 1
        return 0  # go on


@contextlib.contextmanager
def watched(store: Store) -> Iterator[Work]:
    """Count the SQL statements and VM instructions the store runs inside the block."""
    work = Work()
    with store.lock:
        store.db.set_trace_callback(work.statements.append)
        store.db.set_progress_handler(work.step, 1)
    try:
        yield work
    finally:
        with store.lock:
            store.db.set_trace_callback(None)
            store.db.set_progress_handler(None, 1)


@dataclass
class Answer:
    status: int
    chunks: list[bytes]
    streamed: bool

    @property
    def body(self) -> bytes:
        return b"".join(self.chunks)


class Site:
    """The emulator's WSGI app over a store filled through the store's API, called without sockets."""

    def __init__(self, data_dir: Path) -> None:
        self.server = EmulatorServer(data_dir, users={"admin": "admin", "alice": "alice-pw"})
        self.store = self.server.store

    def call(self, method: str, path: str, *, user: str = "admin", data: bytes | None = None) -> Answer:
        password = self.server.app.config.users[user]
        token = base64.b64encode(f"{user}:{password}".encode()).decode()
        path, _, query = path.partition("?")
        environ = EnvironBuilder(path=path, query_string=query, method=method, data=data,
                                 headers={"Authorization": f"Basic {token}"}).get_environ()
        status: list[str] = []
        body = self.server.app(environ, lambda line, headers, exc_info=None: status.append(line))
        try:
            chunks = list(body)
        finally:
            getattr(body, "close", lambda: None)()
        return Answer(int(status[0].split()[0]), chunks, not isinstance(body, (list, tuple)))

    def work(self, method: str, path: str, **kw: object) -> tuple[Answer, Work]:
        with watched(self.store) as work:
            answer = self.call(method, path, **kw)  # type: ignore[arg-type]
        return answer, work

    def close(self) -> None:
        self.server.stop()


def series(store: Store, project_id: str, subject_label: str, files: int) -> int:
    """A project with one subject, session ``<subject>_MR1``, scan 1 and a DICOM resource of ``files``
    one-byte files plus a folder ``sub/`` of two; returns the resource ID."""
    store.create_project(project_id)
    subject = store.create_subject(project_id, subject_label)
    session = store.create_experiment(project_id, subject.id, f"{subject_label}_MR1", fields={"date": "2026-01-01"})
    scan = store.create_scan(session.id, "1", fields={"type": "T1"})
    resource = store.create_resource(scan, "DICOM", format="DICOM")
    for i in range(files):
        store.add_file(resource.id, f"{i:05d}.dcm", b"x", format="DICOM")
    for name in ("sub/a.txt", "sub/b.txt"):
        store.add_file(resource.id, name, b"folder")
    store.set_role(project_id, "alice", "member")
    return resource.id


def subjects(store: Store, project_id: str, prefix: str, count: int) -> list[str]:
    """A project of ``count`` subjects with one session each; their IDs."""
    store.create_project(project_id)
    store.set_role(project_id, "alice", "member")
    made = []
    for i in range(count):
        subject = store.create_subject(project_id, f"{prefix}{i:04d}", {"gender": "female"})
        store.create_experiment(project_id, subject.id, f"{prefix}{i:04d}_MR1", fields={"date": "2026-01-01"})
        made.append(subject.id)
    return made


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    built = Site(tmp_path_factory.mktemp("scale"))
    store = built.store
    with store.transaction():
        series(store, "SMALL", "S1", SMALL_FILES)
        series(store, "BIG", "B1", BIG_FILES)
        subjects(store, "ONE", "O", 1)
        many = subjects(store, "MANY", "M", MANY_SUBJECTS)
        for project_id, count in (("SHARE1", 1), ("SHAREMANY", MANY_SHARES)):
            store.create_project(project_id)
            for subject_id in many[:count]:
                subject = store.get_subject(subject_id)
                assert subject is not None
                store.share(subject, project_id, None)  # known there by its own label
    yield built
    built.close()


def files_path(project: str, subject: str) -> str:
    return f"/data/projects/{project}/subjects/{subject}/experiments/{subject}_MR1/scans/1/resources/DICOM/files"


def experiment_id(site: Site, project: str, label: str) -> str:
    found = site.store.find_experiment(project, label)
    assert found is not None
    return found.id


def same_work(site: Site, method: str, small: str, big: str, **kw: object) -> Work:
    """Send the request for the small container and for the big one (each once before, unwatched, so
    one-time work and first writes are out of the way); both must cost the same."""
    for path in (small, big):
        site.call(method, path, **kw)  # type: ignore[arg-type]
    answer_small, work_small = site.work(method, small, **kw)
    answer_big, work_big = site.work(method, big, **kw)
    assert answer_small.status == answer_big.status == 200, (answer_small.body[:300], answer_big.body[:300])
    assert len(work_small.statements) == len(work_big.statements), (work_small.statements, work_big.statements)
    assert similar(work_small, work_big), (work_small.steps, work_big.steps, work_small.statements)
    assert work_small.statements, "the request ran no SQL: nothing was measured"
    return work_small


def similar(one: Work, other: Work) -> bool:
    """The same statements ran about the same instructions: each search may step once more or less at
    the end of its index range, depending on what happens to follow it in the index (one walk over
    the files or subjects of a container would add hundreds)."""
    return abs(one.steps - other.steps) <= len(one.statements)


SMALL_FILES_URL, BIG_FILES_URL = files_path("SMALL", "S1"), files_path("BIG", "B1")

#: (what, method, path in the small container, path in the big one, keyword arguments of Site.call)
PAIRS = [
    ("file GET, 3 vs 400 files", "GET", f"{SMALL_FILES_URL}/00001.dcm", f"{BIG_FILES_URL}/00200.dcm", {}),
    ("file HEAD", "HEAD", f"{SMALL_FILES_URL}/00001.dcm", f"{BIG_FILES_URL}/00200.dcm", {}),
    # not an administrator: the permission checks run too
    ("file GET by a member", "GET", f"{SMALL_FILES_URL}/00001.dcm", f"{BIG_FILES_URL}/00200.dcm",
     {"user": "alice"}),
    # an upload checks that no folder of that name exists: an index range, not a walk over every path
    ("file PUT", "PUT", f"{SMALL_FILES_URL}/probe.dcm?overwrite=true", f"{BIG_FILES_URL}/probe.dcm?overwrite=true",
     {"data": b"probe"}),
    ("folder listing", "GET", f"{SMALL_FILES_URL}/sub/?format=json", f"{BIG_FILES_URL}/sub/?format=json", {}),
    ("resource listing of a scan", "GET", SMALL_FILES_URL.rsplit("/", 2)[0] + "?format=json",
     BIG_FILES_URL.rsplit("/", 2)[0] + "?format=json", {}),
    # a session document shows each scan resource's file count and size: counters, not a count
    ("session document, 3 vs 400 files", "GET", SMALL_FILES_URL.split("/scans/")[0] + "?format=xml",
     BIG_FILES_URL.split("/scans/")[0] + "?format=xml", {}),
    ("subject document (xml), 1 vs 150 subjects", "GET", "/data/projects/ONE/subjects/O0000?format=xml",
     "/data/projects/MANY/subjects/M0075?format=xml", {}),
    ("subject document (json)", "GET", "/data/projects/ONE/subjects/O0000?format=json",
     "/data/projects/MANY/subjects/M0075?format=json", {}),
    ("subject document by a member", "GET", "/data/projects/ONE/subjects/O0000?format=json",
     "/data/projects/MANY/subjects/M0075?format=json", {"user": "alice"}),
    ("experiment document", "GET", "/data/projects/ONE/subjects/O0000/experiments/O0000_MR1?format=xml",
     "/data/projects/MANY/subjects/M0075/experiments/M0075_MR1?format=xml", {}),
    # found by its label in a project it is shared into, not by walking that project's shares
    ("shared subject, 1 vs 60 shares", "GET", "/data/projects/SHARE1/subjects/M0000?format=json",
     f"/data/projects/SHAREMANY/subjects/M{MANY_SHARES - 1:04d}?format=json", {}),
]


@pytest.mark.parametrize("what, method, small, big, kw", PAIRS, ids=[p[0] for p in PAIRS])
def test_a_request_costs_the_same_in_a_small_and_a_big_container(site: Site, what: str, method: str, small: str,
                                                                  big: str, kw: dict) -> None:
    same_work(site, method, small, big, **kw)


def test_file_get_is_six_lookups(site: Site) -> None:
    """Project, subject, session, scan, resource, file: each once."""
    work = same_work(site, "GET", f"{SMALL_FILES_URL}/00001.dcm", f"{BIG_FILES_URL}/00200.dcm")
    assert len(work.statements) == 6, work.statements


def test_file_get_by_the_listed_uri_costs_the_same(site: Site) -> None:
    """The URI a session's file listing gives (accession ID and resource ID), as the mount reads it."""
    uris = [f"/data/experiments/{experiment_id(site, p, s + '_MR1')}/scans/1/resources/DICOM/files/00001.dcm"
            for p, s in (("SMALL", "S1"), ("BIG", "B1"))]
    same_work(site, "GET", *uris)


def test_missing_subject_costs_the_same_among_many_shares(site: Site) -> None:
    for project in ("SHARE1", "SHAREMANY"):
        site.call("GET", f"/data/projects/{project}/subjects/NOBODY?format=json")
    answers = [site.work("GET", f"/data/projects/{p}/subjects/NOBODY?format=json") for p in ("SHARE1", "SHAREMANY")]
    assert [a.status for a, _ in answers] == [404, 404]
    assert similar(answers[0][1], answers[1][1]), (answers[0][1].steps, answers[1][1].steps)


def test_a_small_projects_experiment_listing_reads_nothing_of_the_rest_of_the_site(tmp_path: Path) -> None:
    """Listing a project's sessions reads their subjects by ID, not every subject of the site."""
    site = Site(tmp_path / "data")
    try:
        subjects(site.store, "ONE", "O", 1)
        site.call("GET", "/data/projects/ONE/experiments?format=json")
        _, before = site.work("GET", "/data/projects/ONE/experiments?format=json")
        subjects(site.store, "OTHER", "X", 40)
        _, after = site.work("GET", "/data/projects/ONE/experiments?format=json")
        assert len(before.statements) == len(after.statements) and similar(before, after), (before.steps, after.steps)
    finally:
        site.close()


def test_no_request_scans_an_archive_table(site: Site) -> None:
    """Every statement the requests of ``PAIRS`` run searches an index: EXPLAIN QUERY PLAN shows no
    full scan of an archive table (the counts above would miss one that both sizes share)."""
    seen: list[str] = []
    for _, method, small, big, kw in PAIRS:
        for path in (small, big):
            _, work = site.work(method, path, **kw)
            seen += work.statements
    scans = []
    for sql in dict.fromkeys(seen):
        if not sql.lstrip().upper().startswith(("SELECT", "UPDATE", "DELETE", "INSERT")):
            continue
        with site.store.lock:
            plan = [row[3] for row in site.store.db.execute("EXPLAIN QUERY PLAN " + sql)]
        scans += [(sql, step) for step in plan if step.startswith("SCAN") and step.split()[1] in ARCHIVE_TABLES]
    assert not scans


def test_a_big_zip_streams_in_chunks(tmp_path: Path) -> None:
    """``files?format=zip`` is a generator of pieces no bigger than a read chunk plus an entry header,
    never the archive built in memory: three 1 MiB files arrive in a dozen or more pieces."""
    site = Site(tmp_path / "data")
    try:
        resource = series(site.store, "Z", "Z1", 0)
        payloads = {f"big{i}.bin": bytes([i]) * (1024 * 1024) for i in range(3)}
        for name, data in payloads.items():
            site.store.add_file(resource, name, data)
        answer = site.call("GET", f"{files_path('Z', 'Z1')}?format=zip")
    finally:
        site.close()
    assert answer.status == 200 and answer.streamed
    assert len(answer.chunks) >= 3 * (1024 * 1024 // CHUNK)
    assert max(len(c) for c in answer.chunks) <= CHUNK + 1024
    with zipfile.ZipFile(io.BytesIO(answer.body)) as archive:
        got = {name.rsplit("/", 1)[-1]: archive.read(name) for name in archive.namelist()}
    assert got == {**payloads, "a.txt": b"folder", "b.txt": b"folder"}
