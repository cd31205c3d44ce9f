"""The NIfTI view (``…/scans/<ID>/nifti/``) on a real mount: dcm2niix's image and sidecar with the
series' shape, true sizes at listing time, one conversion per series (across listings, concurrent
readers and remounts), EIO and a readable log for a broken series, and the switches that turn it off."""

from __future__ import annotations

import errno
import json
import os
import threading
from pathlib import Path

import nibabel
import pytest
from mounting import RequestCounter
from viewkit import Series, build_session, conversions

from xnatfs.emulator.server import EmulatorServer

pytestmark = pytest.mark.mount

SESSION = "projects/DEMO/subjects/DEMO_001/experiments/DEMO_001_MR_1"
BOLD_SESSION = "projects/STUDY2/subjects/S2_001/experiments/S2_001_MR_1"


def downloads(counter: RequestCounter) -> int:
    """File downloads the emulator served since its counter was reset."""
    return sum(count for route, count in counter.read()["by_route"].items() if "/files/" in route)


@pytest.fixture
def odd_project(fresh_emulator: EmulatorServer) -> EmulatorServer:
    """Project ODD: scan 1 a good series, 2 a DICOM resource of files that are not DICOM, 3 no DICOM."""
    store = fresh_emulator.store
    store.create_project("ODD", name="Odd scans")
    subject = store.create_subject("ODD", "S1")
    build_session(store, "ODD", subject.id, "S1_MR", [
        Series("1", "T1w", slices=5), Series("2", "T1w broken", broken=True), Series("3", "T1w", dicom=False)])
    return fresh_emulator


def test_every_sample_mr_scan_has_an_image_and_sidecar_of_its_series_shape(emulator: EmulatorServer,
                                                                          mount_factory, tmp_path: Path) -> None:
    mounted = mount_factory(emulator, "--cache-dir", str(tmp_path / "cache"))
    scans = mounted.path / SESSION / "scans"
    assert "nifti" in os.listdir(scans / "2") and "resources" in os.listdir(scans / "2")
    for scan, description in (("1", "Localizer"), ("2", "T1w_MPRAGE"), ("3", "T2w_FLAIR")):
        folder = scans / scan / "nifti"
        names = sorted(os.listdir(folder))
        assert names == [f"{scan}_{description}.json", f"{scan}_{description}.nii.gz", "conversion.log"]
        listed = {entry.name: entry.stat().st_size for entry in os.scandir(folder)}  # READDIRPLUS attributes
        image = folder / f"{scan}_{description}.nii.gz"
        data = image.read_bytes()
        assert len(data) == listed[image.name] > 0  # the listed size is the true one
        assert nibabel.load(image).shape == (64, 64, 3 if scan == "1" else 16)
        sidecar = json.loads((folder / f"{scan}_{description}.json").read_text())
        assert sidecar["SeriesDescription"] == description.replace("_", " ") and sidecar["Modality"] == "MR"
        assert "PatientName" not in sidecar  # anonymized
        assert b"dcm2niix version" in (folder / "conversion.log").read_bytes().lower()
    bold = mounted.path / BOLD_SESSION / "scans" / "2" / "nifti" / "2_rsfMRI.nii.gz"
    assert nibabel.load(bold).shape == (64, 64, 16, 4)
    dwi = mounted.path / BOLD_SESSION / "scans" / "4" / "nifti"
    assert sorted(os.listdir(dwi)) == [f"4_DWI_b1000.{ext}" for ext in ("bval", "bvec", "json", "nii.gz")] + [
        "conversion.log"]
    assert (dwi / "4_DWI_b1000.bvec").read_text().split("\n")[0].split() == ["0", "1", "0", "0"]
    assert conversions(mounted.log_text()) == 5


def test_a_second_listing_and_a_remount_convert_nothing_again(emulator: EmulatorServer, mount_factory,
                                                              requests_counter: RequestCounter,
                                                              tmp_path: Path) -> None:
    cache = str(tmp_path / "cache")
    mounted = mount_factory(emulator, "--cache-dir", cache)
    folder = mounted.path / SESSION / "scans" / "3" / "nifti"
    os.listdir(mounted.path / SESSION / "scans" / "3")
    requests_counter.settle()
    requests_counter.reset()
    first = sorted((e.name, e.stat().st_size) for e in os.scandir(folder))
    assert downloads(requests_counter) == 16  # the series' files, read once to convert them
    requests_counter.reset()
    assert sorted((e.name, e.stat().st_size) for e in os.scandir(folder)) == first
    assert conversions(mounted.log_text()) == 1
    assert downloads(requests_counter) == 0  # no DICOM was read again
    again = mount_factory(emulator, "--cache-dir", cache, name="again")
    assert sorted((e.name, e.stat().st_size) for e in os.scandir(again.path / SESSION / "scans" / "3" / "nifti")) \
        == first
    assert conversions(again.log_text()) == 0  # the disk cache answered


