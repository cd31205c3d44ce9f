"""READDIRPLUS for mfusepy: a listing hands the kernel every entry's attributes with its name.

The kernel asks libfuse for ``READDIRPLUS`` (entries *and* attributes) when it lists a directory it
is about to ``stat`` (``ls -l``, file managers, ``find -ls``); libfuse's high-level API passes
``FUSE_READDIR_PLUS`` to ``readdir``, and a filler call with ``FUSE_FILL_DIR_PLUS`` and a full
``struct stat`` makes it register each entry with the kernel, for ``entry_timeout`` and
``attr_timeout``, as a ``LOOKUP`` would (``fill_dir_plus`` → ``do_lookup``). mfusepy 3 always fills
with flags 0 and only the mode, so each name then costs the kernel a ``LOOKUP`` into Python: 5,000
for ``ls -l`` of a 5,000-file series. :class:`PlusFUSE` fills the whole ``stat`` when the kernel
asked for the plus form and the operations' ``readdir`` gave attribute dicts; anything else goes
to mfusepy as before.

Every callback also runs under :func:`~xnatfs.callers.abandon_when` with a check of the
process that made the call: once the daemon has read a request, the kernel keeps its caller waiting
for the answer even after SIGKILL (``request_wait_answer``), so a request to the server on behalf of
a killed process (a stuck ``ls`` the user killed) is cut at once instead of at its deadline.

Each libfuse worker thread keeps its Python thread state between callbacks
(:func:`~xnatfs.threadstates.keep_thread_state`): making one per call was a third of a cached
file's open and close.

(The kernel could also cache whole listings (``cache_readdir``/``keep_cache`` on ``opendir``), but
libfuse's high-level API (3.14) does not pass those flags on, so every ``ls`` lists again.)
"""

from __future__ import annotations

import functools
import logging
import os
import signal
from typing import Any

import mfusepy

from xnatfs.cache.derived import DerivedCache
from xnatfs.callers import abandon_when
from xnatfs.fuseops import caller_pid
from xnatfs.threadstates import keep_thread_state

log = logging.getLogger(__name__)

#: ``enum fuse_readdir_flags`` / ``enum fuse_fill_dir_flags`` (fuse.h, libfuse 3)
FUSE_READDIR_PLUS = 1
FUSE_FILL_DIR_PLUS = 2
#: ``FUSE_CAP_READDIRPLUS_AUTO`` (fuse_common.h): the kernel's adaptive mode
FUSE_CAP_READDIRPLUS_AUTO = 1 << 14
#: listings whose filler form is kept (see PlusFUSE._prepared)
PREPARED_KEPT = 8


#: callbacks that never wait on the server: no check of their caller
UNCHECKED = frozenset({"releasedir", "statfs", "init", "init_fuse_3", "destroy"})


def caller_gone(pid: int) -> bool:
    """Whether the process (thread) ``pid`` is gone, a zombie, or has SIGKILL pending."""
    try:
        with open(f"/proc/{pid}/status", encoding="ascii", errors="replace") as status:
            lines = status.read().splitlines()
    except OSError:
        return True
    kill = 1 << (signal.SIGKILL - 1)
    for line in lines:
        key, _, value = line.partition(":")
        if key == "State" and value.split()[:1] in (["Z"], ["X"]):
            return True
        if key in ("SigPnd", "ShdPnd") and int(value.strip() or "0", 16) & kill:
            return True
    return False


class PlusFUSE(mfusepy.FUSE):
    """mfusepy's FUSE with ``readdir`` answering the plus form (see the module docstring).

    The kernel's adaptive mode (``READDIRPLUS_AUTO``, libfuse's default) asks for the plus form only
    for the first chunk of a listing, and again only once a name of the folder was looked up: a
    5,000-name folder read in 4 KiB chunks would have its first few dozen entries registered and
    cost a lookup for every other one. Attributes here cost nothing to produce, so the adaptive mode
    is turned off and every chunk comes in the plus form.
    """

    def __init__(self, operations: Any, mountpoint: str, **kwargs: Any) -> None:
        #: listings in the filler's form, with attributes (plus) and without
        self._prepared_lists = {plus: DerivedCache[list[Any], list[tuple[bytes, Any, int]]](PREPARED_KEPT)
                                for plus in (True, False)}
        super().__init__(operations, mountpoint, **kwargs)

    def init_fuse_3(self, conn: Any, config: Any) -> None:
        if conn:
            conn.contents.want &= ~FUSE_CAP_READDIRPLUS_AUTO
        super().init_fuse_3(conn, config)

    def _wrapper(self, func: Any, *args: Any, **kwargs: Any) -> Any:
        keep_thread_state()
        if func.__name__ in UNCHECKED:
            return super()._wrapper(func, *args, **kwargs)
        pid = caller_pid()
        if pid <= 0:
            return super()._wrapper(func, *args, **kwargs)
        with abandon_when(functools.partial(caller_gone, pid)):
            return super()._wrapper(func, *args, **kwargs)

    def open(self, path: bytes, fip: Any) -> int:
        """Opens for reading come back with ``noflush``: the kernel then skips the FLUSH call into
        Python at each ``close()``, which only a written file needs (dcm2niix closes every file of a
        series four times)."""
        result = super().open(path, fip)
        fi = fip.contents
        if result == 0 and (fi.flags & os.O_ACCMODE) == os.O_RDONLY and hasattr(fi, "noflush"):
            fi.noflush = 1
        return result

    def readdir_fuse_3(self, path: bytes | None, buf: Any, filler: Any, offset: int, fip: Any,
                       flags: int) -> int:
        """Entries from ``offset`` on, each with its offset (index + 1): libfuse registers plus entries
        with the kernel only on this path (``fill_dir_plus`` with a non-zero offset), and the kernel
        reads a big folder in page-sized chunks, each a call here; the operations keep each open
        directory's listing, so a chunk costs no new listing, and return the same list while the
        listing is unchanged, so what was built for the kernel from it (:meth:`_prepared`) is reused."""
        if path is None:
            return super().readdir_fuse_3(path, buf, filler, offset, fip, flags)
        entries = self.operations.readdir(path.decode(self.encoding, self.errors), fip.contents.fh)
        prepared = self._prepared(entries, bool(flags & FUSE_READDIR_PLUS))
        for index in range(offset, len(prepared)):
            name, st, fill = prepared[index]
            if filler(buf, name, st, index + 1, fill):
                break
        return 0

    def _prepared(self, entries: list[Any], plus: bool) -> list[tuple[bytes, Any, int]]:
        """Each entry as the filler takes it: encoded name, ``struct stat`` (or None) and fill flags;
        the same list while the operations hand out the same entries."""
        return self._prepared_lists[plus].get(entries, functools.partial(self._prepare, plus=plus))

    def _prepare(self, entries: list[Any], plus: bool) -> list[tuple[bytes, Any, int]]:
        prepared = []
        for item in entries:
            name, attrs = (item, None) if isinstance(item, str) else item[:2]
            st = mfusepy.c_stat()
            fill = 0
            if isinstance(attrs, dict):
                if plus:
                    mfusepy.set_st_attrs(st, attrs, use_ns=self.use_ns)
                    fill = FUSE_FILL_DIR_PLUS
                else:
                    st.st_mode = attrs.get("st_mode", 0)
            elif isinstance(attrs, int):
                st.st_mode = attrs
            prepared.append((name.encode(self.encoding, self.errors), st if attrs is not None else None, fill))
        return prepared


__all__ = ["PlusFUSE", "FUSE_READDIR_PLUS", "FUSE_FILL_DIR_PLUS"]
