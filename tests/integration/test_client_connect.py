"""connect(): login once, classes from the server's schemas, credentials sources, logout, secrets."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
import requests

import xnatfs
from xnatfs.emulator.server import EmulatorServer
from xnatfs.errors import AuthenticationError, InsecureNetrcError
from xnatfs.model.behaviours import ExperimentBase, ImageSessionBase

pytestmark = pytest.mark.integration


def test_connect_logs_in_once_and_builds_classes_from_the_schemas(emulator: EmulatorServer) -> None:
    emulator.faults.reset_counts()
    with xnatfs.connect(emulator.url, "admin", "admin") as connection:
        counts = emulator.faults.counts()["by_route"]
        assert counts["POST /data/JSESSION"] == 1
        assert connection.version and connection.version.startswith("1.")
        mr = connection.classes.MrSessionData
        assert mr.__xsi_type__ == "xnat:mrSessionData"
        assert issubclass(mr, ImageSessionBase) and issubclass(mr, ExperimentBase)
        assert "scanner_manufacturer" in mr.__fields__
        token = connection.session.jsession
        assert requests.get(emulator.url + "/data/projects", cookies={"JSESSIONID": token}, timeout=5).ok
    assert emulator.faults.counts()["by_route"]["DELETE /data/JSESSION"] == 1
    after = requests.get(emulator.url + "/data/projects", cookies={"JSESSIONID": token}, timeout=5)
    assert after.status_code == 401  # logged out: the server session is gone


def test_two_connections_never_share_classes(emulator: EmulatorServer) -> None:
    with xnatfs.connect(emulator.url, "admin", "admin") as one, xnatfs.connect(emulator.url, "admin", "admin") as two:
        assert one.classes.MrSessionData is not two.classes.MrSessionData
        assert type(one.projects["DEMO"]) is one.classes.ProjectData


def test_netrc_file_at_0600_is_used(emulator: EmulatorServer, tmp_path: Path) -> None:
    netrc = tmp_path / "netrc"
    netrc.write_text(f"machine 127.0.0.1:{emulator.port} login alice password alice-secret\n")
    netrc.chmod(0o600)
    with xnatfs.connect(emulator.url, netrc_file=netrc) as connection:
        assert connection.user == "alice"
        assert "DEMO" in connection.projects.keys()


def test_netrc_readable_by_others_is_refused(emulator: EmulatorServer, tmp_path: Path) -> None:
    netrc = tmp_path / "netrc"
    netrc.write_text("machine 127.0.0.1 login alice password alice-secret\n")
    netrc.chmod(0o644)
    emulator.faults.reset_counts()
    with pytest.raises(InsecureNetrcError) as info:
        xnatfs.connect(emulator.url, netrc_file=netrc)
    assert str(netrc) in str(info.value) and "chmod 600" in str(info.value)
    assert emulator.faults.counts()["total"] == 0  # refused before any request


def test_wrong_password_is_an_authentication_error_without_the_password(emulator: EmulatorServer) -> None:
    with pytest.raises(AuthenticationError) as info:
        xnatfs.connect(emulator.url, "alice", "not-alices-password")
    assert info.value.errno == 13
    assert "not-alices-password" not in str(info.value) and "alice" in str(info.value)


def test_anonymous_access_is_refused_with_a_hint(emulator: EmulatorServer, tmp_path: Path,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.delenv("NETRC", raising=False)
    with pytest.raises(AuthenticationError) as info:
        with xnatfs.connect(emulator.url) as connection:
            connection.projects.keys()
    assert "netrc" in str(info.value)


def test_reused_jsession_works_and_is_not_logged_out(emulator: EmulatorServer) -> None:
    with xnatfs.connect(emulator.url, "admin", "admin") as owner:
        token = owner.session.jsession
        with xnatfs.connect(emulator.url, jsession=token) as guest:
            assert "DEMO" in guest.projects.keys()
        assert "STUDY2" in owner.projects.refresh().keys()  # still logged in


def test_secrets_stay_out_of_logs_reprs_and_errors(emulator: EmulatorServer, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.DEBUG):
        with xnatfs.connect(emulator.url, "alice", "alice-secret") as connection:
            token = connection.session.jsession
            texts = [repr(connection), repr(connection.session), repr(connection.projects)]
            with pytest.raises(xnatfs.NotFound) as info:
                connection.get("/data/projects/NO_SUCH_PROJECT")
            texts.append(str(info.value))
            connection.projects["DEMO"].subjects.keys()
    everything = caplog.text + "".join(texts)
    assert "alice-secret" not in everything
    assert token and token not in everything
