"""``import/<project>/`` through a real mount: cp of DICOM zips, the result, failures, killed writers."""

from __future__ import annotations

import errno
import json
import os
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import pytest

from mounting import MountFactory, require_tools
from writing import (
    digests,
    dicom_zip,
    files_under,
    http_get,
    imports_requested,
    mount_writable,
    prearchive_path,
    pydicom_zip,
    reset_requests,
    session_dicom,
)
from xnatfs.emulator.server import EmulatorServer

pytestmark = [pytest.mark.mount, pytest.mark.usefixtures("no_faults")]


def cp(source: Path, target: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["cp", str(source), str(target)], capture_output=True, text=True, timeout=60)


def write_local(tmp_path: Path, name: str, data: bytes) -> Path:
    path = tmp_path / name
    path.write_bytes(data)
    return path


def test_ls_import_lists_the_projects_the_user_can_write_to(server: EmulatorServer, mount_factory: MountFactory,
                                                            tmp_path: Path) -> None:
    mounted = mount_writable(server, mount_factory, tmp_path)
    assert sorted(os.listdir(mounted.path)) == ["bids", "import", "prearchive", "projects"]
    assert sorted(os.listdir(mounted.path / "import")) == sorted(p.id for p in server.store.list_projects())
    assert os.listdir(mounted.path / "import/DEMO") == []
    assert os.stat(mounted.path / "import/DEMO").st_mode & 0o777 == 0o755


def test_cp_of_a_dicom_zip_lands_in_the_prearchive_byte_for_byte(server: EmulatorServer,
                                                                 mount_factory: MountFactory, tmp_path: Path) -> None:
    require_tools("cp")
    mounted = mount_writable(server, mount_factory, tmp_path)
    data, members = dicom_zip("IMP_ONE", slices=5, series=2)
    source = write_local(tmp_path, "scan.zip", data)
    before = set(os.listdir(mounted.path / "prearchive/DEMO")) if (mounted.path / "prearchive/DEMO").exists() else set()
    counter = reset_requests(server)
    result = cp(source, mounted.path / "import/DEMO/")
    assert result.returncode == 0, result.stderr
    assert imports_requested(counter) == 1
    folder = mounted.path / "import/DEMO"
    assert sorted(os.listdir(folder)) == ["scan.zip.result"]  # the zip was sent; its local copy is gone
    assert not (folder / "scan.zip").exists()  # the kernel was told to forget it, despite the 60 s TTL
    uris = (folder / "scan.zip.result").read_text().split()
    assert len(uris) == 1 and uris[0].startswith("/data/prearchive/projects/DEMO/")
    with pytest.raises(OSError) as info:
        (folder / "scan.zip.result").write_text("x")
    assert info.value.errno == errno.EACCES
    session = prearchive_path(mounted, uris[0])
    assert session.parent.name not in before  # visible at once: the prearchive listing was refreshed
    assert json.loads((session / "xnat.json").read_text())["status"] == "READY"
    stored = session_dicom(session)
    assert digests(stored.values()) == digests(members.values())  # every file, byte for byte
    one = next(iter(stored))
    http = http_get(server, f"{uris[0]}/scans/{one.split('/')[0]}/resources/DICOM/files/{one.rsplit('/', 1)[1]}")
    assert http.status_code == 200 and http.content == stored[one]
    log = mounted.log_text()
    assert "Importing /import/DEMO/scan.zip" in log and "Imported /import/DEMO/scan.zip" in log


def test_pydicom_test_files_import_byte_for_byte(server: EmulatorServer, mount_factory: MountFactory,
                                                 tmp_path: Path) -> None:
    mounted = mount_writable(server, mount_factory, tmp_path)
    data, members = pydicom_zip()
    source = write_local(tmp_path, "pydicom.zip", data)
    result = cp(source, mounted.path / "import/STUDY2/")
    assert result.returncode == 0, result.stderr
    uris = (mounted.path / "import/STUDY2/pydicom.zip.result").read_text().split()
    assert len(uris) >= 2  # one session per study
    stored: list[bytes] = []
    for uri in uris:
        scans = files_under(prearchive_path(mounted, uri) / "scans")
        stored += [data for path, data in scans.items() if "/resources/" in path]
    assert digests(stored) == digests(members.values())


def test_import_destination_archive_puts_the_session_in_the_archive(server: EmulatorServer,
                                                                    mount_factory: MountFactory,
                                                                    tmp_path: Path) -> None:
    mounted = mount_writable(server, mount_factory, tmp_path, "--import-destination", "archive")
    subjects = mounted.path / "projects/DEMO/subjects"
    assert "IMP_ARC" not in os.listdir(subjects)  # listed (and cached) before the import
    data, members = dicom_zip("IMP_ARC", slices=3)
    result = cp(write_local(tmp_path, "arc.zip", data), mounted.path / "import/DEMO/arc.zip")
    assert result.returncode == 0, result.stderr
    uri = (mounted.path / "import/DEMO/arc.zip.result").read_text().strip()
    assert uri.startswith("/data/") and "prearchive" not in uri
    assert "IMP_ARC" in os.listdir(subjects)  # at once, although the metadata TTL is 60 s
    experiments = os.listdir(subjects / "IMP_ARC/experiments")
    assert len(experiments) == 1
    stored = session_dicom(subjects / "IMP_ARC/experiments" / experiments[0])
    assert digests(stored.values()) == digests(members.values())


