"""Users, guests, idle sessions, project accessibility and roles (issue 12), over real HTTP.

XNAT's rules (XnatSecureGuard, web.xml session-timeout, ProjectAccessibilityResource,
ProjectMemberResource, ProjectUserListResource): a guest-enabled site serves requests without
credentials, or with a dead session cookie, as the guest (public projects only); protected projects
are listed to every user but their data is refused with 403; private ones are invisible to others;
collaborators read, members write, owners also delete and manage.
"""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Iterator

import pytest
import requests

from xnatfs.emulator.app import REALM
from xnatfs.emulator.server import EmulatorServer

pytestmark = pytest.mark.emulator

USERS = {"admin": "admin", "alice": "a-pw", "bob": "b-pw", "carol": "c-pw"}


@pytest.fixture
def site(tmp_path) -> Iterator[EmulatorServer]:  # type: ignore[no-untyped-def]
    """Projects PUB (public), PROT (protected) and PRIV (private), each with subject S1 and a file."""
    server = EmulatorServer(tmp_path / "data", users=USERS, allow_guest=True, session_timeout=1.0).start()
    admin = ("admin", "admin")
    for project, level in (("PUB", "public"), ("PROT", "protected"), ("PRIV", "private")):
        assert requests.put(f"{server.url}/data/projects/{project}", auth=admin, timeout=10).status_code == 200
        put = requests.put(f"{server.url}/data/projects/{project}/accessibility/{level}", auth=admin, timeout=10)
        assert put.status_code == 200 and put.text == level
        created = requests.put(f"{server.url}/data/projects/{project}/subjects/S1", auth=admin, timeout=10)
        assert created.status_code == 201
        up = requests.put(f"{server.url}/data/projects/{project}/resources/R/files/f.txt", data=b"x",
                          auth=admin, timeout=10)
        assert up.status_code == 200
    yield server
    server.stop()


def projects(url: str, auth: tuple[str, str] | None) -> set[str]:
    response = requests.get(f"{url}/data/projects", auth=auth, timeout=10)
    assert response.status_code == 200
    return {row["ID"] for row in response.json()["ResultSet"]["Result"]}


def test_listings_show_what_each_user_may_see(site: EmulatorServer) -> None:
    assert projects(site.url, ("admin", "admin")) == {"PUB", "PROT", "PRIV"}
    assert projects(site.url, ("alice", "a-pw")) == {"PUB", "PROT"}
    assert projects(site.url, None) == {"PUB"}  # the guest
    assert requests.put(f"{site.url}/data/projects/PRIV/users/Collaborators/alice", auth=("admin", "admin"),
                        timeout=10).status_code == 200
    assert projects(site.url, ("alice", "a-pw")) == {"PUB", "PROT", "PRIV"}


def test_protected_data_is_refused_and_private_projects_are_invisible(site: EmulatorServer) -> None:
    alice = ("alice", "a-pw")
    assert requests.get(f"{site.url}/data/projects/PROT", auth=alice, timeout=10).status_code == 200
    assert requests.get(f"{site.url}/data/projects/PROT/accessibility", auth=alice, timeout=10).text == "protected"
    for path in ("/subjects", "/subjects/S1", "/resources/R/files/f.txt", "/resources", "/experiments"):
        refused = requests.get(f"{site.url}/data/projects/PROT{path}", auth=alice, timeout=10)
        assert refused.status_code == 403, path
        assert refused.text.startswith("<html>") and "PROT" in refused.text
    subject_id = requests.get(f"{site.url}/data/projects/PROT/subjects/S1", params={"format": "json"},
                              auth=("admin", "admin"), timeout=10).json()["items"][0]["data_fields"]["ID"]
    assert requests.get(f"{site.url}/data/subjects/{subject_id}", auth=alice, timeout=10).status_code == 403
    assert subject_id not in requests.get(f"{site.url}/data/subjects", auth=alice, timeout=10).text
    for path in ("", "/subjects", "/resources/R/files/f.txt"):
        assert requests.get(f"{site.url}/data/projects/PRIV{path}", auth=alice, timeout=10).status_code == 404
    public = requests.get(f"{site.url}/data/projects/PUB/resources/R/files/f.txt", auth=alice, timeout=10)
    assert public.status_code == 200 and public.content == b"x"
    write = requests.put(f"{site.url}/data/projects/PUB/subjects/S2", auth=alice, timeout=10)
    assert write.status_code == 403  # public means readable, not writable


