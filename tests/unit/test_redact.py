"""Redaction of URLs, headers and free text: secrets go, the useful parts stay."""

from __future__ import annotations

import pytest

from xnatfs.redact import REDACTED, redact_headers, redact_text, redact_url

pytestmark = pytest.mark.unit


@pytest.mark.parametrize(
    ("url", "secret", "kept"),
    [
        ("https://u:pw123@h.org/data", "pw123", "https://u:"),
        ("http://h.org/data/services/tokens?alias=aa11&secret=bb22", "bb22", "h.org/data/services/tokens"),
        ("http://h.org/x?JSESSIONID=ABCDEF&format=json", "ABCDEF", "format=json"),
        ("http://h.org/x?password=p%40ss&columns=ID,label", "p%40ss", "columns=ID,label"),
    ],
)
def test_redact_url(url: str, secret: str, kept: str) -> None:
    out = redact_url(url)
    assert secret not in out
    assert kept in out
    assert REDACTED in out


def test_redact_url_leaves_plain_urls_alone() -> None:
    url = "https://h.org/data/projects/P1/subjects?columns=ID%2Clabel&format=json"
    assert redact_url(url) == url


def test_redact_headers_is_case_insensitive_and_a_copy() -> None:
    headers = {"cookie": "JSESSIONID=1", "Set-Cookie": "a=b", "Content-Type": "text/plain"}
    out = redact_headers(headers)
    assert out == {"cookie": REDACTED, "Set-Cookie": REDACTED, "Content-Type": "text/plain"}
    assert headers["cookie"] == "JSESSIONID=1"


def test_redact_text_masks_explicit_secrets_and_sessions() -> None:
    text = "login as admin with s3cr3t failed; cookie jsessionid=0123ABCD; see https://a:b@c/d"
    out = redact_text(text, secrets=("s3cr3t",))
    assert "s3cr3t" not in out and "0123ABCD" not in out and "a:b@" not in out
    assert "admin" in out
