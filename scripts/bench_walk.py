#!/usr/bin/env python3
"""Walking a project: requests per directory and wall time, the mount vs xnatpy (issue 6 item 8).

A generated project (default 50 subjects × 2 sessions × 4 scans × 10 files, each scan with a
``DICOM`` resource) on the emulator with 20 ms latency per request. Measured side by side:

- ``find -ls`` through a fresh mount, cold (nothing cached), then warm (within the metadata TTL):
  wall time and requests per directory; goals ≤ 0.5 requests per directory cold, 0 warm;
- the ``xnat`` package (xnatpy 0.8.1) walking the same tree (subjects → experiments → scans →
  resources → files, reading each file's name and size from its listing), after ``connect``;
  goal: the mount's cold ``find -ls`` ≤ 0.5× xnatpy's time.

The benchmark cannot flatter: every walk is checked against the files it generated (the mount's
``find -ls``, cold and warm, must show exactly the generated files with their sizes; xnatpy must
see every one); a walk that saw something else makes the script exit 1 instead of printing a time.

Usage: ``.venv/bin/python scripts/bench_walk.py [--subjects 50] [--latency-ms 20]``.
Prints a table.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_common import ADMIN, counter_read, counter_reset, counter_settle, mounted  # noqa: E402


def generate(store, subjects: int, sessions: int, scans: int, files: int) -> dict[str, int]:  # type: ignore[no-untyped-def]
    """The WALK project; returns each file's path below the mount's ``projects/WALK`` and its size."""
    project = store.create_project("WALK", name="Walk benchmark")
    expected: dict[str, int] = {}
    with store.transaction():
        for s in range(subjects):
            subject = store.create_subject(project.id, f"SUBJ_{s:03d}", {"gender": "female"})
            for e in range(sessions):
                session = store.create_experiment(project.id, subject.id, f"SUBJ_{s:03d}_MR_{e + 1}",
                                                  "xnat:mrSessionData", {"modality": "MR"})
                for c in range(scans):
                    scan = store.create_scan(session.id, str(c + 1), "xnat:mrScanData",
                                             {"type": f"T{c + 1}", "series_description": f"series {c + 1}"})
                    resource = store.create_resource(scan, "DICOM", format="DICOM", content="RAW")
                    for f in range(files):
                        name, data = f"{c + 1}.MR.{f + 1:04d}.dcm", f"{s}/{e}/{c}/{f}".encode() * 64
                        store.add_file(resource.id, name, data, format="DICOM")
                        expected[f"subjects/{subject.label}/experiments/{session.label}/scans/{c + 1}/resources/"
                                 f"DICOM/{name}"] = len(data)
    return expected


def files_listed(out: str, root: Path) -> dict[str, int]:
    """The regular files in ``find -ls`` output below the resources: path relative to ``root`` → size."""
    found = {}
    for line in out.splitlines():
        fields = line.split(None, 10)
        if len(fields) == 11 and fields[2].startswith("-") and "/resources/" in fields[10]:
            found[str(Path(fields[10]).relative_to(root))] = int(fields[6])
    return found


def check(what: str, seen: dict[str, int], expected: dict[str, int]) -> bool:
    if seen == expected:
        return True
    missing, extra = sorted(set(expected) - set(seen)), sorted(set(seen) - set(expected))
    wrong = sorted(k for k in set(seen) & set(expected) if seen[k] != expected[k])
    print(f"FAILED: {what} did not see the generated files: {len(missing)} missing (e.g. {missing[:2]}), "
          f"{len(extra)} extra (e.g. {extra[:2]}), {len(wrong)} with the wrong size (e.g. {wrong[:2]})")
    return False


def walk_with_xnatpy(url: str) -> tuple[float, int, int]:
    """Seconds, files seen and requests for xnatpy's walk (connect excluded)."""
    import logging

    import xnat

    logging.getLogger("xnat").setLevel(logging.WARNING)
    session = xnat.connect(url, user=ADMIN[0], password=ADMIN[1], loglevel="WARNING")
    try:
        counter_reset(url)
        start = time.perf_counter()
        seen = 0
        project = session.projects["WALK"]
        for subject in project.subjects.values():
            for experiment in subject.experiments.values():
                for scan in experiment.scans.values():
                    for resource in scan.resources.values():
                        for name, file in resource.files.items():
                            seen += 1 if name and file.data.get("Size") is not None else 0
        seconds = time.perf_counter() - start
        return seconds, seen, counter_read(url)["total"]
    finally:
        session.disconnect()


