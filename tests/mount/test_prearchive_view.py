"""``prearchive/<project>/<timestamp>/<session>/`` through a real mount: layout, bytes, status, TTL."""

from __future__ import annotations

import errno
import json
import os
import time

import pytest
import requests

from mounting import ADMIN, MountFactory
from writing import digests, dicom_zip, files_under, http_get
from xnatfs.emulator.server import EmulatorServer

pytestmark = pytest.mark.mount


def import_to_prearchive(server: EmulatorServer, patient: str, project: str = "DEMO") -> tuple[str, dict[str, bytes]]:
    """Send a zip to the import service as any client would; the session URI and the zip's members."""
    data, members = dicom_zip(patient, slices=3, series=2)
    response = requests.post(f"{server.url}/data/services/import", data=data, auth=ADMIN, timeout=60,
                             params={"import-handler": "DICOM-zip", "dest": f"/prearchive/projects/{project}",
                                     "PROJECT_ID": project}, headers={"Content-Type": "application/zip"})
    response.raise_for_status()
    return response.text.split()[0], members


def test_a_prearchive_session_is_browsable_with_its_files_byte_for_byte(server: EmulatorServer,
                                                                      mount_factory: MountFactory) -> None:
    uri, members = import_to_prearchive(server, "PRE_VIEW")
    mounted = mount_factory(server)
    _, _, _, _, project, timestamp, folder = uri.split("/")
    session = mounted.path / "prearchive" / project / timestamp / folder
    assert project in os.listdir(mounted.path / "prearchive")
    assert sorted(os.listdir(session)) == ["resources", "scans", "xnat.json"]
    assert sorted(os.listdir(session / "scans")) == ["1", "2"]
    assert sorted(os.listdir(session / "scans/1")) == ["resources", "xnat.json"]
    assert json.loads((session / "scans/2/xnat.json").read_text())["series_description"] == "series 2"
    row = json.loads((session / "xnat.json").read_text())
    assert row["status"] == "READY" and row["name"] == "PRE_VIEW" and row["URI"] == uri
    assert os.getxattr(session, "user.xnat.status") == b"READY"
    stored = {k: v for k, v in files_under(session / "scans").items() if "/resources/" in k}
    assert digests(stored.values()) == digests(members.values())
    one = next(k for k in stored if k.startswith("1/"))
    direct = http_get(server, f"{uri}/scans/1/resources/DICOM/files/{one.rsplit('/', 1)[1]}")
    assert direct.status_code == 200 and direct.content == stored[one]
    info = os.stat(session / "scans" / one)
    assert info.st_size == len(stored[one]) and info.st_mode & 0o777 == 0o444


def test_the_prearchive_view_is_read_only(server: EmulatorServer, mount_factory: MountFactory) -> None:
    uri, _ = import_to_prearchive(server, "PRE_RO")
    mounted = mount_factory(server)
    mounted.expect_errors = True
    session = mounted.path / "prearchive" / "/".join(uri.split("/")[4:7])
    dicom = next((session / "scans/1/resources/DICOM").iterdir())
    for action in (lambda: (session / "new.txt").write_bytes(b"x"), lambda: (session / "scans/9").mkdir(),
                   lambda: os.unlink(dicom), lambda: open(dicom, "r+b"), lambda: os.rmdir(session / "resources")):
        with pytest.raises(OSError) as info:
            action()
        assert info.value.errno == errno.EACCES
    assert dicom.exists()


def test_status_and_sessions_follow_the_server_within_the_metadata_ttl(server: EmulatorServer,
                                                                       mount_factory: MountFactory) -> None:
    uri, _ = import_to_prearchive(server, "PRE_TTL")
    mounted = mount_factory(server, "--metadata-ttl", "1")
    session = mounted.path / "prearchive" / "/".join(uri.split("/")[4:7])
    assert json.loads((session / "xnat.json").read_text())["status"] == "READY"
    requests.post(f"{server.url}{uri}", params={"action": "set-status", "status": "ERROR"}, auth=ADMIN,
                  timeout=30).raise_for_status()
    time.sleep(1.3)
    assert json.loads((session / "xnat.json").read_text())["status"] == "ERROR"
    requests.delete(f"{server.url}{uri}", auth=ADMIN, timeout=30).raise_for_status()
    time.sleep(1.3)
    assert not session.exists()


def test_the_cached_view_costs_no_requests_within_the_ttl(server: EmulatorServer,
                                                          mount_factory: MountFactory) -> None:
    uri, _ = import_to_prearchive(server, "PRE_CACHE")
    mounted = mount_factory(server)
    session = mounted.path / "prearchive" / "/".join(uri.split("/")[4:7])
    first = files_under(session)
    counter = f"{server.url}/emulator/requests"
    requests.delete(counter, auth=ADMIN, timeout=10).raise_for_status()
    assert files_under(session).keys() == first.keys()
    counts = requests.get(counter, auth=ADMIN, timeout=10).json()["by_route"]
    assert not any("prearchive" in key and "/files/" not in key for key in counts), counts
