"""``xnatfs mount`` and ``xnatfs umount``: the mount's life from the command line to a clean unmount.

``xnatfs mount URL MOUNTPOINT`` checks what it can locally (URL, ``/dev/fuse``, the mount point,
credentials; a password is prompted for on a terminal, or read from ``XNATFS_PASSWORD``, never from
argv), then forks a daemon (unless ``--foreground``) and returns only when the daemon reports the
mount ready, or prints the daemon's error and exits non-zero: wrong credentials, unreachable server,
refused mount. The daemon logs in, lists the projects once (so a wrong URL or missing rights fail
here, not at the first ``ls``), and runs libfuse's multi-threaded loop until unmounted.

- SIGINT/SIGTERM: libfuse's own handlers end the loop and unmount (mfusepy leaves SIGINT at its
  default so libfuse can install them; we install none).
- Kernel caching matches the metadata TTL: ``entry_timeout``, ``attr_timeout`` and
  ``negative_timeout`` are ``--metadata-ttl``; ``auto_cache`` keeps file pages while size and mtime
  are unchanged. ``ro`` always (writes come later), ``default_permissions``, no ``allow_other``
  unless given with ``-o``. ``max_read`` is refused: libfuse 3 fails the mount with it.
- ``fsname=xnat:<host>`` and ``subtype=xnatfs`` tell desktops that this is a remote filesystem.

``xnatfs umount MOUNTPOINT [--lazy]`` runs ``fusermount3 -u`` (``-z`` with ``--lazy``).

Exit codes: 0 ok, 1 failure (server, credentials, mount), 2 usage or local configuration.
"""

from __future__ import annotations

import argparse
import getpass
import logging
import os
import re
import select
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

from xnatfs.errors import ConfigError, MissingCredentialsError, XNATError
from xnatfs.redact import redact_text, redact_url
from xnatfs.settings import MiB, CacheSettings, ReadSettings, Settings, Timeouts
from xnatfs.transport.auth import Credentials, resolve_credentials

log = logging.getLogger("xnatfs.daemon")

PASSWORD_ENV = "XNATFS_PASSWORD"
FUSE_DEVICE = "/dev/fuse"
_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([kmgt]?)i?b?\s*$", re.IGNORECASE)
_REFUSED_OPTIONS = {"max_read": "libfuse 3 refuses a mount with max_read"}


@dataclass
class MountOptions:
    url: str
    mountpoint: Path
    user: str | None = None
    netrc: str | None = None
    foreground: bool = False
    metadata_ttl: float = 60.0
    cache_dir: Path | None = None
    cache_size: int = 4096 * MiB
    timeout: float = 30.0
    log_file: Path | None = None
    verbose: bool = False
    fuse_options: dict[str, str | bool] = field(default_factory=dict)


class MountError(XNATError):
    """The mount could not be set up (the message says why and what to do)."""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="xnatfs mount", description="Mount an XNAT server as a read-only directory.")
    parser.add_argument("url", help="the XNAT server, e.g. https://xnat.example.org")
    parser.add_argument("mountpoint", help="an existing empty directory")
    parser.add_argument("--user", help="log in as USER (password from netrc, XNATFS_PASSWORD or a prompt)")
    parser.add_argument("--netrc", metavar="FILE", help="read credentials from FILE (must be mode 600)")
    parser.add_argument("--foreground", "-f", action="store_true", help="stay in the foreground (Ctrl-C unmounts)")
    parser.add_argument("--read-only", action="store_true", help="mount read-only (the only mode for now)")
    parser.add_argument("--metadata-ttl", type=float, default=60.0, metavar="S",
                        help="seconds listings and attributes are cached (default 60)")
    parser.add_argument("--cache-dir", metavar="DIR", help="keep whole files read in full in DIR")
    parser.add_argument("--cache-size", default="4G", metavar="SIZE", help="cap of --cache-dir (default 4G)")
    parser.add_argument("--timeout", type=float, default=30.0, metavar="S",
                        help="seconds any server call may take (default 30)")
    parser.add_argument("--log-file", metavar="FILE", help="write the daemon's log to FILE")
    parser.add_argument("--verbose", "-v", action="store_true", help="log every request (debug level)")
    parser.add_argument("-o", dest="options", action="append", default=[], metavar="OPTIONS",
                        help="FUSE mount options, comma separated (e.g. allow_other)")
    return parser


