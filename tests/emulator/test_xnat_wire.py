"""XNAT's wire behaviour that clients must meet (issue 12): assessor/reconstruction ``in``/``out``
resources, FileList's path decoding, Restlet's Range handling and local-zone dates, over real HTTP
(and raw sockets where ``requests`` would normalise what is sent or received).
"""

from __future__ import annotations

import http.client
import os
import re
import subprocess
import sys
from collections.abc import Iterator

import pytest
import requests

from xnatfs.emulator.server import EmulatorServer

pytestmark = pytest.mark.emulator
ADMIN = ("admin", "admin")


@pytest.fixture
def xnat(tmp_path) -> Iterator[EmulatorServer]:  # type: ignore[no-untyped-def]
    """An emulator with every XNAT behaviour on (the compatibility switches flipped)."""
    server = EmulatorServer(tmp_path / "d", legacy_paths=False, http_range=False, restlet_401=False).start()
    http = requests.Session()
    http.auth = ADMIN
    assert http.put(f"{server.url}/data/projects/P", timeout=10).status_code == 200
    assert http.put(f"{server.url}/data/projects/P/subjects/S/experiments/E", params={"xsiType": "xnat:mrSessionData"},
                    timeout=10).status_code == 201
    yield server
    server.stop()


def raw_request(server: EmulatorServer, method: str, target: str, headers: dict | None = None,
                body: bytes | None = None) -> tuple[int, dict[str, str], bytes]:
    """Send ``target`` exactly as written (no re-encoding) and read the body up to the connection's end."""
    connection = http.client.HTTPConnection(server.host, server.port, timeout=10)
    connection.putrequest(method, target, skip_accept_encoding=True)
    for key, value in {"Authorization": "Basic YWRtaW46YWRtaW4=", **(headers or {})}.items():
        connection.putheader(key, value)
    if body is not None:
        connection.putheader("Content-Length", str(len(body)))
    connection.endheaders(body)
    response = connection.getresponse()
    try:
        data = response.read()
    except http.client.IncompleteRead as short:
        data = short.partial
    connection.close()
    return response.status, {k.lower(): v for k, v in response.getheaders()}, data


def test_in_and_out_resources_are_separate(xnat: EmulatorServer) -> None:
    base = f"{xnat.url}/data/projects/P/experiments/E"
    http = requests.Session()
    http.auth = ADMIN
    assert http.put(f"{base}/assessors/QC", params={"xsiType": "xnat:qcAssessmentData"}, timeout=10).status_code == 201
    assert http.put(f"{base}/reconstructions/R1", timeout=10).status_code == 200
    for owner in ("assessors/QC", "reconstructions/R1"):
        assert http.put(f"{base}/{owner}/in/resources/IN/files/in.txt", data=b"in", timeout=10).status_code == 200
        assert http.put(f"{base}/{owner}/out/resources/OUT/files/out.txt", data=b"out", timeout=10).status_code == 200
        in_names = [r["Name"] for r in http.get(f"{base}/{owner}/in/files", timeout=10).json()["ResultSet"]["Result"]]
        out_names = [r["Name"] for r in http.get(f"{base}/{owner}/out/files", timeout=10).json()["ResultSet"]["Result"]]
        assert (in_names, out_names) == (["in.txt"], ["out.txt"])
        # no side in the URL means "out" (XNATTemplate's default)
        assert [r["label"] for r in http.get(f"{base}/{owner}/resources", timeout=10).json()["ResultSet"]["Result"]] \
            == ["OUT"]
        assert http.get(f"{base}/{owner}/out/resources/IN/files/in.txt", timeout=10).status_code == 404
        assert http.get(f"{base}/{owner}/in/resources/IN/files/in.txt", timeout=10).content == b"in"
    everything = http.get(f"{base}/files", params={"all": "true"}, timeout=10).json()["ResultSet"]["Result"]
    assert sorted(r["Name"] for r in everything) == ["out.txt", "out.txt"]  # no "in" files, as XNAT
    assert all("/out/resources/" in r["URI"] for r in everything)
    document = http.get(f"{base}/assessors/QC", params={"format": "json"}, timeout=10).json()
    children = {c["field"]: [i["data_fields"]["label"] for i in c["items"]]
                for c in document["items"][0]["children"]}
    assert children["in/file"] == ["IN"] and children["out/file"] == ["OUT"]


