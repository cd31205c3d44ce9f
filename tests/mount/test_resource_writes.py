"""Writing into resources through a real mount: mkdir, cp, overwrite, rm/rmdir with and without
--allow-delete, what cannot map onto XNAT, failed uploads, --read-only."""

from __future__ import annotations

import errno
import hashlib
import os
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

import psutil
import pytest

from mounting import MountFactory, daemon_process, require_tools
from writing import dicom_zip, http_get, mount_writable
from xnatfs.emulator.server import EmulatorServer

pytestmark = [pytest.mark.mount, pytest.mark.usefixtures("no_faults")]

PROJECT = "projects/DEMO"
SCAN = "projects/DEMO/subjects/DEMO_001/experiments/DEMO_001_MR_1/scans/1"


def server_files(server: EmulatorServer, owner: str, label: str) -> dict[str, str]:
    """``path → md5`` of a resource's files, as the server lists them (absent resource: {})."""
    response = http_get(server, f"/data/{owner}/resources/{label}/files", format="json")
    if response.status_code == 404:
        return {}
    response.raise_for_status()
    rows = response.json()["ResultSet"]["Result"]
    return {row["URI"].split("/files/", 1)[1]: row.get("digest", "") for row in rows}


def resource_labels(server: EmulatorServer, owner: str) -> set[str]:
    response = http_get(server, f"/data/{owner}/resources", format="json")
    response.raise_for_status()
    return {row["label"] for row in response.json()["ResultSet"]["Result"]}


def md5(data: bytes) -> str:
    return hashlib.md5(data, usedforsecurity=False).hexdigest()


def errno_of(action: Callable[[], object]) -> int | None:
    try:
        action()
    except OSError as exc:
        return exc.errno
    return None


def run(*command: str | Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(c) for c in command], capture_output=True, text=True, timeout=60)


def test_mkdir_makes_a_resource_and_cp_uploads_into_it(server: EmulatorServer, mount_factory: MountFactory,
                                                       tmp_path: Path) -> None:
    require_tools("cp", "mkdir")
    mounted = mount_writable(server, mount_factory, tmp_path)
    resources = mounted.path / PROJECT / "resources"
    assert os.stat(resources).st_mode & 0o777 == 0o755
    assert run("mkdir", resources / "NOTES").returncode == 0
    assert "NOTES" in resource_labels(server, "projects/DEMO")
    assert "NOTES" in os.listdir(resources)
    local = tmp_path / "report.pdf"
    local.write_bytes(os.urandom(300_000))
    result = run("cp", local, resources / "NOTES/")
    assert result.returncode == 0, result.stderr
    assert server_files(server, "projects/DEMO", "NOTES") == {"report.pdf": md5(local.read_bytes())}
    uploaded = resources / "NOTES/report.pdf"
    assert uploaded.read_bytes() == local.read_bytes()
    assert os.getxattr(uploaded, "user.xnat.md5").decode() == md5(local.read_bytes())
    assert sorted(os.listdir(resources / "NOTES")) == ["report.pdf"]


def test_cp_r_of_a_folder_keeps_the_paths_in_a_new_resource(server: EmulatorServer, mount_factory: MountFactory,
                                                            tmp_path: Path) -> None:
    mounted = mount_writable(server, mount_factory, tmp_path)
    tree = tmp_path / "analysis"
    (tree / "figures/png").mkdir(parents=True)
    files = {"summary.txt": b"ok\n", "figures/a.svg": b"<svg/>\n", "figures/png/b.png": os.urandom(5000)}
    for relpath, data in files.items():
        (tree / relpath).write_bytes(data)
    target = mounted.path / SCAN / "resources"
    result = run("cp", "-r", tree, target)
    assert result.returncode == 0, result.stderr
    owner = "experiments/" + server.store.find_experiment("DEMO", "DEMO_001_MR_1").id + "/scans/1"
    assert server_files(server, owner, "analysis") == {k: md5(v) for k, v in files.items()}
    assert run("diff", "-r", tree, target / "analysis").returncode == 0


