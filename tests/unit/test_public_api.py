"""The public facade is deliberate: ``xnatfs.__all__`` is pinned, and every name in it exists."""

from __future__ import annotations

import inspect
import subprocess
import sys

import pytest

import xnatfs

pytestmark = pytest.mark.unit

EXPECTED = {
    "__version__", "connect", "Connection",
    "AmbiguousLabelError", "AuthenticationError", "ChecksumMismatch", "ConfigError", "Conflict",
    "InsecureNetrcError", "MissingCredentialsError", "NotFound", "PermissionDenied", "RequestTimeout",
    "ResponseError", "SchemaError", "ServerError", "TLSError", "TransportError", "UploadError", "XNATError",
}


def test_all_is_pinned() -> None:
    assert set(xnatfs.__all__) == EXPECTED
    assert len(xnatfs.__all__) == len(set(xnatfs.__all__))


def test_every_public_name_exists() -> None:
    for name in xnatfs.__all__:
        assert getattr(xnatfs, name) is not None, name


def test_error_classes_share_one_root() -> None:
    for name in EXPECTED - {"__version__", "connect", "Connection"}:
        assert issubclass(getattr(xnatfs, name), xnatfs.XNATError), name


def test_connect_signature() -> None:
    params = inspect.signature(xnatfs.connect).parameters
    assert list(params)[:3] == ["url", "user", "password"]
    for keyword in ("netrc_file", "jsession", "verify", "timeout"):
        assert params[keyword].kind is inspect.Parameter.KEYWORD_ONLY


def test_import_xnatfs_connect_loads_neither_fuse_nor_werkzeug() -> None:
    code = ("import sys, xnatfs; xnatfs.connect; "
            "bad = [m for m in ('mfusepy', 'werkzeug', 'xnatfs.emulator') if m in sys.modules]; "
            "print(bad); sys.exit(1 if bad else 0)")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr
