"""Issue 18, row 4: an answer refused for its size releases its memory at once.

Ten answers larger than ``max_document_size``, each refused, with the cycle collector off (as it is,
for long stretches, in a quiet daemon): the process's resident memory must not grow by one refused
body per refusal. Before, the refused body's parts stayed referenced from the stored exception's
traceback (a reference cycle through the shared load's future) until a collection ran.
"""

from __future__ import annotations

import gc
from collections.abc import Iterator

import pytest

import xnatfs
from xnatfs.errors import ServerError
from xnatfs.settings import MAX_DOCUMENT_SIZE, MiB, Settings

from hostile import Exchange, HostileServer, xnat_routes
from rss_sampler import PeakRSS

pytestmark = pytest.mark.integration

LIMIT = MAX_DOCUMENT_SIZE  # the daemon's own limit: 128 MiB


@pytest.fixture
def server() -> Iterator[HostileServer]:
    with HostileServer(xnat_routes()) as hostile:
        yield hostile


def endless_without_length(ex: Exchange) -> None:
    ex.head(200, {"Content-Type": "application/json", "Connection": "close"})
    ex.endless(cap=LIMIT + 4 * MiB)


@pytest.mark.parametrize("door", ["catalog", "get_json"])
def test_ten_refused_answers_keep_memory_flat(server: HostileServer, door: str) -> None:
    server.route("GET", "/data/projects", endless_without_length)
    settings = Settings(max_document_size=LIMIT)
    with xnatfs.connect(server.url, "admin", "admin", load_schemas=False, timeout=5.0, settings=settings) as xnat:
        gc.collect()
        gc.disable()
        try:
            with PeakRSS() as rss:
                for _ in range(10):
                    with pytest.raises(ServerError, match="larger than"):
                        if door == "catalog":
                            xnat.catalog.projects()
                        else:
                            xnat.session.get_json("/data/projects")
        finally:
            gc.enable()
    # one refused body (plus its join) may be alive at a time; ten would be 1.3 GB
    assert rss.growth < 3 * LIMIT, f"{rss.growth // MiB} MiB"
