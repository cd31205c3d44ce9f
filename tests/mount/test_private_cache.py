"""Issue 18, row 2, on a real mount: ``--cache-dir`` is private and a planted entry is never served.

The daemon runs under umask 022 (the usual one): its cache folders are 0700 and entries 0600, so another
local user cannot read a cached DICOM's ``PatientName``. A cache folder another user owns, or one others
can write to, is refused before mounting, with the fix. An entry changed in place (same name, same size,
other bytes: planted, or rotted) is not served: reads give the server's bytes.
"""

from __future__ import annotations

import hashlib
import os
import stat
import subprocess
from pathlib import Path

import pytest

from mounting import MOUNT_DEADLINE, MountFactory, require_tools, xnatfs_command
from xnatfs.emulator.server import EmulatorServer

pytestmark = pytest.mark.mount

FILE = "projects/DEMO/subjects/DEMO_001/experiments/DEMO_001_MR_1/scans/2/resources/DICOM/2.MR.0001.dcm"


def read_uncached(path: Path) -> bytes:
    """The file's bytes through the daemon: ``dd iflag=nocache count=0`` drops the kernel's page cache of
    the whole file first (with a count it drops what it read, after reading it)."""
    subprocess.run(["dd", f"if={path}", "iflag=nocache", "count=0", "status=none"], check=True, timeout=30)
    return subprocess.run(["dd", f"if={path}", "bs=1M", "status=none"], capture_output=True, check=True,
                          timeout=30).stdout


def test_the_cache_is_private_and_a_planted_entry_is_never_served(emulator: EmulatorServer, mount_factory: MountFactory,
                                                                 tmp_path: Path, umask_022: None) -> None:
    require_tools("dd")
    cache = tmp_path / "cache"
    mounted = mount_factory(emulator, "--cache-dir", str(cache))
    data = (mounted.path / FILE).read_bytes()
    entries = [p for p in cache.rglob("*") if p.is_file()]
    folders = [cache, *(p for p in cache.rglob("*") if p.is_dir())]
    assert [p.stat().st_size for p in entries] == [len(data)]
    assert stat.S_IMODE(entries[0].stat().st_mode) == 0o600
    assert {stat.S_IMODE(p.stat().st_mode) for p in folders} == {0o700}
    entries[0].write_bytes(b"\0" * len(data))  # same size, other bytes
    assert hashlib.md5(read_uncached(mounted.path / FILE)).digest() == hashlib.md5(data).digest()
    mounted.expect_errors = True  # the dropped entry is a WARNING
    assert "does not match the server's md5" in mounted.log_text()


@pytest.mark.parametrize("case", ["other-owner", "group-writable"])
def test_a_cache_folder_others_control_is_refused_before_mounting(emulator: EmulatorServer, tmp_path: Path,
                                                                 case: str) -> None:
    cache = tmp_path / "cache"
    cache.mkdir(mode=0o700)
    if case == "other-owner":
        os.chown(cache, 65534, 65534)
    else:
        os.chmod(cache, 0o770)
    mountpoint = tmp_path / "mnt"
    mountpoint.mkdir()
    env = {**os.environ, "XNATFS_PASSWORD": "admin"}
    result = subprocess.run(xnatfs_command("mount", emulator.url, str(mountpoint), "--user", "admin", "--cache-dir",
                                           str(cache)), env=env, capture_output=True, text=True,
                            timeout=MOUNT_DEADLINE, stdin=subprocess.DEVNULL)
    assert result.returncode == 2, result.stderr
    assert str(cache) in result.stderr
    assert ("belongs to user id 65534" if case == "other-owner" else f"chmod 700 {cache}") in result.stderr
    assert not os.path.ismount(mountpoint)
    assert list(cache.iterdir()) == []
