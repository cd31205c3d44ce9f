"""Listings and objects on the sample archive: ID/label indexing, typed fields, caching, navigation."""

from __future__ import annotations

import datetime

import pytest

from xnatfs.emulator.server import EmulatorServer
from xnatfs.errors import NotFound
from xnatfs.model.connect import Connection

pytestmark = pytest.mark.integration


def test_projects_by_id_and_by_name_are_the_same_object(xnat: Connection) -> None:
    projects = xnat.projects
    assert {"DEMO", "STUDY2"} <= set(projects.keys())
    demo = projects["DEMO"]
    assert projects["Demo project"] is demo
    assert demo.id == "DEMO" and demo.name == "Demo project"
    assert demo in list(projects) and "DEMO" in projects and "NOPE" not in projects


def test_subjects_index_len_iter_get_filter(xnat: Connection) -> None:
    subjects = xnat.projects["DEMO"].subjects
    assert len(subjects) == 3
    labels = [s.label for s in subjects]
    assert labels == ["DEMO_001", "DEMO_002", "DEMO_003"]
    first = subjects["DEMO_001"]
    assert subjects[first.id] is first and subjects[0] is first
    assert subjects.keys()[0] == first.id and subjects.values()[0] is first
    assert dict(subjects.items())[first.id] is first
    assert subjects.get("NOBODY") is None
    assert [s.label for s in subjects.filter(label="DEMO_00[12]")] == ["DEMO_001", "DEMO_002"]
    with pytest.raises(NotFound) as info:
        subjects["NOBODY"]
    assert "NOBODY" in str(info.value) and isinstance(info.value, LookupError)


def test_experiment_fields_are_typed_attributes(xnat: Connection) -> None:
    session = xnat.projects["DEMO"].subjects["DEMO_001"].experiments["DEMO_001_MR_1"]
    assert type(session).__name__ == "MrSessionData"
    assert session.date == datetime.date(2024, 1, 15)
    assert session.time == datetime.time(9, 30)
    assert session.scanner_manufacturer == "GE MEDICAL SYSTEMS"
    assert session.label == "DEMO_001_MR_1" and session.xsi_type == "xnat:mrSessionData"
    assert session.subject.label == "DEMO_001"
    assert session.get("scanner/model") == "SIGNA Premier"
    assert session.data["modality"] == "MR"


def test_project_experiments_know_their_subject(xnat: Connection) -> None:
    experiments = xnat.projects["DEMO"].experiments
    assert {"DEMO_001_MR_1", "DEMO_001_CT_1", "DEMO_002_MR_1", "DEMO_003_MR_1"} <= {e.label for e in experiments}
    ct = experiments["DEMO_001_CT_1"]
    assert type(ct).__name__ == "CtSessionData"
    assert ct.subject.label == "DEMO_001"


def test_scans_by_id_and_by_type_with_typed_fields(xnat: Connection) -> None:
    scans = xnat.projects["DEMO"].subjects["DEMO_001"].experiments["DEMO_001_MR_1"].scans
    assert scans.keys() == ["1", "2", "3"]
    t1 = scans["2"]
    assert scans["T1w MPRAGE"] is t1
    assert type(t1).__name__ == "MrScanData"
    assert t1.series_description == "T1w MPRAGE" and t1.quality == "usable"
    assert t1.frames == 16 and isinstance(t1.frames, int)


def test_assessors_reconstructions_and_resources_on_every_level(xnat: Connection) -> None:
    project = xnat.projects["DEMO"]
    subject = project.subjects["DEMO_001"]
    session = subject.experiments["DEMO_001_MR_1"]
    assert "protocols" in [r.label for r in project.resources]
    assert subject.resources["consent"].label == "consent"
    assert session.resources["notes"].files.keys() == ["notes.txt"]
    (assessor,) = session.assessors
    assert assessor.label == "DEMO_001_MR_1_QC" and assessor.xsi_type == "xnat:qcAssessmentData"
    assert sorted(assessor.resources["QC"].files.keys()) == ["qc.json", "qc_report.txt"]
    (recon,) = session.reconstructions
    assert recon.resources["RECON"].files.keys() == ["recon.json"]
    dicom = session.scans["2"].resources["DICOM"]
    assert dicom.format == "DICOM" and dicom.file_count == 16


def test_files_by_nested_path_and_by_name(xnat: Connection) -> None:
    files = xnat.projects["DEMO"].resources["protocols"].files
    readme = files["docs/README.txt"]
    assert readme.name == "README.txt" and readme.path == "docs/README.txt"
    assert files["README.txt"] is readme
    assert readme.size > 0 and len(readme.digest) == 32


def test_listings_are_cached_until_refresh(xnat: Connection, emulator: EmulatorServer) -> None:
    subjects = xnat.projects["DEMO"].subjects
    subjects.keys()
    emulator.faults.reset_counts()
    for _ in range(5):
        subjects.keys()
        subjects["DEMO_002"].label
    assert emulator.faults.counts()["total"] == 0
    subjects.refresh().keys()
    assert emulator.faults.counts()["by_route"] == {"GET /data/projects/<project>/subjects": 1}


def test_object_at_resolves_server_uris(xnat: Connection) -> None:
    session = xnat.object_at("/data/archive/projects/DEMO/subjects/DEMO_001/experiments/DEMO_001_MR_1")
    assert session.label == "DEMO_001_MR_1"
    scan = xnat.object_at(f"/data/experiments/{session.id}/scans/2")
    assert scan.type == "T1w MPRAGE" and scan.parent.label == "DEMO_001_MR_1"
    with pytest.raises(NotFound):
        xnat.object_at("/data/projects/DEMO/subjects/NOBODY")
