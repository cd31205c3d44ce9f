#!/usr/bin/env python3
"""The NIfTI view's costs: a first listing of ``nifti/`` (read the series and convert it) against
reading the same series through the mount, and what a second listing and a remount cost.

A project of ``--scans`` MR series (64×64, ``--slices`` slices each, synthetic but real DICOM from
``dicomgen``) on the emulator with ``--latency-ms`` per request. Measured side by side in one run,
each on its own scan so nothing is warm that should not be:

- baseline: ``cat`` of every DICOM file of a scan through a fresh mount (what any converter run on
  the mount would have to read);
- ``ls -l nifti/`` cold: read + dcm2niix + keep; ratio to the baseline;
- ``ls -l nifti/`` again (in memory) and after a remount with the same ``--cache-dir`` (on disk):
  time and requests (goal: no file request);
- four concurrent first listings of one ``nifti/``: conversions made (goal: 1).

The benchmark cannot flatter: every image is loaded with nibabel and its shape checked; a wrong one
makes the script exit 1 instead of printing a time.

Usage: ``.venv/bin/python scripts/bench_views.py [--scans 6] [--slices 64] [--latency-ms 20]``.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_common import counter_read, counter_reset, counter_settle, mounted  # noqa: E402

SESSION = "projects/VIEWS/subjects/V1/experiments/V1_MR/scans"


def generate(store, scans: int, slices: int) -> None:  # type: ignore[no-untyped-def]
    from xnatfs.emulator.dicomgen import make_series, make_uid

    store.create_project("VIEWS", name="Views benchmark")
    subject = store.create_subject("VIEWS", "V1")
    session = store.create_experiment("VIEWS", subject.id, "V1_MR", "xnat:mrSessionData", {"modality": "MR"})
    study = make_uid("bench-views")
    for number in range(1, scans + 1):
        scan = store.create_scan(session.id, str(number), "xnat:mrScanData",
                                 {"series_description": "T1w MPRAGE", "type": "T1w MPRAGE", "modality": "MR"})
        resource = store.create_resource(scan, "DICOM", format="DICOM", content="RAW")
        files = make_series(study_uid=study, series_uid=make_uid(study, str(number)),
                            frame_of_reference_uid=make_uid(study, "for"), patient_name="V1", patient_id="V1_MR",
                            modality="MR", series_number=number, series_description="T1w MPRAGE",
                            study_date="20240101", study_time="100000", slices=slices, seed=number)
        for index, data in enumerate(files, 1):
            store.add_file(resource.id, f"{index:04d}.dcm", data, format="DICOM")


def file_requests(url: str) -> int:
    return sum(n for route, n in counter_read(url)["by_route"].items() if "/files/" in route)


def timed_ls(folder: Path) -> tuple[float, list[str]]:
    start = time.perf_counter()
    names = sorted(e.name for e in os.scandir(folder) if e.stat().st_size >= 0)
    return time.perf_counter() - start, names


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--scans", type=int, default=6)
    parser.add_argument("--slices", type=int, default=64)
    parser.add_argument("--latency-ms", type=float, default=20.0)
    args = parser.parse_args()

    import nibabel

    from xnatfs.emulator.server import EmulatorServer

    rows: list[tuple[str, str, str]] = []
    ok = True
    with tempfile.TemporaryDirectory(prefix="bench-views-") as tmp:
        server = EmulatorServer(Path(tmp) / "data", users={"admin": "admin"})
        generate(server.store, args.scans, args.slices)
        server.start()
        url = server.url
        cache = Path(tmp) / "cache"
        try:
            server.set_faults(latency_ms=args.latency_ms)
            logs = {name: Path(tmp) / name for name in ("first", "second")}
            for folder in logs.values():
                folder.mkdir()
            with mounted(url, "--cache-dir", str(cache), log_dir=logs["first"]) as path:
                scans = path / SESSION
                os.listdir(scans / "1")
                counter_settle(url)
                counter_reset(url)
                start = time.perf_counter()
                subprocess.run(f"cat {scans}/1/resources/DICOM/*.dcm > /dev/null", shell=True, check=True)
                baseline = time.perf_counter() - start
                rows.append(("cat the series (baseline)", f"{baseline:.2f} s", f"{file_requests(url)} file requests"))

                os.listdir(scans / "2")
                counter_settle(url)
                counter_reset(url)
                cold, names = timed_ls(scans / "2" / "nifti")
                rows.append(("ls nifti/ cold (read + convert)", f"{cold:.2f} s ({cold / baseline:.2f}x)",
                             f"{file_requests(url)} file requests"))
                image = next(n for n in names if n.endswith(".nii.gz"))
                shape = nibabel.load(scans / "2" / "nifti" / image).shape
                ok &= shape == (64, 64, args.slices)
                counter_reset(url)
                warm, _ = timed_ls(scans / "2" / "nifti")
                rows.append(("ls nifti/ again", f"{warm * 1000:.1f} ms ({warm / baseline:.3f}x)",
                             f"{file_requests(url)} file requests"))

                os.listdir(scans / "3")
                done: list[list[str]] = []
                threads = [threading.Thread(target=lambda: done.append(timed_ls(scans / "3" / "nifti")[1]))
                           for _ in range(4)]
                start = time.perf_counter()
                for thread in threads:
                    thread.start()
                for thread in threads:
                    thread.join()
                together = time.perf_counter() - start
                ok &= len(done) == 4 and all(d == done[0] for d in done)
            with mounted(url, "--cache-dir", str(cache), log_dir=logs["second"]) as path:
                os.listdir(path / SESSION / "2")
                counter_settle(url)
                counter_reset(url)
                remount, _ = timed_ls(path / SESSION / "2" / "nifti")
                rows.append(("ls nifti/ after a remount (disk)", f"{remount * 1000:.1f} ms ({remount / baseline:.3f}x)",
                             f"{file_requests(url)} file requests"))
        finally:
            server.stop()
        concurrent = (logs["first"] / "mount.log").read_text().count("dcm2niix converted 3_")
        converted = (logs["second"] / "mount.log").read_text().count("dcm2niix converted")
    rows.append(("4 concurrent first listings", f"{together:.2f} s", f"{concurrent} conversion(s) (goal 1)"))
    print(f"{args.scans} scans × {args.slices} slices of 64×64, {args.latency_ms:g} ms per request")
    for label, value, extra in rows:
        print(f"  {label:36} {value:>22}   {extra}")
    print(f"  conversions in the remount: {converted} (goal 0)")
    if not ok:
        print("a converted image had the wrong shape, or concurrent listings disagreed", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
