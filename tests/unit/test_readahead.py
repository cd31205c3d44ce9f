"""The daemon raises the mount's kernel read-ahead through sysfs, never lowers it, and shrugs off a refusal."""

from __future__ import annotations

from pathlib import Path

import pytest

from xnatfs.daemon import readahead

pytestmark = pytest.mark.unit


def test_raises_to_the_setting(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    knob = tmp_path / "read_ahead_kb"
    knob.write_text("128\n")
    monkeypatch.setattr(readahead, "read_ahead_path", lambda mountpoint: knob)
    assert readahead.raise_read_ahead("/mnt", 1024 * 1024)
    assert knob.read_text().strip() == "1024"


def test_never_lowers(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    knob = tmp_path / "read_ahead_kb"
    knob.write_text("4096\n")
    monkeypatch.setattr(readahead, "read_ahead_path", lambda mountpoint: knob)
    assert readahead.raise_read_ahead("/mnt", 1024 * 1024)
    assert knob.read_text().strip() == "4096"


def test_a_refusal_leaves_the_default(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setattr(readahead, "read_ahead_path", lambda mountpoint: tmp_path / "missing" / "read_ahead_kb")
    assert not readahead.raise_read_ahead("/mnt", 1024 * 1024)


def test_zero_means_leave_it() -> None:
    readahead.raise_read_ahead_later("/nonexistent", 0)  # no thread, no error
