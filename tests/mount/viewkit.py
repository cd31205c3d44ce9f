"""Helpers of the view tests (``test_views_nifti.py``, ``test_views_bids.py``): a project built from
synthetic pydicom series in an emulator's store, the official BIDS validator run on a folder, and
counting the conversions a daemon made (its log).

Imported by the test modules (``from viewkit import …``; pytest puts this folder on ``sys.path``).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import zlib
from dataclasses import dataclass
from pathlib import Path

from xnatfs.emulator.dicomgen import make_series, make_uid
from xnatfs.emulator.store import Store

VALIDATOR = str(Path(sys.executable).with_name("bids-validator-deno"))


@dataclass(frozen=True)
class Series:
    """One scan to build: its ID, series description, slices and volumes (None: no DICOM resource;
    ``broken``: DICOM resource of files that are not DICOM)."""

    scan_id: str
    description: str
    slices: int = 8
    volumes: int = 1
    dicom: bool = True
    broken: bool = False


def build_session(store: Store, project: str, subject_id: str, label: str, series: list[Series],
                  date: str = "20240301") -> str:
    """A session of MR scans made with dicomgen (16x16 pixels, small and quick); its ID."""
    study = make_uid("viewkit", project, label)
    session = store.create_experiment(project, subject_id, label, "xnat:mrSessionData",
                                      {"date": f"{date[:4]}-{date[4:6]}-{date[6:]}", "modality": "MR"})
    for spec in series:
        scan = store.create_scan(session.id, spec.scan_id, "xnat:mrScanData",
                                 {"type": spec.description, "series_description": spec.description, "modality": "MR",
                                  "frames": str(spec.slices * spec.volumes)})
        if not spec.dicom:
            other = store.create_resource(scan, "SNAPSHOTS", format="GIF")
            store.add_file(other.id, "snap.gif", b"GIF89a")
            continue
        resource = store.create_resource(scan, "DICOM", format="DICOM", content="RAW")
        if spec.broken:
            for number in range(1, 4):
                store.add_file(resource.id, f"{number}.dcm", b"this is not DICOM " * (number * 10))
            continue
        files = make_series(study_uid=study, series_uid=make_uid(study, spec.scan_id),
                            frame_of_reference_uid=make_uid(study, "for"), patient_name=label, patient_id=label,
                            modality="MR", series_number=int(spec.scan_id), series_description=spec.description,
                            study_date=date, study_time="101500", rows=16, columns=16, slices=spec.slices,
                            volumes=spec.volumes, seed=zlib.crc32(f"{label}/{spec.scan_id}".encode()))
        for number, data in enumerate(files, 1):
            store.add_file(resource.id, f"{number:04d}.dcm", data, format="DICOM", content="RAW")
    return session.id


def validate(folder: Path) -> tuple[list[dict], list[dict]]:
    """Run the official BIDS validator on ``folder``: its (errors, warnings) issues."""
    result = subprocess.run([VALIDATOR, "--format", "json", str(folder)], capture_output=True, text=True,
                            timeout=300, env={**os.environ, "NO_COLOR": "1"}, stdin=subprocess.DEVNULL)
    assert result.stdout.strip(), f"the validator printed nothing (exit {result.returncode}): {result.stderr[-2000:]}"
    report = json.loads(result.stdout)
    issues = report["issues"]["issues"]
    errors = [i for i in issues if i.get("severity") == "error"]
    warnings = [i for i in issues if i.get("severity") == "warning"]
    return errors, warnings


def conversions(log_text: str) -> int:
    """How many series the daemon converted (one INFO line each)."""
    return log_text.count("dcm2niix converted")
