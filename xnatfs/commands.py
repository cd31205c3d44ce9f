"""``xnatfs import`` and ``xnatfs prearchive``: the import service and the prearchive from a shell.

::

    xnatfs import ZIP --project P [--subject S] [--experiment E] [--destination prearchive|archive] URL
    xnatfs prearchive list URL [--project P]
    xnatfs prearchive archive URL SESSION… [--project P] [--subject S] [--experiment E] [--overwrite MODE]
    xnatfs prearchive move URL SESSION… --to PROJECT
    xnatfs prearchive delete URL SESSION…
    xnatfs prearchive rebuild URL SESSION…
    xnatfs spool list [--spool-dir DIR]
    xnatfs spool retry [ID…] [--url URL]
    xnatfs spool clear ID… | --all

``spool`` handles the files mounts kept because they could not be sent (a failed import or upload):
each has a ticket saying where it was going and why it did not go (:mod:`xnatfs.vfs.spool`). An ID is
``mount-<pid>-<random>/<file>`` as ``list`` prints it, or the file name alone when that is unique.
Files of a mount that is still running are left to that mount.

A SESSION is a prearchive URI (``/data/prearchive/projects/P/TIMESTAMP/NAME``), ``P/TIMESTAMP/NAME``,
or a session name (unique in the prearchive, or within ``--project``).

Credentials: ``--user`` with the password from ``$XNATFS_PASSWORD`` or a prompt; else the netrc
entry (``--netrc FILE`` or ``~/.netrc``, refused unless mode 600); else anonymous. Never a password
option: it would show in ``ps`` and shell history. TLS certificates are verified; ``--ca-bundle FILE``
names a private certificate authority, ``--insecure`` turns checking off (with a warning).

Exit codes: 0 done; 1 the server or the transfer failed; 2 bad usage or configuration (including an
insecure netrc file); 130 interrupted.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Callable
from typing import TextIO

from pathlib import Path

from xnatfs.daemon.options import PASSWORD_ENV, credentials_for
from xnatfs.errors import ConfigError, NotFound, XNATError
from xnatfs.model.connect import Connection, connect
from xnatfs.model.prearchive import PrearchiveSession
from xnatfs.model.zipcheck import check_import_zip
from xnatfs.rest.paths import with_data_prefix
from xnatfs.vfs.spool import KeptFile, default_spool_root, kept_files

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_INTERRUPTED = 0, 1, 2, 130
URL_HELP = "the XNAT server, e.g. https://xnat.example.org"
OVERWRITE_HELP = "when the session exists in the archive: refuse (none, the server's default), append, or delete it first"


class ProgressLine:
    """A single updating ``\\r`` line on a terminal: ``uploading x.zip: 12.0 / 80.0 MiB (15%)``."""

    def __init__(self, label: str, stream: TextIO, enabled: bool) -> None:
        self._label = label
        self._stream = stream
        self._enabled = enabled
        self._last = 0.0
        self._shown = False

    def __call__(self, done: int, total: int | None) -> None:
        now = time.monotonic()
        if not self._enabled or (now - self._last < 0.1 and done != total):
            return
        self._last = now
        mib = 1024 * 1024
        text = f"{self._label}: {done / mib:.1f}"
        text += f" / {total / mib:.1f} MiB ({100 * done // max(total, 1)}%)" if total else " MiB"
        self._stream.write("\r" + text)
        self._stream.flush()
        self._shown = True

    def finish(self) -> None:
        if self._shown:
            self._stream.write("\n")
            self._stream.flush()


def connection_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--user", "-u", help=f"user name; the password comes from ${PASSWORD_ENV} or a prompt")
    parser.add_argument("--netrc", metavar="FILE", help="netrc file with the credentials (must be mode 600)")
    parser.add_argument("--timeout", type=float, default=None, metavar="SECONDS",
                        help="connect/read timeout of each request (default 10/30 s)")
    tls = parser.add_mutually_exclusive_group()
    tls.add_argument("--ca-bundle", metavar="FILE", help="verify the server's TLS certificate against this CA bundle")
    tls.add_argument("--insecure", action="store_true", help="do not verify the server's TLS certificate (unsafe)")


def connect_from_args(args: argparse.Namespace, url: str | None = None) -> Connection:
    """A connection with the mount's credential sources (``daemon.options.credentials_for``)."""
    url = url or args.url
    credentials = credentials_for(url, args.user, args.netrc)
    user, password = (credentials.user, credentials.password) if credentials is not None else (None, None)
    return connect(url, user, password, timeout=args.timeout, verify=not args.insecure,
                   ca_bundle=args.ca_bundle, load_schemas=False)


