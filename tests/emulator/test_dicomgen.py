"""Synthetic DICOM series: real pydicom files with consistent geometry that dcm2niix turns into a volume."""

from __future__ import annotations

import io
import json
import re
import shutil
import struct
import subprocess
import tarfile
import zipfile
from pathlib import Path

import pydicom
import pytest

from xnatfs.emulator.dicomgen import (CT_IMAGE_STORAGE, MR_IMAGE_STORAGE, PET_IMAGE_STORAGE, make_series,
                                      make_tar, make_uid, make_zip)

pytestmark = pytest.mark.emulator


def series_args(modality: str = "MR", **overrides: object) -> dict:
    args = dict(study_uid=make_uid("test", "study"), series_uid=make_uid("test", "series", modality),
                frame_of_reference_uid=make_uid("test", "frame"), patient_name="Sub^One",
                patient_id="SESSION_1", modality=modality, series_number=5, series_description="T1w test",
                study_date="2024-01-15", study_time="09:30:00", seed=7)
    args.update(overrides)
    return args


def read_all(files: list[bytes]) -> list[pydicom.Dataset]:
    return [pydicom.dcmread(io.BytesIO(data), force=False) for data in files]


def test_series_reads_back_with_consistent_geometry() -> None:
    datasets = read_all(make_series(**series_args()))

    assert len(datasets) == 16
    assert {ds.StudyInstanceUID for ds in datasets} == {make_uid("test", "study")}
    assert {ds.SeriesInstanceUID for ds in datasets} == {make_uid("test", "series", "MR")}
    assert {ds.FrameOfReferenceUID for ds in datasets} == {make_uid("test", "frame")}
    assert len({ds.SOPInstanceUID for ds in datasets}) == 16
    assert [ds.InstanceNumber for ds in datasets] == list(range(1, 17))
    for ds in datasets:
        assert ds.file_meta.TransferSyntaxUID == pydicom.uid.ExplicitVRLittleEndian
        assert ds.file_meta.MediaStorageSOPInstanceUID == ds.SOPInstanceUID
        assert ds.SOPClassUID == MR_IMAGE_STORAGE
        assert (ds.Rows, ds.Columns, ds.SamplesPerPixel, ds.BitsAllocated) == (64, 64, 1, 16)
        assert [float(v) for v in ds.ImageOrientationPatient] == [1, 0, 0, 0, 1, 0]
        assert (ds.StudyDate, ds.StudyTime, ds.SeriesNumber) == ("20240115", "093000", 5)
        assert ds.pixel_array.shape == (64, 64)
    positions = [[float(v) for v in ds.ImagePositionPatient] for ds in datasets]
    steps = {round(b[2] - a[2], 4) for a, b in zip(positions, positions[1:])}
    assert steps == {float(datasets[0].SliceThickness)}
    assert {(p[0], p[1]) for p in positions} == {(positions[0][0], positions[0][1])}
    assert [float(ds.SliceLocation) for ds in datasets] == [p[2] for p in positions]
    assert datasets[8].pixel_array.max() > 500  # the phantom, not an empty volume


def test_ct_and_pet_use_their_storage_classes_and_rescaling() -> None:
    ct = read_all(make_series(**series_args("CT")))
    middle = ct[8]
    hounsfield = middle.pixel_array * float(middle.RescaleSlope) + float(middle.RescaleIntercept)
    assert middle.SOPClassUID == CT_IMAGE_STORAGE
    assert middle.PixelRepresentation == 1
    assert hounsfield.min() < -900 and hounsfield.max() > 500  # air outside, bone-like inside

    pet = read_all(make_series(**series_args("PT")))
    assert {ds.SOPClassUID for ds in pet} == {PET_IMAGE_STORAGE}
    assert [ds.ImageIndex for ds in pet] == list(range(1, 17))
    assert pet[0].Units == "BQML" and float(pet[0].RescaleSlope) == 0.5


def test_same_arguments_give_identical_bytes_and_the_seed_changes_pixels() -> None:
    first = make_series(**series_args())
    assert make_series(**series_args()) == first
    other_seed = read_all(make_series(**series_args(seed=8)))
    assert other_seed[8].PixelData != read_all(first)[8].PixelData
    assert other_seed[8].SOPInstanceUID == read_all(first)[8].SOPInstanceUID


def test_make_uid_is_deterministic_and_valid() -> None:
    uid = make_uid("project", "session")
    assert uid == make_uid("project", "session")
    assert uid != make_uid("project", "session2")
    assert len(uid) <= 64 and re.fullmatch(r"[0-9]+(\.[0-9]+)*", uid)
    with pytest.raises(ValueError):
        make_uid()


