"""Python thread states kept by threads Python did not start (libfuse's workers).

A ctypes callback on a foreign thread makes a Python thread state when it begins and destroys it
when it returns (``PyGILState_Ensure``/``PyGILState_Release``), and the thread's locals
(``threading.local``) with it. Every FUSE call into the daemon paid for a new one: about a third of
what an open and close of a file in the kernel's cache cost through a writable mount (175 → 112 µs),
so dcm2niix's 4,000 opens of a 1,000-slice series took 0.3 s more. One more ``Ensure``, never
released, keeps the state for the thread's life.

That is only right for threads that live as long as the process: libfuse (3.12 on) keeps its
worker threads for the life of the mount (``max_idle_threads`` is unlimited by default) and starts
at most ``max_threads`` (10) of them, so at most that many states are kept; the interpreter frees
them at exit.

A leaf: imports the standard library only.
"""

from __future__ import annotations

import ctypes
import threading

_kept = threading.local()
_lock = threading.Lock()
_count = 0

_gil_ensure = ctypes.pythonapi.PyGILState_Ensure  # (PyDLL: called holding the GIL, which it keeps)
_gil_ensure.restype = ctypes.c_int


def keep_thread_state() -> None:
    """Keep the calling thread's Python thread state until the thread ends (see the module docstring);
    a no-op after the first call on a thread."""
    global _count
    if getattr(_kept, "kept", False):
        return
    _gil_ensure()
    _kept.kept = True
    with _lock:
        _count += 1


def kept_thread_states() -> int:
    """How many threads have kept their state (for the mount's statistics)."""
    return _count


__all__ = ["keep_thread_state", "kept_thread_states"]
