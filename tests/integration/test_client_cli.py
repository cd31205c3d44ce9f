"""``xnatfs import`` and ``xnatfs prearchive`` run in-process against an emulator: output and exit codes."""

from __future__ import annotations

import io
from collections.abc import Callable
from pathlib import Path

import pytest

import xnatfs
from xnatfs import commands
from xnatfs.cli import main
from xnatfs.emulator.server import EmulatorServer
from xnatfs.model.connect import Connection

pytestmark = pytest.mark.integration

MakeZip = Callable[..., Path]
Capture = pytest.CaptureFixture[str]


@pytest.fixture
def server(fresh_emulator: EmulatorServer, fresh_xnat: Connection, monkeypatch: pytest.MonkeyPatch) -> EmulatorServer:
    fresh_xnat.projects.create("CLI")
    fresh_xnat.projects.create("CLI2")
    monkeypatch.setenv(commands.PASSWORD_ENV, "admin")
    return fresh_emulator


def test_import_prints_the_session_uri_and_shows_progress(server: EmulatorServer, tmp_path: Path, capsys: Capture,
                                                           make_dicom_zip: MakeZip) -> None:
    archive = make_dicom_zip(tmp_path / "x.zip", session="CLI_SESS")
    code = main(["import", str(archive), "--project", "CLI", "--user", "admin", "--progress", server.url])
    out, err = capsys.readouterr()
    assert code == 0, err
    assert out.strip().startswith("/data/prearchive/projects/CLI/") and out.strip().endswith("/CLI_SESS")
    assert "uploading x.zip" in err and "(100%)" in err
    assert "admin" not in out


def test_import_to_the_archive(server: EmulatorServer, tmp_path: Path, capsys: Capture,
                               make_dicom_zip: MakeZip) -> None:
    archive = make_dicom_zip(tmp_path / "y.zip", session="ARCH")
    code = main(["import", str(archive), "-p", "CLI", "-s", "SUBJ", "-e", "ARCH_E", "--destination", "archive",
                 "-u", "admin", server.url])
    out, err = capsys.readouterr()
    assert code == 0, err
    assert out.strip().startswith("/data/experiments/") and err == ""


def test_prearchive_list_archive_move_delete(server: EmulatorServer, tmp_path: Path, capsys: Capture,
                                             make_dicom_zip: MakeZip) -> None:
    for name in ("P_ONE", "P_TWO", "P_THREE"):
        archive = make_dicom_zip(tmp_path / f"{name}.zip", session=name)
        assert main(["import", str(archive), "-p", "CLI", "-u", "admin", server.url]) == 0
    capsys.readouterr()
    assert main(["prearchive", "list", server.url, "-u", "admin"]) == 0
    listing = capsys.readouterr().out.splitlines()
    assert listing[0].split()[:5] == ["PROJECT", "TIMESTAMP", "SESSION", "SUBJECT", "STATUS"]
    assert sorted(line.split()[2] for line in listing[1:]) == ["P_ONE", "P_THREE", "P_TWO"]

    assert main(["prearchive", "archive", server.url, "P_ONE", "-u", "admin"]) == 0
    assert capsys.readouterr().out.startswith("/data/experiments/")
    assert main(["prearchive", "move", server.url, "P_TWO", "--to", "CLI2", "-u", "admin"]) == 0
    assert "/prearchive/projects/CLI2/" in capsys.readouterr().out
    uri = [line.split()[-1] for line in listing[1:] if "P_THREE" in line][0]
    assert main(["prearchive", "delete", server.url, uri, "-u", "admin"]) == 0
    assert capsys.readouterr().out.startswith("deleted ")
    assert main(["prearchive", "list", server.url, "--project", "CLI", "-u", "admin"]) == 0
    assert len(capsys.readouterr().out.splitlines()) == 1  # only the header is left


def test_errors_and_exit_codes(server: EmulatorServer, tmp_path: Path, capsys: Capture,
                               monkeypatch: pytest.MonkeyPatch) -> None:
    assert main(["prearchive", "delete", server.url, "NO_SUCH_SESSION", "-u", "admin"]) == 1
    assert "NO_SUCH_SESSION" in capsys.readouterr().err
    assert main(["import", str(tmp_path / "missing.zip"), "-p", "CLI", "-u", "admin", server.url]) == 2
    assert "No such file" in capsys.readouterr().err
    broken = tmp_path / "broken.zip"
    broken.write_bytes(b"PK\x03\x04 truncated")
    assert main(["import", str(broken), "-p", "CLI", "-u", "admin", server.url]) == 1
    assert "broken.zip" in capsys.readouterr().err
    monkeypatch.setenv(commands.PASSWORD_ENV, "wrong-password")
    assert main(["prearchive", "list", server.url, "-u", "admin"]) == 1
    assert "wrong-password" not in capsys.readouterr().err
    assert main(["import", "--project"]) == 2
    netrc = tmp_path / "netrc"
    netrc.write_text("machine 127.0.0.1 login admin password admin\n")
    netrc.chmod(0o644)
    assert main(["prearchive", "list", server.url, "--netrc", str(netrc)]) == 2
    assert "chmod 600" in capsys.readouterr().err
    monkeypatch.setattr("sys.stdin", io.StringIO(""))
    monkeypatch.delenv(commands.PASSWORD_ENV)
    assert main(["prearchive", "list", server.url, "-u", "admin"]) == 2
    assert commands.PASSWORD_ENV in capsys.readouterr().err


def test_no_command_is_usage_on_stderr_and_exit_2_and_help_is_exit_0(capsys: Capture) -> None:
    assert main([]) == 2
    out, err = capsys.readouterr()
    assert out == "" and "usage: xnatfs COMMAND" in err and "mount" in err
    assert main(["--help"]) == 0
    assert "usage: xnatfs COMMAND" in capsys.readouterr().out


def test_the_emulators_help_names_its_default_port(capsys: Capture) -> None:
    with pytest.raises(SystemExit) as done:
        main(["emulator", "--help"])
    assert done.value.code == 0 and "default 8080" in capsys.readouterr().out


def test_credentials_come_from_the_same_sources_everywhere(server: EmulatorServer, tmp_path: Path, capsys: Capture,
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    """Library, commands and mount: --user with XNATFS_PASSWORD > netrc > a prompt > anonymous (issue 17)."""
    monkeypatch.setattr("sys.stdin", io.StringIO(""))
    with xnatfs.connect(server.url, user="admin") as xnat:  # the password from XNATFS_PASSWORD
        assert "CLI" in xnat.projects.keys()
    assert main(["prearchive", "list", server.url]) == 2  # a password with no user to go with it
    err = capsys.readouterr().err
    assert "no user name goes with it" in err and "--user" in err and "<html" not in err.lower()
    monkeypatch.delenv(commands.PASSWORD_ENV)
    netrc = tmp_path / "netrc"
    netrc.write_text("machine 127.0.0.1 login admin password admin\n")
    netrc.chmod(0o600)
    monkeypatch.setenv("NETRC", str(netrc))
    assert main(["prearchive", "list", server.url, "-u", "admin"]) == 0  # -u with the netrc entry, no prompt
    with xnatfs.connect(server.url, user="admin") as xnat:
        assert "CLI" in xnat.projects.keys()
