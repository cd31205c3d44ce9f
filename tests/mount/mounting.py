"""Helpers of the mount tests: running ``xnatfs``, unmounting with deadlines, the emulator's request
counter, and the files the emulator stores, by their path under the mount (DESIGN.md §2 layout).

Imported by ``conftest.py`` and the test modules (``from mounting import …``; pytest puts this folder on
``sys.path``).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import psutil
import requests

from xnatfs.emulator.server import EmulatorServer

ADMIN = ("admin", "admin")
MOUNT_DEADLINE = 60.0


def xnatfs_command(*args: str) -> list[str]:
    return [sys.executable, "-m", "xnatfs", *args]


def unmount(path: Path, deadline: float = 20.0) -> None:
    """``fusermount3 -u``, retried until the deadline, then ``-z`` (lazy) if still busy."""
    end = time.monotonic() + deadline
    while os.path.ismount(path) and time.monotonic() < end:
        result = subprocess.run(["fusermount3", "-u", str(path)], capture_output=True, text=True, timeout=10)
        if result.returncode == 0:
            break
        time.sleep(0.2)
    if os.path.ismount(path):
        subprocess.run(["fusermount3", "-u", "-z", str(path)], capture_output=True, text=True, timeout=10)


@dataclass
class Mounted:
    """A running mount: its path, the daemon's log, the emulator behind it."""

    path: Path
    log: Path
    emulator: EmulatorServer
    expect_errors: bool = False
    extra: dict = field(default_factory=dict)

    def log_text(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else "(no log)"


class RequestCounter:
    """The emulator's count of requests served, by route (``/emulator/requests``)."""

    def __init__(self, emulator: EmulatorServer) -> None:
        self.url = f"{emulator.url}/emulator/requests"

    def reset(self) -> None:
        requests.delete(self.url, auth=ADMIN, timeout=10).raise_for_status()

    def read(self) -> dict:
        response = requests.get(self.url, auth=ADMIN, timeout=10)
        response.raise_for_status()
        return response.json()

    def total(self) -> int:
        return int(self.read()["total"])

    def settle(self, quiet: float = 0.3, deadline: float = 10.0) -> int:
        """Wait until no request arrived for ``quiet`` seconds (background prefetch done); the total."""
        end = time.monotonic() + deadline
        last = self.total()
        while time.monotonic() < end:
            time.sleep(quiet)
            now = self.total()
            if now == last:
                return now
            last = now
        return last


def require_tools(*tools: str) -> None:
    missing = [tool for tool in tools if shutil.which(tool) is None]
    assert not missing, f"missing system tools {missing}: run scripts/install.sh (Debian packages)"


def expected_files(store) -> dict[str, object]:  # type: ignore[no-untyped-def]
    """Every stored file by its path under the mount (DESIGN.md §2 layout), from the emulator's store."""
    out: dict[str, object] = {}

    def add(owner, base: str) -> None:  # type: ignore[no-untyped-def]
        for resource in store.list_resources(owner):
            for row in store.list_files(resource.id):
                out[f"{base}/resources/{resource.label}/{row.path}"] = row

    for project in store.list_projects():
        pbase = f"projects/{project.id}"
        add(project, pbase)
        for subject in store.list_subjects(project.id):
            sbase = f"{pbase}/subjects/{subject.label}"
            add(subject, sbase)
            for session in store.list_experiments(subject_id=subject.id):
                ebase = f"{sbase}/experiments/{session.label}"
                add(session, ebase)
                for scan in store.list_scans(session.id):
                    add(scan, f"{ebase}/scans/{scan.id}")
                for assessor in store.list_experiments(session_id=session.id):
                    add(assessor, f"{ebase}/assessors/{assessor.label}")
                for recon in store.list_reconstructions(session.id):
                    add(recon, f"{ebase}/reconstructions/{recon.id}")
    return out


def daemon_process(mountpoint: Path) -> psutil.Process:
    """The ``xnatfs mount`` daemon serving ``mountpoint``."""
    for process in psutil.process_iter(["cmdline"]):
        cmdline = process.info["cmdline"] or []
        if "mount" in cmdline and str(mountpoint) in cmdline:
            return process
    raise AssertionError(f"no daemon process for {mountpoint}")


#: ``mount_factory(emulator, *options, user="admin", password="admin", name="mnt")`` → a mounted Mounted
MountFactory = Callable[..., Mounted]
