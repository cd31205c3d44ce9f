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
  are unchanged (a writable mount: ``negative_timeout=0``, so what it creates itself — an imported
  session, an uploaded file — is found by name at once). ``ro`` with ``--read-only`` (the kernel then refuses every change with EROFS),
  ``default_permissions``, ``hard_remove`` (``rm`` of an open file is not turned into a rename), no
  ``allow_other`` unless given with ``-o``. ``max_read`` is refused: libfuse 3 fails the mount with it.
- Writes (:mod:`xnatfs.vfs.writes`, through the areas of :mod:`xnatfs.vfs.areas`): ``--import-destination``, ``--allow-delete``, ``--spool-dir``.
- ``fsname=xnat:<host>`` and ``subtype=xnatfs`` tell desktops that this is a remote filesystem.

``xnatfs umount MOUNTPOINT [--lazy]`` runs ``fusermount3 -u`` (``-z`` with ``--lazy``).

Exit codes: 0 ok, 1 failure (server, credentials, mount), 2 usage or local configuration.
"""

from __future__ import annotations

import argparse
import logging
import os
import select
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import urlsplit

from xnatfs.daemon.options import (
    ConfigError,
    MountError,
    MountOptions,
    build_parser,
    check_fuse_device,
    check_mountpoint,
    check_url,
    obtain_credentials,
    options_from_args,
)
from xnatfs.daemon.process import LibfuseStderr, disable_core_dumps, setup_logging, tune_malloc
from xnatfs.daemon.readahead import raise_read_ahead_later
from xnatfs.errors import XNATError
from xnatfs.redact import redact_text, redact_url
from xnatfs.settings import CacheSettings, ReadSettings, RetryPolicy, Settings, Timeouts
from xnatfs.transport.auth import Credentials

log = logging.getLogger("xnatfs.daemon")

#: A mount is more patient with a busy server (502/503/504) than the library: an EIO in the middle of a
#: ``cp -r`` costs the user more than a few seconds. 8 retries, sleeps of at most 0.5 s (about 3.4 s
#: in all); a server that refuses connections is given up on after 3 retries (0.9 s).
MOUNT_RETRY = RetryPolicy(total=3, backoff_factor=0.2, status_retries=8, backoff_max=0.5)


def mount_read_settings(timeout: float) -> ReadSettings:
    """The mount's reader: reads wait at most the read timeout for a block; a failed read is remembered
    for 2 s, so the kernel's own retries of the same pages fail at once instead of waiting again."""
    return ReadSettings(wait_timeout=timeout, failure_memory=2.0)


def serve(opts: MountOptions, credentials: Credentials | None, on_ready=None) -> None:  # type: ignore[no-untyped-def]
    """Log in, check access, mount and run the FUSE loop until unmounted (blocks)."""
    try:
        from xnatfs.daemon.plusfuse import PlusFUSE
    except (ImportError, OSError) as exc:
        raise MountError(f"The FUSE library could not be loaded ({exc}); install FUSE 3 (Debian: apt-get install "
                         "fuse3)") from None

    import xnatfs
    from xnatfs.fuseops import XNATOperations
    from xnatfs.vfs.diskcache import DiskCache
    from xnatfs.vfs.filesystem import Filesystem
    from xnatfs.vfs.spool import default_spool_root
    from xnatfs.vfs.tree import TreeSettings
    from xnatfs.vfs.views import ViewSettings
    from xnatfs.vfs.writes import WriteSettings

    disable_core_dumps()
    tune_malloc()
    settings = Settings(timeouts=Timeouts(connect=min(10.0, opts.timeout), read=opts.timeout),
                        cache=CacheSettings(ttl=opts.metadata_ttl), read=mount_read_settings(opts.timeout),
                        retry=MOUNT_RETRY)
    log.info("Connecting to %s as %s", redact_url(opts.url), credentials.user if credentials else "anonymous")
    connection = xnatfs.connect(opts.url, credentials.user if credentials else None,
                                credentials.password if credentials else None, settings=settings,
                                load_schemas=False, verify=not opts.insecure, ca_bundle=opts.ca_bundle)
    filesystem = None
    try:
        source = connection.catalog
        projects = source.projects()
        log.info("%d project(s) visible; mounting at %s", len(projects), opts.mountpoint)
        if credentials is None:
            log.warning("Mounted as the guest user (no --user and no netrc entry for this server): only the "
                        "server's public projects are visible; pass --user to log in")
        cache = DiskCache.create(opts.cache_dir, opts.cache_size) if opts.cache_dir else None
        writes = WriteSettings(read_only=opts.read_only, allow_delete=opts.allow_delete,
                               import_destination=opts.import_destination,
                               spool_root=opts.spool_dir or default_spool_root(opts.cache_dir))
        filesystem = Filesystem(connection, TreeSettings(ttl=opts.metadata_ttl, maxsize=settings.cache.maxsize),
                                disk_cache=cache, write_settings=writes,
                                view_settings=ViewSettings(nifti=opts.nifti_view, bids=opts.bids_view,
                                                           cache_dir=opts.cache_dir))
        if not opts.read_only:
            log.info("Writable: import/ sends to the %s; deleting on the server is %s; spool in %s",
                     opts.import_destination, "allowed" if opts.allow_delete else "refused", writes.spool_root)
        ready = []
        captured = LibfuseStderr()

        def mounted() -> None:
            ready.append(True)
            raise_read_ahead_later(opts.mountpoint, settings.read.kernel_read_ahead)
            captured.release()
            if on_ready is not None:
                on_ready()

        operations = XNATOperations(filesystem, on_ready=mounted, no_open=opts.read_only)
        ttl = opts.metadata_ttl
        fuse_options: dict[str, str | bool] = {
            "default_permissions": True, "auto_cache": True, "hard_remove": True,
            "fsname": f"xnat:{urlsplit(opts.url).hostname}", "subtype": "xnatfs",
            "entry_timeout": f"{ttl:g}", "attr_timeout": f"{ttl:g}", "negative_timeout": f"{ttl:g}",
        }
        if opts.read_only:
            fuse_options["ro"] = True
        else:  # what the mount itself creates (imports, uploads, mkdir) must be found at once by name
            fuse_options["negative_timeout"] = "0"
        fuse_options.update(opts.fuse_options)
        with captured:
            try:
                PlusFUSE(operations, str(opts.mountpoint), foreground=True, nothreads=False, **fuse_options)
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

def check_private_folders(opts: MountOptions) -> None:
    """Refuse (before any request) a cache or spool folder other local users could read or plant files in:
    the cache is made 0700 now; an existing spool root is checked (a mount that never writes makes none)."""
    from xnatfs.localpaths import private_dir
    from xnatfs.vfs.spool import default_spool_root

    if opts.cache_dir:
        private_dir(opts.cache_dir, what="cache directory (--cache-dir)")
    spool = Path(opts.spool_dir) if opts.spool_dir else default_spool_root(opts.cache_dir)
    if os.path.lexists(spool):
        private_dir(spool, what="spool directory")


def mount_main(argv: list[str]) -> int:
    disable_core_dumps()  # before the password is read: no core of this process or its daemon holds it
    args = build_parser().parse_args(argv)
    try:
        opts = options_from_args(args)
        check_url(opts.url)
        check_fuse_device()
        check_mountpoint(opts.mountpoint, allow_non_empty=opts.allow_non_empty)
        check_private_folders(opts)
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
    parser.add_argument("mountpoint", help="the folder an xnatfs mount is mounted on")
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


__all__ = ["main", "mount_main", "umount_main", "serve", "unmount", "run_foreground", "run_daemon"]
