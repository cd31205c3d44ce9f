"""XNATSession: HTTP verbs on server-relative paths, with login, one transparent re-login, and errors.

What it owns:

- **Login** (explicit, never in the constructor): ``POST /data/JSESSION`` with HTTP Basic (works for
  passwords and alias tokens alike); if the server has no such route (404/405), ``PUT
  /data/services/auth`` with a form body (what xnatpy does). The session ID then travels as the
  ``JSESSIONID`` cookie, **and the Basic credentials go with every request too**: XNAT expires an idle
  session after 15 minutes, and a site that lets guests in (``requireLogin=false``) then serves a
  request with the dead cookie *as guest* (``XnatSecureGuard``) instead of answering 401, so a client
  that sends only the cookie sees the user's private projects silently vanish. With Basic on every
  request the server re-authenticates such a request as the user. While the session lives this costs
  the server nothing (Spring's ``BasicAuthenticationFilter`` skips a user already authenticated in the
  session; measured on the emulator: no difference in request time), and xnatpy does the same.
- **Re-login**: a 401 (or a 2xx HTML login page) on a logged-in session logs in again once, then
  repeats the call once. Threads that hit the same expiry share one re-login (generation counter).
- **Status → error** via :func:`xnatfs.errors.error_for_status`, with a redacted URL and a short body
  excerpt in which the password (plain or as the base64 of a Basic header) is masked too. A 2xx HTML
  page where data was expected (a login page or a proxy's error page) is a :class:`ServerError`.
- **Bounded bodies**: an answer that is read whole is read as a stream up to
  ``settings.max_document_size`` (an announced or actual larger body is a :class:`ServerError`, not
  an allocation); an error answer is read only up to :data:`ERROR_BODY_LIMIT`.
- **Redirects** are followed only within the server's origin (:mod:`xnatfs.transport.http`); any other
  is a :class:`ServerError` naming where it pointed, and no credential went there.
- **TLS** verification is on unless ``verify=False``, which is logged as a warning once per session; an
  explicit CA bundle (or False) is passed on every call, so ``$REQUESTS_CA_BUNDLE`` cannot replace it.
- **Timeouts** on every call (``settings.Timeouts``; there is no ``timeout=None`` path).
- **Logout**: ``DELETE /data/JSESSION`` for a session we created; a reused ``jsession`` is left alive.
- **Fail fast on a dead server** (:mod:`xnatfs.transport.reachability`): after a request failed in
  transport (refused, reset, TLS, a connect or read timeout), every verb, :meth:`XNATSession.open_stream`
  and the login fail at once with :class:`~xnatfs.errors.ServerUnreachable` for
  ``settings.unreachable_hold`` seconds (default 2; 0 turns it off), then try again. The library, the
  mount and the CLI share this, so a walk over a dead server costs one timeout, not one per request.

What callers get is the transport's own: a :class:`~xnatfs.transport.responses.Response` with its body
read (bounded), or a :class:`~xnatfs.transport.responses.Stream` whose every read translates transport
errors. Nothing of requests or urllib3 leaves this package, exceptions included: a failure while an
error answer's body is read for its excerpt (a 500 whose body stalls) still reports the status.
"""

from __future__ import annotations

import base64
import logging
import re
import threading
from collections.abc import Mapping, Sequence
from typing import Any

import requests

from xnatfs.errors import (
    AuthenticationError,
    ConfigError,
    NotFound,
    TransportError,
    ResponseError,
    ServerError,
    error_for_status,
    excerpt_of,
)
from xnatfs.redact import redact_text, redact_url
from xnatfs.safexml import html_words
from xnatfs.settings import DEFAULT_SETTINGS, Settings, Timeouts
from xnatfs.transport.auth import PASSWORD_ENV, Credentials
from xnatfs.transport.deadline import deadline, raise_if_cut
from xnatfs.transport.http import build_http_session, origin_of, redirect_target, translate_errors
from xnatfs.transport.reachability import Reachability
from xnatfs.transport.responses import (
    ERROR_BODY_LIMIT,
    Response,
    Stream,
    close_quietly,
    load_body,
    looks_like_html,
    response_from,
)

log = logging.getLogger(__name__)

