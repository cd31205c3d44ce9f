"""Test-only control routes under ``/emulator/`` (a path no real XNAT has), for administrators.

``GET /emulator/requests`` reads the count of requests served (by method and route),
``DELETE /emulator/requests`` resets it; ``GET /emulator/faults`` reads the fault switches and
``PUT``/``POST /emulator/faults`` changes them (JSON body or query parameters: ``latency_ms``,
``bandwidth_mibps``, ``fail_rate``, ``fail_status``, ``no_range``); ``POST /emulator/sessions/expire``
drops every HTTP session, as a server-side session timeout would. Control requests are not counted
and not subject to faults.
"""

from __future__ import annotations

from werkzeug.routing import Rule
from werkzeug.wrappers import Response

from xnatfs.emulator.app import Context, admin_only, json_body
from xnatfs.emulator.responses import HTTPError, json_response


@admin_only
def requests_counter(ctx: Context) -> Response:
    if ctx.request.method == "DELETE":
        ctx.faults.reset_counts()
    return json_response(ctx.faults.counts())


@admin_only
def faults(ctx: Context) -> Response:
    if ctx.request.method in ("PUT", "POST"):
        changes = dict(ctx.request.args)
        if ctx.request.get_data():
            body = json_body(ctx.request)
            if not isinstance(body, dict):
                raise HTTPError(400, "Fault settings must be a JSON object")
            changes.update(body)
        try:
            ctx.faults.update(**changes)
        except (TypeError, ValueError) as exc:
            raise HTTPError(400, str(exc)) from exc
    return json_response(ctx.faults.settings.as_dict())


@admin_only
def expire_sessions(ctx: Context) -> Response:
    dropped = ctx.app.sessions.clear()
    ctx.set_cookie = False
    return json_response({"expired": dropped})


def routes() -> list[Rule]:
    return [
        Rule("/emulator/requests", endpoint=requests_counter, methods=["GET", "DELETE"]),
        Rule("/emulator/faults", endpoint=faults, methods=["GET", "PUT", "POST"]),
        Rule("/emulator/sessions/expire", endpoint=expire_sessions, methods=["POST"]),
    ]
