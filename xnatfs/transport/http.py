"""The requests Session every xnatfs connection uses, and the one place requests' exceptions are translated.

What the session guarantees:

- **Retries** (urllib3 ``Retry``): only idempotent verbs (GET, HEAD, PUT, DELETE, OPTIONS), on
  connection errors and on 502/503/504, with exponential backoff, plus once on a connection the server
  dropped mid-request (a pooled keep-alive connection it had just closed). A ``Retry-After`` longer
  than ``RetryPolicy.max_retry_after`` ends the retries; a retried answer's body is not read. A
  *timeout* (read, or connect: a host that drops packets) is never retried: a retry would double the
  time a caller waits past its timeout (the kernel already resends a connection's SYN within the
  connect timeout). A refused connection is retried. POST is
  never retried (the import service is not idempotent). A retried PUT rewinds a seekable body.
- **No implicit netrc**: ``session.auth`` is a no-op auth object, so requests does not read
  ``~/.netrc`` on its own (it would bypass our permission check, and send Basic on every request).
- **Redirects stay on one origin** (:class:`OriginBoundSession`): a redirect to another scheme, host
  or port is not followed, so neither the ``Authorization`` header nor the ``JSESSIONID`` cookie
  (cookies are not scoped by port) ever reaches another server; the caller gets the 3xx answer and
  turns it into a clear error. The body of a followed redirect is read only up to
  :data:`REDIRECT_BODY_LIMIT`.
- **TLS**: certificates are verified unless ``verify=False``; ``verify`` may name a CA bundle. No
  process-wide warning filter is changed.
- **Pooling** sized for a multi-threaded FUSE daemon.

:func:`translate_errors` turns ``requests``/``urllib3`` exceptions into :mod:`xnatfs.errors`, with the
URL redacted (TLS failures become :class:`~xnatfs.errors.TLSError` with the fix in the message).
Timeouts are passed per call by :mod:`xnatfs.transport.session`. This module and
:mod:`xnatfs.transport.responses` are the only ones that touch requests objects; what leaves the
package is :class:`~xnatfs.transport.responses.Response`, :class:`~xnatfs.transport.responses.Stream`
and :mod:`xnatfs.errors` classes.
"""

from __future__ import annotations

import contextlib
import datetime
import email.utils
import http.client
import importlib.metadata
import socket
import ssl
from collections.abc import Iterator
from urllib.parse import urljoin, urlsplit

import requests
import urllib3
from urllib3.util.retry import Retry

from xnatfs.errors import RequestTimeout, TLSError, TransportError
from xnatfs.redact import redact_text, redact_url
from xnatfs.settings import RetryPolicy
from xnatfs.transport.deadline import DeadlineAdapter

IDEMPOTENT_METHODS = frozenset({"GET", "HEAD", "PUT", "DELETE", "OPTIONS"})
POOL_SIZE = 16
#: How much of a (same-origin) redirect answer's body is read before it is dropped.
REDIRECT_BODY_LIMIT = 64 * 1024
_DEFAULT_PORTS = {"http": 80, "https": 443}


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
    """urllib3's Retry, except that

    - a read or connect timeout is raised at once instead of being retried (urllib3 2 derives
      ``NewConnectionError``, a refused connection, from ``ConnectTimeoutError``: that one is retried);
    - an answer whose ``Retry-After`` asks for more than ``retry_after_max`` seconds is not retried
      (urllib3 would sleep up to six hours on the server's word);
    - the body of an answer that is retried (a 503…) is dropped unread: urllib3 would read it whole
      into memory first ("drain"), however large or endless the server makes it.
    """

    def increment(self, method: str | None = None, url: str | None = None, response: object = None,
                  error: Exception | None = None, _pool: object = None, _stacktrace: object = None) -> Retry:
        if isinstance(error, urllib3.exceptions.ReadTimeoutError) or (
                isinstance(error, urllib3.exceptions.ConnectTimeoutError)
                and not isinstance(error, urllib3.exceptions.NewConnectionError)):
            raise error
        if isinstance(response, urllib3.response.BaseHTTPResponse) and self.respect_retry_after_header:
            wanted = requested_wait(response.headers.get("Retry-After"))
            if wanted is not None and wanted > self.retry_after_max:
                raise urllib3.exceptions.MaxRetryError(
                    _pool, url or "", urllib3.exceptions.ResponseError(  # type: ignore[arg-type]
                        f"the server asks to retry after {wanted:.0f} s; not waiting that long"))
        retry = super().increment(method, url, response, error, _pool, _stacktrace)  # type: ignore[arg-type]
        if isinstance(response, urllib3.response.BaseHTTPResponse):
            response.close()  # retried: its connection is dropped rather than drained
        return retry