def find_ls(path: Path) -> tuple[float, str]:
    start = time.perf_counter()
    out = subprocess.run(["find", str(path), "-ls"], capture_output=True, text=True, check=True, timeout=3600).stdout
    return time.perf_counter() - start, out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--subjects", type=int, default=50)
    parser.add_argument("--sessions", type=int, default=2)
    parser.add_argument("--scans", type=int, default=4)
    parser.add_argument("--files", type=int, default=10)
    parser.add_argument("--latency-ms", type=float, default=20.0)
    args = parser.parse_args()

    from xnatfs.emulator.server import EmulatorServer

    with tempfile.TemporaryDirectory(prefix="bench-walk-") as tmp:
        server = EmulatorServer(Path(tmp) / "data", users={ADMIN[0]: ADMIN[1]})
        expected = generate(server.store, args.subjects, args.sessions, args.scans, args.files)
        files = len(expected)
        ok = True
        server.start()
        url = server.url
        try:
            server.set_faults(latency_ms=args.latency_ms)
            with mounted(url, "--no-nifti") as path:  # a metadata walk: nifti/ would convert every scan
                counter_reset(url)
                start = time.perf_counter()
                subprocess.run(["find", str(path / "projects" / "WALK")], capture_output=True, check=True, timeout=3600)
                plain = time.perf_counter() - start
                plain_requests = counter_settle(url)
            with mounted(url, "--no-nifti") as path:  # a metadata walk: nifti/ would convert every scan
                project = path / "projects" / "WALK"
                counter_reset(url)
                cold, out = find_ls(project)
                cold_requests = counter_settle(url)
                ok &= check("find -ls (cold)", files_listed(out, project), expected)
                directories = sum(1 for line in out.splitlines() if line.split()[2].startswith("d"))
                entries = len(out.splitlines())
                counter_reset(url)
                warm, out_warm = find_ls(project)
                warm_requests = counter_read(url)["total"]
                ok &= check("find -ls (warm)", files_listed(out_warm, project), expected)
            xnatpy_seconds, seen, xnatpy_requests = walk_with_xnatpy(url)
            if seen != files:
                print(f"FAILED: xnatpy saw {seen} of the {files} generated files")
                ok = False
        finally:
            server.stop()
    rows = [
        ("mount, find cold (names only)", f"{plain:.2f} s", f"{plain_requests}",
         f"{plain_requests / directories:.2f}"),
        ("mount, find -ls cold", f"{cold:.2f} s", f"{cold_requests}", f"{cold_requests / directories:.2f}"),
        ("mount, find -ls warm", f"{warm:.2f} s", f"{warm_requests}", f"{warm_requests / directories:.2f}"),
        ("xnatpy walk", f"{xnatpy_seconds:.2f} s", f"{xnatpy_requests}", f"{xnatpy_requests / directories:.2f}"),
    ]
    print(f"project: {args.subjects} subjects × {args.sessions} sessions × {args.scans} scans × {args.files} files "
          f"= {files} files; {directories} directories, {entries} entries under the mount; "
          f"latency {args.latency_ms:g} ms; xnatpy saw {seen} files")
    print()
    print("| walk | wall time | requests | requests per directory |")
    print("| --- | --- | --- | --- |")
    for row in rows:
        print("| " + " | ".join(row) + " |")
    print()
    print(f"mount cold / xnatpy: {cold / xnatpy_seconds:.2f}x time, {cold_requests / xnatpy_requests:.2f}x requests")
    print("files check: " + ("every walk saw exactly the generated files and sizes" if ok else "FAILED (above)"))
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
