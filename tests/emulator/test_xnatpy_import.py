"""The real `xnat` package (xnatpy 0.8.1) against the emulator: import service and prearchive (spec §18.1)."""

from __future__ import annotations

import zipfile
from pathlib import Path
from typing import Iterator

import pytest
import xnat
from xnat.session import XNATSession

from xnatfs.emulator.dicomgen import make_series, make_uid, make_zip
from xnatfs.emulator.server import EmulatorServer

pytestmark = pytest.mark.emulator


def write_study(path: Path, tag: str, patient_id: str) -> dict[str, bytes]:
    entries = {}
    for number, description in ((2, "T1w"), (4, "FLAIR")):
        for index, data in enumerate(make_series(
                study_uid=make_uid(tag), series_uid=make_uid(tag, str(number)),
                frame_of_reference_uid=make_uid(tag, "f"),
                patient_name="Py^Xnat", patient_id=patient_id, modality="MR", series_number=number,
                series_description=description, study_date="20220303", study_time="081500", rows=8, columns=8,
                slices=3), 1):
            entries[f"{tag}/{number}/slice{index}.dcm"] = data
    path.write_bytes(make_zip(entries))
    return entries


@pytest.fixture
def connection(fresh_emulator: EmulatorServer) -> Iterator[XNATSession]:
    fresh_emulator.store.create_project("PY1")
    fresh_emulator.store.create_project("PY2")
    session = xnat.connect(fresh_emulator.url, user="admin", password="admin", loglevel="ERROR")
    yield session
    session.disconnect()


def test_import_list_browse_download_move_rebuild_archive(connection: XNATSession, tmp_path: Path) -> None:
    entries = write_study(tmp_path / "study.zip", "xp1", "XP_SESSION")
    imported = connection.services.import_(tmp_path / "study.zip", project="PY1", subject="XP_SUBJ",
                                           experiment="XP_EXP")
    assert isinstance(imported, xnat.prearchive.PrearchiveSession)
    [listed] = connection.prearchive.sessions()
    assert listed.uri == imported.uri and connection.prearchive.sessions("PY2") == []
    assert (listed.status, listed.subject, listed.label, listed.project) == ("READY", "XP_SUBJ", "XP_EXP", "PY1")
    assert listed.timestamp.year >= 2024 and str(listed.scan_date) == "2022-03-03"
    scans = listed.scans
    assert sorted(scans.keys()) == ["2", "4"] and scans["4"].series_description == "FLAIR"
    files = scans["2"].files
    assert sorted(f.name for f in files.values()) == ["slice1.dcm", "slice2.dcm", "slice3.dcm"]
    with files["slice2.dcm"].open() as handle:
        assert handle.read() == entries["xp1/2/slice2.dcm"]
    assert scans["2"].read_dicom().PatientID == "XP_SESSION"
    listed.download(tmp_path / "session.zip")
    with zipfile.ZipFile(tmp_path / "session.zip") as archive:
        assert archive.read("XP_EXP/SCANS/4/DICOM/slice3.dcm") == entries["xp1/4/slice3.dcm"]

    assert listed.move("PY2", asynchronous=False).status_code == 200
    [moved] = connection.prearchive.sessions("PY2")
    assert moved.rebuild().status_code == 200 and moved.status == "READY"
    experiment = moved.archive(subject="ARCH_SUBJ", experiment="ARCH_EXP")
    assert experiment.label == "ARCH_EXP" and experiment.project == "PY2"
    assert connection.prearchive.sessions() == []
    scan = connection.projects["PY2"].subjects["ARCH_SUBJ"].experiments["ARCH_EXP"].scans["4"]
    downloaded = tmp_path / "flair1.dcm"
    scan.resources["DICOM"].files["slice1.dcm"].download(downloaded)
    assert downloaded.read_bytes() == entries["xp1/4/slice1.dcm"]


def test_import_to_archive_and_delete_from_prearchive(connection: XNATSession, tmp_path: Path) -> None:
    entries = write_study(tmp_path / "a.zip", "xp2", "XP_A")
    experiment = connection.services.import_(tmp_path / "a.zip", project="PY1", subject="S_A", experiment="E_A",
                                             destination="/archive")
    assert experiment.label == "E_A" and experiment.subject.label == "S_A"
    assert sorted(experiment.scans.keys()) == ["2", "4"]
    assert experiment.scans["2"].resources["DICOM"].files["slice3.dcm"].open().read() == entries["xp2/2/slice3.dcm"]

    write_study(tmp_path / "b.zip", "xp3", "XP_B")
    doomed = connection.services.import_(tmp_path / "b.zip", project="PY1")
    assert doomed.label == "XP_B"
    assert doomed.delete(asynchronous=True).status_code == 200
    assert connection.prearchive.sessions() == []
