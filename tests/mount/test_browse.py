"""Browsing a real mount with real tools: layout, attributes, xattrs, documents, request counts, probes."""

from __future__ import annotations

import errno
import json
import os
import re
import stat
import subprocess
from pathlib import Path

import pytest
import requests

from mounting import ADMIN, MountFactory, Mounted, RequestCounter, expected_files, require_tools
from xnatfs.emulator.server import EmulatorServer

pytestmark = pytest.mark.mount

SESSION = "projects/DEMO/subjects/DEMO_001/experiments/DEMO_001_MR_1"


def run(*command: str, cwd: Path | None = None) -> str:
    result = subprocess.run(command, capture_output=True, text=True, timeout=60, cwd=cwd)
    assert result.returncode == 0, f"{command}: {result.stderr}"
    return result.stdout


def test_find_shows_every_stored_file_at_its_layout_path(mounted: Mounted) -> None:
    expected = expected_files(mounted.emulator.store)
    found = run("find", ".", "-type", "f", cwd=mounted.path).split("\n")
    derived = {line[2:] for line in found if line.startswith("./bids/") or "/nifti/" in line}  # the views
    files = {line[2:] for line in found if line and not line.endswith(("/xnat.json", "/xnat.xml"))} - derived
    assert files == set(expected)
    assert f"{SESSION}/scans/2/nifti/2_T1w_MPRAGE.nii.gz" in derived
    assert f"{SESSION}/scans/2/resources/DICOM/2.MR.0016.dcm" in files
    assert "projects/DEMO/resources/protocols/docs/README.txt" in files


def test_ls_lR_and_stat_report_true_sizes_modes_and_stable_times(mounted: Mounted) -> None:
    require_tools("ls", "stat")
    listing = run("ls", "-lR", ".", cwd=mounted.path)
    assert "2.MR.0001.dcm" in listing and "xnat.json" in listing
    for relpath, row in expected_files(mounted.emulator.store).items():
        info = os.stat(mounted.path / relpath)
        assert info.st_size == row.size, relpath
        assert stat.S_IMODE(info.st_mode) == 0o644 and stat.S_ISREG(info.st_mode)  # writable mount: replaceable
        assert info.st_uid == os.getuid()
        assert info.st_mtime > 1e9
    session = os.stat(mounted.path / SESSION)
    assert stat.S_ISDIR(session.st_mode) and stat.S_IMODE(session.st_mode) == 0o555
    out = run("stat", "-c", "%s %a %F", f"{SESSION}/scans/1/resources/DICOM/1.MR.0001.dcm", cwd=mounted.path)
    assert out.split()[:2] == ["9662", "644"]
    again = os.stat(mounted.path / SESSION / "scans/1/resources/DICOM/1.MR.0001.dcm")
    assert again.st_mtime == os.stat(mounted.path / SESSION / "scans/1/resources/DICOM/1.MR.0001.dcm").st_mtime


def test_getfattr_shows_ids_types_uris_and_md5(mounted: Mounted) -> None:
    require_tools("getfattr")
    store = mounted.emulator.store
    session = store.find_experiment("DEMO", "DEMO_001_MR_1")
    out = run("getfattr", "-d", SESSION, cwd=mounted.path)
    assert f'user.xnat.id="{session.id}"' in out
    assert 'user.xnat.xsitype="xnat:mrSessionData"' in out
    assert f'user.xnat.uri="/data/experiments/{session.id}"' in out
    path = f"{SESSION}/scans/2/resources/DICOM/2.MR.0003.dcm"
    row = expected_files(store)[path]
    out = run("getfattr", "-n", "user.xnat.md5", "--only-values", path, cwd=mounted.path)
    assert out == row.md5
    assert run("getfattr", "-n", "user.xnat.xsitype", "--only-values", f"{SESSION}/scans/2",
               cwd=mounted.path) == "xnat:mrScanData"
    missing = subprocess.run(["getfattr", "-n", "user.nope", SESSION], cwd=mounted.path, capture_output=True,
                             text=True, timeout=30)
    assert missing.returncode != 0 and "No such attribute" in missing.stderr


def test_documents_are_the_objects_fields_and_the_servers_xml(mounted: Mounted) -> None:
    doc = json.loads((mounted.path / SESSION / "xnat.json").read_text())
    assert doc["label"] == "DEMO_001_MR_1" and doc["xsiType"] == "xnat:mrSessionData"
    assert doc["fields"]["modality"] == "MR"
    scan = json.loads((mounted.path / SESSION / "scans/2/xnat.json").read_text())
    assert scan["fields"]["series_description"] == "T1w MPRAGE"
    xml = (mounted.path / SESSION / "xnat.xml").read_bytes()
    server = requests.get(f"{mounted.emulator.url}{doc['URI']}", params={"format": "xml"}, auth=ADMIN, timeout=30)
    assert xml == server.content and xml.lstrip().startswith(b"<?xml")
    assert os.stat(mounted.path / SESSION / "xnat.xml").st_size == len(xml)


