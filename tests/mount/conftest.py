"""Real FUSE mounts for the mount tests: ``xnatfs mount`` run as a subprocess against the emulator.

``mounted`` (function scope) mounts the session's sample emulator as admin and yields a
:class:`~mounting.Mounted`; teardown unmounts with ``fusermount3 -u`` (then ``-z`` if busy) within
deadlines, prints the daemon log if the test failed, and fails the test if the log of a happy-path
test has an ``ERROR`` or a ``Traceback`` (a test that provokes errors sets ``expect_errors = True``).
``mount_factory`` mounts any emulator with any options. ``requests_counter`` reads and resets the
emulator's count of requests served. ``server`` (module scope) is a sample emulator of the module's
own, for tests that change the archive or switch faults on; ``no_faults`` switches them off around a
test (``pytestmark = pytest.mark.usefixtures("no_faults")``).
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from mounting import MOUNT_DEADLINE, MountFactory, Mounted, RequestCounter, unmount, xnatfs_command

from xnatfs.emulator.server import EmulatorServer


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo) -> Iterator[None]:
    outcome = yield
    report = outcome.get_result()
    setattr(item, f"rep_{report.when}", report)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest) -> Iterator[EmulatorServer]:
    """A sample emulator of this test module's own (its tests may change it)."""
    emulator = EmulatorServer(tmp_path_factory.mktemp(f"xnat-{request.module.__name__}"), sample=True,
                              users={"admin": "admin"})
    emulator.start()
    yield emulator
    emulator.stop()


@pytest.fixture
def no_faults(server: EmulatorServer) -> Iterator[None]:
    server.set_faults(fail_rate=0.0, latency_ms=0)
    yield
    server.set_faults(fail_rate=0.0, latency_ms=0)


@pytest.fixture
def requests_counter(emulator: EmulatorServer) -> RequestCounter:
    return RequestCounter(emulator)


@pytest.fixture
def mount_factory(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[MountFactory]:
    """``mount_factory(emulator, *options, user="admin", password="admin")`` → a mounted :class:`Mounted`."""
    made: list[Mounted] = []

    def make(emulator: EmulatorServer, *options: str, user: str | None = "admin", password: str | None = "admin",
             name: str = "mnt") -> Mounted:
        path = tmp_path / name
        path.mkdir()
        log = tmp_path / f"{name}.log"
        env = dict(os.environ)
        env.pop("XNATFS_PASSWORD", None)
        # the default spool and views folders (~/.cache/xnatfs/…) of this mount only: nothing a test
        # converts or spools outlives it or is found by another test
        env["XDG_CACHE_HOME"] = str(tmp_path / f"{name}-xdg-cache")
        if password is not None:
            env["XNATFS_PASSWORD"] = password
        args = [emulator.url, str(path), "--log-file", str(log), *options]
        if user is not None:
            args += ["--user", user]
        result = subprocess.run(xnatfs_command("mount", *args), env=env, capture_output=True, text=True,
                                timeout=MOUNT_DEADLINE, stdin=subprocess.DEVNULL)
        mounted = Mounted(path, log, emulator)
        made.append(mounted)
        assert result.returncode == 0, f"mount failed: {result.stderr}\n{mounted.log_text()}"
        assert os.path.ismount(path), f"not mounted: {result.stderr}\n{mounted.log_text()}"
        return mounted

    yield make
    failed = getattr(request.node, "rep_call", None) is not None and request.node.rep_call.failed
    for mounted in made:
        unmount(mounted.path)
        assert not os.path.ismount(mounted.path), f"{mounted.path} is still mounted"
        text = mounted.log_text()
        if failed:
            print(f"--- daemon log of {mounted.path} ---\n{text}")
        elif not mounted.expect_errors:
            assert "ERROR" not in text and "Traceback" not in text, f"the daemon logged errors:\n{text}"


@pytest.fixture
def mounted(emulator: EmulatorServer, mount_factory: MountFactory) -> Mounted:
    """The sample emulator mounted as admin with default options."""
    emulator.set_faults(latency_ms=0, bandwidth_mibps=0, fail_rate=0, no_range=False)
    return mount_factory(emulator)
