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
from xnatfs.errors import FileChanged, PermissionDenied

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


@pytest.mark.parametrize("replacement", [b"short", b"L" * 20000])
def test_a_file_replaced_since_it_was_listed_is_file_changed_then_reads_anew(tmp_path: Path,
                                                                             replacement: bytes) -> None:
    """Restlet answers a range past the end of a shrunk file with the requested span and a short body;
    a grown file would silently read as its old length. Content-Range's total tells both."""
    original = bytes(range(256)) * 40
    with EmulatorServer(tmp_path / "d") as server:
        store = server.store
        store.add_file(store.create_resource(store.create_project("P"), "R").id, "a.bin", original)
        with xnatfs.connect(server.url, "admin", "admin") as xnat:
            listed = xnat.projects["P"].resources["R"].files["a.bin"]
            with listed.open() as handle:
                assert handle.read(100) == original[:100]
            assert requests.put(f"{server.url}/data/projects/P/resources/R/files/a.bin", params={"overwrite": "true"},
                                data=replacement, auth=ADMIN, timeout=10).ok
            for offset in (0, 20):
                with pytest.raises(FileChanged) as info, listed.open() as handle:
                    handle.seek(offset)
                    handle.read()
                assert info.value.errno == errno.ESTALE and f"holds {len(replacement)} bytes" in str(info.value)
            again = xnat.projects["P"].resources["R"].files["a.bin"]  # the stale listing was dropped
            assert again.size == len(replacement)
            with again.open() as handle:
                assert handle.read() == replacement
