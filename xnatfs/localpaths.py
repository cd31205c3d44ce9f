"""Local paths built from server data, and private local folders: the one checked join of xnatfs.

A server decides the names of files (``Name`` in a listing) and of zip members; a hostile or broken one
can send ``../../x``, ``/etc/x``, a NUL or a 5,000-character name. Every local path made from such a
name goes through :func:`safe_join`, which refuses it with
:class:`~xnatfs.errors.UnsafeLocalPath` *before* anything is written, instead of letting the OS create
the file somewhere else or fail half-way.

:func:`private_dir` makes (or checks) a folder only its owner can use, for the disk cache and the spool:
mode 0700 whatever the umask, owned by the current user, not a symlink, not group/other-writable;
otherwise :class:`~xnatfs.errors.InsecureCacheDir` with the fix.

Imports the standard library and :mod:`xnatfs.errors` only.
"""

from __future__ import annotations

import os
import re
import stat
from collections.abc import Iterable
from pathlib import Path

from xnatfs.errors import InsecureCacheDir, UnsafeLocalPath

#: NAME_MAX and PATH_MAX of Linux file systems (bytes)
MAX_NAME_BYTES = 255
MAX_PATH_BYTES = 4096
_DRIVE = re.compile(r"\A[A-Za-z]:")


def _bytes(text: str) -> int:
    return len(text.encode("utf-8", "surrogateescape"))


def safe_parts(name: str, *, what: str = "name", backslash: bool = False) -> list[str]:
    """The components of the relative path ``name``, or :class:`UnsafeLocalPath` saying why not.

    Refused: empty, absolute, ``..`` anywhere, NUL, a component over 255 bytes, over 4096 in all; with
    ``backslash`` (zip members, written on Windows) ``\\`` separates too and a drive letter is refused.
    ``.`` and empty components (``a//b``, a trailing ``/``) are dropped.
    """
    shown = repr(name[:200]) + ("…" if len(name) > 200 else "")
    text = name.replace("\\", "/") if backslash else name
    reason = ""
    parts = [p for p in text.split("/") if p not in ("", ".")]
    if "\0" in text:
        reason = "holds a NUL character"
    elif text.startswith("/") or (backslash and _DRIVE.match(text)):
        reason = "is an absolute path"
    elif not parts:
        reason = "is empty"
    elif ".." in parts:
        reason = "has a '..' component that would leave the target directory"
    elif any(_bytes(p) > MAX_NAME_BYTES for p in parts):
        reason = f"has a component longer than {MAX_NAME_BYTES} bytes"
    elif _bytes(text) > MAX_PATH_BYTES:
        reason = f"is longer than {MAX_PATH_BYTES} bytes"
    if reason:
        raise UnsafeLocalPath(f"Refused the server's {what} {shown}: it {reason}; nothing was extracted or written")
    return parts


def safe_join(root: str | os.PathLike[str], name: str, *, what: str = "name", backslash: bool = False) -> Path:
    """``root / name`` for a ``name`` the server chose, checked (see :func:`safe_parts`) and resolved, so
    that it is ``root`` or lies under it even through symlinks already on disk; else UnsafeLocalPath."""
    parts = safe_parts(name, what=what, backslash=backslash)
    base = Path(root).resolve()
    target = base.joinpath(*parts).resolve()
    if target != base and base not in target.parents:
        raise UnsafeLocalPath(f"Refused the server's {what} {name[:200]!r}: it would leave {base} (through a "
                              f"symbolic link); nothing was extracted or written")
    if _bytes(str(target)) > MAX_PATH_BYTES:
        raise UnsafeLocalPath(f"Refused the server's {what} {name[:200]!r}: under {base} its path would be longer "
                              f"than {MAX_PATH_BYTES} bytes; nothing was extracted or written")
    return target


def check_layout(root: Path, files: Iterable[Path], dirs: Iterable[Path] = (), *, what: str = "member") -> None:
    """Refuse a set of destinations (from :func:`safe_join`) that cannot all be made under ``root``: a file
    that is also another's folder (``x`` and ``x/y``), a name given twice, or one taken on disk by the
    other kind (a folder where a file goes, a file where a folder is needed). Checked before any write."""
    files = list(files)
    needed = {parent for path in [*files, *dirs] for parent in path.parents if parent != root and root in parent.parents}
    needed |= set(dirs)
    seen: set[Path] = set()
    for path in files:
        if path in needed or path in seen:
            raise UnsafeLocalPath(f"Refused the server's zip archive: {what} {str(path.relative_to(root))[:200]!r} is "
                                  f"given twice, or as a file and as a folder; nothing was extracted or written")
        seen.add(path)
        if path.is_dir():
            raise UnsafeLocalPath(f"Refused the server's {what} {str(path.relative_to(root))[:200]!r}: a folder of "
                                  f"that name exists in {root}; nothing was extracted or written")
    for folder in needed:
        if os.path.lexists(folder) and not folder.is_dir():
            raise UnsafeLocalPath(f"Refused the server's {what}s: {str(folder.relative_to(root))[:200]!r} must be a "
                                  f"folder but is a file in {root}; nothing was extracted or written")


def default_cache_folder(name: str, cache_dir: str | os.PathLike[str] | None = None) -> Path:
    """Where a mount keeps ``name`` (``spool``, ``views``…) by default: ``<cache_dir>/<name>`` with
    ``--cache-dir``, else ``$XDG_CACHE_HOME/xnatfs/<name>`` (``~/.cache/xnatfs/<name>``): a disk, not
    ``/tmp``, which is often a memory filesystem."""
    if cache_dir is not None:
        return Path(cache_dir) / name
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "xnatfs" / name


def private_dir(path: str | os.PathLike[str], *, what: str = "cache directory") -> Path:
    """Create ``path`` (and missing parents) as 0700, or check an existing one; the path.

    An existing folder must be a real folder (not a symlink), owned by the current user, and neither
    group- nor other-writable; else :class:`InsecureCacheDir` naming it and the fix. A folder that is
    merely readable by others is made 0700 (our own folder: we may tighten it).
    """
    folder = Path(path)
    try:
        os.makedirs(folder, mode=0o700, exist_ok=True)
        info = os.lstat(folder)
    except OSError as exc:
        raise InsecureCacheDir(f"Cannot use {folder} as the {what}: {exc.strerror}") from None
    if stat.S_ISLNK(info.st_mode) or not stat.S_ISDIR(info.st_mode):
        raise InsecureCacheDir(f"Refused {folder} as the {what}: it is a symbolic link or not a folder; pass a "
                               f"real folder of your own")
    if info.st_uid != os.geteuid():
        raise InsecureCacheDir(f"Refused {folder} as the {what}: it belongs to user id {info.st_uid}, not to you "
                               f"(id {os.geteuid()}), who could read or plant cached files; use a folder of your own")
    if info.st_mode & (stat.S_IWGRP | stat.S_IWOTH):
        raise InsecureCacheDir(f"Refused {folder} as the {what}: group or others can write to it "
                               f"(mode {stat.S_IMODE(info.st_mode):04o}); run: chmod 700 {folder}")
    if stat.S_IMODE(info.st_mode) != 0o700:
        os.chmod(folder, 0o700)
    return folder


__all__ = ["safe_join", "safe_parts", "check_layout", "private_dir", "default_cache_folder", "MAX_NAME_BYTES", "MAX_PATH_BYTES"]
