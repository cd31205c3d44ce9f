"""``xnatfs demo``: the README's main command mounts sample data, prints what to try, Ctrl-C stops it."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

import pytest
from mounting import unmount, xnatfs_command

pytestmark = pytest.mark.mount


def start_demo(cwd: Path, *args: str, env: dict[str, str] | None = None) -> subprocess.Popen:
    return subprocess.Popen(xnatfs_command("demo", *args), cwd=cwd, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, stdin=subprocess.DEVNULL,
                            env={**os.environ, "XDG_CACHE_HOME": str(cwd / "xdg-cache"), **(env or {})})


def wait_mounted(process: subprocess.Popen, path: Path, deadline: float = 30.0) -> None:
    end = time.monotonic() + deadline
    while not os.path.ismount(path):
        assert process.poll() is None, process.communicate()
        assert time.monotonic() < end, "the demo did not mount in time"
        time.sleep(0.1)


def test_demo_mounts_sample_data_at_xnat_demo_and_ctrl_c_cleans_up(tmp_path: Path) -> None:
    mountpoint = tmp_path / "xnat-demo"
    process = start_demo(tmp_path)
    try:
        wait_mounted(process, mountpoint)
        assert sorted(os.listdir(mountpoint / "projects")) == ["DEMO", "STUDY2"]
        session = mountpoint / "projects/DEMO/subjects/DEMO_001/experiments/DEMO_001_MR_1"
        assert len(os.listdir(session / "scans/2/resources/DICOM")) == 16
        assert "2_T1w_MPRAGE.nii.gz" in os.listdir(session / "scans/2/nifti")  # the views are on in the demo
        assert os.listdir(mountpoint / "bids/DEMO/sub-DEMO001/anat") == [
            "sub-DEMO001_T1w.nii.gz", "sub-DEMO001_T1w.json", "sub-DEMO001_FLAIR.nii.gz", "sub-DEMO001_FLAIR.json"]
        process.send_signal(signal.SIGINT)
        stdout, stderr = process.communicate(timeout=30)
        assert process.returncode == 0, stderr
        assert "XNAT emulator with sample data at http://127.0.0.1:" in stdout
        assert "ls xnat-demo/projects" in stdout and "Ctrl-C" in stdout and "xnat-demo/bids/DEMO" in stdout
        assert "Unmounted and stopped." in stdout
        assert "Traceback" not in stderr and "ERROR" not in stderr and "max threads" not in stderr
        assert not os.path.ismount(mountpoint) and not mountpoint.exists()
    finally:
        if process.poll() is None:
            process.kill()
        unmount(mountpoint)


def test_demo_takes_a_mount_point_and_sigterm_stops_it(tmp_path: Path) -> None:
    mountpoint = tmp_path / "elsewhere"
    mountpoint.mkdir()
    old = tmp_path / "cache/xnatfs/spool/mount-1-0000abcd/000001-kept.zip"  # another mount's kept file
    old.parent.mkdir(parents=True, mode=0o700)
    old.write_bytes(b"PK")
    process = start_demo(tmp_path, str(mountpoint), env={**os.environ, "XDG_CACHE_HOME": str(tmp_path / "cache")})
    try:
        wait_mounted(process, mountpoint)
        assert (mountpoint / "projects/DEMO/xnat.json").read_bytes().startswith(b"{")
        process.send_signal(signal.SIGTERM)
        _, stderr = process.communicate(timeout=30)
        assert process.returncode == 0
        assert "earlier mounts" not in stderr and old.exists()  # the demo keeps its own spool
        assert not os.path.ismount(mountpoint) and mountpoint.is_dir()  # not created by the demo: kept
    finally:
        if process.poll() is None:
            process.kill()
        unmount(mountpoint)


def test_demo_refuses_a_busy_mount_point(tmp_path: Path) -> None:
    mountpoint = tmp_path / "xnat-demo"
    first = start_demo(tmp_path)
    try:
        wait_mounted(first, mountpoint)
        second = subprocess.run(xnatfs_command("demo"), cwd=tmp_path, capture_output=True, text=True, timeout=60,
                                stdin=subprocess.DEVNULL)
        assert second.returncode == 1 and "busy" in second.stderr
    finally:
        first.send_signal(signal.SIGINT)
        first.communicate(timeout=30)
        unmount(mountpoint)
