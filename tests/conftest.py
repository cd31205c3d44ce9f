"""Shared fixtures: an XNAT emulator on 127.0.0.1 (port 0) over a temporary data directory.

``emulator`` (session scope) has the sample data and must not be changed destructively by tests;
a test that deletes or needs a clean archive uses ``fresh_emulator`` (function scope, empty archive).
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest
import requests

from xnatfs.emulator.server import EmulatorServer

ADMIN = ("admin", "admin")


@pytest.fixture(scope="session")
def emulator(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmulatorServer]:
    server = EmulatorServer(tmp_path_factory.mktemp("xnat-sample"), sample=True,
                            users={"admin": "admin", "alice": "alice-secret"})
    server.start()
    yield server
    server.stop()


@pytest.fixture
def fresh_emulator(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmulatorServer]:
    server = EmulatorServer(tmp_path_factory.mktemp("xnat-empty"), users={"admin": "admin"})
    server.start()
    yield server
    server.stop()


@pytest.fixture
def http(emulator: EmulatorServer) -> Iterator[requests.Session]:
    """A requests session authenticated as admin with Basic auth against the sample emulator."""
    with requests.Session() as session:
        session.auth = ADMIN
        yield session


@pytest.fixture
def umask_022() -> Iterator[None]:
    """The usual umask (group and others may read what is created), for tests of private files."""
    old = os.umask(0o022)
    try:
        yield
    finally:
        os.umask(old)
