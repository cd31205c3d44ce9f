"""The whole xnatfs exception tree.

Every class carries an ``errno`` so that the FUSE adapter needs no table of its own: it raises
``FuseOSError(exc.errno)`` for any :class:`XNATError`. HTTP statuses are mapped to classes in one
place, :func:`error_for_status`, which the transport calls.

Messages never contain credentials: URLs are redacted by the caller (see :mod:`xnatfs.redact`) and
response bodies are cut to a short excerpt, never a whole HTML page.

This module imports only the standard library.
"""

from __future__ import annotations

import errno as _errno

#: How much of a response body an exception keeps (characters).
BODY_EXCERPT_CHARS = 200


class XNATError(Exception):
    """Base of every error xnatfs raises on purpose."""

    errno: int = _errno.EIO


class ConfigError(XNATError):
    """Bad configuration: a malformed URL, an unreadable or missing config entry."""

    errno = _errno.EINVAL


class InsecureNetrcError(ConfigError):
    """The netrc file can be read by group or others, so we refuse to use it."""

    errno = _errno.EACCES


class MissingCredentialsError(ConfigError):
    """Credentials were expected (netrc named, or the server refused anonymous) but none apply."""

    errno = _errno.EACCES


class TransportError(XNATError):
    """The request did not complete: connection refused, reset, DNS failure, TLS failure."""

    errno = _errno.EIO


class TLSError(TransportError):
    """The server's TLS certificate could not be verified (or the TLS handshake failed)."""

    errno = _errno.EIO


class RequestTimeout(TransportError):
    """A connect or read timeout expired."""

    errno = _errno.ETIMEDOUT


class ResponseError(XNATError):
    """The server answered, but not with what we asked for.

    ``status`` is the HTTP status, ``url`` is already redacted, ``excerpt`` is at most
    :data:`BODY_EXCERPT_CHARS` characters of the body with whitespace collapsed.
    """

    errno = _errno.EIO

    def __init__(self, message: str, *, status: int | None = None, url: str = "", excerpt: str = "") -> None:
        self.status = status
        self.url = url
        self.excerpt = excerpt
        detail = message
        if status is not None:
            detail = f"{message} (HTTP {status}"
            detail += f" for {url})" if url else ")"
        elif url:
            detail = f"{message} ({url})"
        if excerpt:
            detail = f"{detail}: {excerpt}"
        super().__init__(detail)


class AuthenticationError(ResponseError):
    """401: the server refused the credentials (or asked for some)."""

    errno = _errno.EACCES


class PermissionDenied(ResponseError):
    """403: authenticated, but not allowed."""

    errno = _errno.EACCES


class NotFound(ResponseError, LookupError):
    """404, or a label/ID that no listing row matches."""

    errno = _errno.ENOENT


class Conflict(ResponseError):
    """409: the object exists already (or is in a state that forbids the change)."""

    errno = _errno.EEXIST


class ServerError(ResponseError):
    """5xx, any other unexpected status, or an HTML page where data was expected."""

    errno = _errno.EIO


class AmbiguousLabelError(XNATError, LookupError):
    """A label matches more than one object in a listing; index by ID instead."""

    errno = _errno.EINVAL


class SchemaError(XNATError):
    """The server's XSD schemas could not be parsed."""

    errno = _errno.EIO


class UploadError(XNATError):
    """An upload or import was refused, or a local check (corrupt zip) stopped it before sending."""

    errno = _errno.EIO


class ChecksumMismatch(XNATError):
    """A downloaded file's md5 differs from the server's digest."""

    errno = _errno.EIO


def excerpt_of(body: str | bytes | None, limit: int = BODY_EXCERPT_CHARS) -> str:
    """A short single-line excerpt of a response body, for messages and logs."""
    if not body:
        return ""
    if isinstance(body, bytes):
        body = body[: limit * 4].decode("utf-8", "replace")
    text = " ".join(body.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


_STATUS_CLASSES: dict[int, type[ResponseError]] = {
    401: AuthenticationError,
    403: PermissionDenied,
    404: NotFound,
    409: Conflict,
}


def error_for_status(status: int, *, url: str = "", body: str | bytes | None = None, message: str = "") -> ResponseError:
    """The exception for an unexpected HTTP status; ``url`` must already be redacted."""
    cls = _STATUS_CLASSES.get(status, ServerError)
    return cls(message or _DEFAULT_MESSAGES.get(cls, "Unexpected response"), status=status, url=url, excerpt=excerpt_of(body))


_DEFAULT_MESSAGES: dict[type[ResponseError], str] = {
    AuthenticationError: "The server refused the credentials",
    PermissionDenied: "Permission denied",
    NotFound: "Not found",
    Conflict: "Conflict",
    ServerError: "Server error",
}

__all__ = [
    "XNATError", "ConfigError", "InsecureNetrcError", "MissingCredentialsError", "TransportError",
    "RequestTimeout", "TLSError", "ResponseError", "AuthenticationError", "PermissionDenied", "NotFound",
    "Conflict", "ServerError", "AmbiguousLabelError", "SchemaError", "UploadError",
    "ChecksumMismatch", "error_for_status", "excerpt_of", "BODY_EXCERPT_CHARS",
]


class ServerUnreachable(TransportError):
    """Not sent: the server failed in transport (refused, reset, TLS) moments ago, so the request fails at
    once instead of waiting for its retries again (``Settings.unreachable_hold``; see
    :mod:`xnatfs.transport.reachability`)."""

    errno = _errno.EIO


class ServerNotAnswering(ServerUnreachable):
    """Not sent: a request to the server timed out moments ago (a hung server); ETIMEDOUT like that
    timeout, without waiting for another one."""

    errno = _errno.ETIMEDOUT


__all__ += ["ServerUnreachable", "ServerNotAnswering"]
