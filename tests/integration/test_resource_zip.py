"""``ResourceZip`` (the mount's whole-resource fetch ahead) against the emulator: members by their path
inside the resource, handed out only with the listed size and md5; a zip over its limit is refused."""

from __future__ import annotations

import hashlib
import threading
from pathlib import Path

import pytest

from xnatfs.errors import ServerError
from xnatfs.model.connect import Connection
from xnatfs.emulator.server import EmulatorServer
from xnatfs.model.transfer import ResourceZip

pytestmark = pytest.mark.integration


def dicom_files(xnat: Connection) -> tuple[str, list[dict]]:
    session = xnat.projects["DEMO"].subjects["DEMO_001"].experiments["DEMO_001_MR_1"]
    files_uri = f"{session.scans['2'].resources['DICOM'].uri}/files"
    rows = xnat.session.get_json(files_uri, params={"format": "json"})["ResultSet"]["Result"]
    return files_uri, rows


def test_members_come_with_their_listed_bytes(xnat: Connection, tmp_path: Path) -> None:
    files_uri, rows = dicom_files(xnat)
    wanted = {row["Name"]: int(row["Size"]) for row in rows}
    archive = ResourceZip.download(xnat.session, files_uri, wanted, spool_dir=tmp_path, limit=64 * 1024 * 1024)
    try:
        assert len(archive) == len(rows) == 16
        assert list(tmp_path.iterdir()) == []  # an anonymous file: nothing to find on disk
        for row in rows[:4]:
            data = archive.read(row["Name"], int(row["Size"]), row["digest"])
            assert data is not None and hashlib.md5(data).hexdigest() == row["digest"]
            assert data == xnat.session.get(row["URI"]).content
        row = rows[0]
        assert archive.read(row["Name"], int(row["Size"]), "0" * 32) is None  # not the listed md5
        assert archive.read(row["Name"], int(row["Size"]) + 1, row["digest"]) is None  # not the listed size
        assert archive.read("no-such-file.dcm", 1, "") is None
    finally:
        archive.close()


def test_a_zip_over_its_limit_is_refused(xnat: Connection, tmp_path: Path) -> None:
    files_uri, rows = dicom_files(xnat)
    with pytest.raises(ServerError, match="larger than 1000 bytes"):
        ResourceZip.download(xnat.session, files_uri, {r["Name"]: int(r["Size"]) for r in rows}, spool_dir=tmp_path,
                             limit=1000)


def test_members_can_be_read_while_the_zip_is_still_arriving(faults: EmulatorServer, xnat: Connection,
                                                             tmp_path: Path) -> None:
    """Issue 13: a program reading a series file after file need not wait for the whole zip; a member is
    there once its own bytes are (the zip is paced to take about 1.5 s here)."""
    files_uri, rows = dicom_files(xnat)
    total = sum(int(row["Size"]) for row in rows)
    faults.set_faults(bandwidth_mibps=total / 1.5 / (1024 * 1024))
    archive = ResourceZip(xnat.session, files_uri, {row["Name"]: int(row["Size"]) for row in rows},
                          spool_dir=tmp_path, limit=64 * 1024 * 1024)
    filling = threading.Thread(target=archive.fill)
    try:
        filling.start()
        first = rows[0]
        data = archive.read(first["Name"], int(first["Size"]), first["digest"], wait=30)
        assert filling.is_alive() and archive.streaming  # the zip is still coming
        assert data is not None and hashlib.md5(data).hexdigest() == first["digest"]
        last = rows[-1]
        data = archive.read(last["Name"], int(last["Size"]), last["digest"], wait=30)  # waits for its bytes
        assert data is not None and hashlib.md5(data).hexdigest() == last["digest"]
        filling.join(30)
        assert len(archive) == len(rows)
    finally:
        archive.close()
        filling.join(30)


def test_closing_a_zip_stops_its_download(faults: EmulatorServer, xnat: Connection, tmp_path: Path) -> None:
    files_uri, rows = dicom_files(xnat)
    faults.set_faults(bandwidth_mibps=0.05)
    archive = ResourceZip(xnat.session, files_uri, {row["Name"]: int(row["Size"]) for row in rows},
                          spool_dir=tmp_path, limit=64 * 1024 * 1024)
    failure: list[BaseException] = []

    def fill() -> None:
        try:
            archive.fill()
        except BaseException as exc:  # noqa: BLE001 - what the prefetch's pool would see
            failure.append(exc)

    filling = threading.Thread(target=fill)
    filling.start()
    assert archive.read(rows[0]["Name"], int(rows[0]["Size"]), rows[0]["digest"], wait=30) is not None
    archive.close()  # evicted: the rest is not wanted
    filling.join(10)
    assert not filling.is_alive() and isinstance(failure[0], ServerError)
    assert archive.read(rows[-1]["Name"], int(rows[-1]["Size"]), rows[-1]["digest"], wait=1) is None
