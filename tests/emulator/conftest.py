"""Fixtures the emulator tests share, over those of ``tests/conftest.py`` (``emulator``, ``fresh_emulator``,
``http``).

* ``fresh_http``: a requests session authenticated as admin against ``fresh_emulator``;
* ``mr_session_id``: project P1, subject S1 and MR session E1, created over HTTP as a client would on
  ``fresh_emulator``; the session's accession ID;
* ``module_emulator`` / ``module_http``: an empty emulator and an admin session on it, shared by one
  test module, for modules that build their data once through the store (module scope keeps them fast).
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import requests

from xnatfs.emulator.server import EmulatorServer

ADMIN = ("admin", "admin")


def _admin_session() -> requests.Session:
    session = requests.Session()
    session.auth = ADMIN
    return session


@pytest.fixture
def fresh_http(fresh_emulator: EmulatorServer) -> Iterator[requests.Session]:
    with _admin_session() as session:
        yield session


@pytest.fixture
def mr_session_id(fresh_emulator: EmulatorServer, fresh_http: requests.Session) -> str:
    url = fresh_emulator.url
    assert fresh_http.put(f"{url}/data/projects/P1", timeout=10).status_code == 200
    created = fresh_http.put(f"{url}/data/projects/P1/subjects/S1/experiments/E1",
                             params={"xsiType": "xnat:mrSessionData"}, timeout=10)
    assert created.status_code == 201, created.text
    return created.text


@pytest.fixture(scope="module")
def module_emulator(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmulatorServer]:
    server = EmulatorServer(tmp_path_factory.mktemp("xnat-module")).start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def module_http(module_emulator: EmulatorServer) -> Iterator[requests.Session]:
    with _admin_session() as session:
        yield session