def parse_size(text: str) -> int:
    match = _SIZE.match(text)
    if match is None:
        raise ConfigError(f"Not a size: {text!r} (use e.g. 500M or 4G)")
    number, unit = match.groups()
    return int(float(number) * 1024 ** " kmgt".index(unit.lower() or " "))


def parse_fuse_options(values: list[str]) -> dict[str, str | bool]:
    options: dict[str, str | bool] = {}
    for value in values:
        for item in value.split(","):
            item = item.strip()
            if not item:
                continue
            key, sep, val = item.partition("=")
            if key in _REFUSED_OPTIONS:
                raise ConfigError(f"-o {key} is not supported: {_REFUSED_OPTIONS[key]}")
            options[key] = val if sep else True
    return options


def options_from_args(args: argparse.Namespace) -> MountOptions:
    if args.metadata_ttl < 0 or args.timeout <= 0:
        raise ConfigError("--metadata-ttl must be >= 0 and --timeout > 0")
    return MountOptions(
        url=args.url, mountpoint=Path(args.mountpoint).expanduser().absolute(), user=args.user, netrc=args.netrc,
        foreground=args.foreground, metadata_ttl=args.metadata_ttl,
        cache_dir=Path(args.cache_dir).expanduser().absolute() if args.cache_dir else None,
        cache_size=parse_size(args.cache_size), timeout=args.timeout,
        log_file=Path(args.log_file).expanduser().absolute() if args.log_file else None, verbose=args.verbose,
        fuse_options=parse_fuse_options(args.options))


# -- local checks (before anything talks to the server) -----------------------------------------------

def check_url(url: str) -> None:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ConfigError(f"Not an http(s) URL: {redact_url(url)!r} (e.g. https://xnat.example.org)")
    if parts.username or parts.password:
        raise ConfigError("Put the user in --user and the password in a netrc file or XNATFS_PASSWORD, not in the URL")


def check_fuse_device() -> None:
    if not os.path.exists(FUSE_DEVICE):
        raise MountError(f"{FUSE_DEVICE} does not exist: install FUSE 3 (Debian: apt-get install fuse3) and load "
                         "the fuse module (modprobe fuse); in a container, pass --device /dev/fuse")
    if not os.access(FUSE_DEVICE, os.R_OK | os.W_OK):
        raise MountError(f"No permission to open {FUSE_DEVICE}: add yourself to its group or ask an administrator")
    if shutil.which("fusermount3") is None and os.geteuid() != 0:
        raise MountError("fusermount3 is missing: install FUSE 3 (Debian: apt-get install fuse3)")


def check_mountpoint(path: Path) -> None:
    try:
        path.stat()
    except FileNotFoundError:
        raise MountError(f"The mount point {path} does not exist: mkdir -p {path}") from None
    except OSError as exc:
        raise MountError(f"The mount point {path} is not usable ({exc.strerror}); if it is a dead mount, "
                         f"run: fusermount3 -u {path}") from None
    if not path.is_dir():
        raise MountError(f"The mount point {path} is not a directory")
    if os.path.ismount(path):
        raise MountError(f"{path} is busy: something is mounted there already (xnatfs umount {path})")
    if os.geteuid() != 0 and not os.access(path, os.W_OK):
        raise MountError(f"No write permission on the mount point {path} (FUSE needs it)")


