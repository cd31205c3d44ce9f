"""Credentials: explicit > netrc > anonymous; insecure netrc refused; the password never shows."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from xnatfs.errors import ConfigError, InsecureNetrcError, MissingCredentialsError
from xnatfs.transport.auth import Credentials, netrc_host_keys, resolve_credentials

pytestmark = pytest.mark.unit

URL = "https://xnat.example.org:8443/xnat"


def write_netrc(path: Path, text: str, mode: int = 0o600) -> Path:
    path.write_text(text)
    path.chmod(mode)
    return path


@pytest.fixture(autouse=True)
def isolated_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.delenv("NETRC", raising=False)
    return home


def test_explicit_credentials_win_over_netrc(isolated_home: Path) -> None:
    write_netrc(isolated_home / ".netrc", "machine xnat.example.org login netuser password netpw\n")
    creds = resolve_credentials(URL, "alice", "pw1")
    assert (creds.user, creds.password, creds.source) == ("alice", "pw1", "explicit")


def test_default_netrc_is_used_with_host_and_port_key_first(isolated_home: Path) -> None:
    write_netrc(isolated_home / ".netrc",
                "machine xnat.example.org login plain password p1\n"
                "machine xnat.example.org:8443 login ported password p2\n")
    creds = resolve_credentials(URL)
    assert (creds.user, creds.password) == ("ported", "p2")
    assert netrc_host_keys(URL) == ["xnat.example.org:8443", "xnat.example.org"]


def test_netrc_host_without_port_matches(isolated_home: Path) -> None:
    write_netrc(isolated_home / ".netrc", "machine xnat.example.org login plain password p1\n")
    assert resolve_credentials(URL).user == "plain"


def test_no_netrc_and_no_user_is_anonymous() -> None:
    assert resolve_credentials(URL) is None


def test_default_netrc_without_entry_is_anonymous(isolated_home: Path) -> None:
    write_netrc(isolated_home / ".netrc", "machine other.host login x password y\n")
    assert resolve_credentials(URL) is None


@pytest.mark.parametrize("mode", [0o644, 0o640, 0o604, 0o660])
def test_netrc_readable_by_others_is_refused_with_the_fix(isolated_home: Path, mode: int) -> None:
    path = write_netrc(isolated_home / ".netrc", "machine xnat.example.org login u password secretpw\n", mode)
    with pytest.raises(InsecureNetrcError) as info:
        resolve_credentials(URL)
    message = str(info.value)
    assert str(path) in message and "chmod 600" in message
    assert "secretpw" not in message


def test_netrc_at_0600_is_accepted(tmp_path: Path) -> None:
    path = write_netrc(tmp_path / "my-netrc", "machine xnat.example.org login u password pw\n", 0o600)
    assert resolve_credentials(URL, netrc_file=path).user == "u"


def test_named_netrc_without_entry_is_a_clear_error(tmp_path: Path) -> None:
    path = write_netrc(tmp_path / "n", "machine elsewhere login u password pw\n")
    with pytest.raises(MissingCredentialsError) as info:
        resolve_credentials(URL, netrc_file=path)
    assert str(path) in str(info.value) and "xnat.example.org" in str(info.value)


def test_netrc_env_variable_names_the_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = write_netrc(tmp_path / "envnetrc", "machine xnat.example.org login envuser password pw\n")
    monkeypatch.setenv("NETRC", str(path))
    assert resolve_credentials(URL).user == "envuser"


def test_missing_named_netrc_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(MissingCredentialsError):
        resolve_credentials(URL, netrc_file=tmp_path / "absent")


def test_user_without_password_takes_the_matching_netrc_entry(isolated_home: Path) -> None:
    write_netrc(isolated_home / ".netrc", "machine xnat.example.org login bob password bobpw\n")
    assert resolve_credentials(URL, "bob").password == "bobpw"
    with pytest.raises(MissingCredentialsError):
        resolve_credentials(URL, "carol")


def test_netrc_parse_error_does_not_quote_the_file(tmp_path: Path) -> None:
    path = write_netrc(tmp_path / "bad", "machine xnat.example.org login u password pw-in-file\nbogus token\n")
    with pytest.raises(ConfigError) as info:
        resolve_credentials(URL, netrc_file=path)
    assert str(path) in str(info.value) and "pw-in-file" not in str(info.value)


def test_password_never_in_repr_or_str_or_logs(caplog: pytest.LogCaptureFixture, isolated_home: Path) -> None:
    creds = Credentials("alice", "hunter2-secret")
    assert "hunter2" not in repr(creds) and "hunter2" not in str(creds) and "alice" in repr(creds)
    assert "hunter2" not in f"{creds}" and "hunter2" not in repr([creds])
    write_netrc(isolated_home / ".netrc", "machine xnat.example.org login u password hunter2-secret\n")
    with caplog.at_level(logging.DEBUG):
        found = resolve_credentials(URL)
    assert found.password == "hunter2-secret"
    assert "hunter2" not in caplog.text
