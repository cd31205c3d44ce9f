"""Issue 17 item 5: files a mount could not send are kept with the reason, and ``xnatfs spool`` lists,
re-sends and removes them after the mount is gone (the user's data is never lost, never stuck)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from mounting import MountFactory, daemon_process, unmount
from writing import dicom_zip, mount_writable
from xnatfs.emulator.server import EmulatorServer

pytestmark = pytest.mark.mount


def spool(*args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "XNATFS_PASSWORD": "admin", "HOME": "/nonexistent"}
    return subprocess.run([sys.executable, "-m", "xnatfs", "spool", *args], env=env, capture_output=True,
                          text=True, timeout=60)


def cp(source: Path, target: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["cp", str(source), str(target)], capture_output=True, text=True, timeout=60)


def test_kept_files_are_listed_with_why_then_retried_and_cleared(server: EmulatorServer, mount_factory: MountFactory,
                                                                 tmp_path: Path) -> None:
    mounted = mount_writable(server, mount_factory, tmp_path)
    mounted.expect_errors = True
    spool_dir = mounted.extra["spool"]
    good, _ = dicom_zip("SPOOL_RETRY")
    (tmp_path / "study.zip").write_bytes(good)
    (tmp_path / "broken.zip").write_bytes(good[: len(good) // 2])
    folder = mounted.path / "import/DEMO"
    os.listdir(folder)
    server.set_faults(fail_rate=1.0, fail_status=500)
    try:
        assert cp(tmp_path / "study.zip", folder / "study.zip").returncode != 0
    finally:
        server.set_faults(fail_rate=0.0)
    assert cp(tmp_path / "broken.zip", folder / "broken.zip").returncode != 0
    daemon = daemon_process(mounted.path)
    unmount(mounted.path)
    daemon.wait(timeout=20)  # a running mount's files are left to it

    listed = spool("list", "--spool-dir", str(spool_dir))
    assert listed.returncode == 0, listed.stderr
    lines = listed.stdout.splitlines()
    assert lines[0].split()[:4] == ["ID", "SIZE", "KEPT", "GOING"]
    study = next(line for line in lines if "study.zip" in line)
    broken = next(line for line in lines if "broken.zip" in line)
    assert str(len(good)) in study and "import into DEMO (prearchive)" in study and "HTTP 500" in study
    assert "import into DEMO" in broken and "zip" in broken.lower()
    study_id, broken_id = study.split()[0], broken.split()[0]
    ticket = json.loads((spool_dir / study_id).with_name(f".{Path(study_id).name}.json").read_text())
    assert ticket["server"] == server.url and "admin" not in json.dumps(ticket).replace('"admin"', "")

    retried = spool("retry", "--spool-dir", str(spool_dir), "-u", "admin")  # all: the broken one fails again
    assert retried.returncode == 1
    assert "imported study.zip: /data/prearchive/projects/DEMO/" in retried.stdout
    assert f"{broken_id} not sent, kept" in retried.stderr
    assert not (spool_dir / study_id).exists() and (spool_dir / broken_id).exists()
    sessions = requests_json(server, "/data/prearchive/projects/DEMO")
    assert any(row["name"] == "SPOOL_RETRY" for row in sessions)

    assert spool("clear", "--spool-dir", str(spool_dir)).returncode == 2  # nothing named: refused
    cleared = spool("clear", Path(broken_id).name, "--spool-dir", str(spool_dir))
    assert cleared.returncode == 0 and f"removed {broken_id}" in cleared.stdout
    assert spool("list", "--spool-dir", str(spool_dir)).stdout.startswith("No kept files")


def requests_json(server: EmulatorServer, path: str) -> list[dict]:
    import requests

    answer = requests.get(f"{server.url}{path}", params={"format": "json"}, auth=("admin", "admin"), timeout=30)
    answer.raise_for_status()
    return answer.json()["ResultSet"]["Result"]


def test_a_new_mount_points_at_the_spool_command(server: EmulatorServer, mount_factory: MountFactory,
                                                 tmp_path: Path) -> None:
    kept = tmp_path / "spool-again" / "mount-1-abcd"
    kept.mkdir(parents=True, mode=0o700)
    kept.parent.chmod(0o700)
    (kept / "000001-old.zip").write_bytes(b"PK")
    mounted = mount_writable(server, mount_factory, tmp_path, name="again")
    assert "xnatfs spool list" in mounted.log_text()
