"""Replays of answers recorded from real XNAT servers, through the library and the mount's catalog.

The emulator shares our assumptions; these rows do not. Each file in ``tests/data/recorded_xnat/``
names where its rows were recorded (public test code of other XNAT clients that kept the answers of
their sites). What they carry that the emulator does not write: subject listings without a
``project`` column, extra columns (``insert_user``, ``xnat:subjectassessordata/id``,
``xnat_imagescandata_id``), and times with 2, 3 or 6 fraction digits and no zone. A small HTTP server
on 127.0.0.1 answers the recorded rows at the paths the client asks for; everything else it answers
with a 404, so a request the client should not need fails the test.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pytest

import xnatfs
from xnatfs.model.connect import Connection

from hostile import HostileServer, resultset, xnat_routes

pytestmark = pytest.mark.integration

RECORDED = Path(__file__).parent.parent / "data" / "recorded_xnat"
XNAT_XSD = Path(xnatfs.__file__).parent / "emulator" / "schemas" / "xnat" / "xnat.xsd"
PASSWORD = "replay-pa55"


def recorded(name: str) -> dict[str, Any]:
    data = json.loads((RECORDED / name).read_text())
    assert data["source"].startswith("github.com/")  # every recording names its source
    return data


def serve(routes: dict[str, Any], project: str) -> HostileServer:
    """A server with login, the real XNAT schema, a one-project listing and ``routes`` (path → body)."""
    server = HostileServer(xnat_routes("admin", PASSWORD))
    server.route("GET", "/xapi/schemas", lambda ex: ex.reply(200, ["xnat"]))
    server.route("GET", "/xapi/schemas/xnat",
                 lambda ex: ex.reply(200, XNAT_XSD.read_bytes(), {"Content-Type": "text/xml"}))
    server.route("GET", "/data/projects", lambda ex: ex.reply(200, resultset(
        [{"ID": project, "name": project, "URI": f"/data/projects/{project}"}])))
    for path, body in routes.items():
        server.route("GET", path, lambda ex, body=body: ex.reply(200, body))
    return server


@pytest.fixture
def ucl() -> Iterator[Connection]:
    rows = recorded("ucl_mirsg_xmigrate.json")
    with serve({"/data/projects/project_1/subjects": rows["subjects"],
                "/data/projects/project_1/experiments": rows["experiments"]}, "project_1") as server:
        with xnatfs.connect(server.url, "admin", PASSWORD, timeout=5) as connection:
            yield connection


@pytest.fixture
def mcw() -> Iterator[Connection]:
    rows = recorded("mcw_meierlab_cirxnat.json")
    with serve({"/data/projects/Sandbox/subjects": rows["subjects"],
                "/data/projects/Sandbox/subjects/DEVX_S02749/experiments": rows["experiments"],
                "/data/experiments/DEVX_E07019/scans": rows["scans"]}, "Sandbox") as server:
        with xnatfs.connect(server.url, "admin", PASSWORD, timeout=5) as connection:
            yield connection


def utc(text: str) -> float:
    return datetime.fromisoformat(text).replace(tzinfo=timezone.utc).timestamp()


def test_subjects_listed_without_a_project_column_belong_to_the_browsed_project(ucl: Connection) -> None:
    subjects = ucl.projects["project_1"].subjects
    assert sorted(subjects.keys()) == ["UCL_TEST_XNAT_S00033", "UCL_TEST_XNAT_S00035"]
    by_label = subjects["0522c0001"]
    assert (by_label.id, by_label.label) == ("UCL_TEST_XNAT_S00035", "0522c0001")
    records = ucl.catalog.subjects(ucl.catalog.projects()[0])
    assert {r.label: r.project for r in records} == {"0522c0072": "project_1", "0522c0001": "project_1"}


def test_listing_times_with_six_fraction_digits_and_no_zone(ucl: Connection) -> None:
    # the project document is not recorded (404): no zone is learnt, so listing times read as UTC
    records = {r.label: r for r in ucl.catalog.subjects(ucl.catalog.projects()[0])}
    assert records["0522c0072"].mtime == pytest.approx(utc("2026-02-02 14:54:44.225298"))
    assert records["0522c0001"].mtime == pytest.approx(utc("2024-07-30 10:15:27.184697"))


def test_project_experiments_of_several_types_with_two_fraction_digits(ucl: Connection) -> None:
    experiments = ucl.projects["project_1"].experiments
    ct, pet = experiments["0522c0072"], experiments["0522c0013"]
    assert (type(ct).__name__, ct.id) == ("CtSessionData", "UCL_TEST_XNAT_E00240")
    assert (type(pet).__name__, pet.id) == ("PetSessionData", "UCL_TEST_XNAT_E00238")
    assert experiments["UCL_TEST_XNAT_E00238"] is not None


def test_a_real_site_walk_subject_session_scan(mcw: Connection) -> None:
    subject = mcw.projects["Sandbox"].subjects["25A"]
    session = subject.experiments["06_121720"]
    assert (type(session).__name__, session.id) == ("MrSessionData", "DEVX_E07019")
    assert str(session.date) == "2020-12-17"
    scan = session.scans["1"]
    assert type(scan).__name__ == "MrScanData"
    assert (scan.type, scan.series_description, scan.quality) == ("3 Plane Localizer", "3 Plane Localizer",
                                                                  "usable")


def test_the_mounts_catalog_reads_the_real_rows(mcw: Connection) -> None:
    catalog = mcw.catalog
    (subject,) = catalog.subjects(catalog.projects()[0])
    assert (subject.id, subject.label, subject.project) == ("DEVX_S02749", "25A", "Sandbox")
    assert subject.mtime == pytest.approx(utc("2021-03-18 11:36:15.236"))
    (session,) = catalog.experiments(subject)
    assert (session.id, session.label, session.xsi_type) == ("DEVX_E07019", "06_121720", "xnat:mrSessionData")
    assert session.mtime == pytest.approx(utc("2021-03-18 11:33:11.835"))