def origin_of(url: str) -> tuple[str, str, int | None]:
    """``(scheme, host, port)`` of ``url``, lower-cased, with the scheme's default port filled in."""
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    try:
        port = parts.port or _DEFAULT_PORTS.get(scheme)
    except ValueError:  # a malformed port: matches no origin
        port = -1
    return scheme, (parts.hostname or "").lower(), port


def redirect_target(response: requests.Response) -> str:
    """The absolute URL a redirect answer points to ("" if it has no ``Location``)."""
    location = response.headers.get("Location", "")
    return urljoin(response.url, location) if location else ""


class OriginBoundSession(requests.Session):
    """A requests Session that follows redirects only within the origin of the redirecting answer."""

    def get_redirect_target(self, resp: requests.Response) -> str | None:
        target = super().get_redirect_target(resp)
        if target is None:
            return None
        if origin_of(urljoin(resp.url, target)) != origin_of(resp.url):
            return None  # not followed: the caller sees the 3xx and reports it
        if resp._content is False and resp.raw is not None:  # requests reads it whole otherwise
            with contextlib.suppress(Exception):
                resp._content = resp.raw.read(REDIRECT_BODY_LIMIT, decode_content=False) or b""
                resp._content_consumed = True
        return target


def requested_wait(value: str | None) -> float | None:
    """The seconds a ``Retry-After`` header asks for (a number or an HTTP date), or None."""
    if value is None:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=datetime.timezone.utc)
    return max(0.0, (when - datetime.datetime.now(datetime.timezone.utc)).total_seconds())


def make_retry(policy: RetryPolicy) -> Retry:
    """Retry for idempotent verbs on connection errors, one dropped connection, ``policy.status_forcelist``."""
    status = policy.total if policy.status_retries is None else policy.status_retries
    return IdempotentRetry(
        total=max(policy.total, status),
        connect=policy.total,
        read=1,
        status=status,
        other=0,
        backoff_factor=policy.backoff_factor,
        backoff_max=policy.backoff_max,
        status_forcelist=policy.status_forcelist,
        allowed_methods=IDEMPOTENT_METHODS,
        raise_on_status=False,
        respect_retry_after_header=True,
        retry_after_max=policy.max_retry_after,
    )


def build_http_session(policy: RetryPolicy, *, verify: bool | str = True) -> requests.Session:
    """A requests Session with retries for idempotent verbs, our User-Agent, no implicit netrc, and
    redirects followed only within one origin. ``verify``: True, False, or a CA bundle path."""
    session = OriginBoundSession()
    adapter = DeadlineAdapter(max_retries=make_retry(policy), pool_connections=POOL_SIZE, pool_maxsize=POOL_SIZE)
    session.mount("http://", adapter)
    session.mount("https://", adapter)
    session.auth = NoImplicitAuth()
    session.verify = verify
    session.headers["User-Agent"] = USER_AGENT
    return session


def _is_timeout(exc: BaseException) -> bool:
    """True for a timeout wrapped anywhere in requests' and urllib3's exception chains.

    urllib3 2 derives ``NewConnectionError`` (connection refused, no route, DNS) from
    ``ConnectTimeoutError``, and requests then raises ``ConnectTimeout``: that is a failure to connect,
    not a timeout (a real connect timeout is a plain ``ConnectTimeoutError``).
    """
    if _find(exc, (urllib3.exceptions.NewConnectionError,)) is not None:
        return False
    return _find(exc, (requests.Timeout, urllib3.exceptions.TimeoutError, socket.timeout, TimeoutError)) is not None


def _tls_failure(exc: BaseException) -> BaseException | None:
    """The TLS handshake or certificate failure wrapped in ``exc`` (the innermost ssl error), or None."""
    if _find(exc, (requests.exceptions.SSLError, urllib3.exceptions.SSLError, ssl.SSLError)) is None:
        return None
    return _find(exc, (ssl.SSLError,)) or exc


