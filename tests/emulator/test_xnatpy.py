"""The real xnatpy client (package ``xnat`` 0.8.1) against the emulator over HTTP: connect, browse the
archive down to files, download a file, and create, update and delete objects."""

from __future__ import annotations

import gc
import hashlib
import logging
from pathlib import Path

import pytest
import requests
import xnat

from xnatfs.emulator.server import EmulatorServer

pytestmark = pytest.mark.emulator


def connect(server: EmulatorServer) -> xnat.session.XNATSession:
    return xnat.connect(server.url, user="admin", password="admin", logger=logging.getLogger("xnatpy"))


def test_xnatpy_browses_projects_subjects_experiments_scans(emulator: EmulatorServer) -> None:
    store = emulator.store
    with connect(emulator) as session:
        assert set(session.projects.keys()) >= {"DEMO", "STUDY2"}
        project = session.projects["DEMO"]
        assert project.name == "Demo project"
        assert {s.label for s in project.subjects.values()} == {"DEMO_001", "DEMO_002", "DEMO_003"}
        subject = project.subjects["DEMO_001"]
        assert subject.id == store.find_subject("DEMO", "DEMO_001").id
        assert subject.demographics.gender == "male" and subject.demographics.yob == 1970
        assert subject.fields["cohort"] == "pilot"
        experiments = subject.experiments
        assert {e.label for e in experiments.values()} == {"DEMO_001_MR_1", "DEMO_001_CT_1"}
        experiment = experiments["DEMO_001_MR_1"]
        assert type(experiment).__name__ == "MrSessionData"
        assert type(experiments["DEMO_001_CT_1"]).__name__ == "CtSessionData"
        assert str(experiment.date) == "2024-01-15"
        assert experiment.subject_id == subject.id
        scans = experiment.scans
        assert [scans[k].id for k in ("1", "2", "3")] == ["1", "2", "3"]
        scan = scans["2"]
        assert (scan.type, scan.series_description, scan.frames, scan.quality) == (
            "T1w MPRAGE", "T1w MPRAGE", 16, "usable")
        assert {a.label for a in experiment.assessors.values()} == {"DEMO_001_MR_1_QC"}
        assert list(experiment.reconstructions.keys()) == ["DEMO_001_MR_1_T1_bc"]
        assert [r.label for r in experiment.resources.values()] == ["notes"]
        qc = experiment.assessors["DEMO_001_MR_1_QC"]
        assert sorted(qc.resources["QC"].files.keys()) == ["qc.json", "qc_report.txt"]
        assert {e.label for e in project.experiments.values()} == {e.label for e in store.list_experiments("DEMO")}
        assert session.subjects[subject.id].label == "DEMO_001"
        assert session.experiments[experiment.id].label == "DEMO_001_MR_1"


def test_xnatpy_lists_resources_and_files_and_downloads_a_file(emulator: EmulatorServer, tmp_path: Path) -> None:
    store = emulator.store
    session_row = store.find_experiment("DEMO", "DEMO_001_MR_1")
    resource_row = store.find_resource(store.get_scan(session_row.id, "2"), "DICOM")
    stored_files = store.list_files(resource_row.id)
    with connect(emulator) as session:
        scan = session.projects["DEMO"].subjects["DEMO_001"].experiments["DEMO_001_MR_1"].scans["2"]
        resource = scan.resources["DICOM"]
        assert resource.id == str(resource_row.id)
        assert (resource.file_count, resource.file_size) == store.file_stats(resource_row.id)
        assert sorted(resource.files.keys()) == sorted(f.path for f in stored_files)
        wanted = stored_files[0]
        remote = resource.files[wanted.path]
        assert remote.digest == wanted.md5 and int(remote.size) == wanted.size  # size: HEAD Content-Length
        target = tmp_path / "slice.dcm"
        remote.download(str(target), verbose=False)
        assert hashlib.md5(target.read_bytes()).hexdigest() == wanted.md5
        protocols = session.projects["DEMO"].resources["protocols"]
        assert sorted(protocols.files.keys()) == ["docs/README.txt", "protocol.txt"]


def test_xnatpy_creates_updates_and_deletes(fresh_emulator: EmulatorServer) -> None:
    store = fresh_emulator.store
    created = requests.put(f"{fresh_emulator.url}/data/projects/P1", params={"name": "Project one"},
                           auth=("admin", "admin"), timeout=10)
    assert created.status_code == 200
    # xnatpy keeps every listing of every session in a process-wide registry and, on delete, asks
    # each one for its length; listings of the earlier tests' closed sessions must be gone first.
    gc.collect()
    with connect(fresh_emulator) as session:
        project = session.projects["P1"]
        subject = session.classes.SubjectData(parent=project, label="SUBJ1")
        stored_subject = store.find_subject("P1", "SUBJ1")
        assert subject.id == stored_subject.id
        experiment = session.classes.MrSessionData(parent=subject, label="SUBJ1_MR")
        stored_experiment = store.find_experiment("P1", "SUBJ1_MR")
        assert experiment.id == stored_experiment.id
        assert stored_experiment.subject_id == stored_subject.id
        experiment.date = "2021-03-04"
        subject.fields["site"] = "north"
        session.classes.MrScanData(parent=experiment, id="7", type="T1", series_description="T1 MPRAGE")
        assert store.get_experiment(experiment.id).fields["date"] == "2021-03-04"
        assert store.get_subject(subject.id).fields["fields"] == {"site": "north"}
        assert store.get_scan(experiment.id, "7").fields == {"type": "T1", "series_description": "T1 MPRAGE"}

        session.clearcache()
        listed = session.projects["P1"].subjects["SUBJ1"].experiments["SUBJ1_MR"]
        assert str(listed.date) == "2021-03-04" and listed.scans["7"].type == "T1"

        # Deleting walks every live listing (see above); drop the ones below the subject first.
        del subject, experiment, listed
        session.clearcache()
        gc.collect()
        session.projects["P1"].subjects["SUBJ1"].delete()
        assert store.list_subjects("P1") == [] and store.list_experiments("P1") == []