def test_make_zip_is_deterministic_and_readable() -> None:
    files = {"a/1.dcm": b"one", "b.txt": b"two"}
    data = make_zip(files)
    assert make_zip(files) == data
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        assert archive.namelist() == ["a/1.dcm", "b.txt"]
        assert archive.read("b.txt") == b"two"


@pytest.mark.parametrize("gzipped", [False, True])
def test_make_tar_is_deterministic_and_readable(gzipped: bool) -> None:
    files = {"a/1.dcm": b"one", "b.txt": b"two"}
    data = make_tar(files, gzipped=gzipped, prefix="./")
    assert make_tar(files, gzipped=gzipped, prefix="./") == data
    if gzipped:  # no clock in the bytes: the gzip header's MTIME field is zero
        assert data[:2] == b"\x1f\x8b" and struct.unpack("<I", data[4:8]) == (0,)
    with tarfile.open(fileobj=io.BytesIO(data), mode="r:*") as archive:
        members = archive.getmembers()
        assert [m.name for m in members] == ["./a/1.dcm", "./b.txt"]
        assert all(m.isfile() and m.mtime == 0 and m.uid == 0 for m in members)
        assert archive.extractfile("./b.txt").read() == b"two"


@pytest.mark.parametrize("modality", ["MR", "CT", "PT"])
def test_dcm2niix_converts_a_generated_series_to_one_64x64x16_volume(tmp_path: Path, modality: str) -> None:
    dcm2niix = shutil.which("dcm2niix")
    assert dcm2niix, "dcm2niix must be installed (Debian package dcm2niix; scripts/install.sh)"
    source, out = tmp_path / "dicom", tmp_path / "nifti"
    source.mkdir()
    out.mkdir()
    for index, data in enumerate(make_series(**series_args(modality))):
        (source / f"slice_{index + 1:03d}.dcm").write_bytes(data)

    result = subprocess.run([dcm2niix, "-z", "n", "-b", "y", "-f", "volume", "-o", str(out), str(source)],
                            capture_output=True, text=True, timeout=60)

    assert result.returncode == 0, result.stdout + result.stderr
    assert "Error" not in result.stdout + result.stderr
    niftis = sorted(out.glob("*.nii"))
    assert [p.name for p in niftis] == ["volume.nii"]
    header = niftis[0].read_bytes()[:348]
    assert struct.unpack_from("<i", header, 0)[0] == 348  # NIfTI-1, little endian
    dims = struct.unpack_from("<8h", header, 40)
    assert dims[1:4] == (64, 64, 16) and all(d in (0, 1) for d in dims[4:dims[0] + 1])
    pixdim = struct.unpack_from("<8f", header, 76)
    assert [round(v, 3) for v in pixdim[1:4]] == [3.0, 3.0, 3.0]
    sidecar = json.loads((out / "volume.json").read_text())
    assert sidecar["Modality"] == modality and sidecar["SeriesNumber"] == 5


def test_volumes_make_a_time_series_and_diffusion_gives_b_values(tmp_path: Path) -> None:
    """``volumes`` repeats the slices per volume (dcm2niix stacks a 4-D image); ``diffusion`` adds each
    volume's b-value and gradient, which dcm2niix writes as .bval/.bvec. volumes=1 changes nothing."""
    assert make_series(**series_args(slices=3)) == make_series(**series_args(slices=3, volumes=1))
    dcm2niix = shutil.which("dcm2niix")
    assert dcm2niix, "dcm2niix must be installed (Debian package dcm2niix; scripts/install.sh)"
    gradients = ((0.0, (0.0, 0.0, 0.0)), (1000.0, (1.0, 0.0, 0.0)), (1000.0, (0.0, 1.0, 0.0)))
    files = make_series(**series_args(slices=4, volumes=3, rows=16, columns=16, manufacturer="Philips",
                                      diffusion=gradients))
    headers = read_all(files)
    assert [h.InstanceNumber for h in headers] == list(range(1, 13))
    assert [h.TemporalPositionIdentifier for h in headers] == [1] * 4 + [2] * 4 + [3] * 4
    assert [float(h.DiffusionBValue) for h in headers[::4]] == [0.0, 1000.0, 1000.0]
    source, out = tmp_path / "dicom", tmp_path / "nifti"
    source.mkdir()
    out.mkdir()
    for index, data in enumerate(files):
        (source / f"{index:03d}.dcm").write_bytes(data)
    result = subprocess.run([dcm2niix, "-z", "n", "-b", "y", "-f", "dwi", "-o", str(out), str(source)],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr
    dims = struct.unpack_from("<8h", (out / "dwi.nii").read_bytes()[:348], 40)
    assert dims[:5] == (4, 16, 16, 4, 3)
    assert (out / "dwi.bval").read_text().split() == ["0", "1000", "1000"]
    with pytest.raises(ValueError):
        make_series(**series_args(volumes=2, diffusion=gradients))
