"""Uploads: from a path, a file object or a pipe; overwrite rules; directories; progress."""

from __future__ import annotations

import io
import os
from pathlib import Path

import pytest

from xnatfs.errors import Conflict, UploadError
from xnatfs.model.connect import Connection

pytestmark = pytest.mark.integration


@pytest.fixture
def resource(fresh_xnat: Connection):  # type: ignore[no-untyped-def]
    project = fresh_xnat.projects.create("UP")
    return project.resources.create("data", format="MISC")


class OneWayStream(io.RawIOBase):
    """A readable source that cannot seek, like a pipe."""

    def __init__(self, data: bytes) -> None:
        self._data = io.BytesIO(data)

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:  # type: ignore[no-untyped-def]
        chunk = self._data.read(len(buffer))
        buffer[: len(chunk)] = chunk
        return len(chunk)


def test_upload_from_path_with_progress(resource, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    local = tmp_path / "scan.nii.gz"
    payload = os.urandom(300_000)
    local.write_bytes(payload)
    seen: list[tuple[int, int | None]] = []
    uploaded = resource.upload(local, "sub/dir/scan.nii.gz", progress=lambda d, t: seen.append((d, t)))
    assert uploaded.path == "sub/dir/scan.nii.gz" and uploaded.size == len(payload)
    assert seen[-1] == (len(payload), len(payload))
    with uploaded.open() as handle:
        assert handle.read() == payload
    assert resource.refresh().file_count == 1


def test_upload_from_file_objects(resource) -> None:  # type: ignore[no-untyped-def]
    resource.upload(io.BytesIO(b"seekable"), "a.txt")
    resource.upload(OneWayStream(b"one way only" * 1000), "b.txt")
    resource.upload(b"plain bytes", "c.txt")
    files = resource.files
    assert files.keys() == ["a.txt", "b.txt", "c.txt"]
    assert files["c.txt"].size == len(b"plain bytes")
    with files["b.txt"].open() as handle:
        assert handle.read() == b"one way only" * 1000
    with pytest.raises(TypeError):
        resource.upload(io.BytesIO(b"x"))
    with pytest.raises(UploadError):
        resource.upload(io.BytesIO(b""), "empty.txt")


def test_existing_file_needs_overwrite(resource) -> None:  # type: ignore[no-untyped-def]
    resource.upload(io.BytesIO(b"first"), "same.txt")
    with pytest.raises(Conflict) as info:
        resource.upload(io.BytesIO(b"second"), "same.txt")
    assert "overwrite=True" in str(info.value)
    with resource.files["same.txt"].open() as handle:
        assert handle.read() == b"first"
    resource.upload(io.BytesIO(b"second"), "same.txt", overwrite=True)
    with resource.files["same.txt"].open() as handle:
        assert handle.read() == b"second"


def test_upload_dir_keeps_the_tree(resource, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    (tmp_path / "d" / "nested").mkdir(parents=True)
    (tmp_path / "d" / "top.txt").write_text("top")
    (tmp_path / "d" / "nested" / "deep.txt").write_text("deep")
    (tmp_path / "d" / "empty.txt").write_bytes(b"")
    remote = resource.upload_dir(tmp_path / "d")
    assert remote == ["nested/deep.txt", "top.txt"]  # XNAT refuses empty files: skipped
    assert sorted(resource.files.keys()) == remote
    assert resource.files["nested/deep.txt"].size == 4


def test_extracting_an_uploaded_zip(resource, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    import zipfile

    archive = tmp_path / "bundle.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr("x/1.txt", "one")
        zf.writestr("2.txt", "two")
    assert resource.upload(archive, "bundle.zip", extract=True) is None
    assert sorted(resource.files.keys()) == ["2.txt", "x/1.txt"]
