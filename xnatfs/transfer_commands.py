"""``xnatfs download`` and ``xnatfs upload``: bulk transfer from a shell (the engine is :mod:`xnatfs.transfer`).

::

    xnatfs download URL REMOTE LOCAL [-j N] [--include GLOB]… [--exclude GLOB]… [--dry-run] [--json]
    xnatfs upload URL LOCAL REMOTE [-j N] [--include GLOB]… [--exclude GLOB]… [--overwrite] [--dry-run] [--json]

``REMOTE`` is a path as the mount shows it (``projects/P/subjects/S/experiments/E``,
``…/scans/2/resources/DICOM``). Progress: a bar on stderr when it is a terminal, else one line per
file moved or failed; ``--json`` prints a summary on stdout at the end (files, bytes, skipped,
failed, seconds). Credentials as for ``mount`` (``--user`` with ``$XNATFS_PASSWORD`` or a prompt,
else netrc). Exit codes: 0 every file went (or was there already); 1 some failed (listed on
stderr); 2 bad usage or configuration; 130 interrupted.

A separate module (not :mod:`xnatfs.commands`) so that rich and the transfer engine are imported only
for these two commands; it sits one layer above :mod:`xnatfs.commands` and shares its connection options.
"""

from __future__ import annotations

import argparse
import json
import sys
import threading
from typing import Any, TextIO

from xnatfs.commands import EXIT_FAILED, EXIT_INTERRUPTED, EXIT_OK, EXIT_USAGE
from xnatfs.commands import URL_HELP, connect_from_args, connection_options
from xnatfs.errors import ConfigError, XNATError
from xnatfs.transfer import DEFAULT_JOBS, MAX_JOBS, Reporter, Summary, TransferOptions, download, upload
from xnatfs.transfer.common import FAILED, PLANNED, SENT, SKIPPED

MiB = 1024 * 1024


def _parser(command: str) -> argparse.ArgumentParser:
    if command == "download":
        parser = argparse.ArgumentParser(prog="xnatfs download", description="Download the files below a path of "
                                         "the mount's layout into a local folder, with the same relative paths; "
                                         "parallel, resumable, md5-checked.")
        parser.add_argument("url", metavar="URL", help=URL_HELP)
        parser.add_argument("remote", metavar="REMOTE", help="e.g. projects/P/subjects/S/experiments/E")
        parser.add_argument("local", metavar="LOCAL", help="local folder (made if missing)")
        parser.add_argument("--with-metadata", action="store_true",
                            help="also write the generated xnat.json/xnat.xml documents")
    else:
        parser = argparse.ArgumentParser(prog="xnatfs upload", description="Upload a local file or folder "
                                         "(sub-folders kept) into a resource, creating the resource if needed; "
                                         "files the server has already (same size and md5) are skipped.")
        parser.add_argument("url", metavar="URL", help=URL_HELP)
        parser.add_argument("local", metavar="LOCAL", help="local file or folder")
        parser.add_argument("remote", metavar="REMOTE", help="e.g. projects/P/…/scans/2/resources/DICOM")
        parser.add_argument("--overwrite", action="store_true",
                            help="replace files the server holds with other content (default: report them)")
    parser.add_argument("-j", "--jobs", type=int, default=DEFAULT_JOBS,
                        help=f"files moved at once (1-{MAX_JOBS}, default {DEFAULT_JOBS})")
    parser.add_argument("--include", action="append", default=[], metavar="GLOB",
                        help="only files matching (a glob without / matches the file name); repeatable")
    parser.add_argument("--exclude", action="append", default=[], metavar="GLOB",
                        help="skip files matching; repeatable")
    parser.add_argument("--dry-run", "-n", action="store_true", help="say what would move, move nothing")
    parser.add_argument("--no-verify", dest="verify", action="store_false",
                        help="skip the md5 checks (complete files are then recognised by size alone)")
    parser.add_argument("--json", action="store_true", help="print a JSON summary on stdout at the end")
    parser.add_argument("--progress", action=argparse.BooleanOptionalAction, default=None,
                        help="progress bar (default: when stderr is a terminal)")
    connection_options(parser)
    return parser


class LineReporter:
    """Plain lines for logs and pipes: one per file moved, failed or (dry run) planned."""

    WORDS = {SENT: "ok", FAILED: "FAILED", PLANNED: "would transfer"}

    def __init__(self, stream: TextIO, verb: str) -> None:
        self._stream = stream
        self._verb = verb
        self._lock = threading.Lock()

    def start(self, files: int, total_bytes: int) -> None:
        self._line(f"{self._verb}: {files} files, {total_bytes / MiB:.1f} MiB")

    def advance(self, moved: int) -> None:
        pass

    def done(self, relpath: str, outcome: str, size: int, message: str = "") -> None:
        if outcome == SKIPPED:
            return
        self._line(f"{self.WORDS.get(outcome, outcome)} {relpath}" + (f": {message}" if message else ""))

    def close(self) -> None:
        pass

    def _line(self, text: str) -> None:
        with self._lock:
            self._stream.write(text + "\n")
            self._stream.flush()


