"""Placeholder: routes for this family are being written."""

from __future__ import annotations

from werkzeug.routing import Rule


def routes() -> list[Rule]:
    return []
