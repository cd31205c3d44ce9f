"""Failures through a real mount: server down, slow, failing, sessions expiring; signals unmount."""

from __future__ import annotations

import errno
import os
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from mounting import ADMIN, MountFactory, daemon_process, unmount, xnatfs_command
from xnatfs.emulator.server import EmulatorServer
from xnatfs.emulator.sample import populate
from xnatfs.settings import Settings

HOLD = Settings().unreachable_hold

pytestmark = pytest.mark.mount

TIMEOUT = 2.0


@pytest.fixture
def own_emulator(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmulatorServer]:
    """A sample emulator this test may stop, slow down or break."""
    server = EmulatorServer(tmp_path_factory.mktemp("xnat-own"), users={"admin": "admin"})
    populate(server.store)
    server.start()
    yield server
    server.stop()


def timed_errno(path: Path, action=os.listdir) -> tuple[int | None, float]:  # type: ignore[no-untyped-def]
    start = time.monotonic()
    try:
        action(path)
    except OSError as exc:
        return exc.errno, time.monotonic() - start
    return None, time.monotonic() - start


def test_server_down_fails_within_the_timeout_and_the_mount_recovers(own_emulator: EmulatorServer,
                                                                     mount_factory: MountFactory) -> None:
    mounted = mount_factory(own_emulator, "--timeout", str(TIMEOUT), "--metadata-ttl", "1")
    mounted.expect_errors = True
    subjects = mounted.path / "projects/DEMO/subjects"
    assert "DEMO_001" in os.listdir(subjects)
    own_emulator.stop(close_store=False)
    time.sleep(1.2)  # the metadata TTL
    code, elapsed = timed_errno(mounted.path / "projects/DEMO/subjects/DEMO_002/experiments")
    assert code in (errno.EIO, errno.ETIMEDOUT), code
    assert elapsed < 3 * TIMEOUT + 5
    assert os.path.ismount(mounted.path)
    own_emulator.start()  # same port, same data
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            assert "DEMO_002_MR_1" in os.listdir(mounted.path / "projects/DEMO/subjects/DEMO_002/experiments")
            break
        except OSError:
            time.sleep(0.3)
    else:
        raise AssertionError("the mount did not recover after the server came back")
    log = mounted.log_text()
    assert "ERROR" in log and "Traceback" not in log


def test_a_slow_server_fails_with_etimedout_within_the_timeout(own_emulator: EmulatorServer,
                                                              mount_factory: MountFactory) -> None:
    mounted = mount_factory(own_emulator, "--timeout", str(TIMEOUT))
    mounted.expect_errors = True
    own_emulator.set_faults(latency_ms=3000 * TIMEOUT)
    code, elapsed = timed_errno(mounted.path / "projects/DEMO/subjects")
    own_emulator.set_faults(latency_ms=0)
    assert code == errno.ETIMEDOUT
    assert elapsed < 2 * TIMEOUT + 3
    time.sleep(HOLD)  # after a transport failure the mount holds requests off this long (transport.reachability)
    assert "DEMO_001" in os.listdir(mounted.path / "projects/DEMO/subjects")


def test_server_errors_are_eio_with_one_log_line(own_emulator: EmulatorServer, mount_factory: MountFactory) -> None:
    mounted = mount_factory(own_emulator)
    mounted.expect_errors = True
    own_emulator.set_faults(fail_rate=1.0, fail_status=500)
    code, _ = timed_errno(mounted.path / "projects/STUDY2/subjects")
    own_emulator.set_faults(fail_rate=0.0)
    assert code == errno.EIO
    errors = [line for line in mounted.log_text().splitlines() if " ERROR " in line]
    assert len(errors) == 1 and "subjects" in errors[0] and "HTTP 500" in errors[0]
    assert "S2_001" in os.listdir(mounted.path / "projects/STUDY2/subjects")


