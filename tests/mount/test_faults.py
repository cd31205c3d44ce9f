"""Server faults under a real mount, with real tools: a crash and a hang in the middle of ``ls -R`` and of a
large ``cat``, a 20 % failure rate, retries running out, a changed password, a slow server.

Also an import (``cp`` of a zip into ``import/<project>/``) while the server goes down.

The emulator runs in its own process (:class:`faultkit.EmulatorProcess`) over one data directory with
the sample archive and a 256 MiB file, so it can be killed or stopped and started again on the same
port. Each system call of the tools is timed with ``strace -T``: a call into the mount must return
within ``--timeout`` (:data:`TIMEOUT`) plus :data:`SLACK` (retry sleeps, scheduling), and the tool's
process must not sit in uninterruptible sleep (``D``) longer (FUSE waits are interruptible, ``S``, on
current kernels; for ``cat`` the longest sleep of either kind is bounded too). ``tests/mount/test_failures.py`` covers
simpler cases (a stopped in-process server, 500s, an expired session) and is not repeated here.
"""

from __future__ import annotations

import errno
import hashlib
import os
import random
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest
import requests

from faultkit import EmulatorProcess, StateWatch, slowest_calls, tool_pid, traced
from mounting import MountFactory, daemon_process, expected_files, require_tools
from writing import dicom_zip, mount_writable
from xnatfs.emulator.sample import populate
from xnatfs.emulator.store import Store
from xnatfs.settings import Settings

HOLD = Settings().unreachable_hold

pytestmark = pytest.mark.mount

MiB = 1024 * 1024
TIMEOUT = 3.0
#: what a failing call may take beyond TIMEOUT: connection retries (0.9 s), scheduling, strace
SLACK = 2.0
BIG_SIZE = 256 * MiB
BIG = "projects/DEMO/resources/big/big.bin"
SESSION = "projects/DEMO/subjects/DEMO_001/experiments/DEMO_001_MR_1"
TOOL_ERRORS = ("Input/output error", "Connection timed out")


class Archive:
    """The data directory the emulator processes serve, and what it holds."""

    def __init__(self, data_dir: Path, files: dict[str, str], big_md5: str, big_path: Path) -> None:
        self.data_dir = data_dir
        self.files = files  # path under the mount → md5
        self.big_md5 = big_md5
        self.big_path = big_path


