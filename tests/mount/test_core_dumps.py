"""Issue 18, row 6: the daemon never dumps core (a core held the password three times).

The mount is started with the largest core limit the test may set; the daemon's ``/proc/PID/limits``
must still say 0, and the daemon is not dumpable (``PR_GET_DUMPABLE`` of a process started the same
way: no debugger of the same user can attach, ``/proc/PID/mem`` and ``environ`` are root's).
"""

from __future__ import annotations

import resource
import subprocess
import sys
from collections.abc import Iterator

import pytest

from mounting import MountFactory, daemon_process
from xnatfs.emulator.server import EmulatorServer

pytestmark = pytest.mark.mount


@pytest.fixture
def core_limit_raised() -> Iterator[int]:
    soft, hard = resource.getrlimit(resource.RLIMIT_CORE)
    resource.setrlimit(resource.RLIMIT_CORE, (hard, hard))
    try:
        yield hard
    finally:
        resource.setrlimit(resource.RLIMIT_CORE, (soft, hard))


def core_limit_of(pid: int) -> list[str]:
    with open(f"/proc/{pid}/limits") as limits:
        line = next(line for line in limits if line.startswith("Max core file size"))
    return line.split()[4:6]


def test_the_daemon_disables_core_dumps(emulator: EmulatorServer, mount_factory: MountFactory,
                                        core_limit_raised: int) -> None:
    assert resource.getrlimit(resource.RLIMIT_CORE)[0] != 0  # what the daemon inherits
    mounted = mount_factory(emulator)
    assert (mounted.path / "projects").is_dir()
    assert core_limit_of(daemon_process(mounted.path).pid) == ["0", "0"]


def test_disable_core_dumps_makes_the_process_undumpable(core_limit_raised: int) -> None:
    code = ("import ctypes, resource\n"
            "from xnatfs.daemon.process import disable_core_dumps\n"
            "before = ctypes.CDLL(None).prctl(3, 0, 0, 0, 0)\n"  # PR_GET_DUMPABLE
            "disable_core_dumps()\n"
            "print(before, ctypes.CDLL(None).prctl(3, 0, 0, 0, 0), resource.getrlimit(resource.RLIMIT_CORE))\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=30).stdout
    assert out.split(None, 2) == ["1", "0", "(0, 0)\n"]