def test_cp_onto_an_existing_file_replaces_it_and_in_place_changes_are_refused(
        server: EmulatorServer, mount_factory: MountFactory, tmp_path: Path) -> None:
    mounted = mount_writable(server, mount_factory, tmp_path)
    mounted.expect_errors = True
    folder = mounted.path / PROJECT / "resources/REPLACE"
    folder.mkdir()
    first, second = tmp_path / "first", tmp_path / "second"
    first.write_bytes(b"version one\n" * 100)
    second.write_bytes(b"version two, longer\n" * 100)
    assert run("cp", first, folder / "data.txt").returncode == 0
    result = run("cp", second, folder / "data.txt")  # opens with O_TRUNC: an explicit overwrite
    assert result.returncode == 0, result.stderr
    assert server_files(server, "projects/DEMO", "REPLACE") == {"data.txt": md5(second.read_bytes())}
    assert (folder / "data.txt").read_bytes() == second.read_bytes()
    assert errno_of(lambda: open(folder / "data.txt", "r+b")) == errno.EPERM  # no O_TRUNC: a change in part
    assert errno_of(lambda: open(folder / "data.txt", "ab")) == errno.EPERM
    assert server_files(server, "projects/DEMO", "REPLACE") == {"data.txt": md5(second.read_bytes())}


def test_rm_and_rmdir_need_allow_delete(server: EmulatorServer, mount_factory: MountFactory, tmp_path: Path) -> None:
    plain = mount_writable(server, mount_factory, tmp_path, name="plain")
    plain.expect_errors = True
    folder = plain.path / PROJECT / "resources/DELETE_ME"
    folder.mkdir()
    (folder / "a.txt").write_bytes(b"a\n")
    (folder / "b.txt").write_bytes(b"b\n")
    assert set(server_files(server, "projects/DEMO", "DELETE_ME")) == {"a.txt", "b.txt"}
    result = run("rm", folder / "a.txt")
    assert result.returncode != 0 and "Permission denied" in result.stderr
    assert errno_of(lambda: os.rmdir(folder)) in (errno.EACCES, errno.ENOTEMPTY)
    assert set(server_files(server, "projects/DEMO", "DELETE_ME")) == {"a.txt", "b.txt"}

    allowed = mount_writable(server, mount_factory, tmp_path, "--allow-delete", name="allowed")
    allowed.expect_errors = True
    folder = allowed.path / PROJECT / "resources/DELETE_ME"
    assert errno_of(lambda: os.rmdir(folder)) == errno.ENOTEMPTY
    assert run("rm", folder / "a.txt").returncode == 0
    assert set(server_files(server, "projects/DEMO", "DELETE_ME")) == {"b.txt"}
    assert sorted(os.listdir(folder)) == ["b.txt"]
    assert run("rm", folder / "b.txt").returncode == 0
    assert run("rmdir", folder).returncode == 0
    assert "DELETE_ME" not in resource_labels(server, "projects/DEMO")
    assert "DELETE_ME" not in os.listdir(allowed.path / PROJECT / "resources")