def _import_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="xnatfs import", description="Upload a zip (or tar) of DICOM files to "
                                     "the XNAT import service; prints the URI of the resulting session.")
    parser.add_argument("archive", metavar="ZIP", help="zip, tar or tar.gz of DICOM files")
    parser.add_argument("url", metavar="URL", help=URL_HELP)
    parser.add_argument("--project", "-p", required=True, help="project ID")
    parser.add_argument("--subject", "-s", help="subject label (default: from the DICOM headers)")
    parser.add_argument("--experiment", "-e", help="session label (default: from the DICOM headers)")
    parser.add_argument("--destination", choices=("prearchive", "archive"), default="prearchive",
                        help="where the session goes: the prearchive (default, to review first) or the archive")
    parser.add_argument("--overwrite", choices=("none", "append", "delete"), default=None, help=OVERWRITE_HELP)
    parser.add_argument("--allow-unassigned", action="store_true",
                        help="send even when the server shows no such project (XNAT then files the session "
                             "under the prearchive's Unassigned)")
    parser.add_argument("--progress", action=argparse.BooleanOptionalAction, default=None,
                        help="show an upload progress line (default: when stderr is a terminal)")
    connection_options(parser)
    return parser


def run_import(argv: list[str], out: TextIO, err: TextIO) -> int:
    args = _import_parser().parse_args(argv)
    if not os.path.isfile(args.archive):
        raise ConfigError(f"No such file: {args.archive}")
    show = err.isatty() if args.progress is None else args.progress
    progress = ProgressLine(f"uploading {os.path.basename(args.archive)}", err, show)
    with connect_from_args(args) as connection:
        try:
            result = connection.services.import_(args.archive, project=args.project, subject=args.subject,
                                                 experiment=args.experiment, destination=args.destination,
                                                 overwrite=args.overwrite, progress=progress,
                                                 allow_unassigned=args.allow_unassigned)
        finally:
            progress.finish()
    out.write(result.uri + "\n")
    return EXIT_OK


def _prearchive_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="xnatfs prearchive", description="List, archive, move, delete or "
                                     "rebuild sessions in an XNAT server's prearchive.")
    actions = parser.add_subparsers(dest="action", required=True, metavar="ACTION")
    listing = actions.add_parser("list", help="list prearchive sessions")
    listing.add_argument("url", metavar="URL", help=URL_HELP)
    listing.add_argument("--project", "-p", help="only this project")
    connection_options(listing)
    for name, help_ in (("archive", "archive sessions"), ("move", "move sessions to another project"),
                        ("delete", "delete sessions"), ("rebuild", "rebuild session documents")):
        action = actions.add_parser(name, help=help_)
        action.add_argument("url", metavar="URL", help=URL_HELP)
        action.add_argument("sessions", metavar="SESSION", nargs="+",
                            help="prearchive URI, PROJECT/TIMESTAMP/NAME, or a session name")
        action.add_argument("--project", "-p", help="where to look up session names"
                            + ("; with archive: the project to archive into" if name == "archive" else ""))
        connection_options(action)
        if name == "archive":
            action.add_argument("--subject", "-s", help="archive under this subject label")
            action.add_argument("--experiment", "-e", help="archive with this session label")
            action.add_argument("--overwrite", choices=("none", "append", "delete"), default=None, help=OVERWRITE_HELP)
        if name == "move":
            action.add_argument("--to", required=True, metavar="PROJECT", help="the destination project")
    return parser


def find_session(connection: Connection, spec: str, project: str | None) -> PrearchiveSession:
    """The prearchive session a SESSION argument names (see the module docstring)."""
    if spec.startswith("/") or spec.count("/") == 2:
        uri = with_data_prefix(spec if spec.startswith("/") else "/prearchive/projects/" + spec)
        return connection.prearchive.get(uri)
    matches = connection.prearchive.find(project, name=spec) or [
        s for s in connection.prearchive.sessions(project, include_receiving=True) if s.folder_name == spec]
    if not matches:
        raise NotFound(f"No prearchive session named {spec!r}" + (f" in {project}" if project else ""))
    if len(matches) > 1:
        names = ", ".join(s.uri for s in matches)
        raise ConfigError(f"{len(matches)} prearchive sessions are named {spec!r} ({names}); give the URI")
    return matches[0]


