"""The client on a site that behaves like a real XNAT (issue 12): idle sessions expire into guest
access, projects are private/protected/public, and 403 is a PermissionDenied (EACCES)."""

from __future__ import annotations

import errno
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

import xnatfs
from xnatfs.emulator.server import EmulatorServer
from xnatfs.errors import PermissionDenied

pytestmark = pytest.mark.integration

USERS = {"admin": "admin", "alice": "a-pw"}
ADMIN = ("admin", "admin")


@pytest.fixture
def site(tmp_path: Path) -> Iterator[EmulatorServer]:
    """A guest-enabled site whose sessions expire after 1 s idle: PUB (public), PROT (protected) and
    alice's private PRIV, each with subject S1 and a project resource file."""
    server = EmulatorServer(tmp_path / "data", users=USERS, allow_guest=True, session_timeout=1.0).start()
    for project, level in (("PUB", "public"), ("PROT", "protected"), ("PRIV", "private")):
        assert requests.put(f"{server.url}/data/projects/{project}", auth=ADMIN, timeout=10).ok
        assert requests.put(f"{server.url}/data/projects/{project}/accessibility/{level}", auth=ADMIN, timeout=10).ok
        assert requests.put(f"{server.url}/data/projects/{project}/subjects/S1", auth=ADMIN, timeout=10).ok
        assert requests.put(f"{server.url}/data/projects/{project}/resources/R/files/f.txt", data=b"x", auth=ADMIN,
                            timeout=10).ok
    assert requests.put(f"{server.url}/data/projects/PRIV/users/Owners/alice", auth=ADMIN, timeout=10).ok
    yield server
    server.stop()


def test_a_private_project_stays_visible_through_an_idle_expiry(site: EmulatorServer) -> None:
    with xnatfs.connect(site.url, "alice", "a-pw") as xnat:
        assert set(xnat.projects.keys()) == {"PUB", "PROT", "PRIV"}
        time.sleep(1.5)  # the server expires the session; a cookie alone would now be served as guest
        xnat.clear_cache()
        assert set(xnat.projects.keys()) == {"PUB", "PROT", "PRIV"}
        assert [s.label for s in xnat.projects["PRIV"].subjects.values()] == ["S1"]


def test_a_guest_sees_public_projects_only(site: EmulatorServer) -> None:
    with xnatfs.connect(site.url) as xnat:
        assert set(xnat.projects.keys()) == {"PUB"}
        assert [s.label for s in xnat.projects["PUB"].subjects.values()] == ["S1"]


def test_a_protected_project_is_listed_but_its_data_is_refused(site: EmulatorServer) -> None:
    with xnatfs.connect(site.url, "alice", "a-pw") as xnat:
        assert "PROT" in xnat.projects.keys()
        with pytest.raises(PermissionDenied) as info:
            xnat.projects["PROT"].subjects.keys()
        assert info.value.errno == errno.EACCES
