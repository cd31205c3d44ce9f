"""What a writer is told when a file written into the mount is not sent: the words of ``<name>.error``
(the errors themselves are in :mod:`xnatfs.errors`).

Server answers are turned into sentences: XNAT's error pages are HTML ("Status page" and an
``<h3>`` with the reason), of which only the text is kept. Messages are redacted.
"""

from __future__ import annotations

import errno as _errno
import re

from xnatfs.errors import (
    AuthenticationError,
    Conflict,
    PermissionDenied,
    RequestTimeout,
    ResponseError,
    TransportError,
    XNATError,
)
from xnatfs.redact import redact_text
from xnatfs.vfs.spool import SpoolFile

_TITLE = re.compile(r"<title>.*?</title>", re.IGNORECASE | re.DOTALL)
_TAG = re.compile(r"<[^>]*>?")


def spool_failure_text(name: str, spool: SpoolFile) -> str:
    exc = spool.write_error
    assert exc is not None
    where = spool.path.parent
    if exc.errno in (_errno.ENOSPC, _errno.EDQUOT):
        return (f"{name} was not sent: the local spool disk ({where}) became full while the file was written. "
                f"The partial copy was removed to give the space back; free space there (or mount with "
                f"--spool-dir on a bigger disk) and copy the file again.")
    return (f"{name} was not sent: writing it to the local spool ({where}) failed ({exc.strerror}); the partial "
            f"copy was removed. Copy the file again.")


def default_failure_text(name: str, exc: XNATError) -> str:
    detail = redact_text(str(exc))
    if isinstance(exc, (AuthenticationError, PermissionDenied)):
        return f"{name} was not accepted: the server says you may not add data here ({detail})."
    if isinstance(exc, Conflict):
        return f"{name} was not accepted: {detail}."
    if isinstance(exc, RequestTimeout):
        return (f"{name} may not have been accepted: the server did not answer in time ({detail}). It may "
                f"still be working on it: look on the server before sending the file again.")
    if isinstance(exc, TransportError):
        return f"{name} was not sent: the server could not be reached ({detail}). Copy it again later."
    if isinstance(exc, ResponseError):
        status = f" (HTTP {exc.status})" if exc.status is not None else ""
        return f"{name} was refused by the server{status}: {server_words(exc)}"
    return f"{name} was not sent: {detail}"


def server_words(exc: ResponseError) -> str:
    """What the server said, as text: XNAT's error pages are HTML ("Status page" and an ``<h3>``)."""
    text = exc.excerpt or ""
    if "<" in text:
        text = _TITLE.sub(" ", text)
        text = _TAG.sub(" ", text)
    text = " ".join(text.split()).strip(" .")
    return (text + ".") if text else redact_text(str(exc))


__all__ = ["spool_failure_text", "default_failure_text", "server_words"]
