"""The ``xnat`` fsspec filesystem and a real mount of the same server show the same tree (issue 16):
the same names, the same sizes and the same bytes, and a ranged read through ``fs.open`` equals
``pread`` on the mounted file. The mount runs with ``--no-views``: the derived NIfTI and BIDS views
are the mount's alone (docs/distributed.md), fsspec serves the archive."""

from __future__ import annotations

import os
from collections.abc import Iterator

import fsspec
import pydicom
import pytest

from mounting import MountFactory, Mounted

from xnatfs.emulator.server import EmulatorServer
from xnatfs.fsspec import XNATFileSystem

pytestmark = pytest.mark.mount


@pytest.fixture
def mounted(emulator: EmulatorServer, mount_factory: MountFactory) -> Mounted:
    return mount_factory(emulator, "--no-views")


@pytest.fixture
def fs(emulator: EmulatorServer) -> Iterator[XNATFileSystem]:
    filesystem = fsspec.filesystem("xnat", url=emulator.url, user="admin", password="admin", skip_instance_cache=True)
    yield filesystem
    filesystem.close()


def mount_tree(root: str) -> tuple[set[str], set[str]]:
    """(directories, files) under the mount, as paths relative to it."""
    dirs, files = set(), set()
    top = os.path.dirname(root)
    for where, subdirs, names in os.walk(root):
        rel = os.path.relpath(where, top)
        dirs.update(f"{rel}/{d}" for d in subdirs)
        files.update(f"{rel}/{n}" for n in names)
    return dirs, files


def test_fsspec_lists_finds_and_reads_the_same_names_and_bytes_as_the_mount(mounted: Mounted,
                                                                          fs: XNATFileSystem) -> None:
    dirs, files = mount_tree(str(mounted.path / "projects"))
    found = fs.find("projects", withdirs=True, detail=True)
    assert {p for p, e in found.items() if e["type"] == "directory"} - {"projects"} == dirs
    assert {p for p, e in found.items() if e["type"] == "file"} == files
    assert len(files) > 200
    assert sorted(fs.ls("", detail=False)) == sorted(os.listdir(mounted.path))
    contents = fs.cat(sorted(files))
    for path in sorted(files):
        on_mount = (mounted.path / path).read_bytes()
        assert contents[path] == on_mount, path
        if not path.endswith(("xnat.json", "xnat.xml")):
            assert found[path]["size"] == os.stat(mounted.path / path).st_size == len(on_mount), path
            assert os.getxattr(mounted.path / path, "user.xnat.md5").decode() == found[path]["md5"], path


def test_a_ranged_open_seek_read_matches_the_mounted_files_bytes(mounted: Mounted, fs: XNATFileSystem) -> None:
    dicoms = fs.glob("projects/DEMO/subjects/DEMO_001/experiments/*/scans/*/resources/DICOM/*.dcm")
    assert dicoms
    path = dicoms[0]
    size = os.stat(mounted.path / path).st_size
    fd = os.open(mounted.path / path, os.O_RDONLY)
    try:
        with fs.open(path, "rb") as handle:
            for offset, length in [(size // 2, 300), (128, 1000), (size - 10, 100), (0, 132)]:
                handle.seek(offset)
                assert handle.read(length) == os.pread(fd, length, offset), (offset, length)
    finally:
        os.close(fd)
    with fs.open(path, "rb") as handle:  # a DICOM reader works on the file fsspec opens
        header = pydicom.dcmread(handle, stop_before_pixels=True)
    assert header.SOPInstanceUID == pydicom.dcmread(mounted.path / path, stop_before_pixels=True).SOPInstanceUID