def test_roles_collaborator_member_owner(site: EmulatorServer) -> None:
    admin, url = ("admin", "admin"), site.url
    for group, user in (("Collaborators", "alice"), ("member", "bob"), ("PROT_owner", "carol")):
        added = requests.put(f"{url}/data/projects/PROT/users/{group}/{user}", auth=admin, timeout=10)
        assert added.status_code == 200
    table = requests.get(f"{url}/data/projects/PROT/users", params={"format": "json"}, auth=admin, timeout=10).json()
    rows = {r["login"]: (r["GROUP_ID"], r["displayname"]) for r in table["ResultSet"]["Result"]}
    assert rows == {"admin": ("PROT_owner", "Owners"), "carol": ("PROT_owner", "Owners"),
                    "bob": ("PROT_member", "Members"), "alice": ("PROT_collaborator", "Collaborators")}
    assert table["ResultSet"]["title"] == "Projects" and table["ResultSet"]["totalRecords"] == "4"
    alice, bob, carol = ("alice", "a-pw"), ("bob", "b-pw"), ("carol", "c-pw")
    # collaborator: reads only
    assert requests.get(f"{url}/data/projects/PROT/resources/R/files/f.txt", auth=alice, timeout=10).content == b"x"
    assert requests.put(f"{url}/data/projects/PROT/subjects/S2", auth=alice, timeout=10).status_code == 403
    assert requests.get(f"{url}/data/projects/PROT/users", auth=alice, timeout=10).status_code == 403
    # member: writes, cannot delete subjects nor manage users or accessibility
    assert requests.put(f"{url}/data/projects/PROT/subjects/S2", auth=bob, timeout=10).status_code == 201
    assert requests.put(f"{url}/data/projects/PROT/resources/R/files/g.txt", data=b"y", auth=bob,
                        timeout=10).status_code == 200
    assert requests.delete(f"{url}/data/projects/PROT/subjects/S2", auth=bob, timeout=10).status_code == 403
    assert requests.put(f"{url}/data/projects/PROT/users/Members/alice", auth=bob, timeout=10).status_code == 403
    assert requests.put(f"{url}/data/projects/PROT/accessibility/public", auth=bob, timeout=10).status_code == 403
    # owner: deletes and manages
    assert requests.delete(f"{url}/data/projects/PROT/subjects/S2", auth=carol, timeout=10).status_code == 200
    assert requests.delete(f"{url}/data/projects/PROT/users/Collaborators/alice", auth=carol,
                           timeout=10).status_code == 200
    assert requests.get(f"{url}/data/projects/PROT/subjects", auth=alice, timeout=10).status_code == 403
    assert requests.put(f"{url}/data/projects/PROT/accessibility/private", auth=carol, timeout=10).text == "private"
    assert requests.get(f"{url}/data/projects/PROT", auth=alice, timeout=10).status_code == 404
    assert requests.put(f"{url}/data/projects/PROT/users/NoSuchGroup/alice", auth=carol, timeout=10).status_code == 404
    assert requests.put(f"{url}/data/projects/PROT/users/Members/guest", auth=carol, timeout=10).status_code == 412


def test_guest_reads_public_data_only(site: EmulatorServer) -> None:
    url = site.url
    root = requests.get(f"{url}/", timeout=10).text
    assert '<span style="color:red;">Guest</span>' in root
    assert requests.get(f"{url}/data/projects/PUB/resources/R/files/f.txt", timeout=10).content == b"x"
    assert requests.get(f"{url}/data/projects/PROT", timeout=10).status_code == 404
    assert requests.get(f"{url}/data/projects/PUB/subjects/S1", timeout=10).status_code == 200
    assert requests.put(f"{url}/data/projects/PUB/subjects/S9", timeout=10).status_code == 403
    bad = requests.get(f"{url}/data/projects", auth=("alice", "wrong"), timeout=10)
    assert bad.status_code == 401  # wrong credentials are refused, never turned into a guest


