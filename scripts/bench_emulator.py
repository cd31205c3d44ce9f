#!/usr/bin/env python3
"""The emulator alone at real sizes (issue 13): what one request costs, and whether it grows with size.

The emulator must not be what a mount benchmark measures. This boots it in-process (as
``bench_scale.py`` does) over a store holding a resource of ``--small`` (200) files, one of
``--files`` (5,000) files, a project of one subject and a project of ``--subjects`` (1,000) subjects
(one session each). A client in its own process (as the mount is; sharing the emulator's interpreter
would add the client's work and its lock hand-overs to every figure) times repeated requests on one
keep-alive ``requests.Session`` logged in as admin (its ``JSESSIONID`` cookie, no credentials per
request):

- a file of the small resource and a file of the big one (32 KiB each);
- the file listings of both resources (``files?format=json``);
- a subject document (``?format=xml``) in the one-subject project and in the big project;
- the resource list of the scan holding each resource, and the document of its session (``xml``),
  both showing the resource's file count and size;
- the big project's subject listing and experiment listing (json);
- a 32 KiB upload replacing a file in each resource (``PUT …?overwrite=true``);
- the big resource as one zip (``files?format=zip``): time, and how far the emulator process's peak
  RSS rose above its RSS before the download (it streams if that stays near a few read chunks, not
  near the archive's size).

The floor the HTTP plumbing sets is measured in the same run: a trivial werkzeug app answering a
fixed 32 KiB body on the same kind of server (threaded, keep-alive, the emulator's quiet handler),
in the emulator's process, fetched the same way. Median and 90th percentile per request as the
client saw it, and the median time spent inside the WSGI app (the emulator's own work, without the
HTTP plumbing). The small and the big case of each pair (and the floor with the file GETs) are
requested in turn, so drift weighs on all alike, after two seconds of untimed requests; ratios from
the same run. Nothing here asserts a timing.

``--profile`` also runs each request kind under cProfile (inside the WSGI call, body included) and
prints the functions with the most cumulative time, for finding where a request's time goes.

Usage: ``.venv/bin/python scripts/bench_emulator.py [--small 200] [--files 5000] [--subjects 1000]
[--repeat 300] [--repeat-listing 20] [--profile]``.
"""

from __future__ import annotations

import argparse
import collections
import cProfile
import io
import multiprocessing
import pstats
import statistics
import sys
import tempfile
import threading
import time
import urllib.parse
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from multiprocessing.connection import Connection
from pathlib import Path

import requests

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_common import ADMIN, MiB  # noqa: E402

FILE_SIZE = 32 * 1024
#: Untimed requests first: on this shared VM a fresh process's first second of requests ran 2-3x slower.
WARM_UP_SECONDS = 2.0
SMALL = "/data/projects/SMALL/subjects/S1/experiments/S1_MR1/scans/1/resources/DICOM/files"
BIG = "/data/projects/BIG/subjects/B1/experiments/B1_MR1/scans/1/resources/DICOM/files"
#: The scan's resource list and the session of each resource's files.
SCAN_OF = {files: files.rsplit("/", 2)[0] for files in (SMALL, BIG)}
SESSION_OF = {files: files.split("/scans/")[0] for files in (SMALL, BIG)}


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


# ---- timing (in the client process) ---------------------------------------------------------------
@dataclass
class Case:
    name: str
    url: str
    repeat: int
    method: str = "GET"
    data: bytes | None = None
    group: str = ""  # cases of one group are timed in turn (a small and a big container)

    @property
    def target(self) -> str:
        """The request target as the server sees it (werkzeug's ``RAW_URI``)."""
        parts = urllib.parse.urlsplit(self.url)
        return parts.path + (f"?{parts.query}" if parts.query else "")


def time_group(session: requests.Session, cases: list[Case], warmup: int) -> dict[str, tuple[list[float], int]]:
    """Requests of ``cases`` taken in turn (small, big, small, big...), so that a drift of the machine
    or of the store (the write-ahead log growing between checkpoints) weighs on both alike;
    ``warmup`` untimed rounds first. Each answer is read to its end and must be 200 with the same
    length every time. Per case: the times and the body length."""
    bodies = {case.name: -1 for case in cases}
    times: dict[str, list[float]] = {case.name: [] for case in cases}
    for i in range(warmup + max(case.repeat for case in cases)):
        for case in cases:
            if i >= warmup + case.repeat:
                continue
            start = time.perf_counter()
            response = session.request(case.method, case.url, data=case.data, timeout=60)
            content = response.content
            elapsed = time.perf_counter() - start
            if response.status_code != 200 or bodies[case.name] not in (-1, len(content)):
                raise RuntimeError(f"{case.name}: {case.url} answered {response.status_code}, {len(content)} bytes")
            bodies[case.name] = len(content)
            if i >= warmup:
                times[case.name].append(elapsed)
    return {name: (times[name], bodies[name]) for name in times}


