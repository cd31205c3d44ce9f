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
