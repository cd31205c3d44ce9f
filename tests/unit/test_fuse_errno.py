"""The errno table at the FUSE boundary: every error class reaches the kernel as its documented errno, with
one log line (ENOENT and errors that ask for it at debug level); anything unexpected is EIO."""

from __future__ import annotations

import errno
import logging

import mfusepy
import pytest

from xnatfs import errors
from xnatfs.fuseops import XNATOperations
from xnatfs.cache.blocks import repeated
from xnatfs.errors import ServerNotAnswering

pytestmark = pytest.mark.unit

#: docs/reliability.md, "Errors and errno"
TABLE = [
    (errors.ConfigError("bad"), errno.EINVAL),
    (errors.InsecureNetrcError("netrc"), errno.EACCES),
    (errors.MissingCredentialsError("none"), errno.EACCES),
    (errors.TransportError("refused"), errno.EIO),
    (errors.TLSError("certificate"), errno.EIO),
    (errors.RequestTimeout("slow"), errno.ETIMEDOUT),
    (errors.AuthenticationError("refused the credentials", status=401), errno.EACCES),
    (errors.PermissionDenied("403", status=403), errno.EACCES),
    (errors.NotFound("404", status=404), errno.ENOENT),
    (errors.Conflict("409", status=409), errno.EEXIST),
    (errors.ServerError("500", status=500), errno.EIO),
    (errors.AmbiguousLabelError("two"), errno.EINVAL),
    (errors.SchemaError("xsd"), errno.EIO),
    (errors.UploadError("refused"), errno.EIO),
    (errors.ChecksumMismatch("md5"), errno.EIO),
    (ServerNotAnswering("down 0.5 s ago"), errno.ETIMEDOUT),
    (repeated(errors.RequestTimeout("slow")), errno.ETIMEDOUT),  # a failed read remembered: said once
    (RuntimeError("a bug"), errno.EIO),
]


class Failing:
    """A filesystem whose every lookup raises ``error``."""

    def __init__(self, error: Exception) -> None:
        self.error = error

    def lookup(self, path: str) -> None:
        raise self.error

    listdir = lookup


@pytest.mark.parametrize(("error", "code"), TABLE, ids=[type(e).__name__ for e, _ in TABLE])
def test_each_error_reaches_the_kernel_as_its_errno_with_one_log_line(error: Exception, code: int,
                                                                       caplog: pytest.LogCaptureFixture) -> None:
    operations = XNATOperations(Failing(error))  # type: ignore[arg-type]
    with caplog.at_level(logging.DEBUG, logger="xnatfs.fuseops"), pytest.raises(mfusepy.FuseOSError) as caught:
        operations.getattr("/projects/P")
    assert caught.value.errno == code
    records = [r for r in caplog.records if r.name == "xnatfs.fuseops"]
    assert len(records) == 1 and "/projects/P" in records[0].getMessage()
    quiet = code == errno.ENOENT or getattr(error, "log_level", None) == logging.DEBUG
    assert records[0].levelno == (logging.DEBUG if quiet else logging.ERROR)