class BarReporter:
    """A rich progress bar on a terminal: bytes, rate, time left, files done of all."""

    def __init__(self, stream: TextIO, verb: str) -> None:
        from rich.console import Console
        from rich.progress import (BarColumn, DownloadColumn, Progress, TextColumn, TimeRemainingColumn,
                                   TransferSpeedColumn)

        self._progress = Progress(TextColumn("{task.description}"), BarColumn(), DownloadColumn(),
                                  TransferSpeedColumn(), TimeRemainingColumn(), TextColumn("{task.fields[files]}"),
                                  console=Console(file=stream), transient=False)
        self._verb = verb
        self._task: Any = None
        self._files = 0
        self._done = 0
        self._lock = threading.Lock()

    def start(self, files: int, total_bytes: int) -> None:
        self._files = files
        self._progress.start()
        self._task = self._progress.add_task(self._verb, total=total_bytes, files=f"0/{files} files")

    def advance(self, moved: int) -> None:
        if self._task is not None:
            self._progress.advance(self._task, moved)

    def done(self, relpath: str, outcome: str, size: int, message: str = "") -> None:
        with self._lock:
            self._done += 1
            count = self._done
        if self._task is None:
            return
        if outcome in (SKIPPED, PLANNED):
            self._progress.advance(self._task, size)
        if outcome == FAILED:
            self._progress.console.print(f"FAILED {relpath}: {message}", markup=False, highlight=False)
        self._progress.update(self._task, files=f"{count}/{self._files} files")

    def close(self) -> None:
        if self._task is not None:
            self._progress.stop()


def _reporter(args: argparse.Namespace, err: TextIO, verb: str) -> Reporter:
    show = err.isatty() if args.progress is None else args.progress
    if show:
        return BarReporter(err, verb)
    if args.json:
        from xnatfs.transfer import QuietReporter
        return QuietReporter()
    return LineReporter(err, verb)


def _finish(summary: Summary, args: argparse.Namespace, out: TextIO, err: TextIO, verb: str) -> int:
    if args.json:
        out.write(json.dumps(summary.as_dict(), indent=None) + "\n")
    what = "would transfer" if args.dry_run else verb
    count = summary.planned if args.dry_run else summary.files
    err.write(f"{what} {count} files ({summary.bytes / MiB:.1f} MiB), {summary.skipped} already there, "
              f"{len(summary.failed)} failed, in {summary.seconds:.1f} s\n")
    if summary.failed:
        err.write("failed:\n" + "".join(f"  {path}: {message}\n" for path, message in sorted(summary.failed)))
        return EXIT_FAILED
    return EXIT_OK


def _run(command: str, argv: list[str], out: TextIO, err: TextIO) -> int:
    args = _parser(command).parse_args(argv)
    try:
        options = TransferOptions(jobs=args.jobs, verify=args.verify, include=tuple(args.include),
                                  exclude=tuple(args.exclude), dry_run=args.dry_run,
                                  with_metadata=getattr(args, "with_metadata", False),
                                  overwrite=getattr(args, "overwrite", False))
    except ValueError as exc:
        raise ConfigError(str(exc)) from None
    verb = "downloaded" if command == "download" else "uploaded"
    reporter = _reporter(args, err, "download" if command == "download" else "upload")
    with connect_from_args(args) as connection:
        if command == "download":
            summary = download(connection, args.remote, args.local, options=options, reporter=reporter)
        else:
            summary = upload(connection, args.local, args.remote, options=options, reporter=reporter)
    return _finish(summary, args, out, err, verb)


def run(command: str, argv: list[str], out: TextIO, err: TextIO) -> int:
    """Run ``command`` (``download`` or ``upload``) with ``argv``; the exit code (see the module docstring)."""
    try:
        return _run(command, argv, out, err)
    except SystemExit as exc:  # argparse: --help (0) or a usage error (2)
        return int(exc.code or 0) if isinstance(exc.code, int) else EXIT_USAGE
    except KeyboardInterrupt:
        err.write(f"xnatfs {command}: interrupted (run it again to continue)\n")
        return EXIT_INTERRUPTED
    except ConfigError as exc:
        err.write(f"xnatfs {command}: {exc}\n")
        return EXIT_USAGE
    except XNATError as exc:
        err.write(f"xnatfs {command}: {exc}\n")
        return EXIT_FAILED


def main(argv: list[str]) -> int:
    """Entry point from :mod:`xnatfs.cli`: ``argv[0]`` is ``download`` or ``upload``."""
    return run(argv[0], argv[1:], sys.stdout, sys.stderr)


__all__ = ["main", "run", "LineReporter", "BarReporter"]
