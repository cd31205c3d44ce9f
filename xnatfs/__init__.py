"""xnatfs: an XNAT client, a FUSE mount of an XNAT server, and an XNAT emulator for tests.

``import xnatfs`` gives the client facade only (``xnatfs.connect`` and the error classes); it never
imports mfusepy or werkzeug.
"""

from __future__ import annotations

from xnatfs.errors import (
    AmbiguousLabelError,
    AuthenticationError,
    ChecksumMismatch,
    ConfigError,
    Conflict,
    InsecureNetrcError,
    MissingCredentialsError,
    NotFound,
    PermissionDenied,
    RequestTimeout,
    ResponseError,
    SchemaError,
    TLSError,
    ServerError,
    TransportError,
    UploadError,
    XNATError,
)

__version__ = "0.1.0"

from xnatfs.model.connect import Connection, connect  # noqa: E402 - after __version__, which transport reads

__all__ = [
    "__version__",
    "connect",
    "Connection",
    "AmbiguousLabelError",
    "AuthenticationError",
    "ChecksumMismatch",
    "ConfigError",
    "Conflict",
    "InsecureNetrcError",
    "MissingCredentialsError",
    "NotFound",
    "PermissionDenied",
    "RequestTimeout",
    "ResponseError",
    "SchemaError",
    "TLSError",
    "ServerError",
    "TransportError",
    "UploadError",
    "XNATError",
]