def _print_table(rows: list[list[str]], out: TextIO) -> None:
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    for row in rows:
        out.write("  ".join(cell.ljust(width) for cell, width in zip(row, widths)).rstrip() + "\n")


def run_prearchive(argv: list[str], out: TextIO, err: TextIO) -> int:
    args = _prearchive_parser().parse_args(argv)
    with connect_from_args(args) as connection:
        if args.action == "list":
            sessions = connection.prearchive.sessions(args.project, include_receiving=True)
            rows = [["PROJECT", "TIMESTAMP", "SESSION", "SUBJECT", "STATUS", "URI"]]
            rows += [[s.project, s.timestamp, s.name, s.subject, s.status, s.uri] for s in sessions]
            _print_table(rows, out)
            return EXIT_OK
        targets = [find_session(connection, spec, args.project) for spec in args.sessions]
        actions: dict[str, Callable[[PrearchiveSession], str]] = {
            "archive": lambda s: s.archive(project=args.project if args.project != s.project else None,
                                           subject=args.subject, experiment=args.experiment,
                                           overwrite=args.overwrite).uri,
            "move": lambda s: s.move(args.to).uri,
            "delete": lambda s: (s.delete(), f"deleted {s.uri}")[1],
            "rebuild": lambda s: f"{s.rebuild().status} {s.uri}",
        }
        for session in targets:
            out.write(actions[args.action](session) + "\n")
    return EXIT_OK


def _spool_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="xnatfs spool", description="The files mounts kept because they could "
                                     "not be sent (failed imports and uploads): list them with the reason, send "
                                     "them again, or remove them.")
    actions = parser.add_subparsers(dest="action", required=True, metavar="ACTION")
    listing = actions.add_parser("list", help="list kept files: ID, size, date, where each was going, and why "
                                              "it was not sent")
    retry = actions.add_parser("retry", help="send kept files again (all, or the IDs given); sent files are removed")
    retry.add_argument("ids", metavar="ID", nargs="*", help="a kept file's ID as 'list' prints it (default: all)")
    retry.add_argument("--url", metavar="URL", help="send to this server instead of the one in each file's note")
    connection_options(retry)
    clear = actions.add_parser("clear", help="remove kept files (the data is gone for good)")
    clear.add_argument("ids", metavar="ID", nargs="*", help="a kept file's ID as 'list' prints it")
    clear.add_argument("--all", action="store_true", help="remove every kept file (of mounts no longer running)")
    for action in (listing, retry, clear):
        action.add_argument("--spool-dir", metavar="DIR", help="the spool folder, if a mount was given "
                            "--spool-dir (default: <--cache-dir>/spool, else ~/.cache/xnatfs/spool)")
        action.add_argument("--cache-dir", metavar="DIR", help="the --cache-dir a mount was given")
    return parser


def _mount_running(kept: KeptFile) -> bool:
    pid = kept.mount_pid
    if pid <= 0 or pid == os.getpid():
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _select(files: list[KeptFile], ids: list[str]) -> list[KeptFile]:
    if not ids:
        return files
    chosen = []
    for wanted in ids:
        matches = [k for k in files if wanted in (k.id, k.path.name)]
        if not matches:
            raise ConfigError(f"No kept file {wanted!r} in the spool ('xnatfs spool list' shows the IDs)")
        if len(matches) > 1:
            raise ConfigError(f"{wanted!r} names {len(matches)} kept files; give the full ID "
                              f"({', '.join(k.id for k in matches)})")
        chosen.append(matches[0])
    return chosen


def _where(kept: KeptFile) -> str:
    ticket = kept.ticket
    if ticket.get("kind") == "import":
        return f"import into {ticket.get('project', '?')} ({ticket.get('destination', 'prearchive')})"
    if ticket.get("resource_uri"):
        return f"{ticket['resource_uri']}/files/{ticket.get('relpath', kept.path.name)}"
    return "unknown (no note)"


