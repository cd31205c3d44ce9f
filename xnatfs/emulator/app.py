"""The emulator's WSGI application: routing, authentication, fault injection and error rendering.

Handlers live in one module per resource family; each exposes ``routes() -> list[Rule]`` whose
endpoints are view callables ``view(ctx: Context, **url_values) -> Response``. A view raises
:class:`~xnatfs.emulator.responses.HTTPError` (or a store error carrying ``.status``) and this module
renders it as XNAT's status page, so no handler formats an error itself.

Authentication follows XNAT 1.8 (Spring, then XnatSecureGuard; spec §2.1, §20): valid HTTP Basic
credentials (which also open a session and set the cookie, as Tomcat does), else a ``JSESSIONID``
cookie naming a live session (idle expiry), else the guest user on a guest-enabled site, else 401.
Views marked :func:`public` run without a user (``/data/services/auth``,
``/xapi/siteConfig/buildInfo``...). Then ``access.check_route`` refuses what the user may not do
in the archive, and ``ranges.apply`` gives every answer Restlet's Range handling (unless the
``http_range`` switch asks for RFC 9110 ranges on files only).
"""

from __future__ import annotations

import base64
import collections
import importlib
import logging
import secrets
import threading
import time
import traceback
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable

from werkzeug.exceptions import HTTPException, MethodNotAllowed, NotFound as RouteNotFound
from werkzeug.routing import Map, Rule
from werkzeug.wrappers import Request, Response
from werkzeug.wsgi import ClosingIterator

from xnatfs.emulator.access import GUEST as ACCESS_GUEST, check_route
from xnatfs.emulator import ranges
from xnatfs.emulator.faults import Faults
from xnatfs.emulator.responses import HTTPError, error_page, tomcat_error_page
from xnatfs.emulator.store import Store

log = logging.getLogger(__name__)

#: Modules whose ``routes()`` make up the server, in matching order.
HANDLER_MODULES = (
    "xnatfs.emulator.auth",
    "xnatfs.emulator.site",
    "xnatfs.emulator.control",
    "xnatfs.emulator.handlers.archive",
    "xnatfs.emulator.handlers.archive_project_users",
    "xnatfs.emulator.handlers.files",
    "xnatfs.emulator.handlers.prearchive",
    "xnatfs.emulator.handlers.services",
)

REALM = 'Basic realm="XNAT Protected Area"'
#: The login name XNAT gives requests served without credentials (``requireLogin=false``).
GUEST = ACCESS_GUEST
SESSION_COOKIE = "JSESSIONID"
#: Restlet 1.1's default description of 401 (``Status.CLIENT_ERROR_UNAUTHORIZED``), the <h3> of the
#: status page XnatSecureGuard's refusal renders; pyxnat's ``catch_error`` compares with this text.
UNAUTHORIZED = "The request requires user authentication"


def public(view: Callable) -> Callable:
    """Mark a view as reachable without credentials (Spring's open URLs, spec §2.1)."""
    view.public = True  # type: ignore[attr-defined]
    return view


def admin_only(view: Callable) -> Callable:
    """Mark a view as reserved to site administrators."""
    view.admin_only = True  # type: ignore[attr-defined]
    return view


class MatchOnlyRule(Rule):
    """A Rule used only to match requests; building URLs from it (``url_for``) is not supported.

    werkzeug compiles a URL builder per rule (about 1 ms each); with ~800 routes that alone would
    take most of the emulator's one-second boot, and the emulator never builds URLs. Overrides
    werkzeug's private ``_compile_builder``: should werkzeug rename it, the override is simply
    unused and binding becomes slower again, never wrong.
    """

    def _compile_builder(self, append_unknown: bool = True):  # type: ignore[no-untyped-def,override]
        def build(*args: object, **kwargs: object) -> tuple[str, str]:
            raise NotImplementedError("emulator routes are match-only")

        return build


def data_rules(path: str, view: Callable, methods: Iterable[str], *, archive: bool = True) -> list[Rule]:
    """The same route under ``/data`` and ``/REST`` (and their ``/archive`` twins; spec §1)."""
    prefixes = ["/data", "/REST"]
    if archive:
        prefixes += ["/data/archive", "/REST/archive"]
    return [MatchOnlyRule(prefix + path, endpoint=view, methods=list(methods)) for prefix in prefixes]


