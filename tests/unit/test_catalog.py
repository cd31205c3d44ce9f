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
