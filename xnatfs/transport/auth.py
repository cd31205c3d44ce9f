"""Credentials: who we log in as, and where that came from.

Order of precedence: explicit ``user``/``password`` > a netrc file > anonymous.

- A netrc file that group or others can read is refused with :class:`InsecureNetrcError` naming the
  file and the fix (``chmod 600``). CPython's own check only runs when ``netrc.netrc()`` is called
  without a path, and requests never checks, so we check ``st_mode`` ourselves (xnatpy-notes §1.1).
- A netrc file named explicitly (argument or ``$NETRC``) without an entry for the host is an error;
  the default ``~/.netrc`` without one means "anonymous".
- The password never appears in a ``repr``, a log line or an exception message.

Imports the standard library and :mod:`xnatfs.errors` only.
"""

from __future__ import annotations

import logging
import netrc
import os
import stat
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

from xnatfs.errors import ConfigError, InsecureNetrcError, MissingCredentialsError

log = logging.getLogger(__name__)

#: the environment variable a password may come from (with a user name given some other way)
PASSWORD_ENV = "XNATFS_PASSWORD"


@dataclass(frozen=True)
class Credentials:
    """A user name and password (or alias token and secret). ``repr`` never shows the password."""

    user: str
    password: str = field(repr=False)
    source: str = "explicit"

    def __repr__(self) -> str:
        return f"Credentials(user={self.user!r}, password='***', source={self.source!r})"

    __str__ = __repr__


def netrc_host_keys(url: str) -> list[str]:
    """The netrc machine names to try for ``url``: ``host:port`` first (xnatpy's key), then ``host``."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    keys = []
    if parts.port is not None:
        keys.append(f"{host}:{parts.port}")
    keys.append(host)
    return keys


def check_netrc_permissions(path: Path) -> None:
    """Refuse a netrc file that group or others may read or write."""
    try:
        mode = path.stat().st_mode
    except OSError as exc:
        raise ConfigError(f"Cannot read netrc file {path}: {exc.strerror}") from exc
    if stat.S_IMODE(mode) & 0o077:
        raise InsecureNetrcError(
            f"The netrc file {path} can be read by group or others (mode {stat.S_IMODE(mode):o}); "
            f"it holds passwords, so it is not used. Fix: chmod 600 {path}"
        )


def read_netrc_entry(path: Path, url: str, user: str | None = None) -> Credentials | None:
    """The entry of the netrc file ``path`` for ``url``'s host (and ``user``, if given), or None.

    The file must exist and have safe permissions; parse errors are reported without quoting the
    file's content (it holds passwords).
    """
    check_netrc_permissions(path)
    try:
        parsed = netrc.netrc(str(path))
    except netrc.NetrcParseError as exc:
        raise ConfigError(f"Cannot parse netrc file {path} (line {exc.lineno})") from None
    except OSError as exc:
        raise ConfigError(f"Cannot read netrc file {path}: {exc.strerror}") from exc
    for key in netrc_host_keys(url):
        entry = parsed.hosts.get(key)
        if entry is None:
            continue
        login, _account, password = entry
        if user is not None and login != user:
            continue
        if login and password is not None:
            return Credentials(login, password, source=f"netrc:{path}")
    return None


def default_netrc_path() -> Path:
    return Path(os.path.expanduser("~")) / ".netrc"


def resolve_credentials(
    url: str,
    user: str | None = None,
    password: str | None = None,
    *,
    netrc_file: str | os.PathLike[str] | None = None,
) -> Credentials | None:
    """Credentials for ``url`` by precedence explicit > ``XNATFS_PASSWORD`` (with a ``user``) > netrc >
    anonymous (``None``): the same for the library, the commands and the mount.

    ``netrc_file`` (or ``$NETRC``) names a file that must exist and hold an entry for the host;
    otherwise ``~/.netrc`` is consulted if it exists. A ``user`` without a password takes it from
    ``$XNATFS_PASSWORD``, else from the netrc entry for that user, or fails with
    :class:`MissingCredentialsError`.
    """
    if user is not None and password is not None:
        return Credentials(user, password, source="explicit")
    if password is not None:
        raise MissingCredentialsError("A password was given without a user name")
    env_password = os.environ.get(PASSWORD_ENV)
    if user is not None and env_password:
        return Credentials(user, env_password, source=PASSWORD_ENV)

    named = netrc_file if netrc_file is not None else os.environ.get("NETRC") or None
    if named is not None:
        path = Path(named).expanduser()
        if not path.exists():
            raise MissingCredentialsError(f"The netrc file {path} does not exist")
        found = read_netrc_entry(path, url, user)
        if found is None:
            who = f"user {user!r} on " if user else ""
            raise MissingCredentialsError(
                f"The netrc file {path} has no entry for {who}{' or '.join(netrc_host_keys(url))}; "
                f"add a line: machine {netrc_host_keys(url)[-1]} login USER password PASSWORD"
            )
        return found

    path = default_netrc_path()
    found = read_netrc_entry(path, url, user) if path.exists() else None
    if found is not None:
        log.debug("Using credentials of user %s from %s", found.user, path)
        return found
    if user is not None:
        raise MissingCredentialsError(
            f"No password for user {user!r}: set {PASSWORD_ENV}, or add the host to {path} (mode 600)"
        )
    return None


__all__ = [
    "PASSWORD_ENV", "Credentials", "resolve_credentials", "read_netrc_entry", "check_netrc_permissions",
    "netrc_host_keys", "default_netrc_path",
]
