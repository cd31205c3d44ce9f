"""``xnatfs download`` against the emulator: the mount's layout, md5s, reruns that fetch nothing,
``.part`` files continued with Range (or restarted when the server ignores it), filters, dry runs,
failures that keep complete files."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

import xnatfs
from transferkit import cli, file_gets, md5_of
from xnatfs.emulator.server import EmulatorServer
from xnatfs.model.transfer import part_path
from xnatfs.transfer import TransferOptions
from xnatfs.transfer.download import open_filesystem, remote_files

pytestmark = pytest.mark.integration

SUBJECT = "projects/DEMO/subjects/DEMO_001"
DICOM = "experiments/DEMO_001_CT_1/scans/2/resources/DICOM"


@pytest.fixture(autouse=True)
def password(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XNATFS_PASSWORD", "admin")


def server_files(server: EmulatorServer, remote: str) -> dict[str, tuple[int, str]]:
    """relative path → (size, md5) of every file below ``remote``, as the mount names them."""
    with xnatfs.connect(server.url, "admin", "admin") as connection:
        fs = open_filesystem(connection)
        try:
            return {e.relpath: (e.size, e.md5) for e in remote_files(fs, remote, TransferOptions())}
        finally:
            fs.close()


def local_files(root: Path) -> dict[str, tuple[int, str]]:
    return {p.relative_to(root).as_posix(): (p.stat().st_size, md5_of(p)) for p in root.rglob("*") if p.is_file()}


def test_a_subject_downloads_with_the_mount_paths_and_right_md5s(emulator: EmulatorServer, tmp_path: Path) -> None:
    code, summary, err = cli("download", emulator.url, SUBJECT, str(tmp_path / "out"))
    assert code == 0, err
    expected = server_files(emulator, SUBJECT)
    assert len(expected) > 20 and all(md5 for _, md5 in expected.values())
    assert local_files(tmp_path / "out") == expected
    assert f"{DICOM}/2.CT.0001.dcm" in expected and "xnat.json" not in {Path(p).name for p in expected}
    assert summary is not None and summary["files"] == len(expected) and summary["failed"] == []
    assert summary["bytes"] == sum(size for size, _ in expected.values())


def test_a_rerun_fetches_no_file(emulator: EmulatorServer, tmp_path: Path) -> None:
    assert cli("download", emulator.url, SUBJECT, str(tmp_path))[0] == 0
    emulator.faults.reset_counts()
    code, summary, _ = cli("download", emulator.url, SUBJECT, str(tmp_path))
    assert code == 0 and file_gets(emulator) == 0
    assert summary is not None and summary["files"] == 0 and summary["bytes"] == 0 and summary["skipped"] > 20


def _half_done(tmp_path: Path, relpath: str, garbage: bool = False) -> tuple[Path, int, int]:
    """Turn a downloaded file into a ``.part`` file holding its first half (or half its size of garbage)."""
    target = tmp_path / relpath
    size = target.stat().st_size
    data = target.read_bytes()[: size // 2]
    target.unlink()
    part_path(target).write_bytes(bytes(255 - b for b in data) if garbage else data)
    return target, size, size // 2


def test_a_part_file_is_continued_with_range(emulator: EmulatorServer, tmp_path: Path) -> None:
    remote = f"{SUBJECT}/{DICOM}"
    assert cli("download", emulator.url, remote, str(tmp_path))[0] == 0
    expected = local_files(tmp_path)
    target, size, half = _half_done(tmp_path, "2.CT.0001.dcm")
    emulator.faults.reset_counts()
    code, summary, _ = cli("download", emulator.url, remote, str(tmp_path))
    assert code == 0 and summary is not None
    assert summary["files"] == 1 and summary["bytes"] == size - half  # only the missing half moved
    assert file_gets(emulator) == 1 and not part_path(target).exists()
    assert local_files(tmp_path) == expected


def test_a_server_that_ignores_range_restarts_the_file(faults: EmulatorServer, tmp_path: Path) -> None:
    remote = f"{SUBJECT}/{DICOM}"
    assert cli("download", faults.url, remote, str(tmp_path))[0] == 0
    expected = local_files(tmp_path)
    target, size, _ = _half_done(tmp_path, "2.CT.0001.dcm")
    faults.set_faults(no_range=True)
    code, summary, _ = cli("download", faults.url, remote, str(tmp_path))
    assert code == 0 and summary is not None and summary["bytes"] == size
    assert local_files(tmp_path) == expected


def test_stale_part_bytes_are_caught_by_the_md5_and_fetched_again(emulator: EmulatorServer, tmp_path: Path) -> None:
    remote = f"{SUBJECT}/{DICOM}"
    assert cli("download", emulator.url, remote, str(tmp_path))[0] == 0
    expected = local_files(tmp_path)
    _, size, half = _half_done(tmp_path, "2.CT.0002.dcm", garbage=True)
    code, summary, _ = cli("download", emulator.url, remote, str(tmp_path))
    assert code == 0 and summary is not None and summary["bytes"] == (size - half) + size
    assert local_files(tmp_path) == expected


def test_a_changed_local_file_of_the_same_size_is_replaced(emulator: EmulatorServer, tmp_path: Path) -> None:
    remote = f"{SUBJECT}/{DICOM}"
    assert cli("download", emulator.url, remote, str(tmp_path))[0] == 0
    expected = local_files(tmp_path)
    victim = tmp_path / "2.CT.0003.dcm"
    victim.write_bytes(b"\0" * victim.stat().st_size)
    code, summary, _ = cli("download", emulator.url, remote, str(tmp_path))
    assert code == 0 and summary is not None and summary["files"] == 1
    assert local_files(tmp_path) == expected


def test_filters_and_a_dry_run(emulator: EmulatorServer, tmp_path: Path) -> None:
    everything = server_files(emulator, SUBJECT)
    dicom = {p for p in everything if p.endswith(".dcm") and "/scans/3/" not in p}
    code, summary, _ = cli("download", emulator.url, SUBJECT, str(tmp_path / "dry"), "--include", "*.dcm",
                           "--exclude", "experiments/*/scans/3/*", "--dry-run")
    assert code == 0 and summary is not None and summary["planned"] == len(dicom) > 0
    assert not (tmp_path / "dry").exists()
    assert cli("download", emulator.url, SUBJECT, str(tmp_path / "real"), "--include", "*.dcm",
               "--exclude", "experiments/*/scans/3/*")[0] == 0
    assert set(local_files(tmp_path / "real")) == dicom


def test_failures_exit_1_with_their_list_and_complete_files_stay(emulator: EmulatorServer, tmp_path: Path) -> None:
    remote = f"{SUBJECT}/{DICOM}"
    assert cli("download", emulator.url, remote, str(tmp_path))[0] == 0
    blocked = tmp_path / "2.CT.0004.dcm"
    blocked.unlink()
    blocked.mkdir()  # a folder where the file should go: that one file cannot be written
    other = tmp_path / "2.CT.0005.dcm"
    before = (other.stat().st_ino, md5_of(other))
    code, summary, err = cli("download", emulator.url, remote, str(tmp_path))
    assert code == 1 and summary is not None
    assert [f["path"] for f in summary["failed"]] == ["2.CT.0004.dcm"]
    assert "failed:\n  2.CT.0004.dcm: " in err
    assert (other.stat().st_ino, md5_of(other)) == before  # a complete file is never touched


def test_a_missing_remote_path_is_an_error_in_words(emulator: EmulatorServer, tmp_path: Path) -> None:
    code, summary, err = cli("download", emulator.url, "projects/DEMO/subjects/NOBODY", str(tmp_path))
    assert code == 1 and summary is None and "NOBODY" in err and "admin" not in err.replace("-u admin", "")
    assert os.listdir(tmp_path) == []


def test_a_zip_member_with_the_wrong_md5_is_not_written(emulator: EmulatorServer, tmp_path: Path) -> None:
    from xnatfs.model.transfer import zip_to_files

    with xnatfs.connect(emulator.url, "admin", "admin") as connection:
        fs = open_filesystem(connection)
        try:
            entries = remote_files(fs, f"{SUBJECT}/{DICOM}", TransferOptions())
        finally:
            fs.close()
        assert len(entries) >= 4 and entries[0].file is not None and entries[0].resource is not None
        wanted = {e.file.relpath: (tmp_path / e.relpath, e.size, e.md5) for e in entries if e.file is not None}
        bad = entries[1].file.relpath  # type: ignore[union-attr]
        wanted[bad] = (wanted[bad][0], wanted[bad][1], "0" * 32)
        emulator.faults.reset_counts()
        written = zip_to_files(connection.session, entries[0].resource.uri + "/files", wanted, spool_dir=tmp_path)
    routes = emulator.faults.counts()["by_route"]
    assert written == set(wanted) - {bad}, routes
    assert [key for key in routes if key.startswith("GET ")] == [
        "GET /data/experiments/<experiment>/scans/<scan>/resources/<resource>/files"], routes  # one zip, nothing else
    assert not (tmp_path / bad).exists() and not list(tmp_path.rglob("*.part"))
    good = [e for e in entries if e.file is not None and e.file.relpath != bad]
    assert all(md5_of(tmp_path / e.relpath) == e.md5 for e in good)


def test_plain_lines_and_a_progress_bar(emulator: EmulatorServer, tmp_path: Path) -> None:
    import io

    from xnatfs.transfer_commands import run

    remote = f"{SUBJECT}/{DICOM}"
    out, err = io.StringIO(), io.StringIO()
    assert run("download", [emulator.url, remote, str(tmp_path / "a"), "-u", "admin"], out, err) == 0
    lines = err.getvalue().splitlines()
    assert lines[0].startswith("download: ") and "ok 2.CT.0001.dcm" in lines
    assert lines[-1].startswith("downloaded ") and out.getvalue() == ""
    out, err = io.StringIO(), io.StringIO()
    assert run("download", [emulator.url, remote, str(tmp_path / "b"), "-u", "admin", "--progress"], out, err) == 0
    assert "files" in err.getvalue() and "ok 2.CT.0001.dcm" not in err.getvalue()  # the bar, not the lines


def test_a_file_path_downloads_that_file_and_metadata_comes_on_request(emulator: EmulatorServer,
                                                                        tmp_path: Path) -> None:
    expected = server_files(emulator, f"{SUBJECT}/{DICOM}")["2.CT.0001.dcm"]
    code, summary, _ = cli("download", emulator.url, f"{SUBJECT}/{DICOM}/2.CT.0001.dcm", str(tmp_path / "one"))
    assert code == 0 and summary is not None and summary["files"] == 1
    assert local_files(tmp_path / "one") == {"2.CT.0001.dcm": expected}

    remote = f"{SUBJECT}/experiments/DEMO_001_CT_1/scans/2"
    assert cli("download", emulator.url, remote, str(tmp_path / "meta"), "--with-metadata")[0] == 0
    import json

    assert json.loads((tmp_path / "meta" / "xnat.json").read_text())["URI"].endswith("/scans/2")
    assert (tmp_path / "meta" / "xnat.xml").read_bytes().lstrip().startswith(b"<")
    code, summary, _ = cli("download", emulator.url, remote, str(tmp_path / "meta"), "--with-metadata")
    assert code == 0 and summary is not None and summary["files"] == 0  # unchanged documents are not rewritten
