"""The one date parser (rest/dates.py) and file paths written the way XNAT reads them (rest/paths.py)."""

from __future__ import annotations

import calendar
from datetime import date, datetime, timedelta, timezone
from urllib.parse import unquote_plus

import pytest

from xnatfs.errors import ConfigError
from xnatfs.rest.dates import epoch_of, parse_date, parse_datetime, zone_of
from xnatfs.rest.paths import file_uri_from_listing, quote_relpath

pytestmark = pytest.mark.unit


@pytest.mark.parametrize(("text", "expected"), [
    ("2026-11-25 14:44:12.554", datetime(2026, 11, 25, 14, 44, 12, 554000)),
    ("2026-11-25T14:44:12", datetime(2026, 11, 25, 14, 44, 12)),
    ("2026-11-25 14:44:12.123456", datetime(2026, 11, 25, 14, 44, 12, 123456)),
    ("2024-01-15", datetime(2024, 1, 15)),
    ("02/19/2023", datetime(2023, 2, 19)),
    ("02/19/2023 10:11:12", datetime(2023, 2, 19, 10, 11, 12)),
    ("Wed Nov 25 14:44:29 UTC 2026", datetime(2026, 11, 25, 14, 44, 29)),
])
def test_every_shape_xnat_writes(text: str, expected: datetime) -> None:
    assert parse_datetime(text) == expected


def test_not_a_time() -> None:
    assert parse_datetime("yesterday") is None and parse_datetime(None) is None and epoch_of("") is None
    with pytest.raises(ValueError):
        parse_date("soon")
    assert parse_date("2023-09-27 17:31:21.352") == date(2023, 9, 27)


def test_a_java_date_is_read_in_its_own_zone_and_teaches_it() -> None:
    text = "Tue Sep 15 16:13:33 AEST 2020"
    assert epoch_of(text) == calendar.timegm((2020, 9, 15, 6, 13, 33))
    zone = zone_of(text)
    assert zone == timezone(timedelta(hours=10))
    # a listing time of the same server (no zone) read in the zone its documents name
    assert epoch_of("2020-09-15 16:13:33", zone) == calendar.timegm((2020, 9, 15, 6, 13, 33))
    assert zone_of("Tue Sep 15 16:13:33 XYZT 2020") is None and zone_of("2020-09-15") is None


NAMES = ["a,b", "report(1).pdf", "x=y@z;w", "it's!$", "a+b", "with space", "dir/sub dir/f+1.dcm", "plain.dcm"]


@pytest.mark.parametrize("name", NAMES)
def test_a_path_reads_back_as_xnat_reads_it(name: str) -> None:
    """XNAT's FileList: the path as sent, decoded (+ → space too) only if it holds %20 or %2B."""
    sent = quote_relpath(name)
    read = unquote_plus(sent) if ("%20" in sent or "%2B" in sent) else sent
    assert read == name


def test_names_without_space_or_plus_are_sent_as_they_are() -> None:
    assert quote_relpath("report(1),v=2@x;y'!$.pdf") == "report(1),v=2@x;y'!$.pdf"
    assert quote_relpath("a b+c") == "a%20b%2Bc"


def test_a_listing_uri_gives_the_path_and_a_download_path() -> None:
    assert file_uri_from_listing("/data/experiments/E/resources/R/files/a b+c.txt", "a b+c.txt") == (
        "a b+c.txt", "/data/experiments/E/resources/R/files/a%20b%2Bc.txt")
    assert file_uri_from_listing("/data/experiments/E/resources/R/files/x%2Cy", "x,y") == (
        "x,y", "/data/experiments/E/resources/R/files/x,y")
    with pytest.raises(ConfigError):
        file_uri_from_listing("/data/experiments/E/resources/R/files/../../etc/passwd", "passwd")