def test_concurrent_first_listings_convert_once(emulator: EmulatorServer, mount_factory, tmp_path: Path) -> None:
    mounted = mount_factory(emulator, "--cache-dir", str(tmp_path / "cache"))
    folder = mounted.path / "projects/DEMO/subjects/DEMO_002/experiments/DEMO_002_MR_1/scans/2/nifti"
    seen: list[list[str]] = []
    errors: list[BaseException] = []

    def list_it() -> None:
        try:
            seen.append(sorted(os.listdir(folder)))
        except OSError as exc:
            errors.append(exc)

    threads = [threading.Thread(target=list_it) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert not errors and len(seen) == 6 and all(s == seen[0] for s in seen) and "2_T2w_TSE.nii.gz" in seen[0]
    assert conversions(mounted.log_text()) == 1


def test_a_broken_series_gives_eio_and_a_log_and_the_mount_keeps_serving(odd_project: EmulatorServer,
                                                                       mount_factory, tmp_path: Path) -> None:
    mounted = mount_factory(odd_project, "--cache-dir", str(tmp_path / "cache"))
    mounted.expect_errors = True
    scans = mounted.path / "projects/ODD/subjects/S1/experiments/S1_MR/scans"
    assert "nifti" not in os.listdir(scans / "3")  # no DICOM resource, no view
    with pytest.raises(FileNotFoundError):
        os.stat(scans / "3" / "nifti")
    broken = scans / "2" / "nifti"
    assert sorted(os.listdir(broken)) == ["2_T1w_broken.nii.gz", "conversion.log"]
    with pytest.raises(OSError) as failure:
        (broken / "2_T1w_broken.nii.gz").read_bytes()
    assert failure.value.errno == errno.EIO
    log = (broken / "conversion.log").read_text()
    assert "no NIfTI image was made" in log and "<series>" in log
    assert "made no image of the series 2_T1w_broken" in mounted.log_text()
    assert nibabel.load(scans / "1" / "nifti" / "1_T1w.nii.gz").shape == (16, 16, 5)
    assert sorted(os.listdir(broken)) == ["2_T1w_broken.nii.gz", "conversion.log"]
    assert conversions(mounted.log_text()) == 2  # the failure is remembered, not retried


def test_the_nifti_view_is_read_only_and_the_switches_turn_views_off(emulator: EmulatorServer, mount_factory,
                                                                    tmp_path: Path) -> None:
    mounted = mount_factory(emulator, "--cache-dir", str(tmp_path / "cache"))
    folder = mounted.path / SESSION / "scans" / "2" / "nifti"
    with pytest.raises(PermissionError):
        (folder / "extra.nii.gz").write_bytes(b"x")
    with pytest.raises(PermissionError):
        os.unlink(folder / "conversion.log")
    no_nifti = mount_factory(emulator, "--no-nifti", name="no_nifti")
    assert "nifti" not in os.listdir(no_nifti.path / SESSION / "scans" / "2") and "bids" in os.listdir(no_nifti.path)
    none = mount_factory(emulator, "--no-views", name="none")
    assert "nifti" not in os.listdir(none.path / SESSION / "scans" / "2") and "bids" not in os.listdir(none.path)
    with pytest.raises(FileNotFoundError):
        os.stat(none.path / SESSION / "scans" / "2" / "nifti")


def test_showing_nifti_in_scan_folders_costs_no_request(emulator: EmulatorServer, mount_factory,
                                                        requests_counter: RequestCounter, tmp_path: Path) -> None:
    """Whether a scan has DICOM comes with the session document the scans/ listing loaded."""
    mounted = mount_factory(emulator, "--cache-dir", str(tmp_path / "cache"))
    scans = mounted.path / SESSION / "scans"
    ids = sorted(os.listdir(scans))
    requests_counter.settle()
    requests_counter.reset()
    assert all("nifti" in os.listdir(scans / scan) for scan in ids) and len(ids) == 3
    assert all(os.stat(scans / scan / "nifti").st_mode & 0o777 == 0o555 for scan in ids)
    assert requests_counter.total() == 0
    assert conversions(mounted.log_text()) == 0  # and nothing was converted: no nifti/ was listed
