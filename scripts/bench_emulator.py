#!/usr/bin/env python3
"""The emulator alone at real sizes (issue 13): what one request costs, and whether it grows with size.

The emulator must not be what a mount benchmark measures. This boots it in-process (as
``bench_scale.py`` does) over a store holding a resource of ``--small`` (200) files, one of
``--files`` (5,000) files, a project of one subject and a project of ``--subjects`` (1,000) subjects
(one session each), and times repeated GETs on one keep-alive ``requests.Session`` logged in as
admin (its ``JSESSIONID`` cookie, no credentials per request):

- a file of the small resource and a file of the big one (32 KiB each);
- the file listings of both resources (``files?format=json``);
- a subject document (``?format=xml``) in the one-subject project and in the big project;
- the big project's subject listing and experiment listing (json);
- the big resource as one zip (``files?format=zip``): time, and how far the process's peak RSS
  rose above its RSS before the download (the zip streams if that stays near one chunk, not near
  the archive's size; the client side reads it in 1 MiB pieces and keeps nothing).

The floor the HTTP plumbing sets is measured in the same run: a trivial werkzeug app answering a
fixed 32 KiB body on the same kind of server (threaded, keep-alive, the emulator's quiet handler),
fetched the same way. Median and 90th percentile per request as the client saw it, and the median
time spent inside the WSGI app (the emulator's own work, without the HTTP plumbing); the small and
the big case of each pair are requested in turn, so drift weighs on both alike; ratios from the
same run. Nothing here asserts a timing.

``--profile`` also runs each request kind under cProfile (inside the WSGI call, body included) and
prints the functions with the most cumulative time, for finding where a request's time goes.

Usage: ``.venv/bin/python scripts/bench_emulator.py [--small 200] [--files 5000] [--subjects 1000]
[--repeat 300] [--profile]``.
"""

from __future__ import annotations

import argparse
import cProfile
import io
import pstats
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import requests

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_common import ADMIN, MiB  # noqa: E402

FILE_SIZE = 32 * 1024
SMALL = "/data/projects/SMALL/subjects/S1/experiments/S1_MR1/scans/1/resources/DICOM/files"
BIG = "/data/projects/BIG/subjects/B1/experiments/B1_MR1/scans/1/resources/DICOM/files"


def file_name(index: int) -> str:
    return f"1.MR.{index:05d}.dcm"


