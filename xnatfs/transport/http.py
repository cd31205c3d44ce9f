"""The requests Session every xnatfs connection uses, and the one place requests' exceptions are translated.

What the session guarantees:

- **Retries** (urllib3 ``Retry``): only idempotent verbs (GET, HEAD, PUT, DELETE, OPTIONS), on
  connection errors and on 502/503/504, with exponential backoff, plus once on a connection the server
  dropped mid-request (a pooled keep-alive connection it had just closed). A read *timeout* is never
  retried: a retry would double the time a caller waits past its timeout. POST is never retried (the
  import service is not idempotent). A retried PUT rewinds a seekable body.
- **No implicit netrc**: ``session.auth`` is a no-op auth object, so requests does not read
  ``~/.netrc`` on its own (it would bypass our permission check, and send Basic on every request).
- **Pooling** sized for a multi-threaded FUSE daemon.

:func:`translate_errors` turns ``requests``/``urllib3`` exceptions into :mod:`xnatfs.errors`, with the
URL redacted. Timeouts are passed per call by :mod:`xnatfs.transport.session`.
"""

from __future__ import annotations

import contextlib
import importlib.metadata
import socket
from collections.abc import Iterator

import requests
import urllib3
from requests.adapters import HTTPAdapter
from urllib3.util.retry import Retry

from xnatfs.errors import RequestTimeout, TransportError
from xnatfs.redact import redact_text, redact_url
from xnatfs.settings import RetryPolicy

IDEMPOTENT_METHODS = frozenset({"GET", "HEAD", "PUT", "DELETE", "OPTIONS"})
POOL_SIZE = 16


def _package_version() -> str:
    try:
        return importlib.metadata.version("xnatfs")
    except importlib.metadata.PackageNotFoundError:
        return "dev"


USER_AGENT = f"xnatfs/{_package_version()} (python-requests/{requests.__version__})"


class NoImplicitAuth(requests.auth.AuthBase):
    """Leaves requests untouched; being set stops requests from applying ``~/.netrc`` itself."""

    def __call__(self, request: requests.PreparedRequest) -> requests.PreparedRequest:
        return request

    def __repr__(self) -> str:
        return "NoImplicitAuth()"


class IdempotentRetry(Retry):
    """urllib3's Retry, except that a read timeout is raised at once instead of being retried."""

    def increment(self, method: str | None = None, url: str | None = None, response: object = None,
                  error: Exception | None = None, _pool: object = None, _stacktrace: object = None) -> Retry:
        if isinstance(error, urllib3.exceptions.ReadTimeoutError):
            raise error
        return super().increment(method, url, response, error, _pool, _stacktrace)  # type: ignore[arg-type]


def make_retry(policy: RetryPolicy) -> Retry:
    """Retry for idempotent verbs on connection errors, one dropped connection, ``policy.status_forcelist``."""
    return IdempotentRetry(
        total=policy.total,
        connect=policy.total,
        read=1,
        status=policy.total,
        other=0,
        backoff_factor=policy.backoff_factor,
        status_forcelist=policy.status_forcelist,
        allowed_methods=IDEMPOTENT_METHODS,
        raise_on_status=False,
        respect_retry_after_header=True,
    )


def build_http_session(policy: RetryPolicy, *, verify: bool | str = True) -> requests.Session:
    """A requests Session with retries for idempotent verbs, our User-Agent and no implicit netrc."""
    session = requests.Session()
    adapter = HTTPAdapter(max_retries=make_retry(policy), pool_connections=POOL_SIZE, pool_maxsize=POOL_SIZE)
    session.mount("http://", adapter)
    session.mount("https://", adapter)
    session.auth = NoImplicitAuth()
    session.verify = verify
    session.headers["User-Agent"] = USER_AGENT
    if verify is False:
        urllib3.disable_warnings(urllib3.exceptions.InsecureRequestWarning)
    return session


def _is_timeout(exc: BaseException) -> bool:
    """True for a timeout wrapped anywhere in requests' and urllib3's exception chains."""
    seen: set[int] = set()
    pending: list[object] = [exc]
    while pending:
        item = pending.pop()
        if not isinstance(item, BaseException) or id(item) in seen:
            continue
        seen.add(id(item))
        if isinstance(item, (requests.Timeout, urllib3.exceptions.TimeoutError, socket.timeout, TimeoutError)):
            return True
        pending.extend(item.args)
        pending.extend([item.__cause__, item.__context__, getattr(item, "reason", None)])
    return False


@contextlib.contextmanager
def translate_errors(method: str, url: str) -> Iterator[None]:
    """Turn requests/urllib3/socket failures inside the block into TransportError subclasses."""
    try:
        yield
    except (requests.RequestException, urllib3.exceptions.HTTPError, OSError) as exc:
        if isinstance(exc, (FileNotFoundError, PermissionError, IsADirectoryError)):
            raise  # local file errors from an upload body are not transport failures
        where = f"{method} {redact_url(url)}"
        detail = redact_text(str(exc))[:300]
        if _is_timeout(exc):
            raise RequestTimeout(f"Timed out: {where}: {detail}") from exc
        raise TransportError(f"Request failed: {where}: {detail}") from exc


__all__ = ["build_http_session", "make_retry", "translate_errors", "NoImplicitAuth", "IDEMPOTENT_METHODS", "USER_AGENT"]
