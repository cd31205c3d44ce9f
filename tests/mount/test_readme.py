"""Issue 17 item 9: the README's examples run, as written, against the emulator (so they cannot go stale).

Every ``sh`` and ``python`` block of the README's "Using it" section is run with only these
substitutions: the example server's URL becomes the emulator's, the user ``alice`` becomes the
emulator's ``admin`` (password from ``XNATFS_PASSWORD``, as the README says), ``~`` and ``/tmp``
become folders of the test, and ``.venv/bin/`` the virtualenv running the tests. A block that fails
fails the test with its output; the README also names no file outside the repository.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from writing import dicom_zip
from xnatfs.emulator.server import EmulatorServer

pytestmark = pytest.mark.mount

ROOT = Path(__file__).resolve().parents[2]
README = ROOT / "README.md"
EXAMPLE_URL = "https://xnat.example.org"


def using_it_blocks() -> list[tuple[str, str]]:
    text = README.read_text()
    section = text.split("## Using it", 1)[1].split("\n## ", 1)[0]
    return re.findall(r"```(sh|python)\n(.*?)```", section, flags=re.S)


def localized(code: str, server: EmulatorServer, home: Path) -> str:
    # one pass for the folders, first: the paths put in (under /tmp themselves) are not rewritten again
    code = re.sub(r"~/|/tmp/", lambda m: f"{home}/" if m.group() == "~/" else f"{home}/tmp/", code)
    code = code.replace(EXAMPLE_URL, server.url).replace("user alice", "user admin")
    return code.replace('user="alice"', 'user="admin"').replace(".venv/bin/", f"{Path(sys.executable).parent}/")


def test_the_readme_names_nothing_outside_the_repository() -> None:
    for path in [README, *sorted((ROOT / "docs").glob("*.md"))]:
        assert "../shared" not in path.read_text(), path


def test_the_readme_examples_run(server: EmulatorServer, tmp_path: Path) -> None:
    blocks = using_it_blocks()
    assert [kind for kind, _ in blocks].count("sh") >= 1 and [kind for kind, _ in blocks].count("python") >= 1
    home = tmp_path / "home"
    (home / "tmp").mkdir(parents=True)
    (home / "study.zip").write_bytes(dicom_zip("README_SUBJECT")[0])  # the zip the README imports
    env = {**os.environ, "HOME": str(home), "XNATFS_PASSWORD": "admin"}
    env.pop("XDG_CACHE_HOME", None)
    outputs = []
    try:
        for kind, code in blocks:
            code = localized(code, server, home)
            command = ["bash", "-euo", "pipefail", "-c", code] if kind == "sh" else [sys.executable, "-c", code]
            done = subprocess.run(command, cwd=home, env=env, capture_output=True, text=True, timeout=120)
            assert done.returncode == 0, f"README {kind} block failed:\n{code}\n--- stdout\n{done.stdout}\n" \
                                         f"--- stderr\n{done.stderr}"
            outputs.append(done.stdout)
    finally:
        subprocess.run(["fusermount3", "-u", "-z", str(home / "xnat")], capture_output=True, timeout=30)
    shell = "".join(o for (k, _), o in zip(blocks, outputs) if k == "sh")
    python = "".join(o for (k, _), o in zip(blocks, outputs) if k == "python")
    assert "DEMO_001" in shell  # ls of the subjects
    assert "/data/prearchive/projects/DEMO/" in shell  # the import's session
    assert any(p.suffix in (".nii", ".gz") for p in (home / "tmp/out").iterdir())  # dcm2niix through the mount
    assert "MR" in python and "DEMO_001_MR_1" in python
    assert any((home / "tmp/s01").rglob("*.dcm"))
    assert "b'DICM'" in python  # the fsspec block found the DICOM files and read one's magic by range
