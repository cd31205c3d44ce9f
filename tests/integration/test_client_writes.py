"""Creating, changing and deleting objects; writes invalidate exactly what they change."""

from __future__ import annotations

import datetime

import pytest

from xnatfs.emulator.server import EmulatorServer
from xnatfs.errors import AmbiguousLabelError, Conflict, NotFound
from xnatfs.model.connect import Connection

pytestmark = pytest.mark.integration


@pytest.fixture
def session(fresh_xnat: Connection):  # type: ignore[no-untyped-def]
    project = fresh_xnat.projects.create("P1", name="Project one")
    subject = project.subjects.create("S1")
    return subject.experiments.create("E1", "xnat:mrSessionData", date=datetime.date(2024, 2, 3))


def test_create_the_hierarchy(fresh_xnat: Connection, session) -> None:  # type: ignore[no-untyped-def]
    project = fresh_xnat.projects["P1"]
    assert project.name == "Project one"
    subject = project.subjects["S1"]
    assert subject.id != "S1" and subject.label == "S1"
    assert session.label == "E1" and session.date == datetime.date(2024, 2, 3)
    assert type(session).__name__ == "MrSessionData"
    assert [e.label for e in project.experiments] == ["E1"]  # the project listing saw the creation
    scan = session.scans.create("1", "xnat:mrScanData", type="T1", series_description="first")
    assert scan.type == "T1" and scan.series_description == "first"
    resource = scan.resources.create("NIFTI", format="NIFTI")
    assert resource.format == "NIFTI" and len(resource.files) == 0


def test_creating_twice_is_a_conflict(fresh_xnat: Connection, session) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(Conflict):
        fresh_xnat.projects["P1"].subjects.create("S1")
    session.resources.create("R")
    with pytest.raises(Conflict):
        session.resources.create("R")


def test_a_shared_secondary_key_is_an_ambiguity_error(session) -> None:  # type: ignore[no-untyped-def]
    session.scans.create("1", type="T1")
    session.scans.create("2", type="T1")
    with pytest.raises(AmbiguousLabelError) as info:
        session.scans["T1"]
    assert "1, 2" in str(info.value) and isinstance(info.value, LookupError)
    assert session.scans["2"].id == "2"
    assert session.scans.get("T2") is None


def test_setting_a_field_sends_a_put_and_reads_back(fresh_emulator: EmulatorServer,
                                                    session) -> None:  # type: ignore[no-untyped-def]
    scan = session.scans.create("1", type="T1")
    assert session.scans["1"].series_description in (None, "")
    fresh_emulator.faults.reset_counts()
    scan.series_description = "renamed"
    scan.quality = "questionable"
    counts = fresh_emulator.faults.counts()["by_route"]
    assert counts == {"PUT /data/experiments/<experiment>/scans/<scan>": 2}
    assert scan.series_description == "renamed"
    assert session.scans.rows()[0]["series_description"] == "renamed"  # the listing was invalidated
    session.note = "a note"
    assert session.refresh().note == "a note"
    session.set_fields({"visit_id": "V1", "xnat:mrSessionData/coil": "head"})
    assert (session.visit_id, session.coil) == ("V1", "head")
    del session.note
    assert session.note in (None, "")


def test_type_checked_assignment(session) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(TypeError):
        session.date = 12


def test_deleting_removes_from_listings(fresh_xnat: Connection, session) -> None:  # type: ignore[no-untyped-def]
    scan = session.scans.create("1", type="T1")
    resource = scan.resources.create("R")
    resource.upload(_bytes_io(b"hello"), "a.txt")
    assert resource.files.keys() == ["a.txt"]
    resource.files["a.txt"].delete()
    assert resource.files.keys() == []
    resource.delete()
    assert scan.resources.keys() == []
    scan.delete()
    assert session.scans.keys() == []
    subject = session.subject
    session.delete()
    assert subject.experiments.keys() == [] and fresh_xnat.projects["P1"].experiments.keys() == []
    subject.delete(remove_files=True)
    assert fresh_xnat.projects["P1"].subjects.keys() == []
    with pytest.raises(NotFound):
        fresh_xnat.projects["P1"].subjects["S1"]


def _bytes_io(data: bytes):  # type: ignore[no-untyped-def]
    import io

    return io.BytesIO(data)


def test_cached_metadata_expires_after_the_ttl(fresh_emulator: EmulatorServer,
                                               session) -> None:  # type: ignore[no-untyped-def]
    import time

    import xnatfs
    from xnatfs.settings import CacheSettings, Settings

    session.scans.create("1", type="T1", series_description="before")
    settings = Settings(cache=CacheSettings(ttl=0.3, maxsize=100))
    with xnatfs.connect(fresh_emulator.url, "admin", "admin", settings=settings, load_schemas=False) as reader:
        scan = reader.projects["P1"].subjects["S1"].experiments["E1"].scans["1"]
        assert scan.get("series_description") == "before"
        session.scans["1"].series_description = "after"  # another client writes
        assert scan.get("series_description") == "before"  # still cached
        time.sleep(0.4)
        assert scan.get("series_description") == "after"
        assert reader.projects["P1"].subjects["S1"].experiments["E1"].scans.rows()[0]["series_description"] == "after"


def test_assessors_and_reconstructions_are_created_with_resources(session) -> None:  # type: ignore[no-untyped-def]
    assessor = session.assessors.create("E1_QC", "xnat:qcAssessmentData", note="checked")
    assert assessor.label == "E1_QC" and assessor.xsi_type == "xnat:qcAssessmentData"
    assert session.assessors["E1_QC"] is assessor
    assessor.resources.create("QC").upload(_bytes_io(b"report"), "report.txt")
    assert assessor.resources["QC"].files.keys() == ["report.txt"]
    recon = session.reconstructions.create("R1", type="bias-corrected")
    assert session.reconstructions.keys() == ["R1"] and recon.get("type") == "bias-corrected"
    assert session.scans.tabulate(["ID"]) == []
