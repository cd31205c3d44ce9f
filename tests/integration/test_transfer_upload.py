"""``xnatfs upload`` against the emulator: 300 files into a new resource land with the right md5s and
a rerun sends no write; files the server has with other content need ``--overwrite``; a folder
inside a resource keeps its prefix; a path that is no resource is a usage error."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

import xnatfs
from transferkit import cli, writes
from xnatfs.emulator.server import EmulatorServer

pytestmark = pytest.mark.integration

SCAN = "projects/UP/subjects/S1/experiments/E1/scans/2"


@pytest.fixture
def server(fresh_emulator: EmulatorServer, monkeypatch: pytest.MonkeyPatch) -> EmulatorServer:
    monkeypatch.setenv("XNATFS_PASSWORD", "admin")
    store = fresh_emulator.store
    store.create_project("UP")
    subject = store.create_subject("UP", "S1")
    experiment = store.create_experiment("UP", subject.id, "E1")
    store.create_scan(experiment.id, "2")
    return fresh_emulator


def listing(server: EmulatorServer, resource_path: str) -> dict[str, tuple[int, str]]:
    """path in the resource → (size, md5), read with the library (not the transfer code)."""
    with xnatfs.connect(server.url, "admin", "admin") as connection:
        resource = connection.object_at("/data/" + resource_path)
        return {f.path: (f.size, f.digest) for f in resource.files.values()}


def make_tree(root: Path, count: int) -> dict[str, tuple[int, str]]:
    files = {}
    for i in range(count):
        relpath = f"series{i % 3}/sub{i % 7}/img{i:04d}.dcm"
        data = f"file {i} ".encode() * (1 + i % 50)
        (root / relpath).parent.mkdir(parents=True, exist_ok=True)
        (root / relpath).write_bytes(data)
        files[relpath] = (len(data), hashlib.md5(data).hexdigest())
    return files


def test_300_files_land_in_a_new_resource_and_a_rerun_sends_no_write(server: EmulatorServer, tmp_path: Path) -> None:
    expected = make_tree(tmp_path, 300)
    remote = f"{SCAN}/resources/DICOM"
    code, summary, err = cli("upload", server.url, str(tmp_path), remote)
    assert code == 0, err
    assert summary is not None and summary["files"] == 300 and summary["failed"] == []
    assert listing(server, remote) == expected

    server.faults.reset_counts()
    code, summary, _ = cli("upload", server.url, str(tmp_path), remote)
    assert code == 0 and summary is not None and summary["skipped"] == 300 and summary["files"] == 0
    assert writes(server) == 0


def test_other_content_needs_overwrite_and_a_folder_prefix_is_kept(server: EmulatorServer, tmp_path: Path) -> None:
    local = tmp_path / "notes"
    local.mkdir()
    (local / "a.txt").write_bytes(b"first version")
    (local / "b.txt").write_bytes(b"unchanged")
    remote = f"{SCAN}/resources/NOTES/extra/deeper"
    assert cli("upload", server.url, str(local), remote)[0] == 0
    assert set(listing(server, f"{SCAN}/resources/NOTES")) == {"extra/deeper/a.txt", "extra/deeper/b.txt"}

    (local / "a.txt").write_bytes(b"second version!")
    server.faults.reset_counts()
    code, summary, err = cli("upload", server.url, str(local), remote)
    assert code == 1 and summary is not None and [f["path"] for f in summary["failed"]] == ["a.txt"]
    assert "--overwrite" in err and writes(server) == 0
    assert listing(server, f"{SCAN}/resources/NOTES")["extra/deeper/a.txt"][0] == len(b"first version")

    code, summary, _ = cli("upload", server.url, str(local), remote, "--overwrite")
    assert code == 0 and summary is not None and summary["files"] == 1 and summary["skipped"] == 1
    new = listing(server, f"{SCAN}/resources/NOTES")["extra/deeper/a.txt"]
    assert new == (len(b"second version!"), hashlib.md5(b"second version!").hexdigest())


def test_a_dry_run_creates_nothing_and_a_non_resource_path_is_refused(server: EmulatorServer, tmp_path: Path) -> None:
    make_tree(tmp_path, 5)
    server.faults.reset_counts()
    code, summary, _ = cli("upload", server.url, str(tmp_path), f"{SCAN}/resources/NEW", "--dry-run")
    assert code == 0 and summary is not None and summary["planned"] == 5 and writes(server) == 0
    code, summary, err = cli("upload", server.url, str(tmp_path), "projects/UP/subjects/S1")
    assert code == 2 and "not a resource" in err and writes(server) == 0


def test_a_single_file_goes_to_its_name_in_the_folder(server: EmulatorServer, tmp_path: Path) -> None:
    (tmp_path / "report.pdf").write_bytes(b"%PDF-1.4 not really")
    assert cli("upload", server.url, str(tmp_path / "report.pdf"), f"{SCAN}/resources/DOCS/reports")[0] == 0
    assert listing(server, f"{SCAN}/resources/DOCS") == {
        "reports/report.pdf": (19, hashlib.md5(b"%PDF-1.4 not really").hexdigest())}
