"""REST path building: quoting, normalising, taking URIs apart."""

from __future__ import annotations

import pytest

from xnatfs.errors import ConfigError
from xnatfs.rest import paths

pytestmark = pytest.mark.unit


def test_labels_are_quoted_as_one_segment() -> None:
    assert paths.join("/data/projects", "P 1", "subjects", "a/b?c#d") == "/data/projects/P%201/subjects/a%2Fb%3Fc%23d"
    assert paths.join("/data/projects/", "X") == "/data/projects/X"


@pytest.mark.parametrize("bad", ["", ".", ".."])
def test_dot_and_empty_segments_are_refused(bad: str) -> None:
    with pytest.raises(ConfigError):
        paths.join("/data/projects", bad)


def test_file_paths_keep_slashes_and_quote_the_rest() -> None:
    assert paths.file_path("/data/experiments/E1/scans/1/resources/DICOM", "sub dir/1+1.dcm") == \
        "/data/experiments/E1/scans/1/resources/DICOM/files/sub%20dir/1%2B1.dcm"


@pytest.mark.parametrize("bad", ["/abs", "a/../b", "a//b", "", "./a", "a/"])
def test_relative_paths_cannot_escape(bad: str) -> None:
    with pytest.raises(ConfigError):
        paths.check_relpath(bad)


def test_backslashes_become_slashes() -> None:
    assert paths.check_relpath("a\\b.dcm") == "a/b.dcm"


@pytest.mark.parametrize(
    ("uri", "expected"),
    [
        ("/data/archive/projects/P1/", "/data/projects/P1"),
        ("/REST/projects/P1", "/data/projects/P1"),
        ("https://xnat.org/data/experiments/E1", "/data/experiments/E1"),
        ("/data/experiments/E1", "/data/experiments/E1"),
    ],
)
def test_normalize(uri: str, expected: str) -> None:
    assert paths.normalize(uri) == expected


def test_file_relpath_takes_the_part_after_files() -> None:
    uri = "/data/experiments/XNAT_E00001/scans/1/resources/10/files/sub/a%20b.dcm"
    assert paths.file_relpath(uri) == "sub/a b.dcm"
    with pytest.raises(ConfigError):
        paths.file_relpath("/data/projects/P1")


def test_prearchive_urls_get_the_data_prefix_once() -> None:
    assert paths.with_data_prefix("/prearchive/projects/P/20200101_000000000/S") == \
        "/data/prearchive/projects/P/20200101_000000000/S"
    assert paths.with_data_prefix("/data/prearchive/projects/P") == "/data/prearchive/projects/P"


def test_split_hierarchy() -> None:
    uri = "/data/archive/projects/P1/subjects/S%201/experiments/E1/scans/2/resources/DICOM/files/a/b.dcm"
    assert paths.split_hierarchy(uri) == [
        ("projects", "P1"), ("subjects", "S 1"), ("experiments", "E1"), ("scans", "2"),
        ("resources", "DICOM"), ("files", "a/b.dcm"),
    ]
    assert paths.split_hierarchy("/data/experiments/E1") == [("experiments", "E1")]
    with pytest.raises(ConfigError):
        paths.split_hierarchy("/xapi/schemas")
