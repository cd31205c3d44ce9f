"""Was the program that closed a file killed? Read from ``/proc/<pid>/stat`` (Linux).

When a process dies, the kernel closes its files for it, and a FUSE filesystem receives the same
``flush`` and ``release`` as for a normal ``close()``: the calls alone cannot tell a finished copy
from an interrupted one (fuse-anchors §1.0). The kernel does leave a trace, though: the flush runs in
the dying task, whose ``flags`` have ``PF_EXITING`` set, and a task killed by a signal also has
``PF_SIGNALED`` and an ``exit_code`` (in ``waitpid`` form) whose low seven bits are the signal. A
program that ends normally without closing its file (``exit(0)``) is exiting too, but not signalled.

:func:`killed_by` answers from those fields; it returns None when it cannot tell (no ``/proc``, the
process is gone, a pid from another namespace), and callers then rely on their own checks (the zip
test catches a truncated archive).

Imports the standard library only.
"""

from __future__ import annotations

import signal
from dataclasses import dataclass
from pathlib import Path

PF_EXITING = 0x00000004
PF_SIGNALED = 0x00000400
PROC = Path("/proc")


@dataclass(frozen=True)
class Killed:
    """A writer that is dying from a signal."""

    pid: int
    command: str
    signal: int

    def describe(self) -> str:
        try:
            name = signal.Signals(self.signal).name
        except ValueError:
            name = f"signal {self.signal}"
        return f"{self.command} (pid {self.pid}) was killed by {name}"


def killed_by(pid: int, proc: Path = PROC) -> Killed | None:
    """The signal killing process/thread ``pid`` if it is exiting because of one; None otherwise."""
    if pid <= 0:
        return None
    try:
        text = (proc / str(pid) / "stat").read_text(errors="replace")
    except OSError:
        return None
    try:
        command = text[text.index("(") + 1: text.rindex(")")]
        fields = text[text.rindex(")") + 2:].split()
        flags = int(fields[6])  # field 9 of stat(5): fields here start at field 3 (state)
        exit_code = int(fields[49]) if len(fields) > 49 else 0  # field 52 (Linux >= 3.5)
    except (ValueError, IndexError):
        return None
    if not flags & PF_EXITING:
        return None
    signo = exit_code & 0x7F
    if signo == 0 and not flags & PF_SIGNALED:
        return None
    return Killed(pid, command, signo or signal.SIGKILL)


__all__ = ["killed_by", "Killed", "PF_EXITING", "PF_SIGNALED"]
