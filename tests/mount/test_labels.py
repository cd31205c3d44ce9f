"""Labels that are not file names, through a real mount: ``..``, ``.``, ``/``, bytes that are not UTF-8, ``%``.

The rows are written straight into the emulator's store, as a server with odd data would hold them
(XNAT restricts subject and session labels in its UI, not in every import path; resource labels and
file names are free text). A label that is not UTF-8 is stored as raw bytes in SQLite and read back
with ``surrogateescape``, so the emulator sends it as JSON ``\\udcXX`` escapes (what a Python or Java
server does with undecodable bytes).

What must hold (``xnatfs.vfs.naming``): each label gets a safe name that decodes back to it; reading
through the name works; nothing resolves outside the mount; ``user.xnat.id`` gives the ID.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from mounting import MountFactory, require_tools
from xnatfs.emulator.server import EmulatorServer
from xnatfs.vfs.naming import decode_name

pytestmark = pytest.mark.mount

NOT_UTF8 = b"caf\xe9"  # Latin-1 "café": not valid UTF-8
#: subject label → the name it must have under the mount
SUBJECT_NAMES = {"..": "%2E%2E", ".": "%2E", "a/b": "a%2Fb", "50%": "50%", "%41": "%2541",
                 NOT_UTF8.decode("utf-8", "surrogateescape"): "caf%E9"}
EXPERIMENT_LABEL, EXPERIMENT_NAME = "x/../y", "x%2F..%2Fy"
RESOURCE_LABEL, RESOURCE_NAME = "../../etc", "..%2F..%2Fetc"
BAD_RESOURCE_LABEL, BAD_RESOURCE_NAME = "r\udcff", "r%FF"
FILES = {"sub/100%25.txt": b"a percent sign\n", "plain.txt": b"plain\n", "...": b"three dots\n"}
FILE_NAMES = {"sub/100%25.txt": "sub/100%2525.txt", "plain.txt": "plain.txt", "...": "..."}


def _set_raw_label(emulator: EmulatorServer, table: str, key: str, value, label: str) -> None:  # type: ignore[no-untyped-def]
    """Store ``label`` as the raw bytes it stands for (invalid UTF-8 stays invalid in SQLite)."""
    with emulator.store.lock:
        emulator.store.db.execute(f"UPDATE {table} SET label=CAST(? AS TEXT) WHERE {key}=?",
                                  (label.encode("utf-8", "surrogateescape"), value))


@pytest.fixture
def odd_labels(fresh_emulator: EmulatorServer) -> dict[str, str]:
    """Project ODD with one subject per label in SUBJECT_NAMES; subject ``..`` has an experiment
    ``x/../y`` with resources ``../../etc`` (files) and a non-UTF-8 one. Returns label → ID."""
    store = fresh_emulator.store
    store.db.text_factory = lambda raw: raw.decode("utf-8", "surrogateescape")
    store.create_project("ODD")
    ids: dict[str, str] = {}
    for n, label in enumerate(SUBJECT_NAMES):
        subject = store.create_subject("ODD", f"placeholder{n}")
        _set_raw_label(fresh_emulator, "subjects", "id", subject.id, label)
        ids[label] = subject.id
    experiment = store.create_experiment("ODD", ids[".."], EXPERIMENT_LABEL)
    ids[EXPERIMENT_LABEL] = experiment.id
    resource = store.create_resource(experiment, RESOURCE_LABEL, format="TXT")
    ids[RESOURCE_LABEL] = str(resource.id)
    for path, data in FILES.items():
        store.add_file(resource.id, path, data)
    bad = store.create_resource(experiment, "placeholder")
    _set_raw_label(fresh_emulator, "resources", "id", bad.id, BAD_RESOURCE_LABEL)
    store.add_file(bad.id, "inside.txt", b"inside a non-UTF-8 resource\n")
    ids[BAD_RESOURCE_LABEL] = str(bad.id)
    return ids


def _ls(path: Path) -> list[str]:
    out = subprocess.run(["ls", "-1a", str(path)], capture_output=True, timeout=30, check=True).stdout
    return out.decode("utf-8", "surrogateescape").splitlines()


def _xattr_id(path: Path) -> str:
    return subprocess.run(["getfattr", "--only-values", "-n", "user.xnat.id", str(path)], capture_output=True,
                          text=True, timeout=30, check=True).stdout


def test_odd_labels_get_safe_reversible_names(fresh_emulator: EmulatorServer, odd_labels: dict[str, str],
                                              mount_factory: MountFactory) -> None:
    require_tools("ls", "getfattr")
    mounted = mount_factory(fresh_emulator)
    subjects = mounted.path / "projects/ODD/subjects"
    names = _ls(subjects)
    assert sorted(names) == sorted([".", "..", *SUBJECT_NAMES.values()])
    for label, name in SUBJECT_NAMES.items():
        assert decode_name(name) == label
        assert _xattr_id(subjects / name) == odd_labels[label]
    experiments = subjects / "%2E%2E/experiments"
    assert _ls(experiments) == [".", "..", EXPERIMENT_NAME]
    assert _xattr_id(experiments / EXPERIMENT_NAME) == odd_labels[EXPERIMENT_LABEL]
    resources = experiments / EXPERIMENT_NAME / "resources"
    assert sorted(_ls(resources)) == sorted([".", "..", RESOURCE_NAME, BAD_RESOURCE_NAME])
    for label, name in ((RESOURCE_LABEL, RESOURCE_NAME), (BAD_RESOURCE_LABEL, BAD_RESOURCE_NAME)):
        assert decode_name(name) == label
        assert _xattr_id(resources / name) == odd_labels[label]


def test_reading_through_odd_names_gives_the_stored_bytes(fresh_emulator: EmulatorServer, odd_labels: dict[str, str],
                                                          mount_factory: MountFactory) -> None:
    require_tools("cat")
    # Names with "%" or bytes that are not UTF-8, and no space or "+", cannot be fetched from a real
    # XNAT at all (its FileList decodes a path only when it holds %20 or %2B; docs/mount.md). This test
    # is about the mount's own escaping of such names, so the emulator decodes paths in full here.
    fresh_emulator.app.config.legacy_paths = True
    try:
        mounted = mount_factory(fresh_emulator)
        resources = mounted.path / "projects/ODD/subjects/%2E%2E/experiments" / EXPERIMENT_NAME / "resources"
        for path, data in FILES.items():
            target = resources / RESOURCE_NAME / FILE_NAMES[path]
            assert subprocess.run(["cat", str(target)], capture_output=True, timeout=30, check=True).stdout == data
    finally:
        fresh_emulator.app.config.legacy_paths = False
    inside = resources / BAD_RESOURCE_NAME / "inside.txt"
    assert subprocess.run(["cat", str(inside)], capture_output=True, timeout=30, check=True).stdout.startswith(b"inside")
    json_doc = mounted.path / "projects/ODD/subjects/caf%E9/xnat.json"
    assert b'"ID"' in subprocess.run(["cat", str(json_doc)], capture_output=True, timeout=30, check=True).stdout


def test_no_odd_name_resolves_outside_the_mount(fresh_emulator: EmulatorServer, odd_labels: dict[str, str],
                                                mount_factory: MountFactory) -> None:
    require_tools("find", "realpath")
    mounted = mount_factory(fresh_emulator)
    root = mounted.path / "projects/ODD"
    # The emulator cannot render XML that holds bytes that are not UTF-8: its 500 is an EIO for those
    # xnat.xml files (which find stats while listing), and for nothing else.
    mounted.expect_errors = True
    result = subprocess.run(["find", str(root), "-name", "xnat.xml", "-prune", "-o", "-print0"], capture_output=True,
                            timeout=60)
    complaints = result.stderr.decode("utf-8", "surrogateescape").splitlines()
    assert all("xnat.xml" in line and "Input/output error" in line for line in complaints), complaints
    found = result.stdout
    paths = [p.decode("utf-8", "surrogateescape") for p in found.split(b"\0") if p and not p.endswith(b"/xnat.xml")]
    assert len(paths) > 20
    resolved = subprocess.run(["realpath", "-e", "-z", *paths], capture_output=True, timeout=60, check=True).stdout
    resolved_paths = [p.decode("utf-8", "surrogateescape") for p in resolved.split(b"\0") if p]
    assert resolved_paths == paths  # no name is "..", ".", or a link: every path resolves to itself
    for path in resolved_paths:
        assert path == str(root) or path.startswith(f"{root}/")
        assert not {".", ".."} & set(Path(path).relative_to(mounted.path).parts)
    # the shell's view: cd into the "..' subject and ask where we are
    where = subprocess.run(["sh", "-c", 'cd -- "$1" && pwd -P', "sh", str(root / "subjects/%2E%2E")],
                           capture_output=True, text=True, timeout=30, check=True).stdout.strip()
    assert where == str(root / "subjects/%2E%2E")
    assert os.path.realpath(root / "subjects/%2E%2E/experiments" / EXPERIMENT_NAME).startswith(str(root) + "/")
