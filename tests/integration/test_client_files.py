"""Reading files: seekable ranged reads, the Range-ignored fallback, md5-checked downloads, zips."""

from __future__ import annotations

import hashlib
import io
import logging
import random
from pathlib import Path

import pytest

import xnatfs
from xnatfs.emulator.server import EmulatorServer
from xnatfs.errors import ChecksumMismatch
from xnatfs.model.connect import Connection
from xnatfs.model.files import File
from xnatfs.settings import ReadSettings, Settings

pytestmark = pytest.mark.integration


def stored_bytes(emulator: EmulatorServer, file: File) -> bytes:
    return emulator.store.disk_path(int(file.resource.id), file.path).read_bytes()


def t1_files(connection: Connection):  # type: ignore[no-untyped-def]
    session = connection.projects["DEMO"].subjects["DEMO_001"].experiments["DEMO_001_MR_1"]
    return session.scans["2"].resources["DICOM"].files


def test_open_reads_and_seeks_like_a_local_file(xnat: Connection, emulator: EmulatorServer) -> None:
    file = t1_files(xnat)["2.MR.0001.dcm"]
    expected = stored_bytes(emulator, file)
    with file.open() as handle:
        assert handle.seekable() and handle.readable()
        assert handle.read(132)[128:] == b"DICM"
        rng = random.Random(3)
        for _ in range(50):
            offset = rng.randrange(0, len(expected))
            length = rng.randrange(0, 3000)
            assert handle.seek(offset) == offset
            assert handle.read(length) == expected[offset:offset + length]
        handle.seek(-10, io.SEEK_END)
        assert handle.read() == expected[-10:]
        assert handle.read(5) == b""
        handle.seek(0)
        assert handle.read() == expected


def test_a_small_file_costs_one_ranged_request(xnat: Connection, emulator: EmulatorServer) -> None:
    file = t1_files(xnat)["2.MR.0002.dcm"]
    emulator.faults.reset_counts()
    with file.open() as handle:
        data = handle.read()
        handle.seek(100)
        handle.read(100)
    assert len(data) == file.size
    assert emulator.faults.counts()["total"] == 1


def test_range_ignored_falls_back_to_a_stream_and_says_so_once(faults: EmulatorServer,
                                                               caplog: pytest.LogCaptureFixture) -> None:
    faults.set_faults(no_range=True)
    # a first block smaller than the sample's files: a file that fits in it is fetched whole at its
    # first read, which asks for no part of it
    settings = Settings(read=ReadSettings(first_block_size=4096))
    with xnatfs.connect(faults.url, "admin", "admin", settings=settings) as connection, \
            caplog.at_level(logging.WARNING):
        files = list(t1_files(connection))[:3]
        for file in files:
            expected = stored_bytes(faults, file)
            with file.open() as handle:
                handle.seek(5000)
                assert handle.read(100) == expected[5000:5100]
                handle.seek(10)  # backwards: served from the cached block or a new stream
                assert handle.read(20) == expected[10:30]
                handle.seek(0)
                assert handle.read() == expected
    warnings = [r for r in caplog.records if "ignores HTTP Range" in r.getMessage()]
    assert len(warnings) == 1


def test_download_checks_md5_and_reports_progress(xnat: Connection, emulator: EmulatorServer, tmp_path: Path) -> None:
    file = t1_files(xnat)["2.MR.0003.dcm"]
    seen: list[tuple[int, int | None]] = []
    target = file.download(tmp_path, progress=lambda done, total: seen.append((done, total)))
    assert target == tmp_path / "2.MR.0003.dcm"
    assert hashlib.md5(target.read_bytes()).hexdigest() == file.digest
    assert target.read_bytes() == stored_bytes(emulator, file)
    assert seen[-1] == (file.size, file.size)


def test_a_checksum_mismatch_leaves_no_file(xnat: Connection, tmp_path: Path) -> None:
    file = t1_files(xnat)["2.MR.0004.dcm"]
    file._row["digest"] = "0" * 32  # as if the server's catalog disagreed with the bytes
    with pytest.raises(ChecksumMismatch):
        file.download(tmp_path / "x.dcm")
    assert list(tmp_path.iterdir()) == []


def test_download_dir_of_resource_scan_and_session(xnat: Connection, emulator: EmulatorServer, tmp_path: Path) -> None:
    session = xnat.projects["DEMO"].subjects["DEMO_001"].experiments["DEMO_001_MR_1"]
    resource = session.scans["2"].resources["DICOM"]
    resource.download_dir(tmp_path / "res")
    extracted = {p.name: p for p in (tmp_path / "res").rglob("*.dcm")}
    assert len(extracted) == 16
    some = resource.files["2.MR.0007.dcm"]
    assert extracted["2.MR.0007.dcm"].read_bytes() == stored_bytes(emulator, some)
    session.scans["1"].download_dir(tmp_path / "scan")
    assert len(list((tmp_path / "scan").rglob("*.dcm"))) == 3
    session.download_dir(tmp_path / "session")
    assert len(list((tmp_path / "session").rglob("*.dcm"))) == 3 + 16 + 16
    for path in (tmp_path / "session").rglob("*"):
        assert path.resolve().is_relative_to((tmp_path / "session").resolve())
    session.assessors[0].download_dir(tmp_path / "qc")
    assert sorted(p.name for p in (tmp_path / "qc").rglob("*") if p.is_file()) == ["qc.json", "qc_report.txt"]
    xnat.projects["DEMO"].download_dir(tmp_path / "project")  # a project's own resources, as XNAT zips them
    assert sorted(p.name for p in (tmp_path / "project").rglob("*") if p.is_file()) == ["README.txt", "protocol.txt"]