def _retry_one(connection: Connection, kept: KeptFile) -> str:
    """Send one kept file as its mount would have; the text to print."""
    ticket = kept.ticket
    name = ticket.get("name") or kept.path.name
    if ticket.get("kind") == "import":
        check_import_zip(kept.path, name)
        uris = connection.writer.import_zip(kept.path, ticket["project"], ticket.get("destination", "prearchive"),
                                            what=name)
        return f"imported {name}: {', '.join(uris)}"
    if ticket.get("resource_uri"):
        connection.writer.put_file(ticket["resource_uri"], ticket["relpath"], kept.path,
                                   overwrite=bool(ticket.get("overwrite")), what=name)
        return f"uploaded {name} to {_where(kept)}"
    raise ConfigError(f"{kept.id} has no note saying where it was going; copy it again by hand, or clear it")


def run_spool(argv: list[str], out: TextIO, err: TextIO) -> int:
    args = _spool_parser().parse_args(argv)
    root = Path(args.spool_dir) if args.spool_dir else default_spool_root(Path(args.cache_dir) if args.cache_dir
                                                                          else None)
    files = kept_files(root)
    if args.action == "list":
        if not files:
            out.write(f"No kept files in {root}\n")
            return EXIT_OK
        rows = [["ID", "SIZE", "KEPT", "GOING TO", "WHY"]]
        for kept in files:
            why = " ".join(str(kept.ticket.get("reason", "")).split()) or "unknown (no note)"
            if _mount_running(kept):
                why = f"(its mount, pid {kept.mount_pid}, is running) {why}"
            rows.append([kept.id, str(kept.size), time.strftime("%Y-%m-%d %H:%M", time.localtime(kept.mtime)),
                         _where(kept), why])
        _print_table(rows, out)
        return EXIT_OK
    if args.action == "clear" and not args.ids and not args.all:
        raise ConfigError("Name the kept files to remove (IDs from 'xnatfs spool list'), or pass --all")
    chosen = _select(files, args.ids)
    live = [k for k in chosen if _mount_running(k)]
    for kept in live:
        err.write(f"xnatfs spool: {kept.id} belongs to a mount that is still running (pid {kept.mount_pid}); "
                  f"left to it\n")
    chosen = [k for k in chosen if k not in live]
    if args.action == "clear":
        for kept in chosen:
            kept.discard()
            out.write(f"removed {kept.id}\n")
        return EXIT_OK
    failed = 0
    by_server: dict[str, list[KeptFile]] = {}
    for kept in chosen:
        by_server.setdefault(args.url or kept.ticket.get("server") or "", []).append(kept)
    for server, group in by_server.items():
        if not server:
            for kept in group:
                err.write(f"xnatfs spool: {kept.id}: no note names its server; pass --url\n")
            failed += len(group)
            continue
        with connect_from_args(args, server) as connection:
            for kept in group:
                try:
                    out.write(_retry_one(connection, kept) + "\n")
                except XNATError as exc:
                    failed += 1
                    err.write(f"xnatfs spool: {kept.id} not sent, kept: {exc}\n")
                else:
                    kept.discard()
    return EXIT_FAILED if failed else EXIT_OK


def main(argv: list[str]) -> int:
    """Entry point from :mod:`xnatfs.cli`: ``argv[0]`` is ``import``, ``prearchive`` or ``spool``."""
    command, rest = argv[0], argv[1:]
    runner = {"import": run_import, "prearchive": run_prearchive, "spool": run_spool}[command]
    try:
        return runner(rest, sys.stdout, sys.stderr)
    except SystemExit as exc:  # argparse: --help (0) or a usage error (2)
        return int(exc.code or 0) if isinstance(exc.code, int) else EXIT_USAGE
    except KeyboardInterrupt:
        sys.stderr.write(f"xnatfs {command}: interrupted\n")
        return EXIT_INTERRUPTED
    except ConfigError as exc:
        sys.stderr.write(f"xnatfs {command}: {exc}\n")
        return EXIT_USAGE
    except XNATError as exc:
        sys.stderr.write(f"xnatfs {command}: {exc}\n")
        return EXIT_FAILED


__all__ = ["main", "run_import", "run_prearchive", "run_spool", "find_session", "connect_from_args", "connection_options"]
