"""The mount on a site that behaves like a real XNAT (issue 12): idle sessions expire into guest
access, a guest mount, and projects whose data is refused (EACCES)."""

from __future__ import annotations

import json
import os
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

import xnatfs


from mounting import MountFactory

from xnatfs.emulator.server import EmulatorServer

pytestmark = pytest.mark.mount

USERS = {"admin": "admin", "alice": "a-pw"}
ADMIN = ("admin", "admin")


@pytest.fixture
def site(tmp_path: Path) -> Iterator[EmulatorServer]:
    """A guest-enabled site whose sessions expire after 1 s idle: PUB (public), PROT (protected) and
    PRIV (private, alice is an owner), each with subject S1 and a project resource file f.txt."""
    server = EmulatorServer(tmp_path / "data", users=USERS, allow_guest=True, session_timeout=1.0).start()
    for project, level in (("PUB", "public"), ("PROT", "protected"), ("PRIV", "private")):
        assert requests.put(f"{server.url}/data/projects/{project}", auth=ADMIN, timeout=10).ok
        assert requests.put(f"{server.url}/data/projects/{project}/accessibility/{level}", auth=ADMIN, timeout=10).ok
        assert requests.put(f"{server.url}/data/projects/{project}/subjects/S1", auth=ADMIN, timeout=10).ok
        assert requests.put(f"{server.url}/data/projects/{project}/resources/R/files/f.txt",
                            data=project.encode(), auth=ADMIN, timeout=10).ok
    assert requests.put(f"{server.url}/data/projects/PRIV/users/Owners/alice", auth=ADMIN, timeout=10).ok
    yield server
    server.stop()


def test_a_private_project_stays_readable_through_an_idle_expiry(site: EmulatorServer,
                                                                 mount_factory: MountFactory) -> None:
    mounted = mount_factory(site, "--metadata-ttl", "0.5", user="alice", password="a-pw")
    projects = mounted.path / "projects"
    assert sorted(os.listdir(projects)) == ["PRIV", "PROT", "PUB"]
    time.sleep(1.6)  # the server expires the idle session; with the cookie alone the mount would be a guest
    assert sorted(os.listdir(projects)) == ["PRIV", "PROT", "PUB"]
    assert (projects / "PRIV/resources/R/f.txt").read_bytes() == b"PRIV"
    assert os.listdir(projects / "PRIV/subjects") == ["S1"]


def test_a_guest_mount_shows_public_projects_only_and_says_so(site: EmulatorServer,
                                                              mount_factory: MountFactory) -> None:
    mounted = mount_factory(site, user=None, password=None)
    assert os.listdir(mounted.path / "projects") == ["PUB"]
    assert (mounted.path / "projects/PUB/resources/R/f.txt").read_bytes() == b"PUB"
    assert "Mounted as the guest user" in mounted.log_text()


def test_a_protected_projects_data_is_eacces(site: EmulatorServer, mount_factory: MountFactory) -> None:
    mounted = mount_factory(site, user="alice", password="a-pw")
    mounted.expect_errors = True
    projects = mounted.path / "projects"
    assert "PROT" in os.listdir(projects)
    result = subprocess.run(["ls", str(projects / "PROT/subjects")], capture_output=True, text=True, timeout=30)
    assert result.returncode != 0 and "Permission denied" in result.stderr
    result = subprocess.run(["cat", str(projects / "PROT/resources/R/f.txt")], capture_output=True, text=True,
                            timeout=30)
    assert result.returncode != 0 and "Permission denied" in result.stderr
    assert "EACCES" in mounted.log_text() or "403" in mounted.log_text()


def test_a_shared_subject_shows_only_what_was_shared_under_the_destination_labels(
        site: EmulatorServer, mount_factory: MountFactory) -> None:
    url = site.url
    for label in ("E1", "E2"):
        assert requests.put(f"{url}/data/projects/PUB/subjects/S1/experiments/{label}", auth=ADMIN, timeout=10,
                            params={"xsiType": "xnat:mrSessionData"}).ok
    assert requests.put(f"{url}/data/projects/PUB/subjects/S1/projects/PRIV", params={"label": "D1"}, auth=ADMIN,
                        timeout=10).ok
    assert requests.put(f"{url}/data/projects/PUB/experiments/E1/projects/PRIV", params={"label": "DE1"}, auth=ADMIN,
                        timeout=10).ok
    mounted = mount_factory(site)
    projects = mounted.path / "projects"
    assert sorted(os.listdir(projects / "PRIV/subjects")) == ["D1", "S1"]
    assert os.listdir(projects / "PRIV/subjects/D1/experiments") == ["DE1"]  # E2 was never shared
    assert sorted(os.listdir(projects / "PUB/subjects/S1/experiments")) == ["E1", "E2"]
    shared = json.loads((projects / "PRIV/subjects/D1/experiments/DE1/xnat.json").read_text())
    home = json.loads((projects / "PUB/subjects/S1/experiments/E1/xnat.json").read_text())
    assert shared["ID"] == home["ID"]


