"""Issue 17 item 7: ``filter`` on a field the listing does not carry, and imports into unknown projects."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from xnatfs.emulator.server import EmulatorServer
from xnatfs.errors import NotFound
from xnatfs.model.connect import Connection

pytestmark = pytest.mark.integration


def test_filter_on_a_field_outside_the_default_columns(xnat: Connection) -> None:
    experiments = xnat.projects["DEMO"].experiments
    by_attribute = sorted(e.label for e in experiments.values() if e.modality == "MR")
    assert len(by_attribute) == 3  # of the sample's four DEMO sessions
    assert sorted(e.label for e in experiments.filter(modality="MR")) == by_attribute
    assert [e.label for e in experiments.filter(modality="CT")] == ["DEMO_001_CT_1"]
    subjects = xnat.projects["DEMO"].subjects
    female = {s.label for s in subjects.filter(gender="female")}
    male = {s.label for s in subjects.filter(gender="male")}
    assert female and male and not female & male  # the sample has both
    assert female | male == {s.label for s in subjects.values()}


def test_filter_on_a_column_the_server_does_not_know_is_a_clear_error(xnat: Connection) -> None:
    with pytest.raises(ValueError, match=r"cannot be filtered on 'colour'.*\(it has .*label"):
        xnat.projects["DEMO"].experiments.filter(colour="red").keys()


def test_filters_on_default_columns_still_need_no_extra_request(xnat: Connection) -> None:
    experiments = xnat.projects["DEMO"].experiments
    assert [e.label for e in experiments.filter(label="DEMO_002*")] == ["DEMO_002_MR_1"]


def test_an_import_into_a_project_that_does_not_exist_is_refused(fresh_emulator: EmulatorServer, tmp_path: Path,
                                                                 make_dicom_zip: Callable[..., Path],
                                                                 fresh_xnat: Connection) -> None:
    archive = make_dicom_zip(tmp_path / "study.zip", session="LOST")
    env = {**os.environ, "XNATFS_PASSWORD": "admin", "HOME": "/nonexistent"}
    done = subprocess.run([sys.executable, "-m", "xnatfs", "import", str(archive), "-p", "NOPE", "-u", "admin",
                           fresh_emulator.url], env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 1
    assert "No project 'NOPE'" in done.stderr and "Unassigned" in done.stderr and "--allow-unassigned" in done.stderr
    assert archive.exists()
    assert fresh_xnat.prearchive.sessions() == []  # nothing was sent

    with pytest.raises(NotFound, match="allow_unassigned=True"):
        fresh_xnat.services.import_(archive, project="NOPE")

    done = subprocess.run([sys.executable, "-m", "xnatfs", "import", str(archive), "-p", "NOPE", "-u", "admin",
                           "--allow-unassigned", fresh_emulator.url], env=env, capture_output=True, text=True,
                          timeout=60)
    assert done.returncode == 0, done.stderr
    assert [s.name for s in fresh_xnat.prearchive.sessions()] == ["LOST"]
