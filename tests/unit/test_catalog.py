"""The model's batched loaders (Catalog) over a fake session: caching through the connection's one
get-or-load, and the race that used to leave a stale file listing cached for a whole TTL."""

from __future__ import annotations

import threading
from typing import Any

import pytest

from xnatfs.model.base import ModelContext
from xnatfs.model.catalog import Catalog
from xnatfs.model.records import EXPERIMENT, XObject
from xnatfs.settings import Settings

pytestmark = pytest.mark.unit

SESSION = "/data/experiments/E1"


class FakeSession:
    """Answers a session's file listing; the first answer waits at a gate (a slow request)."""

    settings = Settings()

    def __init__(self) -> None:
        self.calls = 0
        self.version = 1
        self.gate = threading.Event()
        self.entered = threading.Event()

    def get_json(self, path: str, params: Any = None) -> dict[str, Any]:
        self.calls += 1
        version = self.version
        if self.calls == 1:
            self.entered.set()
            assert self.gate.wait(5)
        row = {"URI": f"{SESSION}/resources/R1/files/v{version}.dcm", "Name": f"v{version}.dcm", "Size": "1",
               "cat_ID": "R1", "digest": "ab"}
        return {"ResultSet": {"Result": [row], "totalRecords": "1"}}


def test_forget_files_during_a_listing_load_does_not_leave_the_old_listing_cached() -> None:
    session = FakeSession()
    catalog = Catalog(ModelContext(session))  # type: ignore[arg-type]
    first: list[Any] = []
    loader = threading.Thread(target=lambda: first.append(catalog.files(SESSION)))
    loader.start()
    assert session.entered.wait(5)
    session.version = 2  # the mount uploads a file ...
    catalog.forget_files(SESSION)  # ... and forgets the listing while the old one is still arriving
    session.gate.set()
    loader.join(5)
    assert [f.relpath for f in first[0]] == ["v1.dcm"]
    assert [f.relpath for f in catalog.files(SESSION)] == ["v2.dcm"]
    assert session.calls == 2


def test_records_are_cached_under_their_server_path_so_library_writes_invalidate_them() -> None:
    session = FakeSession()
    session.gate.set()
    ctx = ModelContext(session)  # type: ignore[arg-type]
    catalog = Catalog(ctx)
    listing = catalog.files(SESSION)
    assert catalog.files(SESSION) is listing and session.calls == 1
    ctx.invalidate(SESSION)  # what a write through the object model does
    assert catalog.files(SESSION) is not listing and session.calls == 2


def test_a_record_names_its_generated_model_object_without_a_request() -> None:
    session = FakeSession()
    catalog = Catalog(ModelContext(session))  # type: ignore[arg-type]
    record = XObject(EXPERIMENT, "E1", "MR1", "xnat:mrSessionData", SESSION, fields={"label": "MR1"})
    obj = catalog.object_of(record)
    assert obj.uri == SESSION and obj.id == "E1" and obj.xsi_type == "xnat:mrSessionData"
    assert obj.get("label") == "MR1"
    assert session.calls == 0


class ListingSession:
    """Answers a project's subject listing, joined with the subjects' resources as XNAT does (one row per
    resource, column names the lower-cased XML path), or refusing or ignoring the joined columns."""

    settings = Settings()

    def __init__(self, joins: str = "join") -> None:
        self.joins = joins
        self.requests: list[tuple[str, Any]] = []

    def get_json(self, path: str, params: Any = None) -> dict[str, Any]:
        from xnatfs.errors import ServerError

        self.requests.append((path, params))
        asked = bool(params and "resources/resource" in params.get("columns", ""))
        if asked and self.joins == "refuse":
            raise ServerError("Internal Server Error", status=500)
        base = [{"ID": "S1", "label": "one", "project": "P", "URI": "/data/subjects/S1"},
                {"ID": "S2", "label": "two", "project": "P", "URI": "/data/subjects/S2"}]
        if not asked or self.joins == "ignore":
            return {"ResultSet": {"Result": base}}
        col = "xnat:subjectdata/resources/resource/"
        rows = [dict(base[0], **{col + "xnat_abstractresource_id": "7", col + "label": "NOTES", col + "file_count": "2"}),
                dict(base[0], **{col + "xnat_abstractresource_id": "8", col + "label": "EXTRA", col + "file_count": ""}),
                dict(base[1], **{col + "xnat_abstractresource_id": "", col + "label": ""})]
        return {"ResultSet": {"Result": rows}}


PROJECT = XObject("project", "P", "P", "xnat:projectData", "/data/projects/P")


def test_a_joined_subject_listing_gives_each_subject_its_resources() -> None:
    catalog = Catalog(ModelContext(ListingSession()))  # type: ignore[arg-type]
    one, two = catalog.subjects(PROJECT)
    assert (one.id, one.label, two.id) == ("S1", "one", "S2")
    assert [(r.id, r.label, r.file_count, r.uri, r.scope_uri) for r in one.listed_resources or ()] == [
        ("7", "NOTES", 2, "/data/subjects/S1/resources/7", "/data/subjects/S1"),
        ("8", "EXTRA", None, "/data/subjects/S1/resources/8", "/data/subjects/S1")]
    assert two.listed_resources == ()
    assert not any("resources/resource" in key.lower() for key in one.fields)
    assert not one.is_complete  # (a listing row: its document was not read)


@pytest.mark.parametrize("joins", ["ignore", "refuse"])
def test_a_server_without_joined_columns_leaves_the_resources_to_each_document(joins: str) -> None:
    session = ListingSession(joins)
    catalog = Catalog(ModelContext(session))  # type: ignore[arg-type]
    subjects = catalog.subjects(PROJECT)
    assert [s.id for s in subjects] == ["S1", "S2"] and all(s.listed_resources is None for s in subjects)
    catalog.clear()
    catalog.subjects(PROJECT)
    asked = ["resources/resource" in ((params or {}).get("columns") or "") for _, params in session.requests]
    # a refusal is remembered: the listing is not sent with the columns again
    assert asked == ([True, True] if joins == "ignore" else [True, False, False])