def test_input_and_output_resources_of_assessors_and_reconstructions_both_show(
        site: EmulatorServer, mount_factory: MountFactory) -> None:
    """XNAT keeps ``in`` and ``out`` resources apart and leaves ``in`` out of a session's file listing:
    ``resources/`` shows the output resources, ``in/`` the input ones, each with its files."""
    base = f"{site.url}/data/projects/PUB/subjects/S1/experiments/MR1"
    assert requests.put(base, params={"xsiType": "xnat:mrSessionData"}, auth=ADMIN, timeout=10).ok
    assert requests.put(f"{base}/assessors/QC", params={"xsiType": "xnat:qcAssessmentData"}, auth=ADMIN,
                        timeout=10).ok
    assert requests.put(f"{base}/reconstructions/R1", auth=ADMIN, timeout=10).ok
    for owner in ("assessors/QC", "reconstructions/R1"):
        for side in ("in", "out"):
            assert requests.put(f"{base}/{owner}/{side}/resources/{side.upper()}/files/{side}.txt",
                                data=f"{owner} {side}".encode(), auth=ADMIN, timeout=10).ok
    mounted = mount_factory(site)
    session = mounted.path / "projects/PUB/subjects/S1/experiments/MR1"
    for owner in ("assessors/QC", "reconstructions/R1"):
        assert os.listdir(session / owner / "resources") == ["OUT"]
        assert os.listdir(session / owner / "in") == ["IN"]
        assert (session / owner / "resources/OUT/out.txt").read_text() == f"{owner} out"
        assert (session / owner / "in/IN/in.txt").read_text() == f"{owner} in"


NAMES = ["a,b.txt", "report(1).pdf", "x=y@z;w.txt", "it's!$.txt", "a+b.txt", "with space.txt", "plus+and space.txt"]


def test_names_xnat_does_not_decode_read_and_upload_exactly(site: EmulatorServer, mount_factory: MountFactory,
                                                          tmp_path: Path) -> None:
    """XNAT decodes a file path only when it holds %20 or %2B: names with ( ) , = @ ; ' ! $ + and
    spaces are written so that it reads them back exactly, through the library and the mount."""
    with xnatfs.connect(site.url, *ADMIN) as xnat:
        resource = xnat.projects["PUB"].resources["R"]
        for name in NAMES:
            resource.upload(f"library {name}".encode(), name)
        stored = {f.path for f in resource.files.refresh().values()}
        assert set(NAMES) <= stored
        for name in NAMES:
            with resource.files[name].open() as handle:
                assert handle.read() == f"library {name}".encode()
    mounted = mount_factory(site)
    folder = mounted.path / "projects/PUB/resources/R"
    for name in NAMES:
        assert (folder / name).read_bytes() == f"library {name}".encode()
    local = tmp_path / "local"
    local.mkdir()
    for name in NAMES:
        (local / f"m-{name}").write_bytes(f"mount {name}".encode())
        subprocess.run(["cp", str(local / f"m-{name}"), str(folder / f"m-{name}")], check=True, timeout=60)
    listed = requests.get(f"{site.url}/data/projects/PUB/resources/R/files", params={"format": "json"}, auth=ADMIN,
                          timeout=10).json()["ResultSet"]["Result"]
    assert {f"m-{name}" for name in NAMES} <= {row["Name"] for row in listed}
    for name in NAMES:
        assert (folder / f"m-{name}").read_bytes() == f"mount {name}".encode()


@pytest.fixture
def sydney(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """The emulator (in this process) writes its times in Australia/Sydney, as a server there would."""
    monkeypatch.setenv("TZ", "Australia/Sydney")
    time.tzset()
    yield
    monkeypatch.undo()
    time.tzset()


def test_times_match_the_servers_clock_in_a_non_utc_zone(sydney: None, site: EmulatorServer,
                                                         mount_factory: MountFactory) -> None:
    """meta.start_date names the server's zone (AEST/AEDT); listing times name none and are read in the
    zone learnt from the documents, so a folder's time is when it was made, not 10-11 hours off."""
    made = time.time()
    assert requests.put(f"{site.url}/data/projects/PUB/subjects/S1/experiments/MR1",
                        params={"xsiType": "xnat:mrSessionData"}, auth=ADMIN, timeout=10).ok
    document = requests.get(f"{site.url}/data/projects/PUB/subjects/S1/experiments/MR1", params={"format": "json"},
                            auth=ADMIN, timeout=10).json()
    assert document["items"][0]["meta"]["start_date"].split()[4] in ("AEST", "AEDT")
    mounted = mount_factory(site)
    subject = mounted.path / "projects/PUB/subjects/S1"
    for path in (subject, subject / "experiments/MR1", subject / "experiments/MR1/xnat.json"):
        assert abs(os.stat(path).st_mtime - made) < 120, (path, os.stat(path).st_mtime - made)


def test_a_file_replaced_on_the_server_is_stale_then_reads_anew(site: EmulatorServer,
                                                               mount_factory: MountFactory) -> None:
    """XNAT's Restlet does not clamp a range past the end of a file that shrank (it announces the span
    and ends the body early): the listed size is checked against ``Content-Range``'s total, the read
    fails with ESTALE and a log line instead of hanging or mixing old and new, and the next read lists
    again and gets the new bytes."""
    mounted = mount_factory(site, "--metadata-ttl", "600", user="admin", password="admin")
    mounted.expect_errors = True
    target = mounted.path / "projects/PUB/resources/R/f.txt"
    assert target.stat().st_size == 3
    for content in (b"P", b"a longer replacement"):
        assert requests.put(f"{site.url}/data/projects/PUB/resources/R/files/f.txt", params={"overwrite": "true"},
                            data=content, auth=ADMIN, timeout=10).ok
        result = subprocess.run(["cat", str(target)], capture_output=True, timeout=30)
        assert result.returncode != 0 and b"Stale file handle" in result.stderr
        assert target.read_bytes() == content
        assert target.stat().st_size == len(content)
    assert "changed on the server since it was listed" in mounted.log_text()
