"""The NIfTI view's pure parts (xnatfs.vfs.nifti_view): which paths are its own, which resource is a
scan's DICOM, and the entries of a failed conversion."""

from __future__ import annotations

from pathlib import Path

import pytest

from xnatfs.model.records import SCAN, ResourceInfo, XObject
from xnatfs.vfs.conversion import Converted
from xnatfs.vfs.nifti_view import derived_nodes, dicom_resource, is_nifti_path, series_base
from xnatfs.vfs.nodes import NodeKind

pytestmark = pytest.mark.unit

SCAN_PATH = "/projects/P/subjects/S/experiments/E/scans/2"


@pytest.mark.parametrize(("path", "mine"), [
    (f"{SCAN_PATH}/nifti", True), (f"{SCAN_PATH}/nifti/2_T1w.nii.gz", True),
    (f"{SCAN_PATH}/resources", False), (f"{SCAN_PATH}/nifti/a/b", False), (SCAN_PATH, False),
    ("/projects/P/subjects/S/resources/R/scans/2/nifti", False),  # a resource's folders named like the view
    ("/projects/P/subjects/S/experiments/E/assessors/2/nifti", False),
    ("/prearchive/P/subjects/S/experiments/E/scans/2/nifti", False),
])
def test_the_views_paths(path: str, mine: bool) -> None:
    assert is_nifti_path(path) is mine


def resource(label: str, fmt: str = "", role: str = "") -> ResourceInfo:
    return ResourceInfo(label, label, f"/r/{label}", "/e", format=fmt, role=role)


def scan(*resources: ResourceInfo, description: str = "T1w MPRAGE") -> XObject:
    return XObject(SCAN, "2", "2", "xnat:mrScanData", "/e/scans/2", fields={"series_description": description},
                   resources=resources)


def test_the_dicom_resource_is_found_by_label_then_format() -> None:
    assert dicom_resource(scan(resource("SNAPSHOTS"), resource("DICOM"))).label == "DICOM"
    assert dicom_resource(scan(resource("secondary", "DICOM"))).label == "secondary"
    assert dicom_resource(scan(resource("NIFTI", "NIFTI"))) is None
    assert dicom_resource(scan(resource("DICOM", role="in"))) is None
    assert series_base(scan(description="T1 / MPRAGE %s")) == "2_T1_MPRAGE_s"


def test_a_failed_conversion_lists_its_log_and_an_empty_image_that_cannot_be_opened() -> None:
    failed = Converted("k", False, (), b"dcm2niix said no\n")
    nodes = derived_nodes("/x/nifti", failed, 5.0, "2_T1w")
    assert sorted(nodes) == ["2_T1w.nii.gz", "conversion.log"]
    image = nodes["2_T1w.nii.gz"]
    assert image.kind is NodeKind.DERIVED and image.local is None and image.stat.size == 0 and image.stat_is_final
    assert nodes["conversion.log"].data == b"dcm2niix said no\n"
    done = Converted("k", True, (("2_T1w.nii.gz", 10),), b"ok\n", Path("/cache/k"))
    assert derived_nodes("/x/nifti", done, 5.0, "2_T1w")["2_T1w.nii.gz"].local == Path("/cache/k/2_T1w.nii.gz")
