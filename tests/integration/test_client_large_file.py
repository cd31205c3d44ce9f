"""A 200 MB file through upload, open() and download: memory stays bounded, bytes stay exact."""

from __future__ import annotations

import hashlib
import os
import time
from pathlib import Path

import pytest

from rss_sampler import PeakRSS
from xnatfs.emulator.server import EmulatorServer
from xnatfs.model.connect import Connection
from xnatfs.settings import MiB

pytestmark = pytest.mark.integration

SIZE = 200 * MiB
#: Allowed growth of this process (client and in-process emulator together) over the baseline.
RSS_BUDGET = 80 * MiB


@pytest.fixture(scope="module")
def big_local_file(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    path = tmp_path_factory.mktemp("big") / "big.bin"
    block = os.urandom(MiB)
    digest = hashlib.md5()
    with open(path, "wb") as out:
        for i in range(SIZE // MiB):
            chunk = i.to_bytes(8, "big") + block[8:]
            out.write(chunk)
            digest.update(chunk)
    return path, digest.hexdigest()


def test_200_mb_upload_and_read_stay_within_memory(fresh_xnat: Connection, fresh_emulator: EmulatorServer,
                                                   big_local_file: tuple[Path, str], tmp_path: Path) -> None:
    path, md5 = big_local_file
    resource = fresh_xnat.projects.create("BIG").resources.create("data")
    with PeakRSS() as upload_memory:
        remote = resource.upload(path, "big.bin")
    assert remote.size == SIZE and remote.digest == md5
    assert upload_memory.growth < RSS_BUDGET, f"upload grew RSS by {upload_memory.growth / MiB:.0f} MiB"

    fresh_emulator.faults.reset_counts()
    digest = hashlib.md5()
    started = time.monotonic()
    with PeakRSS() as read_memory, remote.open() as handle:
        while chunk := handle.read(MiB):
            digest.update(chunk)
        handle.seek(123 * MiB + 5)
        assert handle.read(3) == (123).to_bytes(8, "big")[5:]
        handle.seek(77 * MiB)
        assert handle.read(8) == (77).to_bytes(8, "big")
    elapsed = time.monotonic() - started
    assert digest.hexdigest() == md5
    assert read_memory.growth < RSS_BUDGET, f"open()/read grew RSS by {read_memory.growth / MiB:.0f} MiB"
    requests_made = fresh_emulator.faults.counts()["total"]
    assert requests_made < 40, f"{requests_made} ranged GETs for 200 MB"
    print(f"\n200 MB via open(): {elapsed:.2f} s, {requests_made} requests, RSS +{read_memory.growth / MiB:.0f} MiB")

    with PeakRSS() as download_memory:
        target = remote.download(tmp_path / "copy.bin")
    assert target.stat().st_size == SIZE
    assert download_memory.growth < RSS_BUDGET
