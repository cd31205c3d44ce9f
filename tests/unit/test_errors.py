"""Status → exception class → errno, and bounded, credential-free messages."""

from __future__ import annotations

import errno

import pytest

from xnatfs import errors
from xnatfs.redact import redact_headers, redact_text, redact_url

pytestmark = pytest.mark.unit


@pytest.mark.parametrize(
    ("status", "cls", "code"),
    [
        (401, errors.AuthenticationError, errno.EACCES),
        (403, errors.PermissionDenied, errno.EACCES),
        (404, errors.NotFound, errno.ENOENT),
        (409, errors.Conflict, errno.EEXIST),
        (500, errors.ServerError, errno.EIO),
        (502, errors.ServerError, errno.EIO),
        (418, errors.ServerError, errno.EIO),
    ],
)
def test_status_maps_to_class_and_errno(status: int, cls: type, code: int) -> None:
    exc = errors.error_for_status(status, url="http://x/data/projects")
    assert type(exc) is cls
    assert exc.errno == code
    assert exc.status == status
    assert "HTTP %d" % status in str(exc)


def test_timeout_is_etimedout_and_a_transport_error() -> None:
    assert errors.RequestTimeout.errno == errno.ETIMEDOUT
    assert issubclass(errors.RequestTimeout, errors.TransportError)


def test_not_found_is_a_lookup_error() -> None:
    assert issubclass(errors.NotFound, LookupError)


def test_body_excerpt_is_short_and_single_line() -> None:
    page = "<html>\n<body>" + "x" * 10_000 + "</body></html>"
    exc = errors.error_for_status(500, url="http://x/", body=page)
    assert len(exc.excerpt) <= errors.BODY_EXCERPT_CHARS
    assert "\n" not in str(exc)
    assert len(str(exc)) < 400


def test_netrc_error_is_a_config_error() -> None:
    assert issubclass(errors.InsecureNetrcError, errors.ConfigError)


def test_redact_url_hides_password_and_tokens() -> None:
    url = "https://alice:s3cret@xnat.example.org/data/projects?alias=tok123&format=json"
    out = redact_url(url)
    assert "s3cret" not in out and "tok123" not in out
    assert "alice" in out and "format=json" in out


def test_redact_text_and_headers() -> None:
    text = "GET http://bob:pw9@h/data failed; Cookie JSESSIONID=ABCDEF0123"
    out = redact_text(text, secrets=("pw9",))
    assert "pw9" not in out and "ABCDEF0123" not in out
    assert redact_headers({"Authorization": "Basic Zm9v", "Accept": "x"}) == {"Authorization": "***", "Accept": "x"}
