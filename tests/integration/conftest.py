"""Fixtures for client ↔ emulator tests over loopback: connections, fault switches, request counts."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

import xnatfs
from xnatfs.emulator.dicomgen import make_series, make_uid, make_zip
from xnatfs.emulator.server import EmulatorServer
from xnatfs.model.connect import Connection


@pytest.fixture
def xnat(emulator: EmulatorServer) -> Iterator[Connection]:
    """A connection as admin to the shared sample emulator (read-only use: do not change its data)."""
    with xnatfs.connect(emulator.url, "admin", "admin") as connection:
        yield connection


@pytest.fixture
def fresh_xnat(fresh_emulator: EmulatorServer) -> Iterator[Connection]:
    """A connection as admin to an empty emulator of its own (for tests that write)."""
    with xnatfs.connect(fresh_emulator.url, "admin", "admin") as connection:
        yield connection


@pytest.fixture
def faults(emulator: EmulatorServer) -> Iterator[EmulatorServer]:
    """The shared emulator, with its fault switches reset to off after the test."""
    try:
        yield emulator
    finally:
        emulator.set_faults(latency_ms=0, bandwidth_mibps=0, fail_rate=0, fail_status=503, no_range=False)



def _dicom_zip(path: Path, *, subject: str = "SUBJ01", session: str = "SESS01", series: int = 2) -> Path:
    study = make_uid("study", session)
    files: dict[str, bytes] = {}
    for number in range(1, series + 1):
        slices = make_series(study_uid=study, series_uid=make_uid("series", session, str(number)),
                             frame_of_reference_uid=make_uid("for", session), patient_name=subject,
                             patient_id=session, modality="MR", series_number=number,
                             series_description=f"series {number}", study_date="20240105", study_time="101500",
                             rows=16, columns=16, slices=3)
        files.update({f"{session}/{number}/{i}.dcm": data for i, data in enumerate(slices, 1)})
    path.write_bytes(make_zip(files))
    return path


@pytest.fixture
def make_dicom_zip() -> Callable[..., Path]:
    """``make_dicom_zip(path, subject=…, session=…, series=…)``: a zip of a small synthetic MR study."""
    return _dicom_zip
