"""The whole xnatfs exception tree.

Every class carries an ``errno`` so that the FUSE adapter needs no table of its own: it raises
``FuseOSError(exc.errno)`` for any :class:`XNATError`. HTTP statuses are mapped to classes in one
place, :func:`error_for_status`, which the transport calls.

Messages never contain credentials: URLs are redacted by the caller (see :mod:`xnatfs.redact`) and
response bodies are cut to a short excerpt, never a whole HTML page.

Every exception class of xnatfs is defined here, and each class has one errno (never chosen at run
time): code that needs another errno raises another class. Classes may set ``log_level``: the FUSE
adapter logs an error once at that level (a refusal the mount documents is not a fault).

This module imports only the standard library.
"""

from __future__ import annotations

import errno as _errno
import logging

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


class FileChanged(ServerError):
    """A file's size on the server is no longer the size it was listed with (it was replaced since):
    its bytes cannot be read against the old listing. Like NFS's stale handle: reopen after listing
    again."""

    errno = _errno.ESTALE


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


class NotImportable(UploadError):
    """A file that cannot be sent to the import service (not a zip, damaged, no DICOM); ``str(exc)``
    is a sentence for the user. Raised by the local check, before anything is sent."""


# -- the mount ------------------------------------------------------------------------------------


class MountError(XNATError):
    """The mount could not be set up (the message says why and what to do)."""


class ReadOnlyError(XNATError):
    """A change on a read-only mount."""

    errno = _errno.EROFS
    log_level = logging.DEBUG


class IsADirectory(XNATError):
    """A directory opened for reading as a file."""

    errno = _errno.EISDIR


class NotADirectory(XNATError):
    """A file listed, or removed with rmdir, as if it were a directory."""

    errno = _errno.ENOTDIR


class Refused(XNATError):
    """An operation the mount does not allow here (its subclasses say which kind). Logged at INFO: a
    refusal is the mount working as documented, not a fault."""

    errno = _errno.EACCES
    log_level = logging.INFO


class NotAllowed(Refused):
    """Nothing may be written or removed here (a view, a note, a project folder)."""

    errno = _errno.EACCES


class QuietlyNotAllowed(NotAllowed):
    """An ``access(W_OK)`` probe answered no: tools ask this all the time, so it is logged at DEBUG."""

    log_level = logging.DEBUG


class NotPermitted(Refused):
    """An operation XNAT has no counterpart for (rename, links, modes, owners, partial rewrites)."""

    errno = _errno.EPERM


class NotSupported(Refused):
    """A feature the filesystem does not have (extended attributes that XNAT does not keep)."""

    errno = _errno.ENOTSUP


class AlreadyExists(Refused):
    """A name that is taken already (``mkdir`` of an existing folder)."""

    errno = _errno.EEXIST


class NotEmpty(Refused):
    """``rmdir`` of a folder that has entries."""

    errno = _errno.ENOTEMPTY


class ConversionFailed(XNATError):
    """A derived file (a NIfTI image of a scan) could not be made; the view's ``conversion.log`` says why."""

    errno = _errno.EIO


class UploadFailed(XNATError):
    """A file written into the mount was not accepted (close() fails); the message is the ``.error`` text."""

    errno = _errno.EIO
    log_level = logging.DEBUG  # the outbox logged the reason already


class NotSent(XNATError):
    """A local reason not to send a file written into the mount; ``str(exc)`` is a sentence for the user."""


class SpoolLost(NotSent):
    """Data written to the spool was lost (a failed write): the file is incomplete."""


class Busy(XNATError):
    """The file is being sent (or written by someone else) and cannot be changed now."""

    errno = _errno.EBUSY
    log_level = logging.INFO


class Gone(XNATError):
    """I/O on a handle whose file was already sent."""

    errno = _errno.EIO


class SpoolWriteError(XNATError):
    """A write to the local spool failed (the writer's data is incomplete)."""

    errno = _errno.EIO
    log_level = logging.DEBUG  # logged once where it happened

    def __init__(self, exc: OSError) -> None:
        super().__init__(f"writing to the local spool failed: {exc.strerror}")
        self.cause_errno = exc.errno


class SpoolFull(SpoolWriteError):
    """The spool's disk is full (or over quota)."""

    errno = _errno.ENOSPC


def spool_write_error(exc: OSError) -> SpoolWriteError:
    """The error for a failed spool write: :class:`SpoolFull` for a full disk, else :class:`SpoolWriteError`."""
    return SpoolFull(exc) if exc.errno in (_errno.ENOSPC, _errno.EDQUOT) else SpoolWriteError(exc)


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
    "ChecksumMismatch", "NotImportable", "MountError", "ReadOnlyError", "IsADirectory", "NotADirectory", "Refused",
    "NotAllowed", "QuietlyNotAllowed", "NotPermitted", "NotSupported", "AlreadyExists", "NotEmpty", "UploadFailed",
    "ConversionFailed",
    "NotSent", "SpoolLost", "Busy", "Gone", "SpoolWriteError", "SpoolFull", "spool_write_error",
    "error_for_status", "excerpt_of", "BODY_EXCERPT_CHARS",
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


class UnsafeLocalPath(ServerError):
    """A name from the server (a file's ``Name``, a zip member) that cannot be a local path under the target:
    absolute, with ``..``, a NUL, a part longer than 255 bytes or a path longer than 4096, or one that
    clashes with another (a file ``x`` and a member ``x/y``). Refused before anything is written
    (:func:`xnatfs.localpaths.safe_join`)."""

    errno = _errno.EIO


class InsecureCacheDir(ConfigError):
    """A cache or spool folder other local users could read or plant files in (owned by another user,
    group- or other-writable, or a symlink): refused with the fix in the message."""

    errno = _errno.EACCES


class CallerGone(XNATError):
    """The program a FUSE call was for went away (killed) while the call waited: the wait was given up
    (the kernel keeps a killed caller until its call is answered)."""

    errno = _errno.EINTR
    log_level = logging.INFO


class DeadlineExceeded(RequestTimeout):
    """A request (or one read of a stream) lasted past its overall deadline: a server that trickles its
    answer byte by byte, each byte within the socket timeout. The connection is closed."""

    errno = _errno.ETIMEDOUT


__all__ += ["UnsafeLocalPath", "InsecureCacheDir", "DeadlineExceeded", "CallerGone"]
