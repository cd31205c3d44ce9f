"""Bigger kernel reads for the mount: raise the read-ahead of the mount's backing device (sysfs).

The kernel reads a FUSE file in requests no larger than its read-ahead window: 128 KiB by default,
so a sequential read of 256 MiB costs 2,048 round trips through ``/dev/fuse`` and 2,048 Python
callbacks. libfuse 3 lets a request carry up to 1 MiB (``max_pages`` 256), but it cannot ask for a
larger read-ahead (``max_readahead`` is capped by the kernel's proposal, and ``-o max_read=`` makes
the mount fail; DESIGN.md §6). The window can be raised after the mount is set up, through
``/sys/class/bdi/<major>:<minor>/read_ahead_kb`` of the mount's device, as gcsfuse's
``--max-read-ahead-kb`` does; that file is writable by root only. Measured in docs/performance.md:
1 MiB requests about double the loopback read speed.

Best effort: without the right to write it, the kernel's default stays (logged at debug level).
Imports the standard library only.
"""

from __future__ import annotations

import logging
import os
import threading
from pathlib import Path

log = logging.getLogger(__name__)


def read_ahead_path(mountpoint: str | os.PathLike[str]) -> Path:
    """The sysfs file of the read-ahead of the device mounted at ``mountpoint`` (a FUSE request: its stat)."""
    st = os.stat(mountpoint)
    return Path(f"/sys/class/bdi/{os.major(st.st_dev)}:{os.minor(st.st_dev)}/read_ahead_kb")


def raise_read_ahead(mountpoint: str | os.PathLike[str], nbytes: int) -> bool:
    """Raise the mount's kernel read-ahead to ``nbytes`` (never lower it); True if it is that large now."""
    kib = max(4, nbytes // 1024)
    try:
        path = read_ahead_path(mountpoint)
        current = int(path.read_text().strip())
        if current >= kib:
            return True
        path.write_text(f"{kib}\n")
    except (OSError, ValueError) as exc:
        log.debug("Kernel read-ahead of the mount left as it is (%s)", exc)
        return False
    log.info("Kernel read-ahead of the mount raised from %d KiB to %d KiB", current, kib)
    return True


def raise_read_ahead_later(mountpoint: str | os.PathLike[str], nbytes: int) -> None:
    """:func:`raise_read_ahead` in a thread of its own.

    Called when libfuse reports the mount ready (``init``), which is before the kernel has applied the
    answer to its INIT request, and that answer caps the read-ahead at 128 KiB. The thread's ``stat`` of
    the mount point waits for the kernel to finish that (it is answered by the FUSE threads), so the
    write comes after it. It never blocks the FUSE loop.
    """
    if nbytes <= 0:
        return
    threading.Thread(target=raise_read_ahead, args=(mountpoint, nbytes), name="xnatfs-readahead",
                     daemon=True).start()


__all__ = ["raise_read_ahead", "raise_read_ahead_later", "read_ahead_path"]