@dataclass
class EmulatorConfig:
    """Server-wide settings that are not faults: who may log in, who is an administrator, whether
    guests are let in, how long an idle session lives, and the compatibility switches.

    Every default is XNAT's; each switch brings back an older, non-XNAT behaviour of the emulator
    (docs/emulator.md lists them): ``legacy_paths`` decodes file paths in full, as werkzeug does
    (XNAT decodes only paths holding ``%20`` or ``%2B``); ``http_range`` answers RFC 9110 ranges
    (clamped, 416) instead of Restlet's; ``restlet_401`` refuses with the Restlet guard's page (realm
    "XNAT Protected Area") instead of Spring's Tomcat page with realm = site ID; ``merged_in_out``
    lists assessor/reconstruction ``in`` and ``out`` resources together (XNAT keeps them apart).
    """

    users: dict[str, str] = field(default_factory=lambda: {"admin": "admin"})
    admins: frozenset[str] = frozenset({"admin"})
    site_url: str = ""
    site_id: str = "XNAT"
    allow_guest: bool = False
    session_timeout: float = 900.0
    legacy_paths: bool = False
    http_range: bool = False
    restlet_401: bool = False
    merged_in_out: bool = False


class SessionTable:
    """Live HTTP sessions (JSESSIONID → user), in memory like Tomcat's: a restart drops them.

    A session not used for ``timeout`` seconds is dead (Tomcat's idle ``session-timeout``, 15 minutes
    in XNAT's web.xml); every use renews it. Clients that send Basic credentials on every request
    (pyxnat) open a session each time, so the table is bounded: past ``max_sessions`` the oldest
    session is dropped, as Tomcat's expiry would.
    """

    def __init__(self, max_sessions: int = 10_000, timeout: float = 900.0) -> None:
        self._lock = threading.Lock()
        self._sessions: collections.OrderedDict[str, tuple[str, float]] = collections.OrderedDict()
        self._max = max_sessions
        self.timeout = timeout

    def open(self, user: str) -> str:
        session_id = secrets.token_hex(16).upper()
        with self._lock:
            self._sessions[session_id] = (user, time.monotonic())
            while len(self._sessions) > self._max:
                self._sessions.popitem(last=False)
        return session_id

    def user_of(self, session_id: str | None) -> str | None:
        """The user of a live session (and renew it), or None for an unknown or idle-expired one."""
        if not session_id:
            return None
        now = time.monotonic()
        with self._lock:
            found = self._sessions.get(session_id)
            if found is None:
                return None
            if self.timeout > 0 and now - found[1] > self.timeout:
                del self._sessions[session_id]
                return None
            self._sessions[session_id] = (found[0], now)
            self._sessions.move_to_end(session_id)
            return found[0]

    def close(self, session_id: str | None) -> None:
        with self._lock:
            self._sessions.pop(session_id or "", None)

    def clear(self) -> int:
        with self._lock:
            count = len(self._sessions)
            self._sessions.clear()
            return count


@dataclass
class Context:
    """What a view needs: the request, the archive, the authenticated user and the server's state."""

    request: Request
    app: "EmulatorApp"
    user: str | None
    session_id: str | None
    rule: str = ""

    @property
    def store(self) -> Store:
        return self.app.store

    @property
    def faults(self) -> Faults:
        return self.app.faults

    @property
    def is_admin(self) -> bool:
        return self.user in self.app.config.admins

    @property
    def is_guest(self) -> bool:
        """Served as XNAT's guest user: no credentials (or a dead session) on a guest-enabled site."""
        return self.user == GUEST

    def new_session(self, user: str) -> str:
        """Open a session for ``user``; the app sets the cookie on the way out."""
        self.session_id = self.app.sessions.open(user)
        self.user = user
        self.set_cookie = True
        return self.session_id

    set_cookie: bool = False


