"""Issue 17 item 4: writing into resources behaves like a local folder for ``cp -a``, ``rsync -a`` (without
``--inplace``) and programs that save by writing a temporary file and renaming it."""

from __future__ import annotations

import errno
import os
import subprocess
import tempfile
from pathlib import Path

import pytest

from mounting import MountFactory, require_tools
from writing import http_get, mount_writable
from xnatfs.emulator.server import EmulatorServer

pytestmark = [pytest.mark.mount, pytest.mark.usefixtures("no_faults")]

TREE = {"a.txt": b"alpha\n", "sub/b.dat": bytes(range(256)) * 40, "sub/deeper/c.txt": b"gamma\n"}


def local_tree(root: Path, files: dict[str, bytes] = TREE) -> Path:
    for relpath, data in files.items():
        (root / relpath).parent.mkdir(parents=True, exist_ok=True)
        (root / relpath).write_bytes(data)
    os.utime(root / "a.txt", (1_000_000_000, 1_000_000_000))  # an old time, as a real tree has
    return root


def server_files(server: EmulatorServer, resource: str) -> dict[str, bytes]:
    listing = http_get(server, f"/data/projects/DEMO/resources/{resource}/files", format="json")
    listing.raise_for_status()
    found = {}
    for row in listing.json()["ResultSet"]["Result"]:
        relpath = row["URI"].split("/files/", 1)[1]
        found[relpath] = http_get(server, row["URI"]).content
    return found


def run(*command: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(list(command), capture_output=True, text=True, timeout=60)


def test_cp_a_of_a_tree_exits_0_with_every_file_on_the_server(server: EmulatorServer, mount_factory: MountFactory,
                                                               tmp_path: Path) -> None:
    source = local_tree(tmp_path / "tree")
    mounted = mount_writable(server, mount_factory, tmp_path)
    resources = mounted.path / "projects/DEMO/resources"
    (resources / "CP_A").mkdir()
    done = run("cp", "-a", f"{source}/.", str(resources / "CP_A"))
    assert done.returncode == 0, done.stderr
    assert server_files(server, "CP_A") == TREE
    done = run("cp", "-a", str(source), str(resources / "CP_A/again"))  # cp -a of the folder itself
    assert done.returncode == 0, done.stderr
    assert server_files(server, "CP_A") == {**TREE, **{f"again/{k}": v for k, v in TREE.items()}}


def test_rsync_a_without_inplace_exits_0_and_uploads_under_the_real_names(server: EmulatorServer,
                                                                          mount_factory: MountFactory,
                                                                          tmp_path: Path) -> None:
    require_tools("rsync")
    source = local_tree(tmp_path / "tree")
    mounted = mount_writable(server, mount_factory, tmp_path)
    target = mounted.path / "projects/DEMO/resources/RSYNC_A"
    target.mkdir()
    done = run("rsync", "-a", f"{source}/", f"{target}/")
    assert done.returncode == 0, done.stderr
    assert server_files(server, "RSYNC_A") == TREE  # no ".a.txt.XXXXXX" temporary names
    assert sorted(os.listdir(target)) == ["a.txt", "sub"]

    changed = {**TREE, "a.txt": b"alpha, changed\n"}
    local_tree(source, changed)
    done = run("rsync", "-a", f"{source}/", f"{target}/")  # a second run replaces what changed
    assert done.returncode == 0, done.stderr
    assert server_files(server, "RSYNC_A") == changed
    assert "ERROR" not in mounted.log_text()


def test_save_by_rename_replaces_the_file_on_the_server(server: EmulatorServer, mount_factory: MountFactory,
                                                        tmp_path: Path) -> None:
    mounted = mount_writable(server, mount_factory, tmp_path)
    folder = mounted.path / "projects/DEMO/resources/SAVED"
    folder.mkdir()
    (folder / "notes.txt").write_bytes(b"first version\n")
    assert server_files(server, "SAVED") == {"notes.txt": b"first version\n"}
    for content in (b"second version\n", b"third, from an editor\n"):
        # what careful programs do: write a temporary file in the same folder, then rename it over the file
        with tempfile.NamedTemporaryFile(dir=folder, delete=False) as temporary:
            temporary.write(content)
        assert sorted(os.listdir(folder)) == sorted(["notes.txt", Path(temporary.name).name])  # local until renamed
        os.replace(temporary.name, folder / "notes.txt")
        assert server_files(server, "SAVED") == {"notes.txt": content}
        assert (folder / "notes.txt").read_bytes() == content
    gio = folder / ".goutputstream-AB12CD"  # gedit and Nautilus
    gio.write_bytes(b"fourth\n")
    os.rename(gio, folder / "new.txt")
    assert server_files(server, "SAVED") == {"notes.txt": b"third, from an editor\n", "new.txt": b"fourth\n"}


def test_a_failed_upload_at_rename_fails_the_rename_and_keeps_the_file(server: EmulatorServer,
                                                                       mount_factory: MountFactory,
                                                                       tmp_path: Path) -> None:
    mounted = mount_writable(server, mount_factory, tmp_path)
    mounted.expect_errors = True
    folder = mounted.path / "projects/DEMO/resources/REFUSED"
    folder.mkdir()
    (folder / ".data.csv.Ab3dE9").write_bytes(b"1,2,3\n")
    server.set_faults(fail_rate=1.0, fail_status=500)
    try:
        with pytest.raises(OSError) as failed:
            os.rename(folder / ".data.csv.Ab3dE9", folder / "data.csv")
    finally:
        server.set_faults(fail_rate=0.0)
    assert failed.value.errno == errno.EIO
    assert (folder / "data.csv").read_bytes() == b"1,2,3\n"  # kept, under its new name
    assert "HTTP 500" in (folder / "data.csv.error").read_text()
    done = run("cp", str(folder / "data.csv"), str(tmp_path / "copy.csv"))  # still readable
    assert done.returncode == 0 and (tmp_path / "copy.csv").read_bytes() == b"1,2,3\n"


def test_what_cannot_be_renamed_says_so(server: EmulatorServer, mount_factory: MountFactory, tmp_path: Path) -> None:
    mounted = mount_writable(server, mount_factory, tmp_path)
    folder = mounted.path / "projects/DEMO/resources/protocols"
    with pytest.raises(OSError) as refused:
        os.rename(folder / "protocol.txt", folder / "renamed.txt")  # a server file: XNAT cannot rename
    assert refused.value.errno == errno.EPERM
    assert "protocol.txt" in os.listdir(folder)
    (folder / "draft.tmp").write_bytes(b"never renamed\n")  # a temporary name stays local
    assert (folder / "draft.tmp").read_bytes() == b"never renamed\n"
    assert "draft.tmp" not in server_files(server, "protocols")
