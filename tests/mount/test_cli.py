"""``xnatfs mount`` / ``xnatfs umount`` on the command line: clear failures, credentials, busy mount points."""

from __future__ import annotations

import os
import socket
import subprocess
from pathlib import Path

import pytest

from mounting import MOUNT_DEADLINE, MountFactory, unmount, xnatfs_command
from xnatfs import daemon
from xnatfs.daemon import options as mount_options
from xnatfs.emulator.server import EmulatorServer

pytestmark = pytest.mark.mount


def run_mount(*args: str, password: str | None = None, env_extra: dict | None = None) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k not in ("XNATFS_PASSWORD", "NETRC")}
    env["HOME"] = env_extra.pop("HOME") if env_extra and "HOME" in env_extra else env.get("HOME", "/root")
    if password is not None:
        env["XNATFS_PASSWORD"] = password
    env.update(env_extra or {})
    return subprocess.run(xnatfs_command("mount", *args), env=env, capture_output=True, text=True,
                          timeout=MOUNT_DEADLINE, stdin=subprocess.DEVNULL)


@pytest.fixture
def mountpoint(tmp_path: Path) -> Path:
    path = tmp_path / "mnt"
    path.mkdir()
    yield path
    unmount(path)


def test_wrong_password_fails_clearly_and_mounts_nothing(emulator: EmulatorServer, mountpoint: Path) -> None:
    result = run_mount(emulator.url, str(mountpoint), "--user", "admin", password="wrong")
    assert result.returncode == 1
    assert "Login failed" in result.stderr and "wrong" not in result.stderr
    assert not os.path.ismount(mountpoint)


def test_no_password_without_a_terminal_says_where_to_put_one(emulator: EmulatorServer, mountpoint: Path,
                                                              tmp_path: Path) -> None:
    result = run_mount(emulator.url, str(mountpoint), "--user", "admin", env_extra={"HOME": str(tmp_path)})
    assert result.returncode != 0
    assert "XNATFS_PASSWORD" in result.stderr and "netrc" in result.stderr
    assert not os.path.ismount(mountpoint)


def test_anonymous_mount_of_a_server_that_needs_a_login_fails_clearly(emulator: EmulatorServer,
                                                                      mountpoint: Path, tmp_path: Path) -> None:
    result = run_mount(emulator.url, str(mountpoint), env_extra={"HOME": str(tmp_path)})
    assert result.returncode == 1
    assert "login" in result.stderr.lower()


def _netrc(tmp_path: Path, emulator: EmulatorServer, mode: int) -> Path:
    path = tmp_path / "netrc"
    path.write_text("machine 127.0.0.1 login admin password admin\n")
    path.chmod(mode)
    return path


def test_an_unsafe_netrc_is_refused_with_the_fix(emulator: EmulatorServer, mountpoint: Path, tmp_path: Path) -> None:
    netrc = _netrc(tmp_path, emulator, 0o644)
    result = run_mount(emulator.url, str(mountpoint), "--netrc", str(netrc))
    assert result.returncode == 2
    assert f"chmod 600 {netrc}" in result.stderr and "admin" not in result.stderr.replace(str(tmp_path), "")
    assert not os.path.ismount(mountpoint)


def test_a_safe_netrc_mounts(emulator: EmulatorServer, mount_factory: MountFactory, tmp_path: Path) -> None:
    netrc = _netrc(tmp_path, emulator, 0o600)
    mounted = mount_factory(emulator, "--netrc", str(netrc), user=None, password=None)
    assert "DEMO" in os.listdir(mounted.path / "projects")


def test_missing_mount_point_fails_clearly(emulator: EmulatorServer, tmp_path: Path) -> None:
    result = run_mount(emulator.url, str(tmp_path / "absent"), "--user", "admin", password="admin")
    assert result.returncode == 1 and "does not exist" in result.stderr and "mkdir" in result.stderr


def test_a_busy_mount_point_is_refused(emulator: EmulatorServer, mount_factory: MountFactory) -> None:
    mounted = mount_factory(emulator)
    result = run_mount(emulator.url, str(mounted.path), "--user", "admin", password="admin")
    assert result.returncode == 1 and "busy" in result.stderr
    assert "DEMO" in os.listdir(mounted.path / "projects")