class EmulatorApp:
    """The WSGI callable. Thread-safe: state lives in the Store, the SessionTable and Faults."""

    def __init__(self, store: Store, config: EmulatorConfig | None = None, faults: Faults | None = None) -> None:
        self.store = store
        self.config = config or EmulatorConfig()
        self.faults = faults or Faults()
        self.sessions = SessionTable(timeout=self.config.session_timeout)
        rules: list[Rule] = []
        for name in HANDLER_MODULES:
            rules.extend(importlib.import_module(name).routes())
        self.url_map = Map(rules, strict_slashes=False, merge_slashes=False)

    def check_password(self, user: str, password: str) -> bool:
        expected = self.config.users.get(user)
        return expected is not None and secrets.compare_digest(expected, password)

    def __call__(self, environ: dict, start_response: Callable) -> Iterable[bytes]:
        path = environ.get("PATH_INFO", "")
        is_control = path.startswith("/emulator/")
        settings = self.faults.settings
        if settings.no_range:
            environ.pop("HTTP_RANGE", None)
            environ.pop("HTTP_IF_RANGE", None)
        request = Request(environ)
        if is_control:
            response = self._dispatch(request)
        else:
            if settings.latency_ms > 0:
                time.sleep(settings.latency_ms / 1000.0)
            if self.faults.should_fail():
                self.faults.count(f"{request.method} FAULT")
                response = error_page(settings.fail_status, "Injected failure (emulator fault switch)")
            else:
                response = self._dispatch(request, count=True)
        if not is_control and not settings.no_range and not self.config.http_range:
            if request.method == "HEAD":
                response.headers["Accept-Ranges"] = "bytes"
            else:
                response = ranges.apply(environ.get("HTTP_RANGE"), response)
        body = response(environ, start_response)
        if is_control or settings.bandwidth_mibps <= 0:
            return body
        return ClosingIterator(self.faults.throttle(body), [getattr(body, "close", lambda: None)])

    def _dispatch(self, request: Request, count: bool = False) -> Response:
        adapter = self.url_map.bind_to_environ(request.environ)
        ctx = Context(request=request, app=self, user=None, session_id=None)
        try:
            rule, values = adapter.match(return_rule=True)
            ctx.rule = rule.rule
            if count:
                self.faults.count(f"{request.method} {rule.rule}")
            view = rule.endpoint
            self._authenticate(ctx, view)
            if ctx.user is not None:
                check_route(ctx, rule.rule, values)
            response = view(ctx, **values)
        except HTTPError as exc:
            if getattr(exc, "bare", False):
                response = Response(exc.message, status=exc.status, mimetype="text/plain")
            elif getattr(exc, "tomcat", False):
                response = tomcat_error_page(exc.status, exc.headers)
            else:
                response = error_page(exc.status, exc.message, exc.headers)
        except RouteNotFound:
            if count:
                self.faults.count(f"{request.method} (no route)")
            response = error_page(404, "The server has not found anything matching the request URI")
        except MethodNotAllowed:
            response = error_page(405, "Method Not Allowed")
        except HTTPException as exc:
            response = error_page(exc.code or 500, exc.description or exc.name)
        except Exception as exc:  # the one place a view's failure becomes a 500 page
            status = getattr(exc, "status", None)
            if isinstance(status, int):
                response = error_page(status, str(exc))
            else:
                log.error("emulator: %s %s failed:\n%s", request.method, request.path, traceback.format_exc())
                response = error_page(500, f"Internal Server Error: {exc}")
        if ctx.set_cookie and ctx.session_id:
            response.set_cookie(SESSION_COOKIE, ctx.session_id, path="/", httponly=True)
        return response

    def _authenticate(self, ctx: Context, view: Callable) -> None:
        """XNAT 1.8's chain (Spring, then XnatSecureGuard): valid Basic credentials win (a new
        session); else a live session cookie; else, on a guest-enabled site, the guest user (also
        for a dead cookie: XNAT does not refuse it, it serves guest); else 401. Wrong Basic
        credentials are refused even with a live cookie, as Spring's BasicAuthenticationFilter does."""
        request = ctx.request
        session_id = request.cookies.get(SESSION_COOKIE)
        user = self.sessions.user_of(session_id)
        header = request.headers.get("Authorization")
        basic = _basic_credentials(header or "")
        if basic is not None and self.check_password(*basic):
            if user == basic[0]:
                ctx.user, ctx.session_id = user, session_id
            else:
                ctx.new_session(basic[0])
        elif header and not getattr(view, "public", False):
            raise self.unauthorized()
        elif user is not None:
            ctx.user, ctx.session_id = user, session_id
        elif self.config.allow_guest:
            ctx.user = GUEST
        elif not getattr(view, "public", False):
            raise self.unauthorized()
        if getattr(view, "admin_only", False) and not ctx.is_admin:
            raise HTTPError(403, "This operation is restricted to site administrators.")

    def unauthorized(self) -> HTTPError:
        """The 401 a client without valid credentials gets: Restlet's guard page (``restlet_401``) or,
        as XNAT 1.8 answers for data paths, Spring's: ``realm="<site id>"`` and Tomcat's error page."""
        if self.config.restlet_401:
            return HTTPError(401, UNAUTHORIZED, {"WWW-Authenticate": REALM})
        error = HTTPError(401, "", {"WWW-Authenticate": f'Basic realm="{self.config.site_id}"'})
        error.tomcat = True  # type: ignore[attr-defined]
        return error


def _basic_credentials(header: str) -> tuple[str, str] | None:
    if not header.lower().startswith("basic "):
        return None
    try:
        decoded = base64.b64decode(header[6:].strip()).decode("utf-8")
    except (ValueError, UnicodeDecodeError):
        return None
    user, sep, password = decoded.partition(":")
    return (user, password) if sep else None


def json_body(request: Request) -> Any:
    """A JSON request body, or 400."""
    import json

    try:
        return json.loads(request.get_data(as_text=True) or "{}")
    except ValueError as exc:
        raise HTTPError(400, f"Malformed JSON body: {exc}") from exc
