"""``xnatfs download`` as its own process: killed with SIGKILL and run again, it completes with every
md5 right, continuing what it had; a 1 GiB file downloads with the client's RSS under 150 MiB."""

from __future__ import annotations

import hashlib
import os
import signal
import subprocess
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import psutil
import pytest

from transferkit import cli, cli_process, md5_of
from xnatfs.emulator.server import EmulatorServer
from xnatfs.model.transfer import PART_SUFFIX

pytestmark = pytest.mark.integration

MiB = 1024 * 1024


@pytest.fixture(autouse=True)
def password(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XNATFS_PASSWORD", "admin")


def sigkill_once(process: subprocess.Popen, ready: Callable[[], bool], deadline: float = 60.0) -> None:
    """SIGKILL ``process`` as soon as ``ready()`` (polled while it runs), and check that the kill ended it."""
    try:
        end = time.monotonic() + deadline
        while time.monotonic() < end and not ready():
            assert process.poll() is None, process.communicate()
            time.sleep(0.02)
        process.send_signal(signal.SIGKILL)
    finally:
        process.communicate(timeout=30)
    assert process.returncode == -signal.SIGKILL


def test_a_download_killed_with_sigkill_completes_when_run_again(fresh_emulator: EmulatorServer,
                                                                 tmp_path: Path) -> None:
    store = fresh_emulator.store
    resource = store.create_resource(store.create_project("KILL"), "data")
    expected = {}
    for i in range(4):
        data = os.urandom(12 * MiB)
        relpath = f"run{i}/series.bin"
        store.add_file(resource.id, relpath, data)
        expected[relpath] = hashlib.md5(data).hexdigest()
    fresh_emulator.set_faults(bandwidth_mibps=12)  # 48 MiB take 4 s: time to kill it midway
    out = tmp_path / "out"
    process = cli_process("download", fresh_emulator.url, "projects/KILL/resources/data", str(out), "-j", "2")
    sigkill_once(process, lambda: any(p.stat().st_size >= 2 * MiB for p in out.rglob("*" + PART_SUFFIX)))
    had = sum(p.stat().st_size for p in out.rglob("*") if p.is_file())
    assert had >= 2 * MiB and any(out.rglob("*" + PART_SUFFIX))

    fresh_emulator.set_faults(bandwidth_mibps=0)
    code, summary, err = cli("download", fresh_emulator.url, "projects/KILL/resources/data", str(out))
    assert code == 0, err
    assert summary is not None and summary["bytes"] <= 48 * MiB - had + MiB  # what was on disk was not fetched again
    assert {p.relative_to(out).as_posix(): md5_of(p) for p in out.rglob("*") if p.is_file()} == expected


def test_a_killed_download_of_many_small_files_completes_when_run_again(fresh_emulator: EmulatorServer,
                                                                       tmp_path: Path) -> None:
    """Small files come by resource zips: a kill loses at most the zips in flight, never a finished file."""
    store = fresh_emulator.store
    project = store.create_project("SMALL")
    expected = {}
    for r in range(8):
        resource = store.create_resource(project, f"R{r}")
        for f in range(16):
            data = os.urandom(256 * 1024)
            store.add_file(resource.id, f"f{f:02d}.bin", data)
            expected[f"resources/R{r}/f{f:02d}.bin"] = hashlib.md5(data).hexdigest()
    fresh_emulator.set_faults(bandwidth_mibps=8)  # 32 MiB take 4 s
    out = tmp_path / "out"
    process = cli_process("download", fresh_emulator.url, "projects/SMALL", str(out), "-j", "2")
    sigkill_once(process, lambda: len(list(out.rglob("*.bin"))) >= 16)
    had = {p.relative_to(out).as_posix(): md5_of(p) for p in out.rglob("*.bin")}
    assert 16 <= len(had) < len(expected) and all(expected[p] == md5 for p, md5 in had.items())

    fresh_emulator.set_faults(bandwidth_mibps=0)
    code, summary, err = cli("download", fresh_emulator.url, "projects/SMALL", str(out))
    assert code == 0, err
    assert summary is not None and summary["skipped"] == len(had) and summary["files"] == len(expected) - len(had)
    assert {p.relative_to(out).as_posix(): md5_of(p) for p in out.rglob("*") if p.is_file()} == expected


def test_a_1_gib_file_downloads_with_bounded_memory(fresh_emulator: EmulatorServer, tmp_path: Path) -> None:
    size = 1024 * MiB
    store = fresh_emulator.store
    resource = store.create_resource(store.create_project("HUGE"), "data")
    fd, spooled = tempfile.mkstemp(dir=store.tmp_dir)
    marks = {0: b"HEAD", 700 * MiB + 3: b"middle", size - 4: b"TAIL"}
    with os.fdopen(fd, "wb") as handle:  # sparse: cheap to make, 1 GiB to read
        handle.truncate(size)
        for offset, mark in marks.items():
            handle.seek(offset)
            handle.write(mark)
    md5 = md5_of(Path(spooled))
    store.add_file(resource.id, "huge.bin", Path(spooled), move=True, md5=md5)

    process = cli_process("download", fresh_emulator.url, "projects/HUGE/resources/data", str(tmp_path))
    peak = peak_rss_until_exit(process.pid)
    stdout, stderr = process.communicate(timeout=110)
    assert process.returncode == 0, stderr
    assert '"failed": []' in stdout and '"files": 1' in stdout  # md5 checked by the client against the listing
    target = tmp_path / "huge.bin"
    assert target.stat().st_size == size
    with open(target, "rb") as handle:
        for offset, mark in marks.items():
            handle.seek(offset)
            assert handle.read(len(mark)) == mark
    assert 10 * MiB < peak < 150 * MiB, f"client RSS peaked at {peak / MiB:.0f} MiB"
    print(f"\n1 GiB download: client RSS peak {peak / MiB:.0f} MiB")


def peak_rss_until_exit(pid: int, timeout: float = 110) -> int:
    """The highest RSS of process ``pid``, sampled every 10 ms until it exits (it is a child: a zombie
    until reaped, which ends the sampling)."""
    process = psutil.Process(pid)
    peak = 0
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if process.status() == psutil.STATUS_ZOMBIE:
                break
            peak = max(peak, process.memory_info().rss)
        except psutil.NoSuchProcess:
            break
        time.sleep(0.01)
    return peak
