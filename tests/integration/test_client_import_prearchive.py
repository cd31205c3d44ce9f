"""The import service and the prearchive: upload DICOM zips, list, archive, move, delete, rebuild."""

from __future__ import annotations

import io
import zipfile
from collections.abc import Callable
from pathlib import Path

import pytest

from xnatfs.emulator.server import EmulatorServer
from xnatfs.errors import NotImportable, UploadError
from xnatfs.model.connect import Connection
from xnatfs.model.prearchive import PrearchiveSession

pytestmark = pytest.mark.integration

MakeZip = Callable[..., Path]


@pytest.fixture
def xnat_with_projects(fresh_xnat: Connection) -> Connection:
    fresh_xnat.projects.create("IMP")
    fresh_xnat.projects.create("OTHER")
    return fresh_xnat


def test_import_to_prearchive_then_archive(xnat_with_projects: Connection, tmp_path: Path,
                                           make_dicom_zip: MakeZip) -> None:
    connection = xnat_with_projects
    result = connection.services.import_(make_dicom_zip(tmp_path / "a.zip"), project="IMP")
    assert isinstance(result, PrearchiveSession)
    assert (result.project, result.name, result.subject) == ("IMP", "SESS01", "SUBJ01")
    assert result.status == "READY"
    listed = connection.prearchive.sessions("IMP")
    assert listed == [result]
    assert connection.prearchive.sessions() == [result]
    scans = result.scans
    assert scans.keys() == ["1", "2"] and scans["1"].series_description == "series 1"
    (resource,) = scans["1"].resources
    assert len(resource.files) == 3
    archived_zip = result.download(tmp_path / "session.zip")
    assert len([n for n in zipfile.ZipFile(archived_zip).namelist() if n.endswith(".dcm")]) == 6

    experiment = result.archive(subject="SUBJ01", experiment="SESS01")
    assert type(experiment).__name__ == "MrSessionData"
    assert experiment.label == "SESS01" and experiment.subject.label == "SUBJ01"
    assert experiment.scans.keys() == ["1", "2"]
    assert len(experiment.scans["2"].resources["DICOM"].files) == 3
    assert connection.prearchive.sessions("IMP") == []
    assert [e.label for e in connection.projects["IMP"].experiments] == ["SESS01"]


def test_import_straight_to_the_archive(xnat_with_projects: Connection, tmp_path: Path,
                                        make_dicom_zip: MakeZip) -> None:
    experiment = xnat_with_projects.services.import_(
        make_dicom_zip(tmp_path / "b.zip", subject="SUBJ02", session="SESS02"), project="IMP", subject="Renamed",
        experiment="E_LABEL", destination="archive")
    assert experiment.label == "E_LABEL" and experiment.subject.label == "Renamed"
    assert experiment.date is not None and experiment.date.year == 2024
    assert xnat_with_projects.prearchive.sessions("IMP") == []


def test_import_from_a_file_object(xnat_with_projects: Connection, tmp_path: Path,
                                   make_dicom_zip: MakeZip) -> None:
    data = make_dicom_zip(tmp_path / "c.zip", session="SESS03").read_bytes()
    result = xnat_with_projects.services.import_(io.BytesIO(data), project="IMP", experiment="FROM_MEMORY")
    assert result.name == "FROM_MEMORY"


def test_move_rebuild_and_delete(xnat_with_projects: Connection, tmp_path: Path,
                                 make_dicom_zip: MakeZip) -> None:
    connection = xnat_with_projects
    session = connection.services.import_(make_dicom_zip(tmp_path / "d.zip", session="SESS04"), project="IMP")
    moved = session.move("OTHER")
    assert moved.project == "OTHER" and moved.name == "SESS04"
    assert connection.prearchive.sessions("IMP") == []
    assert connection.prearchive.find("OTHER", name="SESS04") == [moved]
    assert moved.rebuild().status in ("READY", "BUILDING", "QUEUED_BUILDING")
    moved.delete()
    assert connection.prearchive.sessions("OTHER") == []


def test_a_corrupt_zip_is_never_sent(xnat_with_projects: Connection, fresh_emulator: EmulatorServer,
                                     tmp_path: Path, make_dicom_zip: MakeZip) -> None:
    good = make_dicom_zip(tmp_path / "e.zip").read_bytes()
    broken = tmp_path / "broken.zip"
    broken.write_bytes(good[: len(good) // 2])
    fresh_emulator.faults.reset_counts()
    with pytest.raises(UploadError):
        xnat_with_projects.services.import_(broken, project="IMP")
    assert not any("import" in route for route in fresh_emulator.faults.counts()["by_route"])


def test_a_zip_with_a_damaged_member_is_never_sent(xnat_with_projects: Connection, fresh_emulator: EmulatorServer,
                                                   tmp_path: Path, make_dicom_zip: MakeZip) -> None:
    """The library and the mount's import/ share one check: every member's CRC, not only the directory."""
    good = make_dicom_zip(tmp_path / "e.zip")
    with zipfile.ZipFile(good) as archive:
        first = archive.infolist()[0]
        stored = {info.filename: archive.read(info) for info in archive.infolist()}
    damaged = tmp_path / "damaged.zip"
    with zipfile.ZipFile(damaged, "w", zipfile.ZIP_STORED) as archive:
        for name, data in stored.items():
            archive.writestr(name, data)
    raw = bytearray(damaged.read_bytes())
    offset = raw.index(stored[first.filename][200:232])  # inside the first member's data: its CRC no longer holds
    raw[offset] ^= 0xFF
    damaged.write_bytes(bytes(raw))
    assert zipfile.ZipFile(damaged).namelist() == list(stored)  # the central directory is intact
    fresh_emulator.faults.reset_counts()
    with pytest.raises(NotImportable, match="damaged"):
        xnat_with_projects.services.import_(damaged, project="IMP")
    assert not any("import" in route for route in fresh_emulator.faults.counts()["by_route"])


def test_a_refused_import_is_an_upload_error(xnat_with_projects: Connection, tmp_path: Path) -> None:
    not_dicom = tmp_path / "notes.zip"
    with zipfile.ZipFile(not_dicom, "w") as zf:
        zf.writestr("readme.txt", "not DICOM")
    with pytest.raises(UploadError) as info:
        xnat_with_projects.services.import_(not_dicom, project="IMP")
    assert "notes.zip" in str(info.value)
