"""Sharing subjects and sessions into another project under per-project labels (issue 12), over HTTP.

XNAT (SubjectResource, SubjAssessmentResource): ``PUT …/projects/DEST?label=L`` shares; listings of
DEST include what was shared, under the DEST label, with ``project`` = the home project;
``/data/subjects/ID`` still names every session of the subject under its home label.
"""

from __future__ import annotations

from importlib import resources

import pytest
import requests
from lxml import etree

from xnatfs.emulator.server import EmulatorServer

pytestmark = pytest.mark.emulator


@pytest.fixture
def shared(fresh_emulator: EmulatorServer, fresh_http: requests.Session) -> dict[str, str]:
    """HOME with subject S1 (sessions E1, E2); DEST; S1 shared as D1 and only E1 shared, as DE1."""
    url = fresh_emulator.url
    for project in ("HOME", "DEST"):
        assert fresh_http.put(f"{url}/data/projects/{project}", timeout=10).status_code == 200
    ids = {}
    for label in ("E1", "E2"):
        created = fresh_http.put(f"{url}/data/projects/HOME/subjects/S1/experiments/{label}",
                                 params={"xsiType": "xnat:mrSessionData"}, timeout=10)
        ids[label] = created.text
    ids["S1"] = fresh_http.get(f"{url}/data/projects/HOME/subjects/S1", params={"format": "json"},
                               timeout=10).json()["items"][0]["data_fields"]["ID"]
    share = fresh_http.put(f"{url}/data/projects/HOME/subjects/S1/projects/DEST", params={"label": "D1"}, timeout=10)
    assert share.status_code == 200
    share = fresh_http.put(f"{url}/data/projects/HOME/experiments/E1/projects/DEST", params={"label": "DE1"},
                           timeout=10)
    assert share.status_code == 200
    return ids


def rows(http: requests.Session, url: str) -> list[dict]:
    response = http.get(url, params={"format": "json"}, timeout=10)
    assert response.status_code == 200, response.text
    return response.json()["ResultSet"]["Result"]


def test_destination_listings_show_shared_objects_under_their_labels(
        fresh_emulator: EmulatorServer, fresh_http: requests.Session, shared: dict[str, str]) -> None:
    url = fresh_emulator.url
    (subject,) = rows(fresh_http, f"{url}/data/projects/DEST/subjects")
    assert (subject["ID"], subject["label"], subject["project"]) == (shared["S1"], "D1", "HOME")
    (session,) = rows(fresh_http, f"{url}/data/projects/DEST/experiments")
    assert (session["ID"], session["label"], session["project"]) == (shared["E1"], "DE1", "HOME")
    only_shared = rows(fresh_http, f"{url}/data/projects/DEST/subjects/D1/experiments")
    assert [r["label"] for r in only_shared] == ["DE1"]  # E2 was never shared
    assert sorted(r["label"] for r in rows(fresh_http, f"{url}/data/projects/HOME/experiments")) == ["E1", "E2"]
    document = fresh_http.get(f"{url}/data/projects/DEST/subjects/D1", params={"format": "json"}, timeout=10).json()
    assert document["items"][0]["data_fields"]["ID"] == shared["S1"]
    assert fresh_http.get(f"{url}/data/projects/DEST/experiments/DE1", timeout=10).status_code == 200
    assert fresh_http.get(f"{url}/data/projects/DEST/experiments/E2", timeout=10).status_code == 404