def test_merged_in_out_switch_keeps_one_list(tmp_path) -> None:  # type: ignore[no-untyped-def]
    with EmulatorServer(tmp_path / "d", merged_in_out=True) as server, requests.Session() as http:
        http.auth = ADMIN
        base = f"{server.url}/data/projects/P/experiments/E"
        http.put(f"{server.url}/data/projects/P", timeout=10)
        http.put(f"{server.url}/data/projects/P/subjects/S/experiments/E", params={"xsiType": "xnat:mrSessionData"},
                 timeout=10)
        http.put(f"{base}/assessors/QC", params={"xsiType": "xnat:qcAssessmentData"}, timeout=10)
        assert http.put(f"{base}/assessors/QC/in/resources/IN/files/a.txt", data=b"a", timeout=10).status_code == 200
        listed = http.get(f"{base}/files", params={"all": "true"}, timeout=10).json()["ResultSet"]["Result"]
        assert [r["Name"] for r in listed] == ["a.txt"]
        assert http.get(f"{base}/assessors/QC/out/resources/IN/files/a.txt", timeout=10).content == b"a"


NAMES = ["a,b", "report(1).pdf", "x=y@z;w", "it's!$", "a+b", "with space"]


def test_file_paths_are_read_as_xnat_reads_them(xnat: EmulatorServer) -> None:
    base = "/data/projects/P/resources/R/files"
    for name in NAMES:  # uploaded with the characters as they are (only the space encoded, as %20)
        target = f"{base}/{name.replace(' ', '%20')}"
        assert raw_request(xnat, "PUT", target, body=name.encode())[0] == 200, name
    listed = requests.get(f"{xnat.url}{base}", auth=ADMIN, timeout=10).json()["ResultSet"]["Result"]
    assert sorted(r["Name"] for r in listed) == sorted(NAMES)
    assert raw_request(xnat, "GET", f"{base}/a,b")[2] == b"a,b"
    assert raw_request(xnat, "GET", f"{base}/a%2Cb")[0] == 404  # the Done-when of issue 12
    assert raw_request(xnat, "GET", f"{base}/report%281%29.pdf")[0] == 404
    assert raw_request(xnat, "GET", f"{base}/report(1).pdf")[2] == b"report(1).pdf"
    assert raw_request(xnat, "GET", f"{base}/a+b")[2] == b"a+b"  # no %20/%2B: "+" stays "+"
    assert raw_request(xnat, "GET", f"{base}/a%2Bb")[2] == b"a+b"  # %2B: URLDecoder runs
    assert raw_request(xnat, "GET", f"{base}/with%20space")[2] == b"with space"
    assert raw_request(xnat, "GET", f"{base}/with+space%20")[0] == 404  # decoded: "with space " (no such file)
    # an encoded name is stored as sent: what a client that encodes everything gets
    assert raw_request(xnat, "PUT", f"{base}/b%28c%29", body=b"q")[0] == 200
    assert "b%28c%29" in {r["Name"] for r in requests.get(f"{xnat.url}{base}", auth=ADMIN, timeout=10)
                          .json()["ResultSet"]["Result"]}


def test_legacy_paths_decode_everything(tmp_path) -> None:  # type: ignore[no-untyped-def]
    with EmulatorServer(tmp_path / "d", legacy_paths=True) as server, requests.Session() as http:
        http.auth = ADMIN
        http.put(f"{server.url}/data/projects/P", timeout=10)
        http.put(f"{server.url}/data/projects/P/resources/R/files/a%2Cb", data=b"1", timeout=10)
        got = http.get(f"{server.url}/data/projects/P/resources/R/files/a,b", timeout=10)
        assert got.status_code == 200 and got.content == b"1"  # the switch: the emulator's old behaviour