def _find(exc: BaseException, kinds: tuple[type[BaseException], ...]) -> BaseException | None:
    """``exc`` or the first thing it wraps (args, cause, context, ``reason``) that is one of ``kinds``."""
    seen: set[int] = set()
    pending: list[object] = [exc]
    while pending:
        item = pending.pop()
        if not isinstance(item, BaseException) or id(item) in seen:
            continue
        seen.add(id(item))
        if isinstance(item, kinds):
            return item
        pending.extend(item.args)
        pending.extend([item.__cause__, item.__context__, getattr(item, "reason", None)])
    return None


@contextlib.contextmanager
def translate_errors(method: str, url: str) -> Iterator[None]:
    """Turn requests/urllib3/http.client/socket failures inside the block into TransportError subclasses.

    Every place the transport touches the network (sending, reading a body whole, streaming it, reading
    an error answer's excerpt) runs inside this block: it is what keeps requests' and urllib3's
    exceptions from crossing the transport boundary.
    """
    try:
        yield
    except (requests.RequestException, urllib3.exceptions.HTTPError, http.client.HTTPException, OSError) as exc:
        if isinstance(exc, (FileNotFoundError, PermissionError, IsADirectoryError)):
            raise  # local file errors from an upload body are not transport failures
        where = f"{method} {redact_url(url)}"
        if _is_timeout(exc):
            raise RequestTimeout(f"Timed out: {where}: {redact_text(str(exc))[:300]}") from exc
        tls = _tls_failure(exc)
        if tls is not None:
            raise TLSError(f"{_tls_words(tls, url)} ({where})") from exc
        raise TransportError(f"{_failure_words(exc, url)} ({where})") from exc


def _host_port(url: str) -> tuple[str, str]:
    parts = urllib3.util.parse_url(url)
    return parts.host or "", str(parts.port or {"https": 443}.get(parts.scheme or "", 80))


def _tls_words(tls: BaseException, url: str) -> str:
    """What a TLS failure means for the user: not TLS at all, an unknown certificate authority, or other."""
    host, port = _host_port(url)
    reason = str(getattr(tls, "reason", "") or tls)
    if any(mark in reason.upper() for mark in ("WRONG_VERSION_NUMBER", "RECORD_LAYER_FAILURE", "HTTP_REQUEST",
                                               "PACKET_LENGTH_TOO_LONG", "UNKNOWN_PROTOCOL")):
        return (f"The server at {host}:{port} does not speak TLS (https): if it serves plain HTTP, use "
                f"http://{host}:{port}")
    if "CERTIFICATE_VERIFY_FAILED" in reason.upper() or isinstance(tls, ssl.SSLCertVerificationError):
        detail = redact_text(str(tls))[:200]
        return (f"The certificate of {host} is not trusted ({detail}). If it is signed by a private certificate "
                f"authority, pass ca_bundle='/path/to/ca.pem' (command line: --ca-bundle FILE); verify=False "
                f"(--insecure) turns checking off")
    return f"TLS failed with {host}:{port}: {redact_text(reason)[:200]}"


def _failure_words(exc: BaseException, url: str) -> str:
    """A transport failure in words (the name does not resolve, connection refused, reset…), without
    urllib3's pool and retry internals."""
    host, port = _host_port(url)
    if _find(exc, (socket.gaierror, urllib3.exceptions.NameResolutionError)) is not None:
        return f"Cannot find the server {host}: its name does not resolve (check the URL and the network)"
    if _find(exc, (ConnectionRefusedError,)) is not None:
        return f"Cannot connect to {host}:{port}: connection refused (is the server running, and is the port right?)"
    if _find(exc, (ConnectionResetError, http.client.RemoteDisconnected, BrokenPipeError)) is not None:
        return f"The server at {host}:{port} closed the connection before answering"
    os_error = _find(exc, (OSError,))
    if isinstance(os_error, OSError) and os_error.strerror:
        return f"Cannot reach {host}:{port}: {os_error.strerror}"
    return f"Request to {host}:{port} failed: {redact_text(str(exc))[:300]}"


__all__ = ["build_http_session", "make_retry", "requested_wait", "translate_errors", "NoImplicitAuth", "OriginBoundSession", "origin_of",
           "redirect_target", "IDEMPOTENT_METHODS", "USER_AGENT", "REDIRECT_BODY_LIMIT"]
