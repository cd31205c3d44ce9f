"""Sample data: the promised structure, real DICOM behind every scan, deterministic, fast and small."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pydicom
import pytest

from xnatfs.emulator.sample import populate
from xnatfs.emulator.store import Store

pytestmark = pytest.mark.emulator


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    store = Store(tmp_path / "data")
    yield store
    store.close()


def file_digests(store: Store) -> dict[str, str]:
    """Every file by a path of labels (not row IDs), with its md5."""
    rows = store.query("SELECT r.owner_kind, r.owner_ref, r.label, f.path, f.md5 FROM files f "
                       "JOIN resources r ON r.id = f.resource_id")
    names = {}
    for kind, ref, label, path, md5 in rows:
        if kind == "scan":
            scan = store.get_scan_by_pk(int(ref))
            ref = f"{store.get_experiment(scan.experiment_id).label}/{scan.id}"
        elif kind == "reconstruction":
            ref = store.query("SELECT id FROM reconstructions WHERE pk=?", (int(ref),))[0][0]
        names[f"{kind}:{ref}/{label}/{path}"] = md5
    return names


def test_populate_creates_projects_subjects_and_sessions(store: Store) -> None:
    summary = populate(store)

    assert summary["created"] is True
    assert summary["projects"] == ["DEMO", "STUDY2"]
    demo = store.get_project("DEMO")
    assert demo.name == "Demo project" and demo.description
    demo_subjects = {s.label: s for s in store.list_subjects("DEMO")}
    assert sorted(demo_subjects) == ["DEMO_001", "DEMO_002", "DEMO_003"]
    assert len(store.list_subjects("STUDY2")) == 2
    assert demo_subjects["DEMO_001"].fields["gender"] == "male"
    assert demo_subjects["DEMO_001"].fields["yob"] == "1970"
    assert demo_subjects["DEMO_001"].fields["fields"] == {"cohort": "pilot"}

    types = {e.label: e.xsi_type for e in store.list_experiments()}
    assert types["DEMO_001_MR_1"] == "xnat:mrSessionData"
    assert types["DEMO_001_CT_1"] == "xnat:ctSessionData"
    assert types["S2_002_PET_1"] == "xnat:petSessionData"
    assert sum(t == "xnat:mrSessionData" for t in types.values()) >= 3
    assert summary["sessions"] == len(types) and summary["scans"] == sum(
        len(store.list_scans(e.id)) for e in store.list_experiments())


def test_every_scan_holds_the_dicom_series_its_fields_describe(store: Store) -> None:
    populate(store)
    for session in store.list_experiments():
        scans = store.list_scans(session.id)
        assert 2 <= len(scans) <= 4, session.label
        for scan in scans:
            (resource,) = store.list_resources(scan)
            assert (resource.label, resource.format, resource.content) == ("DICOM", "DICOM", "RAW")
            files = store.list_files(resource.id)
            assert len(files) == int(scan.fields["frames"]) > 1
            assert scan.fields["quality"] == "usable" and scan.fields["type"]
            assert scan.fields["series_description"] == scan.fields["type"]
            header = pydicom.dcmread(files[0].disk_path, stop_before_pixels=True)
            assert header.SeriesInstanceUID == scan.fields["UID"]
            assert str(header.SeriesNumber) == scan.id
            assert header.StudyInstanceUID == session.fields["UID"]
            assert header.PatientID == session.label == session.fields["dcmPatientId"]
            assert str(header.PatientName) == session.fields["dcmPatientName"]
            assert header.StudyDate == session.fields["date"].replace("-", "")
            assert header.StudyTime == session.fields["time"].replace(":", "")
            assert header.Manufacturer == session.fields["scanner/manufacturer"]
            assert header.ManufacturerModelName == session.fields["scanner/model"]
            assert scan.xsi_type == {"MR": "xnat:mrScanData", "CT": "xnat:ctScanData",
                                     "PT": "xnat:petScanData"}[header.Modality]
            assert files[0].name.endswith(".dcm") and files[0].name.startswith(f"{scan.id}.{header.Modality}.")
        assert session.fields["modality"] in ("MR", "CT", "PT")
        assert session.fields["session_type"]


def test_resources_on_every_level_and_an_assessor_and_a_reconstruction(store: Store) -> None:
    populate(store)
    (protocols,) = store.list_resources(store.get_project("DEMO"))
    assert protocols.label == "protocols"
    assert [f.path for f in store.list_files(protocols.id)] == ["docs/README.txt", "protocol.txt"]
    subject = store.find_subject("DEMO", "DEMO_001")
    assert [r.label for r in store.list_resources(subject)] == ["consent"]
    session = store.find_experiment("DEMO", "DEMO_001_MR_1")
    assert [r.label for r in store.list_resources(session)] == ["notes"]

    (assessor,) = store.list_experiments(session_id=session.id)
    assert assessor.xsi_type == "xnat:qcAssessmentData" and assessor.session_id == session.id
    (qc,) = store.list_resources(assessor)
    assert {f.path for f in store.list_files(qc.id)} == {"qc_report.txt", "qc.json"}
    (recon,) = store.list_reconstructions(session.id)
    assert recon.fields["baseScanType"] == "T1w MPRAGE"
    (recon_resource,) = store.list_resources(recon)
    assert store.file_stats(recon_resource.id)[0] == 1
    for row in store.list_files(protocols.id):
        assert row.disk_path.read_bytes() and row.size == row.disk_path.stat().st_size


def test_two_stores_get_identical_files_ids_and_fields(tmp_path: Path) -> None:
    first, second = Store(tmp_path / "one"), Store(tmp_path / "two")
    try:
        assert populate(first) == populate(second)
        assert file_digests(first) == file_digests(second)
        assert len(file_digests(first)) == populate(first)["files"]
        for a, b in zip(first.list_experiments(assessors=True), second.list_experiments(assessors=True),
                        strict=True):
            assert (a.id, a.label, a.xsi_type, a.fields) == (b.id, b.label, b.xsi_type, b.fields)
            assert [(s.id, s.fields) for s in first.list_scans(a.id)] == [
                (s.id, s.fields) for s in second.list_scans(b.id)]
    finally:
        first.close()
        second.close()


def test_populate_leaves_a_non_empty_store_alone(store: Store) -> None:
    store.create_project("OTHER")
    summary = populate(store)
    assert summary["created"] is False
    assert summary["projects"] == ["OTHER"] and summary["files"] == 0


def test_populate_is_fast_and_small(store: Store) -> None:
    started = time.perf_counter()
    summary = populate(store)
    elapsed = time.perf_counter() - started
    on_disk = sum(p.stat().st_size for p in store.archive_dir.rglob("*") if p.is_file())
    assert summary["bytes"] == on_disk
    assert 1_000_000 < on_disk < 20_000_000
    # The brief asks for < 2 s; it takes about 0.6 s on a CI-class machine. 5 s leaves room for load.
    assert elapsed < 5.0, f"populate took {elapsed:.2f} s"
