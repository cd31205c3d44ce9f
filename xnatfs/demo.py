"""``xnatfs demo [MOUNTPOINT]``: an XNAT emulator with sample data, mounted, in one command.

Starts the emulator (:mod:`xnatfs.emulator`, sample data, user ``admin``/``admin``) on a free
loopback port in a temporary directory, mounts it (with the NIfTI and BIDS views) at MOUNTPOINT (default ``./xnat-demo``, created if
missing) in the foreground, and prints what to try. Ctrl-C (or SIGTERM) unmounts, stops the emulator
and removes its data and a mount point it created.

This module belongs to the command-line layer: it is the only place besides the CLI that starts the
emulator and the mount together.
"""

from __future__ import annotations

import argparse
import logging
import sys
import tempfile
from pathlib import Path

from xnatfs.daemon import (
    MountOptions,
    check_fuse_device,
    check_mountpoint,
    serve,
    setup_logging,
)
from xnatfs.errors import XNATError
from xnatfs.transport.auth import Credentials

DEFAULT_MOUNTPOINT = "xnat-demo"
USER, PASSWORD = "admin", "admin"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="xnatfs demo",
                                     description="Mount an XNAT emulator with sample data; Ctrl-C unmounts and stops.")
    parser.add_argument("mountpoint", nargs="?", default=DEFAULT_MOUNTPOINT,
                        help=f"where to mount (default ./{DEFAULT_MOUNTPOINT}, created if missing)")
    parser.add_argument("--port", type=int, default=0, help="emulator port on 127.0.0.1 (default: a free one)")
    parser.add_argument("--log-file", metavar="FILE", help="write the mount's log to FILE")
    parser.add_argument("--verbose", "-v", action="store_true", help="log every request")
    return parser


def instructions(url: str, mountpoint: Path, cwd: Path) -> str:
    """What to try, with paths relative to ``cwd`` where possible (libfuse changes the cwd later)."""
    shown = mountpoint.relative_to(cwd) if mountpoint.is_relative_to(cwd) else mountpoint
    session = f"{shown}/projects/DEMO/subjects/DEMO_001/experiments/DEMO_001_MR_1"
    python = sys.executable or "python3"
    scratch = Path(tempfile.gettempdir())  # where the hints write their output: $TMPDIR, not a fixed path
    example_zip = scratch / "xnatfs-demo-t1"
    return "\n".join([
        f"XNAT emulator with sample data at {url} (user {USER}, password {PASSWORD})",
        f"Mounted at {shown} - try:",
        f"  ls {shown}/projects",
        f"  find {shown}/projects/DEMO | head -40",
        f"  cat {session}/xnat.json",
        f"  getfattr -d {session}",
        f"  {python} -c \"import pydicom; print(pydicom.dcmread('{session}/scans/2/resources/DICOM/2.MR.0001.dcm'))\"",
        "every scan as NIfTI (converted by dcm2niix the first time its nifti/ folder is listed):",
        f"  ls -l {session}/scans/2/nifti && cat {session}/scans/2/nifti/2_T1w_MPRAGE.json",
        "every project as a BIDS dataset (point pybids, fMRIPrep or the bids-validator at it):",
        f"  find {shown}/bids/DEMO && cat {shown}/bids/DEMO/participants.tsv",
        "upload a zip of DICOM through the import directory, then find it in the prearchive:",
        f"  {python} -c \"import shutil; shutil.make_archive('{example_zip}', 'zip', '{session}/scans/2/resources/DICOM')\"",
        f"  cp {example_zip}.zip {shown}/import/STUDY2/ && cat {shown}/import/STUDY2/{example_zip.name}.zip.result",
        f"  ls -R {shown}/prearchive/STUDY2",
        "Press Ctrl-C to unmount and stop.",
    ])


def main(argv: list[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if args and args[0] == "demo":
        args = args[1:]
    options = build_parser().parse_args(args)
    mountpoint = Path(options.mountpoint).expanduser().absolute()
    created = False
    try:
        check_fuse_device()
        if not mountpoint.exists():
            mountpoint.mkdir(parents=True)
            created = True
        check_mountpoint(mountpoint)
    except (XNATError, OSError) as exc:
        print(f"xnatfs demo: {exc}", file=sys.stderr)
        return 1

    from xnatfs.emulator.server import EmulatorServer  # the CLI layer may start the emulator

    data = tempfile.TemporaryDirectory(prefix="xnatfs-demo-")
    server = EmulatorServer(data.name, port=options.port, sample=True, users={USER: PASSWORD})
    try:
        server.start()
        # the demo's own spool, gone with its emulator: no warnings about other mounts' kept files
        mount = MountOptions(url=server.url, mountpoint=mountpoint, foreground=True,
                             log_file=Path(options.log_file).absolute() if options.log_file else None,
                             verbose=options.verbose, spool_dir=Path(data.name) / "spool")
        setup_logging(mount)
        if mount.log_file is None and not options.verbose:
            logging.getLogger().setLevel(logging.WARNING)
        text = instructions(server.url, mountpoint, Path.cwd())
        serve(mount, Credentials(USER, PASSWORD, source="demo"), on_ready=lambda: print(text, flush=True))
    except XNATError as exc:
        print(f"xnatfs demo: {exc}", file=sys.stderr)
        return 1
    finally:
        server.stop()
        data.cleanup()
        if created:
            try:
                mountpoint.rmdir()
            except OSError:
                pass
    print("Unmounted and stopped.", flush=True)
    return 0


__all__ = ["main", "instructions"]