def test_documents_carry_sharing_share_and_subjects_name_every_session(
        fresh_emulator: EmulatorServer, fresh_http: requests.Session, shared: dict[str, str]) -> None:
    url = fresh_emulator.url
    item = fresh_http.get(f"{url}/data/subjects/{shared['S1']}", params={"format": "json"}, timeout=10).json()
    children = {c["field"]: c["items"] for c in item["items"][0]["children"]}
    (share,) = children["sharing/share"]
    assert share["meta"]["xsi:type"] == "xnat:projectParticipant"
    assert share["data_fields"] == {"label": "D1", "project": "DEST", "subject_ID": shared["S1"]}
    # the trap: /data/subjects/ID lists every session, under home labels, shared or not
    assert sorted(e["data_fields"]["label"] for e in children["experiments/experiment"]) == ["E1", "E2"]
    xml = fresh_http.get(f"{url}/data/experiments/{shared['E1']}", params={"format": "xml"}, timeout=10).content
    root = etree.fromstring(xml)
    shares = root.findall("{http://nrg.wustl.edu/xnat}sharing/{http://nrg.wustl.edu/xnat}share")
    assert [(s.get("project"), s.get("label")) for s in shares] == [("DEST", "DE1")]
    path = resources.files("xnatfs.emulator") / "schemas" / "xnat" / "xnat.xsd"
    parser = etree.XMLParser(resolve_entities=False, no_network=True)
    etree.XMLSchema(etree.parse(str(path), parser)).assertValid(root)
    projects = rows(fresh_http, f"{url}/data/experiments/{shared['E1']}/projects")
    assert [(r["ID"], r["label"]) for r in projects] == [("HOME", "E1"), ("DEST", "DE1")]


def test_share_errors_relabel_and_unshare(fresh_emulator: EmulatorServer, fresh_http: requests.Session,
                                          shared: dict[str, str]) -> None:
    url = fresh_emulator.url
    again = fresh_http.put(f"{url}/data/projects/HOME/subjects/S1/projects/DEST", timeout=10)
    assert again.status_code == 409 and "Already assigned to project:DEST" in again.text
    home = fresh_http.put(f"{url}/data/projects/HOME/experiments/E2/projects/HOME", timeout=10)
    assert home.status_code == 409
    missing = fresh_http.put(f"{url}/data/projects/HOME/experiments/E2/projects/NOPE", timeout=10)
    assert missing.status_code == 404 and "Unable to identify project: NOPE" in missing.text
    taken = fresh_http.put(f"{url}/data/projects/HOME/experiments/E2/projects/DEST", params={"label": "DE1"},
                           timeout=10)
    assert taken.status_code == 409 and "Label already in use:DE1" in taken.text
    relabel = fresh_http.put(f"{url}/data/projects/HOME/experiments/E1/projects/DEST", params={"label": "NEW"},
                             timeout=10)
    assert relabel.status_code == 200
    assert [r["label"] for r in rows(fresh_http, f"{url}/data/projects/DEST/experiments")] == ["NEW"]
    # unsharing through the destination's own path removes the share, not the session
    assert fresh_http.delete(f"{url}/data/projects/DEST/experiments/NEW", timeout=10).status_code == 200
    assert rows(fresh_http, f"{url}/data/projects/DEST/experiments") == []
    assert fresh_http.get(f"{url}/data/experiments/{shared['E1']}", timeout=10).status_code == 200
    assert fresh_http.delete(f"{url}/data/projects/HOME/subjects/S1/projects/DEST", timeout=10).status_code == 200
    assert rows(fresh_http, f"{url}/data/projects/DEST/subjects") == []
    assert len(rows(fresh_http, f"{url}/data/projects/HOME/subjects")) == 1


def test_a_share_gives_read_access_through_the_destination(tmp_path) -> None:  # type: ignore[no-untyped-def]
    users = {"admin": "admin", "alice": "pw"}
    with EmulatorServer(tmp_path / "d", users=users) as server, requests.Session() as admin:
        admin.auth = ("admin", "admin")
        url = server.url
        for project in ("HOME", "DEST"):
            admin.put(f"{url}/data/projects/{project}", timeout=10)
            admin.put(f"{url}/data/projects/{project}/accessibility/private", timeout=10)
        admin.put(f"{url}/data/projects/HOME/subjects/S1", timeout=10)
        admin.put(f"{url}/data/projects/HOME/subjects/S1/projects/DEST", params={"label": "D1"}, timeout=10)
        admin.put(f"{url}/data/projects/DEST/users/Collaborators/alice", timeout=10)
        alice = ("alice", "pw")
        assert requests.get(f"{url}/data/projects/DEST/subjects/D1", auth=alice, timeout=10).status_code == 200
        assert requests.get(f"{url}/data/projects/HOME/subjects/S1", auth=alice, timeout=10).status_code == 404
        refused = requests.put(f"{url}/data/projects/DEST/subjects/D1/projects/HOME", auth=alice, timeout=10)
        assert refused.status_code == 404  # HOME is invisible to alice
