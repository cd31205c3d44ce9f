"""The BIDS view (``bids/<project>/``) on a real mount: the official validator finds no error, pybids
indexes it, and the mapping (XNAT's bidsmap.json, ReproIn names, the built-in table) names the files."""

from __future__ import annotations

import json
import os
from pathlib import Path

import nibabel
import pytest
from bids import BIDSLayout
from viewkit import Series, build_session, validate

from xnatfs.emulator.server import EmulatorServer

pytestmark = pytest.mark.mount

SAMPLE_T1 = {"DEMO": ["sub-DEMO001_T1w.nii.gz", "sub-DEMO002_T1w.nii.gz", "sub-DEMO003_T1w.nii.gz"],
             "STUDY2": ["sub-S2001_T1w.nii.gz"]}


@pytest.fixture
def mapped_project(fresh_emulator: EmulatorServer) -> EmulatorServer:
    """Project MAPPED: subject A_1 with two sessions (so ses- folders), subject B-1 with one; a bidsmap.json
    for site-specific names, ReproIn names, built-in names, and scans nothing maps (a localizer, a scan
    without DICOM, an unknown name)."""
    store = fresh_emulator.store
    store.create_project("MAPPED", name="Mapped project", description="Built by the view tests")
    a = store.create_subject("MAPPED", "A_1", {"gender": "female", "yob": "1990"})
    b = store.create_subject("MAPPED", "B-1", {"gender": "male"})
    build_session(store, "MAPPED", a.id, "A_1_base", [
        Series("1", "3-plane loc"),
        Series("2", "SAG 3D BRAVO site"),                 # bidsmap.json → acq-bravo_T1w
        Series("3", "resting state run", 6, 3),           # bidsmap.json → task-rest_bold
        Series("4", "resting state run", 6, 3),           # the same name again: run-1, run-2
        Series("5", "screen snapshots", dicom=False),
    ])
    build_session(store, "MAPPED", a.id, "A_1_follow", [
        Series("1", "anat-T1w_acq-mprage"),               # ReproIn
        Series("2", "func-bold_task-nback_run-1", 6, 3),  # ReproIn with its own task and run
    ], date="20240901")
    build_session(store, "MAPPED", b.id, "B-1_base", [
        Series("1", "MPRAGE"),                            # built-in
        Series("2", "mystery sequence"),
    ])
    resource = store.create_resource(store.get_project("MAPPED"), "BIDS", format="JSON")
    store.add_file(resource.id, "bidsmap.json", json.dumps([
        {"series_description": "SAG 3D BRAVO site", "bidsname": "acq-bravo_T1w"},
        {"series_description": "Resting State Run", "bidsname": "task-rest_bold"},
        {"series_description": "unused", "bidsname": "T2w"},
    ]).encode())
    return fresh_emulator


def test_sample_projects_pass_the_official_validator_and_pybids_lists_them(emulator: EmulatorServer,
                                                                          mount_factory, tmp_path: Path) -> None:
    mounted = mount_factory(emulator, "--cache-dir", str(tmp_path / "cache"))
    bids = mounted.path / "bids"
    assert sorted(os.listdir(bids)) == ["DEMO", "STUDY2"]
    for project, t1s in SAMPLE_T1.items():
        errors, _ = validate(bids / project)
        assert errors == [], f"{project}: {json.dumps(errors, indent=1)[:3000]}"
        layout = BIDSLayout(bids / project, validate=False)
        subjects = sorted(layout.get_subjects())
        assert subjects == sorted(t[4:].split("_")[0] for t in t1s)
        found = sorted(Path(f).name for f in layout.get(suffix="T1w", extension=".nii.gz", return_type="filename"))
        assert found == t1s
        for path in layout.get(extension=".nii.gz", return_type="filename"):
            image = nibabel.load(path)
            series = "_bold" in Path(path).name or "_dwi" in Path(path).name  # 4 volumes
            assert image.shape == ((64, 64, 16, 4) if series else (64, 64, 16)), path
    participants = (bids / "DEMO" / "participants.tsv").read_text().splitlines()
    assert participants == ["participant_id\tsex\tage", "sub-DEMO001\tM\t54", "sub-DEMO002\tF\t39", "sub-DEMO003\tF\t32"]
    description = json.loads((bids / "DEMO" / "dataset_description.json").read_text())
    assert description["GeneratedBy"][0]["Name"] == "xnatfs" and description["DatasetType"] == "raw"
    bold = json.loads((bids / "DEMO" / "sub-DEMO003" / "func" / "sub-DEMO003_task-rest_bold.json").read_text())
    assert bold["TaskName"] == "rest" and bold["RepetitionTime"] == 2
    dwi = bids / "STUDY2" / "sub-S2001" / "dwi"
    assert sorted(os.listdir(dwi)) == [f"sub-S2001_dwi.{ext}" for ext in ("bval", "bvec", "json", "nii.gz")]
    assert (dwi / "sub-S2001_dwi.bval").read_text().split() == ["0", "1000", "1000", "1000"]
    excluded = (bids / "DEMO" / ".xnatfs_excluded.tsv").read_text()
    assert "DEMO_001_MR_1\t1\t'Localizer' is a localizer" in excluded and "modality CT" in excluded


