#!/usr/bin/env python3
"""Reading a project through the ``xnat`` fsspec filesystem: one process, a mount, Dask workers (issue 16).

A generated project (default 4 subjects × 3 scans × 20 files of 64 KiB = 240 files) on the emulator
with a latency per request (default 10 ms, a server across a campus). The md5 of every file is
computed, side by side in one run:

- **baseline**: fsspec in this process, file after file (``fs.open`` + ``read``), a fresh filesystem;
- the **mount**: ``open``/``read`` of the same files through a fresh ``xnatfs mount``, file after file;
- **Dask**: a ``LocalCluster`` of 2 worker processes × 1 thread, then × 4 threads, ``dask.bag`` over
  the paths (the filesystem pickled to the workers; each connects on its first task); and with 1
  thread, one task per folder (a worker reads a whole resource folder, so the mount core's fetching
  ahead of a folder's next files serves only that worker). The cluster is started and warmed with a
  trivial task before the clock starts.

Each line prints the wall time, its ratio to the baseline and the requests the server saw per file.
Every run's md5s are checked against XNAT's digests; a wrong one makes the script exit 1.

Usage: ``.venv/bin/python scripts/bench_fsspec.py [--subjects 4] [--latency-ms 10] [--size 65536]``.
"""

from __future__ import annotations

import argparse
import hashlib
import logging
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_common import counter_reset, counter_settle, mounted  # noqa: E402


def generate(store, subjects: int, scans: int, files: int, size: int) -> dict[str, str]:  # type: ignore[no-untyped-def]
    """Project BENCH; each file's path (the mount's layout) → its md5."""
    expected = {}
    with store.transaction():
        store.create_project("BENCH")
        for s in range(subjects):
            subject = store.create_subject("BENCH", f"S{s:02d}")
            session = store.create_experiment("BENCH", subject.id, f"S{s:02d}_MR", "xnat:mrSessionData",
                                              {"modality": "MR"})
            for n in range(1, scans + 1):
                scan = store.create_scan(session.id, str(n), "xnat:mrScanData", {"type": "T1"})
                resource = store.create_resource(scan, "DICOM", format="DICOM")
                for f in range(files):
                    data = os.urandom(size)
                    store.add_file(resource.id, f"{f:03d}.dcm", data)
                    path = f"projects/BENCH/subjects/S{s:02d}/experiments/S{s:02d}_MR/scans/{n}/resources/DICOM/{f:03d}.dcm"
                    expected[path] = hashlib.md5(data).hexdigest()
    return expected


def md5_via_fs(path: str, fs) -> tuple[str, str]:  # type: ignore[no-untyped-def]
    digest = hashlib.md5(usedforsecurity=False)
    with fs.open(path, "rb") as handle:
        while chunk := handle.read(1 << 20):
            digest.update(chunk)
    return path, digest.hexdigest()


def md5_via_mount(root: Path, path: str) -> tuple[str, str]:
    digest = hashlib.md5(usedforsecurity=False)
    with open(root / path, "rb") as handle:
        while chunk := handle.read(1 << 20):
            digest.update(chunk)
    return path, digest.hexdigest()


def md5s_of_folder(paths: list[str], fs) -> list[tuple[str, str]]:  # type: ignore[no-untyped-def]
    return [md5_via_fs(p, fs) for p in paths]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--subjects", type=int, default=4)
    parser.add_argument("--scans", type=int, default=3)
    parser.add_argument("--files", type=int, default=20)
    parser.add_argument("--size", type=int, default=64 * 1024)
    parser.add_argument("--latency-ms", type=float, default=10.0)
    args = parser.parse_args()

    import dask.bag as db
    import fsspec
    from distributed import Client, LocalCluster

    from xnatfs.emulator.server import EmulatorServer

    with tempfile.TemporaryDirectory(prefix="xnatfs-bench-fsspec-") as tmp:
        server = EmulatorServer(Path(tmp) / "data", users={"admin": "admin"}).start()
        expected = generate(server.store, args.subjects, args.scans, args.files, args.size)
        paths = sorted(expected)
        server.set_faults(latency_ms=args.latency_ms)
        print(f"{len(paths)} files of {args.size} bytes, {args.latency_ms:g} ms per request")
        rows: list[tuple[str, float, float]] = []
        failed = False

        def record(name: str, run) -> None:  # type: ignore[no-untyped-def]
            nonlocal failed
            counter_reset(server.url)
            start = time.perf_counter()
            got = dict(run())
            elapsed = time.perf_counter() - start
            requests = counter_settle(server.url)
            if got != expected:
                wrong = sum(1 for p in paths if got.get(p) != expected[p])
                print(f"{name}: {wrong} md5s differ from XNAT's", file=sys.stderr)
                failed = True
            rows.append((name, elapsed, requests / len(paths)))

        def fresh_fs():  # type: ignore[no-untyped-def]
            return fsspec.filesystem("xnat", url=server.url, user="admin", password="admin", skip_instance_cache=True)

        fs = fresh_fs()
        record("fsspec, one process (baseline)", lambda: [md5_via_fs(p, fs) for p in paths])
        fs.close()
        with mounted(server.url) as root:
            record("mount, one process", lambda: [md5_via_mount(root, p) for p in paths])
        folders: dict[str, list[str]] = {}
        for p in paths:
            folders.setdefault(p.rsplit("/", 1)[0], []).append(p)
        for name, threads, per_folder in (("Dask, 2 workers x 1 thread", 1, False),
                                          ("Dask, 2 workers x 4 threads", 4, False),
                                          ("Dask, 2 workers x 1 thread, task per folder", 1, True)):
            # a new cluster each time: workers keep their filesystem instances (and caches) between runs
            with LocalCluster(n_workers=2, processes=True, threads_per_worker=threads, dashboard_address=":0",
                              silence_logs=logging.ERROR) as cluster, Client(cluster) as client:
                client.run(lambda: None)
                fs = fresh_fs()
                if per_folder:
                    bag = db.from_sequence(list(folders.values()), npartitions=len(folders)).map(
                        md5s_of_folder, fs=fs).flatten()
                else:
                    bag = db.from_sequence(paths, npartitions=4 * 2 * threads).map(md5_via_fs, fs=fs)
                record(name, lambda: bag.compute(scheduler=client))
        server.stop()

    base = rows[0][1]
    print(f"{'run':46} {'seconds':>8} {'ratio':>7} {'requests/file':>14}")
    for name, elapsed, per_file in rows:
        print(f"{name:46} {elapsed:8.2f} {elapsed / base:6.2f}x {per_file:14.2f}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
