#!/usr/bin/env python3
"""Real sizes (issue 13): a series of thousands of files and a project of a thousand subjects.

Measured side by side in one run, each against a baseline from the same run:

- ``ls -l`` of a scan resource of ``--files`` (5,000) files through a fresh mount (cold: the first
  listing, with the requests it costs) and again (warm), against the "in-memory ceiling": a trivial
  filesystem on the same FUSE binding (mfusepy) holding the same names and sizes in memory, listed
  the same way (its first ``ls -l`` and its second). Goals: warm ≤ 1×, cold ≤ 2× and ≤ 3 requests.
- ``cat`` of every file of that series in name order through a mount (as dcm2niix or ``cat *``
  reads a series), with ``--latency-ms`` per request, against ``curl`` of the resource as one zip,
  ``unzip`` and ``cat`` of the local copies. Goal: ≤ 1.3×.
- ``find projects/P/subjects -maxdepth 3 -type d`` over ``--subjects`` (1,000) subjects with one session
  each, with ``--latency-ms`` (20 ms) per request, against the ``xnat`` package (xnatpy) listing the
  same subjects and each subject's sessions. Goals: ≤ 10 requests, ≤ 0.2× xnatpy's time.

Every walk is checked against what was generated (names and sizes from ``ls -l``, the session
folders from ``find``); a walk that saw something else makes the script exit 1 instead of printing a
time. Nothing here asserts a timing.

- ``dcm2niix`` (the wheel's binary) on a mounted real DICOM series of ``--slices`` (1,000) 128×128
  slices built with pydicom, against ``curl`` of its zip + ``unzip`` + ``dcm2niix`` of the local
  copy, through a default mount and a ``--read-only`` one, ``--rounds`` (3) times in turn (medians);
  every NIfTI file must be byte-identical to the local one. Goal: ≤ 1.3×.

Usage: ``.venv/bin/python scripts/bench_scale.py [--files 5000] [--subjects 1000] [--latency-ms 20]
[--slices 1000] [--rounds 3] [--skip-find] [--only ls|cat|dcm2niix|find ...]``. Prints the tables.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_common import ADMIN, counter_read, counter_reset, counter_settle, memfs_mounted, mounted  # noqa: E402

SERIES = "projects/BIG/subjects/S1/experiments/S1_MR1/scans/1/resources/DICOM"


def size_of(index: int) -> int:
    return 32 * 1024 + index


def add_series(store, project_id: str, subject_label: str, files: Iterable[bytes], first: int = 0) -> None:  # type: ignore[no-untyped-def]
    """Project ``project_id`` with one subject, its session ``<subject>_MR1`` and scan 1 whose DICOM
    resource holds ``files`` as ``1.MR.<first + i>.dcm`` (inside the caller's transaction)."""
    project = store.create_project(project_id)
    subject = store.create_subject(project.id, subject_label)
    session = store.create_experiment(project.id, subject.id, f"{subject_label}_MR1", "xnat:mrSessionData",
                                      {"modality": "MR"})
    scan = store.create_scan(session.id, "1", "xnat:mrScanData", {"type": "T1"})
    resource = store.create_resource(scan, "DICOM", format="DICOM")
    for i, data in enumerate(files):
        store.add_file(resource.id, f"1.MR.{first + i:05d}.dcm", data, format="DICOM")


def generate(store, files: int, subjects: int) -> None:  # type: ignore[no-untyped-def]
    """Project BIG (one session, scan 1, a DICOM resource of ``files`` files) and project MANY
    (``subjects`` subjects with one session each)."""
    with store.transaction():
        add_series(store, "BIG", "S1", (b"\0" * size_of(i) for i in range(files)))
        many = store.create_project("MANY")
        for s in range(subjects):
            subject = store.create_subject(many.id, f"M{s:04d}")
            store.create_experiment(many.id, subject.id, f"M{s:04d}_MR1", "xnat:mrSessionData", {"modality": "MR"})


DCM_SERIES = "projects/DCM/subjects/D1/experiments/D1_MR1/scans/1/resources/DICOM"


def generate_dicom(store, slices: int) -> None:  # type: ignore[no-untyped-def]
    """Project DCM: one session whose scan 1 is a real DICOM series of ``slices`` 128×128 slices (32 KiB
    of pixels each, geometry set so dcm2niix makes one volume), built with pydicom (dicomgen)."""
    from xnatfs.emulator.dicomgen import make_series, make_uid

    series = make_series(study_uid=make_uid("bench", "study"), series_uid=make_uid("bench", "series"),
                         frame_of_reference_uid=make_uid("bench", "for"), patient_name="D1", patient_id="D1_MR1",
                         modality="MR", series_number=1, series_description="T1 bench", study_date="20260101",
                         study_time="120000", rows=128, columns=128, slices=slices, slice_thickness=1.0,
                         pixel_spacing=1.0)
    with store.transaction():
        add_series(store, "DCM", "D1", series, first=1)


def dcm2niix_binary() -> str:
    import dcm2niix  # the wheel the NIfTI view uses: the same binary on both sides

    return str(dcm2niix.bin_path)


@dataclasses.dataclass
class Dcm2niixRun:
    """Seconds of each dcm2niix run, one value per round (first and second run over one fresh mount or
    folder), and the check."""

    mount_first: list[float] = dataclasses.field(default_factory=list)
    mount_second: list[float] = dataclasses.field(default_factory=list)
    ro_first: list[float] = dataclasses.field(default_factory=list)
    ro_second: list[float] = dataclasses.field(default_factory=list)
    local: list[float] = dataclasses.field(default_factory=list)
    baseline: list[float] = dataclasses.field(default_factory=list)
    ceiling_first: list[float] = dataclasses.field(default_factory=list)
    ceiling_second: list[float] = dataclasses.field(default_factory=list)
    same: bool = True


def dcm2niix_series(url: str, tmp: Path, rounds: int) -> Dcm2niixRun:
    """dcm2niix on the mounted series (a fresh mount: first run, then a second through the same mount;
    a default mount and a ``--read-only`` one, whose opens cost no call into the daemon), against curl
    of its zip + unzip + dcm2niix of the local copy, and against the in-memory ceiling (the same files
    served from memory by a trivial filesystem on the same FUSE binding), ``rounds`` times in turn (one
    run of each varies by ±30% on a shared 2-core machine); whether every NIfTI written from a mount
    is byte-identical to the local one."""
    import requests

    rows = requests.get(f"{url}/data/projects/DCM/experiments", params={"format": "json"}, auth=ADMIN,
                        timeout=30).json()["ResultSet"]["Result"]
    session = rows[0]["ID"]
    command = [dcm2niix_binary(), "-z", "n", "-b", "n", "-d", "9", "-f", "vol"]  # -d: the zip nests its files deep
    result = Dcm2niixRun()

    def run(out: Path, series: Path) -> float:
        out.mkdir(exist_ok=True)
        os.sync()  # the last run's files written back first: each run starts from the same disk state
        start = time.perf_counter()
        subprocess.run([*command, "-o", str(out), str(series)], capture_output=True, check=True)
        return time.perf_counter() - start

    def made(out: Path) -> bytes | None:
        return (out / "vol.nii").read_bytes() if sorted(p.name for p in out.iterdir()) == ["vol.nii"] else None

    for turn in range(rounds):
        here = tmp / f"round-{turn}"
        local = here / "dcm-local"
        local.mkdir(parents=True)
        os.sync()
        start = time.perf_counter()
        subprocess.run(["curl", "-sf", "-u", f"{ADMIN[0]}:{ADMIN[1]}", "-o", str(local / "s.zip"),
                        f"{url}/data/experiments/{session}/scans/1/resources/DICOM/files?format=zip"], check=True)
        subprocess.run(["unzip", "-q", "-o", str(local / "s.zip"), "-d", str(local / "files")], check=True)
        result.local.append(run(here / "nii-local", local / "files"))
        result.baseline.append(time.perf_counter() - start)
        reference = made(here / "nii-local")
        for options, first, second, name in (((), result.mount_first, result.mount_second, "nii-mount"),
                                             (("--read-only",), result.ro_first, result.ro_second, "nii-ro")):
            with mounted(url, *options) as path:
                os.listdir(path / DCM_SERIES)
                first.append(run(here / name, path / DCM_SERIES))
                second.append(run(here / f"{name}-again", path / DCM_SERIES))
            result.same &= reference is not None and made(here / name) == reference
        with memfs_mounted(__file__, str(local / "files")) as ceiling:
            os.listdir(ceiling / "series")
            result.ceiling_first.append(run(here / "nii-ceiling", ceiling / "series"))
            result.ceiling_second.append(run(here / "nii-ceiling-again", ceiling / "series"))
    return result


def spread(values: list[float]) -> str:
    """The median of ``values`` in seconds, with their range when there are several."""
    text = f"{statistics.median(values):.2f} s"
    return text + (f" ({min(values):.2f}–{max(values):.2f})" if len(values) > 1 else "")


def serve_memfs(mountpoint: str, spec: str) -> None:
    """The in-memory ceiling: ``/series`` holding the same names and sizes, answered from memory.
    ``spec`` is a number of files (zeros, the names and sizes of :func:`generate`) or a folder whose
    files are served with their bytes (the dcm2niix ceiling)."""
    import errno
    import stat

    import mfusepy

    now = time.time_ns()
    if spec.isdigit():
        names: dict[str, bytes] = {f"1.MR.{i:05d}.dcm": b"\0" * size_of(i) for i in range(int(spec))}
    else:
        names = {p.name: p.read_bytes() for p in sorted(Path(spec).rglob("*")) if p.is_file()}
    times = {"st_mtime": now, "st_ctime": now, "st_atime": now}

    class MemoryFS(mfusepy.Operations):
        use_ns = True

        def getattr(self, path: str, fh: int | None = None) -> dict:
            if path in ("/", "/series"):
                return {"st_mode": stat.S_IFDIR | 0o555, "st_nlink": 2, **times}
            data = names.get(path.rsplit("/", 1)[-1]) if path.startswith("/series/") else None
            if data is None:
                raise mfusepy.FuseOSError(errno.ENOENT)
            return {"st_mode": stat.S_IFREG | 0o444, "st_nlink": 1, "st_size": len(data), **times}

        def readdir(self, path: str, fh: int) -> list:
            if path == "/":
                return [".", "..", ("series", stat.S_IFDIR | 0o555, 0)]
            return [".", "..", *((name, stat.S_IFREG | 0o444, 0) for name in names)]

        def open(self, path: str, flags: int) -> int:
            return 1

        def read(self, path: str, size: int, offset: int, fh: int) -> bytes:
            return names[path.rsplit("/", 1)[-1]][offset: offset + size]

    mfusepy.FUSE(MemoryFS(), mountpoint, foreground=True, nothreads=False, ro=True, default_permissions=True,
                 auto_cache=True, entry_timeout="60", attr_timeout="60", negative_timeout="60", fsname="memfs")


def ls_l(path: Path, files: int) -> tuple[float, bool]:
    """Seconds for ``ls -l path``, and whether it showed exactly the generated names and sizes."""
    start = time.perf_counter()
    out = subprocess.run(["ls", "-l", str(path)], capture_output=True, text=True, check=True).stdout
    seconds = time.perf_counter() - start
    seen = {line.split()[-1]: int(line.split()[4]) for line in out.splitlines()[1:]}
    return seconds, seen == {f"1.MR.{i:05d}.dcm": size_of(i) for i in range(files)}


#: warm listings timed on each side (the median is printed: one ``ls -l`` varies by ±20%)
WARM_RUNS = 7


def warm_ls(path: Path, files: int) -> tuple[float, bool]:
    """The median of :data:`WARM_RUNS` warm ``ls -l`` of ``path``, and whether each saw the generated files."""
    runs = [ls_l(path, files) for _ in range(WARM_RUNS)]
    return statistics.median(seconds for seconds, _ in runs), all(ok for _, ok in runs)


def memfs_ls(files: int) -> tuple[float, float, bool]:
    with memfs_mounted(__file__, str(files)) as path:
        cold, ok_cold = ls_l(path / "series", files)
        warm, ok_warm = warm_ls(path / "series", files)
        return cold, warm, ok_cold and ok_warm


def mount_ls(url: str, files: int) -> tuple[float, float, int, dict, bool]:
    with mounted(url) as path:
        counter_reset(url)
        cold, ok_cold = ls_l(path / SERIES, files)
        requests = counter_settle(url)
        warm, ok_warm = warm_ls(path / SERIES, files)
        calls = json.loads(os.getxattr(path, "user.xnatfs.stats"))["calls"]
        return cold, warm, requests, calls, ok_cold and ok_warm


def read_series(url: str, files: int, *options: str) -> tuple[float, int, bool]:
    """``cat`` of every file of the series in name order (as dcm2niix or ``cat *`` reads it)."""
    with mounted(url, *options) as path:
        series = path / SERIES
        names = sorted(os.listdir(series))
        counter_reset(url)
        start = time.perf_counter()
        out = subprocess.run(["cat", *(str(series / name) for name in names)], capture_output=True, check=True).stdout
        seconds = time.perf_counter() - start
        requests = counter_settle(url)
    return seconds, requests, len(out) == sum(size_of(i) for i in range(files))


def zip_series(url: str, tmp: Path, files: int) -> tuple[float, bool]:
    """The baseline: the series as one zip with curl, then unzip, then cat of the local files."""
    target = tmp / "zip"
    target.mkdir()
    start = time.perf_counter()
    subprocess.run(["curl", "-sf", "-u", f"{ADMIN[0]}:{ADMIN[1]}", "-o", str(target / "s.zip"),
                    f"{url}/data/experiments/{experiment_id(url)}/scans/1/resources/DICOM/files?format=zip"],
                   check=True)
    subprocess.run(["unzip", "-q", "-o", str(target / "s.zip"), "-d", str(target)], check=True)
    local = sorted(target.rglob("*.dcm"))
    out = subprocess.run(["cat", *map(str, local)], capture_output=True, check=True).stdout
    return time.perf_counter() - start, len(out) == sum(size_of(i) for i in range(files))


def experiment_id(url: str) -> str:
    import requests

    rows = requests.get(f"{url}/data/projects/BIG/experiments", params={"format": "json"}, auth=ADMIN,
                        timeout=30).json()["ResultSet"]["Result"]
    return str(rows[0]["ID"])


def find_sessions(url: str, subjects: int) -> tuple[float, int, bool]:
    with mounted(url) as path:
        counter_reset(url)
        start = time.perf_counter()
        out = subprocess.run(["find", str(path / "projects/MANY/subjects"), "-maxdepth", "3", "-type", "d"],
                             capture_output=True, text=True, check=True).stdout
        seconds = time.perf_counter() - start
        requests = counter_settle(url)
    sessions = {line.rsplit("/", 1)[-1] for line in out.splitlines() if "/experiments/" in line}
    return seconds, requests, sessions == {f"M{s:04d}_MR1" for s in range(subjects)}


def xnatpy_sessions(url: str, subjects: int) -> tuple[float, int, bool]:
    import xnat

    with xnat.connect(url, user=ADMIN[0], password=ADMIN[1]) as session:
        counter_reset(url)
        start = time.perf_counter()
        seen = set()
        for subject in session.projects["MANY"].subjects.values():
            seen.update(experiment.label for experiment in subject.experiments.values())
        seconds = time.perf_counter() - start
        requests = counter_read(url)["total"]
    return seconds, requests, seen == {f"M{s:04d}_MR1" for s in range(subjects)}


def print_table(title: str, header: list[str], rows: list[list[str]], *notes: str) -> None:
    """A markdown table as docs/performance.md shows it, with its title and notes."""
    print(title)
    print()
    print("| " + " | ".join(header) + " |")
    print("|" + " --- |" * len(header))
    for row in rows:
        print("| " + " | ".join(row) + " |")
    print()
    for note in notes:
        print(note)
        print()


def part_ls(url: str, files: int) -> bool:
    ceiling_cold, ceiling_warm, ok = memfs_ls(files)
    cold, warm, requests, calls, fine = mount_ls(url, files)
    print_table(f"ls -l of a resource of {files} files (loopback, no added latency)",
                ["", "in-memory ceiling", "mount", "mount / ceiling", "requests (mount)"],
                [["cold", f"{ceiling_cold:.3f} s", f"{cold:.3f} s", f"{cold / ceiling_cold:.2f}x", str(requests)],
                 [f"warm (median of {WARM_RUNS})", f"{ceiling_warm:.3f} s", f"{warm:.3f} s",
                  f"{warm / ceiling_warm:.2f}x", "0"]],
                f"FUSE calls into the daemon for all the listings: {dict(sorted(calls.items()))}")
    return ok and fine


def part_cat(url: str, tmp: Path, files: int, latency_ms: float) -> bool:
    seconds, requests, ok = read_series(url, files)
    ro_seconds, ro_requests, ro_ok = read_series(url, files, "--read-only")
    z_seconds, fine = zip_series(url, tmp, files)
    print_table(f"reading every file of the series in order, {latency_ms:g} ms per request",
                ["read", "wall time", "requests"],
                [["mount: cat of every file, in name order", f"{seconds:.2f} s", str(requests)],
                 ["the same through a --read-only mount", f"{ro_seconds:.2f} s", str(ro_requests)],
                 ["curl of the resource as one zip + unzip + cat", f"{z_seconds:.2f} s", "1"]],
                f"mount / zip: {seconds / z_seconds:.2f}x; --read-only mount / zip: {ro_seconds / z_seconds:.2f}x")
    return ok and fine and ro_ok


def part_dcm2niix(url: str, tmp: Path, slices: int, latency_ms: float, rounds: int, bandwidth_mibps: float) -> bool:
    r = dcm2niix_series(url, tmp, rounds)
    m = statistics.median
    link = f"a {bandwidth_mibps:g} MiB/s link, " if bandwidth_mibps else ""
    print_table(f"dcm2niix of a {slices}-slice series (128x128, real DICOM), {link}{latency_ms:g} ms per request; "
                f"median of {rounds} rounds (range)",
                ["run", "first", "second"],
                [["dcm2niix on the mounted series (a fresh mount)", spread(r.mount_first), spread(r.mount_second)],
                 ["the same through a fresh --read-only mount", spread(r.ro_first), spread(r.ro_second)],
                 ["in-memory ceiling: the same files from memory on the same FUSE binding", spread(r.ceiling_first),
                  spread(r.ceiling_second)],
                 ["curl of the zip + unzip + dcm2niix of the local copy", spread(r.baseline), ""],
                 ["(of which dcm2niix of the local copy)", spread(r.local), ""]],
                f"mount / (zip + unzip + local): {m(r.mount_first) / m(r.baseline):.2f}x first, "
                f"{m(r.mount_second) / m(r.baseline):.2f}x second; --read-only mount / (zip + unzip + local): "
                f"{m(r.ro_first) / m(r.baseline):.2f}x first, {m(r.ro_second) / m(r.baseline):.2f}x second; "
                f"ceiling / (zip + unzip + local): {m(r.ceiling_first) / m(r.baseline):.2f}x first; mount / ceiling: "
                f"{m(r.mount_first) / m(r.ceiling_first):.2f}x first, {m(r.mount_second) / m(r.ceiling_second):.2f}x "
                f"second; NIfTI byte-identical (every mount, every round): {r.same}",
                f"per round, against that round's own zip + unzip + local (median, range): mount "
                f"{per_round(r.mount_first, r.baseline)} first; --read-only mount {per_round(r.ro_first, r.baseline)}"
                f" first; ceiling {per_round(r.ceiling_first, r.baseline)} first")
    return r.same


def per_round(runs: list[float], baselines: list[float]) -> str:
    """Each round's run over the same round's baseline, as a median and range: the baseline of one round
    varies by a factor of two on a shared 2-core machine, and a run is best compared with the one made
    beside it."""
    ratios = [run / base for run, base in zip(runs, baselines)]
    text = f"{statistics.median(ratios):.2f}x"
    return text + (f" ({min(ratios):.2f}–{max(ratios):.2f})" if len(ratios) > 1 else "")


def part_find(url: str, subjects: int, latency_ms: float) -> bool:
    seconds, requests, ok = find_sessions(url, subjects)
    x_seconds, x_requests, fine = xnatpy_sessions(url, subjects)
    print_table(f"find -maxdepth 3 -type d over {subjects} subjects, one session each, {latency_ms:g} ms per request",
                ["walk", "wall time", "requests"],
                [["mount, cold", f"{seconds:.2f} s", str(requests)],
                 ["xnatpy (subjects, then each subject's experiments)", f"{x_seconds:.2f} s", str(x_requests)]],
                f"mount / xnatpy: {seconds / x_seconds:.2f}x time, {requests / x_requests:.2f}x requests")
    return ok and fine


PARTS = ("ls", "cat", "dcm2niix", "find")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--files", type=int, default=5000)
    parser.add_argument("--subjects", type=int, default=1000)
    parser.add_argument("--latency-ms", type=float, default=20.0)
    parser.add_argument("--skip-find", action="store_true", help="no find over many subjects")
    parser.add_argument("--slices", type=int, default=1000, help="slices of the DICOM series for dcm2niix "
                        "(0: no dcm2niix part)")
    parser.add_argument("--rounds", type=int, default=3, help="rounds of the dcm2niix part (medians are printed)")
    parser.add_argument("--bandwidth-mibps", type=float, default=120.0, help="the link of the dcm2niix part, as "
                        "in issue 13's table (a 1 Gbit/s link; 0: unlimited)")
    parser.add_argument("--only", choices=PARTS, action="append", help="run only this part (repeatable)")
    parser.add_argument("--serve-memfs", nargs=2, metavar=("MOUNTPOINT", "FILES_OR_FOLDER"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve_memfs:
        serve_memfs(args.serve_memfs[0], args.serve_memfs[1])
        return 0
    parts = set(args.only or PARTS) - ({"find"} if args.skip_find else set()) - (set() if args.slices else {"dcm2niix"})

    from xnatfs.emulator.server import EmulatorServer

    ok = True
    with tempfile.TemporaryDirectory(prefix="bench-scale-") as tmp:
        server = EmulatorServer(Path(tmp) / "data", users={ADMIN[0]: ADMIN[1]})
        generate(server.store, args.files if parts & {"ls", "cat"} else 0, args.subjects if "find" in parts else 0)
        if "dcm2niix" in parts:
            generate_dicom(server.store, args.slices)
        server.start()
        try:
            if "ls" in parts:
                ok &= part_ls(server.url, args.files)
            server.set_faults(latency_ms=args.latency_ms)
            if "cat" in parts:
                ok &= part_cat(server.url, Path(tmp), args.files, args.latency_ms)
            if "dcm2niix" in parts:
                server.set_faults(bandwidth_mibps=args.bandwidth_mibps)  # the link for this row
                ok &= part_dcm2niix(server.url, Path(tmp), args.slices, args.latency_ms, args.rounds,
                                    args.bandwidth_mibps)
                server.set_faults(bandwidth_mibps=0)
            if "find" in parts:
                ok &= part_find(server.url, args.subjects, args.latency_ms)
        finally:
            server.stop()
    print("check: " + ("every walk saw exactly the generated names and sizes" if ok else "FAILED"))
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