def add_series(store, project_id: str, subject_label: str, files: int) -> None:  # type: ignore[no-untyped-def]
    """Project ``project_id``: one subject, session ``<subject>_MR1``, scan 1 with a DICOM resource of
    ``files`` files of 32 KiB (inside the caller's transaction)."""
    project = store.create_project(project_id)
    subject = store.create_subject(project.id, subject_label)
    session = store.create_experiment(project.id, subject.id, f"{subject_label}_MR1", "xnat:mrSessionData",
                                      {"modality": "MR", "date": "2026-01-01"})
    scan = store.create_scan(session.id, "1", "xnat:mrScanData", {"type": "T1"})
    resource = store.create_resource(scan, "DICOM", format="DICOM")
    body = bytes(range(256)) * (FILE_SIZE // 256)
    for i in range(files):
        store.add_file(resource.id, file_name(i), body, format="DICOM")


def add_subjects(store, project_id: str, prefix: str, subjects: int) -> None:  # type: ignore[no-untyped-def]
    """Project ``project_id`` with ``subjects`` subjects ``<prefix>0000``…, one MR session each."""
    project = store.create_project(project_id)
    for s in range(subjects):
        subject = store.create_subject(project.id, f"{prefix}{s:04d}", {"gender": "female"})
        store.create_experiment(project.id, subject.id, f"{prefix}{s:04d}_MR1", "xnat:mrSessionData",
                                {"modality": "MR", "date": "2026-01-01"})


def generate(store, small: int, files: int, subjects: int) -> None:  # type: ignore[no-untyped-def]
    with store.transaction():
        add_series(store, "SMALL", "S1", small)
        add_series(store, "BIG", "B1", files)
        add_subjects(store, "ONE", "O", 1)
        add_subjects(store, "MANY", "M", subjects)


# ---- the process's memory -------------------------------------------------------------------------
def _status_kib(field: str) -> int:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise RuntimeError(f"no {field} in /proc/self/status")


class PeakRSS:
    """Peak RSS growth over a block: Linux's high-water mark (VmHWM) reset through ``clear_refs``
    (the kernel's own peak, nothing missed between samples); where that is refused, RSS sampled
    every millisecond by a thread."""

    def __enter__(self) -> "PeakRSS":
        self.before = _status_kib("VmRSS")
        try:
            with open("/proc/self/clear_refs", "w") as refs:
                refs.write("5")
            self._sampler = None
        except OSError:
            self._peak, self._stop = self.before, threading.Event()
            self._sampler = threading.Thread(target=self._sample, daemon=True)
            self._sampler.start()
        return self

    def _sample(self) -> None:
        while not self._stop.wait(0.001):
            self._peak = max(self._peak, _status_kib("VmRSS"))

    def __exit__(self, *exc: object) -> None:
        if self._sampler is None:
            self.peak = _status_kib("VmHWM")
        else:
            self._stop.set()
            self._sampler.join()
            self.peak = self._peak
        self.growth_mib = max(self.peak - self.before, 0) / 1024


# ---- timing -----------------------------------------------------------------------------------------
@dataclass
class Timing:
    name: str
    times: list[float]      # per request, seen by the client
    app_times: list[float]  # per request, inside the WSGI app
    body: int

    @staticmethod
    def _median_ms(values: list[float]) -> float:
        return statistics.median(values) * 1000 if values else float("nan")

    @property
    def median_ms(self) -> float:
        return self._median_ms(self.times)

    @property
    def p90_ms(self) -> float:
        ordered = sorted(self.times)
        return ordered[min(len(ordered) - 1, int(round(0.9 * (len(ordered) - 1))))] * 1000

    @property
    def app_median_ms(self) -> float:
        return self._median_ms(self.app_times)


@dataclass
class Case:
    name: str
    url: str
    repeat: int
    method: str = "GET"
    data: bytes | None = None
    group: str = ""  # cases of one group are timed in turn (a small and a big container)


def time_group(session: requests.Session, cases: list[Case], measured: "MeasuredApp",
               warmup: int = 3) -> list[Timing]:
    """Requests of ``cases`` taken in turn (small, big, small, big...), so that a drift of the machine
    or of the store (the write-ahead log growing between checkpoints) weighs on both alike;
    ``warmup`` untimed rounds first. Each answer is read to its end and must be 200 with the same
    length every time."""
    bodies = {case.name: -1 for case in cases}
    times: dict[str, list[float]] = {case.name: [] for case in cases}
    app_times: dict[str, list[float]] = {case.name: [] for case in cases}
    for i in range(warmup + max(case.repeat for case in cases)):
        for case in cases:
            if i >= warmup + case.repeat:
                continue
            recorded = len(measured.times)
            start = time.perf_counter()
            response = session.request(case.method, case.url, data=case.data, timeout=60)
            content = response.content
            elapsed = time.perf_counter() - start
            if response.status_code != 200 or bodies[case.name] not in (-1, len(content)):
                raise RuntimeError(f"{case.name}: {case.url} answered {response.status_code}, {len(content)} bytes")
            bodies[case.name] = len(content)
            deadline = time.monotonic() + 5  # the server records a request once it has closed its body
            while len(measured.times) <= recorded and time.monotonic() < deadline:
                time.sleep(0)
            if i >= warmup:
                times[case.name].append(elapsed)
                app_times[case.name].append(measured.times[-1])
    return [Timing(case.name, times[case.name], app_times[case.name], bodies[case.name]) for case in cases]


def time_zip(session: requests.Session, url: str) -> tuple[float, int, float]:
    """Seconds for the whole zip, its size, and the peak RSS growth (MiB) while it was made and read."""
    with PeakRSS() as memory:
        start = time.perf_counter()
        size = 0
        with session.get(url, stream=True, timeout=600) as response:
            response.raise_for_status()
            for chunk in response.iter_content(MiB):
                size += len(chunk)
        seconds = time.perf_counter() - start
    return seconds, size, memory.growth_mib


def login(base: str) -> requests.Session:
    """A keep-alive session holding the emulator's JSESSIONID for admin, sending no credentials."""
    session = requests.Session()
    response = session.post(f"{base}/data/JSESSION", auth=ADMIN, timeout=30)
    response.raise_for_status()
    if "JSESSIONID" not in session.cookies:
        raise RuntimeError("the emulator set no JSESSIONID cookie")
    return session


# ---- the floor: a trivial app on the same kind of server ------------------------------------------
@dataclass
class Floor:
    url: str
    app: "MeasuredApp"
    stop: Callable[[], None]


def floor_server() -> Floor:
    """A werkzeug app answering a fixed 32 KiB body, served like the emulator (threaded, keep-alive,
    the emulator's quiet request handler)."""
    from werkzeug.serving import make_server
    from werkzeug.wrappers import Request, Response

    from xnatfs.emulator.server import QuietRequestHandler

    body = bytes(range(256)) * (FILE_SIZE // 256)

    @Request.application
    def app(request: Request) -> Response:
        return Response(body, mimetype="application/octet-stream")

    measured = MeasuredApp(app)
    server = make_server("127.0.0.1", 0, measured, threaded=True, request_handler=QuietRequestHandler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True)
    thread.start()

    def stop() -> None:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)

    return Floor(f"http://127.0.0.1:{server.server_port}/", measured, stop)


# ---- the app's own share of a request ---------------------------------------------------------
class MeasuredApp:
    """Wraps the emulator's WSGI app to record the time spent inside it per request: the call and the
    production of each body chunk, not the socket writes between them (so a streamed zip is not held
    whole). While ``profile`` is set, that same work runs under cProfile."""

    def __init__(self, app: Callable) -> None:
        self.app = app
        self.profile: cProfile.Profile | None = None
        self.times: list[float] = []

    def __call__(self, environ: dict, start_response: Callable) -> Iterable[bytes]:
        spent = [0.0]
        start = self._start()
        try:
            body = self.app(environ, start_response)
        finally:
            spent[0] += self._stop(start)
        return self._timed(body, spent)

    def _timed(self, body: Iterable[bytes], spent: list[float]) -> Iterator[bytes]:
        iterator = iter(body)
        try:
            while True:
                start = self._start()
                try:
                    chunk = next(iterator)
                except StopIteration:
                    break
                finally:
                    spent[0] += self._stop(start)
                yield chunk
        finally:
            getattr(body, "close", lambda: None)()
            self.times.append(spent[0])

    def _start(self) -> float:
        if self.profile is not None:
            self.profile.enable()
        return time.perf_counter()

    def _stop(self, start: float) -> float:
        elapsed = time.perf_counter() - start
        if self.profile is not None:
            self.profile.disable()
        return elapsed


def profile_report(measured: MeasuredApp, session: requests.Session, case: Case, repeat: int) -> str:
    measured.profile = cProfile.Profile()
    try:
        for _ in range(repeat):
            session.request(case.method, case.url, data=case.data, timeout=60).content
    finally:
        profile, measured.profile = measured.profile, None
    out = io.StringIO()
    stats = pstats.Stats(profile, stream=out)
    stats.sort_stats("cumulative").print_stats(25)
    return f"---- {case.name} ({repeat} requests) ----\n" + out.getvalue()


# ---- main -------------------------------------------------------------------------------------------
def cases(base: str, floor: str, args: argparse.Namespace) -> list[Case]:
    many_subject = f"M{args.subjects // 2:04d}"
    body = bytes(range(256)) * (FILE_SIZE // 256)
    light, listing = args.repeat, args.repeat_listing
    return [
        Case("floor: trivial werkzeug app, 32 KiB body", floor, light),
        Case(f"file GET, {args.small}-file resource", f"{base}{SMALL}/{file_name(args.small // 2)}", light,
             group="get"),
        Case(f"file GET, {args.files}-file resource", f"{base}{BIG}/{file_name(args.files // 2)}", light,
             group="get"),
        Case(f"file listing (json), {args.small} files", f"{base}{SMALL}?format=json", listing, group="list"),
        Case(f"file listing (json), {args.files} files", f"{base}{BIG}?format=json", listing, group="list"),
        Case("subject document (xml), 1-subject project", f"{base}/data/projects/ONE/subjects/O0000?format=xml",
             light, group="doc"),
        Case(f"subject document (xml), {args.subjects}-subject project",
             f"{base}/data/projects/MANY/subjects/{many_subject}?format=xml", light, group="doc"),
        Case(f"subject listing (json), {args.subjects} subjects", f"{base}/data/projects/MANY/subjects?format=json",
             listing),
        Case(f"experiment listing (json), {args.subjects} sessions",
             f"{base}/data/projects/MANY/experiments?format=json", listing),
        Case(f"file PUT (overwrite), {args.small}-file resource", f"{base}{SMALL}/probe.dcm?overwrite=true",
             light // 3, "PUT", body, group="put"),
        Case(f"file PUT (overwrite), {args.files}-file resource", f"{base}{BIG}/probe.dcm?overwrite=true",
             light // 3, "PUT", body, group="put"),
    ]


def groups(cases: list[Case]) -> list[list[Case]]:
    """Consecutive cases of one group together; a case without a group alone."""
    out: list[list[Case]] = []
    for case in cases:
        if out and case.group and out[-1][0].group == case.group:
            out[-1].append(case)
        else:
            out.append([case])
    return out


def report(results: list[Timing], zip_run: tuple[float, int, float], args: argparse.Namespace, built: float) -> None:
    print(f"emulator alone, loopback, one keep-alive session (JSESSIONID); store built in {built:.1f} s")
    print()
    print("| request | median | p90 | in the app (median) | body | runs |")
    print("| --- | --- | --- | --- | --- | --- |")
    for timing in results:
        print(f"| {timing.name} | {timing.median_ms:.2f} ms | {timing.p90_ms:.2f} ms | "
              f"{timing.app_median_ms:.2f} ms | {timing.body:,} B | {len(timing.times)} |")
    zip_seconds, zip_size, zip_rss = zip_run
    print(f"| zip of the {args.files}-file resource (files?format=zip) | {zip_seconds:.2f} s | | | "
          f"{zip_size / MiB:.1f} MiB | 1 |")
    print()
    (floor, get_small, get_big, list_small, list_big, doc_one, doc_many, subjects, experiments, put_small,
     put_big) = (t.median_ms for t in results)
    print("same-run ratios (medians):")
    print(f"- file GET, {args.files} vs {args.small} files: {get_big / get_small:.2f}x; "
          f"file PUT: {put_big / put_small:.2f}x")
    print(f"- file GET over the floor: {get_small / floor:.2f}x ({args.small} files), "
          f"{get_big / floor:.2f}x ({args.files} files)")
    print(f"- file listing, {args.files} vs {args.small} files: {list_big / list_small:.1f}x "
          f"({args.files / args.small:.0f}x the files); per listed file: {list_big / args.files * 1000:.1f} us "
          f"({args.files}), {list_small / args.small * 1000:.1f} us ({args.small})")
    print(f"- subject document, {args.subjects}- vs 1-subject project: {doc_many / doc_one:.2f}x")
    print(f"- per listed subject: {subjects / args.subjects * 1000:.1f} us; "
          f"per listed session: {experiments / args.subjects * 1000:.1f} us")
    print(f"- zip: {zip_size / MiB / zip_seconds:.0f} MiB/s; peak RSS growth while it streamed: {zip_rss:.1f} MiB "
          f"({zip_rss / (zip_size / MiB) * 100:.1f}% of the archive)")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--small", type=int, default=200, help="files in the small resource")
    parser.add_argument("--files", type=int, default=5000, help="files in the big resource")
    parser.add_argument("--subjects", type=int, default=1000, help="subjects in the big project")
    parser.add_argument("--repeat", type=int, default=300, help="requests per single-object case")
    parser.add_argument("--repeat-listing", type=int, default=20, help="requests per listing")
    parser.add_argument("--profile", action="store_true", help="also print a cProfile of each case")
    args = parser.parse_args()

    from xnatfs.emulator.server import EmulatorServer

    with tempfile.TemporaryDirectory(prefix="bench-emulator-") as tmp:
        server = EmulatorServer(Path(tmp) / "data", users={ADMIN[0]: ADMIN[1]})
        start = time.perf_counter()
        generate(server.store, args.small, args.files, args.subjects)
        built = time.perf_counter() - start
        measured = MeasuredApp(server.app)
        server.app = measured  # type: ignore[assignment]  # start() serves server.app
        server.start()
        floor = floor_server()
        todo = cases(server.url, floor.url, args)
        results: list[Timing] = []
        reports = []
        try:
            with login(server.url) as session, requests.Session() as plain:
                results += time_group(plain, todo[:1], floor.app)
                for group in groups(todo[1:]):
                    results += time_group(session, group, measured)
                zip_run = time_zip(session, f"{server.url}{BIG}?format=zip")
                if args.profile:
                    for case in todo[1:]:
                        reports.append(profile_report(measured, session, case, max(case.repeat // 3, 5)))
        finally:
            floor.stop()
            server.stop()
    report(results, zip_run, args, built)
    for text in reports:
        print()
        print(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
