"""BIDS names of scans (xnatfs.vfs.bidsnames): XNAT's bidsmap.json first, then ReproIn names, then the
built-in table; labels made BIDS-safe and unique; run numbers for repeated names."""

from __future__ import annotations

import json

import pytest

from xnatfs.vfs.bidsnames import (
    BidsmapError,
    BidsName,
    Unmapped,
    bids_name,
    number_runs,
    parse_bidsmap,
    safe_label,
    unique_labels,
)

pytestmark = pytest.mark.unit


def where(name: BidsName | Unmapped) -> str:
    """``datatype/entities_suffix`` for a mapped name, ``-`` for an unmapped one."""
    if isinstance(name, Unmapped):
        return "-"
    return f"{name.datatype}/" + "_".join([f"{k}-{v}" for k, v in name.entities] + [name.suffix])


@pytest.mark.parametrize(("description", "expected"), [
    ("T1w MPRAGE", "anat/T1w"), ("MPRAGE", "anat/T1w"), ("t1_mprage_sag_p2_iso", "anat/T1w"),
    ("SAG 3D T1 BRAVO", "anat/T1w"), ("T1w 3D", "anat/T1w"),
    ("T2w TSE", "anat/T2w"), ("t2_spc_sag", "anat/T2w"), ("T2w", "anat/T2w"),
    ("T2w FLAIR", "anat/FLAIR"), ("t2_flair_tra", "anat/FLAIR"),
    ("rsfMRI", "func/task-rest_bold"), ("fMRI rest", "func/task-rest_bold"), ("ep2d_bold_rest", "func/task-rest_bold"),
    ("Resting State", "func/task-rest_bold"),
    ("DWI b1000", "dwi/dwi"), ("ep2d_diff DTI 64dir", "dwi/dwi"),
    ("gre_field_mapping", "fmap/phasediff"),
    ("Localizer", "-"), ("3-plane loc", "-"), ("AAHead_Scout_32ch", "-"), ("MPR sag", "-"),
    ("DTI_ADC", "-"), ("DTI FA", "-"), ("mystery sequence", "-"), ("", "-"),
])
def test_built_in_table(description: str, expected: str) -> None:
    assert where(bids_name(description)) == expected


@pytest.mark.parametrize(("description", "expected"), [
    ("anat-T1w", "anat/T1w"), ("anat-T1w_acq-mprage", "anat/acq-mprage_T1w"), ("anat", "anat/T1w"),
    ("func-bold_task-rest_run-1", "func/task-rest_run-1_bold"),
    ("func-bold_run-2_task-nback", "func/task-nback_run-2_bold"),  # entities reordered
    ("func-bold", "func/task-rest_bold"),  # a BOLD run always has a task
    ("dwi", "dwi/dwi"), ("dwi_dir-AP", "dwi/dir-AP_dwi"),
    ("fmap-epi_dir-AP", "fmap/dir-AP_epi"), ("fmap-epi", "-"),  # an epi field map needs its direction
    ("anat-T1w__setter comment", "anat/T1w"),
    ("func-bold_task-rest_color-red", "-"),  # not an entity
])
def test_reproin_names(description: str, expected: str) -> None:
    name = bids_name(description)
    assert where(name) == expected
    if expected != "-":
        assert name.source == "ReproIn"


def test_the_projects_bidsmap_wins_and_matches_without_case() -> None:
    bidsmap = parse_bidsmap(json.dumps([
        {"series_description": "SAG 3D BRAVO site", "bidsname": "acq-bravo_T1w"},
        {"series_description": "Localizer", "bidsname": "acq-loc_T1w"},  # overrides the exclusion
        {"series_description": "rest run", "bidsname": "task-rest_acq-fast_bold"},
        {"series_description": "bad", "bidsname": "foo-bar_T1w"},
        {"series_description": "no name"}, "not an object",
    ]).encode())
    assert where(bids_name("sag 3d bravo SITE", "MR", bidsmap)) == "anat/acq-bravo_T1w"
    assert bids_name("SAG 3D BRAVO site", "MR", bidsmap).source == "bidsmap.json"
    assert where(bids_name("Localizer", "MR", bidsmap)) == "anat/acq-loc_T1w"
    assert where(bids_name("rest run", "MR", bidsmap)) == "func/task-rest_acq-fast_bold"
    assert "unknown BIDS entity" in bids_name("bad", "MR", bidsmap).reason
    assert where(bids_name("T2w", "MR", bidsmap)) == "anat/T2w"  # not in the map: the built-in table
    assert where(bids_name("Head 3mm", "CT", bidsmap)) == "-"


@pytest.mark.parametrize("data", [b"{not json", b'{"series_description": "x", "bidsname": "T1w"}', b"\xff\xfe"])
def test_a_bidsmap_that_is_not_the_list_format_is_refused(data: bytes) -> None:
    with pytest.raises(BidsmapError):
        parse_bidsmap(data)


def test_other_modalities_are_left_out_unless_the_bidsmap_names_them() -> None:
    assert bids_name("T1w MPRAGE", "CT").reason.startswith("modality CT")
    assert where(bids_name("PET FDG", "PT", parse_bidsmap(b'[{"series_description": "PET FDG", '
                                                         b'"bidsname": "anat/acq-pet_T1w"}]'))) == "anat/acq-pet_T1w"


def test_repeated_names_get_run_numbers_in_scan_order() -> None:
    names = [bids_name(d) for d in ("T1w MPRAGE", "rest", "Localizer", "rest", "func-bold_task-rest_run-7",
                                    "T2w", "rest")]
    assert [where(n) for n in number_runs(names)] == [
        "anat/T1w", "func/task-rest_run-1_bold", "-", "func/task-rest_run-2_bold", "func/task-rest_run-7_bold",
        "anat/T2w", "func/task-rest_run-3_bold"]


def test_labels_are_alphanumeric_and_unique() -> None:
    assert safe_label("DEMO_001") == "DEMO001" and safe_label("ça-va 1") == "ava1"
    assert unique_labels(["S_1", "S-1", "S1", "", "__"]) == ["S1", "S1x2", "S1x3", "x", "xx2"]


def test_file_stems_put_entities_in_bids_order() -> None:
    name = bids_name("func-bold_run-2_task-nback_acq-fast")
    assert name.stem("A1", "base") == "sub-A1_ses-base_task-nback_acq-fast_run-2_bold"
    assert name.stem("A1", None) == "sub-A1_task-nback_acq-fast_run-2_bold"
