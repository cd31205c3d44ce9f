"""The converter (xnatfs.vfs.conversion) without a server: a series given as bytes by a fake reader.

One conversion per series content (remembered in memory and found on disk by a new converter), a new
key for changed content, a checksum mismatch refused and not remembered, a failed conversion
remembered with its log, and the disk folder kept under its cap."""

from __future__ import annotations

import hashlib
from pathlib import Path

import nibabel
import pytest

from xnatfs.emulator.dicomgen import make_series, make_uid
from xnatfs.errors import ChecksumMismatch
from xnatfs.model.records import FileInfo
from xnatfs.vfs.conversion import Converter, ConverterSettings

pytestmark = pytest.mark.unit


def series(seed: int = 1, slices: int = 4) -> dict[str, bytes]:
    study = make_uid("unit-conversion")
    files = make_series(study_uid=study, series_uid=make_uid(study, str(seed)), frame_of_reference_uid=make_uid(study),
                        patient_name="P", patient_id="S", modality="MR", series_number=2, series_description="T1w",
                        study_date="20240101", study_time="100000", rows=16, columns=16, slices=slices, seed=seed)
    return {f"/data/files/{seed}/{i}.dcm": data for i, data in enumerate(files)}


def infos(data: dict[str, bytes], *, md5: bool = True) -> list[FileInfo]:
    return [FileInfo(uri.rsplit("/", 1)[1], len(body), uri, "1", hashlib.md5(body).hexdigest() if md5 else "")
            for uri, body in data.items()]


class Reader:
    """A fake ``read_whole``: serves ``data`` by URI and counts reads."""

    def __init__(self, data: dict[str, bytes]) -> None:
        self.data = data
        self.reads = 0

    def __call__(self, info: FileInfo) -> bytes:
        self.reads += 1
        return self.data[info.uri]


def converter(root: Path, reader: Reader, **settings: object) -> Converter:
    return Converter(reader, ConverterSettings(root=root, **settings))  # type: ignore[arg-type]


def test_a_series_is_converted_once_and_found_on_disk_by_the_next_mount(tmp_path: Path) -> None:
    data = series()
    reader = Reader(data)
    first = converter(tmp_path / "views", reader)
    done = first.convert(infos(data), "2_T1w")
    assert done.ok and [n for n, _ in done.files] == ["2_T1w.json", "2_T1w.nii.gz"]
    assert nibabel.load(done.path("2_T1w.nii.gz")).shape == (16, 16, 4)
    assert first.convert(infos(data), "2_T1w") is done and first.conversions == 1 and reader.reads == 4
    assert (tmp_path / "views").stat().st_mode & 0o777 == 0o700
    later = converter(tmp_path / "views", reader)
    again = later.convert(infos(data), "2_T1w")
    assert later.conversions == 0 and reader.reads == 4 and again.files == done.files
    changed = series(seed=2)
    reader.data.update(changed)
    assert later.convert(infos(changed), "2_T1w").key != done.key and later.conversions == 1


def test_bytes_that_do_not_match_the_md5_are_refused_and_not_remembered(tmp_path: Path) -> None:
    data = series()
    files = infos(data)
    reader = Reader({uri: body[:-1] + b"X" for uri, body in data.items()})
    convert = converter(tmp_path, reader)
    with pytest.raises(ChecksumMismatch):
        convert.convert(files, "2_T1w")
    reader.data = data  # the server answers correctly again: tried again, converted
    assert convert.convert(files, "2_T1w").ok and convert.conversions == 1


def test_a_failed_conversion_is_remembered_with_its_log(tmp_path: Path) -> None:
    data = {"/data/files/x/1.dcm": b"not DICOM at all" * 20}
    reader = Reader(data)
    convert = converter(tmp_path, reader)
    failed = convert.convert(infos(data), "bad")
    assert not failed.ok and failed.files == () and b"no NIfTI image was made" in failed.log
    assert str(tmp_path) not in failed.log.decode()  # local paths are not shown
    assert convert.convert(infos(data), "bad") is failed and convert.conversions == 1


def test_the_disk_folder_is_kept_under_its_cap(tmp_path: Path) -> None:
    convert = converter(tmp_path, Reader({}), max_bytes=1)  # room for the newest conversion only
    keys = []
    for seed in (1, 2, 3):
        data = series(seed)
        convert.read_whole = Reader(data)
        keys.append(convert.convert(infos(data), "2_T1w").key)
    kept = {p.name for p in tmp_path.glob("*/*") if p.is_dir()}
    assert kept == {keys[-1]}


def test_a_conversion_evicted_from_disk_is_made_again_not_served_missing(tmp_path: Path) -> None:
    data = series()
    convert = converter(tmp_path, Reader(data))
    first = convert.convert(infos(data), "2_T1w")
    assert first.folder is not None
    for path in first.folder.iterdir():
        path.unlink()
    first.folder.rmdir()  # what eviction by another mount sharing the folder does
    again = convert.convert(infos(data), "2_T1w")
    assert again.path("2_T1w.nii.gz").is_file() and convert.conversions == 2