def test_find_costs_at_most_one_request_per_directory_and_nothing_within_the_ttl(
        mounted: Mounted, requests_counter: RequestCounter) -> None:
    # a scan's nifti/ is the exception: listing it converts the series, which reads its files
    # (tests/mount/test_views_nifti.py); every other folder keeps the promise
    requests_counter.reset()
    out = run("find", "projects/DEMO", "-name", "nifti", "-prune", "-o", "-type", "d", "-print", cwd=mounted.path)
    directories = len(out.split())
    cold = requests_counter.settle()
    print(f"find over a project: {cold} requests for {directories} directories")
    assert 0 < cold <= directories, (cold, directories, requests_counter.read())
    requests_counter.reset()
    listing = run("find", "projects/DEMO", "-name", "nifti", "-prune", "-o", "-ls", cwd=mounted.path)
    documents = listing.count("/xnat.xml\n")
    # -ls sizes every xnat.xml: one request each, prefetched in parallel for all objects of a folder
    # (so also for project STUDY2, the sibling of DEMO); nothing else
    assert requests_counter.settle() <= documents + 1, requests_counter.read()
    document_route = re.compile(r"GET /data/(projects|subjects|experiments)/<\w+>(/(scans|reconstructions)/<\w+>)?$")
    assert all(document_route.match(route) for route in requests_counter.read()["by_route"])
    requests_counter.reset()
    run("find", "projects/DEMO", "-name", "nifti", "-prune", "-o", "-ls", cwd=mounted.path)
    run("ls", "-lR", "--ignore=nifti", "projects/DEMO", cwd=mounted.path)
    assert requests_counter.total() == 0


def test_desktop_probes_are_answered_without_requests(mounted: Mounted, requests_counter: RequestCounter) -> None:
    folders = ("", "projects", "projects/DEMO/subjects", f"{SESSION}/scans/2/resources/DICOM")
    for folder in folders:  # the folders themselves are looked up (not listed) first, as a desktop would
        os.stat(mounted.path / folder)
    requests_counter.settle()
    requests_counter.reset()
    for name in (".Trash", ".Trash-1000", ".DS_Store", "._2.MR.0001.dcm", ".hidden", "desktop.ini",
                 "autorun.inf", ".git", "__pycache__"):
        for folder in folders:
            with pytest.raises(FileNotFoundError):
                os.stat(mounted.path / folder / name)
    assert requests_counter.total() == 0


def test_missing_names_are_enoent(mounted: Mounted) -> None:
    for relpath in ("nope", "projects/NOPE", f"{SESSION}/scans/99", f"{SESSION}/scans/2/resources/DICOM/x.dcm"):
        with pytest.raises(FileNotFoundError):
            os.stat(mounted.path / relpath)


def test_a_read_only_mount_refuses_changes(emulator: EmulatorServer, mount_factory: MountFactory) -> None:
    mounted = mount_factory(emulator, "--read-only")
    target = mounted.path / SESSION / "scans/2/resources/DICOM"
    with pytest.raises(OSError) as info:
        (target / "new.dcm").write_bytes(b"x")
    assert info.value.errno in (errno.EROFS, errno.EACCES)
    with pytest.raises(OSError) as info:
        (target / "sub").mkdir()
    assert info.value.errno in (errno.EROFS, errno.EACCES)
    with pytest.raises(OSError) as info:
        (target / "2.MR.0001.dcm").unlink()
    assert info.value.errno in (errno.EROFS, errno.EACCES)
    with pytest.raises(OSError) as info:
        open(target / "2.MR.0001.dcm", "r+b")  # noqa: SIM115 - must fail
    assert info.value.errno in (errno.EROFS, errno.EACCES)


def test_statfs_is_sane(emulator: EmulatorServer, mount_factory: MountFactory) -> None:
    mounted = mount_factory(emulator, "--read-only")
    info = os.statvfs(mounted.path)
    assert info.f_namemax == 255 and info.f_bsize >= 4096 and info.f_frsize == 4096
    assert info.f_flag & os.ST_RDONLY
    out = run("df", "-h", str(mounted.path))
    assert "xnat:127.0.0.1" in out
    assert "fuse.xnatfs" in run("findmnt", "-n", "-o", "FSTYPE", str(mounted.path))
