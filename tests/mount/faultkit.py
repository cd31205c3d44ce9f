"""Helpers of the fault and load tests: an emulator in its own process (so it can crash or hang), timing
every system call of a real tool, and watching processes for uninterruptible sleep.

- :class:`EmulatorProcess` runs ``python -m xnatfs.emulator`` over a data directory. ``kill()`` is a
  crash (SIGKILL: open connections are reset), ``pause()``/``resume()`` a hung server (SIGSTOP: the
  kernel still accepts connections, nothing answers), ``start()`` again serves on the same port, with
  other users if asked (a changed password). An in-process emulator cannot do this: stopping its
  server leaves the threads that serve kept-alive connections running.
- :func:`traced` runs a tool under ``strace -f -T`` and :func:`slowest_calls` reads the time of each
  system call from its log: a call into the mount is one system call, so this times each FUSE call
  as the tool saw it.
- :class:`StateWatch` samples ``/proc/<pid>/stat``; :meth:`StateWatch.longest` is the longest run of
  samples in some states. A process waiting for a FUSE answer sleeps interruptibly (``S``) on current
  kernels, and uninterruptibly (``D``) only once a signal is pending and the filesystem does not
  answer; the tests assert no ``D`` wait outlasts the timeout, and time the waits themselves.
"""

from __future__ import annotations

import os
import re
import select
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import requests

from mounting import ADMIN

READY = re.compile(r"XNAT emulator ready at (http://\S+)")
_STRACE_TIME = re.compile(r"^(\d+)\s+(.*)<(\d+\.\d+)>$")


class EmulatorProcess:
    """The emulator as a child process over ``data_dir`` (see the module docstring)."""

    def __init__(self, data_dir: Path, log: Path) -> None:
        self.data_dir = data_dir
        self.log = log
        self.port = 0
        self.process: subprocess.Popen[str] | None = None
        self.admin = ADMIN

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, users: dict[str, str] | None = None, deadline: float = 30.0) -> EmulatorProcess:
        """Start serving (on the port of the last run, if any); ``users`` replace or add to admin/admin."""
        users = dict(users or {})
        self.admin = ("admin", users.get("admin", "admin"))
        command = [sys.executable, "-m", "xnatfs.emulator", "--data", str(self.data_dir), "--port", str(self.port)]
        for name, password in users.items():
            command += ["--user", f"{name}:{password}"]
        with open(self.log, "a") as log:
            self.process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=log, text=True,
                                            stdin=subprocess.DEVNULL)
        assert self.process.stdout is not None
        end = time.monotonic() + deadline
        line = ""
        while time.monotonic() < end and not line:
            ready, _, _ = select.select([self.process.stdout], [], [], 0.5)
            if ready:
                line = self.process.stdout.readline()
            if self.process.poll() is not None:
                break
        match = READY.search(line)
        assert match, f"the emulator did not start: {line!r}\n{self.log.read_text()}"
        self.port = int(match.group(1).rsplit(":", 1)[1])
        return self

    def kill(self) -> None:
        """A crash: SIGKILL; every open connection is reset."""
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(10)

    def pause(self) -> None:
        """A hung server: connections are still accepted by the kernel, nothing answers."""
        assert self.process is not None
        self.process.send_signal(signal.SIGSTOP)

    def resume(self) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGCONT)

    def set_faults(self, **changes: object) -> None:
        requests.put(f"{self.url}/emulator/faults", json=changes, auth=self.admin, timeout=10).raise_for_status()

    def counts(self) -> dict:
        response = requests.get(f"{self.url}/emulator/requests", auth=self.admin, timeout=10)
        response.raise_for_status()
        return response.json()

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.resume()
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(10)
        if self.process is not None and self.process.stdout is not None:
            self.process.stdout.close()


def traced(command: list[str], log: Path, **kw: object) -> subprocess.Popen[bytes]:
    """``command`` started under ``strace -f -T -o log`` (every system call with its duration)."""
    return subprocess.Popen(["strace", "-f", "-T", "-qq", "-o", str(log), *command], stdin=subprocess.DEVNULL,
                            **kw)  # type: ignore[call-overload]


def slowest_calls(log: Path, count: int = 3) -> list[tuple[float, str]]:
    """The ``count`` longest system calls in an ``strace -T`` log, as (seconds, call)."""
    calls: list[tuple[float, str]] = []
    for line in log.read_text(errors="replace").splitlines():
        match = _STRACE_TIME.match(line.strip())
        if match:
            calls.append((float(match.group(3)), match.group(2)[:200]))
    assert calls, f"strace logged no timed calls in {log}"
    return sorted(calls, reverse=True)[:count]


def process_state(pid: int) -> str | None:
    """The one-letter state of ``pid`` (``R``, ``S``, ``D``, ``Z`` …), or None once it has gone."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return text.rsplit(")", 1)[1].split()[0]


class StateWatch:
    """Samples the state of some processes every ``interval`` seconds in a thread until :meth:`stop`."""

    def __init__(self, *pids: int, interval: float = 0.01) -> None:
        self.pids = list(pids)
        self.interval = interval
        self.samples: dict[int, list[tuple[float, str]]] = {pid: [] for pid in pids}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            now = time.monotonic()
            for pid in self.pids:
                state = process_state(pid)
                if state is not None:
                    self.samples[pid].append((now, state))
            time.sleep(self.interval)

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(5)

    def longest(self, states: str = "D") -> float:
        """The longest run of consecutive samples in one of ``states`` (letters), over all watched
        processes, in seconds."""
        longest = 0.0
        for samples in self.samples.values():
            start = None
            for when, seen in samples:
                if seen in states:
                    start = when if start is None else start
                    longest = max(longest, when - start)
                else:
                    start = None
        return longest

    def ever(self, states: str = "D") -> bool:
        return any(seen in states for samples in self.samples.values() for _, seen in samples)


def tool_pid(strace: subprocess.Popen[bytes], deadline: float = 10.0) -> int:
    """The pid of the tool ``strace`` runs (its first child)."""
    end = time.monotonic() + deadline
    while time.monotonic() < end:
        try:
            children = Path(f"/proc/{strace.pid}/task/{strace.pid}/children").read_text().split()
        except OSError:
            children = []
        if children:
            return int(children[0])
        time.sleep(0.01)
    raise AssertionError("strace started no child")


def rss_peak_kib(pid: int) -> int:
    """``VmHWM`` of ``pid`` (the peak resident set size), in KiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    raise AssertionError(f"no VmHWM for {pid}")


def threads_and_fds(pid: int) -> tuple[int, int]:
    return len(os.listdir(f"/proc/{pid}/task")), len(os.listdir(f"/proc/{pid}/fd"))
