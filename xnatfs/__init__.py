"""xnatfs: an XNAT client, a FUSE mount of an XNAT server, and an XNAT emulator for tests.

``import xnatfs`` gives the client facade only; it never imports mfusepy or werkzeug.
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
    ServerError,
    TransportError,
    UploadError,
    XNATError,
)

__version__ = "0.1.0"

__all__ = [
    "__version__",
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
    "ServerError",
    "TransportError",
    "UploadError",
    "XNATError",
]
