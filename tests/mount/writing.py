"""Helpers of the mount's write tests: DICOM zips, an emulator the tests may change, spooled mounts, and
what the server holds (by HTTP, as any client would see it).

Imported by the ``test_*`` modules of this folder (``from writing import …``).
"""

from __future__ import annotations

import hashlib
import io
import itertools
import zipfile
from collections import Counter
from collections.abc import Iterable
from pathlib import Path

import pydicom
import requests

from mounting import ADMIN, MountFactory, Mounted
from xnatfs.emulator.dicomgen import make_series, make_uid, make_zip
from xnatfs.emulator.server import EmulatorServer

IMPORT_POST = "POST /data/services/import"
_serial = itertools.count(1)


def dicom_zip(patient: str, *, slices: int = 4, series: int = 1) -> tuple[bytes, dict[str, bytes]]:
    """A zip of ``series`` synthetic MR series of one new study for ``patient``; also its members."""
    n = next(_serial)
    study = make_uid("test-study", patient, str(n))
    members: dict[str, bytes] = {}
    for number in range(1, series + 1):
        files = make_series(study_uid=study, series_uid=make_uid("test-series", patient, str(n), str(number)),
                            frame_of_reference_uid=make_uid("test-for", patient, str(n)), patient_name=patient,
                            patient_id=patient, modality="MR", series_number=number,
                            series_description=f"series {number}", study_date="20240115", study_time="093000",
                            slices=slices, seed=n * 10 + number)
        members.update({f"{patient}/s{number}/{i:03d}.dcm": data for i, data in enumerate(files, start=1)})
    return make_zip(members), members


#: pydicom's own test files that XNAT's DICOM importer (and the emulator) accept, one study each
PYDICOM_FILES = ("CT_small.dcm", "MR_small.dcm", "JPEG2000.dcm", "rtplan.dcm", "waveform_ecg.dcm", "test-SR.dcm",
                 "SC_rgb_rle.dcm", "ExplVR_BigEnd.dcm")


def pydicom_zip() -> tuple[bytes, dict[str, bytes]]:
    folder = Path(pydicom.__file__).parent / "data" / "test_files"
    members = {f"pydicom/{name}": (folder / name).read_bytes() for name in PYDICOM_FILES}
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return buffer.getvalue(), members


def digests(blobs: Iterable[bytes]) -> Counter[str]:
    return Counter(hashlib.md5(b, usedforsecurity=False).hexdigest() for b in blobs)


def files_under(folder: Path) -> dict[str, bytes]:
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def prearchive_path(mounted: Mounted, uri: str) -> Path:
    """``/data/prearchive/projects/P/TS/F`` → ``<mount>/prearchive/P/TS/F``."""
    parts = uri.strip().split("/")
    assert parts[1:4] == ["data", "prearchive", "projects"], uri
    return mounted.path.joinpath("prearchive", *parts[4:7])


def session_dicom(folder: Path) -> dict[str, bytes]:
    """The DICOM files of a session folder under the mount (archive or prearchive layout)."""
    return {k: v for k, v in files_under(folder / "scans").items() if "/resources/DICOM/" in f"/{k}"}


def imports_requested(counter_url: str) -> int:
    counts = requests.get(counter_url, auth=ADMIN, timeout=10).json()["by_route"]
    return sum(n for key, n in counts.items() if key.startswith(IMPORT_POST))


def reset_requests(emulator: EmulatorServer) -> str:
    url = f"{emulator.url}/emulator/requests"
    requests.delete(url, auth=ADMIN, timeout=10).raise_for_status()
    return url


def mount_writable(emulator: EmulatorServer, mount_factory: MountFactory, tmp_path: Path, *options: str,
                   name: str = "mnt") -> Mounted:
    """A mount whose spool is in ``tmp_path`` (so what it keeps can be checked and is cleaned up)."""
    mounted = mount_factory(emulator, "--spool-dir", str(tmp_path / f"spool-{name}"), *options, name=name)
    mounted.extra["spool"] = tmp_path / f"spool-{name}"
    return mounted


def http_get(emulator: EmulatorServer, path: str, **params: str) -> requests.Response:
    return requests.get(f"{emulator.url}{path}", params=params or None, auth=ADMIN, timeout=30)
