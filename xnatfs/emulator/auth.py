"""Login and logout routes: ``/data/JSESSION``, ``/data/services/auth``, ``/data/auth`` (spec §2.2–2.4).

The app's guard has already authenticated the request (cookie or Basic) before these views run;
they only open, report or close sessions, with XNAT's exact text bodies.
"""

from __future__ import annotations

from werkzeug.routing import Rule
from werkzeug.wrappers import Response

from xnatfs.emulator.app import Context, data_rules, public
from xnatfs.emulator.responses import HTTPError, text


def jsession(ctx: Context) -> Response:
    """GET/POST: the session id as text/plain, no newline. DELETE: invalidate it, 200 empty."""
    if ctx.request.method == "DELETE":
        ctx.app.sessions.close(ctx.request.cookies.get("JSESSIONID"))
        if ctx.session_id:
            ctx.app.sessions.close(ctx.session_id)
        ctx.set_cookie = False
        return text("")
    if ctx.user is None:  # pragma: no cover - the guard already refused
        raise HTTPError(401, "Unauthorized")
    if ctx.request.method == "POST" and not ctx.set_cookie:
        ctx.new_session(ctx.user)
    body = ctx.session_id or ""
    if ctx.request.args.get("CSRF", "").lower() == "true":
        body += f"; XNAT_CSRF={ctx.session_id}"
    return text(body)


@public
def services_auth(ctx: Context) -> Response:
    """PUT/POST form ``username=&password=`` → 200 with the new session id; else 401 (spec §2.3)."""
    form = ctx.request.form
    user = form.get("username") or form.get("j_username") or ""
    password = form.get("password") or form.get("j_password") or ""
    if not ctx.app.check_password(user, password):
        raise HTTPError(401, "Authentication failed.")
    return text(ctx.new_session(user))


def data_auth(ctx: Context) -> Response:
    """``User 'NAME' is logged in`` (xnatpy's check_auth parses exactly this)."""
    body = f"User '{ctx.user}' is logged in"
    if ctx.request.args.get("CSRF", "").lower() == "true":
        body += f"; XNAT_CSRF={ctx.session_id}"
    return text(body)


def routes() -> list[Rule]:
    return [
        *data_rules("/JSESSION", jsession, ["GET", "POST", "DELETE"], archive=False),
        *data_rules("/services/auth", services_auth, ["PUT", "POST"], archive=False),
        *data_rules("/auth", data_auth, ["GET"], archive=False),
    ]
