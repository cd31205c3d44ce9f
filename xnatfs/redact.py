"""Strip credentials from URLs, headers and messages before they reach a log or an exception.

Applied to every URL we log or put into an error. This module imports only the standard library.
"""

from __future__ import annotations

import re
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

REDACTED = "***"

#: Query parameters whose values are secrets (alias tokens, passwords, session IDs).
SECRET_PARAMS = frozenset({"password", "pass", "pwd", "secret", "token", "alias", "jsessionid", "xnat_csrf", "api_key"})
SECRET_HEADERS = frozenset({"authorization", "cookie", "set-cookie", "proxy-authorization"})

_USERINFO = re.compile(r"(?P<scheme>[a-zA-Z][a-zA-Z0-9+.-]*://)(?P<userinfo>[^/@\s]+)@")
_JSESSION = re.compile(r"(JSESSIONID=)[^;\s&]+", re.IGNORECASE)
_AUTH_SCHEME = re.compile(r"\b(Basic|Bearer)(\s+)(?!realm\b)[A-Za-z0-9+/=._~-]{4,}", re.IGNORECASE)


def redact_url(url: str) -> str:
    """The URL without a password in its user-info and without secret query parameter values."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return redact_text(url)
    netloc = parts.netloc
    if "@" in netloc:
        userinfo, _, host = netloc.rpartition("@")
        user = userinfo.split(":", 1)[0]
        netloc = f"{user}:{REDACTED}@{host}" if ":" in userinfo else f"{user}@{host}"
    query = parts.query
    if query:
        pairs = parse_qsl(query, keep_blank_values=True)
        if any(k.lower() in SECRET_PARAMS for k, _ in pairs):
            query = urlencode([(k, REDACTED if k.lower() in SECRET_PARAMS else v) for k, v in pairs], safe="/,*")
    return urlunsplit((parts.scheme, netloc, parts.path, query, parts.fragment))


def redact_headers(headers: dict[str, str]) -> dict[str, str]:
    """A copy of ``headers`` with authorization and cookie values replaced."""
    return {k: (REDACTED if k.lower() in SECRET_HEADERS else v) for k, v in headers.items()}


def redact_text(text: str, secrets: tuple[str, ...] = ()) -> str:
    """``text`` with URL user-info, JSESSIONID values, ``Basic``/``Bearer`` tokens and each of ``secrets``
    replaced (a server that echoes the ``Authorization`` header shows the password in base64)."""
    text = _USERINFO.sub(lambda m: m.group("scheme") + m.group("userinfo").split(":", 1)[0] + ":" + REDACTED + "@"
                         if ":" in m.group("userinfo") else m.group(0), text)
    text = _JSESSION.sub(r"\1" + REDACTED, text)
    text = _AUTH_SCHEME.sub(r"\1\2" + REDACTED, text)
    for secret in secrets:
        if secret:
            text = text.replace(secret, REDACTED)
    return text