COOKIE = "JSESSIONID"
Params = Mapping[str, Any] | Sequence[tuple[str, Any]] | None
TimeoutArg = Timeouts | float | None
#: What a session ID from ``POST /data/JSESSION`` looks like (XNAT: 32 hex digits, maybe ``.route``).
_SESSION_ID = re.compile(r"[A-Za-z0-9._~+/=-]{1,512}")


class XNATSession:
    """HTTP verbs on paths relative to one XNAT server (``/data/…``, ``/xapi/…``).

    Thread-safe: requests' connection pool and cookie jar are shared; the login state has a lock.
    A context manager: leaving the block calls :meth:`close`.
    """

    def __init__(
        self,
        url: str,
        credentials: Credentials | None = None,
        *,
        settings: Settings = DEFAULT_SETTINGS,
        verify: bool | str = True,
        jsession: str | None = None,
        adapter: requests.adapters.BaseAdapter | None = None,
    ) -> None:
        """No I/O here: call :meth:`login`.

        ``adapter`` replaces the requests transport adapter for this server's URLs (tests, custom TLS):
        an input into the transport, the one place its HTTP library shows in a signature.
        """
        if not url.startswith(("http://", "https://")):
            raise ConfigError(f"Not an http(s) URL: {redact_url(url)}")
        if "@" in url.split("//", 1)[1].split("/", 1)[0]:
            raise ConfigError("Put credentials in user=/password= or a netrc file, not in the URL")
        self.base_url = url.rstrip("/")
        self.settings = settings
        self._credentials = credentials
        self._http = build_http_session(settings.retry, verify=verify)
        # Passed on every call as well: requests lets $REQUESTS_CA_BUNDLE override a session-level
        # verify (an explicit CA bundle, or False); a per-call value other than True wins over it.
        self._verify = verify
        if verify is False and self.base_url.startswith("https://"):
            log.warning("TLS certificate verification is OFF for %s (verify=False / --insecure): anyone on the "
                        "network path can pose as the server and read the password", redact_url(self.base_url))
        if adapter is not None:
            self._http.mount(self.base_url, adapter)
        self._lock = threading.Lock()
        self._reachability = Reachability(settings.unreachable_hold)
        self._generation = 0
        self._owns_session = False
        self._closed = False
        if jsession:
            self._http.cookies.set(COOKIE, jsession)

    def __repr__(self) -> str:
        who = self._credentials.user if self._credentials else "anonymous"
        return f"XNATSession({redact_url(self.base_url)!r}, user={who!r})"

    def __enter__(self) -> XNATSession:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- properties -----------------------------------------------------------------------------------

    @property
    def user(self) -> str | None:
        return self._credentials.user if self._credentials else None

    @property
    def reachability(self) -> Reachability:
        """The session's record of transport failures (fail fast on a dead server)."""
        return self._reachability

    @property
    def jsession(self) -> str | None:
        """The current session ID (a secret: never log it)."""
        return self._http.cookies.get(COOKIE)

    def url_for(self, path: str) -> str:
        """The absolute URL of a server path; a URL already under ``base_url`` is accepted as is."""
        if path.startswith(self.base_url + "/"):
            return path
        if not path.startswith("/"):
            raise ConfigError(f"Server paths start with '/': {path[:100]!r}")
        return self.base_url + path

    def deadline_for(self, timeout: TimeoutArg) -> float:
        """The overall deadline of one request (:attr:`Timeouts.deadline`; twice a plain number)."""
        if timeout is None:
            return self.settings.timeouts.deadline
        if isinstance(timeout, Timeouts):
            return timeout.deadline
        return 2 * float(timeout)

    def timeout_for(self, timeout: TimeoutArg) -> tuple[float, float]:
        if timeout is None:
            return self.settings.timeouts.as_tuple()
        if isinstance(timeout, Timeouts):
            return timeout.as_tuple()
        return (float(timeout), float(timeout))

    # -- login ----------------------------------------------------------------------------------------

    def login(self) -> None:
        """Open a server session (JSESSION) with the credentials; a no-op for anonymous sessions."""
        creds = self._credentials
        if creds is None:
            return
        with self._lock:
            self._reachability.call(lambda: self._login_locked(creds))

    def _login_locked(self, creds: Credentials) -> None:
        self._http.cookies.clear()
        timeout = self.timeout_for(None)
        url = self.url_for("/data/JSESSION")
        with translate_errors("POST", url):
            resp = self._http.post(url, auth=(creds.user, creds.password), timeout=timeout, stream=True,
                                   verify=self._verify)
        self._load_body(resp, ok=None)
        if resp.status_code in (404, 405):
            url = self.url_for("/data/services/auth")
            with translate_errors("PUT", url):
                resp = self._http.put(url, data={"username": creds.user, "password": creds.password}, timeout=timeout,
                                      stream=True, verify=self._verify)
            self._load_body(resp, ok=None)
        if resp.status_code == 401:
            raise AuthenticationError(
                f"Login failed: the server refused the password of user {creds.user!r} (a mistyped password, or the "
                f"account is disabled or locked); check the password you gave (prompt, ${PASSWORD_ENV} or netrc)",
                status=401, url=redact_url(url))
        if resp.is_redirect:
            raise self._redirect_error(resp)
        if resp.status_code in (404, 405):
            raise NotFound(f"No XNAT at {redact_url(self.base_url)}: it answers {resp.status_code} to XNAT's login "
                           f"(/data/JSESSION and /data/services/auth); check the URL's path (XNAT is usually at the "
                           f"server's root or under /xnat)", status=resp.status_code, url=redact_url(url))
        if not 200 <= resp.status_code < 300:
            raise self._error(resp, "Login failed")
        if looks_like_html(resp.content):
            raise ServerError("Login failed: the server answered with an HTML page, not a session ID (a single "
                              "sign-on or proxy login page?); xnatfs logs in with HTTP Basic at /data/JSESSION",
                              status=resp.status_code, url=redact_url(url), excerpt=self._excerpt(resp.content))
        token = resp.text.strip()
        if COOKIE not in self._http.cookies and token:
            if not _SESSION_ID.fullmatch(token):
                raise ServerError("Login failed: the server's answer is not a session ID", status=resp.status_code,
                                  url=redact_url(url), excerpt=self._excerpt(resp.content))
            self._http.cookies.set(COOKIE, token)
        if COOKIE not in self._http.cookies:
            raise ServerError("Login answered without a session ID", status=resp.status_code, url=redact_url(url))
        self._owns_session = True
        self._generation += 1
        log.debug("Logged in to %s as %s", redact_url(self.base_url), creds.user)

    def _relogin(self, seen_generation: int) -> bool:
        """Log in again unless another thread already did since ``seen_generation``."""
        creds = self._credentials
        if creds is None:
            return False
        with self._lock:
            if self._generation == seen_generation:
                log.info("Server session expired; logging in again as %s", creds.user)
                self._login_locked(creds)
        return True

    def logout(self) -> None:
        """End the server session we opened (``DELETE /data/JSESSION``); errors are logged, not raised."""
        with self._lock:
            if not self._owns_session:
                return
            self._owns_session = False
            url = self.url_for("/data/JSESSION")
            try:
                self._reachability.check()  # a dead server: do not wait for it to say goodbye
                with translate_errors("DELETE", url):
                    self._http.delete(url, headers={"Connection": "close"}, timeout=self.timeout_for(None),
                                      stream=True, verify=self._verify).close()
            except Exception as exc:  # noqa: BLE001 - logout is best effort; the server expires sessions
                log.debug("Logout from %s failed: %s", redact_url(self.base_url), exc)
            self._http.cookies.clear()

    def close(self) -> None:
        """Log out (if we logged in) and release pooled connections. Idempotent."""
        if self._closed:
            return
        self._closed = True
        self.logout()
        self._http.close()

    # -- requests -------------------------------------------------------------------------------------

    def request(
        self,
        method: str,
        path: str,
        *,
        params: Params = None,
        data: Any = None,
        headers: Mapping[str, str] | None = None,
        ok: Sequence[int] | None = None,
        timeout: TimeoutArg = None,
        expect_data: bool = True,
    ) -> Response:
        """Send one request and read its answer; raise the mapped error unless the status is in ``ok``
        (default: any 2xx).

        ``expect_data`` (default) treats a 2xx HTML page as an error; file downloads turn it off.
        A 401 on a logged-in session triggers one re-login and one repeat, if the body can be rewound.
        Fails at once with :class:`~xnatfs.errors.ServerUnreachable` for a moment after a transport
        failure (see the module docstring).
        """
        return self._reachability.call(lambda: response_from(self._exchange(
            method, path, params=params, data=data, headers=headers, stream=False, ok=ok, timeout=timeout,
            expect_data=expect_data)))

    def _exchange(self, method: str, path: str, *, params: Params, data: Any, headers: Mapping[str, str] | None,
                  stream: bool, ok: Sequence[int] | None, timeout: TimeoutArg, expect_data: bool) -> requests.Response:
        """One request with its re-login; the body read (bounded) unless ``stream`` and the status is good."""
        url = self.url_for(path)
        method = method.upper()
        start = _tell(data)
        # a body (upload, import) is bounded by its own timeouts (transfer.upload_timeout), not the deadline
        limit = self.deadline_for(timeout) if data is None else None
        for attempt in (1, 2):
            generation = self._generation
            with deadline(limit) as guard:
                try:
                    with translate_errors(method, url):
                        resp = self._http.request(
                            method, url, params=params, data=data, headers=dict(headers or {}), stream=True,
                            timeout=self.timeout_for(timeout), allow_redirects=True, verify=self._verify,
                            auth=self._basic(),
                        )
                    if not stream or not _is_good(resp.status_code, ok):
                        self._load_body(resp, ok)  # an error answer's body only for its excerpt, and bounded
                except TransportError:
                    raise_if_cut(guard, method, url)
                    raise
                raise_if_cut(guard, method, url)  # a cut-off body may look complete: never use it
            if stream and guard is not None:
                resp._xnatfs_deadline = (limit, tuple(guard.sockets))  # type: ignore[attr-defined]
            expired = attempt == 1 and self._credentials is not None and self._is_expired(resp, stream, expect_data)
            if expired and _rewind(data, start):
                close_quietly(resp)
                self._relogin(generation)
                continue
            break
        log.debug("%s %s -> %d", method, redact_url(resp.url), resp.status_code)
        self._check(resp, ok, stream=stream, expect_data=expect_data and method != "HEAD")
        return resp

    def _basic(self) -> tuple[str, str] | None:
        """The Basic credentials sent with every request of a logged-in session (see the module docstring)."""
        creds = self._credentials
        return (creds.user, creds.password) if creds is not None else None

    def _is_expired(self, resp: requests.Response, stream: bool, expect_data: bool) -> bool:
        if resp.status_code == 401:
            return True
        return (not stream and expect_data and 200 <= resp.status_code < 300 and looks_like_html(resp.content)
                and resp.request.method != "HEAD")

    def _load_body(self, resp: requests.Response, ok: Sequence[int] | None) -> None:
        """Read the body of ``resp`` into ``resp.content``, bounded (see the module docstring)."""
        if _is_good(resp.status_code, ok):
            load_body(resp, self.settings.max_document_size, refuse_larger=True)
        else:
            load_body(resp, ERROR_BODY_LIMIT, refuse_larger=False)

    def _redirect_error(self, resp: requests.Response) -> ServerError:
        """The error for a redirect that was not followed because it leaves the server's origin."""
        target = redirect_target(resp)
        close_quietly(resp)
        scheme, host, port = origin_of(self.base_url)
        return ServerError(
            f"The server redirected to {redact_text(redact_url(target)) or 'nowhere'}, outside {scheme}://{host}:{port}; "
            f"xnatfs follows redirects only within the server's scheme, host and port, so that no credentials are "
            f"sent elsewhere (if the server has moved, connect to its new address)",
            status=resp.status_code, url=redact_url(resp.url))

    def _check(self, resp: requests.Response, ok: Sequence[int] | None, *, stream: bool, expect_data: bool) -> None:
        good = _is_good(resp.status_code, ok)
        if not good:
            if resp.is_redirect:  # a followed redirect never ends here: this one left the origin
                raise self._redirect_error(resp)
            close_quietly(resp)  # its body was read (bounded) for the excerpt
            hint = "The server requires a login: pass user= and password=, or add a netrc entry" \
                if resp.status_code == 401 and self._credentials is None else ""
            raise self._error(resp, hint)
        if expect_data and not stream and looks_like_html(resp.content):
            raise ServerError(
                "The server answered with an HTML page where data was expected (a login page or a proxy error?)",
                status=resp.status_code, url=redact_url(resp.url), excerpt=self._excerpt(resp.content),
            )

    def _excerpt(self, body: bytes | str | None) -> str:
        if isinstance(body, bytes) and looks_like_html(body):
            body = html_words(body)  # an error page's words, not its markup
        return redact_text(excerpt_of(body), secrets=self._secrets())

    def _secrets(self) -> tuple[str, ...]:
        """The strings that must never appear in a message: the password, its Basic form, the session ID."""
        found = [cookie.value or "" for cookie in self._http.cookies if cookie.name == COOKIE]
        if self._credentials is not None:
            pair = f"{self._credentials.user}:{self._credentials.password}".encode()
            found += [self._credentials.password, base64.b64encode(pair).decode()]
        return tuple(s for s in found if s)

    def _error(self, resp: requests.Response, message: str = "", body: bytes | None = None) -> ResponseError:
        excerpt = self._excerpt(resp.content if body is None else body)
        return error_for_status(resp.status_code, url=redact_url(resp.url), body=excerpt, message=message)

    def get(self, path: str, params: Params = None, **kw: Any) -> Response:
        return self.request("GET", path, params=params, **kw)

    def head(self, path: str, params: Params = None, **kw: Any) -> Response:
        return self.request("HEAD", path, params=params, **kw)

    def put(self, path: str, params: Params = None, data: Any = None, **kw: Any) -> Response:
        return self.request("PUT", path, params=params, data=data, **kw)

    def post(self, path: str, params: Params = None, data: Any = None, **kw: Any) -> Response:
        return self.request("POST", path, params=params, data=data, **kw)

    def delete(self, path: str, params: Params = None, **kw: Any) -> Response:
        return self.request("DELETE", path, params=params, **kw)

    def get_json(self, path: str, params: Params = None, **kw: Any) -> Any:
        """GET ``path`` with ``format=json`` (sent last, as XNAT clients do) and parse the body."""
        items = list(params.items()) if isinstance(params, Mapping) else list(params or [])
        items = [(k, v) for k, v in items if k != "format"] + [("format", "json")]
        resp = self.request("GET", path, params=items, **kw)
        try:
            return resp.json()
        except (ValueError, RecursionError) as exc:  # RecursionError: absurdly nested JSON
            raise ServerError("The server did not answer with JSON", status=resp.status_code,
                              url=redact_url(resp.url), excerpt=self._excerpt(resp.content)) from exc

    def open_stream(self, method: str, path: str, *, params: Params = None, headers: Mapping[str, str] | None = None,
                    ok: Sequence[int] | None = None, timeout: TimeoutArg = None) -> Stream:
        """A streamed answer (status already checked); close it, or use it as a context manager.

        An error status raises its mapped error with an excerpt of the body (read bounded; a body that
        stalls or breaks only shortens the excerpt). Fails at once for a moment after a transport failure.
        """
        def send() -> Stream:
            resp = self._exchange(method, path, params=params, data=None, headers=headers, stream=True, ok=ok,
                                  timeout=timeout, expect_data=False)
            return Stream(resp, method.upper())
        return self._reachability.call(send)

    def server_version(self) -> str | None:
        """The XNAT version from ``/xapi/siteConfig/buildInfo``, else ``/data/version`` (XNAT 1.6), else None."""
        try:
            info = self.get_json("/xapi/siteConfig/buildInfo")
            if isinstance(info, dict) and info.get("version"):
                return str(info["version"])
        except ResponseError as exc:
            log.debug("buildInfo unavailable: %s", exc)
        try:
            text = self.get("/data/version").text.strip()
            return text or None
        except ResponseError:
            return None


def _is_good(status: int, ok: Sequence[int] | None) -> bool:
    return (status in ok) if ok is not None else (200 <= status < 300)


def _tell(data: Any) -> int | None:
    """Position of a seekable body, so it can be rewound for a repeat; None if not a file."""
    if hasattr(data, "read") and hasattr(data, "seek") and hasattr(data, "tell"):
        try:
            return int(data.tell())
        except (OSError, ValueError):
            return None
    return None


def _rewind(data: Any, start: int | None) -> bool:
    """Rewind a file body to ``start``; True if the body can be sent again (bytes, str, None, or rewound)."""
    if data is None or isinstance(data, (bytes, bytearray, str, dict, list, tuple)):
        return True
    if start is None:
        return False
    try:
        data.seek(start)
    except (OSError, ValueError):
        return False
    return True


__all__ = ["XNATSession", "Response", "Stream", "Params", "looks_like_html", "COOKIE", "ERROR_BODY_LIMIT"]
