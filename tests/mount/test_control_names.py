"""Issue 18, row 7, on a real mount: control characters and over-long labels.

Labels with ``\\n``, ``\\r``, tab, ESC, DEL, a C1 control and bidi controls get reversible ``%`` escapes
(``decode_name`` gives the label back), so ``ls`` output stays one name per line and shows what the
name is; a 70,000-character label is shortened to ``<start>…~<ID>`` (255 bytes) instead of making
the listing of its whole folder fail with EIO.
"""

from __future__ import annotations

import os
import subprocess

import pytest

from mounting import MountFactory, require_tools
from xnatfs.emulator.server import EmulatorServer
from xnatfs.vfs.naming import decode_name

pytestmark = pytest.mark.mount

CONTROL_LABELS = ["line\nbreak", "carriage\rreturn", "tab\there", "esc\x1b[31mred", "del\x7f", "c1\x85next",
                  "evil\u202etxt.exe", "iso\u2066late\u2069"]
LONG_LABEL = "L" * 70_000


def test_control_characters_are_escaped_and_long_labels_shortened(fresh_emulator: EmulatorServer,
                                                                  mount_factory: MountFactory) -> None:
    require_tools("ls")
    store = fresh_emulator.store
    store.create_project("CTRL")
    ids = {label: store.create_subject("CTRL", label).id for label in [*CONTROL_LABELS, LONG_LABEL, "plain"]}
    mounted = mount_factory(fresh_emulator)
    folder = mounted.path / "projects/CTRL/subjects"
    names = os.listdir(folder)
    assert len(names) == len(ids)
    for name in names:
        assert not any(ord(c) < 0x20 or 0x7F <= ord(c) <= 0x9F or c in "\u202e\u2066\u2069" for c in name), name
        assert len(name.encode()) <= 255
    decoded = {decode_name(name) for name in names if not name.endswith(f"…~{ids[LONG_LABEL]}")}
    assert decoded == set(CONTROL_LABELS) | {"plain"}
    [long_name] = [name for name in names if name.endswith(f"…~{ids[LONG_LABEL]}")]
    assert long_name.startswith("L" * 200)
    assert f"\"label\": \"{LONG_LABEL}\"" in (folder / long_name / "xnat.json").read_text()  # the full label
    lines = subprocess.run(["ls", "-1", str(folder)], capture_output=True, timeout=30, check=True).stdout.splitlines()
    assert len(lines) == len(ids)  # one name per line
    assert "line%0Abreak" in names and "evil%u202Etxt.exe" in names
