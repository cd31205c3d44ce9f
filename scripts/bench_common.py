"""Shared parts of the benchmarks in ``scripts/``: an emulator, real mounts, timing, the request counter.

Not a test: the benchmarks print ratios measured side by side in one run (issue 6 item 8); nothing
here asserts a timing.
"""

from __future__ import annotations

import contextlib
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import requests

ADMIN = ("admin", "admin")
MiB = 1024 * 1024


def counter_reset(url: str) -> None:
    requests.delete(f"{url}/emulator/requests", auth=ADMIN, timeout=30).raise_for_status()


def counter_read(url: str) -> dict:
    response = requests.get(f"{url}/emulator/requests", auth=ADMIN, timeout=30)
    response.raise_for_status()
    return response.json()


def counter_settle(url: str, quiet: float = 0.5, deadline: float = 30.0) -> int:
    """The request total once no request arrived for ``quiet`` seconds (background prefetch done)."""
    end = time.monotonic() + deadline
    last = counter_read(url)["total"]
    while time.monotonic() < end:
        time.sleep(quiet)
        now = counter_read(url)["total"]
        if now == last:
            break
        last = now
    return int(last)


def unmount(path: Path) -> None:
    for args in (["-u"], ["-u", "-z"]):
        for _ in range(50):
            if not os.path.ismount(path):
                return
            if subprocess.run(["fusermount3", *args, str(path)], capture_output=True, timeout=30).returncode == 0:
                return
            time.sleep(0.1)


@contextlib.contextmanager
def mounted(url: str, *options: str, log_dir: Path | None = None) -> Iterator[Path]:
    """``xnatfs mount URL <tmp>`` as admin (daemon mode); yields the mount point; unmounts."""
    with tempfile.TemporaryDirectory(prefix="xnatfs-bench-") as tmp:
        path = Path(tmp) / "mnt"
        path.mkdir()
        log = (log_dir or Path(tmp)) / "mount.log"
        env = dict(os.environ, XNATFS_PASSWORD=ADMIN[1])
        result = subprocess.run([sys.executable, "-m", "xnatfs", "mount", url, str(path), "--user", ADMIN[0],
                                 "--log-file", str(log), *options], env=env, capture_output=True, text=True,
                                timeout=120, stdin=subprocess.DEVNULL)
        if result.returncode != 0:
            raise RuntimeError(f"mount failed: {result.stderr}")
        try:
            yield path
        finally:
            unmount(path)


@contextlib.contextmanager
def memfs_mounted(script: str, *args: str) -> Iterator[Path]:
    """The in-memory ceiling of a benchmark: ``script --serve-memfs <mountpoint> *args`` in its own
    process (a trivial FUSE filesystem on the same binding); yields the mount point once mounted."""
    with tempfile.TemporaryDirectory(prefix="memfs-") as tmp:
        path = Path(tmp) / "mnt"
        path.mkdir()
        process = subprocess.Popen([sys.executable, script, "--serve-memfs", str(path), *args],
                                   stderr=subprocess.DEVNULL)
        try:
            deadline = time.monotonic() + 60
            while not os.path.ismount(path):
                if time.monotonic() > deadline or process.poll() is not None:
                    raise RuntimeError("the in-memory FUSE filesystem did not mount")
                time.sleep(0.05)
            yield path
        finally:
            unmount(path)
            process.wait(timeout=30)


def timed(fn: Callable[[], object]) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def run(*command: str, **kw: object) -> None:
    """Run a command to completion. No ``timeout``: with one, ``subprocess`` polls the child with sleeps
    of up to 50 ms, which would add up to 50 ms to every timing."""
    subprocess.run(command, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                   **kw)  # type: ignore[arg-type]


def median(values: list[float]) -> float:
    return statistics.median(values)


def write_random_file(path: Path, size: int, seed: int = 6) -> None:
    """``size`` bytes that do not compress (a rotated random MiB per MiB), written without holding them."""
    import random

    block = random.Random(seed).randbytes(MiB)
    with open(path, "wb") as out:
        for i in range(size // MiB):
            out.write(block[i % MiB:] + block[: i % MiB])
        out.write(block[: size % MiB])