def test_restlet_range(xnat: EmulatorServer) -> None:
    base = "/data/projects/P/resources/R/files"
    data = bytes(range(100))
    assert raw_request(xnat, "PUT", f"{base}/d.bin", body=data)[0] == 200
    status, headers, body = raw_request(xnat, "GET", f"{base}/d.bin", {"Range": "bytes=10-19"})
    assert (status, headers["content-range"], headers["content-length"], body) == (206, "bytes 10-19/100", "10",
                                                                                  data[10:20])
    assert headers["accept-ranges"] == "bytes"
    # past the end: not clamped; Content-Length is the requested span, the body stops at the end
    status, headers, body = raw_request(xnat, "GET", f"{base}/d.bin", {"Range": "bytes=90-149"})
    assert (status, headers["content-range"], headers["content-length"]) == (206, "bytes 90-149/100", "60")
    assert body == data[90:]
    status, headers, body = raw_request(xnat, "GET", f"{base}/d.bin", {"Range": "bytes=95-"})
    assert (status, headers["content-range"], body) == (206, "bytes 95-99/100", data[95:])
    status, headers, body = raw_request(xnat, "GET", f"{base}/d.bin", {"Range": "bytes=-5"})
    assert (status, body) == (206, data[95:])
    assert raw_request(xnat, "GET", f"{base}/d.bin", {"Range": "bytes=0-1,5-6"})[0] == 501
    assert raw_request(xnat, "GET", f"{base}/d.bin", {"Range": "bytes=500-600"})[0] == 206  # never 416
    assert raw_request(xnat, "GET", f"{base}/d.bin", {"Range": "lines=1-2"})[2] == data  # other unit: ignored
    # a zip has no known size: an open range is a 500, a closed one is served
    zipped = f"{base}?format=zip"
    assert raw_request(xnat, "GET", zipped, {"Range": "bytes=10-"})[0] == 500
    whole = raw_request(xnat, "GET", zipped)[2]
    status, headers, body = raw_request(xnat, "GET", zipped, {"Range": "bytes=0-3"})
    assert whole[:4] == b"PK\x03\x04"
    assert (status, headers["content-range"], headers["content-length"], body) == (206, "bytes 0-3/*", "4", whole[:4])
    # every answer advertises ranges, listings included, and a listing can be ranged
    status, headers, body = raw_request(xnat, "GET", f"{base}?format=json", {"Range": "bytes=0-9"})
    assert status == 206 and body == b'{"ResultSet"'[:10]


def test_start_date_is_in_the_servers_zone(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """``meta.start_date`` is Java's Date.toString in the JVM's zone (here TZ=Australia/Sydney)."""
    env = dict(os.environ, TZ="Australia/Sydney")
    process = subprocess.Popen([sys.executable, "-m", "xnatfs.emulator", "--port", "0", "--data", str(tmp_path)],
                               stdout=subprocess.PIPE, text=True, env=env)
    try:
        url = process.stdout.readline().rsplit(" ", 1)[-1].strip()  # type: ignore[union-attr]
        http = requests.Session()
        http.auth = ADMIN
        http.put(f"{url}/data/projects/P", timeout=10)
        http.put(f"{url}/data/projects/P/subjects/S", timeout=10)
        item = http.get(f"{url}/data/projects/P/subjects/S", params={"format": "json"}, timeout=10).json()
        start = item["items"][0]["meta"]["start_date"]
        assert re.fullmatch(r"\w{3} \w{3} \d\d \d\d:\d\d:\d\d AE[DS]T \d{4}", start), start
        (row,) = http.get(f"{url}/data/projects/P/subjects", timeout=10).json()["ResultSet"]["Result"]
        assert re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d(\.\d{1,6})?", row["insert_date"])
        assert row["insert_date"][11:19] == start[11:19]  # the same local wall-clock time, no zone
    finally:
        process.terminate()
        process.wait(timeout=10)