def test_an_expired_server_session_is_renewed_transparently(own_emulator: EmulatorServer,
                                                            mount_factory: MountFactory) -> None:
    mounted = mount_factory(own_emulator)
    assert os.listdir(mounted.path / "projects")
    requests.post(f"{own_emulator.url}/emulator/sessions/expire", auth=ADMIN, timeout=10).raise_for_status()
    assert "DEMO_001" in os.listdir(mounted.path / "projects/DEMO/subjects")


def test_a_file_being_read_survives_a_server_error_on_another_path(own_emulator: EmulatorServer,
                                                                   mount_factory: MountFactory) -> None:
    mounted = mount_factory(own_emulator)
    folder = mounted.path / "projects/DEMO/subjects/DEMO_001/experiments/DEMO_001_MR_1/scans/2/resources/DICOM"
    names = sorted(os.listdir(folder))
    with open(folder / names[0], "rb") as handle:
        assert handle.read(132)[128:] == b"DICM"
        mounted.expect_errors = True
        own_emulator.set_faults(fail_rate=1.0, fail_status=500)
        code, _ = timed_errno(mounted.path / "projects/STUDY2/subjects/S2_001/experiments")
        own_emulator.set_faults(fail_rate=0.0)
        assert code == errno.EIO
        assert len(handle.read()) > 0


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_a_signal_to_the_daemon_unmounts_cleanly(sig: signal.Signals, emulator: EmulatorServer,
                                                 mount_factory: MountFactory) -> None:
    mounted = mount_factory(emulator)
    assert os.listdir(mounted.path / "projects")
    daemon = daemon_process(mounted.path)
    daemon.send_signal(sig)
    daemon.wait(timeout=15)
    assert not os.path.ismount(mounted.path)
    assert "Unmounted" in mounted.log_text()


def test_foreground_mount_stops_on_ctrl_c(emulator: EmulatorServer, tmp_path: Path) -> None:
    mountpoint = tmp_path / "fg"
    mountpoint.mkdir()
    env = dict(os.environ, XNATFS_PASSWORD="admin")
    process = subprocess.Popen(xnatfs_command("mount", emulator.url, str(mountpoint), "--user", "admin",
                                              "--foreground"), env=env, stderr=subprocess.PIPE, text=True,
                               stdin=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 30
        while not os.path.ismount(mountpoint) and time.monotonic() < deadline:
            assert process.poll() is None, process.stderr.read() if process.stderr else ""
            time.sleep(0.1)
        assert os.path.ismount(mountpoint)
        assert "DEMO" in os.listdir(mountpoint / "projects")
        process.send_signal(signal.SIGINT)
        assert process.wait(timeout=15) == 0
        assert not os.path.ismount(mountpoint)
        stderr = process.stderr.read() if process.stderr else ""
        assert "Ctrl-C unmounts" in stderr and "Traceback" not in stderr
    finally:
        if process.poll() is None:
            process.kill()
        unmount(mountpoint)


def test_a_read_only_mount_turns_a_failed_read_into_eio_and_reads_again_later(own_emulator: EmulatorServer,
                                                                              mount_factory: MountFactory) -> None:
    """On a --read-only mount a file is opened by the kernel alone (no OPEN reaches the daemon): the
    server's error comes with the first read, as EIO with one log line, and the file reads once the
    server is well again."""
    mounted = mount_factory(own_emulator, "--read-only")
    folder = mounted.path / "projects/DEMO/subjects/DEMO_001/experiments/DEMO_001_MR_1/scans/2/resources/DICOM"
    name = sorted(os.listdir(folder))[3]
    mounted.expect_errors = True
    own_emulator.set_faults(fail_rate=1.0, fail_status=500)
    code, elapsed = timed_errno(folder / name, Path.read_bytes)
    own_emulator.set_faults(fail_rate=0.0)
    assert code == errno.EIO and elapsed < 10, (code, elapsed)
    assert os.path.ismount(mounted.path)
    log = mounted.log_text()
    assert "HTTP 500" in log and "Traceback" not in log
    time.sleep(2.5)  # a failed read is remembered for 2 s (the kernel's retries of it fail at once)
    assert (folder / name).read_bytes()[128:132] == b"DICM"