def test_bidsmap_reproin_and_built_in_names_make_a_valid_dataset(mapped_project: EmulatorServer,
                                                                mount_factory, tmp_path: Path) -> None:
    mounted = mount_factory(mapped_project, "--cache-dir", str(tmp_path / "cache"))
    root = mounted.path / "bids" / "MAPPED"
    files = sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file())
    images = [f for f in files if f.endswith(".nii.gz")]
    assert images == [
        "sub-A1/ses-A1base/anat/sub-A1_ses-A1base_acq-bravo_T1w.nii.gz",
        "sub-A1/ses-A1base/func/sub-A1_ses-A1base_task-rest_run-1_bold.nii.gz",
        "sub-A1/ses-A1base/func/sub-A1_ses-A1base_task-rest_run-2_bold.nii.gz",
        "sub-A1/ses-A1follow/anat/sub-A1_ses-A1follow_acq-mprage_T1w.nii.gz",
        "sub-A1/ses-A1follow/func/sub-A1_ses-A1follow_task-nback_run-1_bold.nii.gz",
        "sub-B1/ses-B1base/anat/sub-B1_ses-B1base_T1w.nii.gz",
    ]
    assert all(f.removesuffix(".nii.gz") + ".json" in files for f in images)
    errors, _ = validate(root)
    assert errors == [], json.dumps(errors, indent=1)[:3000]
    layout = BIDSLayout(root, validate=False)
    assert sorted(layout.get_subjects()) == ["A1", "B1"]
    assert len(layout.get(suffix="T1w", extension=".nii.gz")) == 3
    assert layout.get_tasks() == ["nback", "rest"]
    for path in images:
        assert nibabel.load(root / path).shape == ((16, 16, 6, 3) if "_bold" in path else (16, 16, 8))
    nback = json.loads((root / images[4].replace(".nii.gz", ".json")).read_text())
    assert nback["TaskName"] == "nback"
    excluded = (root / ".xnatfs_excluded.tsv").read_text()
    assert "3-plane loc" in excluded and "no DICOM resource" in excluded and "'mystery sequence' matches no" in excluded
    assert "sub-A1\tF\t34" in (root / "participants.tsv").read_text()


def test_the_bids_view_is_read_only_and_can_be_turned_off(emulator: EmulatorServer, mount_factory,
                                                         tmp_path: Path) -> None:
    mounted = mount_factory(emulator, "--cache-dir", str(tmp_path / "cache"))
    with pytest.raises(PermissionError):
        (mounted.path / "bids" / "DEMO" / "notes.txt").write_text("x")
    with pytest.raises(PermissionError):
        (mounted.path / "bids" / "DEMO" / "sub-new").mkdir()
    off = mount_factory(emulator, "--no-bids", name="off")
    assert "bids" not in os.listdir(off.path) and "projects" in os.listdir(off.path)


def test_a_read_only_mount_serves_the_views_files_whole(emulator: EmulatorServer, mount_factory,
                                                        tmp_path: Path) -> None:
    """On a --read-only mount the kernel opens files without the daemon and reads them by path: the
    view's converted files (a new node at every lookup) read whole and the same as on a writable mount."""
    cache = str(tmp_path / "cache")
    writable = mount_factory(emulator, "--cache-dir", cache, name="writable")
    read_only = mount_factory(emulator, "--cache-dir", cache, "--read-only", name="read-only")
    anat = Path("bids/DEMO/sub-DEMO001/anat")
    for name in ("sub-DEMO001_T1w.nii.gz", "sub-DEMO001_T1w.json"):
        expected = (writable.path / anat / name).read_bytes()
        with open(read_only.path / anat / name, "rb", buffering=0) as handle:  # small reads, as tools make
            pieces = iter(lambda: handle.read(4096), b"")
            assert b"".join(pieces) == expected, name
    assert nibabel.load(read_only.path / anat / "sub-DEMO001_T1w.nii.gz").shape == (64, 64, 16)
