"""``ResourceZip`` (the mount's whole-resource fetch ahead) against the emulator: members by their path
inside the resource, handed out only with the listed size and md5; a zip over its limit is refused."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from xnatfs.errors import ServerError
from xnatfs.model.connect import Connection
from xnatfs.model.transfer import ResourceZip

pytestmark = pytest.mark.integration


def dicom_files(xnat: Connection) -> tuple[str, list[dict]]:
    session = xnat.projects["DEMO"].subjects["DEMO_001"].experiments["DEMO_001_MR_1"]
    files_uri = f"{session.scans['2'].resources['DICOM'].uri}/files"
    rows = xnat.session.get_json(files_uri, params={"format": "json"})["ResultSet"]["Result"]
    return files_uri, rows


def test_members_come_with_their_listed_bytes(xnat: Connection, tmp_path: Path) -> None:
    files_uri, rows = dicom_files(xnat)
    wanted = {row["Name"] for row in rows}
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
        ResourceZip.download(xnat.session, files_uri, {r["Name"] for r in rows}, spool_dir=tmp_path, limit=1000)