def overlap_bomb(copies: int = 20, size: int = 64 * 1024 * 1024) -> bytes:
    """Issue 18: one deflated member (a DICOM header, then zeros) that ``copies`` central entries point at."""
    import struct
    import zlib

    head = bytes(128) + b"DICM" + bytes(64)
    compressor = zlib.compressobj(9, zlib.DEFLATED, -15)
    data = compressor.compress(head) + compressor.compress(bytes(size - len(head))) + compressor.flush()
    crc = zlib.crc32(bytes(size - len(head)), zlib.crc32(head))
    local = struct.pack("<4s5H3L2H", b"PK\x03\x04", 20, 0, 8, 0, 0, crc, len(data), size, 7, 0) + b"m00.dcm" + data
    central = b"".join(struct.pack("<4s6H3L5H2L", b"PK\x01\x02", 20, 20, 0, 8, 0, 0, crc, len(data), size, 7, 0, 0,
                                   0, 0, 0, 0) + f"m{i:02d}.dcm".encode() for i in range(copies))
    return local + central + struct.pack("<4s4H2LH", b"PK\x05\x06", 0, 0, copies, copies, len(central), len(local), 0)


@pytest.mark.parametrize("kind", ["truncated", "damaged", "no-dicom", "not-a-zip", "overlap-bomb"])
def test_a_bad_zip_is_never_sent_and_stays_with_an_error(kind: str, server: EmulatorServer,
                                                         mount_factory: MountFactory, tmp_path: Path) -> None:
    mounted = mount_writable(server, mount_factory, tmp_path)
    mounted.expect_errors = True
    good, members = dicom_zip(f"IMP_BAD_{kind.upper()}")
    if kind == "truncated":
        data, words = good[: len(good) * 2 // 3], "not a complete zip archive"
    elif kind == "damaged":
        with zipfile.ZipFile(tmp_path / "x.zip", "w", zipfile.ZIP_STORED) as archive:
            for name, blob in members.items():
                archive.writestr(name, blob)
        data = bytearray((tmp_path / "x.zip").read_bytes())
        data[len(data) // 2] ^= 0xFF  # inside a stored member: its CRC no longer matches
        data, words = bytes(data), "damaged"
    elif kind == "no-dicom":
        with zipfile.ZipFile(tmp_path / "x.zip", "w") as archive:
            archive.writestr("notes/README.txt", "not an image\n")
            archive.writestr("notes/data.csv", "a,b\n1,2\n")
        data, words = (tmp_path / "x.zip").read_bytes(), "contains no DICOM files"
    elif kind == "overlap-bomb":
        data, words = overlap_bomb(), "its members overlap"
    else:
        data, words = b"plain text, not a zip\n" * 100, "not a zip archive"
    source = write_local(tmp_path, "bad.zip", data)
    counter = reset_requests(server)
    started = time.monotonic()
    result = cp(source, mounted.path / "import/DEMO/")
    assert time.monotonic() - started < 5.0  # the bomb: refused from its layout, never inflated 20 times
    assert result.returncode != 0 and "Input/output error" in result.stderr
    folder = mounted.path / "import/DEMO"
    assert sorted(os.listdir(folder)) == ["bad.zip", "bad.zip.error"]
    assert (folder / "bad.zip").read_bytes() == data  # kept, readable
    assert words in (folder / "bad.zip.error").read_text()
    assert imports_requested(counter) == 0
    os.unlink(folder / "bad.zip")  # removable, and its note goes with it
    assert os.listdir(folder) == []


def test_close_reports_the_failure_to_the_writing_program(server: EmulatorServer, mount_factory: MountFactory,
                                                          tmp_path: Path) -> None:
    mounted = mount_writable(server, mount_factory, tmp_path)
    mounted.expect_errors = True
    handle = open(mounted.path / "import/DEMO/half.zip", "wb")  # noqa: SIM115 - close is what is tested
    handle.write(dicom_zip("IMP_HALF")[0][:500])
    with pytest.raises(OSError) as info:
        handle.close()
    assert info.value.errno == errno.EIO
    assert (mounted.path / "import/DEMO/half.zip.error").exists()


WRITER = """
import os, sys, time
data = open(sys.argv[2], "rb").read()
part = int(sys.argv[3])
fd = os.open(sys.argv[1], os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
os.write(fd, data[:part])
print("written", flush=True)
time.sleep(60)
"""


@pytest.mark.parametrize("share", [0.5, 1.0])
def test_a_writer_killed_with_sigkill_causes_no_import(share: float, server: EmulatorServer,
                                                       mount_factory: MountFactory, tmp_path: Path) -> None:
    """Killed halfway (a truncated zip) or after its last write (a complete zip): never imported."""
    mounted = mount_writable(server, mount_factory, tmp_path)
    mounted.expect_errors = True
    data, _ = dicom_zip(f"IMP_KILLED_{int(share * 100)}", slices=6)
    source = write_local(tmp_path, "killed.zip", data)
    counter = reset_requests(server)
    part = int(len(data) * share)
    target = mounted.path / "import/DEMO/killed.zip"
    writer = subprocess.Popen([sys.executable, "-c", WRITER, str(target), str(source), str(part)],
                              stdout=subprocess.PIPE, text=True)
    assert writer.stdout is not None and writer.stdout.readline().strip() == "written"
    writer.kill()
    assert writer.wait(timeout=30) == -9
    time.sleep(0.2)
    folder = mounted.path / "import/DEMO"
    assert sorted(os.listdir(folder)) == ["killed.zip", "killed.zip.error"]
    assert (folder / "killed.zip").read_bytes() == data[:part]
    assert "killed by SIGKILL" in (folder / "killed.zip.error").read_text()
    assert imports_requested(counter) == 0


def test_a_refusing_server_fails_close_with_eio_and_a_second_copy_succeeds(server: EmulatorServer,
                                                                            mount_factory: MountFactory,
                                                                            tmp_path: Path) -> None:
    mounted = mount_writable(server, mount_factory, tmp_path)
    mounted.expect_errors = True
    data, _ = dicom_zip("IMP_REFUSED")
    source = write_local(tmp_path, "refused.zip", data)
    folder = mounted.path / "import/DEMO"
    os.listdir(folder)
    server.set_faults(fail_rate=1.0, fail_status=500)
    try:
        result = cp(source, folder / "refused.zip")
    finally:
        server.set_faults(fail_rate=0.0)
    assert result.returncode != 0 and "Input/output error" in result.stderr
    assert (folder / "refused.zip").read_bytes() == data
    error = (folder / "refused.zip.error").read_text()
    assert "refused by the server" in error and "HTTP 500" in error
    result = cp(source, folder / "refused.zip")  # cp onto the kept copy: sent again
    assert result.returncode == 0, result.stderr
    assert sorted(os.listdir(folder)) == ["refused.zip.result"]


def test_two_zips_copied_at_once_both_import(server: EmulatorServer, mount_factory: MountFactory,
                                             tmp_path: Path) -> None:
    mounted = mount_writable(server, mount_factory, tmp_path)
    sources = [write_local(tmp_path, f"both{i}.zip", dicom_zip(f"IMP_BOTH_{i}", slices=8)[0]) for i in (1, 2)]
    counter = reset_requests(server)
    copies = [subprocess.Popen(["cp", str(s), str(mounted.path / "import/DEMO/")], stderr=subprocess.PIPE)
              for s in sources]
    assert [c.wait(timeout=60) for c in copies] == [0, 0]
    assert sorted(os.listdir(mounted.path / "import/DEMO")) == ["both1.zip.result", "both2.zip.result"]
    assert imports_requested(counter) == 2
    for i in (1, 2):
        uri = (mounted.path / f"import/DEMO/both{i}.zip.result").read_text().strip()
        assert (prearchive_path(mounted, uri) / "xnat.json").exists()


def test_what_the_import_directory_refuses(server: EmulatorServer, mount_factory: MountFactory,
                                           tmp_path: Path) -> None:
    mounted = mount_writable(server, mount_factory, tmp_path)
    mounted.expect_errors = True
    folder = mounted.path / "import/DEMO"
    refused = {
        "a note's name": (lambda: (folder / "x.zip.error").write_bytes(b"x"), errno.EACCES),
        "a folder": (lambda: (folder / "sub").mkdir(), errno.EPERM),
        "a project folder": (lambda: (mounted.path / "import/NEW").mkdir(), errno.EACCES),
        "outside a project": (lambda: (mounted.path / "import/x.zip").write_bytes(b"x"), errno.EACCES),
        "a project's removal": (lambda: (folder).rmdir(), errno.EACCES),
    }
    for what, (action, code) in refused.items():
        with pytest.raises(OSError) as info:
            action()
        assert info.value.errno == code, what
    result = subprocess.run(["cp", "/etc/hostname", str(folder / "x.zip")], capture_output=True, text=True)
    assert result.returncode != 0  # not a zip: kept with an error
    with pytest.raises(OSError) as info:
        os.rename(folder / "x.zip", folder / "y.zip")
    assert info.value.errno == errno.EPERM
    assert sorted(os.listdir(folder)) == ["x.zip", "x.zip.error"]