def test_an_idle_session_expires_into_a_guest_view(site: EmulatorServer) -> None:
    """The trap of issue 12: after the idle timeout the cookie alone silently becomes the guest."""
    requests.put(f"{site.url}/data/projects/PRIV/users/Members/alice", auth=("admin", "admin"), timeout=10)
    with requests.Session() as http:
        session_id = http.post(f"{site.url}/data/JSESSION", auth=("alice", "a-pw"), timeout=10).text
        assert http.cookies["JSESSIONID"] == session_id
        assert projects_with(http, site.url) == {"PUB", "PROT", "PRIV"}
        time.sleep(0.5)
        assert projects_with(http, site.url) == {"PUB", "PROT", "PRIV"}  # each use renews the session
        time.sleep(1.3)
        assert projects_with(http, site.url) == {"PUB"}  # dead cookie: guest, not 401
        assert requests.get(f"{site.url}/data/auth", cookies={"JSESSIONID": session_id},
                            timeout=10).text == "User 'guest' is logged in"
        assert projects_with(http, site.url, auth=("alice", "a-pw")) == {"PUB", "PROT", "PRIV"}  # Basic wins


def projects_with(http: requests.Session, url: str, auth: tuple[str, str] | None = None) -> set[str]:
    response = http.get(f"{url}/data/projects", auth=auth, timeout=10)
    assert response.status_code == 200
    return {row["ID"] for row in response.json()["ResultSet"]["Result"]}


def test_without_guests_an_expired_session_is_401(tmp_path) -> None:  # type: ignore[no-untyped-def]
    with EmulatorServer(tmp_path / "d", users=USERS, session_timeout=0.5) as server:
        with requests.Session() as http:
            http.post(f"{server.url}/data/JSESSION", auth=("alice", "a-pw"), timeout=10)
            assert http.get(f"{server.url}/data/projects", timeout=10).status_code == 200
            time.sleep(0.8)
            refused = http.get(f"{server.url}/data/projects", timeout=10)
            assert refused.status_code == 401 and refused.headers["WWW-Authenticate"].startswith("Basic realm=")


def test_refusals_are_springs_401_and_restlet_401_brings_back_the_guard_page(tmp_path) -> None:  # type: ignore[no-untyped-def]
    with EmulatorServer(tmp_path / "d") as server:
        for auth in (None, ("admin", "wrong")):
            refused = requests.get(f"{server.url}/data/projects", auth=auth, timeout=10)
            assert refused.status_code == 401
            assert refused.headers["WWW-Authenticate"] == 'Basic realm="XNAT"'
            assert refused.text.startswith("<!doctype html>") and "HTTP Status 401" in refused.text
        assert requests.get(f"{server.url}/data/projects", auth=("admin", "admin"), timeout=10).status_code == 200
    with EmulatorServer(tmp_path / "e", restlet_401=True) as server:
        refused = requests.get(f"{server.url}/data/projects", timeout=10)
        assert refused.status_code == 401 and refused.headers["WWW-Authenticate"] == REALM
        assert "The request requires user authentication" in refused.text


def test_command_line_switches(tmp_path) -> None:  # type: ignore[no-untyped-def]
    process = subprocess.Popen([sys.executable, "-m", "xnatfs.emulator", "--port", "0", "--data", str(tmp_path),
                                "--sample", "--allow-guest", "--session-timeout", "60", "--strict-xnat",
                                "--user", "dora:pw"], stdout=subprocess.PIPE, text=True)
    try:
        line = process.stdout.readline()  # type: ignore[union-attr]
        url = line.rsplit(" ", 1)[-1].strip()
        assert line.startswith("XNAT emulator ready at http://")
        assert projects(url, None) == {"DEMO", "STUDY2"}  # the sample projects are public
        assert projects(url, ("dora", "pw")) == {"DEMO", "STUDY2"}
        wrong = requests.get(f"{url}/data/projects", auth=("dora", "x"), timeout=10)
        assert wrong.status_code == 401 and wrong.headers["WWW-Authenticate"] == 'Basic realm="XNAT"'
        listing = requests.get(f"{url}/data/projects", timeout=10)
        assert listing.headers["Accept-Ranges"] == "bytes"  # Restlet's, on every answer
    finally:
        process.terminate()
        process.wait(timeout=10)
