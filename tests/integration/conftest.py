"""Fixtures for client ↔ emulator tests over loopback: connections, fault switches, request counts."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

import xnatfs
from xnatfs.emulator.server import EmulatorServer
from xnatfs.model.connect import Connection


@pytest.fixture
def xnat(emulator: EmulatorServer) -> Iterator[Connection]:
    """A connection as admin to the shared sample emulator (read-only use: do not change its data)."""
    with xnatfs.connect(emulator.url, "admin", "admin") as connection:
        yield connection


@pytest.fixture
def fresh_xnat(fresh_emulator: EmulatorServer) -> Iterator[Connection]:
    """A connection as admin to an empty emulator of its own (for tests that write)."""
    with xnatfs.connect(fresh_emulator.url, "admin", "admin") as connection:
        yield connection


@pytest.fixture
def faults(emulator: EmulatorServer) -> Iterator[EmulatorServer]:
    """The shared emulator, with its fault switches reset to off after the test."""
    try:
        yield emulator
    finally:
        emulator.set_faults(latency_ms=0, bandwidth_mibps=0, fail_rate=0, fail_status=503, no_range=False)