@pytest.mark.parametrize("url", ["ftp://example.org", "not a url", "https://user:secret@example.org"])
def test_bad_urls_are_usage_errors(url: str, mountpoint: Path) -> None:
    result = run_mount(url, str(mountpoint), "--user", "admin", password="admin")
    assert result.returncode == 2 and "URL" in result.stderr and "secret" not in result.stderr


def test_an_unreachable_server_fails_within_the_timeout(mountpoint: Path) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    result = run_mount(f"http://127.0.0.1:{port}", str(mountpoint), "--user", "admin", "--timeout", "2",
                       password="admin")
    assert result.returncode == 1 and result.stderr.strip()
    assert not os.path.ismount(mountpoint)


def test_refused_fuse_options_and_sizes() -> None:
    with pytest.raises(daemon.ConfigError, match="max_read"):
        daemon.parse_fuse_options(["allow_other,max_read=131072"])
    assert daemon.parse_fuse_options(["allow_other", "uid=1000"]) == {"allow_other": True, "uid": "1000"}
    assert daemon.parse_size("4G") == 4 << 30 and daemon.parse_size("500M") == 500 << 20
    assert daemon.parse_size("1024") == 1024


def test_missing_fuse_device_is_explained(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(mount_options, "FUSE_DEVICE", "/dev/no-such-fuse")
    with pytest.raises(daemon.MountError, match="apt-get install fuse3"):
        daemon.check_fuse_device()


def test_umount_unmounts_and_reports_what_is_not_mounted(emulator: EmulatorServer,
                                                         mount_factory: MountFactory, tmp_path: Path) -> None:
    mounted = mount_factory(emulator)
    result = subprocess.run(xnatfs_command("umount", str(mounted.path)), capture_output=True, text=True, timeout=30)
    assert result.returncode == 0, result.stderr
    assert not os.path.ismount(mounted.path)
    result = subprocess.run(xnatfs_command("umount", str(tmp_path)), capture_output=True, text=True, timeout=30)
    assert result.returncode == 1 and "not mounted" in result.stderr


def test_umount_of_a_busy_mount_explains_lazy(emulator: EmulatorServer, mount_factory: MountFactory) -> None:
    mounted = mount_factory(emulator)
    holder = subprocess.Popen(["sleep", "30"], cwd=mounted.path / "projects")
    try:
        result = subprocess.run(xnatfs_command("umount", str(mounted.path)), capture_output=True, text=True,
                                timeout=30)
        assert result.returncode == 1 and "--lazy" in result.stderr
        result = subprocess.run(xnatfs_command("umount", "--lazy", str(mounted.path)), capture_output=True,
                                text=True, timeout=30)
        assert result.returncode == 0 and not os.path.ismount(mounted.path)
    finally:
        holder.kill()
        holder.wait()


def test_a_non_empty_mount_point_is_refused_unless_asked(emulator: EmulatorServer, mountpoint: Path) -> None:
    """A mount hides what its folder holds: refused by default (as rclone does), allowed on request,
    and the user's file is untouched and back after the unmount."""
    mine = mountpoint / "notes.txt"
    mine.write_text("mine")
    refused = run_mount(emulator.url, str(mountpoint), "--user", "admin", password="admin")
    assert refused.returncode == 1 and "not empty" in refused.stderr and "--allow-non-empty" in refused.stderr
    assert not os.path.ismount(mountpoint)
    allowed = run_mount(emulator.url, str(mountpoint), "--user", "admin", "--allow-non-empty", password="admin")
    assert allowed.returncode == 0, allowed.stderr
    try:
        assert os.path.ismount(mountpoint) and "projects" in os.listdir(mountpoint)
    finally:
        unmount(mountpoint)
    assert mine.read_text() == "mine"


def test_mount_takes_u_for_user_like_every_command() -> None:
    args = mount_options.build_parser().parse_args(["http://x.example", "/mnt", "-u", "alice"])
    assert args.user == "alice"
