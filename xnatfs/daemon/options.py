"""``xnatfs mount`` options and the checks made before anything talks to the server.

Parsing (``-o`` FUSE options, sizes), the URL, ``/dev/fuse``, the mount point (exists, is a directory,
is not mounted already, is writable), and the credentials: ``--user`` with ``XNATFS_PASSWORD`` >
netrc (refused if group or others can read it) > a prompt on a terminal > anonymous. A password is
never read from the command line. TLS certificates are verified; ``--ca-bundle FILE`` names a private
certificate authority, ``--insecure`` turns checking off (the daemon logs a warning); not both.
"""

from __future__ import annotations

import argparse
import getpass
import os
import re
import shutil
import sys
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

from xnatfs.errors import ConfigError, MissingCredentialsError, MountError
from xnatfs.redact import redact_url
from xnatfs.settings import MiB
from xnatfs.transport.auth import PASSWORD_ENV, Credentials, resolve_credentials

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
    ca_bundle: Path | None = None
    insecure: bool = False
    read_only: bool = False
    allow_delete: bool = False
    import_destination: str = "prearchive"
    spool_dir: Path | None = None
    allow_non_empty: bool = False
    #: the derived views: ``scans/<ID>/nifti/`` and ``bids/<project>/`` (``--no-views``, ``--no-nifti``, ``--no-bids``)
    nifti_view: bool = True
    bids_view: bool = True
    fuse_options: dict[str, str | bool] = field(default_factory=dict)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="xnatfs mount", description="Mount an XNAT server as a directory.")
    parser.add_argument("url", help="the XNAT server, e.g. https://xnat.example.org")
    parser.add_argument("mountpoint", help="an existing empty directory")
    parser.add_argument("--user", "-u", help="log in as USER (password from netrc, XNATFS_PASSWORD or a prompt)")
    parser.add_argument("--netrc", metavar="FILE", help="read credentials from FILE (must be mode 600)")
    parser.add_argument("--foreground", "-f", action="store_true", help="stay in the foreground (Ctrl-C unmounts)")
    parser.add_argument("--allow-non-empty", action="store_true",
                        help="mount over a folder that holds files (they are hidden, not touched, until unmounted)")
    parser.add_argument("--read-only", action="store_true",
                        help="refuse every change (no imports, no uploads into resources); files are then opened "
                        "by the kernel alone, which makes tools that open many files (dcm2niix) much faster")
    parser.add_argument("--import-destination", choices=("prearchive", "archive"), default="prearchive",
                        help="where zips copied into import/<project>/ go (default prearchive)")
    parser.add_argument("--allow-delete", action="store_true",
                        help="let rm and rmdir delete files and empty resources on the server")
    parser.add_argument("--spool-dir", metavar="DIR",
                        help="where written files wait until sent (default <cache-dir>/spool or "
                             "~/.cache/xnatfs/spool)")
    views = parser.add_argument_group("derived views")
    views.add_argument("--no-views", action="store_true",
                       help="show neither scans/<ID>/nifti/ nor bids/ (no conversion ever runs)")
    views.add_argument("--no-nifti", action="store_true", help="do not show a scan's DICOM as NIfTI (nifti/)")
    views.add_argument("--no-bids", action="store_true", help="do not show projects as BIDS datasets (bids/)")
    parser.add_argument("--metadata-ttl", type=float, default=60.0, metavar="S",
                        help="seconds listings and attributes are cached (default 60)")
    parser.add_argument("--cache-dir", metavar="DIR", help="keep whole files read in full in DIR")
    parser.add_argument("--cache-size", default="4G", metavar="SIZE", help="cap of --cache-dir (default 4G)")
    parser.add_argument("--timeout", type=float, default=30.0, metavar="S",
                        help="seconds any server call may take (default 30)")
    parser.add_argument("--log-file", metavar="FILE", help="write the daemon's log to FILE")
    parser.add_argument("--verbose", "-v", action="store_true", help="log every request (debug level)")
    tls = parser.add_mutually_exclusive_group()
    tls.add_argument("--ca-bundle", metavar="FILE",
                     help="verify the server's TLS certificate against this CA bundle (a private CA)")
    tls.add_argument("--insecure", action="store_true",
                     help="do not verify the server's TLS certificate (unsafe: logged as a warning)")
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
    ca_bundle = Path(args.ca_bundle).expanduser().absolute() if args.ca_bundle else None
    if ca_bundle is not None and not ca_bundle.exists():
        raise ConfigError(f"The CA bundle {ca_bundle} does not exist")
    return MountOptions(
        url=args.url, mountpoint=Path(args.mountpoint).expanduser().absolute(), user=args.user, netrc=args.netrc,
        foreground=args.foreground, metadata_ttl=args.metadata_ttl,
        cache_dir=Path(args.cache_dir).expanduser().absolute() if args.cache_dir else None,
        cache_size=parse_size(args.cache_size), timeout=args.timeout,
        log_file=Path(args.log_file).expanduser().absolute() if args.log_file else None, verbose=args.verbose,
        ca_bundle=ca_bundle, insecure=args.insecure,
        read_only=args.read_only, allow_delete=args.allow_delete, import_destination=args.import_destination,
        spool_dir=Path(args.spool_dir).expanduser().absolute() if args.spool_dir else None,
        allow_non_empty=args.allow_non_empty, fuse_options=parse_fuse_options(args.options),
        nifti_view=not (args.no_views or args.no_nifti), bids_view=not (args.no_views or args.no_bids))


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


def check_mountpoint(path: Path, *, allow_non_empty: bool = False) -> None:
    """A usable, unmounted folder; an empty one unless ``allow_non_empty``: a mount hides what the folder
    holds, and a user who finds their files gone from it would not think of an unmount."""
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
    if not allow_non_empty:
        with os.scandir(path) as entries:
            first = next(entries, None)
        if first is not None:
            raise MountError(f"The mount point {path} is not empty (it holds {first.name!r}…): the mount would hide "
                             f"its files until unmounted. Use an empty folder, or pass --allow-non-empty")


def obtain_credentials(opts: MountOptions) -> Credentials | None:
    """The mount's credentials: :func:`credentials_for` its URL, ``--user`` and ``--netrc``."""
    return credentials_for(opts.url, opts.user, opts.netrc)


def credentials_for(url: str, user: str | None, netrc: str | None) -> Credentials | None:
    """Credentials for a command line (``mount``, ``import``, ``prearchive``), the same everywhere:
    ``--user`` with ``XNATFS_PASSWORD`` > netrc > a prompt on a terminal > anonymous. A password in
    ``XNATFS_PASSWORD`` with no user name to go with it is an error in words, not a silent guest."""
    try:
        found = resolve_credentials(url, user, None, netrc_file=netrc)
    except MissingCredentialsError:
        if user and netrc is None and sys.stdin.isatty():
            host = urlsplit(url).hostname
            return Credentials(user, getpass.getpass(f"Password for {user} at {host}: "), source="prompt")
        if user:
            raise MissingCredentialsError(
                f"No password for {user}: set {PASSWORD_ENV}, add the host to a netrc file (mode 600), "
                "or run from a terminal to be asked") from None
        raise
    if found is None and os.environ.get(PASSWORD_ENV):
        raise MissingCredentialsError(f"{PASSWORD_ENV} is set but no user name goes with it: pass --user NAME (-u)")
    return found


__all__ = ["MountOptions", "MountError", "build_parser", "parse_size", "parse_fuse_options", "options_from_args",
           "check_url", "check_fuse_device", "check_mountpoint", "obtain_credentials", "credentials_for", "PASSWORD_ENV",
           "FUSE_DEVICE", "ConfigError"]