def obtain_credentials(opts: MountOptions) -> Credentials | None:
    """Credentials by precedence: --user with XNATFS_PASSWORD > netrc > a prompt > anonymous."""
    env_password = os.environ.get(PASSWORD_ENV)
    if opts.user and env_password:
        return Credentials(opts.user, env_password, source=PASSWORD_ENV)
    try:
        return resolve_credentials(opts.url, opts.user, None, netrc_file=opts.netrc)
    except MissingCredentialsError:
        if opts.user and opts.netrc is None and sys.stdin.isatty():
            host = urlsplit(opts.url).hostname
            return Credentials(opts.user, getpass.getpass(f"Password for {opts.user} at {host}: "), source="prompt")
        if opts.user:
            raise MissingCredentialsError(
                f"No password for {opts.user}: set {PASSWORD_ENV}, add the host to a netrc file (mode 600), "
                "or run from a terminal to be asked") from None
        raise


# -- the daemon ---------------------------------------------------------------------------------------

class LibfuseStderr:
    """libfuse reports on file descriptor 2. Until the mount is ready its output is kept in a temporary
    file: a failure quotes it in the error; on success it is passed on, without the one line libfuse
    3.14 prints on every multi-threaded start ("Ignoring invalid max threads value"), which is harmless."""

    HARMLESS = ("Ignoring invalid max threads value",)

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._saved = -1
        self._file = tempfile.TemporaryFile()

    def __enter__(self) -> LibfuseStderr:
        sys.stderr.flush()
        self._saved = os.dup(2)
        os.dup2(self._file.fileno(), 2)
        return self

    def text(self) -> str:
        self._file.seek(0)
        return self._file.read().decode("utf-8", "replace")

    def release(self, *, replay: bool = True) -> None:
        """Restore descriptor 2 and (with ``replay``) pass on what was printed (idempotent, thread-safe)."""
        with self._lock:
            if self._saved < 0:
                return
            sys.stderr.flush()
            os.dup2(self._saved, 2)
            os.close(self._saved)
            self._saved = -1
            kept = [line for line in self.text().splitlines(keepends=True)
                    if not line.startswith(self.HARMLESS)]
            if kept and replay:
                os.write(2, "".join(kept).encode("utf-8", "replace"))

    def __exit__(self, *exc: object) -> None:
        self.release()
        self._file.close()


def setup_logging(opts: MountOptions) -> None:
    handler: logging.Handler
    if opts.log_file is not None:
        opts.log_file.parent.mkdir(parents=True, exist_ok=True)
        handler = logging.FileHandler(opts.log_file)
    else:
        handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(logging.DEBUG if opts.verbose else logging.INFO)
    # urllib3 warns on every retried request (a normal event, counted by the server); fuse is mfusepy
    for noisy in ("urllib3", "fuse", "mfusepy"):
        logging.getLogger(noisy).setLevel(logging.DEBUG if opts.verbose else logging.ERROR)


#: glibc mallopt() parameters (malloc.h)
_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3


def tune_malloc() -> None:
    """Serve the reader's 1 MiB chunks and the kernel's 128 KiB reads from the heap (glibc only).

    By default glibc gives every allocation of 128 KiB or more its own ``mmap``, so each chunk costs
    page faults and an ``munmap`` that interrupts the other threads (TLB shootdown). Raising the
    threshold to 4 MiB measured ~7% more throughput on loopback; the trim threshold keeps freed
    memory for reuse up to 64 MiB. Memory stays bounded by the reader's budget either way.
    """
    try:
        import ctypes

        libc = ctypes.CDLL(None)
        libc.mallopt(_M_MMAP_THRESHOLD, 4 * MiB)
        libc.mallopt(_M_TRIM_THRESHOLD, 64 * MiB)
    except (OSError, AttributeError):  # not glibc: keep the defaults
        log.debug("mallopt not available; malloc left at its defaults")


