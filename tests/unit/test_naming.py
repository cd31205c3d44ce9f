"""Safe, reversible file names for XNAT labels; collisions; probe names."""

from __future__ import annotations

import random

import pytest

from xnatfs.vfs.naming import decode_name, encode_name, is_probe_name, split_path, unique_names

pytestmark = pytest.mark.unit


@pytest.mark.parametrize("label, name", [
    ("DEMO_001", "DEMO_001"),
    ("T1w MPRAGE", "T1w MPRAGE"),
    ("ünïcødé-λ", "ünïcødé-λ"),
    ("a/b", "a%2Fb"),
    ("nul\0byte", "nul%00byte"),
    (".", "%2E"),
    ("..", "%2E%2E"),
    ("...", "..."),
    (".hidden", ".hidden"),
    ("50%", "50%"),
    ("a%2Fb", "a%252Fb"),
    ("%u0041", "%25u0041"),
    ("bad\udcffbyte", "bad%FFbyte"),
    ("lone\ud800", "lone%uD800"),
])
def test_labels_that_are_not_file_names_are_escaped(label: str, name: str) -> None:
    assert encode_name(label) == name
    assert decode_name(name) == label


def test_encoded_names_are_valid_file_names_and_round_trip() -> None:
    alphabet = ["a", "/", "\0", "%", ".", "2", "F", "u", "0", "\udc80", "\udcff", "\ud801", "é", " "]
    rng = random.Random(6)
    for _ in range(3000):
        label = "".join(rng.choice(alphabet) for _ in range(rng.randint(1, 8)))
        name = encode_name(label)
        assert "/" not in name and "\0" not in name and name not in (".", "..", "")
        name.encode("utf-8")  # no surrogates left: every name is valid UTF-8
        assert decode_name(name) == label


def test_names_that_decode_to_the_same_label_are_not_produced_twice() -> None:
    labels = ["a/b", "a%2Fb", "a%252Fb"]
    names = [encode_name(label) for label in labels]
    assert len(set(names)) == 3


def test_colliding_labels_all_get_their_id_appended() -> None:
    names = unique_names([("T1", "E1"), ("T2", "E2"), ("T1", "E3")])
    assert names == ["T1~E1", "T2", "T1~E3"]


def test_empty_label_is_named_by_its_id_and_repeated_ids_are_numbered() -> None:
    assert unique_names([("", "42"), ("x", "1")]) == ["42", "x"]
    # "a~1" is a label of its own, so it keeps its name; the two "a" with the same ID are numbered
    assert unique_names([("a", "1"), ("a", "1"), ("a~1", "9")]) == ["a~1~2", "a~1~3", "a~1"]


def test_collision_after_escaping_is_resolved() -> None:
    # "." escapes to "%2E", the same name a literal "%2E"-looking label cannot take (it is escaped)
    names = unique_names([(".", "1"), ("%2E", "2")])
    assert names == ["%2E", "%252E"]


@pytest.mark.parametrize("name", [".Trash", ".Trash-1000", ".DS_Store", "._T1.dcm", ".hidden", "desktop.ini",
                                  "Desktop.ini", "autorun.inf", ".git", "__pycache__"])
def test_probe_names_are_recognised(name: str) -> None:
    assert is_probe_name(name)


@pytest.mark.parametrize("name", ["DEMO", "1.dcm", "xnat.json", ".gitignore", "trash", "DICOM"])
def test_ordinary_names_are_not_probes(name: str) -> None:
    assert not is_probe_name(name)


def test_split_path() -> None:
    assert split_path("/") == []
    assert split_path("/a//b/") == ["a", "b"]


# -- issue 18, row 7: control characters and over-long names ---------------------------------------------

@pytest.mark.parametrize("label, name", [
    ("a\nb", "a%0Ab"), ("a\rb", "a%0Db"), ("a\tb", "a%09b"), ("\x1b[0m", "%1B[0m"), ("x\x7f", "x%7F"),
    ("c1\x85", "c1%u0085"), ("evil\u202etxt.exe", "evil%u202Etxt.exe"), ("\u2066x\u2069", "%u2066x%u2069"),
    ("\u200f\u061c", "%u200F%u061C"),
])
def test_control_and_bidi_characters_get_reversible_escapes(label: str, name: str) -> None:
    from xnatfs.vfs.naming import decode_name, encode_name

    assert encode_name(label) == name
    assert decode_name(name) == label


def test_a_name_over_255_bytes_is_shortened_with_its_id() -> None:
    from xnatfs.vfs.naming import unique_names

    long_ascii, long_wide = "L" * 70_000, "é" * 200  # 400 bytes in UTF-8
    names = unique_names([(long_ascii, "XNAT_S1"), (long_wide, "XNAT_S2"), ("short", "XNAT_S3")])
    assert names[2] == "short"
    for name, ident, start in zip(names[:2], ("XNAT_S1", "XNAT_S2"), ("L", "é")):
        assert len(name.encode()) <= 255 and name.endswith(f"…~{ident}") and name.startswith(start * 50)