def test_what_cannot_map_onto_xnat_fails_with_a_clear_errno(server: EmulatorServer, mount_factory: MountFactory,
                                                            tmp_path: Path) -> None:
    mounted = mount_writable(server, mount_factory, tmp_path, "--allow-delete")
    mounted.expect_errors = True
    folder = mounted.path / PROJECT / "resources/MAPPING"
    folder.mkdir()
    (folder / "kept.txt").write_bytes(b"kept\n")
    stored = dict(server_files(server, "projects/DEMO", "MAPPING"))
    project = mounted.path / PROJECT
    refused = {
        "rename a file": (lambda: os.rename(folder / "kept.txt", folder / "moved.txt"), errno.EPERM),
        "rename a resource": (lambda: os.rename(folder, project / "resources/OTHER"), errno.EPERM),
        "chmod": (lambda: os.chmod(folder / "kept.txt", 0o600), errno.EPERM),
        "chown": (lambda: os.chown(folder / "kept.txt", 1234, 1234), errno.EPERM),
        "truncate a server file": (lambda: os.truncate(folder / "kept.txt", 0), errno.EPERM),
        "hard link": (lambda: os.link(folder / "kept.txt", folder / "linked.txt"), errno.EPERM),
        "symlink": (lambda: os.symlink("kept.txt", folder / "sym.txt"), errno.EPERM),
        "touch a server file": (lambda: os.utime(folder / "kept.txt", (1, 1)), errno.EPERM),
        "extended attribute": (lambda: os.setxattr(folder / "kept.txt", "user.x", b"1"), errno.ENOTSUP),
        "file outside resources": (lambda: (project / "notes.txt").write_bytes(b"x"), errno.EACCES),
        "folder outside resources": (lambda: (project / "subjects/NEW_SUBJECT").mkdir(), errno.EACCES),
        "change xnat.json": (lambda: open(project / "xnat.json", "wb"), errno.EACCES),
        "remove xnat.json": (lambda: os.unlink(project / "xnat.json"), errno.EACCES),
        "write in the prearchive view": (lambda: (mounted.path / "prearchive/x").write_bytes(b"x"), errno.EACCES),
    }
    for what, (action, code) in refused.items():
        assert errno_of(action) == code, what
    result = run("mv", folder / "kept.txt", folder / "moved.txt")
    assert result.returncode != 0 and "not permitted" in result.stderr
    assert server_files(server, "projects/DEMO", "MAPPING") == stored
    assert sorted(os.listdir(folder)) == ["kept.txt"]


def test_cp_p_rsync_inplace_and_mv_work_and_unchanged_metadata_is_accepted(
        server: EmulatorServer, mount_factory: MountFactory, tmp_path: Path) -> None:
    require_tools("cp", "rsync", "mv")
    mounted = mount_writable(server, mount_factory, tmp_path)
    mounted.expect_errors = True
    tree = tmp_path / "tree"
    (tree / "sub").mkdir(parents=True)
    (tree / "a.txt").write_bytes(b"a\n")
    (tree / "sub/b.txt").write_bytes(b"b\n")
    (tree / "run.sh").write_bytes(b"#!/bin/sh\n")
    os.chmod(tree / "run.sh", 0o755)
    resources = mounted.path / PROJECT / "resources"
    (resources / "TOOLS").mkdir()
    result = run("cp", "-p", tree / "a.txt", resources / "TOOLS/")  # times and mode go to the local copy
    assert result.returncode == 0, result.stderr
    command = ("rsync", "-r", "--inplace", "--size-only", "--chmod=D755,F644", f"{tree}/", f"{resources}/SYNC/")
    (resources / "SYNC").mkdir()
    for _ in range(2):  # the second run finds everything there
        result = run(*command)
        assert result.returncode == 0, result.stderr
    assert set(server_files(server, "projects/DEMO", "SYNC")) == {"a.txt", "sub/b.txt", "run.sh"}
    moved = tmp_path / "moved.txt"
    moved.write_bytes(b"moved\n")
    assert run("mv", moved, resources / "TOOLS/").returncode == 0
    assert not moved.exists() and "moved.txt" in server_files(server, "projects/DEMO", "TOOLS")
    uploaded = resources / "TOOLS/a.txt"
    os.chown(uploaded, os.getuid(), os.getgid())  # asks for what is there: accepted
    os.chmod(uploaded, 0o644)
    assert errno_of(lambda: os.chmod(uploaded, 0o755)) == errno.EPERM
    result = run("cp", "-a", tree, resources)
    assert result.returncode == 0, result.stderr  # the folders' times and modes: accepted and ignored (issue 17)
    assert set(server_files(server, "projects/DEMO", "tree")) == {"a.txt", "sub/b.txt", "run.sh"}


