"""Authentication, site information, schemas and the test-only control routes, over real HTTP."""

from __future__ import annotations

import subprocess
import sys
import time

import pytest
import requests
from lxml import etree

from xnatfs.emulator.server import EmulatorServer

pytestmark = pytest.mark.emulator


def test_unauthenticated_request_gets_401_with_basic_challenge(emulator: EmulatorServer) -> None:
    response = requests.get(f"{emulator.url}/data/projects", timeout=10)
    assert response.status_code == 401
    # XNAT 1.8's Spring layer: realm = the site ID, Tomcat's error page
    assert response.headers["WWW-Authenticate"] == 'Basic realm="XNAT"'
    assert response.text.startswith("<!doctype html>") and "HTTP Status 401" in response.text


def test_wrong_password_is_refused(emulator: EmulatorServer) -> None:
    response = requests.get(f"{emulator.url}/data/projects", auth=("admin", "nope"), timeout=10)
    assert response.status_code == 401


def test_jsession_login_cookie_and_logout(emulator: EmulatorServer) -> None:
    with requests.Session() as s:
        login = s.post(f"{emulator.url}/data/JSESSION", auth=("admin", "admin"), timeout=10)
        assert login.status_code == 200
        session_id = login.text
        assert len(session_id) == 32 and session_id == session_id.upper()
        assert s.cookies["JSESSIONID"] == session_id
        # the cookie alone now authenticates
        again = s.get(f"{emulator.url}/data/JSESSION", timeout=10)
        assert again.status_code == 200 and again.text == session_id
        assert s.get(f"{emulator.url}/data/auth", timeout=10).text == "User 'admin' is logged in"
        assert s.delete(f"{emulator.url}/data/JSESSION", timeout=10).status_code == 200
        assert s.get(f"{emulator.url}/data/auth", timeout=10).status_code == 401


def test_services_auth_form_login(emulator: EmulatorServer) -> None:
    with requests.Session() as s:
        ok = s.put(f"{emulator.url}/data/services/auth", data={"username": "alice", "password": "alice-secret"},
                   timeout=10)
        assert ok.status_code == 200
        assert s.cookies["JSESSIONID"] == ok.text
        assert s.get(f"{emulator.url}/data/auth", timeout=10).text == "User 'alice' is logged in"
        bad = requests.put(f"{emulator.url}/data/services/auth", data={"username": "alice", "password": "x"},
                           timeout=10)
        assert bad.status_code == 401
        assert "<h3>Authentication failed.</h3>" in bad.text


def test_expired_sessions_need_a_new_login(emulator: EmulatorServer, http: requests.Session) -> None:
    with requests.Session() as s:
        s.post(f"{emulator.url}/data/JSESSION", auth=("alice", "alice-secret"), timeout=10)
        assert s.get(f"{emulator.url}/data/auth", timeout=10).status_code == 200
        assert http.post(f"{emulator.url}/emulator/sessions/expire", timeout=10).status_code == 200
        assert s.get(f"{emulator.url}/data/auth", timeout=10).status_code == 401


def test_version_is_404_and_build_info_is_public(emulator: EmulatorServer, http: requests.Session) -> None:
    assert http.get(f"{emulator.url}/data/version", timeout=10).status_code == 404
    info = requests.get(f"{emulator.url}/xapi/siteConfig/buildInfo", timeout=10)
    assert info.status_code == 200
    assert info.json()["version"].startswith("1.8.")
    assert all(isinstance(v, str) for v in info.json().values())


def test_schemas_list_and_documents(emulator: EmulatorServer, http: requests.Session) -> None:
    names = http.get(f"{emulator.url}/xapi/schemas", timeout=10).json()
    assert {"xnat", "xdat", "catalog", "security", "birn/birnprov"} <= set(names)
    for name in names:
        body = http.get(f"{emulator.url}/xapi/schemas/{name}", timeout=10)
        assert body.status_code == 200
        root = etree.fromstring(body.content, etree.XMLParser(resolve_entities=False, no_network=True))
        assert root.tag == "{http://www.w3.org/2001/XMLSchema}schema"
    xdat = http.get(f"{emulator.url}/xapi/schemas/xdat", timeout=10).text
    assert 'name="LONGVARCHAR"' in xdat and 'name="jsonb"' in xdat
    assert http.get(f"{emulator.url}/schemas/xnat/xnat.xsd", timeout=10).status_code == 200
    assert http.get(f"{emulator.url}/xapi/schemas/nope", timeout=10).status_code == 404
    assert http.get(f"{emulator.url}/xapi/schemas/..%2F..%2Fetc", timeout=10).status_code == 404