def login(base: str) -> requests.Session:
    """A keep-alive session holding the emulator's JSESSIONID for admin, sending no credentials."""
    session = requests.Session()
    response = session.post(f"{base}/data/JSESSION", auth=ADMIN, timeout=30)
    response.raise_for_status()
    if "JSESSIONID" not in session.cookies:
        raise RuntimeError("the emulator set no JSESSIONID cookie")
    return session


def client(base: str, groups: list[list[Case]], zip_url: str, warmup: int, to_server: Connection) -> None:
    """The client process: untimed requests to the floor (the first case of the first group) for
    ``WARM_UP_SECONDS``, every group of cases, then the zip,
    which the server side watches for memory (``zip`` announced, ``done`` when read). Sends back
    ``{case name: (times, body length)}`` and the zip's (seconds, bytes)."""
    results: dict[str, tuple[list[float], int]] = {}
    with login(base) as session:
        floor = groups[0][0]
        until = time.monotonic() + WARM_UP_SECONDS
        while time.monotonic() < until:  # a fresh process on a shared VM runs slower for its first second
            session.get(floor.url, timeout=60).content
        for group in groups:
            results.update(time_group(session, group, warmup))
        to_server.send("zip")
        to_server.recv()
        start = time.perf_counter()
        size = 0
        with session.get(zip_url, stream=True, timeout=600) as response:
            response.raise_for_status()
            for chunk in response.iter_content(MiB):
                size += len(chunk)
        seconds = time.perf_counter() - start
    to_server.send((results, (seconds, size)))


def run_client(base: str, groups: list[list[Case]], zip_url: str,
               warmup: int) -> tuple[dict[str, tuple[list[float], int]], tuple[float, int, float]]:
    """Run :func:`client` in a fresh interpreter (spawned, not forked: this process has server
    threads) and measure this process's peak RSS growth while the zip is produced."""
    context = multiprocessing.get_context("spawn")
    here, there = context.Pipe()
    process = context.Process(target=client, args=(base, groups, zip_url, warmup, there), daemon=True)
    process.start()
    try:
        if here.recv() != "zip":
            raise RuntimeError("the client process did not reach the zip")
        with PeakRSS() as memory:
            here.send("go")
            results, (seconds, size) = here.recv()
    finally:
        process.join(timeout=60)
    return results, (seconds, size, memory.growth_mib)


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
        self.times: dict[str, list[float]] = collections.defaultdict(list)  # by request target, in order

    def __call__(self, environ: dict, start_response: Callable) -> Iterable[bytes]:
        spent = [0.0]
        start = self._start()
        try:
            body = self.app(environ, start_response)
        finally:
            spent[0] += self._stop(start)
        return self._timed(body, spent, self.times[environ.get("RAW_URI", "")])

    def _timed(self, body: Iterable[bytes], spent: list[float], record: list[float]) -> Iterator[bytes]:
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
            record.append(spent[0])

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
        Case("floor: trivial werkzeug app, 32 KiB body", floor, light, group="get"),
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
        Case(f"resources of the scan (json), {args.small}-file resource", f"{base}{SCAN_OF[SMALL]}?format=json",
             light, group="resources"),
        Case(f"resources of the scan (json), {args.files}-file resource", f"{base}{SCAN_OF[BIG]}?format=json",
             light, group="resources"),
        Case(f"session document (xml), {args.small}-file scan", f"{base}{SESSION_OF[SMALL]}?format=xml", light,
             group="session"),
        Case(f"session document (xml), {args.files}-file scan", f"{base}{SESSION_OF[BIG]}?format=xml", light,
             group="session"),
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
    print(f"emulator alone, loopback, a client process with one keep-alive session (JSESSIONID); "
          f"store built in {built:.1f} s")
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
    (floor, get_small, get_big, list_small, list_big, doc_one, doc_many, res_small, res_big, session_small,
     session_big, subjects, experiments, put_small, put_big) = (t.median_ms for t in results)
    print("same-run ratios (medians):")
    print(f"- {args.files} vs {args.small} files: file GET {get_big / get_small:.2f}x, file PUT "
          f"{put_big / put_small:.2f}x, the scan's resources {res_big / res_small:.2f}x, the session document "
          f"{session_big / session_small:.2f}x")
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

    warmup = 3
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
        reports = []
        try:
            answers, zip_run = run_client(server.url, groups(todo), f"{server.url}{BIG}?format=zip", warmup)
            if args.profile:
                with login(server.url) as session:
                    for case in todo[1:]:
                        reports.append(profile_report(measured, session, case, max(case.repeat // 3, 5)))
        finally:
            floor.stop()
            server.stop()
    results = []
    for case in todo:
        times, body = answers[case.name]
        app = (floor.app if case.url == floor.url else measured).times[case.target][warmup:]
        results.append(Timing(case.name, times, app, body))
    report(results, zip_run, args, built)
    for text in reports:
        print()
        print(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