def test_a_failed_upload_fails_cp_and_keeps_the_file_with_an_error(server: EmulatorServer,
                                                                   mount_factory: MountFactory,
                                                                   tmp_path: Path) -> None:
    mounted = mount_writable(server, mount_factory, tmp_path)
    mounted.expect_errors = True
    folder = mounted.path / PROJECT / "resources/FAILING"
    folder.mkdir()
    local = tmp_path / "result.csv"
    local.write_bytes(b"a,b\n1,2\n" * 1000)
    os.listdir(folder)
    server.set_faults(fail_rate=1.0, fail_status=500)
    try:
        result = run("cp", local, folder)
    finally:
        server.set_faults(fail_rate=0.0)
    assert result.returncode != 0 and "Input/output error" in result.stderr
    assert server_files(server, "projects/DEMO", "FAILING") == {}
    assert sorted(os.listdir(folder)) == ["result.csv", "result.csv.error"]
    assert (folder / "result.csv").read_bytes() == local.read_bytes()  # nothing lost
    assert "HTTP 500" in (folder / "result.csv.error").read_text()
    assert run("rm", folder / "result.csv").returncode == 0  # local: no --allow-delete needed
    assert os.listdir(folder) == []
    (folder / "empty.txt").touch()
    assert "empty" in (folder / "empty.txt.error").read_text()
    assert server_files(server, "projects/DEMO", "FAILING") == {}


def test_a_large_upload_keeps_the_daemon_memory_flat(server: EmulatorServer, mount_factory: MountFactory,
                                                     tmp_path: Path) -> None:
    mounted = mount_writable(server, mount_factory, tmp_path)
    folder = mounted.path / PROJECT / "resources/LARGE"
    folder.mkdir()
    size = 160 * 1024 * 1024
    local = tmp_path / "large.bin"
    with open(local, "wb") as handle:
        for _ in range(size // (16 * 1024 * 1024)):
            handle.write(os.urandom(16 * 1024 * 1024))
    daemon = daemon_process(mounted.path)
    base = daemon.memory_info().rss
    peak = [base]
    done = threading.Event()

    def sample() -> None:
        while not done.is_set():
            try:
                peak[0] = max(peak[0], daemon.memory_info().rss)
            except psutil.Error:
                return
            time.sleep(0.02)

    sampler = threading.Thread(target=sample)
    sampler.start()
    try:
        result = run("cp", local, folder)
    finally:
        done.set()
        sampler.join()
    assert result.returncode == 0, result.stderr
    assert server_files(server, "projects/DEMO", "LARGE") == {"large.bin": md5(local.read_bytes())}
    assert peak[0] - base < 64 * 1024 * 1024, f"daemon grew by {(peak[0] - base) / 2**20:.0f} MiB"


def test_read_only_refuses_every_write(server: EmulatorServer, mount_factory: MountFactory, tmp_path: Path) -> None:
    mounted = mount_factory(server, "--read-only", "--allow-delete")
    mounted.expect_errors = True
    resources = mounted.path / PROJECT / "resources"
    existing = next(p for p in (resources / "protocols").rglob("*") if p.is_file())
    zip_file = tmp_path / "x.zip"
    zip_file.write_bytes(dicom_zip("RO_TEST")[0])
    refused = {
        "mkdir a resource": lambda: (resources / "RO_NEW").mkdir(),
        "new file in a resource": lambda: (resources / "protocols/new.txt").write_bytes(b"x"),
        "overwrite": lambda: open(existing, "wb"),
        "rm": lambda: os.unlink(existing),
        "rmdir": lambda: os.rmdir(resources / "protocols"),
        "rename": lambda: os.rename(existing, existing.with_name("other")),
        "chmod": lambda: os.chmod(existing, 0o600),
        "touch": lambda: os.utime(existing, (1, 1)),
        "import": lambda: (mounted.path / "import/DEMO/x.zip").write_bytes(zip_file.read_bytes()),
    }
    for what, action in refused.items():
        assert errno_of(action) == errno.EROFS, what
    assert run("cp", zip_file, mounted.path / "import/DEMO/").returncode != 0
    assert os.listdir(mounted.path / "import/DEMO") == []
    assert os.statvfs(mounted.path).f_flag & os.ST_RDONLY


def test_statfs_of_a_writable_mount_reports_the_spool_disk(server: EmulatorServer, mount_factory: MountFactory,
                                                           tmp_path: Path) -> None:
    mounted = mount_writable(server, mount_factory, tmp_path)
    info = os.statvfs(mounted.path)
    assert not info.f_flag & os.ST_RDONLY
    assert info.f_bavail > 0 and info.f_namemax == 255
    spool = os.statvfs(tmp_path)
    assert info.f_blocks * info.f_frsize == spool.f_blocks * spool.f_frsize
    assert sys.platform.startswith("linux")