@pytest.fixture(scope="module")
def archive(tmp_path_factory: pytest.TempPathFactory) -> Archive:
    """The sample archive plus :data:`BIG` (256 MiB, every MiB different)."""
    data_dir = tmp_path_factory.mktemp("xnat-faults")
    store = Store(data_dir)
    try:
        populate(store)
        spool = tmp_path_factory.mktemp("spool") / "big.bin"
        block = random.Random(256).randbytes(MiB)
        digest = hashlib.md5()
        with open(spool, "wb") as out:
            for n in range(BIG_SIZE // MiB):
                piece = n.to_bytes(8, "big") + block[8:]
                out.write(piece)
                digest.update(piece)
        resource = store.create_resource(store.get_project("DEMO"), "big", format="BIN")
        row = store.add_file(resource.id, "big.bin", spool, move=True, md5=digest.hexdigest())
        files = {path: info.md5 for path, info in expected_files(store).items()}
        return Archive(data_dir, files, digest.hexdigest(), row.disk_path)
    finally:
        store.close()


@pytest.fixture
def server(archive: Archive, tmp_path: Path) -> Iterator[EmulatorProcess]:
    process = EmulatorProcess(archive.data_dir, tmp_path / "emulator.log").start()
    yield process
    process.stop()


def tool_errors(stderr: bytes) -> list[str]:
    lines = stderr.decode(errors="replace").splitlines()
    unexpected = [line for line in lines if not any(error in line for error in TOOL_ERRORS)]
    assert not unexpected, unexpected
    return lines


def assert_daemon_alive(mountpoint: Path) -> None:
    daemon = daemon_process(mountpoint)
    assert daemon.is_running() and daemon.status() != psutil.STATUS_ZOMBIE
    assert os.path.ismount(mountpoint)


def retry_until_it_works(command: list[str], deadline: float = HOLD + 10) -> subprocess.CompletedProcess[bytes]:
    """Run ``command`` until it succeeds: after a failure the mount holds requests off for HOLD seconds."""
    end = time.monotonic() + deadline
    while True:
        result = subprocess.run(command, capture_output=True, timeout=120)
        if result.returncode == 0 or time.monotonic() > end:
            assert result.returncode == 0, result.stderr
            return result
        time.sleep(0.2)


def wait_until_quiet(server: EmulatorProcess, quiet: float = 0.5, deadline: float = 10.0) -> None:
    """Until the emulator has served no request for ``quiet`` seconds (background prefetches done)."""
    end = time.monotonic() + deadline
    last = server.counts()["total"]
    while time.monotonic() < end:
        time.sleep(quiet)
        now = server.counts()["total"]
        if now == last:
            return
        last = now


def wait_for_size(path: Path, size: int, deadline: float = 60.0) -> None:
    end = time.monotonic() + deadline
    while time.monotonic() < end:
        if path.exists() and path.stat().st_size >= size:
            return
        time.sleep(0.02)
    raise AssertionError(f"{path} did not reach {size} bytes")


# -- the server stops in the middle of a walk or a read ---------------------------------------------------

@pytest.mark.parametrize("fault", ["crash", "hang"])
def test_a_server_that_stops_during_ls_R_fails_each_call_in_time_and_the_mount_recovers(
        fault: str, server: EmulatorProcess, archive: Archive, mount_factory: MountFactory, tmp_path: Path) -> None:
    """crash: SIGKILL (refused connections → EIO); hang: SIGSTOP (nothing answers → ETIMEDOUT)."""
    require_tools("ls", "strace")
    mounted = mount_factory(server, "--timeout", str(TIMEOUT))
    mounted.expect_errors = True
    server.set_faults(latency_ms=300)  # the walk takes a few seconds, so the crash lands in its middle
    log = tmp_path / "ls.strace"
    walk = traced(["ls", "-R", str(mounted.path / "projects")], log, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    watch = StateWatch(tool_pid(walk))
    time.sleep(1.0)
    assert walk.poll() is None, "ls -R ended before the server stopped"
    server.kill() if fault == "crash" else server.pause()
    crashed = time.monotonic()
    out, err = walk.communicate(timeout=120)
    watch.stop()
    assert walk.returncode != 0
    assert tool_errors(err)  # each failure is EIO or ETIMEDOUT, and there were some
    slowest = slowest_calls(log)
    assert slowest[0][0] < TIMEOUT + SLACK, slowest
    assert watch.longest("D") < TIMEOUT + SLACK
    assert time.monotonic() - crashed < 60
    assert_daemon_alive(mounted.path)
    if fault == "crash":
        server.start()  # the same port
    else:
        server.resume()
        server.set_faults(latency_ms=0)
    again = retry_until_it_works(["ls", "-R", str(mounted.path / "projects")])
    names = set(again.stdout.decode().split())
    assert {Path(path).name for path in archive.files} <= names


@pytest.mark.parametrize("fault", ["crash", "hang"])
def test_a_server_that_stops_during_a_large_cat_fails_it_in_time_and_never_with_a_wrong_byte(
        fault: str, server: EmulatorProcess, archive: Archive, mount_factory: MountFactory, tmp_path: Path) -> None:
    """crash: SIGKILL (connections reset → EIO at once); hang: SIGSTOP (nothing answers → ETIMEDOUT)."""
    require_tools("cat", "strace", "md5sum")
    mounted = mount_factory(server, "--timeout", str(TIMEOUT))
    mounted.expect_errors = True
    server.set_faults(bandwidth_mibps=64)
    copy, log = tmp_path / "copy.bin", tmp_path / "cat.strace"
    with open(copy, "wb") as out:
        cat = traced(["cat", str(mounted.path / BIG)], log, stdout=out, stderr=subprocess.PIPE)
    watch = StateWatch(tool_pid(cat))
    wait_for_size(copy, 24 * MiB)
    server.kill() if fault == "crash" else server.pause()
    stopped = time.monotonic()
    _, err = cat.communicate(timeout=60)
    elapsed = time.monotonic() - stopped
    watch.stop()
    assert cat.returncode != 0
    expected_error = "Input/output error" if fault == "crash" else "Connection timed out"
    assert any(expected_error in line for line in tool_errors(err)), err
    assert elapsed < TIMEOUT + SLACK
    assert slowest_calls(log)[0][0] < TIMEOUT + SLACK
    assert watch.longest("D") < TIMEOUT + SLACK
    assert watch.longest("SD") < TIMEOUT + SLACK  # the whole wait of cat, asleep in any way
    size = copy.stat().st_size
    assert 24 * MiB <= size < BIG_SIZE
    with open(archive.big_path, "rb") as original, open(copy, "rb") as partial:
        for offset in range(0, size, 8 * MiB):  # every byte cat got is the file's
            assert partial.read(8 * MiB) == original.read(min(8 * MiB, size - offset)), offset
    assert_daemon_alive(mounted.path)
    if fault == "crash":
        server.start()
    else:
        server.resume()
        server.set_faults(bandwidth_mibps=0)
    copied = retry_until_it_works(["md5sum", str(mounted.path / BIG)])
    assert copied.stdout.split()[0].decode() == archive.big_md5
    errors = [line for line in mounted.log_text().splitlines() if " ERROR " in line]
    assert errors and all("big.bin" in line for line in errors)


# -- failing answers -------------------------------------------------------------------------------------

def test_a_20_percent_failure_rate_still_copies_a_session_byte_for_byte(
        server: EmulatorProcess, archive: Archive, mount_factory: MountFactory, tmp_path: Path) -> None:
    require_tools("cp")
    mounted = mount_factory(server, "--timeout", str(TIMEOUT))
    server.set_faults(fail_rate=0.2, fail_status=503)
    copied = tmp_path / "copy"
    subprocess.run(["cp", "-r", str(mounted.path / SESSION), str(copied)], check=True, timeout=300)
    injected = server.counts()["by_route"].get("GET FAULT", 0)
    server.set_faults(fail_rate=0.0)
    session_files = {path[len(SESSION) + 1:]: md5 for path, md5 in archive.files.items() if path.startswith(SESSION)}
    assert len(session_files) > 35
    copies = {str(p.relative_to(copied)): hashlib.md5(p.read_bytes()).hexdigest()
              for p in copied.rglob("*") if p.is_file() and p.name not in ("xnat.json", "xnat.xml")}
    converted = {path for path in copies if "/nifti/" in path}  # the NIfTI view, converted despite the faults
    assert {path for path in converted if path.endswith(".nii.gz")} == {
        "scans/1/nifti/1_Localizer.nii.gz", "scans/2/nifti/2_T1w_MPRAGE.nii.gz", "scans/3/nifti/3_T2w_FLAIR.nii.gz"}
    assert {path: md5 for path, md5 in copies.items() if path not in converted} == session_files
    assert injected >= 5  # about one request in five failed, and every one was retried


def test_when_retries_run_out_a_read_is_eio_with_one_log_line_and_no_byte(
        server: EmulatorProcess, archive: Archive, mount_factory: MountFactory) -> None:
    mounted = mount_factory(server, "--timeout", str(TIMEOUT))
    mounted.expect_errors = True
    folder = mounted.path / SESSION / "scans/2/resources/DICOM"
    names = sorted(os.listdir(folder))  # the listing is cached; only the file's bytes are asked for below
    wait_until_quiet(server)  # background prefetches done: every failure counted below is the read's
    server.set_faults(fail_rate=1.0, fail_status=503)
    started = time.monotonic()
    result = subprocess.run(["cat", str(folder / names[0])], capture_output=True, timeout=60)
    elapsed = time.monotonic() - started
    faults = server.counts()["by_route"].get("GET FAULT", 0)
    server.set_faults(fail_rate=0.0)
    assert result.returncode != 0 and "Input/output error" in result.stderr.decode()
    assert result.stdout == b""
    assert faults == 9  # the first try and 8 retries (the mount's policy for a busy server)
    assert elapsed < TIMEOUT + SLACK
    errors = [line for line in mounted.log_text().splitlines() if " ERROR " in line]
    assert len(errors) == 1 and names[0] in errors[0] and "503" in errors[0], errors
    assert retry_until_it_works(["cat", str(folder / names[0])]).stdout[128:132] == b"DICM"


def test_a_changed_password_is_eacces_with_a_log_line_that_says_so(
        server: EmulatorProcess, mount_factory: MountFactory) -> None:
    mounted = mount_factory(server, "--timeout", str(TIMEOUT))
    mounted.expect_errors = True
    assert "DEMO" in os.listdir(mounted.path / "projects")
    server.kill()
    server.start(users={"admin": "a-new-password"})  # the same data and port; the old session is gone
    time.sleep(HOLD)  # a background prefetch may have met the server down: requests are held that long
    with pytest.raises(PermissionError) as caught:
        os.listdir(mounted.path / "projects/DEMO/subjects")
    assert caught.value.errno == errno.EACCES
    errors = [line for line in mounted.log_text().splitlines() if " ERROR " in line]
    assert len(errors) == 1 and "refused the password of user 'admin'" in errors[0] and "(EACCES)" in errors[0]
    assert "a-new-password" not in mounted.log_text()
    assert_daemon_alive(mounted.path)


def test_a_slow_server_never_keeps_a_call_past_the_timeout(
        server: EmulatorProcess, mount_factory: MountFactory, tmp_path: Path) -> None:
    """Every request takes 2 s; the timeout is 1 s: each call fails with ETIMEDOUT after about 1 s.

    Each tool gets a mount of its own, so that it meets the slow server itself and not the hold after
    another tool's failure (or a background prefetch's).
    """
    require_tools("ls", "cat", "strace")
    timeout = 1.0
    dicom = f"{SESSION}/scans/2/resources/DICOM"
    commands = {"ls-R": lambda root: ["ls", "-R", str(root / "projects/STUDY2")],
                "cat": lambda root: ["cat", str(root / dicom / sorted(os.listdir(root / dicom))[0])],
                "ls-l": lambda root: ["ls", "-l", str(root / SESSION)]}
    for name, command_for in commands.items():
        mounted = mount_factory(server, "--timeout", str(timeout), name=name)
        mounted.expect_errors = True
        command = command_for(mounted.path)  # listed while the server is quick
        wait_until_quiet(server)  # no prefetch still on its way to meet the slow server
        server.set_faults(latency_ms=2000)
        log = tmp_path / f"{name}.strace"
        started = time.monotonic()
        tool = traced(command, log, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        _, err = tool.communicate(timeout=120)
        server.set_faults(latency_ms=0)
        assert tool.returncode != 0, command
        assert any("Connection timed out" in line for line in tool_errors(err)), err
        slowest = slowest_calls(log)
        assert timeout * 0.9 < slowest[0][0] < timeout + 1.0, (command, slowest)
        assert time.monotonic() - started < 30
        assert "S2_001" in retry_until_it_works(["ls", str(mounted.path / "projects/STUDY2/subjects")]).stdout.decode()


def test_a_server_answering_just_within_the_timeout_never_adds_up_waits_in_one_call(
        server: EmulatorProcess, mount_factory: MountFactory, tmp_path: Path) -> None:
    """Every request takes 0.6 s of a 1 s timeout: ``ls -lR`` succeeds, and no call waits for two requests
    in a row (the tree needs at most one request per call; prefetches run beside it). A scan's ``nifti/``
    is the documented exception (listing it reads the series to convert it) and is not walked here."""
    require_tools("ls", "strace")
    timeout = 1.0
    mounted = mount_factory(server, "--timeout", str(timeout))
    server.set_faults(latency_ms=600)
    log = tmp_path / "ls.strace"
    walk = traced(["ls", "-lR", "--ignore=nifti", str(mounted.path / "projects/STUDY2")], log,
                  stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    out, err = walk.communicate(timeout=120)
    server.set_faults(latency_ms=0)
    assert walk.returncode == 0, err
    assert b"xnat.xml" in out and b".dcm" in out
    slowest = slowest_calls(log)
    assert slowest[0][0] < timeout, slowest


# -- an import while the server goes down ----------------------------------------------------------------

def wait_for_log(mounted, text: str, deadline: float = 30.0) -> None:  # type: ignore[no-untyped-def]
    end = time.monotonic() + deadline
    while text not in mounted.log_text():
        assert time.monotonic() < end, f"{text!r} never logged:\n{mounted.log_text()}"
        time.sleep(0.02)


def test_an_import_while_the_server_goes_down_fails_cp_and_keeps_the_zip(
        server: EmulatorProcess, mount_factory: MountFactory, tmp_path: Path) -> None:
    """The server dies while the import request waits for its answer: ``cp`` fails with EIO, the zip stays
    with a ``.error`` note, nothing was imported; once the server is back, ``cp`` of the same zip imports it."""
    require_tools("cp")
    mounted = mount_writable(server, mount_factory, tmp_path, "--timeout", str(TIMEOUT))
    mounted.expect_errors = True
    data, _ = dicom_zip("IMP_DOWN", slices=5)
    source = tmp_path / "down.zip"
    source.write_bytes(data)
    folder = mounted.path / "import/DEMO"
    assert os.listdir(folder) == []
    server.set_faults(latency_ms=10_000)  # the server holds the request before reading it
    copy = subprocess.Popen(["cp", str(source), str(folder / "down.zip")], stderr=subprocess.PIPE, text=True)
    wait_for_log(mounted, "Importing /import/DEMO/down.zip")
    time.sleep(0.3)
    server.kill()
    _, err = copy.communicate(timeout=60)
    assert copy.returncode != 0 and "Input/output error" in err, err
    assert sorted(os.listdir(folder)) == ["down.zip", "down.zip.error"]
    assert (folder / "down.zip").read_bytes() == data
    note = (folder / "down.zip.error").read_text()
    assert "down.zip" in note and note.strip()
    server.start()
    prearchive = requests.get(f"{server.url}/data/prearchive/projects/DEMO", params={"format": "json"},
                              auth=server.admin, timeout=30).json()["ResultSet"]["Result"]
    assert not [row for row in prearchive if "IMP_DOWN" in json_text(row)]  # nothing half-imported
    time.sleep(HOLD)
    again = subprocess.run(["cp", str(source), str(folder / "down.zip")], capture_output=True, text=True, timeout=60)
    assert again.returncode == 0, again.stderr
    assert sorted(os.listdir(folder)) == ["down.zip.result"]


def json_text(row: dict) -> str:
    return " ".join(str(value) for value in row.values())
