"""What downloads and uploads share: options, the summary, the progress protocol, the filters and the pool.

A transfer is a list of independent files, each moved (or skipped) by one worker of a thread pool.
Why a pool of threads: the work is waiting on the network (a request's latency, a body's bytes)
and on the disk, which release the GIL; the pool is bounded (``jobs``) and so is its queue (at most
``2 × jobs`` files submitted ahead), so a transfer of a million files holds a million small records
and no more than ``jobs`` open files and 1 MiB chunks. One file's failure is recorded and the others
go on; only an interrupt (Ctrl-C) stops the lot.

Imports the standard library and :mod:`xnatfs.errors` only.
"""

from __future__ import annotations

import fnmatch
import logging
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from typing import Any, Protocol, TypeVar

from xnatfs.errors import XNATError

log = logging.getLogger(__name__)

T = TypeVar("T")

#: workers by default: enough to hide a distant server's latency per request, fewer than the
#: transport's connection pool (16), so every worker keeps its connection
DEFAULT_JOBS = 8
MAX_JOBS = 16

#: what became of one file
SENT, SKIPPED, FAILED, PLANNED = "sent", "skipped", "failed", "planned"


@dataclass(frozen=True)
class TransferOptions:
    """How a transfer runs: workers, md5 checks, filters, a dry run, the generated documents."""

    jobs: int = DEFAULT_JOBS
    verify: bool = True
    include: Sequence[str] = ()
    exclude: Sequence[str] = ()
    dry_run: bool = False
    with_metadata: bool = False
    overwrite: bool = False

    def __post_init__(self) -> None:
        if not 1 <= self.jobs <= MAX_JOBS:
            raise ValueError(f"jobs must be between 1 and {MAX_JOBS}, not {self.jobs}")

    def wanted(self, relpath: str) -> bool:
        """Whether the filters keep ``relpath`` (``/``-separated, relative to the transfer's root)."""
        if self.include and not any(matches(relpath, p) for p in self.include):
            return False
        return not any(matches(relpath, p) for p in self.exclude)


def matches(relpath: str, pattern: str) -> bool:
    """A glob with a ``/`` is matched against the whole relative path, one without against the file
    name too (as rsync and .gitignore do): ``*.dcm`` picks every DICOM file at any depth,
    ``scans/*/resources/DICOM/*`` the DICOM files of every scan."""
    if fnmatch.fnmatchcase(relpath, pattern.strip("/")):
        return True
    return "/" not in pattern and fnmatch.fnmatchcase(relpath.rsplit("/", 1)[-1], pattern)


@dataclass
class Summary:
    """The outcome of a transfer (``--json`` prints :meth:`as_dict`)."""

    files: int = 0
    bytes: int = 0
    skipped: int = 0
    planned: int = 0
    failed: list[tuple[str, str]] = field(default_factory=list)
    seconds: float = 0.0
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)

    @property
    def ok(self) -> bool:
        return not self.failed

    def record(self, relpath: str, outcome: str, moved: int, message: str = "") -> None:
        with self._lock:
            self.bytes += moved
            if outcome == SENT:
                self.files += 1
            elif outcome == SKIPPED:
                self.skipped += 1
            elif outcome == PLANNED:
                self.planned += 1
            else:
                self.failed.append((relpath, message))

    def as_dict(self) -> dict[str, Any]:
        return {"files": self.files, "bytes": self.bytes, "skipped": self.skipped, "planned": self.planned,
                "failed": [{"path": p, "error": m} for p, m in sorted(self.failed)],
                "seconds": round(self.seconds, 3)}


class Reporter(Protocol):
    """Where a transfer tells its progress (a bar on a terminal, plain lines otherwise, nothing)."""

    def start(self, files: int, total_bytes: int) -> None: ...

    def advance(self, moved: int) -> None: ...

    def done(self, relpath: str, outcome: str, size: int, message: str = "") -> None: ...

    def close(self) -> None: ...


class QuietReporter:
    """Reports nothing (the library's default)."""

    def start(self, files: int, total_bytes: int) -> None:
        pass

    def advance(self, moved: int) -> None:
        pass

    def done(self, relpath: str, outcome: str, size: int, message: str = "") -> None:
        pass

    def close(self) -> None:
        pass


class ByteCounter:
    """A model ``progress(done, total)`` callback that forwards how many bytes arrived since the last call.

    ``done`` counts from the start of the file, including bytes a resumed download had on disk, so the
    first call is taken as the starting point rather than as bytes moved. Once ``cancel`` is set (Ctrl-C
    in the main thread, see :func:`run_pool`) the next chunk raises ``InterruptedError``: the worker
    stops there, recording its file as failed, and a download keeps its ``.part`` file for the rerun.
    """

    def __init__(self, reporter: Reporter, start: int = 0, cancel: threading.Event | None = None) -> None:
        self._reporter = reporter
        self._last = start
        self._cancel = cancel

    def __call__(self, done: int, total: int | None) -> None:
        if self._cancel is not None and self._cancel.is_set():
            raise InterruptedError("the transfer was interrupted")
        if done > self._last:
            self._reporter.advance(done - self._last)
        self._last = done

    def restart(self, start: int) -> None:
        self._last = start


def run_pool(items: Iterable[T], work: Callable[[T], None], jobs: int, cancel: threading.Event | None = None) -> None:
    """``work(item)`` for every item on ``jobs`` threads, at most ``2 × jobs`` submitted ahead.

    ``work`` records its own outcome; an exception that escapes it (a bug, not an XNAT error) is
    re-raised here after the pool has stopped. Ctrl-C (or that exception) cancels what has not
    started, sets ``cancel`` (so running work stops at its next chunk, see :class:`ByteCounter`) and
    re-raises once the running work has stopped.
    """
    pending: set[Future[None]] = set()
    with ThreadPoolExecutor(max_workers=jobs, thread_name_prefix="xnatfs-transfer") as pool:
        try:
            for item in items:
                while len(pending) >= 2 * jobs:
                    finished, pending = wait(pending, return_when=FIRST_COMPLETED)
                    _raise_first(finished)
                pending.add(pool.submit(work, item))
            while pending:
                finished, pending = wait(pending, return_when=FIRST_COMPLETED)
                _raise_first(finished)
        except BaseException:
            if cancel is not None:
                cancel.set()
            for future in pending:
                future.cancel()
            raise


def _raise_first(finished: set[Future[None]]) -> None:
    for future in finished:
        future.result()


def describe(exc: BaseException) -> str:
    """One line for a failed file (XNAT errors carry their own words; others get their type)."""
    if isinstance(exc, XNATError):
        return str(exc)
    return f"{type(exc).__name__}: {exc}"


class Clock:
    """Seconds since the transfer began (monotonic)."""

    def __init__(self) -> None:
        self._start = time.monotonic()

    def elapsed(self) -> float:
        return time.monotonic() - self._start


__all__ = ["TransferOptions", "Summary", "Reporter", "QuietReporter", "ByteCounter", "run_pool", "matches",
           "describe", "Clock", "DEFAULT_JOBS", "MAX_JOBS", "SENT", "SKIPPED", "FAILED", "PLANNED"]
