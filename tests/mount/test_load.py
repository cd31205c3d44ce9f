"""Load through a real mount: 8 readers of different large files and a ``find`` loop at once, for
:data:`DURATION` seconds. Every byte must be right, the daemon's peak RSS must stay within the reader's
memory budget plus the daemon's own size, and no thread or file descriptor may be left behind.

Each reader is ``dd iflag=nocache | md5sum``: ``nocache`` drops the file's pages from the kernel's page
cache after reading, so every round goes through the daemon again (``auto_cache`` would otherwise serve
rounds after the first from memory). ``--metadata-ttl 1`` makes the ``find`` loop list from the server
again every second, so metadata requests run beside the streams.

It runs the issue's 60 s by default (``XNATFS_LOAD_SECONDS`` shortens it for a quick local run); the
whole suite stays well under 10 minutes on 2 cores. Measured on 2 cores: each reader reads its file
about once a second (about 400 MiB/s in all); the peak RSS was 139 MiB after 15 s and 137 MiB after
60 s; threads (15) and descriptors (7) were the same before and after both runs.
"""

from __future__ import annotations

import hashlib
import os
import random
import subprocess
import threading
import time
from pathlib import Path

import pytest

from faultkit import rss_peak_kib, threads_and_fds
from mounting import MountFactory, daemon_process, require_tools
from xnatfs.emulator.sample import populate
from xnatfs.emulator.server import EmulatorServer
from xnatfs.settings import ReadSettings
from xnatfs.vfs.tree import TreeSettings

pytestmark = pytest.mark.mount

MiB = 1024 * 1024
DURATION = float(os.environ.get("XNATFS_LOAD_SECONDS", "60"))
READERS = 8
FILE_SIZE = 48 * MiB
#: what the daemon may hold beyond the reader's budget and its own size before the load: one 1 MiB chunk
#: being received per stream, the kernel's 128 KiB reads in flight per FUSE thread, malloc's slack
ALLOWANCE = 40 * MiB
SETTLE = 3.0


@pytest.fixture(scope="module")
def load_emulator(tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    """The sample archive plus project LOAD with :data:`READERS` files of :data:`FILE_SIZE` bytes."""
    server = EmulatorServer(tmp_path_factory.mktemp("xnat-load"), users={"admin": "admin"})
    populate(server.store)
    server.store.create_project("LOAD")
    resource = server.store.create_resource(server.store.get_project("LOAD"), "big", format="BIN")
    spool = tmp_path_factory.mktemp("load-spool")
    digests = {}
    block = random.Random(48).randbytes(MiB)
    for n in range(READERS):
        path, digest = spool / f"file{n}.bin", hashlib.md5()
        with open(path, "wb") as out:
            for m in range(FILE_SIZE // MiB):
                piece = bytes([n]) + m.to_bytes(4, "big") + block[5:]
                out.write(piece)
                digest.update(piece)
        server.store.add_file(resource.id, path.name, path, move=True, md5=digest.hexdigest())
        digests[path.name] = digest.hexdigest()
    server.start()
    yield server, digests
    server.stop()


def file_count(root: Path) -> int:
    out = subprocess.run(["find", str(root / "projects"), "-type", "f"], capture_output=True, timeout=120,
                         check=True).stdout
    return len(out.splitlines())


def settled(pid: int) -> tuple[int, int]:
    """Threads and descriptors of ``pid`` once they stop changing (streams end at their next chunk,
    libfuse lets idle workers go)."""
    time.sleep(SETTLE)
    last = threads_and_fds(pid)
    for _ in range(20):
        time.sleep(0.5)
        now = threads_and_fds(pid)
        if now == last:
            return now
        last = now
    return last


@pytest.mark.timeout(DURATION + 180)
def test_eight_readers_and_a_find_loop_keep_every_byte_memory_threads_and_descriptors_bounded(
        load_emulator, mount_factory: MountFactory) -> None:  # type: ignore[no-untyped-def]
    require_tools("dd", "md5sum", "find", "sh")
    server, digests = load_emulator
    mounted = mount_factory(server, "--metadata-ttl", "1", "--timeout", "10")
    daemon = daemon_process(mounted.path)
    folder = mounted.path / "projects/LOAD/resources/big"
    expected_files = file_count(mounted.path)

    def read_once(name: str) -> str:
        command = f'dd if="{folder / name}" bs=1M iflag=nocache status=none | md5sum'
        return subprocess.run(["sh", "-c", command], capture_output=True, text=True, timeout=120,
                              check=True).stdout.split()[0]

    def run_load(seconds: float) -> dict[str, object]:
        stop = time.monotonic() + seconds
        rounds: dict[str, int] = {name: 0 for name in digests}
        finds = [0]
        errors: list[str] = []

        def reader(name: str) -> None:
            while time.monotonic() < stop and not errors:
                try:
                    digest = read_once(name)
                except subprocess.SubprocessError as exc:
                    errors.append(f"{name}: {exc}")
                    return
                if digest != digests[name]:
                    errors.append(f"{name}: md5 {digest} != {digests[name]}")
                rounds[name] += 1

        def finder() -> None:
            while time.monotonic() < stop and not errors:
                count = file_count(mounted.path)
                if count != expected_files:
                    errors.append(f"find saw {count} files, not {expected_files}")
                finds[0] += 1
                time.sleep(0.2)

        threads = [threading.Thread(target=reader, args=(name,)) for name in digests]
        threads.append(threading.Thread(target=finder))
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(seconds + 180)
        assert not errors, errors
        return {"rounds": rounds, "finds": finds[0]}

    rss_before_kib = rss_peak_kib(daemon.pid)  # the daemon's own size: mounted, one find done, no file read
    # warm up: one short round of the same load, so the connection pool and libfuse's workers exist
    run_load(2.0)
    threads_before, fds_before = settled(daemon.pid)
    started = time.monotonic()
    result = run_load(DURATION)
    elapsed = time.monotonic() - started
    threads_after, fds_after = settled(daemon.pid)
    peak = rss_peak_kib(daemon.pid) * 1024
    budget = ReadSettings().total_budget
    report = (f"{DURATION:.0f} s: rounds {result['rounds']}, finds {result['finds']}, peak RSS {peak / MiB:.0f} MiB "
              f"(before the load {rss_before_kib / 1024:.0f} MiB, budget {budget / MiB:.0f} MiB), threads "
              f"{threads_before}→{threads_after}, fds {fds_before}→{fds_after}, {elapsed:.0f} s")
    print(report)
    rounds = result["rounds"]
    assert isinstance(rounds, dict) and min(rounds.values()) >= 2, report
    assert result["finds"] >= 2, report
    assert peak <= rss_before_kib * 1024 + budget + ALLOWANCE, report
    # the metadata prefetch pool may still be filling up to its bound after the short warm-up; a leak
    # (a thread per find or per read, 90 finds and 500 reads here) would far exceed that
    assert threads_after <= threads_before + TreeSettings().prefetch_workers, report
    assert fds_after <= fds_before, report
    errors = [line for line in mounted.log_text().splitlines() if " ERROR " in line or "Traceback" in line]
    assert not errors, errors