def serve(opts: MountOptions, credentials: Credentials | None, on_ready=None) -> None:  # type: ignore[no-untyped-def]
    """Log in, check access, mount and run the FUSE loop until unmounted (blocks)."""
    try:
        import mfusepy
    except (ImportError, OSError) as exc:
        raise MountError(f"The FUSE library could not be loaded ({exc}); install FUSE 3 (Debian: apt-get install "
                         "fuse3)") from None

    import xnatfs
    from xnatfs.fuseops import XNATOperations
    from xnatfs.vfs.diskcache import DiskCache
    from xnatfs.vfs.filesystem import Filesystem
    from xnatfs.vfs.reader import ReaderSettings
    from xnatfs.vfs.source import XNATSource
    from xnatfs.vfs.tree import TreeSettings

    tune_malloc()
    settings = Settings(timeouts=Timeouts(connect=min(10.0, opts.timeout), read=opts.timeout),
                        cache=CacheSettings(ttl=opts.metadata_ttl), read=ReadSettings())
    log.info("Connecting to %s as %s", redact_url(opts.url), credentials.user if credentials else "anonymous")
    connection = xnatfs.connect(opts.url, credentials.user if credentials else None,
                                credentials.password if credentials else None, settings=settings,
                                load_schemas=False)
    filesystem = None
    try:
        source = XNATSource(connection.session, settings.cache)
        projects = source.projects()
        log.info("%d project(s) visible; mounting at %s", len(projects), opts.mountpoint)
        cache = DiskCache(opts.cache_dir, opts.cache_size) if opts.cache_dir else None
        filesystem = Filesystem(source, TreeSettings(ttl=opts.metadata_ttl, maxsize=settings.cache.maxsize),
                                ReaderSettings.from_read_settings(settings.read, wait_timeout=opts.timeout),
                                disk_cache=cache)
        ready = []
        captured = LibfuseStderr()

        def mounted() -> None:
            ready.append(True)
            captured.release()
            if on_ready is not None:
                on_ready()

        operations = XNATOperations(filesystem, on_ready=mounted)
        ttl = opts.metadata_ttl
        fuse_options: dict[str, str | bool] = {
            "ro": True, "default_permissions": True, "auto_cache": True,
            "fsname": f"xnat:{urlsplit(opts.url).hostname}", "subtype": "xnatfs",
            "entry_timeout": f"{ttl:g}", "attr_timeout": f"{ttl:g}", "negative_timeout": f"{ttl:g}",
        }
        fuse_options.update(opts.fuse_options)
        with captured:
            try:
                mfusepy.FUSE(operations, str(opts.mountpoint), foreground=True, nothreads=False, **fuse_options)
            except RuntimeError as exc:
                # libfuse's loop reports the signal that ended it as an error (fuse_main returns 8 after
                # SIGINT/SIGTERM); after a successful mount that is the normal way to stop.
                if not ready:
                    lines = [line for line in captured.text().splitlines() if not line.startswith(captured.HARMLESS)]
                    detail = " ".join(" ".join(lines).split())[:300] or f"libfuse error {exc}"
                    captured.release(replay=False)
                    raise MountError(f"FUSE could not mount {opts.mountpoint}: {detail}") from None
                log.info("Stopped by a signal")
    finally:
        if filesystem is not None:
            filesystem.close()
        connection.close()


def run_foreground(opts: MountOptions, credentials: Credentials | None) -> int:
    setup_logging(opts)
    try:
        serve(opts, credentials, on_ready=lambda: print(f"Mounted {redact_url(opts.url)} at {opts.mountpoint}; "
                                                        "Ctrl-C unmounts", file=sys.stderr, flush=True))
    except XNATError as exc:
        print(f"xnatfs mount: {redact_text(str(exc))}", file=sys.stderr)
        return 1
    return 0


def run_daemon(opts: MountOptions, credentials: Credentials | None) -> int:
    """Fork; the parent returns when the child reports READY or an error (bounded wait)."""
    read_fd, write_fd = os.pipe()
    pid = os.fork()
    if pid > 0:
        os.close(write_fd)
        return _wait_for_child(pid, read_fd, deadline=time.monotonic() + 3 * opts.timeout + 30, opts=opts)
    os.close(read_fd)
    os._exit(_daemon_child(opts, credentials, write_fd))