def test_search_elements(emulator: EmulatorServer, http: requests.Session) -> None:
    body = http.get(f"{emulator.url}/data/search/elements", params={"format": "json"}, timeout=10).json()
    rows = body["ResultSet"]["Result"]
    mr = next(r for r in rows if r["ELEMENT_NAME"] == "xnat:mrSessionData")
    assert mr["SINGULAR"] == "MR Session" and mr["SECURED"] == "true"
    assert int(mr["COUNT"]) >= 1
    assert all(isinstance(v, str) for r in rows for v in r.values())
    assert body["ResultSet"]["title"] == "Data-Types"


def test_root_page_shows_who_is_logged_in(emulator: EmulatorServer, http: requests.Session) -> None:
    guest = requests.get(f"{emulator.url}/", timeout=10)
    assert guest.status_code == 200 and "Guest" in guest.text
    assert ">admin</a>" in http.get(f"{emulator.url}/", timeout=10).text


def test_request_counter_and_faults(fresh_emulator: EmulatorServer, fresh_http: requests.Session) -> None:
    url = fresh_emulator.url
    fresh_http.delete(f"{url}/emulator/requests", timeout=10)
    for _ in range(3):
        fresh_http.get(f"{url}/data/auth", timeout=10)
    counts = fresh_http.get(f"{url}/emulator/requests", timeout=10).json()
    assert counts["total"] == 3
    assert counts["by_route"]["GET /data/auth"] == 3
    assert fresh_http.put(f"{url}/emulator/faults", json={"fail_rate": 1.0}, timeout=10).json()["fail_rate"] == 1.0
    failed = fresh_http.get(f"{url}/data/auth", timeout=10)
    assert failed.status_code == 503 and failed.text.startswith("<html>")
    fresh_http.put(f"{url}/emulator/faults", params={"fail_rate": "0", "latency_ms": "200"}, timeout=10)
    start = time.monotonic()
    assert fresh_http.get(f"{url}/data/auth", timeout=10).status_code == 200
    assert time.monotonic() - start >= 0.2
    assert fresh_http.put(f"{url}/emulator/faults", json={"bogus": 1}, timeout=10).status_code == 400
    # control routes are for administrators only
    assert requests.get(f"{url}/emulator/requests", timeout=10).status_code == 401


def test_bandwidth_cap_limits_body_rate(fresh_emulator: EmulatorServer, fresh_http: requests.Session) -> None:
    url = fresh_emulator.url
    fresh_http.put(f"{url}/emulator/faults", json={"bandwidth_mibps": 1}, timeout=10)
    # the schema is ~180 KB: at 1 MiB/s it takes well over 0.1 s (unlimited: a few ms)
    start = time.monotonic()
    body = fresh_http.get(f"{url}/xapi/schemas/xnat", timeout=10).content
    elapsed = time.monotonic() - start
    assert len(body) > 150_000
    assert elapsed >= 0.8 * (len(body) - 64 * 1024) / (1024 * 1024)


def test_command_line_prints_ready_line_and_stops_on_sigterm(tmp_path) -> None:
    proc = subprocess.Popen([sys.executable, "-m", "xnatfs.emulator", "--port", "0", "--data", str(tmp_path),
                             "--user", "bob:pw"], stdout=subprocess.PIPE, text=True)
    try:
        line = proc.stdout.readline().strip()
        assert line.startswith("XNAT emulator ready at http://127.0.0.1:")
        url = line.rsplit(" ", 1)[1]
        assert int(url.rsplit(":", 1)[1]) > 0
        assert requests.get(f"{url}/data/auth", auth=("bob", "pw"), timeout=10).text == "User 'bob' is logged in"
    finally:
        proc.terminate()
        assert proc.wait(timeout=10) == 0