def _wait_for_child(pid: int, read_fd: int, deadline: float, opts: MountOptions) -> int:
    message = b""
    with os.fdopen(read_fd, "rb", buffering=0) as pipe:
        while time.monotonic() < deadline:
            ready, _, _ = select.select([pipe], [], [], max(0.0, min(1.0, deadline - time.monotonic())))
            if not ready:
                continue
            chunk = pipe.read(4096)
            if not chunk:
                break
            message += chunk
            if message.endswith(b"\n"):
                break
    text = message.decode("utf-8", "replace").strip()
    if text == "READY":
        return 0
    if not text:
        try:
            os.kill(pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
        text = f"the mount did not become ready within {3 * opts.timeout + 30:.0f} s"
    print(f"xnatfs mount: {text}", file=sys.stderr)
    return 1


def _daemon_child(opts: MountOptions, credentials: Credentials | None, write_fd: int) -> int:
    os.setsid()
    devnull = os.open(os.devnull, os.O_RDWR)
    for fd in (0, 1, 2):
        os.dup2(devnull, fd)
    setup_logging(opts)
    reported = False

    def report(text: str) -> None:
        nonlocal reported
        if reported:
            return
        reported = True
        try:
            os.write(write_fd, text.encode("utf-8", "replace") + b"\n")
            os.close(write_fd)
        except OSError:
            pass

    try:
        serve(opts, credentials, on_ready=lambda: report("READY"))
    except XNATError as exc:
        report(redact_text(str(exc)))
        return 1
    report("the daemon stopped before the mount was ready")
    return 0


# -- commands -----------------------------------------------------------------------------------------

def mount_main(argv: list[str]) -> int:
    args = build_parser().parse_args(argv)
    try:
        opts = options_from_args(args)
        check_url(opts.url)
        check_fuse_device()
        check_mountpoint(opts.mountpoint)
        credentials = obtain_credentials(opts)
    except ConfigError as exc:
        print(f"xnatfs mount: {exc}", file=sys.stderr)
        return 2
    except XNATError as exc:
        print(f"xnatfs mount: {exc}", file=sys.stderr)
        return 1
    if opts.foreground:
        return run_foreground(opts, credentials)
    return run_daemon(opts, credentials)


def unmount(mountpoint: Path, *, lazy: bool = False, timeout: float = 30.0) -> subprocess.CompletedProcess[str]:
    """``fusermount3 -u [-z] MOUNTPOINT`` (``fusermount`` or ``umount`` where that is what exists)."""
    tool = shutil.which("fusermount3") or shutil.which("fusermount")
    if tool is not None:
        command = [tool, "-u", *(["-z"] if lazy else []), str(mountpoint)]
    else:
        command = ["umount", *(["-l"] if lazy else []), str(mountpoint)]
    return subprocess.run(command, capture_output=True, text=True, timeout=timeout, check=False)


def umount_main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="xnatfs umount", description="Unmount an xnatfs mount.")
    parser.add_argument("mountpoint")
    parser.add_argument("--lazy", "-z", action="store_true", help="detach now, finish when no longer busy")
    args = parser.parse_args(argv)
    path = Path(args.mountpoint).expanduser().absolute()
    if not os.path.ismount(path):
        print(f"xnatfs umount: {path} is not mounted", file=sys.stderr)
        return 1
    result = unmount(path, lazy=args.lazy)
    if result.returncode != 0:
        detail = (result.stderr or result.stdout).strip()
        hint = " (close the programs using it, or use --lazy)" if "busy" in detail.lower() else ""
        print(f"xnatfs umount: {detail or 'failed'}{hint}", file=sys.stderr)
        return 1
    return 0


def main(argv: list[str] | None = None) -> int:
    """``xnatfs mount …`` / ``xnatfs umount …`` (the CLI passes the command name first)."""
    args = list(sys.argv[1:] if argv is None else argv)
    if args and args[0] in ("umount", "unmount"):
        return umount_main(args[1:])
    if args and args[0] == "mount":
        args = args[1:]
    return mount_main(args)


__all__ = ["main", "mount_main", "umount_main", "serve", "unmount", "MountOptions", "parse_size",
           "parse_fuse_options", "check_mountpoint", "check_url", "check_fuse_device", "obtain_credentials"]
